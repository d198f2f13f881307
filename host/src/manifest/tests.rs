use super::*;

fn parse(text: &str) -> Result<Manifest> {
    Manifest::parse(text, Path::new("app/spin.toml"))
}

const GOOD: &str = r#"
spin_manifest_version = 2
[application]
name = "demo"
[variables]
greeting = { default = "hi" }
api_key = { required = true, secret = true }
[[trigger.http]]
route = "/hello/..."
component = "hello"
[[trigger.http]]
route = { private = true }
component = "lib"
[component.hello]
source = "hello.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["https://example.org"]
dependencies_inherit_configuration = true
[component.hello.variables]
message = "{{ greeting }} there"
[component.hello.dependencies]
"test:greet/greeter" = { component = "lib" }
[component.hello.build]
command = "cargo build"
workdir = "hello"
[component.lib]
source = "lib.wasm"
"#;

#[test]
fn parses_a_full_manifest() -> Result<()> {
    let m = parse(GOOD)?;
    assert_eq!(m.name, "demo");
    assert_eq!(m.http_triggers.len(), 2);
    assert_eq!(m.http_triggers[0].route.as_deref(), Some("/hello/..."));
    assert_eq!(m.http_triggers[1].route, None);
    let hello = &m.components["hello"];
    assert_eq!(hello.key_value_stores, vec!["default"]);
    assert!(hello.dependencies_inherit_configuration);
    assert!(m.variables["api_key"].secret);
    assert_eq!(
        m.source_path("hello"),
        Some(PathBuf::from("app/hello.wasm"))
    );
    Ok(())
}

fn error_of(text: &str) -> String {
    format!("{:#}", parse(text).expect_err("should fail"))
}

#[test]
fn errors_name_the_file_and_the_key() {
    let e = error_of(&GOOD.replace("component = \"hello\"", "component = \"nope\""));
    assert!(
        e.contains("app/spin.toml") && e.contains("names no [component.nope]"),
        "{e}"
    );
    let e = error_of(&GOOD.replace("spin_manifest_version = 2", "spin_manifest_version = 1"));
    assert!(e.contains("spin_manifest_version"), "{e}");
    let e = error_of(&GOOD.replace(
        "key_value_stores = [\"default\"]",
        "key_value_stores = \"default\"",
    ));
    assert!(e.contains("[component.hello]"), "{e}");
    let e = error_of(&GOOD.replace("route = \"/hello/...\"", "route = \"hello\""));
    assert!(e.contains("must start with '/'"), "{e}");
}

