//! The server as an OAuth resource server (`--auth-issuer`), against an issuer written for
//! the tests (`common::test_issuer`): discovery (RFC 8414, else OpenID) and its refusals at
//! start-up; every bad access token minted on purpose and refused with `invalid_token`; the
//! 401 and 403 challenges and the RFC 9728 metadata; unknown key ids refetching the keys once;
//! a rotated key accepted after that refetch; two users whose stored pairs stay apart
//! through every tool and transport; and no access token in the log, at trace level.

use crate::common::{
    authed_clients,
    raw_mcp::{self, Answer, INITIALIZE, RawSession, RawSseSession},
    test_issuer::{self, Discovery, SigningKey, TestIssuer},
    *,
};
use reqwest::StatusCode;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};

/// The canonical URL of the MCP endpoint the server is told it has.
pub(crate) const PUBLIC_URL: &str = "https://mcp.example.test/mcp";
const METADATA_URL: &str = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp";

fn launch(issuer: &TestIssuer, upstream: &str) -> Launch {
    Launch::against(upstream)
        .env("MCP_AUTH_ISSUER", &issuer.url)
        .env("MCP_PUBLIC_URL", PUBLIC_URL)
}

async fn resource_server(issuer: &TestIssuer, upstream: &Upstream) -> HttpServer {
    init();
    HttpServer::start(&launch(issuer, &upstream.url)).await
}

/// `initialize` on `/mcp` with `token` as the bearer (none if `None`).
async fn initialize(server: &HttpServer, token: Option<&str>) -> Answer {
    raw_mcp::post_mcp(
        &reqwest::Client::new(),
        &server.mcp_url(),
        None,
        token,
        INITIALIZE,
    )
    .await
}

