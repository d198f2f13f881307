//! Several `wikiedge up` processes sharing one Redis: quotas and usage stay
//! exact across instances, a killed instance loses no metering of what it
//! answered, and a Redis outage fails clearly and recovers by itself.

use crate::articles::MockWiki;
use crate::common::{count, race, usage_today};
use crate::{ADMIN_KEY, BIN};
use anyhow::{Context, Result};
use std::time::Duration;
use wikiedge_tests::{Host, RedisServer, TempDir, get, repo_root};

/// Two hosts on the app, both on `redis`, fetching "Squirrel" from a mock wiki.
fn two_hosts(
    redis: &RedisServer,
    dir: &TempDir,
    wiki: &MockWiki,
    plans: &str,
) -> Result<(Host, Host)> {
    two_hosts_on(redis, dir, wiki, plans, false)
}

/// [`two_hosts`]; with `misreport`, both report every compare-and-swap as
/// failed after it ran, as Spin 4.1's Redis store does.
fn two_hosts_on(
    redis: &RedisServer,
    dir: &TempDir,
    wiki: &MockWiki,
    plans: &str,
    misreport: bool,
) -> Result<(Host, Host)> {
    let rc = redis.runtime_config(dir.path())?;
    let overrides = format!("{{\"enwiki\":\"{}\"}}", wiki.url);
    let start = |name: &str| -> Result<Host> {
        let state = dir.path().join(name);
        std::fs::create_dir_all(&state)?;
        Host::builder(BIN, &repo_root().join("spin.toml"))
            .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
            .env("SPIN_VARIABLE_PLANS", plans)
            .env("SPIN_VARIABLE_UPSTREAM_OVERRIDES", &overrides)
            // Both instances must sign and verify with the same key pair.
            .env(
                "SPIN_VARIABLE_JWT_PRIVATE_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            )
            .env("SPIN_VARIABLE_JWT_PUBLIC_KEY", &public_key())
            .env(
                "WIKIEDGE_EMULATE_SPIN_REDIS_CAS",
                if misreport { "true" } else { "false" },
            )
            .runtime_config(&rc)
            .state_dir(&state)
            .start()
    };
    Ok((start("a")?, start("b")?))
}

fn public_key() -> String {
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
    let key = wikiedge_core::auth::signing::generate(seed);
    wikiedge_core::auth::signing::public_key_b64(&key.verifying_key())
}

fn usage(host: &Host, auth: &str) -> Result<(u64, u64)> {
    usage_today(host, auth, "ondemand")
}

fn used(host: &Host, auth: &str) -> Result<u64> {
    let q = get(&host.url("/v1/quota"), &[("authorization", auth)])?.json()?;
    q["products"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["product"] == "ondemand"))
        .and_then(|p| p["used"].as_u64())
        .context("ondemand used")
}

#[test]
fn two_instances_sharing_redis_admit_exactly_the_cap() -> Result<()> {
    two_instances_admit_the_cap(false)
}

/// As under Spin 4.1 with its Redis store: every compare-and-swap is
/// reported failed after it ran; account creation, login and the cap stay
/// exact.
#[test]
fn two_instances_stay_exact_where_redis_cas_is_misreported() -> Result<()> {
    two_instances_admit_the_cap(true)
}

fn two_instances_admit_the_cap(misreport: bool) -> Result<()> {
    let redis = RedisServer::start()?;
    let dir = TempDir::new("scale-cap")?;
    let wiki = MockWiki::start()?;
    let plans = r#"[{"name":"free","monthly":{"ondemand":50},"burst_per_second":1000}]"#;
    let (a, b) = two_hosts_on(&redis, &dir, &wiki, plans, misreport)?;
    let auth = crate::common::account(&a, "shared", serde_json::json!({}))?;
    let urls = [
        a.url("/v2/articles/Squirrel"),
        b.url("/v2/articles/Squirrel"),
    ];
    let statuses = race(&urls, 64, &auth);
    assert_eq!(count(&statuses, 200), 50, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 14, "{statuses:?}");
    assert_eq!(usage(&a, &auth)?, (50, 14));
    assert_eq!(
        usage(&b, &auth)?,
        (50, 14),
        "both instances see the same counters"
    );
    assert_eq!(used(&b, &auth)?, 50);
    Ok(())
}

