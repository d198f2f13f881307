//! The Spin behaviour the app relies on, through the real host.

use crate::{BIN, host_test_manifest};
use anyhow::Result;
use std::io::{Read, Write};
use std::time::Duration;
use wikiedge_tests::{Host, TempDir, get, post, request};

fn start() -> Result<Host> {
    Host::builder(BIN, &host_test_manifest())
        .env("SPIN_VARIABLE_SECRET_WORD", "swordfish")
        .start()
}

#[test]
fn routes_pick_the_most_specific_match_and_set_spin_headers() -> Result<()> {
    let host = start()?;
    let r = get(&host.url("/a/b?x=1"), &[])?;
    assert_eq!(r.status, 200);
    let v = r.json()?;
    assert_eq!(v["headers"]["spin-path-info"], "/a/b");
    assert_eq!(v["headers"]["spin-matched-route"], "/...");
    assert_eq!(v["headers"]["spin-raw-component-route"], "/...");
    assert_eq!(v["headers"]["spin-base-path"], "/");
    assert_eq!(
        v["headers"]["spin-full-url"],
        format!("{}/a/b?x=1", host.base)
    );
    assert!(
        v["headers"]["spin-client-addr"]
            .as_str()
            .unwrap_or("")
            .starts_with("127.0.0.1:")
    );

    let v = get(&host.url("/exact"), &[])?.json()?;
    assert_eq!(v["headers"]["spin-matched-route"], "/exact");
    assert_eq!(v["headers"]["spin-path-info"], "");

    let v = get(&host.url("/items/42/detail"), &[])?.json()?;
    assert_eq!(v["headers"]["spin-matched-route"], "/items/:id/detail");
    assert_eq!(v["headers"]["spin-path-match-id"], "42");
    Ok(())
}

#[test]
fn key_value_get_set_delete_exists_and_keys() -> Result<()> {
    let host = start()?;
    assert_eq!(get(&host.url("/kv/get?key=k1"), &[])?.status, 404);
    assert_eq!(post(&host.url("/kv/set?key=k1"), &[], b"one")?.text(), "ok");
    assert_eq!(post(&host.url("/kv/set?key=k2"), &[], b"two")?.text(), "ok");
    assert_eq!(get(&host.url("/kv/get?key=k1"), &[])?.text(), "one");
    assert_eq!(get(&host.url("/kv/exists?key=k2"), &[])?.text(), "true");
    assert_eq!(get(&host.url("/kv/keys"), &[])?.text(), r#"["k1","k2"]"#);
    assert_eq!(get(&host.url("/kv/delete?key=k1"), &[])?.text(), "ok");
    assert_eq!(get(&host.url("/kv/exists?key=k1"), &[])?.text(), "false");
    assert_eq!(get(&host.url("/kv/keys"), &[])?.text(), r#"["k2"]"#);
    Ok(())
}

#[test]
fn only_declared_stores_can_be_opened() -> Result<()> {
    let host = start()?;
    let r = get(&host.url("/kv/get?key=x&store=other"), &[])?;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("AccessDenied"), "{}", r.text());
    Ok(())
}

#[test]
fn sixty_four_concurrent_increments_return_distinct_values() -> Result<()> {
    let host = start()?;
    let url = host.url("/atomic/increment?key=race");
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || get(&url, &[]).map(|r| r.text()))
        })
        .collect();
    let mut values: Vec<i64> = Vec::new();
    for h in handles {
        let text = h
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
        values.push(text.parse()?);
    }
    values.sort();
    assert_eq!(values, (1..=64).collect::<Vec<i64>>());
    Ok(())
}

#[test]
fn compare_and_swap_reports_a_conflict() -> Result<()> {
    let host = start()?;
    let r = get(&host.url("/atomic/cas-conflict?key=c"), &[])?;
    assert_eq!(r.text(), "conflict seen=v1 now=v2-from-someone-else");
    let r = get(&host.url("/atomic/cas-ok?key=fresh"), &[])?;
    assert_eq!(r.text(), "swapped");
    assert_eq!(get(&host.url("/kv/get?key=fresh"), &[])?.text(), "swapped");
    Ok(())
}

