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
    assert_eq!(
        document["repository"]["url"],
        env!("CARGO_PKG_REPOSITORY"),
        "server.json and Cargo.toml name one repository"
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
    for name in [
        "PROCORE_CLIENT_ID",
        "PROCORE_CLIENT_SECRET",
        "PROCORE_STORE_KEY",
        "PROCORE_STORE_KEY_PREVIOUS",
        "RUST_LOG",
    ] {
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
            // The secrets: the client secret and the store's keys.
            let is_secret = matches!(
                name,
                "PROCORE_CLIENT_SECRET" | "PROCORE_STORE_KEY" | "PROCORE_STORE_KEY_PREVIOUS"
            );
            assert_eq!(secret, is_secret, "{name}: isSecret");
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
    // The base images are build arguments (CI substitutes local stand-ins); their defaults
    // are what a plain `docker build` uses, so they are what must be pinned.
    let defaults: Vec<(String, String)> = instructions
        .iter()
        .filter_map(|line| line.strip_prefix("ARG "))
        .filter_map(|arg| arg.split_once('='))
        .map(|(name, value)| (format!("${{{name}}}"), value.to_owned()))
        .collect();
    let froms: Vec<String> = instructions
        .iter()
        .filter_map(|line| line.strip_prefix("FROM "))
        .map(|from| {
            defaults.iter().fold(from.to_owned(), |from, (arg, value)| {
                from.replace(arg, value)
            })
        })
        .collect();
    assert!(
        froms.iter().all(|from| !from.contains('$')),
        "every base image argument has a default: {froms:?}"
    );
    assert!(
        dockerfile.contains("FROM ${BUILDER_IMAGE} AS build")
            && dockerfile.contains("FROM ${RUNTIME_IMAGE}"),
        "both base images are build arguments"
    );
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
        .skip_while(|line| !line.starts_with("FROM ${RUNTIME_IMAGE}"))
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

    let ignore = DockerIgnore::read();
    for excluded in [
        "target",
        "target/release/procore-token-mcp",
        ".git",
        "tests/interop",
    ] {
        assert!(
            !ignore.admits(excluded),
            "{excluded} is kept out of the build context"
        );
    }
}

/// `.dockerignore`'s patterns in order, matched as Docker does for the cases used here: a
/// pattern matches a path or any folder above it, `*` within one component, `**` across any
/// number, and the last matching pattern decides (`!` admits).
struct DockerIgnore(Vec<(bool, Vec<String>)>);

impl DockerIgnore {
    fn read() -> Self {
        Self(
            read(".dockerignore")
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(|line| {
                    let (admit, pattern) = match line.strip_prefix('!') {
                        Some(rest) => (true, rest),
                        None => (false, line),
                    };
                    let parts = pattern
                        .trim_matches('/')
                        .split('/')
                        .map(str::to_owned)
                        .collect();
                    (admit, parts)
                })
                .collect(),
        )
    }

    fn admits(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let mut admitted = true;
        for (admit, pattern) in &self.0 {
            // A pattern matching the path or a folder above it applies to the path.
            if (1..=parts.len()).any(|n| glob_path(pattern, &parts[..n])) {
                admitted = *admit;
            }
        }
        admitted
    }
}

fn glob_path(pattern: &[String], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(p), _) if p == "**" => {
            glob_path(&pattern[1..], path) || (!path.is_empty() && glob_path(pattern, &path[1..]))
        }
        (Some(p), Some(component)) => glob(p, component) && glob_path(&pattern[1..], &path[1..]),
        _ => false,
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (head.len()..=text.len())
                    .any(|start| text.is_char_boundary(start) && glob(tail, &text[start..]))
        }
    }
}

