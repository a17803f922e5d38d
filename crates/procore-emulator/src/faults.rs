//! Faults the emulator injects into `POST /oauth/token`, off unless armed: a delay before
//! the answer, an error status (429 or 5xx, with `Retry-After`), and a lost response after a
//! refresh was processed (the old refresh token is consumed, the new pair never arrives).
//!
//! Each fault applies to every matching token request until cleared, or to the next `times`
//! of them. Faults never touch the other endpoints and never leak a secret.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::GrantType;

/// The faults armed now. The JSON form is what `GET /_emulator/faults` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Wait before answering, after the request has been processed.
    #[serde(default)]
    pub delay: Option<DelayFault>,
    /// Answer an error status instead of processing the request (nothing is consumed).
    #[serde(default)]
    pub status: Option<StatusFault>,
    /// Process a refresh, then close the connection without answering.
    #[serde(default)]
    pub drop_after_refresh: Option<DropAfterRefreshFault>,
}

/// Hold the answer back for `ms` milliseconds (the request is processed first, so a caller
/// that gives up has still used its code or refresh token, as with a slow real server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayFault {
    pub ms: u64,
    /// Apply to the next `times` matching requests; absent: until cleared.
    #[serde(default)]
    pub times: Option<u32>,
    /// Apply only to token requests of this grant; absent: any.
    #[serde(default, with = "grant_filter")]
    pub grant_type: Option<GrantType>,
}

/// Answer `code` (429 or 500–599) without processing the request, with `Retry-After` when
/// `retry_after_secs` is set (and the `X-Rate-Limit-*` headers on a 429).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusFault {
    pub code: u16,
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// Apply to the next `times` matching requests; absent: until cleared.
    #[serde(default)]
    pub times: Option<u32>,
    /// Apply only to token requests of this grant; absent: any.
    #[serde(default, with = "grant_filter")]
    pub grant_type: Option<GrantType>,
}

/// After a successful `refresh_token` grant has rotated the tokens, close the connection
/// without a byte of answer: the old refresh token is gone and the caller never sees the new
/// pair, the failure Procore's documentation warns about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropAfterRefreshFault {
    /// Apply to the next `times` successful refreshes; absent: until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

/// One fault to arm; it replaces the armed fault of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Delay(DelayFault),
    Status(StatusFault),
    DropAfterRefresh(DropAfterRefreshFault),
}

/// A change to the armed faults, as `POST /_emulator/faults` takes it: a key that is absent
/// leaves its fault as it is, `null` clears it, an object replaces it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultUpdate {
    #[serde(default, deserialize_with = "present")]
    pub delay: Option<Option<DelayFault>>,
    #[serde(default, deserialize_with = "present")]
    pub status: Option<Option<StatusFault>>,
    #[serde(default, deserialize_with = "present")]
    pub drop_after_refresh: Option<Option<DropAfterRefreshFault>>,
}

/// Why a fault cannot be armed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("status fault code {0} is not 429 or 500-599")]
    Status(u16),
    #[error("times must be at least 1 (leave it out to apply until cleared)")]
    ZeroTimes,
}

trait Armed: Clone {
    fn times(&mut self) -> &mut Option<u32>;
    fn grant_filter(&self) -> Option<GrantType> {
        None
    }
}

impl Armed for DelayFault {
    fn times(&mut self) -> &mut Option<u32> {
        &mut self.times
    }
    fn grant_filter(&self) -> Option<GrantType> {
        self.grant_type
    }
}

impl Armed for StatusFault {
    fn times(&mut self) -> &mut Option<u32> {
        &mut self.times
    }
    fn grant_filter(&self) -> Option<GrantType> {
        self.grant_type
    }
}

impl Armed for DropAfterRefreshFault {
    fn times(&mut self) -> &mut Option<u32> {
        &mut self.times
    }
}