#[test]
fn variables_resolve_templates_and_env_overrides() -> Result<()> {
    let host = start()?;
    assert_eq!(get(&host.url("/var/message"), &[])?.text(), "hello, world");
    assert_eq!(get(&host.url("/var/secret"), &[])?.text(), "swordfish");
    assert_eq!(get(&host.url("/var/undeclared"), &[])?.status, 404);
    // The same values through the synchronous `wasi:config/store`, with an
    // undeclared or invalid name `none` (Spin's mapping).
    assert_eq!(
        get(&host.url("/config/message"), &[])?.text(),
        "hello, world"
    );
    assert_eq!(get(&host.url("/config/secret"), &[])?.text(), "swordfish");
    let undeclared = get(&host.url("/config/undeclared"), &[])?;
    assert_eq!((undeclared.status, undeclared.text()), (404, "none".into()));
    let invalid = get(&host.url("/config/Not-Valid"), &[])?;
    assert_eq!((invalid.status, invalid.text()), (404, "none".into()));
    let all = get(&host.url("/config-all"), &[])?.text();
    assert!(all.split(',').any(|n| n == "message"), "{all}");
    assert!(all.split(',').any(|n| n == "secret"), "{all}");
    // The secret's value never appears in the host's output.
    assert!(!host.log().contains("swordfish"));

    let host = Host::builder(BIN, &host_test_manifest())
        .env("SPIN_VARIABLE_SECRET_WORD", "x")
        .env("SPIN_VARIABLE_GREETING", "bonjour")
        .start()?;
    assert_eq!(
        get(&host.url("/var/message"), &[])?.text(),
        "bonjour, world"
    );
    Ok(())
}

#[test]
fn a_missing_required_variable_fails_at_startup() -> Result<()> {
    let err = Host::builder(BIN, &host_test_manifest())
        .start()
        .err()
        .expect("must fail");
    let text = format!("{err:#}");
    assert!(
        text.contains("secret_word") && text.contains("SPIN_VARIABLE_SECRET_WORD"),
        "{text}"
    );
    Ok(())
}

/// A one-shot HTTP server on loopback answering `200 upstream-ok`.
fn loopback_server() -> Result<(u16, std::thread::JoinHandle<()>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    listener.set_nonblocking(false)?;
    let handle = std::thread::spawn(move || {
        // Serve at most a few connections, then stop by itself.
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\nupstream-ok",
            );
        }
    });
    Ok((port, handle))
}

#[test]
fn outbound_http_is_limited_to_allowed_hosts() -> Result<()> {
    let (port, _server) = loopback_server()?;
    let (other_port, _other) = loopback_server()?;
    let dir = TempDir::new("outbound")?;
    let manifest = std::fs::read_to_string(host_test_manifest())?
        .replace("../target", &wikiedge_tests::target_dir().display().to_string())
        .replace(
            "key_value_stores = [\"default\"]\n[component.sink.variables]",
            &format!("key_value_stores = [\"default\"]\nallowed_outbound_hosts = [\"http://127.0.0.1:{port}\"]\n[component.sink.variables]"),
        )
        .replace("workdir = \"..\"", &format!("workdir = \"{}\"", wikiedge_tests::repo_root().display()));
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest)?;
    let host = Host::builder(BIN, &path)
        .env("SPIN_VARIABLE_SECRET_WORD", "x")
        .start()?;

    let allowed = get(
        &host.url(&format!("/outbound?url=http://127.0.0.1:{port}/")),
        &[],
    )?;
    assert_eq!(allowed.text(), "200 upstream-ok");
    let denied = get(
        &host.url(&format!("/outbound?url=http://127.0.0.1:{other_port}/")),
        &[],
    )?;
    assert_eq!(denied.status, 502);
    assert!(
        denied.text().contains("HttpRequestDenied"),
        "{}",
        denied.text()
    );
    Ok(())
}

#[test]
fn dependencies_are_composed_and_inherit_configuration() -> Result<()> {
    let host = start()?;
    let r = get(&host.url("/greet?ada"), &[])?;
    assert_eq!(r.text(), "Hello, ada! (greeting #1)");
    // The dependency wrote to the parent's store.
    let r = get(&host.url("/greet?bob"), &[])?;
    assert_eq!(r.text(), "Hello, bob! (greeting #2)");
    // One package-level dependency satisfied both of the package's imports.
    let r = get(&host.url("/greet/bye?ada"), &[])?;
    assert_eq!(r.text(), "Goodbye, ada!");
    Ok(())
}

/// The host test manifest with `edit` applied, written into a fresh dir
/// (paths made absolute so it still finds the built components).
fn variant(edit: impl Fn(String) -> String) -> Result<(TempDir, std::path::PathBuf)> {
    let dir = TempDir::new("variant")?;
    let manifest = std::fs::read_to_string(host_test_manifest())?
        .replace(
            "../target",
            &wikiedge_tests::target_dir().display().to_string(),
        )
        .replace(
            "workdir = \"..\"",
            &format!("workdir = \"{}\"", wikiedge_tests::repo_root().display()),
        );
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, edit(manifest))?;
    Ok((dir, path))
}

/// Start on an edited manifest; the error text it fails with.
fn refusal(edit: impl Fn(String) -> String) -> Result<String> {
    // The components exist (built from the unedited manifest); the edited
    // one is only loaded.
    wikiedge_tests::build_components(BIN, &host_test_manifest())?;
    let (_dir, path) = variant(edit)?;
    let started = Host::builder(BIN, &path)
        .env("SPIN_VARIABLE_SECRET_WORD", "x")
        .no_build()
        .start();
    match started {
        Ok(_) => anyhow::bail!("the host accepted a manifest Spin refuses"),
        Err(e) => Ok(format!("{e:#}")),
    }
}

