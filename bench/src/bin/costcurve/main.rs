//! `costcurve`: how the costs of wikiedge grow with its data (issue #18).
//!
//! Articles: it makes MediaWiki XML dumps of 1k, 10k, ... articles from
//! the real enwiki sample in the fixtures ([`dump`]: its article pages
//! cycled under new titles and ids; nothing of the fixtures is written
//! into the repository, only into a temporary directory), and per size, in
//! a fresh state directory: `wikiedge import` (seconds, pages/s, peak RSS
//! polled from `VmHWM`), the SQLite store's size, `wikiedge snapshot build`
//! of enwiki namespace 0 (seconds, peak RSS), then `wikiedge up` on it and
//! closed-loop authenticated `GET /v2/articles/{title}` spread evenly over
//! every title of the size (req/s, p50, p99, the host's peak RSS).
//!
//! Accounts: per size, accounts with usage in one month written straight
//! into a fresh state directory's store ([`accounts`]), then `wikiedge up`
//! on it and the whole admin monthly usage report fetched page by page
//! ([`report`]: seconds, pages, rows, p99 page time, the host's peak RSS),
//! checked to hold every account exactly once; and the SQLite size.
//!
//! It writes the points as JSON and an SVG chart ([`chart`]) of each cost
//! per unit relative to the smallest size: a flat line is a cost linear in
//! the data (per request: constant), a rising one grows faster.
//!
//! With `--import-against OTHER` it measures only the import, this binary
//! against another in the same run, alternating ([`import_ab`]).
//!
//! ```text
//! cargo build --release -p wikiedge -p wikiedge-bench
//! target/release/wikiedge build
//! target/release/costcurve --articles 1000,10000 --accounts 1000,10000 \
//!     --out BENCHMARKS-costcurve.json --svg BENCHMARKS-costcurve.svg
//! ```

mod accounts;
mod chart;
mod dump;
mod host;
mod import_ab;
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use serde::Serialize;

use crate::chart::{Panel, Series};
use crate::host::{Lookups, Runner, sqlite_bytes};

/// Generates article and account data from the real fixtures at growing
/// sizes and measures what each costs.
#[derive(Debug, Parser)]
#[command(name = "costcurve")]
struct Args {
    /// The wikiedge binary.
    #[arg(long, default_value = "target/release/wikiedge")]
    wikiedge: PathBuf,
    /// The workspace root (`spin.toml` and the built components).
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// The fixtures folder (default: `WIKIEDGE_FIXTURES`, else
    /// `../shared/fixtures`, as the test harness's `fixtures()`).
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Article counts, comma-separated ('' for none).
    #[arg(long, default_value = "1000,10000", value_parser = sizes)]
    articles: Sizes,
    /// Account counts, comma-separated ('' for none).
    #[arg(long, default_value = "1000,10000", value_parser = sizes)]
    accounts: Sizes,
    /// Seconds of measured lookups per article size (after 1 s warm-up).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Lookup connections (requests in flight).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The JSON written.
    #[arg(long, default_value = "bench-results/costcurve.json")]
    out: PathBuf,
    /// The SVG chart written (e.g. beside BENCHMARKS.md).
    #[arg(long, default_value = "bench-results/costcurve.svg")]
    svg: PathBuf,
    /// Child logs.
    #[arg(long, default_value = "bench-results/logs/costcurve")]
    logs: PathBuf,
    /// Measure only the import: this `--wikiedge` against this other
    /// binary, alternating, at each `--articles` size.
    #[arg(long)]
    import_against: Option<PathBuf>,
    /// Rounds of `--import-against` (each imports once with each binary).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds one command (import, snapshot build, host start) may take.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

/// The sizes to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sizes(Vec<usize>);

/// `1000,10000` (or nothing) as sizes, each at least 1.
fn sizes(text: &str) -> Result<Sizes, String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| match t.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("'{t}' is not a positive count")),
        })
        .collect::<Result<Vec<usize>, String>>()
        .map(Sizes)
}

/// One measured article size.
#[derive(Debug, Clone, Serialize)]
struct ArticlePoint {
    articles: usize,
    dump_bytes: u64,
    import_seconds: f64,
    import_pages_per_s: f64,
    import_peak_rss_kib: Option<u64>,
    /// What the import caused to be written to storage: its WAL, then the
    /// database file the WAL is checkpointed into.
    import_written_bytes: Option<u64>,
    sqlite_bytes: u64,
    snapshot_seconds: f64,
    snapshot_peak_rss_kib: Option<u64>,
    snapshot_written_bytes: Option<u64>,
    /// The store with the snapshot's parts too.
    sqlite_bytes_after_snapshot: u64,
    lookups: Lookups,
}

