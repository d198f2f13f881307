//! The article keys of a store without ordered pages (Redis), sorted on
//! disk rather than held: a build lists them a step at a time
//! (`Store::scan_keys`, in no order and perhaps twice), sorts each run of
//! [`RUN_KEYS`] keys in memory and writes it to a file, then merges the
//! runs, at most [`FAN_IN`] at a time, into one sorted file without
//! repeats, which each pass reads in order. A build holds a run of keys and
//! a buffer per merged run, not one key per article (an enwiki build
//! lists about 7 million).
//!
//! The files go in the temporary directory (`TMPDIR`) and are removed when
//! the build is done with them, or fails.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};

/// Keys sorted in memory before a run is written: about 4 MiB of enwiki's.
pub(super) const RUN_KEYS: usize = 1 << 16;
/// Runs merged at once (one open file and buffer each).
pub(super) const FAN_IN: usize = 64;

/// A file of keys, removed when dropped.
struct Temp(PathBuf);

impl Temp {
    /// A new, empty file in `dir`, named so that builds running at once
    /// never share one.
    fn create(dir: &Path) -> Result<(Temp, BufWriter<File>)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = dir.join(format!(
            "wikiedge-keys-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok((Temp(path), BufWriter::new(file)))
    }

    fn reader(&self) -> Result<BufReader<File>> {
        let file = File::open(&self.0).with_context(|| format!("opening {}", self.0.display()))?;
        Ok(BufReader::new(file))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes one key: its length (u32, little-endian), then its bytes.
fn write_key(out: &mut impl Write, key: &str) -> Result<()> {
    let len = u32::try_from(key.len()).context("a key over 4 GiB")?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(key.as_bytes())?;
    Ok(())
}

/// Reads the next key, `None` at the end.
fn read_key(input: &mut impl BufRead) -> Result<Option<String>> {
    if input.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let mut len = [0; 4];
    input.read_exact(&mut len)?;
    let mut key = vec![0; u32::from_le_bytes(len) as usize];
    input.read_exact(&mut key)?;
    Ok(Some(
        String::from_utf8(key).context("a key file holds a key that is not UTF-8")?,
    ))
}

/// Keys sorted, without repeats, in a file.
pub(super) struct KeyFile {
    file: Temp,
    keys: u64,
    runs: usize,
}

impl KeyFile {
    /// Sorts the keys `next` gives, a step at a time until it gives `None`,
    /// holding at most `run` of them (and the step in hand) in memory.
    pub(super) fn sort(
        dir: &Path,
        run: usize,
        fan_in: usize,
        mut next: impl FnMut() -> Result<Option<Vec<String>>>,
    ) -> Result<KeyFile> {
        if fan_in < 2 {
            bail!("runs are merged two at a time at least");
        }
        let run = run.max(1);
        let mut runs = Vec::new();
        let mut held: Vec<String> = Vec::with_capacity(run);
        while let Some(step) = next()? {
            for key in step {
                held.push(key);
                if held.len() == run {
                    runs.push(write_run(dir, &mut held)?);
                }
            }
        }
        if !held.is_empty() || runs.is_empty() {
            runs.push(write_run(dir, &mut held)?);
        }
        drop(held);
        let written = runs.len();
        while runs.len() > 1 {
            let mut merged = Vec::with_capacity(runs.len().div_ceil(fan_in));
            let mut rest = runs.into_iter().peekable();
            while rest.peek().is_some() {
                let group: Vec<(Temp, u64)> = rest.by_ref().take(fan_in).collect();
                merged.push(merge(dir, group)?);
            }
            runs = merged;
        }
        let (file, keys) = runs.pop().context("no run was written")?;
        Ok(KeyFile {
            file,
            keys,
            runs: written,
        })
    }

    /// How many keys the file holds.
    pub(super) fn len(&self) -> u64 {
        self.keys
    }

    /// How many runs were written before the merge.
    pub(super) fn runs(&self) -> usize {
        self.runs
    }

    /// Calls `f` with the keys in order, at most `n` at a time.
    pub(super) fn for_each_batch(
        &self,
        n: usize,
        mut f: impl FnMut(&[String]) -> Result<()>,
    ) -> Result<()> {
        let n = n.max(1);
        let mut input = self.file.reader()?;
        let mut batch = Vec::with_capacity(n);
        while let Some(key) = read_key(&mut input)? {
            batch.push(key);
            if batch.len() == n {
                f(&batch)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            f(&batch)?;
        }
        Ok(())
    }
}

/// Sorts `held`, drops its repeats, writes it as a run and empties it;
/// the run and its number of keys.
fn write_run(dir: &Path, held: &mut Vec<String>) -> Result<(Temp, u64)> {
    held.sort_unstable();
    held.dedup();
    let (file, mut out) = Temp::create(dir)?;
    let keys = held.len() as u64;
    for key in held.drain(..) {
        write_key(&mut out, &key)?;
    }
    out.flush()?;
    Ok((file, keys))
}

/// Merges sorted runs into one, each key once; the runs are removed.
fn merge(dir: &Path, runs: Vec<(Temp, u64)>) -> Result<(Temp, u64)> {
    if runs.len() == 1 {
        return Ok(runs.into_iter().next().expect("one run"));
    }
    let mut inputs = runs
        .iter()
        .map(|(run, _)| run.reader())
        .collect::<Result<Vec<_>>>()?;
    let mut heads = BinaryHeap::new();
    for (i, input) in inputs.iter_mut().enumerate() {
        if let Some(key) = read_key(input)? {
            heads.push(Reverse((key, i)));
        }
    }
    let (file, mut out) = Temp::create(dir)?;
    let (mut last, mut keys): (Option<String>, u64) = (None, 0);
    while let Some(Reverse((key, i))) = heads.pop() {
        if let Some(next) = read_key(&mut inputs[i])? {
            heads.push(Reverse((next, i)));
        }
        if last.as_ref() != Some(&key) {
            write_key(&mut out, &key)?;
            keys += 1;
            last = Some(key);
        }
    }
    out.flush()?;
    Ok((file, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys 0..n (zero-padded), shuffled, each given twice, in steps of 7.
    fn steps(n: usize) -> Vec<Vec<String>> {
        let mut keys: Vec<String> = (0..n).map(|i| format!("article:enwiki:{i:05}")).collect();
        keys.extend(keys.clone());
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for i in (1..keys.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            keys.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        keys.chunks(7).map(<[String]>::to_vec).collect()
    }

    fn listed(file: &KeyFile, n: usize) -> Result<Vec<String>> {
        let mut all = Vec::new();
        file.for_each_batch(n, |batch| {
            assert!(batch.len() <= n);
            all.extend_from_slice(batch);
            Ok(())
        })?;
        Ok(all)
    }

    /// Runs of 10 keys merged 3 at a time (several levels) give every key
    /// once, in order, however they were batched, and the files go.
    #[test]
    fn keys_given_twice_in_any_order_are_listed_once_in_order_from_merged_runs() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let expected: Vec<String> = (0..500).map(|i| format!("article:enwiki:{i:05}")).collect();
        let mut steps = steps(500).into_iter();
        let file = KeyFile::sort(dir.path(), 10, 3, || Ok(steps.next()))?;
        assert_eq!(file.runs(), 100, "1000 keys given, 10 held at a time");
        assert_eq!(file.len(), 500);
        assert_eq!(listed(&file, 32)?, expected);
        assert_eq!(listed(&file, 1)?, expected, "read again, a key at a time");
        assert_eq!(
            std::fs::read_dir(dir.path())?.count(),
            1,
            "only the result is left"
        );
        drop(file);
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0, "and it goes");
        Ok(())
    }

    #[test]
    fn no_keys_and_one_run_are_files_too() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let empty = KeyFile::sort(dir.path(), 10, 2, || Ok(None))?;
        assert_eq!((empty.len(), listed(&empty, 4)?.len()), (0, 0));
        let mut once = Some(vec!["b".to_string(), "a".into(), "b".into()]);
        let one = KeyFile::sort(dir.path(), 10, 2, || Ok(once.take()))?;
        assert_eq!(listed(&one, 4)?, ["a", "b"]);
        assert_eq!(one.runs(), 1);
        Ok(())
    }

    /// A listing that fails leaves no file behind.
    #[test]
    fn a_failed_listing_leaves_no_file() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut steps = steps(100).into_iter();
        let mut given = 0;
        let err = KeyFile::sort(dir.path(), 10, 3, || {
            given += 1;
            if given == 20 {
                bail!("the store went away");
            }
            Ok(steps.next())
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        Ok(())
    }
}
