//! `wikiedge snapshot build [--project enwiki] [--namespace 0]
//! [--state-dir .spin] [--runtime-config-file FILE] [--chunk-size BYTES]`:
//! builds the snapshot `{project}_namespace_{ns}` from the article store,
//! into the same key-value store, in the layout `functions/snapshots` serves
//! (see `wikiedge_core::snapshot`). It reads and writes through the
//! runtime's store trait ([`crate::bulk`]), so it builds on SQLite or on
//! Redis alike, whatever the runtime config names.
//!
//! What is built: one tar.gz holding `{identifier}.ndjson` (every stored
//! article of the project and namespace, one compact WME Article JSON per
//! line, in title-key order, byte for byte as On-demand stores it), plus
//! chunks: the same lines split at `--chunk-size` bytes of NDJSON, each
//! chunk its own tar.gz of `{identifier}_chunk_{n}.ndjson`, as WME ships
//! them for parallel download.
//!
//! How:
//! - Both passes read the project's articles in key order, a few at a
//!   time. On SQLite each pass lists the keys again, a page of 1,024 at a
//!   time (a range scan from the last key of the page before), so the
//!   build holds a page of keys whatever the project's size. Redis's `SCAN
//!   MATCH` has no order, so there the keys are listed once, sorted, and
//!   held: the one thing the build holds for every article.
//! - Pass 1 streams the articles and computes the NDJSON length (a tar
//!   header needs it first), the chunk boundaries and the content hashes.
//!   The version is a SHA-256 of the format, identifier, chunk size and
//!   every line (32 hex digits, the length of WME's versions): equal
//!   content gives an equal version, and a build whose version is already
//!   current writes nothing (idempotent).
//! - Pass 2 streams the articles again through gzip (flate2, default
//!   level) into 1 MiB parts written as they fill up, in batches
//!   ([`crate::bulk::Bulk`], at most 4 MiB buffered); the whole file is
//!   compressed on a second thread, the chunks on this one, and this thread
//!   alone writes the store. Memory is bounded by [`LINES_IN_FLIGHT`]
//!   articles plus the gzip states, a batch of parts and a page of keys
//!   (on Redis, the key list); the chunk plan holds a few numbers per
//!   chunk.
//! - No store offers a read transaction across backends, so pass 2 hashes
//!   what it writes again: if an article changed between the passes (the
//!   served app refreshed it, say), the version does not match, the record
//!   is not switched, and the build starts over (at most [`ATTEMPTS`]
//!   times). The parts the failed attempt wrote are deleted as stale.
//! - The parts' keys carry the version; the record `snapshot:{identifier}`
//!   is written last, so readers switch versions atomically. Parts of any
//!   other version (the replaced one, or an interrupted build) are deleted
//!   after the switch. A download of the replaced version still in flight
//!   then fails (its length no longer matches), and the client retries.
//! - The tar entry's mtime is the newest article `date_modified`, and gzip
//!   headers carry no time, so equal content gives equal bytes.
//! - Next to each article snapshot the same two passes build its
//!   structured-contents snapshot (same identifier, every line the
//!   article's structured contents, no chunks; see
//!   [`crate::snapshot_structured`]), so `/v2/snapshots/structured-contents`
//!   serves what `/v2/structured-contents/{name}` would for each article.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use wikiedge_core::snapshot::{self as core, Blob, Chunk, Record, Ref, Size, Snapshot};

use crate::bulk::Bulk;
use crate::snapshot_structured::{Flavor, structured_line};

mod keyfile;
mod parts;
mod plan;

use parts::*;
use plan::*;

/// How many times a build starts over when the articles change under it.
const ATTEMPTS: usize = 3;
/// Bumped when the bytes a build produces for equal content change.
const FORMAT: &str = "wikiedge-snapshot-1";
/// The default chunk size: 128 MiB of NDJSON per chunk.
pub const DEFAULT_CHUNK_SIZE: u64 = 128 << 20;

/// What to build, and where.
#[derive(Debug, Clone)]
pub struct SnapshotArgs {
    /// The project id, e.g. `enwiki`.
    pub project: String,
    /// The namespace number.
    pub namespace: i64,
    /// The state directory (its SQLite file is the default store).
    pub state_dir: PathBuf,
    /// A runtime config defining the stores, as `wikiedge up` takes.
    pub runtime_config: Option<PathBuf>,
    /// Bytes of NDJSON per chunk (a chunk holds at least one article).
    pub chunk_size: u64,
    /// Bytes per stored part.
    pub part_size: u64,
    /// Print progress to stderr.
    pub progress: bool,
}

