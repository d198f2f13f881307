//! `--import-against OTHER`: the import alone, this binary against another
//! in the same run. Per article size the dump is generated once, then
//! imported into a fresh state directory by each binary in turn, other
//! first, for `--rounds` rounds, so both see the same machine at nearly
//! the same moment (the only fair comparison on a shared machine). Each
//! import's wall time and peak RSS are recorded; the ratio is of the
//! medians of pages/s.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::dump;
use crate::host::Runner;
use wikiedge_bench::stats::median;

/// One import run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ImportRun {
    pub(crate) binary: String,
    pub(crate) round: usize,
    pub(crate) seconds: f64,
    pub(crate) pages_per_s: f64,
    pub(crate) peak_rss_kib: Option<u64>,
    /// The bytes it caused to be written to storage (`Ran::written_bytes`).
    pub(crate) written_bytes: Option<u64>,
}

/// One article size, both binaries.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ImportComparison {
    pub(crate) articles: usize,
    pub(crate) dump_bytes: u64,
    pub(crate) runs: Vec<ImportRun>,
    /// Median pages/s of `--wikiedge` over that of `--import-against`.
    pub(crate) ratio: Option<f64>,
}

/// Imports an `n`-article dump with `other` and with `this`, alternating.
pub(crate) fn compare(
    this: &Runner,
    other: &Runner,
    fixtures: &Path,
    tmp: &Path,
    n: usize,
    rounds: usize,
) -> Result<ImportComparison> {
    let sample = dump::read_sample(fixtures)?;
    let file = tmp.join(format!("dump-{n}.xml"));
    let dump_bytes = dump::write_dump(&sample, n, &file)?;
    let mut runs = Vec::new();
    for round in 1..=rounds {
        for (label, runner) in [("other", other), ("this", this)] {
            let state: PathBuf = tmp.join(format!("import-{n}-{label}-{round}"));
            let ran = runner
                .import(&format!("import-{n}-{label}-{round}"), &file, &state)
                .with_context(|| format!("{label} import, round {round}"))?;
            let _ = std::fs::remove_dir_all(&state);
            let run = ImportRun {
                binary: runner.wikiedge.display().to_string(),
                round,
                seconds: ran.seconds,
                pages_per_s: n as f64 / ran.seconds,
                peak_rss_kib: ran.peak_rss_kib,
                written_bytes: ran.written_bytes,
            };
            println!(
                "  {n} articles, round {round}, {label} ({}): {:.0} pages/s, peak RSS {} KiB, {} written",
                run.binary,
                run.pages_per_s,
                run.peak_rss_kib.map_or("?".into(), |k| k.to_string()),
                crate::megabytes(run.written_bytes)
            );
            runs.push(run);
        }
    }
    let _ = std::fs::remove_file(&file);
    let rate = |who: &Runner| {
        median(
            runs.iter()
                .filter(|r| r.binary == who.wikiedge.display().to_string())
                .map(|r| r.pages_per_s)
                .collect(),
        )
    };
    let ratio = rate(this).zip(rate(other)).map(|(a, b)| a / b);
    Ok(ImportComparison {
        articles: n,
        dump_bytes,
        runs,
        ratio,
    })
}
