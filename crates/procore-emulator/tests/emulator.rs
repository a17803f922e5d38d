//! The local OAuth emulator, rule by rule, over HTTP on 127.0.0.1: authorize and the code
//! page, codes single-use, bound and expiring, refresh rotation, client credentials, token
//! info and expiry, revocation, every body encoding and Basic auth, RFC 6749 errors, the
//! faults and the control endpoint. (The server's `emulator` subcommand, which runs it, is
//! tested with the server's binary: tests/front_door/end_to_end.rs at the workspace root.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use common::*;
use procore_emulator::{
    DelayFault, DropAfterRefreshFault, EMULATED_USER_ID, EmulatorConfig, Fault, GrantType,
    RunningEmulator, Secret, StatusFault,
};
use serde_json::{Value, json};

fn client_fields(emulator: &RunningEmulator) -> Value {
    json!({"client_id": emulator.client_id(), "client_secret": emulator.client_secret().expose()})
}

fn with_client(emulator: &RunningEmulator, fields: Value) -> Value {
    let mut body = client_fields(emulator);
    for (name, value) in fields.as_object().unwrap() {
        body[name] = value.clone();
    }
    body
}

async fn code_for(emulator: &RunningEmulator) -> String {
    authorize_as_user(&emulator.authorize_url(OOB, "st")).await
}

async fn exchange(emulator: &RunningEmulator, code: &str, redirect_uri: &str) -> Answer {
    post_token(
        emulator.base_url(),
        &with_client(
            emulator,
            json!({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}),
        ),
    )
    .await
}

async fn refresh(emulator: &RunningEmulator, refresh_token: &str) -> Answer {
    post_token(
        emulator.base_url(),
        &with_client(
            emulator,
            json!({"grant_type": "refresh_token", "refresh_token": refresh_token, "redirect_uri": OOB}),
        ),
    )
    .await
}

/// `client_credentials` with the app's credentials in a JSON body.
async fn service_token(emulator: &RunningEmulator) -> Answer {
    post_token(
        emulator.base_url(),
        &with_client(emulator, json!({"grant_type": "client_credentials"})),
    )
    .await
}

/// A first token pair for the emulated user: (access_token, refresh_token).
async fn first_pair(emulator: &RunningEmulator) -> (String, String) {
    let code = code_for(emulator).await;
    let answer = exchange(emulator, &code, OOB).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn assert_token_response(answer: &Answer, with_refresh: bool, expires_in: u64) {
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = answer.json();
    let access = body["access_token"].as_str().unwrap();
    assert!(access.len() >= 32, "long random access token");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], expires_in);
    let created = body["created_at"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(created.abs_diff(now) < 120, "created_at is Unix seconds");
    match body.get("refresh_token") {
        Some(Value::String(refresh)) if with_refresh => {
            assert!(refresh.len() >= 32);
            assert_ne!(refresh, access);
        }
        None if !with_refresh => {}
        other => panic!("refresh_token {other:?}, wanted one: {with_refresh}"),
    }
    assert!(body.get("scope").is_none(), "Procore sends no scope");
}

