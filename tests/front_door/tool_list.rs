//! The published tool list is part of the interface: any change to a name, schema,
//! description or annotation shows up here as a snapshot diff to review.

use crate::common::*;
use serde_json::{Value, json};

async fn published_tools(launch: &Launch) -> Value {
    init();
    let (client, _logs) = stdio_client(launch).await;
    let tools = client.list_all_tools().await.unwrap();
    client.cancel().await.unwrap();
    serde_json::to_value(tools).unwrap()
}

#[tokio::test]
async fn tool_list_without_held_credentials() {
    let tools = published_tools(&Launch::default()).await;
    assert_tool_list_snapshot("tool_list__tools_open", &tools);
}

#[tokio::test]
async fn tool_list_with_held_credentials() {
    let tools = published_tools(
        &Launch::default()
            .env("PROCORE_CLIENT_ID", "held-id")
            .env("PROCORE_CLIENT_SECRET", "held-secret"),
    )
    .await;
    assert_tool_list_snapshot("tool_list__tools_held", &tools);
}

/// Beyond the snapshot, the parts the issue fixes exactly, stated outright.
#[tokio::test]
async fn schema_mirrors_procores_input_table() {
    let tools = published_tools(&Launch::default()).await;
    let tool = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|tool| tool["name"] == TOOL)
        .unwrap();
    assert_eq!(tool["name"], "get_or_refresh_an_access_token");
    assert_eq!(tool["title"], "Get or refresh a Procore access token");
    let schema = &tool["inputSchema"];
    let properties = schema["properties"].as_object().unwrap();
    let names: Vec<&str> = properties.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "grant_type",
            "client_id",
            "client_secret",
            "code",
            "redirect_uri",
            "refresh_token"
        ],
        "exactly the six documented fields, in the documented order"
    );
    for name in [
        "grant_type",
        "client_id",
        "client_secret",
        "code",
        "redirect_uri",
        "refresh_token",
    ] {
        assert_eq!(properties[name]["type"], "string", "{name}");
        let description = properties[name]["description"].as_str().unwrap();
        assert!(
            description.len() > 60 && description.contains("e.g. "),
            "{name}: a complete description with an example"
        );
        assert!(!description.contains("..."), "{name}: nothing truncated");
    }
    assert_eq!(
        properties["grant_type"]["enum"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert!(
        properties["redirect_uri"]["description"]
            .as_str()
            .unwrap()
            .contains("urn:ietf:wg:oauth:2.0:oob")
    );
    assert_eq!(
        schema["required"],
        json!(["grant_type", "client_id", "client_secret"])
    );
    assert_eq!(schema["additionalProperties"], false);

    let annotations = &tool["annotations"];
    assert_eq!(annotations["readOnlyHint"], false);
    assert_eq!(annotations["destructiveHint"], true);
    assert_eq!(annotations["idempotentHint"], false);
    assert_eq!(annotations["openWorldHint"], true);
    let description = tool["description"].as_str().unwrap();
    assert!(description.starts_with("Get a Procore OAuth access token, or renew one"));
    // The annotations say "destructive"; the prose says why, once.
    assert_eq!(
        description.matches("work once").count(),
        1,
        "the single-use rule, said once: {description}"
    );
    assert!(
        !description.contains("Destructive"),
        "no repeat of the annotations"
    );

    let output = &tool["outputSchema"];
    for field in [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "created_at",
    ] {
        assert!(output["properties"][field].is_object(), "{field}");
    }
    assert_ne!(
        output["additionalProperties"], false,
        "other fields allowed"
    );
}