/// What Spin refuses when it composes dependencies (crates/compose) or
/// normalises them (crates/manifest/src/normalize.rs), `wikiedge up`
/// refuses with Spin's words. The manifest-only rules are unit tests in
/// host/src/manifest.rs.
#[test]
fn dependency_forms_spin_refuses_are_refused() -> Result<()> {
    const PACKAGE_DEP: &str = "\"wikiedge-test:greet\" = { component = \"greeter\" }";
    // Two dependencies on interfaces of one package collide in the graph.
    let e = refusal(|m| {
        m.replace(
            PACKAGE_DEP,
            "\"wikiedge-test:greet/greeter\" = { component = \"greeter\" }\n\"wikiedge-test:greet/farewell\" = { component = \"greeter\" }",
        )
    })?;
    assert!(
        e.contains("failed to resolve dependencies for component \"greeted\"")
            && e.contains("an error occurred when preparing dependencies")
            && e.contains("package `wikiedge-test:greet` has already been registered in the graph"),
        "{e}"
    );
    // A component dependency with resources of its own.
    let e = refusal(|m| {
        m.replace(
            "[component.greeter]\n",
            "[component.greeter]\nkey_value_stores = [\"default\"]\n",
        )
    })?;
    assert!(
        e.contains("Dependencies may not have their own resources or permissions. Component greeter cannot be used as a dependency of greeted because it specifies: key_value_stores"),
        "{e}"
    );
    // A dependency that matches no import.
    let e = refusal(|m| {
        m.replace(
            PACKAGE_DEP,
            "\"wikiedge-test:greet\" = { component = \"greeter\" }\n\"wikiedge-test:other/x\" = { component = \"greeter\" }",
        )
    })?;
    assert!(
        e.contains(
            "dependency 'wikiedge-test:other/x' doesn't match any imports of component 'greeted'"
        ),
        "{e}"
    );
    // An export the dependency does not have.
    let e = refusal(|m| {
        m.replace(
            PACKAGE_DEP,
            "\"wikiedge-test:greet/greeter\" = { component = \"greeter\", export = \"nope:nope/nope\" }",
        )
    })?;
    assert!(
        e.contains("doesn't export 'nope:nope/nope' to satisfy import"),
        "{e}"
    );
    Ok(())
}

#[test]
fn a_trap_fails_only_its_own_request() -> Result<()> {
    let host = start()?;
    for path in ["/panic", "/trap"] {
        let r = get(&host.url(path), &[])?;
        assert_eq!(r.status, 500);
        assert!(r.body.is_empty(), "Spin's 500 has no body: {}", r.text());
        assert!(!r.text().contains("panicked"), "no internals in the body");
        // The next request is served normally.
        assert_eq!(get(&host.url("/var/message"), &[])?.text(), "hello, world");
    }
    assert!(
        host.log().contains("the kitchen sink panicked on purpose"),
        "the cause is logged"
    );
    Ok(())
}

#[test]
fn oversized_bodies_are_refused() -> Result<()> {
    let host = Host::builder(BIN, &host_test_manifest())
        .env("SPIN_VARIABLE_SECRET_WORD", "x")
        .arg("--max-body-bytes")
        .arg("1024")
        .start()?;
    let r = post(&host.url("/kv/set?key=big"), &[], &vec![b'x'; 4096])?;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()?["status"], 413);
    assert_eq!(get(&host.url("/kv/exists?key=big"), &[])?.text(), "false");
    Ok(())
}

#[test]
fn every_request_is_logged_once() -> Result<()> {
    let host = start()?;
    get(&host.url("/log-me-please"), &[])?;
    let log = host.log();
    let lines: Vec<_> = log
        .lines()
        .filter(|l| l.contains("/log-me-please"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0]
            .contains(" INFO request method=GET path=/log-me-please component=sink status=200 ms="),
        "{}",
        lines[0]
    );
    Ok(())
}

#[test]
fn state_survives_a_restart_and_a_kill() -> Result<()> {
    state_survives_a_restart_and_a_kill_with("interval")
}

#[test]
fn state_survives_a_restart_and_a_kill_with_fsync_durability() -> Result<()> {
    state_survives_a_restart_and_a_kill_with("fsync")
}

