//! The packaging metadata agrees with itself and with the binary: `server.json` is valid
//! against the MCP Registry's schema, declares every `PROCORE_*` variable the binary reads
//! (none required, the secret marked secret), and names the same server and version as
//! `Cargo.toml`, the Dockerfile and the README; the Dockerfile and `glama.json` have the
//! shape the registry and Glama check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{collections::BTreeSet, path::Path, process::Command};

use serde_json::{Value, json};

/// The one registry name, chosen once (owner `procore-token-mcp`).
const NAME: &str = "io.github.procore-token-mcp/procore-token-mcp";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const BIN: &str = env!("CARGO_BIN_EXE_procore-token-mcp");
/// The registry's JSON Schema for `server.json`, beside the checkout (as in CI).
const SCHEMA: &str = "../shared/reference/server.schema.2025-12-11.json";

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn server_json() -> Value {
    serde_json::from_str(&read("server.json")).expect("server.json is JSON")
}

fn schema_errors(document: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(&read(SCHEMA)).expect("the schema is JSON");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the registry schema compiles");
    validator
        .iter_errors(document)
        .map(|error| format!("{error} (at {})", error.instance_path()))
        .collect()
}

#[test]
fn server_json_is_valid_against_the_registry_schema() {
    let document = server_json();
    let errors = schema_errors(&document);
    assert!(errors.is_empty(), "server.json: {errors:#?}");

    // The validator does judge: the registry's rules, broken one at a time, are caught.
    let mut long = document.clone();
    long["description"] = json!("x".repeat(101));
    let mut latest = document.clone();
    latest["packages"][1]["version"] = json!("latest");
    let mut no_transport = document.clone();
    no_transport["packages"][0]
        .as_object_mut()
        .unwrap()
        .remove("transport");
    let mut bad_name = document;
    bad_name["name"] = json!("procore-token-mcp");
    for (what, broken) in [
        ("description over 100 characters", long),
        ("package version latest", latest),
        ("package without transport", no_transport),
        ("name without a namespace", bad_name),
    ] {
        assert!(!schema_errors(&broken).is_empty(), "not caught: {what}");
    }
}

#[test]
fn one_name_and_one_version_everywhere() {
    let document = server_json();
    assert_eq!(document["name"], NAME);
    assert_eq!(
        document["version"], VERSION,
        "server.json follows Cargo.toml"
    );

    let packages = document["packages"].as_array().unwrap();
    let kinds: Vec<&str> = packages
        .iter()
        .map(|p| p["registryType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["oci", "cargo"]);
    for package in packages {
        assert_eq!(package["transport"], json!({"type": "stdio"}));
    }
    let oci = &packages[0];
    assert_eq!(
        oci["identifier"],
        format!("ghcr.io/procore-token-mcp/procore-token-mcp:{VERSION}"),
        "the image is tagged with the crate's version"
    );
    let cargo = &packages[1];
    assert_eq!(cargo["identifier"], env!("CARGO_PKG_NAME"));
    assert_eq!(cargo["version"], VERSION);

    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("io.modelcontextprotocol.server.name=\"{NAME}\"")),
        "the Dockerfile's label names the server"
    );
    assert!(
        dockerfile.contains(&format!("org.opencontainers.image.version=\"{VERSION}\"")),
        "the Dockerfile's version label follows Cargo.toml"
    );

    // crates.io drops HTML comments, so the registry's cargo check needs visible text.
    let readme = read("README.md");
    let line = readme
        .lines()
        .find(|line| line.contains("mcp-name:"))
        .expect("README has an mcp-name line");
    assert!(line.contains(&format!("mcp-name: {NAME}")), "{line}");
    assert!(
        !line.contains("<!--"),
        "the mcp-name line is visible: {line}"
    );
}

