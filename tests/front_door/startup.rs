//! Start-up refuses configurations that would be unsafe or ambiguous, with a clear message
//! and exit code 2, before serving anything.

use crate::common::*;

async fn refused(launch: Launch, expected: &str) {
    let output = launch.command().output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout");
}

#[tokio::test]
async fn plain_http_login_url_off_loopback_is_refused() {
    refused(
        Launch::default()
            .arg("--login-url")
            .arg("http://login.example.com"),
        "plain http:// on a host that is not loopback",
    )
    .await;
}

#[tokio::test]
async fn half_held_credentials_are_refused_without_printing_the_secret() {
    let launch = Launch::default().env("PROCORE_CLIENT_SECRET", "half-secret-canary");
    let output = launch.command().output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("PROCORE_CLIENT_ID"), "{stderr}");
    assert!(!stderr.contains("half-secret-canary"));
}

#[tokio::test]
async fn unknown_environment_and_bad_flags_are_refused() {
    refused(
        Launch::default().arg("--procore-env").arg("staging"),
        "invalid value 'staging'",
    )
    .await;
    refused(
        Launch::default().arg("--timeout-secs").arg("0"),
        "--timeout-secs",
    )
    .await;
    refused(
        Launch::default()
            .arg("--transport")
            .arg("http")
            .arg("--allowed-host")
            .arg("http://x/"),
        "invalid --allowed-host",
    )
    .await;
}

#[tokio::test]
async fn help_explains_the_server() {
    let output = Launch::default()
        .arg("--help")
        .command()
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for part in [
        "get_or_refresh_an_access_token",
        "--procore-env",
        "PROCORE_CLIENT_SECRET",
        "RUST_LOG",
    ] {
        assert!(help.contains(part), "{part} in --help");
    }
}

/// Registry installers and bundles pass an empty string for an optional field left blank:
/// that is the default, not an error.
#[tokio::test]
async fn empty_variables_are_unset_and_the_server_starts_with_its_defaults() {
    let mut launch = Launch::default();
    for name in [
        "MCP_TRANSPORT",
        "MCP_LISTEN",
        "PROCORE_ENV",
        "PROCORE_LOGIN_URL",
        "PROCORE_TIMEOUT_SECS",
        "PROCORE_TOKEN_STORE",
        "PROCORE_STORE_DURABILITY",
        "PROCORE_REUSE_WINDOW_SECS",
        "PROCORE_REQUEST_ENCODING",
        "PROCORE_MAX_RESPONSE_BYTES",
        "MCP_AUTH_TOKEN",
        "MCP_ALLOW_UNAUTHENTICATED",
        "PROCORE_CLIENT_ID",
        "PROCORE_CLIENT_SECRET",
    ] {
        launch = launch.env(name, "");
    }
    // stdin is closed at once: the server starts, finds no client, and exits cleanly.
    let output = launch
        .command()
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("procore-token-mcp starting"), "{stderr}");
    assert!(stderr.contains("environment=\"production\""), "{stderr}");
    assert!(stderr.contains("credentials_held=false"), "{stderr}");
}
