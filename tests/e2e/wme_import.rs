//! `wikiedge import` of Wikimedia Enterprise NDJSON: the real WME documents
//! of the fixtures imported, then served by On-demand and in a snapshot
//! field for field as they were read, and a wikiedge snapshot imported back.
//!
//! The fixture lines are written to a temporary file at test time; nothing
//! of them is committed.

use std::io::Read;

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use wikiedge_cli::import::{ImportArgs, run as import};
use wikiedge_cli::snapshot::{SnapshotArgs, run as build};
use wikiedge_tests::{Host, TempDir, fixtures_or_skip, get, repo_root};

use crate::quota::bearer;
use crate::{ADMIN_KEY, BIN};

const PLANS: &str = r#"[{"name":"free","monthly":{"ondemand":1000,"snapshot":30,"chunk":1500},"burst_per_second":1000}]"#;

/// The real WME documents (`wme/responses/articles.ndjson`), one per line.
/// `None` (the test is skipped, saying so) without the fixtures.
fn wme_lines() -> Result<Option<Vec<String>>> {
    let Some(fixtures) = fixtures_or_skip() else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(fixtures.join("wme/responses/articles.ndjson"))?;
    Ok(Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
    ))
}

fn quiet(file: &std::path::Path, state: &std::path::Path) -> ImportArgs {
    let mut args = ImportArgs::new(file, None).with_state_dir(state);
    args.progress = false;
    args
}

#[test]
fn wme_documents_round_trip_through_import_on_demand_and_snapshots() -> Result<()> {
    let Some(lines) = wme_lines()? else {
        return Ok(());
    };
    ensure!(lines.len() == 3, "three Squirrel documents in the fixture");
    let state = TempDir::new("wme-import")?;
    let input = state.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n") + "\n")?;
    let summary = import(quiet(&input, state.path()))?;
    assert_eq!(
        (
            summary.pages,
            summary.articles,
            summary.written,
            summary.malformed
        ),
        (3, 3, 3, 0)
    );
    let snapshot = {
        let mut args = SnapshotArgs::new("enwiki");
        args.state_dir = state.path().to_path_buf();
        args.progress = false;
        build(args)?
    };

    let host = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .env("SPIN_VARIABLE_PLANS", PLANS)
        .state_dir(state.path())
        .start()?;
    let auth = bearer(&host, "wme-reader", "user")?;
    let a = [("authorization", auth.as_str())];

    // On-demand, JSON: the three documents (dewiki, enwiki, ruwiki), each
    // equal as JSON to its input line — `event` included, nothing added.
    let r = get(&host.url("/v2/articles/Squirrel"), &a)?;
    assert_eq!(r.status, 200, "{}", r.text());
    let served = r.json()?;
    let served = served.as_array().context("an array")?;
    assert_eq!(served.len(), 3);
    for (doc, line) in served.iter().zip(&lines) {
        let input: Value = serde_json::from_str(line)?;
        assert_eq!(doc, &input, "{}", input["is_part_of"]["identifier"]);
    }
    assert!(
        served[1]["article_body"]["html"]
            .as_str()
            .is_some_and(|h| h.len() > 300_000)
    );
    assert_eq!(r.header("etag"), Some("\"181072077-1171934824-131059810\""));

    // NDJSON: byte for byte the input.
    let r = get(
        &host.url("/v2/articles/Squirrel"),
        &[
            ("authorization", auth.as_str()),
            ("accept", "application/x-ndjson"),
        ],
    )?;
    assert_eq!(r.status, 200);
    assert!(
        r.text() == lines.join("\n") + "\n",
        "NDJSON differs from the input"
    );

    // The enwiki snapshot holds the enwiki document byte for byte.
    let download = get(&host.url("/v2/snapshots/enwiki_namespace_0/download"), &a)?;
    assert_eq!(download.status, 200, "{}", download.text());
    assert_eq!(download.body.len() as u64, snapshot.tar_gz_bytes);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(download.body.as_slice()).read_to_end(&mut tar)?;
    let files = wikiedge_core::snapshot::read_tar(&tar).context("a well-formed tar")?;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "enwiki_namespace_0.ndjson");
    assert!(files[0].1 == format!("{}\n", lines[1]).into_bytes());

    // That snapshot, imported into an empty store, gives the same document.
    let again = TempDir::new("wme-reimport")?;
    let file = again.path().join("enwiki_namespace_0.tar.gz");
    std::fs::write(&file, &download.body)?;
    let summary = import(quiet(&file, again.path()))?;
    assert_eq!(
        (summary.pages, summary.written, summary.malformed),
        (1, 1, 0)
    );
    let store = wikiedge_cli::bulk::Bulk::open(&wikiedge_cli::import::target(again.path(), None))?;
    let value = store
        .get("article:enwiki:Squirrel")?
        .context("Squirrel re-imported")?;
    assert!(
        wikiedge_core::article::layout::document(&value) == lines[1].as_bytes(),
        "re-imported bytes differ"
    );
    Ok(())
}

/// A 10,000-document NDJSON generated from the real documents (new page
/// ids and titles), imported with `wikiedge import`: documents per second
/// and, under `/usr/bin/time -v`, peak RSS. Run by hand:
/// `cargo test -p wikiedge --release --test e2e wme_import::measure -- --ignored --nocapture`.
#[test]
#[ignore = "measures throughput; run by hand"]
fn measure_import_of_10000_wme_documents() -> Result<()> {
    let Some(lines) = wme_lines()? else {
        return Ok(());
    };
    let dir = TempDir::new("wme-measure")?;
    let input = dir.path().join("10000.ndjson");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&input)?);
    for i in 0..10_000u64 {
        let mut doc: Value = serde_json::from_str(&lines[(i % 3) as usize])?;
        doc["identifier"] = Value::from(10_000_000 + i);
        doc["name"] = Value::from(format!("Squirrel {i}"));
        serde_json::to_writer(&mut out, &doc)?;
        std::io::Write::write_all(&mut out, b"\n")?;
    }
    std::io::Write::flush(&mut out)?;
    drop(out);
    let bytes = std::fs::metadata(&input)?.len();
    let state = dir.path().join("state");
    let time = std::path::Path::new("/usr/bin/time");
    let output = if time.exists() {
        std::process::Command::new(time)
            .arg("-v")
            .arg(BIN)
            .args(["import", "--quiet", "--state-dir"])
            .arg(&state)
            .arg(&input)
            .output()?
    } else {
        std::process::Command::new(BIN)
            .args(["import", "--quiet", "--state-dir"])
            .arg(&state)
            .arg(&input)
            .output()?
    };
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("input: 10000 documents, {:.1} MB", bytes as f64 / 1e6);
    println!("{}", stdout.trim());
    for line in stderr.lines() {
        if line.contains("Maximum resident") || line.contains("Elapsed (wall") {
            println!("{}", line.trim());
        }
    }
    ensure!(
        stdout.contains("pages 10000, articles 10000 (10000 written)"),
        "{stdout}"
    );
    Ok(())
}