fn challenge(answer: &Answer) -> String {
    answer
        .headers
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("a challenge in {answer:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

fn assert_invalid_token(what: &str, answer: &Answer) {
    assert_eq!(
        answer.status,
        StatusCode::UNAUTHORIZED,
        "{what}: {answer:?}"
    );
    let challenge = challenge(answer);
    assert!(challenge.starts_with("Bearer "), "{what}: {challenge}");
    assert!(
        challenge.contains("error=\"invalid_token\""),
        "{what}: {challenge}"
    );
    assert!(
        challenge.contains(&format!("resource_metadata=\"{METADATA_URL}\"")),
        "{what}: {challenge}"
    );
}

fn assert_served(what: &str, answer: &Answer) {
    assert_eq!(answer.status, StatusCode::OK, "{what}: {answer:?}");
    assert!(
        answer.message()["result"]["serverInfo"].is_object(),
        "{what}: {answer:?}"
    );
}

// ───────────────────────────── discovery and metadata ─────────────────────────────

#[tokio::test]
async fn the_metadata_and_the_challenges_tell_a_client_where_to_get_a_token() {
    let issuer = TestIssuer::start().await;
    let upstream = Upstream::start().await;
    init();
    let server = HttpServer::start(
        &launch(&issuer, &upstream.url)
            .arg("--auth-scope")
            .arg("procore.tokens"),
    )
    .await;
    let http = reqwest::Client::new();
    let expected = json!({
        "resource": PUBLIC_URL,
        "authorization_servers": [issuer.url],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["procore.tokens"],
    });
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let answer = raw_mcp::read(
            http.get(format!("{}{path}", server.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {answer:?}");
        let document: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(document, expected, "{path}");
    }
    // This server is not the authorization server: a client must not think it is.
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-protected-resource/elsewhere",
    ] {
        let status = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }

    // No token: 401 naming the metadata and the scope, without an error code.
    let answer = initialize(&server, None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    assert_eq!(
        challenge(&answer),
        format!("Bearer scope=\"procore.tokens\", resource_metadata=\"{METADATA_URL}\"")
    );
    for (method, path) in [
        (reqwest::Method::GET, "/mcp"),
        (reqwest::Method::DELETE, "/mcp"),
        (reqwest::Method::GET, "/sse"),
        (reqwest::Method::POST, "/message?sessionId=abc"),
        (reqwest::Method::GET, "/nowhere"),
    ] {
        let answer = raw_mcp::read(
            http.request(method.clone(), format!("{}{path}", server.base))
                .header("accept", "application/json, text/event-stream")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(challenge(&answer).contains(METADATA_URL), "{method} {path}");
    }

    // A valid token without the scope: 403 insufficient_scope, naming the scope.
    let mut claims = issuer.claims("alice", PUBLIC_URL);
    claims["scope"] = json!("openid");
    let answer = initialize(&server, Some(&issuer.mint(&claims))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{answer:?}");
    let refused = challenge(&answer);
    assert!(
        refused.contains("error=\"insufficient_scope\""),
        "{refused}"
    );
    assert!(refused.contains("scope=\"procore.tokens\""), "{refused}");
    // With it (as a list in `scp`, as Entra sends it), served.
    claims.as_object_mut().unwrap().remove("scope");
    claims["scp"] = json!(["procore.tokens"]);
    assert_served(
        "scp",
        &initialize(&server, Some(&issuer.mint(&claims))).await,
    );
    server.stop().await;
}

#[tokio::test]
async fn without_oauth_the_well_known_paths_answer_404_even_behind_a_static_token() {
    let upstream = Upstream::start().await;
    init();
    for launch in [
        Launch::against(&upstream.url),
        Launch::against(&upstream.url).env("MCP_AUTH_TOKEN", "static-token-canary-0123"),
    ] {
        let server = HttpServer::start(&launch).await;
        for path in [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ] {
            let status = reqwest::get(format!("{}{path}", server.base))
                .await
                .unwrap()
                .status();
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn openid_discovery_is_used_when_there_is_no_oauth_metadata() {
    let issuer = TestIssuer::start_with(Discovery::OpenIdOnly).await;
    let upstream = Upstream::start().await;
    let server = resource_server(&issuer, &upstream).await;
    let token = issuer.mint(&issuer.claims("alice", PUBLIC_URL));
    assert_served("openid", &initialize(&server, Some(&token)).await);
    server.stop().await;
}

#[tokio::test]
async fn an_issuer_that_names_another_or_cannot_be_reached_stops_the_start() {
    init();
    let issuer = TestIssuer::start().await;
    issuer.name_issuer("https://impostor.example");
    let unreachable = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    for (url, expected) in [
        (issuer.url.as_str(), "impostor.example"),
        (unreachable.as_str(), "fetching"),
    ] {
        let output = Launch::default()
            .arg("--transport")
            .arg("http")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("MCP_AUTH_ISSUER", url)
            .env("MCP_PUBLIC_URL", PUBLIC_URL)
            .command()
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains("--auth-issuer"), "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(!stderr.contains("listening"), "{stderr}");
    }
}

#[tokio::test]
async fn an_issuer_with_a_static_token_or_without_a_public_url_is_refused() {
    for (launch, expected) in [
        (
            Launch::default()
                .arg("--transport")
                .arg("http")
                .env("MCP_AUTH_ISSUER", "https://id.example")
                .env("MCP_PUBLIC_URL", PUBLIC_URL)
                .env("MCP_AUTH_TOKEN", "static-token-canary-0123"),
            "choose one",
        ),
        (
            Launch::default()
                .arg("--transport")
                .arg("http")
                .env("MCP_AUTH_ISSUER", "https://id.example"),
            "--public-url",
        ),
        (
            Launch::default()
                .arg("--transport")
                .arg("http")
                .env("MCP_AUTH_ISSUER", "http://id.example")
                .env("MCP_PUBLIC_URL", PUBLIC_URL),
            "plain http://",
        ),
    ] {
        let output = launch.command().output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(!stderr.contains("static-token-canary"), "{stderr}");
    }
}

// ───────────────────────────── bad tokens ─────────────────────────────

/// Every kind of bad token the issuer can be made to mint, by name.
fn bad_tokens(issuer: &TestIssuer) -> Vec<(&'static str, String)> {
    let good = issuer.claims("mallory", PUBLIC_URL);
    let with = |name: &str, value: Value| {
        let mut claims = good.clone();
        claims[name] = value;
        claims
    };
    let rsa = &issuer.key;
    let flip = |token: String, at: usize| {
        let mut bytes = token.into_bytes();
        let index = bytes.len() - at;
        bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    let header_of = |alg: &str| json!({"alg": alg, "typ": "JWT", "kid": rsa.kid()});
    let good_token = issuer.mint(&good);
    let payload_start = good_token.find('.').unwrap() + 1;
    let mut other_payload = good_token.clone().into_bytes();
    other_payload[payload_start + 4] ^= 0x01;
    vec![
        (
            "alg none",
            test_issuer::compact(&header_of("none"), &good, |_| Vec::new()),
        ),
        (
            "alg none with a signature",
            test_issuer::compact(&header_of("none"), &good, |input| rsa.sign(input)),
        ),
        (
            "HS256 keyed with the public key",
            test_issuer::compact(&header_of("HS256"), &good, |input| {
                test_issuer::hs256(&rsa.public_bytes(), input)
            }),
        ),
        (
            "HS256 keyed with the JWK",
            test_issuer::compact(&header_of("HS256"), &good, |input| {
                test_issuer::hs256(rsa.jwk().to_string().as_bytes(), input)
            }),
        ),
        (
            "RS256 header on an ES256 signature",
            test_issuer::compact(&header_of("ES256"), &good, |input| rsa.sign(input)),
        ),
        (
            "wrong iss",
            issuer.mint(&with("iss", json!("https://other.example"))),
        ),
        (
            "iss with a trailing slash",
            issuer.mint(&with("iss", json!(format!("{}/", issuer.url)))),
        ),
        (
            "wrong aud",
            issuer.mint(&with("aud", json!("https://other.example/mcp"))),
        ),
        (
            "aud list without us",
            issuer.mint(&with("aud", json!(["a", "b"]))),
        ),
        ("no aud", {
            let mut claims = good.clone();
            claims.as_object_mut().unwrap().remove("aud");
            issuer.mint(&claims)
        }),
        (
            "expired beyond the leeway",
            issuer.mint(&with("exp", json!(test_issuer::now() - 120))),
        ),
        ("no exp", {
            let mut claims = good.clone();
            claims.as_object_mut().unwrap().remove("exp");
            issuer.mint(&claims)
        }),
        (
            "nbf beyond the leeway",
            issuer.mint(&with("nbf", json!(test_issuer::now() + 120))),
        ),
        ("no sub", {
            let mut claims = good.clone();
            claims.as_object_mut().unwrap().remove("sub");
            issuer.mint(&claims)
        }),
        (
            "a flipped byte in the signature",
            flip(good_token.clone(), 3),
        ),
        (
            "a flipped bit in the claims",
            String::from_utf8(other_payload).unwrap(),
        ),
        (
            "signed by an unpublished key under a published kid",
            issuer.mint_with(
                &match SigningKey::p256("x") {
                    SigningKey::Es256 { pair, .. } => SigningKey::Es256 {
                        kid: "ec-1".into(),
                        pair,
                    },
                    other => other,
                },
                &good,
            ),
        ),
        (
            "two parts",
            good_token.rsplit_once('.').unwrap().0.to_owned(),
        ),
        ("garbage", "not-a-jwt-at-all".to_owned()),
        ("base64 garbage", "eyJ.eyJ.AAAA".to_owned()),
    ]
}

#[tokio::test]
async fn every_bad_token_is_refused_as_invalid_and_good_ones_are_served() {
    let issuer = TestIssuer::start().await;
    let upstream = Upstream::start().await;
    let server = resource_server(&issuer, &upstream).await;
    let fetched = issuer.jwks_fetches();
    assert_eq!(fetched, 1, "the keys are fetched once at start-up");
    for (what, token) in bad_tokens(&issuer) {
        assert_invalid_token(what, &initialize(&server, Some(&token)).await);
    }
    // Two credentials, or another scheme, are refused too.
    let good = issuer.mint(&issuer.claims("alice", PUBLIC_URL));
    let http = reqwest::Client::new();
    for headers in [
        vec![format!("Bearer {good}"), format!("Bearer {good}")],
        vec![format!("Basic {good}")],
    ] {
        let mut request = http
            .post(server.mcp_url())
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(INITIALIZE);
        for header in &headers {
            request = request.header("authorization", header);
        }
        let answer = raw_mcp::read(request.send().await.unwrap()).await;
        assert_invalid_token("two credentials or Basic", &answer);
    }
    // A token in the URL is refused, even a good one.
    let answer = raw_mcp::read(
        http.post(format!("{}?access_token={good}", server.mcp_url()))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(INITIALIZE)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{answer:?}");
    assert!(challenge(&answer).contains("invalid_request"), "{answer:?}");

    // Good tokens: RS256 and ES256, an audience list, and expiry and nbf within the leeway.
    let mut list = issuer.claims("alice", PUBLIC_URL);
    list["aud"] = json!(["other", PUBLIC_URL]);
    let mut skewed = issuer.claims("alice", PUBLIC_URL);
    skewed["exp"] = json!(test_issuer::now() - 30);
    skewed["nbf"] = json!(test_issuer::now() + 30);
    let ec = issuer
        .published()
        .into_iter()
        .find(|key| key.alg() == "ES256")
        .unwrap();
    for (what, token) in [
        ("RS256", good.clone()),
        (
            "ES256",
            issuer.mint_with(&ec, &issuer.claims("alice", PUBLIC_URL)),
        ),
        ("audience list", issuer.mint(&list)),
        ("within the leeway", issuer.mint(&skewed)),
    ] {
        assert_served(what, &initialize(&server, Some(&token)).await);
    }
    assert_eq!(
        issuer.jwks_fetches(),
        fetched,
        "no bad token with a known key id made the server fetch the keys"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_key_id_refetches_the_keys_once_and_a_rotated_key_is_then_accepted() {
    let issuer = TestIssuer::start().await;
    let upstream = Upstream::start().await;
    let server = resource_server(&issuer, &upstream).await;
    assert_eq!(issuer.jwks_fetches(), 1);

    // The issuer rotates: a new P-256 key replaces both old ones.
    let rotated = SigningKey::p256("ec-2");
    issuer.publish(vec![rotated.clone()]);
    let claims = issuer.claims("alice", PUBLIC_URL);
    let answer = initialize(&server, Some(&issuer.mint_with(&rotated, &claims))).await;
    assert_served("the rotated key", &answer);
    assert_eq!(issuer.jwks_fetches(), 2, "one refetch for the new kid");

    // Unknown key ids: refused, and no more fetches within the interval, however many.
    let stranger = SigningKey::p256("nobody-knows-me");
    for n in 0..5 {
        let stranger = match &stranger {
            SigningKey::Es256 { pair, .. } => SigningKey::Es256 {
                kid: format!("made-up-{n}"),
                pair: pair.clone(),
            },
            other => other.clone(),
        };
        let answer = initialize(&server, Some(&issuer.mint_with(&stranger, &claims))).await;
        assert_invalid_token("unknown kid", &answer);
    }
    // The retired key's tokens are refused too.
    let answer = initialize(&server, Some(&issuer.mint(&claims))).await;
    assert_invalid_token("retired key", &answer);
    assert_eq!(issuer.jwks_fetches(), 2, "the refetch is rate-limited");
    // The rotated key still works.
    let answer = initialize(&server, Some(&issuer.mint_with(&rotated, &claims))).await;
    assert_served("the rotated key, again", &answer);
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_key_id_on_a_fresh_server_is_refused_after_one_refetch() {
    let issuer = TestIssuer::start().await;
    let upstream = Upstream::start().await;
    let server = resource_server(&issuer, &upstream).await;
    let stranger = SigningKey::p256("unknown-kid");
    let claims = issuer.claims("alice", PUBLIC_URL);
    for _ in 0..3 {
        let answer = initialize(&server, Some(&issuer.mint_with(&stranger, &claims))).await;
        assert_invalid_token("unknown kid", &answer);
    }
    assert_eq!(issuer.jwks_fetches(), 2, "start-up, then one refetch");
    server.stop().await;
}

// ───────────────────────────── one user's pairs are that user's ─────────────────────────────

async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .expect("tools/call answered")
}

const BOB_BODY: &str = r#"{"access_token":"at-bob-canary-77","token_type":"bearer","expires_in":5400,"refresh_token":"rt-bob-canary-77","created_at":1484786897}"#;

/// The bearer of the last `GET /oauth/token/info` the upstream received.
fn last_info_bearer(upstream: &Upstream) -> String {
    upstream
        .requests()
        .iter()
        .rev()
        .find(|request| request.path == "/oauth/token/info")
        .and_then(|request| request.header("authorization"))
        .expect("a token info request")
}

#[tokio::test]
async fn two_users_never_see_each_others_pairs_through_any_tool() {
    let issuer = TestIssuer::start().await;
    let upstream = Upstream::start().await;
    let dir = StoreDir::new();
    init();
    let server = HttpServer::start(
        &launch(&issuer, &upstream.url)
            .arg("--token-store")
            .arg(dir.file().to_str().unwrap()),
    )
    .await;
    let alice_token = issuer.mint(&issuer.claims("alice", PUBLIC_URL));
    let bob_token = issuer.mint(&issuer.claims("bob", PUBLIC_URL));
    let alice = authed_clients::legacy_client(&server, &alice_token).await;
    let bob_clients = [
        authed_clients::legacy_client(&server, &bob_token).await,
        authed_clients::modern_client(&server, &bob_token).await,
        authed_clients::sse_client(&server, &bob_token).await,
    ];

    // Alice obtains a pair.
    let first = call_token(&alice, authorization_code("code-alice")).await;
    assert!(!is_error(&first), "{first:?}");
    let sent = upstream.count();

    // Bob sees nothing of it, on every transport, even naming Alice's client id.
    let credentials = json!({"client_id": "cid-canary", "client_secret": "cs-canary-5e1d"});
    for bob in &bob_clients {
        for (tool, arguments) in [
            (
                TOOL,
                json!({"grant_type": "refresh_token", "client_id": "cid-canary", "client_secret": "cs-canary-5e1d"}),
            ),
            ("get_token_info", json!({})),
            ("get_token_info", json!({"client_id": "cid-canary"})),
            ("revoke_token", credentials.clone()),
            ("get_access_token", json!({})),
            ("get_access_token", json!({"client_id": "cid-canary"})),
        ] {
            let result = call(bob, tool, arguments.clone()).await;
            assert!(is_error(&result), "{tool} {arguments}: {result:?}");
            let said = text(&result);
            assert!(said.contains("holds no"), "{tool} {arguments}: {said}");
            assert!(!said.contains(fixtures::ACCESS_OUT), "{said}");
            assert!(!said.contains(fixtures::REFRESH_OUT), "{said}");
        }
    }
    assert_eq!(upstream.count(), sent, "nothing of Bob's reached Procore");

    // Alice's own access token is hers to get, from the store (nothing sent; the fixture's
    // token is long expired, so she asks for no time left).
    let hers = call(&alice, "get_access_token", json!({"min_valid_secs": 0})).await;
    assert!(!is_error(&hers), "{hers:?}");
    assert_eq!(
        hers.structured_content.as_ref().unwrap()["access_token"],
        fixtures::ACCESS_OUT
    );
    assert_eq!(upstream.count(), sent, "served from the store");

    // Bob's own pair is his, and Alice's stays hers.
    upstream.push(Reply::new(200, BOB_BODY));
    let bobs = call_token(&bob_clients[0], authorization_code("code-bob")).await;
    assert!(!is_error(&bobs), "{bobs:?}");
    let info = call(&bob_clients[2], "get_token_info", json!({})).await;
    assert!(!is_error(&info), "{info:?}");
    assert_eq!(last_info_bearer(&upstream), "Bearer at-bob-canary-77");
    let info = call(&alice, "get_token_info", json!({})).await;
    assert!(!is_error(&info), "{info:?}");
    assert_eq!(
        last_info_bearer(&upstream),
        format!("Bearer {}", fixtures::ACCESS_OUT)
    );
    // Bob revokes his own; Alice's pair is still there.
    let revoked = call(&bob_clients[1], "revoke_token", credentials.clone()).await;
    assert!(!is_error(&revoked), "{revoked:?}");
    let revoke = upstream
        .requests()
        .into_iter()
        .rev()
        .find(|request| request.path == "/oauth/revoke")
        .unwrap();
    let body = String::from_utf8_lossy(&revoke.body).into_owned();
    assert!(body.contains("token=at-bob-canary-77"), "{body}");
    let refreshed = call(
        &alice,
        TOOL,
        json!({"grant_type": "refresh_token", "client_id": "cid-canary", "client_secret": "cs-canary-5e1d"}),
    )
    .await;
    assert!(!is_error(&refreshed), "{refreshed:?}");
    let refresh = upstream.requests().last().unwrap().json();
    assert_eq!(
        refresh["refresh_token"],
        fixtures::REFRESH_OUT,
        "Alice's own"
    );

    // The store keeps each pair under its user: issuer and subject.
    let stored = std::fs::read_to_string(dir.file()).unwrap();
    assert!(
        stored.contains(&format!("{}#alice", issuer.url)),
        "{stored}"
    );
    for client in bob_clients {
        client.cancel().await.unwrap();
    }
    alice.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_streamable_http_session_belongs_to_the_user_who_opened_it() {
    let issuer = TestIssuer::start().await;
    let upstream = Upstream::start().await;
    let server = resource_server(&issuer, &upstream).await;
    let alice_token = issuer.mint(&issuer.claims("alice", PUBLIC_URL));
    let bob_token = issuer.mint(&issuer.claims("bob", PUBLIC_URL));
    let session = RawSession::open(&server, Some(&alice_token)).await;
    let ping = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;
    let as_bob = raw_mcp::post_mcp(
        &session.http,
        &session.url,
        Some(&session.id),
        Some(&bob_token),
        ping,
    )
    .await;
    assert_eq!(as_bob.status, StatusCode::NOT_FOUND, "{as_bob:?}");
    let answer = session.post(ping).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.message()["id"], 7, "{answer:?}");
    // Bob's own session works.
    let bobs = RawSession::open(&server, Some(&bob_token)).await;
    assert_eq!(bobs.post(ping).await.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn an_old_sse_session_belongs_to_the_user_who_opened_it() {
    let issuer = TestIssuer::start().await;
    let upstream = Upstream::start().await;
    let server = resource_server(&issuer, &upstream).await;
    let alice_token = issuer.mint(&issuer.claims("alice", PUBLIC_URL));
    let bob_token = issuer.mint(&issuer.claims("bob", PUBLIC_URL));
    let mut session = RawSseSession::open_with_token(&server, &alice_token).await;
    session.initialize_with_token(&server, &alice_token).await;
    let ping = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;
    let answer = raw_mcp::post_message_with_token(&server, &session.id, &bob_token, ping).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{answer:?}");
    let answer = raw_mcp::post_message_with_token(&server, &session.id, &alice_token, ping).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    let reply = session.next_message().await.unwrap();
    assert_eq!(reply["id"], 7, "{reply}");
    server.stop().await;
}

#[tokio::test]
async fn with_a_service_scope_only_its_bearers_obtain_service_account_tokens() {
    let issuer = TestIssuer::start().await;
    let upstream = Upstream::start().await;
    init();
    let server = HttpServer::start(
        &launch(&issuer, &upstream.url)
            .arg("--service-scope")
            .arg("procore.service")
            .env("PROCORE_CLIENT_ID", "held-cid")
            .env("PROCORE_CLIENT_SECRET", fixtures::HELD_SECRET),
    )
    .await;
    let metadata: Value = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        server.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(metadata["scopes_supported"], json!(["procore.service"]));

    let user = issuer.mint(&issuer.claims("alice", PUBLIC_URL));
    let mut service_claims = issuer.claims("robot", PUBLIC_URL);
    service_claims["scope"] = json!("openid procore.service");
    let service = issuer.mint(&service_claims);
    let grant = json!({"grant_type": "client_credentials"});

    let alice = authed_clients::modern_client(&server, &user).await;
    let refused = call_token(&alice, grant.clone()).await;
    assert!(is_error(&refused), "{refused:?}");
    assert!(text(&refused).contains("--service-scope"), "{refused:?}");
    assert_eq!(upstream.count(), 0, "nothing was sent");
    // Her other grants are not affected.
    let code = call_token(&alice, authorization_code("code-alice")).await;
    assert!(!is_error(&code), "{code:?}");

    let robot = authed_clients::sse_client(&server, &service).await;
    let minted = call_token(&robot, grant).await;
    assert!(!is_error(&minted), "{minted:?}");
    let sent = upstream.requests().last().unwrap().json();
    assert_eq!(sent["grant_type"], "client_credentials");
    assert_eq!(sent["client_id"], "held-cid");
    alice.cancel().await.unwrap();
    robot.cancel().await.unwrap();
    let logs = server.stop().await;
    assert!(logs.contains("upstream=not_permitted"), "{logs}");
}

// ───────────────────────────── the log ─────────────────────────────

#[tokio::test]
async fn no_access_token_reaches_the_log_even_at_trace_level() {
    let issuer = TestIssuer::start().await;
    let upstream = Upstream::start().await;
    init();
    let server = HttpServer::start(&launch(&issuer, &upstream.url).env("RUST_LOG", "trace")).await;
    let good = issuer.mint(&issuer.claims("alice", PUBLIC_URL));
    let client = authed_clients::legacy_client(&server, &good).await;
    let result = call_token(&client, client_credentials()).await;
    assert!(!is_error(&result), "{result:?}");
    client.cancel().await.unwrap();
    let sse = authed_clients::sse_client(&server, &good).await;
    sse.cancel().await.unwrap();
    let mut presented = vec![("good", good.clone())];
    presented.extend(bad_tokens(&issuer));
    for (_, token) in &presented[1..] {
        initialize(&server, Some(token)).await;
    }
    let _ = reqwest::Client::new()
        .post(format!("{}?access_token={good}", server.mcp_url()))
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    let logs = server.stop().await;
    assert!(
        logs.contains("invalid access token"),
        "the refusals are logged"
    );
    for (what, token) in presented {
        // Neither the token nor its signature (the part that makes it a credential).
        let signature = token.rsplit('.').next().unwrap();
        for needle in [token.as_str(), signature] {
            if needle.len() >= 16 {
                assert!(!logs.contains(needle), "{what} in the log:\n{logs}");
            }
        }
    }
}
