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

/// One import run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ImportRun {
    pub(crate) binary: String,
    pub(crate) round: usize,
    pub(crate) seconds: f64,
    pub(crate) pages_per_s: f64,
    pub(crate) peak_rss_kib: Option<u64>,
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

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
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
            };
            println!(
                "  {n} articles, round {round}, {label} ({}): {:.0} pages/s, peak RSS {} KiB",
                run.binary,
                run.pages_per_s,
                run.peak_rss_kib.map_or("?".into(), |k| k.to_string())
            );
            runs.push(run);
        }
    }
    let _ = std::fs::remove_file(&file);
    let rate = |who: &Runner| {
        let mut v: Vec<f64> = runs
            .iter()
            .filter(|r| r.binary == who.wikiedge.display().to_string())
            .map(|r| r.pages_per_s)
            .collect();
        median(&mut v)
    };
    let ratio = rate(this).zip(rate(other)).map(|(a, b)| a / b);
    Ok(ImportComparison {
        articles: n,
        dump_bytes,
        runs,
        ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_takes_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