impl SnapshotArgs {
    /// The defaults: namespace 0, state dir `.spin`, 128 MiB chunks, 1 MiB
    /// parts, progress on.
    pub fn new(project: impl Into<String>) -> Self {
        SnapshotArgs {
            project: project.into(),
            namespace: 0,
            state_dir: PathBuf::from(".spin"),
            runtime_config: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            part_size: core::DEFAULT_PART_SIZE,
            progress: true,
        }
    }
}

/// What a build did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The snapshot identifier.
    pub identifier: String,
    /// The version now current.
    pub version: String,
    /// Whether anything was written (false: the version was already current).
    pub written: bool,
    /// Articles in the snapshot.
    pub articles: u64,
    /// Bytes of NDJSON.
    pub ndjson_bytes: u64,
    /// Bytes of the whole tar.gz.
    pub tar_gz_bytes: u64,
    /// How many chunks.
    pub chunks: usize,
    /// Stale parts deleted.
    pub deleted_parts: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The structured-contents snapshot built next to it (article
    /// snapshots only).
    pub structured: Option<Box<Summary>>,
}

impl Summary {
    /// Articles per second over the whole build.
    pub fn pages_per_sec(&self) -> f64 {
        self.articles as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} version {} ({}): {} articles, {:.1} MB NDJSON, {:.1} MB tar.gz, {} chunks, \
             {} stale parts deleted, {:.2}s, {:.0} pages/s",
            self.identifier,
            self.version,
            if self.written { "written" } else { "unchanged" },
            self.articles,
            self.ndjson_bytes as f64 / 1e6,
            self.tar_gz_bytes as f64 / 1e6,
            self.chunks,
            self.deleted_parts,
            self.elapsed.as_secs_f64(),
            self.pages_per_sec(),
        )?;
        if let Some(structured) = &self.structured {
            write!(f, "; structured contents: {structured}")?;
        }
        Ok(())
    }
}

/// The store the articles are read from and the snapshot written to: the
/// one `import` writes.
fn open_store(args: &SnapshotArgs) -> Result<Bulk> {
    Bulk::open(&crate::import::target(
        &args.state_dir,
        args.runtime_config.as_deref(),
    ))
}

/// The articles changed between the two passes: the build starts over.
#[derive(Debug)]
struct StoreChanged;

impl std::fmt::Display for StoreChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the article store changed during the build")
    }
}

impl std::error::Error for StoreChanged {}

/// Lines in flight to the thread compressing the whole file. Enough for
/// the two threads to run apart; a structured-contents line averages
/// about 150 KB, and with 64 in flight, once parsing outran gzip, the queue
/// stayed full and held 12 MiB more at the peak.
const LINES_IN_FLIGHT: usize = 8;

/// Pass 2: writes the parts of the whole file (compressed on a second
/// thread, so the two gzip streams run in parallel) and of every chunk (on
/// this one, which alone writes the store).
fn write_parts(
    store: &mut Bulk,
    keys: &ArticleKeys,
    args: &SnapshotArgs,
    flavor: Flavor,
    identifier: &str,
    plan: &Plan,
) -> Result<(Blob, Vec<Blob>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(LINES_IN_FLIGHT);
    // Unbounded, but drained after every line: it holds a part or two.
    let (parts_tx, parts_rx) = std::sync::mpsc::channel::<(String, Vec<u8>)>();
    let whole_tx = parts_tx.clone();
    std::thread::scope(|scope| {
        let whole = scope.spawn(move || -> Result<Blob> {
            let sink = PartSink::new(
                whole_tx,
                flavor.blob_id(identifier),
                plan.version.clone(),
                args.part_size,
            );
            let mut tar =
                TarGz::start(sink, &core::ndjson_name(identifier), plan.bytes, plan.mtime)?;
            for line in rx {
                tar.line(&line)?;
            }
            tar.finish()
        });
        let out = Parts {
            lines: tx,
            tx: parts_tx,
            rx: &parts_rx,
        };
        let chunks = write_chunks(store, keys, args, flavor, identifier, plan, out);
        // The thread hangs up when done; store what it still sends (unless
        // the chunk pass failed: then nothing of this attempt is kept).
        let mut drained = Ok(());
        for (key, part) in parts_rx.iter() {
            if drained.is_ok() && chunks.is_ok() {
                drained = store.set(key, part);
            }
        }
        let whole = whole
            .join()
            .map_err(|_| anyhow::anyhow!("the compressing thread panicked"))?;
        // A failed chunk pass hangs up on the thread; report its own error.
        let chunks = chunks?;
        drained?;
        Ok((whole?, chunks))
    })
}