/// Every `[env: NAME…]` the server's `--help` shows, plus the variables its footer names.
fn variables_the_binary_reads() -> BTreeSet<String> {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let mut names: BTreeSet<String> = help
        .split("[env: ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect();
    for name in ["PROCORE_CLIENT_ID", "PROCORE_CLIENT_SECRET", "RUST_LOG"] {
        assert!(help.contains(name), "--help names {name}");
        names.insert(name.to_owned());
    }
    names
}

#[test]
fn environment_variables_are_declared_as_they_really_are() {
    let reads = variables_the_binary_reads();
    assert!(reads.contains("PROCORE_TOKEN_STORE") && reads.contains("MCP_TRANSPORT"));
    for package in server_json()["packages"].as_array().unwrap() {
        let declared = package["environmentVariables"].as_array().unwrap();
        let names: BTreeSet<String> = declared
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect();
        // MCP_* variables configure the HTTP transport; these packages run stdio.
        let expected: BTreeSet<String> = reads
            .iter()
            .filter(|name| !name.starts_with("MCP_"))
            .cloned()
            .collect();
        assert_eq!(names, expected, "{}", package["registryType"]);
        for variable in declared {
            let name = variable["name"].as_str().unwrap();
            assert_eq!(
                variable["isRequired"],
                json!(false),
                "{name}: nothing is required; the server starts and lists its tools without \
                 credentials"
            );
            let secret = variable["isSecret"].as_bool().unwrap_or(false);
            assert_eq!(secret, name == "PROCORE_CLIENT_SECRET", "{name}: isSecret");
            assert!(
                variable["description"]
                    .as_str()
                    .is_some_and(|d| d.len() > 20),
                "{name}: described"
            );
        }
    }
}

#[test]
fn dockerfile_is_multi_stage_pinned_and_runs_as_non_root() {
    let dockerfile = read("Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let froms: Vec<&str> = instructions
        .iter()
        .filter_map(|line| line.strip_prefix("FROM "))
        .collect();
    assert_eq!(
        froms.len(),
        2,
        "a build stage and a runtime stage: {froms:?}"
    );
    for from in &froms {
        let image = from.split_whitespace().next().unwrap();
        let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest",
            "{image}: an explicit tag"
        );
    }

    // The builder's Rust is at least the crate's rust-version.
    let builder = froms[0].split_whitespace().next().unwrap();
    let rust = builder
        .strip_prefix("rust:")
        .expect("the build stage is an official Rust image");
    let version = |text: &str| -> Vec<u32> {
        text.split(|c: char| !c.is_ascii_digit())
            .take_while(|part| !part.is_empty())
            .map(|part| part.parse().unwrap())
            .collect()
    };
    let builder_version = version(rust);
    assert_eq!(
        builder_version.len(),
        3,
        "pinned to a patch release: {rust}"
    );
    assert!(builder_version >= version(env!("CARGO_PKG_RUST_VERSION")));
    assert!(froms[0].ends_with(" AS build"));

    let runtime: Vec<&&str> = instructions
        .iter()
        .skip_while(|line| !line.starts_with(&format!("FROM {}", froms[1])))
        .collect();
    let user = runtime
        .iter()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("the runtime stage sets a user");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "non-root: {user}"
    );
    assert!(runtime.contains(
        &&"COPY --from=build /src/target/release/procore-token-mcp /usr/local/bin/procore-token-mcp"
    ));
    assert_eq!(
        runtime.last().unwrap(),
        &&r#"ENTRYPOINT ["/usr/local/bin/procore-token-mcp"]"#,
        "the binary is the entrypoint, with no arguments: stdio by default"
    );
    assert!(
        !instructions.iter().any(|line| line.starts_with("CMD")),
        "no default arguments"
    );

    let ignore = read(".dockerignore");
    for excluded in ["target/", ".git/"] {
        assert!(ignore.lines().any(|line| line == excluded), "{excluded}");
    }
}

#[test]
fn glama_json_and_license_are_in_place() {
    let glama: Value = serde_json::from_str(&read("glama.json")).unwrap();
    assert_eq!(glama["$schema"], "https://glama.ai/mcp/schemas/server.json");
    let maintainers = glama["maintainers"].as_array().unwrap();
    assert!(!maintainers.is_empty());
    assert!(
        maintainers
            .iter()
            .all(|m| m.as_str().is_some_and(|m| !m.is_empty()))
    );
    assert!(read("LICENSE").starts_with("MIT License"));
    assert_eq!(env!("CARGO_PKG_LICENSE"), "MIT");
}