#[tokio::test]
async fn oob_authorize_shows_the_code_on_a_page_and_the_code_works_once() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;

    // The browser is sent to /oauth/authorize/<CODE>; look at the redirect itself first.
    let redirect = Answer::from(
        http()
            .get(emulator.authorize_url(OOB, "xyz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(redirect.status, 302);
    let location = redirect.header("location").unwrap().to_owned();
    let code = location
        .strip_prefix("/oauth/authorize/")
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 64);
    let page = Answer::from(
        http()
            .get(format!("{}{location}", emulator.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(code_on_page(&page.text), code);
    assert!(
        !page.text.to_lowercase().contains("procore.com"),
        "{}",
        page.text
    );

    let answer = exchange(&emulator, &code, OOB).await;
    assert_token_response(&answer, true, 5400);

    // Single use: a second exchange fails, and the page no longer shows the code.
    exchange(&emulator, &code, OOB)
        .await
        .assert_oauth_error(400, "invalid_grant");
    let gone = Answer::from(
        http()
            .get(format!("{}{location}", emulator.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(gone.status, 404);
    assert!(!gone.text.contains(&code));

    // A user following the redirects gets a fresh, different code the same way.
    let second = authorize_as_user(&emulator.authorize_url(OOB, "again")).await;
    assert_ne!(second, code);
    assert_eq!(emulator.stats().codes_issued, 2);
}

#[tokio::test]
async fn codes_expire_after_the_code_ttl() {
    let emulator =
        start_emulator(EmulatorConfig::generated().with_code_ttl(Duration::from_secs(1))).await;
    let code = code_for(&emulator).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    exchange(&emulator, &code, OOB)
        .await
        .assert_oauth_error(400, "invalid_grant");
    let page = http()
        .get(format!("{}/oauth/authorize/{code}", emulator.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404, "an expired code is not shown");

    // A fresh code used at once works.
    let code = code_for(&emulator).await;
    assert_eq!(exchange(&emulator, &code, OOB).await.status, 200);
}

#[tokio::test]
async fn redirect_uris_must_match_the_registration_and_the_authorize_request() {
    let registered = "https://app.example/callback";
    let emulator = start_emulator(EmulatorConfig::generated().with_redirect_uri(registered)).await;
    let base = emulator.base_url().to_owned();

    // An unregistered redirect URI or an unknown client: an error page, no code.
    for url in [
        emulator.authorize_url("https://evil.example/callback", "s"),
        emulator.authorize_url("https://app.example/callback/", "s"),
        format!(
            "{base}/oauth/authorize?response_type=code&client_id=nobody&redirect_uri={}",
            "urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob"
        ),
        format!(
            "{base}/oauth/authorize?response_type=code&client_id={}",
            emulator.client_id()
        ),
    ] {
        let answer = Answer::from(http().get(&url).send().await.unwrap()).await;
        assert!(
            answer.status.is_client_error(),
            "{url}: {} {}",
            answer.status,
            answer.text
        );
        assert!(answer.header("location").is_none(), "no redirect: {url}");
        assert!(
            answer
                .header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
    }
    assert_eq!(emulator.stats().codes_issued, 0, "no code was issued");

    // The registered URI: a redirect carrying the code and the state.
    let answer = Answer::from(
        http()
            .get(emulator.authorize_url(registered, "state-42"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 302);
    let location = reqwest::Url::parse(answer.header("location").unwrap()).unwrap();
    assert_eq!(
        format!(
            "{}://{}{}",
            location.scheme(),
            location.host_str().unwrap(),
            location.path()
        ),
        registered
    );
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "state-42");
    let code = query["code"].clone();

    // The code is bound to the redirect URI of the authorize request.
    exchange(&emulator, &code, OOB)
        .await
        .assert_oauth_error(400, "invalid_grant");
    exchange(&emulator, &code, "https://app.example/other")
        .await
        .assert_oauth_error(400, "invalid_grant");
    // ... and to its client: another client id is refused before the code is looked at.
    post_token(
        &base,
        &json!({"grant_type": "authorization_code", "code": code, "redirect_uri": registered,
                "client_id": "another-app", "client_secret": emulator.client_secret().expose()}),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    assert_token_response(&exchange(&emulator, &code, registered).await, true, 5400);

    // A wrong response_type goes back to the registered URI as an error, with the state.
    let wrong = Answer::from(
        http()
            .get(
                emulator
                    .authorize_url(registered, "st")
                    .replace("response_type=code", "response_type=token"),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, 302);
    let location = wrong.header("location").unwrap();
    assert!(location.starts_with(registered), "{location}");
    assert!(
        location.contains("error=unsupported_response_type"),
        "{location}"
    );
    assert!(location.contains("state=st"), "{location}");
    assert!(!location.contains("code="), "{location}");
}

#[tokio::test]
async fn refresh_rotates_the_pair_and_any_reuse_is_rejected() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (access1, refresh1) = first_pair(&emulator).await;

    let answer = refresh(&emulator, &refresh1).await;
    assert_token_response(&answer, true, 5400);
    let body = answer.json();
    let access2 = body["access_token"].as_str().unwrap().to_owned();
    let refresh2 = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(access2, access1);
    assert_ne!(refresh2, refresh1);

    // The used refresh token is dead, and stays dead.
    refresh(&emulator, &refresh1)
        .await
        .assert_oauth_error(400, "invalid_grant");
    refresh(&emulator, &refresh1)
        .await
        .assert_oauth_error(400, "invalid_grant");

    // Its successor works once, and its own successor is the next in the chain.
    let answer = refresh(&emulator, &refresh2).await;
    assert_token_response(&answer, true, 5400);
    let refresh3 = answer.json()["refresh_token"].as_str().unwrap().to_owned();

    // Any use consumes it, even one refused for a wrong client secret.
    post_token(
        emulator.base_url(),
        &json!({"grant_type": "refresh_token", "refresh_token": refresh3,
                "client_id": emulator.client_id(), "client_secret": "wrong"}),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    refresh(&emulator, &refresh3)
        .await
        .assert_oauth_error(400, "invalid_grant");

    // Refreshed tokens belong to the same user; earlier access tokens live until they expire.
    let info = token_info(emulator.base_url(), &access2).await;
    assert_eq!(info.json()["resource_owner_id"], EMULATED_USER_ID);
    assert_eq!(token_info(emulator.base_url(), &access1).await.status, 200);

    let stats = emulator.stats();
    assert_eq!(stats.successful_refreshes, 2);
    assert_eq!(stats.failed_refreshes, 4);
    assert_eq!(stats.token_requests.refresh_token, 6);
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 6);
    assert_eq!(emulator.successful_refreshes(), 2);
}

#[tokio::test]
async fn client_credentials_get_an_access_token_and_no_refresh_token() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let answer = service_token(&emulator).await;
    assert_token_response(&answer, false, 5400);
    let access = answer.json()["access_token"].as_str().unwrap().to_owned();
    let info = token_info(emulator.base_url(), &access).await;
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["resource_owner_id"], Value::Null, "no user");
    assert_eq!(info.json()["application"]["uid"], emulator.client_id());

    // Asking again simply gives another token.
    let again = service_token(&emulator).await;
    assert_ne!(again.json()["access_token"], access.as_str());
    post_token(
        emulator.base_url(),
        &json!({"grant_type": "client_credentials", "client_id": emulator.client_id(),
                "client_secret": "not-it"}),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
}

#[tokio::test]
async fn token_info_reports_live_tokens_and_sees_them_expire() {
    let emulator =
        start_emulator(EmulatorConfig::generated().with_access_ttl(Duration::from_secs(3))).await;
    let code = code_for(&emulator).await;
    let answer = exchange(&emulator, &code, OOB).await;
    assert_token_response(&answer, true, 3);
    let body = answer.json();
    let access = body["access_token"].as_str().unwrap();

    let info = token_info(emulator.base_url(), access).await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert_eq!(info.header("cache-control"), Some("no-store"));
    let details = info.json();
    assert_eq!(details["resource_owner_id"], EMULATED_USER_ID);
    assert_eq!(details["scopes"], json!([]));
    assert!(details["expires_in_seconds"].as_u64().unwrap() <= 3);
    assert_eq!(details["application"]["uid"], emulator.client_id());
    assert_eq!(details["created_at"], body["created_at"]);

    tokio::time::sleep(Duration::from_millis(3300)).await;
    let expired = token_info(emulator.base_url(), access).await;
    expired.assert_oauth_error(401, "invalid_token");
    assert!(
        expired
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    // The refresh token outlives the access token.
    assert_token_response(
        &refresh(&emulator, body["refresh_token"].as_str().unwrap()).await,
        true,
        3,
    );

    token_info(emulator.base_url(), "never-issued")
        .await
        .assert_oauth_error(401, "invalid_token");
    let anonymous = Answer::from(
        http()
            .get(format!("{}/oauth/token/info", emulator.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    anonymous.assert_oauth_error(401, "invalid_token");
}

#[tokio::test]
async fn revoking_either_token_kills_the_pair_and_unknown_tokens_get_200() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let base = emulator.base_url().to_owned();

    // Revoke by access token: both die.
    let (access, refresh_token) = first_pair(&emulator).await;
    let answer = revoke(&base, &with_client(&emulator, json!({"token": access}))).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    token_info(&base, &access)
        .await
        .assert_oauth_error(401, "invalid_token");
    refresh(&emulator, &refresh_token)
        .await
        .assert_oauth_error(400, "invalid_grant");

    // Revoke by refresh token (form-encoded, as RFC 7009 shows it): both die.
    let (access, refresh_token) = first_pair(&emulator).await;
    let response = http()
        .post(format!("{base}/oauth/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={refresh_token}&token_type_hint=refresh_token&client_id={}&client_secret={}",
            emulator.client_id(),
            emulator.client_secret().expose()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    token_info(&base, &access)
        .await
        .assert_oauth_error(401, "invalid_token");
    refresh(&emulator, &refresh_token)
        .await
        .assert_oauth_error(400, "invalid_grant");

    // Unknown (or already revoked) tokens: 200 as well.
    for token in ["never-issued", access.as_str()] {
        let answer = revoke(&base, &with_client(&emulator, json!({"token": token}))).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    // Only the application may revoke, and it must name a token.
    revoke(
        &base,
        &json!({"token": "x", "client_id": emulator.client_id(), "client_secret": "no"}),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    revoke(&base, &client_fields(&emulator))
        .await
        .assert_oauth_error(400, "invalid_request");
    assert_eq!(emulator.stats().revoke_requests, 6);
}

/// A multipart body as `curl -F` builds it.
fn multipart(boundary: &str, fields: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

#[tokio::test]
async fn every_body_encoding_and_basic_auth_are_accepted() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let base = emulator.base_url().to_owned();
    let id = emulator.client_id().to_owned();
    let secret = emulator.client_secret().expose().to_owned();
    let send = |content_type: &'static str, body: String, basic: Option<(String, String)>| {
        let base = base.clone();
        async move {
            let mut request = http()
                .post(format!("{base}/oauth/token"))
                .header("content-type", content_type)
                .body(body);
            if let Some((user, password)) = basic {
                let encoded = BASE64_STANDARD.encode(format!("{user}:{password}"));
                request = request.header("authorization", format!("Basic {encoded}"));
            }
            Answer::from(request.send().await.unwrap()).await
        }
    };
    let boundary = "------------------------d74496d66958873e";
    let multipart_type = "multipart/form-data; boundary=------------------------d74496d66958873e";

    // client_credentials in each encoding, credentials in the body.
    let fields = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let json_body =
        json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret});
    for (content_type, body) in [
        ("application/json", json_body.to_string()),
        ("application/x-www-form-urlencoded", form(&fields)),
        ("multipart/form-data", String::new()),
    ] {
        let (content_type, body) = if content_type == "multipart/form-data" {
            (multipart_type, multipart(boundary, &fields))
        } else {
            (content_type, body)
        };
        assert_token_response(&send(content_type, body, None).await, false, 5400);
    }

    // Credentials in HTTP Basic, with each encoding of the rest.
    let basic = Some((id.clone(), secret.clone()));
    let grant_only = [("grant_type", "client_credentials")];
    assert_token_response(
        &send(
            "application/x-www-form-urlencoded",
            form(&grant_only),
            basic.clone(),
        )
        .await,
        false,
        5400,
    );
    assert_token_response(
        &send(
            "application/json",
            r#"{"grant_type":"client_credentials"}"#.into(),
            basic.clone(),
        )
        .await,
        false,
        5400,
    );
    assert_token_response(
        &send(
            multipart_type,
            multipart(boundary, &grant_only),
            basic.clone(),
        )
        .await,
        false,
        5400,
    );

    // The other grants through the other encodings: a code by multipart (curl -F), its
    // refresh token by form with Basic.
    let code = code_for(&emulator).await;
    let answer = send(
        multipart_type,
        multipart(
            boundary,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("code", &code),
                ("redirect_uri", OOB),
            ],
        ),
        None,
    )
    .await;
    assert_token_response(&answer, true, 5400);
    let refresh_token = answer.json()["refresh_token"].as_str().unwrap().to_owned();
    let answer = send(
        "application/x-www-form-urlencoded",
        form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ]),
        basic.clone(),
    )
    .await;
    assert_token_response(&answer, true, 5400);

    // Refusals: a wrong Basic secret (with a Basic challenge), two authentication methods,
    // an unreadable Basic header, an unknown content type, a repeated parameter.
    let wrong = send(
        "application/x-www-form-urlencoded",
        form(&grant_only),
        Some((id.clone(), "wrong".into())),
    )
    .await;
    wrong.assert_oauth_error(401, "invalid_client");
    assert!(
        wrong
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    send(
        "application/x-www-form-urlencoded",
        form(&fields),
        basic.clone(),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    let garbled = Answer::from(
        http()
            .post(format!("{base}/oauth/token"))
            .header("authorization", "Basic %%%")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&grant_only))
            .send()
            .await
            .unwrap(),
    )
    .await;
    garbled.assert_oauth_error(401, "invalid_client");
    send(
        "text/plain",
        "grant_type=client_credentials".into(),
        basic.clone(),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    send(
        "application/x-www-form-urlencoded",
        "grant_type=client_credentials&grant_type=client_credentials".into(),
        basic,
    )
    .await
    .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn token_errors_follow_rfc_6749_and_never_echo_secrets() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let base = emulator.base_url().to_owned();
    let cases = [
        (client_fields(&emulator), 400, "invalid_request"),
        (
            with_client(&emulator, json!({"grant_type": "password"})),
            400,
            "unsupported_grant_type",
        ),
        (
            json!({"grant_type": "client_credentials"}),
            401,
            "invalid_client",
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": emulator.client_id()}),
            401,
            "invalid_client",
        ),
        (
            with_client(
                &emulator,
                json!({"grant_type": "authorization_code", "redirect_uri": OOB}),
            ),
            400,
            "invalid_request",
        ),
        (
            with_client(
                &emulator,
                json!({"grant_type": "authorization_code", "code": "c0de-canary"}),
            ),
            400,
            "invalid_request",
        ),
        (
            with_client(
                &emulator,
                json!({"grant_type": "authorization_code", "code": "c0de-canary", "redirect_uri": OOB}),
            ),
            400,
            "invalid_grant",
        ),
        (
            with_client(&emulator, json!({"grant_type": "refresh_token"})),
            400,
            "invalid_request",
        ),
        (
            with_client(
                &emulator,
                json!({"grant_type": "refresh_token", "refresh_token": "rt-canary"}),
            ),
            400,
            "invalid_grant",
        ),
    ];
    for (body, status, error) in cases {
        let answer = post_token(&base, &body).await;
        answer.assert_oauth_error(status, error);
        assert!(!answer.text.contains("canary"), "{}", answer.text);
        assert!(
            !answer.text.contains(emulator.client_secret().expose()),
            "{}",
            answer.text
        );
    }
    let not_json = Answer::from(
        http()
            .post(format!("{base}/oauth/token"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    not_json.assert_oauth_error(400, "invalid_request");
    assert_eq!(emulator.stats().token_requests.total, 10);
    assert_eq!(emulator.stats().token_requests.other, 3);
}

#[tokio::test]
async fn status_faults_answer_429_or_5xx_with_retry_after_and_consume_nothing() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (_, refresh_token) = first_pair(&emulator).await;
    emulator
        .arm(Fault::Status(StatusFault {
            code: 503,
            retry_after_secs: Some(7),
            times: Some(1),
            grant_type: Some(GrantType::RefreshToken),
        }))
        .unwrap();

    // Another grant passes untouched.
    let other = service_token(&emulator).await;
    assert_eq!(other.status, 200);

    let faulted = refresh(&emulator, &refresh_token).await;
    assert_eq!(faulted.status, 503, "{}", faulted.text);
    assert_eq!(faulted.header("retry-after"), Some("7"));
    // One-shot: disarmed, and the refresh token was not consumed.
    assert!(emulator.faults().is_empty());
    assert_token_response(&refresh(&emulator, &refresh_token).await, true, 5400);

    emulator
        .arm(Fault::Status(StatusFault {
            code: 429,
            retry_after_secs: Some(30),
            times: Some(2),
            grant_type: None,
        }))
        .unwrap();
    for _ in 0..2 {
        let limited = service_token(&emulator).await;
        assert_eq!(limited.status, 429);
        assert_eq!(limited.header("retry-after"), Some("30"));
        assert_eq!(limited.header("x-rate-limit-remaining"), Some("0"));
        assert!(limited.header("x-rate-limit-reset").is_some());
    }
    let after = service_token(&emulator).await;
    assert_eq!(after.status, 200);
    assert_eq!(emulator.stats().faults_applied.status, 3);
}

#[tokio::test]
async fn delay_faults_hold_the_answer_after_processing_the_request() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (_, refresh_token) = first_pair(&emulator).await;
    emulator
        .arm(Fault::Delay(DelayFault {
            ms: 5_000,
            times: Some(1),
            grant_type: Some(GrantType::RefreshToken),
        }))
        .unwrap();
    // A caller that gives up long before the answer...
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = impatient
        .post(format!("{}/oauth/token", emulator.base_url()))
        .json(&with_client(
            &emulator,
            json!({"grant_type": "refresh_token", "refresh_token": refresh_token}),
        ))
        .send()
        .await
        .expect_err("no answer within 300 ms");
    assert!(error.is_timeout(), "{error}");
    // ... has still used its refresh token: the request was processed before the delay.
    assert_eq!(emulator.successful_refreshes(), 1);
    refresh(&emulator, &refresh_token)
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert_eq!(emulator.stats().faults_applied.delay, 1);
}

#[tokio::test]
async fn the_lost_response_fault_consumes_the_refresh_token_and_sends_nothing() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (_, refresh_token) = first_pair(&emulator).await;
    emulator
        .arm(Fault::DropAfterRefresh(DropAfterRefreshFault {
            times: Some(1),
        }))
        .unwrap();
    let error = http()
        .post(format!("{}/oauth/token", emulator.base_url()))
        .json(&with_client(
            &emulator,
            json!({"grant_type": "refresh_token", "refresh_token": refresh_token}),
        ))
        .send()
        .await
        .expect_err("the connection closes without an answer");
    assert!(!error.is_timeout(), "{error}");
    let stats = emulator.stats();
    assert_eq!(stats.successful_refreshes, 1, "the refresh was processed");
    assert_eq!(stats.access_tokens_issued, 2, "a new pair was issued");
    assert_eq!(stats.faults_applied.drop_after_refresh, 1);
    assert_eq!(
        stats.token_requests.refresh_token, 1,
        "one request, no retry"
    );
    assert!(emulator.faults().is_empty(), "one-shot");

    // The old refresh token is gone; nothing else is affected.
    refresh(&emulator, &refresh_token)
        .await
        .assert_oauth_error(400, "invalid_grant");
    let (_, next) = first_pair(&emulator).await;
    assert_token_response(&refresh(&emulator, &next).await, true, 5400);
}

#[tokio::test]
async fn the_control_endpoint_arms_faults_and_reports_counters() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let base = emulator.base_url().to_owned();

    let armed = set_faults(
        &base,
        &json!({"status": {"code": 502, "times": 1}, "drop_after_refresh": {"times": 1}}),
    )
    .await;
    assert_eq!(armed.status, 200, "{}", armed.text);
    assert_eq!(armed.json()["status"]["code"], 502);
    assert_eq!(armed.json()["drop_after_refresh"]["times"], 1);
    let shown = Answer::from(
        http()
            .get(format!("{base}/_emulator/faults"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(shown.json(), armed.json());
    assert_eq!(
        emulator.faults().list().len(),
        2,
        "the same state in process"
    );

    let faulted = service_token(&emulator).await;
    assert_eq!(faulted.status, 502);

    // Bad updates change nothing.
    for bad in [
        json!({"status": {"code": 200}}),
        json!({"delay": {"ms": 1, "times": 0}}),
        json!({"dealy": {"ms": 1}}),
    ] {
        let answer = set_faults(&base, &bad).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.text);
        assert_eq!(answer.error(), "invalid_request");
    }
    // null clears one kind; DELETE clears all.
    let cleared = set_faults(&base, &json!({"drop_after_refresh": null})).await;
    assert_eq!(cleared.json()["drop_after_refresh"], Value::Null);
    set_faults(&base, &json!({"delay": {"ms": 1}})).await;
    let deleted = http()
        .delete(format!("{base}/_emulator/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(emulator.faults().is_empty());

    let stats = stats(&base).await;
    assert_eq!(stats["token_requests"]["client_credentials"], 1);
    assert_eq!(stats["token_requests"]["total"], 1);
    assert_eq!(stats["faults_applied"]["status"], 1);
    assert_eq!(stats, serde_json::to_value(emulator.stats()).unwrap());
    let reset = http()
        .delete(format!("{base}/_emulator/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    assert_eq!(emulator.stats().token_requests.total, 0);
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let emulator = start_emulator(
        EmulatorConfig::generated().with_client("dbg-app", Secret::new("dbg-secret-canary")),
    )
    .await;
    let shown = format!("{emulator:?}");
    assert!(shown.contains("dbg-app"));
    assert!(!shown.contains("dbg-secret-canary"), "{shown}");
}