/// Where pass 2's lines and parts go.
struct Parts<'a> {
    /// Lines to the thread compressing the whole file.
    lines: std::sync::mpsc::SyncSender<Vec<u8>>,
    /// Where the chunks' parts are sent...
    tx: std::sync::mpsc::Sender<(String, Vec<u8>)>,
    /// ... and every part is received, to be stored.
    rx: &'a std::sync::mpsc::Receiver<(String, Vec<u8>)>,
}

/// The chunk half of pass 2: every line goes to the whole file's thread
/// and to the current chunk's tar.gz (when the flavor has chunks); the
/// lines are hashed again and must give the planned version.
fn write_chunks(
    store: &mut Bulk,
    keys: &ArticleKeys,
    args: &SnapshotArgs,
    flavor: Flavor,
    identifier: &str,
    plan: &Plan,
    out: Parts<'_>,
) -> Result<Vec<Blob>> {
    let mut blobs = Vec::with_capacity(plan.chunks.len());
    let mut current: Option<(TarGz, u64)> = None;
    let (mut articles, mut bytes) = (0u64, 0u64);
    let mut check = Versioner::new(args, flavor, identifier);
    let progress = Progress::new(args.progress, "pass 2/2 (write)");
    for_each_article(store, keys, args, flavor, |store, line, head| {
        if current.is_none() && flavor.chunked() {
            let n = blobs.len();
            let Some((count, size, version)) = plan.chunks.get(n) else {
                return Err(StoreChanged.into());
            };
            let id = core::chunk_identifier(identifier, n);
            let sink = PartSink::new(out.tx.clone(), id.clone(), version.clone(), args.part_size);
            let tar = TarGz::start(sink, &core::ndjson_name(&id), *size, plan.mtime)?;
            current = Some((tar, *count));
        }
        out.lines
            .send(line.to_vec())
            .map_err(|_| anyhow::anyhow!("the compressing thread stopped"))?;
        if let Some((tar, left)) = current.as_mut() {
            tar.line(line)?;
            *left -= 1;
            if *left == 0
                && let Some((tar, _)) = current.take()
            {
                blobs.push(tar.finish()?);
            }
        }
        while let Ok((key, part)) = out.rx.try_recv() {
            store.set(key, part)?;
        }
        check.line(line, head);
        articles += 1;
        bytes += line.len() as u64 + 1;
        progress.tick(articles, bytes);
        Ok(())
    })?;
    progress.done(articles, bytes);
    if articles != plan.articles || bytes != plan.bytes || current.is_some() {
        return Err(StoreChanged.into());
    }
    if check.finish() != (plan.version.clone(), plan.mtime) {
        return Err(StoreChanged.into());
    }
    // The chunks' last parts.
    while let Ok((key, part)) = out.rx.try_recv() {
        store.set(key, part)?;
    }
    Ok(blobs)
}

/// Deletes every part of this snapshot and its chunks whose
/// `(identifier, version)` is not current. Returns how many.
fn delete_stale_parts(
    store: &mut Bulk,
    flavor: Flavor,
    identifier: &str,
    record: &Record,
) -> Result<u64> {
    let blob_id = flavor.blob_id(identifier);
    let mut keep: BTreeSet<(String, String)> = BTreeSet::new();
    keep.insert((blob_id.clone(), record.meta.version.clone()));
    for chunk in &record.chunks {
        keep.insert((chunk.meta.identifier.clone(), chunk.meta.version.clone()));
    }
    let mut stale = Vec::new();
    let mut prefixes = vec![format!("snapshot-blob:{blob_id}:")];
    if flavor.chunked() {
        prefixes.push(format!("snapshot-blob:{identifier}_chunk_"));
    }
    for prefix in prefixes {
        for key in store.keys(&prefix)? {
            let mut fields = key["snapshot-blob:".len()..].rsplitn(3, ':');
            let (_part, version, id) = (fields.next(), fields.next(), fields.next());
            let current = match (id, version) {
                (Some(id), Some(version)) => keep.contains(&(id.to_string(), version.to_string())),
                _ => false,
            };
            if !current {
                stale.push(key);
            }
        }
    }
    let n = stale.len() as u64;
    store.delete_many(stale)?;
    Ok(n)
}

/// Adds an identifier to the snapshot list, if it is not there yet.
fn add_to_index(store: &mut Bulk, flavor: Flavor, identifier: &str) -> Result<()> {
    let key = flavor.index_key();
    let mut ids: BTreeSet<String> = store
        .get(key)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if ids.insert(identifier.to_string()) {
        store.set(key.to_string(), serde_json::to_vec(&ids)?)?;
    }
    Ok(())
}

