//! `walfolio`: what a SQLite WAL write costs on this filesystem when the
//! file's cached pages came from writes, and when they came from reading the
//! file back (as SQLite does when it opens a WAL left behind).
//!
//! ```text
//! walfolio [--dir DIR] [--rounds 3]
//! ```
//!
//! Each round, on one 64 MiB file in `DIR` (default: the current directory;
//! use the filesystem of the state directory):
//!
//! 1. empty the file and write it through once in WAL frames (a 24-byte
//!    frame header, then a 4096-byte page, at 4120-byte steps, as SQLite
//!    appends a frame);
//! 2. write the same frames again: their pages are in the page cache as the
//!    writes left them (`written`);
//! 3. flush the file, drop its pages from the cache
//!    (`posix_fadvise(DONTNEED)`), read it back in 1 MiB reads (the kernel
//!    reads ahead, and may cache the file in larger folios), and write the
//!    frames again (`read back`).
//!
//! It prints microseconds per frame for both, and their ratio, each round
//! and as medians. BENCHMARKS.md, "A WAL read at open made every later
//! write dear", has the figures and what the host does about it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use wikiedge_bench::stats::median;

/// The WAL size the host cuts the file back to (`WAL_SIZE_LIMIT`).
const FILE_BYTES: u64 = 64 << 20;
/// SQLite's WAL header, then frames of a 24-byte header and a page.
const WAL_HEADER: u64 = 32;
const FRAME_HEADER: usize = 24;
const PAGE: usize = 4096;
const FRAME: u64 = (FRAME_HEADER + PAGE) as u64;

#[derive(Debug, Parser)]
#[command(name = "walfolio")]
struct Args {
    /// Where the test file goes (removed at the end).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Rounds of the three steps.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// Writes every frame of the file once, in order; microseconds per frame.
fn write_frames(file: &File) -> Result<f64> {
    let header = [0x5au8; FRAME_HEADER];
    let page = [0xa5u8; PAGE];
    let mut frames = 0u64;
    let started = Instant::now();
    let mut at = WAL_HEADER;
    while at + FRAME <= FILE_BYTES {
        file.write_all_at(&header, at)?;
        file.write_all_at(&page, at + FRAME_HEADER as u64)?;
        at += FRAME;
        frames += 1;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / frames as f64)
}

/// Drops the file's clean pages from the page cache.
#[allow(unsafe_code)] // one libc call on a borrowed descriptor, no memory handed over
fn drop_cached_pages(file: &File) -> Result<()> {
    // SAFETY: `posix_fadvise` only reads its integer arguments; the
    // descriptor stays open for the call (`file` is borrowed).
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        bail!("posix_fadvise: error {rc}");
    }
    Ok(())
}

/// Flushes the file, drops its cached pages and reads it back in 1 MiB
/// reads.
fn drop_and_read_back(file: &File) -> Result<()> {
    file.sync_all()?;
    drop_cached_pages(file)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < FILE_BYTES {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        at += n as u64;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let path = args
        .dir
        .join(format!("walfolio-{}.tmp", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let outcome = (|| -> Result<(Vec<f64>, Vec<f64>)> {
        let (mut written, mut read_back) = (Vec::new(), Vec::new());
        for round in 1..=args.rounds {
            file.set_len(0)?;
            write_frames(&file)?;
            let w = write_frames(&file)?;
            drop_and_read_back(&file)?;
            let r = write_frames(&file)?;
            println!(
                "round {round}: written {w:.2} µs/frame, read back {r:.2} µs/frame, ratio {:.2}",
                r / w
            );
            written.push(w);
            read_back.push(r);
        }
        Ok((written, read_back))
    })();
    let _ = std::fs::remove_file(&path);
    let (written, read_back) = outcome?;
    let ratios: Vec<f64> = read_back.iter().zip(&written).map(|(r, w)| r / w).collect();
    let med = |v: Vec<f64>| median(v).map_or_else(|| "-".to_string(), |m| format!("{m:.2}"));
    println!(
        "median: written {} µs/frame, read back {} µs/frame, ratio {}",
        med(written),
        med(read_back),
        med(ratios)
    );
    Ok(())
}