fn state_survives_a_restart_and_a_kill_with(durability: &str) -> Result<()> {
    let mut host = Host::builder(BIN, &host_test_manifest())
        .env("SPIN_VARIABLE_SECRET_WORD", "swordfish")
        .env("WIKIEDGE_KV_DURABILITY", durability)
        .start()?;
    post(&host.url("/kv/set?key=durable"), &[], b"yes")?;
    host.restart()?;
    assert_eq!(get(&host.url("/kv/get?key=durable"), &[])?.text(), "yes");
    // An acknowledged write survives kill -9.
    post(&host.url("/kv/set?key=after-kill"), &[], b"still here")?;
    get(&host.url("/atomic/increment?key=n&delta=5"), &[])?;
    host.kill9()?;
    host.restart()?;
    assert_eq!(
        get(&host.url("/kv/get?key=after-kill"), &[])?.text(),
        "still here"
    );
    assert_eq!(
        get(&host.url("/atomic/increment?key=n&delta=1"), &[])?.text(),
        "6"
    );
    Ok(())
}

#[test]
fn sigterm_finishes_in_flight_requests() -> Result<()> {
    let mut host = start()?;
    let url = host.url("/sleep?ms=1500");
    let inflight = std::thread::spawn(move || get(&url, &[]));
    std::thread::sleep(Duration::from_millis(400));
    let status = host.terminate(Duration::from_secs(20))?;
    assert!(status.success(), "exit status {status}");
    let r = inflight
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??;
    assert_eq!(r.text(), "slept");
    Ok(())
}

#[test]
fn a_missing_wasm_names_the_component_and_its_build_command() -> Result<()> {
    let dir = TempDir::new("missing")?;
    let path = dir.path().join("spin.toml");
    std::fs::write(
        &path,
        "spin_manifest_version = 2\n[application]\nname = \"m\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"ghost\"\n[component.ghost]\nsource = \"nowhere/ghost.wasm\"\n[component.ghost.build]\ncommand = \"make ghost\"\n",
    )?;
    let err = Host::builder(BIN, &path)
        .no_build()
        .start()
        .err()
        .expect("must fail");
    let text = format!("{err:#}");
    assert!(
        text.contains("component `ghost`") && text.contains("make ghost"),
        "{text}"
    );
    Ok(())
}

#[test]
fn unknown_paths_get_spins_empty_404_and_health_answers() -> Result<()> {
    let (_dir, path) = variant(|m| m.replace("route = \"/...\"", "route = \"/only/...\""))?;
    let host = Host::builder(BIN, &path)
        .env("SPIN_VARIABLE_SECRET_WORD", "x")
        .start()?;
    let r = request("GET", &host.url("/nothing/here"), &[], None)?;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty(), "Spin's 404 has no body: {}", r.text());
    let r = request("GET", &host.url("/.well-known/spin/health"), &[], None)?;
    assert_eq!((r.status, r.text().as_str()), (200, "OK"));
    Ok(())
}

/// As Spin (`crates/factor-key-value/src/lib.rs`, `configure_app`): a
/// store label other than `default` must be defined in the runtime config
/// file, or the app does not load; defined there, it loads. Without a file
/// `wikiedge up` also defines its app's `bulk`, nothing else; with a file,
/// only what the file says.
#[test]
fn a_store_label_the_runtime_config_does_not_define_is_refused() -> Result<()> {
    let declares = |label: &'static str| {
        move |m: String| {
            m.replace(
                "key_value_stores = [\"default\"]\n[component.sink.variables]",
                &format!(
                    "key_value_stores = [\"default\", \"{label}\"]\n[component.sink.variables]"
                ),
            )
        }
    };
    let e = refusal(declares("other"))?;
    assert!(
        e.contains("unknown key_value_stores label \"other\" for component \"sink\""),
        "{e}"
    );
    let (dir, path) = variant(declares("bulk"))?;
    let start = |rc: &std::path::Path| {
        Host::builder(BIN, &path)
            .env("SPIN_VARIABLE_SECRET_WORD", "x")
            .no_build()
            .runtime_config(rc)
            .start()
    };
    let only_default = dir.path().join("default-only.toml");
    std::fs::write(
        &only_default,
        "[key_value_store.default]\ntype = \"spin\"\npath = \"kv.db\"\n",
    )?;
    let e = match start(&only_default) {
        Ok(_) => anyhow::bail!("a file without [key_value_store.bulk] was accepted"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains("unknown key_value_stores label \"bulk\" for component \"sink\""),
        "{e}"
    );
    let both = dir.path().join("both.toml");
    std::fs::write(
        &both,
        "[key_value_store.bulk]\ntype = \"spin\"\npath = \"bulk.db\"\n",
    )?;
    let host = start(&both)?;
    let set = post(&host.url("/kv/set?store=bulk&key=k"), &[], b"in bulk")?;
    assert_eq!(set.status, 200, "{}", set.text());
    let read = get(&host.url("/kv/get?store=bulk&key=k"), &[])?;
    assert_eq!(read.text(), "in bulk");
    assert!(
        dir.path().join("bulk.db").exists(),
        "the file the config names"
    );
    Ok(())
}