/// Builds (or confirms) the snapshot of one project namespace and, next to
/// it, its structured-contents snapshot.
pub fn run(args: SnapshotArgs) -> Result<Summary> {
    if args.chunk_size == 0 || args.part_size == 0 {
        bail!("--chunk-size and the part size must be positive");
    }
    let mut store = open_store(&args)?;
    let keys = ArticleKeys::of(&mut store, &args.project, args.progress)?;
    let mut summary = build(&args, &mut store, &keys, Flavor::Articles)?;
    let structured = build(&args, &mut store, &keys, Flavor::Structured)?;
    summary.structured = Some(Box::new(structured));
    if args.progress {
        tracing::info!("snapshot: {summary}");
    }
    Ok(summary)
}

/// Builds (or confirms) one flavor of the snapshot of a project namespace,
/// starting over when the articles change under it.
fn build(
    args: &SnapshotArgs,
    store: &mut Bulk,
    keys: &ArticleKeys,
    flavor: Flavor,
) -> Result<Summary> {
    let mut attempt = 1;
    loop {
        match build_once(args, store, keys, flavor) {
            Err(e) if e.is::<StoreChanged>() && attempt < ATTEMPTS => {
                tracing::warn!("snapshot: {e}; starting over (attempt {attempt} of {ATTEMPTS})");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// One attempt at [`build`].
fn build_once(
    args: &SnapshotArgs,
    store: &mut Bulk,
    keys: &ArticleKeys,
    flavor: Flavor,
) -> Result<Summary> {
    let started = Instant::now();
    let identifier = core::identifier(&args.project, args.namespace);
    let plan = plan(store, keys, args, flavor, &identifier)?;
    if plan.articles == 0 {
        bail!(
            "no articles of {} in namespace {} in the store (import articles first: wikiedge import)",
            args.project,
            args.namespace
        );
    }
    let existing: Option<Record> = store
        .get(&flavor.record_key(&identifier))?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let mut summary = Summary {
        identifier: identifier.clone(),
        version: plan.version.clone(),
        written: false,
        articles: plan.articles,
        ndjson_bytes: plan.bytes,
        tar_gz_bytes: 0,
        chunks: plan.chunks.len(),
        deleted_parts: 0,
        elapsed: Duration::ZERO,
        structured: None,
    };
    let record = match existing {
        Some(record) if record.meta.version == plan.version => record,
        _ => {
            let (blob, chunk_blobs) = write_parts(store, keys, args, flavor, &identifier, &plan)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let meta = |id: String, version: String, bytes: u64, chunks: Vec<String>| Snapshot {
                identifier: id,
                version,
                date_modified: core::rfc3339(now),
                is_part_of: Ref {
                    identifier: args.project.clone(),
                },
                in_language: Ref {
                    identifier: plan.language.clone(),
                },
                namespace: Ref {
                    identifier: args.namespace,
                },
                size: Size::from_bytes(bytes),
                chunks,
            };
            let chunks: Vec<Chunk> = plan
                .chunks
                .iter()
                .zip(chunk_blobs)
                .enumerate()
                .map(|(n, ((_, _, version), blob))| Chunk {
                    meta: meta(
                        core::chunk_identifier(&identifier, n),
                        version.clone(),
                        blob.bytes,
                        Vec::new(),
                    ),
                    blob,
                })
                .collect();
            let ids = chunks.iter().map(|c| c.meta.identifier.clone()).collect();
            let record = Record {
                meta: meta(identifier.clone(), plan.version.clone(), blob.bytes, ids),
                blob,
                chunks,
            };
            // The switch: one write, after every part is stored.
            store.flush()?;
            store.set(flavor.record_key(&identifier), serde_json::to_vec(&record)?)?;
            store.flush()?;
            add_to_index(store, flavor, &identifier)?;
            store.flush()?;
            summary.written = true;
            record
        }
    };
    summary.tar_gz_bytes = record.blob.bytes;
    summary.deleted_parts = delete_stale_parts(store, flavor, &identifier, &record)?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// A pass's progress: articles, megabytes and rate, through
/// [`crate::progress`] (live on a terminal, periodic lines otherwise).
struct Progress {
    inner: crate::progress::Progress,
    started: Instant,
}

impl Progress {
    fn new(on: bool, label: &'static str) -> Self {
        Progress {
            inner: crate::progress::Progress::new(label, on),
            started: Instant::now(),
        }
    }

    fn line(&self, articles: u64, bytes: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        format!(
            "{articles} articles, {:.1} MB, {:.0} articles/s",
            bytes as f64 / 1e6,
            articles as f64 / secs
        )
    }

    fn tick(&self, articles: u64, bytes: u64) {
        self.inner.update(|| self.line(articles, bytes));
    }

    fn done(&self, articles: u64, bytes: u64) {
        self.inner.finish(self.line(articles, bytes));
    }
}

#[cfg(test)]
mod tests;