/// Use one application of the fault in `slot` if it matches `grant`; a counted fault is
/// disarmed when its last application is used.
fn take<T: Armed>(slot: &mut Option<T>, grant: Option<GrantType>) -> Option<T> {
    let fault = slot.as_mut()?;
    if let Some(wanted) = fault.grant_filter()
        && grant != Some(wanted)
    {
        return None;
    }
    let taken = fault.clone();
    match fault.times() {
        Some(left) if *left <= 1 => *slot = None,
        Some(left) => *left -= 1,
        None => {}
    }
    Some(taken)
}

fn check_times(times: Option<u32>) -> Result<(), FaultError> {
    match times {
        Some(0) => Err(FaultError::ZeroTimes),
        _ => Ok(()),
    }
}

impl Fault {
    /// Whether the fault can be armed as given.
    pub fn validate(&self) -> Result<(), FaultError> {
        match self {
            Self::Delay(delay) => check_times(delay.times),
            Self::Status(status) => {
                if status.code != 429 && !(500..=599).contains(&status.code) {
                    return Err(FaultError::Status(status.code));
                }
                check_times(status.times)
            }
            Self::DropAfterRefresh(drop) => check_times(drop.times),
        }
    }
}

impl Faults {
    /// Whether no fault is armed.
    pub fn is_empty(&self) -> bool {
        self.delay.is_none() && self.status.is_none() && self.drop_after_refresh.is_none()
    }

    /// The armed faults, one per kind.
    pub fn list(&self) -> Vec<Fault> {
        let mut faults = Vec::new();
        if let Some(delay) = &self.delay {
            faults.push(Fault::Delay(delay.clone()));
        }
        if let Some(status) = &self.status {
            faults.push(Fault::Status(status.clone()));
        }
        if let Some(drop) = &self.drop_after_refresh {
            faults.push(Fault::DropAfterRefresh(drop.clone()));
        }
        faults
    }

    /// Arm `fault`, replacing the armed fault of its kind.
    pub fn arm(&mut self, fault: Fault) -> Result<(), FaultError> {
        fault.validate()?;
        match fault {
            Fault::Delay(delay) => self.delay = Some(delay),
            Fault::Status(status) => self.status = Some(status),
            Fault::DropAfterRefresh(drop) => self.drop_after_refresh = Some(drop),
        }
        Ok(())
    }

    /// Apply an update; nothing changes unless every fault in it is valid.
    pub fn apply(&mut self, update: FaultUpdate) -> Result<(), FaultError> {
        let mut next = self.clone();
        if let Some(delay) = update.delay {
            next.delay = None;
            if let Some(delay) = delay {
                next.arm(Fault::Delay(delay))?;
            }
        }
        if let Some(status) = update.status {
            next.status = None;
            if let Some(status) = status {
                next.arm(Fault::Status(status))?;
            }
        }
        if let Some(drop) = update.drop_after_refresh {
            next.drop_after_refresh = None;
            if let Some(drop) = drop {
                next.arm(Fault::DropAfterRefresh(drop))?;
            }
        }
        *self = next;
        Ok(())
    }

    pub(super) fn take_delay(&mut self, grant: Option<GrantType>) -> Option<Duration> {
        take(&mut self.delay, grant).map(|delay| Duration::from_millis(delay.ms))
    }

    pub(super) fn take_status(&mut self, grant: Option<GrantType>) -> Option<StatusFault> {
        take(&mut self.status, grant)
    }

    pub(super) fn take_drop_after_refresh(&mut self) -> bool {
        take(&mut self.drop_after_refresh, Some(GrantType::RefreshToken)).is_some()
    }
}

/// Deserialize a field that was present (possibly `null`) as `Some(…)`; absent fields get
/// `None` from `#[serde(default)]`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `grant_type` filters as their OAuth names.
mod grant_filter {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use super::GrantType;