/// One case per rule Spin applies; each names the Spin source in
/// docs/host.md. The expected text is Spin's own.
#[test]
fn refuses_what_spin_refuses() {
    let cases: &[(&str, &str, &str)] = &[
        // schema/v2.rs: deny_unknown_fields on the manifest, the
        // application, components, variables and build tables.
        (
            "[application]",
            "[application]\nfrobnicate = 1",
            "unknown field `frobnicate`",
        ),
        (
            "source = \"lib.wasm\"",
            "source = \"lib.wasm\"\nkey_value_store = [\"x\"]",
            "unknown field `key_value_store`",
        ),
        (
            "greeting = { default = \"hi\" }",
            "greeting = { default = \"hi\", secrets = true }",
            "unknown field `secrets`",
        ),
        (
            "workdir = \"hello\"",
            "workdir = \"hello\"\nwatches = []",
            "unknown field `watches`",
        ),
        (
            "spin_manifest_version = 2",
            "spin_manifest_version = 2\n[extra]\nx = 1",
            "unknown field `extra`",
        ),
        // schema/v2.rs: `trigger` is required.
        (
            "[[trigger.http]]\nroute = \"/hello/...\"\ncomponent = \"hello\"\n[[trigger.http]]\nroute = { private = true }\ncomponent = \"lib\"",
            "",
            "missing field `trigger`",
        ),
        // serde/src/id.rs: component ids are kebab words.
        (
            "[component.lib]",
            "[component.lib_x]",
            "words must be separated with '-', not '_'",
        ),
        (
            "component = \"lib\" }",
            "component = \"lib\" }\n[component.9lib]\nsource = \"x.wasm\"",
            "must start with an ASCII letter",
        ),
        // LowerSnakeId for application and component variables.
        (
            "greeting = { default",
            "GREETING = { default",
            "Lower-case identifiers must be all lowercase",
        ),
        (
            "greeting = { default",
            "Greeting = { default",
            "must be all lowercase or all UPPERCASE",
        ),
        (
            "message = \"{{ greeting }} there\"",
            "my-message = \"x\"",
            "words must be separated with '_', not '-'",
        ),
        // kebab_or_snake_case store labels.
        (
            "key_value_stores = [\"default\"]",
            "key_value_stores = [\"b@d\"]",
            "expected kebab-case or snake_case",
        ),
        // loader/src/local.rs `locked_variable`: required XOR default.
        (
            "greeting = { default = \"hi\" }",
            "greeting = { default = \"hi\", required = true }",
            "must be `required` OR have a `default`",
        ),
        (
            "greeting = { default = \"hi\" }",
            "greeting = { secret = true }",
            "must be `required` OR have a `default`",
        ),
        // normalize.rs: a component dependency must exist...
        (
            "{ component = \"lib\" }",
            "{ component = \"ghost\" }",
            "dependency ID ghost does not exist",
        ),
        // ...and have no resources or permissions of its own.
        (
            "source = \"lib.wasm\"",
            "source = \"lib.wasm\"\nkey_value_stores = [\"default\"]\n[component.lib.variables]\nx = \"y\"",
            "Dependencies may not have their own resources or permissions. Component lib cannot be used as a dependency of hello because it specifies: key_value_stores, variables",
        ),
        (
            "source = \"lib.wasm\"",
            "source = \"lib.wasm\"\nallowed_outbound_hosts = [\"https://x.org\"]",
            "because it specifies: allowed_outbound_hosts",
        ),
        // schema/v2.rs `ensure_plain_names_have_package`.
        (
            "\"test:greet/greeter\" = { component = \"lib\" }",
            "greeter = \"1.0\"",
            "dependency \"greeter\" must specify a package name",
        ),
        // `ensure_package_names_no_export`.
        (
            "\"test:greet/greeter\" = { component = \"lib\" }",
            "\"test:greet\" = { path = \"g.wasm\", export = \"x\" }",
            "using an export to satisfy the package dependency \"test:greet\" is not currently permitted",
        ),
        // `ensure_disjoint`.
        (
            "\"test:greet/greeter\" = { component = \"lib\" }",
            "\"test:greet/greeter\" = { component = \"lib\" }\n\"test:greet\" = { path = \"g.wasm\" }",
            "dependency conflicts with",
        ),
        // serde/src/dependencies.rs: a dependency name must parse.
        (
            "\"test:greet/greeter\" = { component = \"lib\" }",
            "\"Test:greet/greeter\" = { component = \"lib\" }",
            "invalid package ref",
        ),
        // An untagged ComponentDependency with an unknown key.
        (
            "{ component = \"lib\" }",
            "{ component = \"lib\", exports = \"x\" }",
            "did not match any variant",
        ),
    ];
    for (from, to, want) in cases {
        assert!(GOOD.contains(from), "test case does not apply: {from}");
        let e = error_of(&GOOD.replace(from, to));
        assert!(e.contains(want), "{to:?}: expected {want:?} in: {e}");
    }
}

#[test]
fn accepts_what_spin_accepts() -> Result<()> {
    // Upper-case kebab words, digits after the first word, snake labels,
    // an app description and authors, a multi-package dependency set.
    let text = GOOD
        .replace("[component.lib]", "[component.lib-2]")
        .replace("component = \"lib\"", "component = \"lib-2\"")
        .replace("key_value_stores = [\"default\"]", "key_value_stores = [\"default\", \"bulk_bytes\"]")
        .replace("name = \"demo\"", "name = \"demo\"\nversion = \"1.0.0\"\nauthors = [\"a\"]\ndescription = \"d\"")
        .replace(
            "\"test:greet/greeter\" = { component = \"lib-2\" }",
            "\"test:greet/greeter\" = { component = \"lib-2\" }\n\"test:other/x@0.1.0\" = { path = \"x.wasm\" }",
        );
    let m = parse(&text)?;
    let deps = &m.components["hello"].dependencies;
    assert_eq!(deps.len(), 2);
    assert!(
        deps.iter().any(|d| d.path == "lib.wasm"),
        "component dependency resolved to its source"
    );
    Ok(())
}

