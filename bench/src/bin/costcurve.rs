//! `costcurve`: how the cost of importing and storing articles grows with
//! their number.
//!
//! It makes MediaWiki XML dumps of 1k, 10k, ... articles from the real
//! enwiki sample in the fixtures (its article pages cycled under new titles
//! and page and revision ids; nothing of the fixtures is written into the
//! repository, only into a temporary directory), imports each into a fresh
//! state directory with `wikiedge import`, and records per size: import
//! seconds and pages/s, the import's peak RSS (`VmHWM`, polled), and the
//! SQLite store's size on disk. It writes the points as JSON and an SVG
//! chart of each cost *per article*, relative to the smallest size: a flat
//! line is a cost linear in the data, a rising one grows faster.
//!
//! ```text
//! cargo build --release -p wikiedge -p wikiedge-bench
//! target/release/costcurve --articles 1000,10000 --svg BENCHMARKS-costcurve.svg
//! ```

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde::Serialize;

/// Generates article data from the real fixtures at growing sizes and
/// measures the import and the store at each.
#[derive(Debug, Parser)]
#[command(name = "costcurve")]
struct Args {
    /// The wikiedge binary.
    #[arg(long, default_value = "target/release/wikiedge")]
    wikiedge: PathBuf,
    /// The fixtures folder (default: `WIKIEDGE_FIXTURES`, else
    /// `../shared/fixtures`, as the test harness's `fixtures()`).
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Article counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    articles: Vec<usize>,
    /// The JSON written.
    #[arg(long, default_value = "bench-results/costcurve.json")]
    out: PathBuf,
    /// The SVG chart written (e.g. beside BENCHMARKS.md).
    #[arg(long, default_value = "bench-results/costcurve.svg")]
    svg: PathBuf,
    /// Seconds one import may take.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

/// One measured size.
#[derive(Debug, Clone, Serialize)]
struct Point {
    articles: usize,
    dump_bytes: u64,
    import_seconds: f64,
    import_pages_per_s: f64,
    import_peak_rss_kib: Option<u64>,
    sqlite_bytes: u64,
}

/// The enwiki sample's article pages (namespace 0, not redirects), each a
/// `<page>...</page>` block, and the dump's head (up to the first page).
struct Sample {
    head: String,
    pages: Vec<String>,
}

fn read_sample(fixtures: &Path) -> Result<Sample> {
    let path = fixtures.join("dumps/enwiki-sample-206-pages.xml.bz2");
    let file = std::fs::File::open(&path).with_context(|| format!("{}", path.display()))?;
    let mut xml = String::new();
    bzip2::read::BzDecoder::new(file)
        .read_to_string(&mut xml)
        .with_context(|| format!("decompressing {}", path.display()))?;
    let first = xml.find("  <page>").context("no <page> in the sample")?;
    let head = xml[..first].to_string();
    let mut pages = Vec::new();
    let mut rest = &xml[first..];
    while let Some(start) = rest.find("<page>") {
        let end = rest[start..]
            .find("</page>")
            .context("unterminated <page>")?
            + start
            + "</page>".len();
        let page = &rest[start..end];
        if page.contains("<ns>0</ns>") && !page.contains("<redirect") {
            pages.push(page.to_string());
        }
        rest = &rest[end..];
    }
    if pages.is_empty() {
        bail!("no article pages in {}", path.display());
    }
    Ok(Sample { head, pages })
}

/// Replaces the text of the first `<tag>` element at or after `from`;
/// returns where that element ends.
fn replace_first(page: &mut String, tag: &str, from: usize, value: &str) -> Option<usize> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = page[from..].find(&open)? + from + open.len();
    let end = page[start..].find(&close)? + start;
    page.replace_range(start..end, value);
    Some(start + value.len() + close.len())
}

/// Page `n` of a generated dump: sample page `n % len` under a new title
/// and new page and revision ids, so that every article is distinct.
fn generated_page(sample: &Sample, n: usize) -> Option<String> {
    let mut page = sample.pages[n % sample.pages.len()].clone();
    let t0 = page.find("<title>")? + "<title>".len();
    let t1 = page[t0..].find("</title>")? + t0;
    let title = format!("{} (cost curve {n})", &page[t0..t1]);
    replace_first(&mut page, "title", 0, &title)?;
    let after_ns = page.find("</ns>")?;
    replace_first(&mut page, "id", after_ns, &(1_000_000_000 + n).to_string())?;
    let rev = page.find("<revision>")?;
    replace_first(&mut page, "id", rev, &(2_000_000_000 + n).to_string())?;
    Some(page)
}