#[test]
fn a_killed_instance_loses_no_metering_of_what_it_answered() -> Result<()> {
    let redis = RedisServer::start()?;
    let dir = TempDir::new("scale-kill")?;
    let wiki = MockWiki::start()?;
    let plans = r#"[{"name":"free","monthly":{"ondemand":100000},"burst_per_second":100000}]"#;
    let (mut a, b) = two_hosts(&redis, &dir, &wiki, plans)?;
    let auth = crate::common::account(&a, "survivor", serde_json::json!({}))?;
    let (url_a, url_b) = (
        a.url("/v2/articles/Squirrel"),
        b.url("/v2/articles/Squirrel"),
    );
    let answered = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| -> Result<()> {
        for i in 0..8 {
            let (url, auth, answered) =
                (if i % 2 == 0 { &url_a } else { &url_b }, &auth, &answered);
            s.spawn(move || {
                for _ in 0..40 {
                    if let Ok(r) = get(url, &[("authorization", auth)])
                        && r.status == 200
                    {
                        answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(700));
        a.kill9()?;
        Ok(())
    })?;
    let answered = answered.into_inner();
    let (admitted, denied) = usage(&b, &auth)?;
    let quota_used = used(&b, &auth)?;
    assert_eq!(denied, 0);
    // Everything answered was metered; nothing was metered that quota did not admit.
    assert!(
        admitted >= answered,
        "metered {admitted} < answered {answered}"
    );
    assert!(
        admitted <= quota_used,
        "metered {admitted} > admitted by quota {quota_used}"
    );
    // At most the requests in flight when the host died are admitted but unanswered.
    assert!(
        quota_used - answered <= 8,
        "used {quota_used}, answered {answered}"
    );
    assert!(
        answered > 40,
        "the load really ran on both hosts ({answered})"
    );
    Ok(())
}

#[test]
fn a_redis_outage_gives_503_and_counts_are_right_afterwards() -> Result<()> {
    let mut redis = RedisServer::start()?;
    let dir = TempDir::new("scale-outage")?;
    let wiki = MockWiki::start()?;
    let plans = r#"[{"name":"free","monthly":{"ondemand":1000},"burst_per_second":1000}]"#;
    let (a, b) = two_hosts(&redis, &dir, &wiki, plans)?;
    let auth = crate::common::account(&a, "patient", serde_json::json!({}))?;
    let hit = |h: &Host| {
        get(
            &h.url("/v2/articles/Squirrel"),
            &[("authorization", auth.as_str())],
        )
    };
    let mut ok = 0;
    for h in [&a, &b, &a, &b] {
        assert_eq!(hit(h)?.status, 200);
        ok += 1;
    }
    redis.stop()?;
    for h in [&a, &b] {
        let started = std::time::Instant::now();
        let r = hit(h)?;
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.json()?["status"], 503);
        assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
        assert!(started.elapsed() < Duration::from_secs(15), "no hang");
    }
    redis.restart()?;
    // Service resumes by itself.
    let mut resumed = false;
    for _ in 0..50 {
        if hit(&a)?.status == 200 {
            resumed = true;
            ok += 1;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(resumed, "service did not resume after Redis came back");
    assert_eq!(hit(&b)?.status, 200);
    ok += 1;
    assert_eq!(
        usage(&a, &auth)?,
        (ok, 0),
        "nothing admitted during the outage, nothing lost"
    );
    assert_eq!(used(&b, &auth)?, ok);
    Ok(())
}

/// Bulk commands reach whatever store the app is served from: `wikiedge
/// import` and `wikiedge snapshot build` with the same Redis runtime config
/// as two serving hosts; then both hosts answer the imported article from
/// Redis without asking upstream, and the snapshot: its metadata, and the
/// same bytes to a download from either host.
#[test]
fn an_import_and_a_snapshot_built_in_redis_are_served_by_two_hosts() -> Result<()> {
    let redis = RedisServer::start()?;
    let dir = TempDir::new("scale-import")?;
    let wiki = MockWiki::start()?;
    let rc = redis.runtime_config(dir.path())?;
    let dump = wikiedge_tests::sample_dump(BIN, dir.path(), 0)?;
    let state = dir.path().join("bulk-state");
    let mut args = wikiedge_cli::import::ImportArgs::new(dump, None).with_state_dir(&state);
    args.runtime_config = Some(rc.clone());
    args.progress = false;
    let summary = wikiedge_cli::import::run(args)?;
    assert_eq!(summary.written, summary.articles);
    assert!(summary.written >= 6, "{summary}");
    // The command itself, with the flag an operator passes.
    let out = std::process::Command::new(BIN)
        .args(["snapshot", "build", "--project", "enwiki", "--quiet"])
        .arg("--state-dir")
        .arg(&state)
        .arg("--runtime-config-file")
        .arg(&rc)
        .output()?;
    let built = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "snapshot build: {built}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = built
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .context("the version in the summary")?
        .to_string();
    // In Redis's bulk store (database 1), under the core's layouts, and
    // nothing in the state dir's SQLite.
    let index = redis.cli(&["-n", "1", "GET", "article-projects:Anarchism"])?;
    assert!(index.contains("\"enwiki\""), "{index}");
    let record = redis.cli(&["-n", "1", "GET", "snapshot:enwiki_namespace_0"])?;
    assert!(record.contains(&version), "{record}");
    assert!(
        !state.join("sqlite_key_value.db").exists(),
        "a bulk command wrote to SQLite instead of Redis"
    );

    let (a, b) = two_hosts(
        &redis,
        &dir,
        &wiki,
        r#"[{"name":"free","monthly":{"ondemand":100,"snapshot":10,"chunk":10},"burst_per_second":1000}]"#,
    )?;
    let auth = crate::common::account(&a, "bulkreader", serde_json::json!({}))?;
    let h = [("authorization", auth.as_str())];
    let mut downloads = Vec::new();
    for host in [&a, &b] {
        let r = get(&host.url("/v2/articles/Anarchism"), &h)?;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("etag"), Some("\"9012\""));
        assert_eq!(r.json()?[0]["name"], "Anarchism");
        let meta = get(&host.url("/v2/snapshots/enwiki_namespace_0"), &h)?;
        assert_eq!(meta.status, 200, "{}", meta.text());
        assert_eq!(meta.json()?["version"], version.as_str());
        let download = get(&host.url("/v2/snapshots/enwiki_namespace_0/download"), &h)?;
        assert_eq!(download.status, 200, "{}", download.text());
        downloads.push(download.body);
    }
    assert_eq!(
        wiki.hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "an imported article must not be fetched upstream"
    );
    assert!(
        downloads[0] == downloads[1],
        "the two hosts served different bytes"
    );
    let files = crate::snapshots::untar(&downloads[0])?;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "enwiki_namespace_0.ndjson");
    let names: Vec<String> = String::from_utf8(files[0].1.clone())?
        .lines()
        .map(|l| Ok(serde_json::from_str::<serde_json::Value>(l)?["name"].to_string()))
        .collect::<Result<_>>()?;
    // Every namespace-0 article the build counted, once each.
    let counted: usize = built
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .context("the article count in the summary")?
        .parse()?;
    assert!(counted >= 4, "{built}");
    assert_eq!(names.len(), counted, "{names:?}");
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert!(names.contains(&"\"Anarchism\"".to_string()), "{names:?}");
    // Stores by purpose: bulk bytes in one store, accounts and counters in
    // the other.
    let bulk = redis.cli(&["-n", "1", "--scan"])?;
    let counters = redis.cli(&["-n", "0", "--scan"])?;
    let is_bulk = |k: &str| {
        [
            "article:",
            "article-projects:",
            "snapshot:",
            "snapshot-index",
            "snapshot-blob:",
            "structured-snapshot:",
            "structured-snapshot-index",
        ]
        .iter()
        .any(|p| k.starts_with(p))
    };
    assert!(bulk.lines().all(is_bulk), "{bulk}");
    assert!(bulk.lines().count() > 10, "{bulk}");
    assert!(!counters.lines().any(is_bulk), "{counters}");
    assert!(
        !counters.is_empty(),
        "accounts and counters are in the default store"
    );
    Ok(())
}