/// The Dockerfile copies the whole context (`COPY . .`), so what cargo needs is what
/// `.dockerignore` admits: every manifest, every target's source file and every workspace
/// member cargo lists. (The bench target left out once broke `docker build`.)
#[test]
fn the_build_context_holds_every_target_and_workspace_member() {
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.lines().any(|line| line == "COPY . ."),
        "the build stage copies the context whole; .dockerignore decides what is in it"
    );
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let root = Path::new(metadata["workspace_root"].as_str().unwrap());
    let relative = |path: &str| -> String {
        Path::new(path)
            .strip_prefix(root)
            .unwrap_or_else(|_| panic!("{path} is inside the workspace"))
            .to_string_lossy()
            .replace('\\', "/")
    };
    let mut needed = vec!["Cargo.toml".to_owned(), "Cargo.lock".to_owned()];
    for package in metadata["packages"].as_array().unwrap() {
        needed.push(relative(package["manifest_path"].as_str().unwrap()));
        for target in package["targets"].as_array().unwrap() {
            needed.push(relative(target["src_path"].as_str().unwrap()));
        }
    }
    // Workspace members by path (the ids name their folders), so a member is counted even if
    // `packages` ever left one out.
    for member in metadata["workspace_members"].as_array().unwrap() {
        let id = member.as_str().unwrap();
        if let Some(folder) = id
            .strip_prefix("path+file://")
            .and_then(|rest| rest.split('#').next())
            && Path::new(folder) != root
        {
            needed.push(format!("{}/Cargo.toml", relative(folder)));
        }
    }
    assert!(
        needed.iter().any(|path| path == "benches/harness.rs"),
        "the bench target is among the paths: {needed:?}"
    );
    let ignore = DockerIgnore::read();
    let missing: Vec<&String> = needed.iter().filter(|path| !ignore.admits(path)).collect();
    assert!(missing.is_empty(), "not in the build context: {missing:?}");
    // The matcher does judge: the old .dockerignore (benches/ dropped) is caught.
    let old = DockerIgnore(vec![(false, vec!["benches".to_owned()])]);
    assert!(!old.admits("benches/harness.rs") && old.admits("src/main.rs"));
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

/// The top-level modules of `src/` (files and folders, without `lib.rs` and `main.rs`) and
/// the ones each imports through `crate::` outside its tests.
fn module_graph() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let mut files = Vec::new();
        let mut pending = vec![path.clone()];
        while let Some(next) = pending.pop() {
            if next.is_dir() {
                pending.extend(
                    std::fs::read_dir(&next)
                        .unwrap()
                        .flatten()
                        .map(|e| e.path()),
                );
            } else if next.extension().is_some_and(|ext| ext == "rs") {
                files.push(std::fs::read_to_string(&next).unwrap());
            }
        }
        modules.insert(name, files);
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .into_iter()
        .map(|(name, files)| {
            let mut imports = BTreeSet::new();
            for file in files {
                let code = file.split("#[cfg(test)]").next().unwrap();
                for (at, _) in code.match_indices("crate::") {
                    let rest = &code[at + "crate::".len()..];
                    // `crate::a::…` names one module; `crate::{a::…, b, …}` several: the
                    // names at the braces' top level.
                    let found: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                        let mut depth = 0;
                        let mut top = String::new();
                        for ch in group.chars() {
                            match ch {
                                '{' => depth += 1,
                                '}' if depth == 0 => break,
                                '}' => depth -= 1,
                                _ if depth == 0 => top.push(ch),
                                _ => {}
                            }
                        }
                        top.split(',')
                            .map(|part| part.trim().split("::").next().unwrap().to_owned())
                            .collect()
                    } else {
                        let word: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        vec![word]
                    };
                    imports.extend(
                        found
                            .into_iter()
                            .filter(|module| names.contains(module) && *module != name),
                    );
                }
            }
            (name, imports)
        })
        .collect()
}