/// Writes a dump of `articles` generated pages; returns its size.
fn write_dump(sample: &Sample, articles: usize, path: &Path) -> Result<u64> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    out.write_all(sample.head.as_bytes())?;
    for n in 0..articles {
        let page = generated_page(sample, n).context("a sample page without title or ids")?;
        out.write_all(b"  ")?;
        out.write_all(page.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.write_all(b"</mediawiki>\n")?;
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Runs `wikiedge import` of `dump` into `state`; returns the seconds and
/// the last peak RSS read while it ran.
fn import(args: &Args, dump: &Path, state: &Path) -> Result<(f64, Option<u64>)> {
    let t = Instant::now();
    let mut child = Command::new(&args.wikiedge)
        .arg("import")
        .arg(dump)
        .args(["--project", "enwiki", "--quiet", "--state-dir"])
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", args.wikiedge.display()))?;
    let mut peak = None;
    let deadline = t + Duration::from_secs(args.timeout);
    let status = loop {
        if let Some(kib) = wikiedge_bench::procfs::status_kib(child.id(), "VmHWM") {
            peak = Some(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the import of {} took over {}s",
                dump.display(),
                args.timeout
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!("wikiedge import {} failed: {status}", dump.display());
    }
    Ok((t.elapsed().as_secs_f64(), peak))
}

/// The store's bytes on disk: the SQLite file and its write-ahead log.
fn sqlite_bytes(state: &Path) -> u64 {
    ["sqlite_key_value.db", "sqlite_key_value.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(state.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// One curve: a cost per article at each size, relative to the first.
struct Series {
    name: &'static str,
    colour: &'static str,
    per_article: Vec<(usize, f64)>,
}

fn series(points: &[Point]) -> Vec<Series> {
    let per = |name, colour, f: &dyn Fn(&Point) -> Option<f64>| Series {
        name,
        colour,
        per_article: points
            .iter()
            .filter_map(|p| Some((p.articles, f(p)? / p.articles as f64)))
            .collect(),
    };
    vec![
        per("import seconds", "#d62728", &|p| Some(p.import_seconds)),
        per("import peak RSS", "#1f77b4", &|p| {
            p.import_peak_rss_kib.map(|k| k as f64)
        }),
        per("SQLite bytes", "#2ca02c", &|p| Some(p.sqlite_bytes as f64)),
    ]
}

/// The chart: per-article cost relative to the smallest size (y, linear,
/// 1.0 = the same cost per article) against articles (x, log10).
fn svg(points: &[Point]) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 360.0, 60.0, 180.0, 30.0, 40.0);
    let curves = series(points);
    let xs: Vec<f64> = points.iter().map(|p| (p.articles as f64).log10()).collect();
    let (x0, x1) = (
        xs.iter().cloned().fold(f64::INFINITY, f64::min),
        xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    let rel = |s: &Series| -> Vec<(f64, f64)> {
        let base = s.per_article.first().map_or(1.0, |p| p.1);
        s.per_article
            .iter()
            .map(|(n, v)| ((*n as f64).log10(), if base > 0.0 { v / base } else { 0.0 }))
            .collect()
    };
    let y_max = curves
        .iter()
        .flat_map(|s| rel(s).into_iter().map(|p| p.1))
        .fold(2.0_f64, f64::max)
        .ceil();
    let px = |x: f64| {
        let span = if x1 > x0 { x1 - x0 } else { 1.0 };
        left + (x - x0) / span * (w - left - right)
    };
    let py = |y: f64| h - bottom - y / y_max * (h - top - bottom);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"18\">Cost per article relative to {} articles (flat = linear in the data)</text>\n",
        points.first().map_or(0, |p| p.articles)
    );
    // Axes, the 1.0 line, ticks at each size.
    out.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    ));
    out.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n",
        w - right,
        y = py(1.0)
    ));
    for t in 0..=(y_max as u32) {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{t}.0</text>\n",
            left - 6.0,
            py(f64::from(t)) + 4.0
        ));
    }
    for p in points {
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            px((p.articles as f64).log10()),
            h - bottom + 16.0,
            p.articles
        ));
    }
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">articles (log scale)</text>\n",
        (left + w - right) / 2.0,
        h - 6.0
    ));
    for (i, s) in curves.iter().enumerate() {
        let pts: Vec<String> = rel(s)
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
            s.colour,
            pts.join(" ")
        ));
        let ly = top + 20.0 * i as f64 + 10.0;
        out.push_str(&format!(
            "<line x1=\"{:.1}\" y1=\"{ly}\" x2=\"{:.1}\" y2=\"{ly}\" stroke=\"{}\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            w - right + 10.0,
            w - right + 30.0,
            s.colour,
            w - right + 36.0,
            ly + 4.0,
            s.name
        ));
    }
    out.push_str("</svg>\n");
    out
}