/// One measured account size.
#[derive(Debug, Clone, Serialize)]
struct AccountPoint {
    accounts: usize,
    month: String,
    generate_seconds: f64,
    sqlite_bytes: u64,
    report_seconds: f64,
    report_pages: usize,
    report_rows: usize,
    report_page_p99_ms: Option<f64>,
    host_peak_rss_kib: Option<u64>,
}

/// Bytes as whole megabytes for a progress line, `?` when not measured.
pub(crate) fn megabytes(bytes: Option<u64>) -> String {
    bytes.map_or("? MB".into(), |b| format!("{:.0} MB", b as f64 / 1e6))
}

/// The fixtures folder: `--fixtures`, else `WIKIEDGE_FIXTURES`, else
/// `../shared/fixtures`.
fn fixtures(args: &Args) -> PathBuf {
    args.fixtures.clone().unwrap_or_else(|| {
        std::env::var_os("WIKIEDGE_FIXTURES")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("../shared/fixtures"), PathBuf::from)
    })
}

/// `--import-against`: the import of each article size by both binaries.
fn import_only(args: &Args, this: &Runner, other: &Path) -> Result<()> {
    let other = Runner {
        wikiedge: std::path::absolute(other)?,
        root: this.root.clone(),
        logs: this.logs.clone(),
        timeout: this.timeout,
    };
    let tmp = tempfile::Builder::new().prefix("costcurve-").tempdir()?;
    let mut points = Vec::new();
    for &n in &args.articles.0 {
        let p = import_ab::compare(this, &other, &fixtures(args), tmp.path(), n, args.rounds)?;
        println!(
            "  {n} articles: ratio of median pages/s {}",
            p.ratio.map_or("?".into(), |r| format!("{r:.2}"))
        );
        points.push(p);
    }
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let report = serde_json::json!({ "import_comparison": points });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

fn articles(
    rt: &tokio::runtime::Runtime,
    args: &Args,
    runner: &Runner,
    tmp: &Path,
    n: usize,
) -> Result<ArticlePoint> {
    let sample = dump::read_sample(&fixtures(args))?;
    let file = tmp.join(format!("dump-{n}.xml"));
    let dump_bytes = dump::write_dump(&sample, n, &file)?;
    let state = tmp.join(format!("articles-{n}"));
    let import = runner.import(&format!("import-{n}"), &file, &state)?;
    // Each size's data goes before the next is made.
    let _ = std::fs::remove_file(&file);
    let sqlite = sqlite_bytes(&state);
    println!(
        "  {n} articles: imported in {:.1}s, {} written",
        import.seconds,
        megabytes(import.written_bytes)
    );
    let snapshot = runner.snapshot(&format!("snapshot-{n}"), &state)?;
    println!(
        "  {n} articles: snapshot built in {:.1}s, {} written",
        snapshot.seconds,
        megabytes(snapshot.written_bytes)
    );
    let sqlite_after_snapshot = sqlite_bytes(&state);
    let paths = (0..n)
        .map(|i| dump::generated_title(&sample, i).map(|t| dump::article_path(&t)))
        .collect::<Option<Vec<String>>>()
        .context("a sample page without a title")?;
    let duration = Duration::try_from_secs_f64(args.duration).context("--duration")?;
    let lookups = rt.block_on(runner.lookups(
        &format!("up-articles-{n}"),
        &state,
        paths,
        args.connections,
        duration,
    ))?;
    let _ = std::fs::remove_dir_all(&state);
    Ok(ArticlePoint {
        articles: n,
        dump_bytes,
        import_seconds: import.seconds,
        import_pages_per_s: n as f64 / import.seconds,
        import_peak_rss_kib: import.peak_rss_kib,
        import_written_bytes: import.written_bytes,
        sqlite_bytes: sqlite,
        snapshot_seconds: snapshot.seconds,
        snapshot_peak_rss_kib: snapshot.peak_rss_kib,
        snapshot_written_bytes: snapshot.written_bytes,
        sqlite_bytes_after_snapshot: sqlite_after_snapshot,
        lookups,
    })
}

fn accounts(
    rt: &tokio::runtime::Runtime,
    runner: &Runner,
    tmp: &Path,
    n: usize,
) -> Result<AccountPoint> {
    let state = tmp.join(format!("accounts-{n}"));
    let t = Instant::now();
    accounts::write(&state, n)?;
    let generate_seconds = t.elapsed().as_secs_f64();
    println!("  {n} accounts: written in {generate_seconds:.1}s");
    let sqlite = sqlite_bytes(&state);
    let (fetched, peak) = rt.block_on(async {
        // The development admin key the host writes to the state directory
        // on its first start (or the one the environment sets, as for the CLI).
        let host = runner.up(&format!("up-accounts-{n}"), &state, &[]).await?;
        let key = wikiedge_cli::account::admin_key(
            std::env::var("SPIN_VARIABLE_ADMIN_API_KEY").ok(),
            &state,
        )?;
        let fetched = report::fetch_all(&host.base_url, &key).await;
        let peak = host.proc.status_kib("VmHWM");
        host.proc.stop().await;
        anyhow::Ok((fetched?, peak))
    })?;
    let rows = report::verify(&fetched.pages, n)
        .with_context(|| format!("the report of {n} generated accounts"))?;
    let _ = std::fs::remove_dir_all(&state);
    Ok(AccountPoint {
        accounts: n,
        month: accounts::MONTH.to_string(),
        generate_seconds,
        sqlite_bytes: sqlite,
        report_seconds: fetched.seconds,
        report_pages: fetched.pages.len(),
        report_rows: rows,
        report_page_p99_ms: report::quantile(&fetched.page_seconds, 0.99).map(|s| s * 1e3),
        host_peak_rss_kib: peak,
    })
}

fn kib(k: Option<u64>) -> Option<f64> {
    k.map(|k| k as f64)
}

/// The chart's panels: per-article and per-request costs, per-account costs.
fn panels(a: &[ArticlePoint], c: &[AccountPoint]) -> Vec<Panel> {
    let n = |p: &ArticlePoint| p.articles;
    let m = |p: &AccountPoint| p.accounts;
    vec![
        Panel {
            title: "Articles: cost per article (per request for lookups), relative to the smallest size".into(),
            unit: "articles",
            series: vec![
                Series::of("import seconds", "#d62728", a, n, true, |p| Some(p.import_seconds)),
                Series::of("import peak RSS", "#ff9896", a, n, true, |p| kib(p.import_peak_rss_kib)),
                Series::of("snapshot seconds", "#1f77b4", a, n, true, |p| Some(p.snapshot_seconds)),
                Series::of("snapshot peak RSS", "#aec7e8", a, n, true, |p| kib(p.snapshot_peak_rss_kib)),
                Series::of("SQLite bytes", "#2ca02c", a, n, true, |p| Some(p.sqlite_bytes as f64)),
                Series::of("import bytes written", "#bcbd22", a, n, true, |p| {
                    p.import_written_bytes.map(|b| b as f64)
                }),
                Series::of("snapshot bytes written", "#17becf", a, n, true, |p| {
                    p.snapshot_written_bytes.map(|b| b as f64)
                }),
                Series::of("lookup p99", "#9467bd", a, n, false, |p| Some(p.lookups.p99_ms)),
                Series::of("lookup 1/(req/s)", "#8c564b", a, n, false, |p| {
                    Some(1.0 / p.lookups.requests_per_s)
                }),
            ],
        },
        Panel {
            title: "Accounts: cost per account, relative to the smallest size".into(),
            unit: "accounts",
            series: vec![
                Series::of("usage report seconds", "#d62728", c, m, true, |p| Some(p.report_seconds)),
                Series::of("SQLite bytes", "#2ca02c", c, m, true, |p| Some(p.sqlite_bytes as f64)),
            ],
        },
    ]
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.logs)?;
    let runner = Runner {
        wikiedge: std::path::absolute(&args.wikiedge)?,
        root: std::path::absolute(&args.root)?,
        logs: std::path::absolute(&args.logs)?,
        timeout: args.timeout,
    };
    if let Some(other) = &args.import_against {
        return import_only(&args, &runner, other);
    }
    println!(
        "sizes: articles {:?}, accounts {:?}",
        args.articles.0, args.accounts.0
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let tmp = tempfile::Builder::new().prefix("costcurve-").tempdir()?;
    let mut article_points = Vec::new();
    for &n in &args.articles.0 {
        let p = articles(&rt, &args, &runner, tmp.path(), n)?;
        println!("{}", serde_json::to_string(&p)?);
        article_points.push(p);
    }
    let mut account_points = Vec::new();
    for &n in &args.accounts.0 {
        let p = accounts(&rt, &runner, tmp.path(), n)?;
        println!("{}", serde_json::to_string(&p)?);
        account_points.push(p);
    }
    for path in [&args.out, &args.svg] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    let report = serde_json::json!({
        "articles": article_points,
        "accounts": account_points,
        "lookup_connections": args.connections,
        "lookup_duration_s": args.duration,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    std::fs::write(
        &args.svg,
        chart::svg(&panels(&article_points, &account_points)),
    )?;
    println!("wrote {} and {}", args.out.display(), args.svg.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_positive_counts_or_none() {
        assert_eq!(sizes("1000,10000"), Ok(Sizes(vec![1000, 10_000])));
        assert_eq!(sizes(" 100000 "), Ok(Sizes(vec![100_000])));
        assert_eq!(sizes(""), Ok(Sizes(vec![])));
        assert!(sizes("0").is_err());
        assert!(sizes("1k").is_err());
        let args = Args::try_parse_from(["costcurve", "--articles", ""]).expect("args");
        assert_eq!(args.articles, Sizes(vec![]));
        assert_eq!(args.accounts, Sizes(vec![1000, 10_000]));
    }

    #[test]
    fn the_chart_has_every_measured_cost() {
        let lookups = |rps: f64, p99: f64| Lookups {
            connections: 32,
            duration_s: 5.0,
            requests: 1,
            requests_per_s: rps,
            p50_ms: 1.0,
            p99_ms: p99,
            host_peak_rss_kib: Some(1),
        };
        let a = |n: usize, secs: f64, l: Lookups| ArticlePoint {
            articles: n,
            dump_bytes: 0,
            import_seconds: secs,
            import_pages_per_s: n as f64 / secs,
            import_peak_rss_kib: Some(1000),
            import_written_bytes: Some(250 * n as u64 * n as u64 / 1000),
            sqlite_bytes: 100 * n as u64,
            snapshot_seconds: secs / 2.0,
            snapshot_peak_rss_kib: None,
            snapshot_written_bytes: None,
            sqlite_bytes_after_snapshot: 0,
            lookups: l,
        };
        let c = |n: usize, secs: f64| AccountPoint {
            accounts: n,
            month: "2024-03".into(),
            generate_seconds: 1.0,
            sqlite_bytes: 10 * n as u64,
            report_seconds: secs,
            report_pages: n / 200,
            report_rows: 2 * n,
            report_page_p99_ms: None,
            host_peak_rss_kib: None,
        };
        let p = panels(
            &[
                a(1000, 1.0, lookups(100.0, 4.0)),
                a(10_000, 30.0, lookups(50.0, 4.0)),
            ],
            &[c(1000, 2.0), c(10_000, 20.0)],
        );
        let rel = |panel: usize, name: &str| {
            p[panel]
                .series
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.relative())
                .unwrap_or_default()
        };
        // Import 3x per article; lookups half as fast: 2x per request;
        // p99 flat; snapshot RSS unmeasured: no curve; the report linear.
        assert_eq!(rel(0, "import seconds"), [(1000, 1.0), (10_000, 3.0)]);
        assert_eq!(rel(0, "lookup 1/(req/s)")[1], (10_000, 2.0));
        assert_eq!(rel(0, "lookup p99")[1], (10_000, 1.0));
        assert_eq!(rel(0, "SQLite bytes")[1], (10_000, 1.0));
        assert!(rel(0, "snapshot peak RSS").is_empty());
        // Bytes written growing with the square of the articles: 10x per
        // article; none recorded for the snapshot: no curve.
        assert_eq!(rel(0, "import bytes written")[1], (10_000, 10.0));
        assert!(rel(0, "snapshot bytes written").is_empty());
        assert_eq!(rel(1, "usage report seconds")[1], (10_000, 1.0));
        assert_eq!(p[0].series.len(), 9);
        assert_eq!(p[1].series.len(), 2);
    }
}