    pub fn serialize<S: Serializer>(
        grant: &Option<GrantType>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match grant {
            Some(grant) => serializer.serialize_str(grant.as_str()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<GrantType>, D::Error> {
        let Some(name) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        GrantType::parse(&name).map(Some).ok_or_else(|| {
            D::Error::custom(
                "grant_type must be authorization_code, refresh_token or client_credentials",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn counted_faults_disarm_after_their_last_use() {
        let mut faults = Faults::default();
        faults
            .arm(Fault::Status(StatusFault {
                code: 503,
                retry_after_secs: Some(3),
                times: Some(2),
                grant_type: None,
            }))
            .unwrap();
        assert!(faults.take_status(None).is_some());
        assert_eq!(faults.status.as_ref().unwrap().times, Some(1));
        assert!(faults.take_status(Some(GrantType::RefreshToken)).is_some());
        assert!(faults.take_status(None).is_none());
        assert!(faults.is_empty());
    }

    #[test]
    fn uncounted_faults_stay_until_cleared() {
        let mut faults = Faults::default();
        faults
            .arm(Fault::Delay(DelayFault {
                ms: 10,
                times: None,
                grant_type: None,
            }))
            .unwrap();
        for _ in 0..5 {
            assert_eq!(faults.take_delay(None), Some(Duration::from_millis(10)));
        }
        faults
            .apply(serde_json::from_value(json!({"delay": null})).unwrap())
            .unwrap();
        assert!(faults.is_empty());
    }

    #[test]
    fn grant_filters_leave_other_grants_alone() {
        let mut faults = Faults::default();
        faults
            .arm(Fault::Status(StatusFault {
                code: 429,
                retry_after_secs: None,
                times: Some(1),
                grant_type: Some(GrantType::RefreshToken),
            }))
            .unwrap();
        assert!(faults.take_status(None).is_none());
        assert!(
            faults
                .take_status(Some(GrantType::ClientCredentials))
                .is_none()
        );
        assert!(faults.take_status(Some(GrantType::RefreshToken)).is_some());
        assert!(faults.is_empty());
    }

    #[test]
    fn drop_fault_counts_only_refreshes() {
        let mut faults = Faults::default();
        faults
            .arm(Fault::DropAfterRefresh(DropAfterRefreshFault {
                times: Some(1),
            }))
            .unwrap();
        assert!(faults.take_drop_after_refresh());
        assert!(!faults.take_drop_after_refresh());
    }

    #[test]
    fn updates_distinguish_absent_null_and_object() {
        let mut faults = Faults::default();
        let update: FaultUpdate = serde_json::from_value(json!({
            "status": {"code": 503, "retry_after_secs": 7, "times": 1, "grant_type": "refresh_token"},
            "drop_after_refresh": {}
        }))
        .unwrap();
        faults.apply(update).unwrap();
        assert_eq!(faults.status.as_ref().unwrap().code, 503);
        assert_eq!(
            faults.status.as_ref().unwrap().grant_type,
            Some(GrantType::RefreshToken)
        );
        assert_eq!(
            faults.drop_after_refresh,
            Some(DropAfterRefreshFault { times: None })
        );

        // Absent keys leave faults alone; null clears.
        let update: FaultUpdate =
            serde_json::from_value(json!({"drop_after_refresh": null})).unwrap();
        faults.apply(update).unwrap();
        assert!(faults.status.is_some());
        assert!(faults.drop_after_refresh.is_none());

        // Round trip of the shown form.
        let shown = serde_json::to_value(&faults).unwrap();
        assert_eq!(shown["status"]["grant_type"], "refresh_token");
        assert_eq!(shown["delay"], serde_json::Value::Null);
    }

    #[test]
    fn invalid_faults_change_nothing() {
        let mut faults = Faults::default();
        let bad: FaultUpdate = serde_json::from_value(json!({
            "delay": {"ms": 5},
            "status": {"code": 404}
        }))
        .unwrap();
        assert_eq!(faults.apply(bad), Err(FaultError::Status(404)));
        assert!(faults.is_empty(), "the valid delay was not armed either");
        let zero: FaultUpdate =
            serde_json::from_value(json!({"drop_after_refresh": {"times": 0}})).unwrap();
        assert_eq!(faults.apply(zero), Err(FaultError::ZeroTimes));
        assert!(serde_json::from_value::<FaultUpdate>(json!({"dealy": {}})).is_err());
        assert!(
            serde_json::from_value::<FaultUpdate>(
                json!({"delay": {"ms": 1, "grant_type": "password"}})
            )
            .is_err()
        );
    }
}