#[test]
fn the_top_level_modules_form_a_dag_and_architecture_md_maps_them() {
    let graph = module_graph();
    assert!(
        graph["tools"].contains("exchange"),
        "the parser sees imports: {graph:?}"
    );
    // Depth-first search for a back edge; the path to it is the cycle.
    fn visit(
        module: &str,
        graph: &std::collections::BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in &graph[module] {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let cycle = visit(module, &graph, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "an import cycle: {}",
            cycle.unwrap().join(" → ")
        );
    }
    // The tools know the exchange, not the store behind it.
    assert!(!graph["tools"].contains("store"), "{graph:?}");
    let architecture = read("ARCHITECTURE.md");
    for module in graph.keys() {
        assert!(
            architecture.contains(&format!("`{module}`")),
            "ARCHITECTURE.md names the module `{module}`"
        );
    }
}

/// The tool names the binary lists over stdio, with every setting the bundle has (held
/// credentials and a token store file, `store`) or with none.
fn tools_the_binary_lists(store: Option<&std::path::Path>) -> BTreeSet<String> {
    use std::io::Write;
    let mut command = Command::new(BIN);
    command.env_clear();
    if let Some(store) = store {
        command
            .env("PROCORE_TOKEN_STORE", store)
            .env("PROCORE_CLIENT_ID", "packaging-client")
            .env("PROCORE_CLIENT_SECRET", "packaging-secret-0000");
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "packaging", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    ];
    let mut stdin = child.stdin.take().unwrap();
    for message in messages {
        writeln!(stdin, "{message}").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let listed = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|message| message["id"] == 2)
        .expect("an answer to tools/list");
    listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_bundle_manifest_agrees_with_the_server() {
    let manifest: Value =
        serde_json::from_str(&read("bundle/manifest.json")).expect("bundle/manifest.json is JSON");
    assert_eq!(manifest["name"], env!("CARGO_PKG_NAME"));
    assert_eq!(
        manifest["version"], VERSION,
        "the bundle follows Cargo.toml"
    );
    assert_eq!(manifest["repository"]["url"], env!("CARGO_PKG_REPOSITORY"));
    assert_eq!(manifest["server"]["type"], "binary");

    // Every variable the bundle sets is one the binary reads, from a user_config field,
    // and every field is used.
    let reads = variables_the_binary_reads();
    let config = manifest["user_config"].as_object().unwrap();
    let env = manifest["server"]["mcp_config"]["env"].as_object().unwrap();
    let mut used = BTreeSet::new();
    for (name, value) in env {
        assert!(reads.contains(name), "the binary reads {name}");
        let field = value
            .as_str()
            .and_then(|v| v.strip_prefix("${user_config."))
            .and_then(|v| v.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{name} comes from a user_config field: {value}"));
        assert!(
            config.contains_key(field),
            "{name}: user_config.{field} exists"
        );
        used.insert(field.to_owned());
    }
    assert_eq!(
        used,
        config.keys().cloned().collect::<BTreeSet<_>>(),
        "every user_config field sets a variable"
    );

    // Nothing is required (the server starts and lists its tools without credentials); only
    // the secrets (the client secret, the store key) are sensitive; the environment defaults to the server's own default and
    // names exactly the choices server.json gives.
    for (field, spec) in config {
        assert_eq!(spec["required"], json!(false), "{field}: optional");
        let sensitive = spec["sensitive"].as_bool().unwrap_or(false);
        let secret = matches!(field.as_str(), "client_secret" | "store_key");
        assert_eq!(sensitive, secret, "{field}: sensitive");
    }
    let procore_env = server_json()["packages"][0]["environmentVariables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "PROCORE_ENV")
        .cloned()
        .unwrap();
    let environment = &config["environment"];
    assert_eq!(environment["default"], procore_env["default"]);
    let description = environment["description"].as_str().unwrap();
    for choice in procore_env["choices"].as_array().unwrap() {
        assert!(
            description.contains(choice.as_str().unwrap()),
            "the environment field names {choice}"
        );
    }

    // The tools the bundle advertises are the ones the binary lists with every field set
    // (a token store adds the store's tools, with held credentials sign_in too); with none
    // set it lists all the others.
    let advertised: BTreeSet<String> = manifest["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect();
    let folder = std::env::temp_dir().join(format!("ptm-packaging-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let with_store = tools_the_binary_lists(Some(&folder.join("tokens.json")));
    std::fs::remove_dir_all(&folder).unwrap();
    assert_eq!(advertised, with_store);
    let without = tools_the_binary_lists(None);
    assert!(without.is_subset(&advertised) && without.len() < advertised.len());
}

#[test]
fn the_release_workflow_builds_what_the_repository_describes() {
    let workflow = read(".github/workflows/release.yml");
    // The toolchain the Dockerfile's builder pins (rust:1.95.0-slim-bookworm).
    let dockerfile = read("Dockerfile");
    let pinned = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("ARG BUILDER_IMAGE=rust:"))
        .and_then(|tag| tag.split('-').next())
        .expect("the Dockerfile pins a Rust builder");
    assert!(
        workflow.contains(&format!("RUST_VERSION: \"{pinned}\"")),
        "the release builds with Rust {pinned}, as the image does"
    );
    // The image it pushes is server.json's, by the repository's name.
    let oci = server_json()["packages"][0]["identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    let (image, _) = oci.rsplit_once(':').unwrap();
    let repository = env!("CARGO_PKG_REPOSITORY")
        .strip_prefix("https://github.com/")
        .unwrap();
    assert_eq!(image, format!("ghcr.io/{repository}"));
    assert!(
        workflow.contains(
            "tags: ghcr.io/${{ github.repository }}:${{ needs.version.outputs.version }}"
        )
    );
    // Binaries and bundles for the three desktop platforms, packed by the script CI runs.
    for platform in ["linux-x64", "darwin-universal", "win32-x64"] {
        assert!(workflow.contains(platform), "the release builds {platform}");
    }
    assert!(workflow.contains("bash bundle/pack.sh"));
    assert!(read("tests/bundle/run.sh").contains("bundle/pack.sh"));
}