/// Every manifest in the repository passes Spin's rules on the same
/// code path `wikiedge up` loads with, and no component has two
/// dependencies registered under one package (Spin's composer refuses
/// that at start-up: crates/compose/src/lib.rs, `register_dependency`).
#[test]
fn the_landed_manifests_pass_every_spin_rule() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in ["spin.toml", "tests/host-test.toml", "bench/spin.toml"] {
        let m = Manifest::load(&root.join(file))?;
        for (id, decl) in &m.components {
            let mut packages: Vec<&str> = decl
                .dependencies
                .iter()
                .map(|d| d.name.registered_package())
                .collect();
            let n = packages.len();
            packages.sort_unstable();
            packages.dedup();
            assert_eq!(
                packages.len(),
                n,
                "{file}: [component.{id}] shares a package"
            );
        }
    }
    let m = Manifest::load(&root.join("spin.toml"))?;
    let articles = &m.components["articles"];
    assert_eq!(articles.dependencies.len(), 3, "auth, quota and metering");
    assert!(
        m.http_triggers
            .iter()
            .any(|t| t.route.as_deref() == Some("/...") && t.component == "fallback"),
        "the catch-all JSON 404 route"
    );
    Ok(())
}

/// The production manifest lets no component reach a loopback host
/// with its defaults; tests open it through the variable
/// `upstream_extra_host` (and `mail_webhook_host`), as they do.
#[test]
fn the_production_manifest_allows_no_loopback_host() -> Result<()> {
    use crate::outbound::OutboundPolicy;
    use crate::variables::Resolver;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let m = Manifest::load(&root.join("spin.toml"))?;
    let policies = |env: &dyn Fn(&str) -> Option<String>| -> Result<Vec<(String, OutboundPolicy)>> {
        let dev = std::collections::BTreeMap::new();
        let resolver = Resolver::new(&m, env, &dev);
        m.components
            .iter()
            .map(|(id, decl)| {
                let p = OutboundPolicy::resolve(&decl.allowed_outbound_hosts, id, |t| {
                    resolver.expand(t)
                })?;
                Ok((id.clone(), p))
            })
            .collect()
    };
    let loopback = |p: &OutboundPolicy| {
        [
            "127.0.0.1",
            "127.0.0.2",
            "localhost",
            "0.0.0.0",
            "[::1]",
            "::1",
        ]
        .iter()
        .any(|host| {
            ["http", "https"].iter().any(|scheme| {
                [
                    None,
                    Some(80),
                    Some(443),
                    Some(3000),
                    Some(9000),
                    Some(40123),
                ]
                .iter()
                .any(|port| p.allows(scheme, host, *port))
            })
        })
    };
    let production = policies(&|_| None)?;
    assert!(production.len() >= 7, "every component was checked");
    for (id, p) in &production {
        assert!(!loopback(p), "[component.{id}] allows a loopback host");
    }
    for (id, decl) in &m.components {
        for entry in &decl.allowed_outbound_hosts {
            assert!(
                !entry.contains("127.") && !entry.contains("localhost"),
                "[component.{id}]: {entry}"
            );
        }
    }
    // The upstream hosts are still allowed...
    let articles = &production
        .iter()
        .find(|(id, _)| id == "articles")
        .context("articles")?
        .1;
    assert!(articles.allows("https", "en.wikipedia.org", None));
    // ... and the tests' override does open loopback (so this can fail).
    let tests = policies(&|k: &str| {
        matches!(
            k,
            "SPIN_VARIABLE_UPSTREAM_EXTRA_HOST" | "SPIN_VARIABLE_MAIL_WEBHOOK_HOST"
        )
        .then(|| "http://127.0.0.1:*".to_string())
    })?;
    let opened: Vec<&str> = tests
        .iter()
        .filter(|(_, p)| loopback(p))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(opened, ["articles", "auth", "realtime"]);
    Ok(())
}

#[test]
fn unsupported_forms_are_refused_clearly() {
    let e = error_of(&GOOD.replace(
        "source = \"lib.wasm\"",
        "source = { url = \"https://x/y.wasm\", digest = \"sha256:00\" }",
    ));
    assert!(e.contains("remote"), "{e}");
    let e = error_of(&GOOD.replace("{ component = \"lib\" }", "\">= 0.1.0\""));
    assert!(e.contains("only `path` and `component`"), "{e}");
}