fn main() -> Result<()> {
    let args = Args::parse();
    let fixtures = args.fixtures.clone().unwrap_or_else(|| {
        std::env::var_os("WIKIEDGE_FIXTURES")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("../shared/fixtures"), PathBuf::from)
    });
    let sample = read_sample(&fixtures)?;
    println!(
        "{} article pages in the sample; sizes {:?}",
        sample.pages.len(),
        args.articles
    );
    let tmp = tempfile::Builder::new().prefix("costcurve-").tempdir()?;
    let mut points = Vec::new();
    for &n in &args.articles {
        let dump = tmp.path().join(format!("dump-{n}.xml"));
        let dump_bytes = write_dump(&sample, n, &dump)?;
        let state = tmp.path().join(format!("state-{n}"));
        let (secs, peak) = import(&args, &dump, &state)?;
        let p = Point {
            articles: n,
            dump_bytes,
            import_seconds: secs,
            import_pages_per_s: n as f64 / secs,
            import_peak_rss_kib: peak,
            sqlite_bytes: sqlite_bytes(&state),
        };
        println!("{}", serde_json::to_string(&p)?);
        points.push(p);
        // Each size's data goes before the next is made.
        let _ = std::fs::remove_file(&dump);
        let _ = std::fs::remove_dir_all(&state);
    }
    for path in [&args.out, &args.svg] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    let report = serde_json::json!({
        "points": points,
        "not_measured": [
            "accounts (1k/10k/100k) and the admin monthly usage report",
            "cached-article lookup req/s and p99 at each size",
            "snapshot build time and peak RSS",
        ],
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    std::fs::write(&args.svg, svg(&points))?;
    println!("wrote {} and {}", args.out.display(), args.svg.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let page = |t: &str, id: u32| {
            format!(
                "<page>\n    <title>{t}</title>\n    <ns>0</ns>\n    <id>{id}</id>\n    <revision>\n      <id>{}</id>\n      <contributor><id>7</id></contributor>\n      <text>x</text>\n    </revision>\n  </page>",
                id * 10
            )
        };
        Sample {
            head: "<mediawiki>\n".into(),
            pages: vec![page("Alpha", 1), page("Beta", 2)],
        }
    }

    #[test]
    fn generated_pages_are_distinct_copies_of_the_sample() {
        let s = sample();
        let p = generated_page(&s, 3).expect("page");
        // Page 3 is sample page 1 (Beta) under a new title and ids; the
        // contributor's id is untouched.
        assert!(p.contains("<title>Beta (cost curve 3)</title>"), "{p}");
        assert!(p.contains("<id>1000000003</id>"), "{p}");
        assert!(p.contains("<id>2000000003</id>"), "{p}");
        assert!(p.contains("<contributor><id>7</id>"), "{p}");
        assert!(
            !p.contains("<id>2</id>") && !p.contains("<id>20</id>"),
            "{p}"
        );
        assert_ne!(generated_page(&s, 1), generated_page(&s, 3));
    }

    #[test]
    fn the_chart_shows_per_article_cost_relative_to_the_smallest_size() {
        let point = |n: usize, secs: f64| Point {
            articles: n,
            dump_bytes: 0,
            import_seconds: secs,
            import_pages_per_s: n as f64 / secs,
            import_peak_rss_kib: Some(1000),
            sqlite_bytes: 100 * n as u64,
        };
        // Import linear from 1k to 10k, then 3x per article at 100k.
        let points = [point(1000, 1.0), point(10_000, 10.0), point(100_000, 300.0)];
        let s = series(&points);
        let growth = s[0].per_article[2].1 / s[0].per_article[0].1;
        assert!((growth - 3.0).abs() < 1e-9, "{growth}");
        assert_eq!(s[2].per_article[0].1, s[2].per_article[2].1);
        let chart = svg(&points);
        assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
        assert_eq!(chart.matches("<polyline").count(), 3);
        for label in ["1000", "10000", "100000", "import seconds", "SQLite bytes"] {
            assert!(chart.contains(label), "{label}");
        }
    }
}
