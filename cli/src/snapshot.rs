//! `wikiedge snapshot build [--project enwiki] [--namespace 0]
//! [--state-dir .spin] [--chunk-size BYTES]`: builds the snapshot
//! `{project}_namespace_{ns}` from the article store, into the same
//! key-value store, in the layout `functions/snapshots` serves (see
//! `wikiedge_core::snapshot`).
//!
//! What is built: one tar.gz holding `{identifier}.ndjson` (every stored
//! article of the project and namespace, one compact WME Article JSON per
//! line, in title-key order, byte for byte as On-demand stores it), plus
//! chunks: the same lines split at `--chunk-size` bytes of NDJSON, each
//! chunk its own tar.gz of `{identifier}_chunk_{n}.ndjson`, as WME ships
//! them for parallel download.
//!
//! How:
//! - Both passes read inside one SQLite read transaction, so they see the
//!   same articles even while an import or `wikiedge up` writes.
//! - Pass 1 streams the articles and computes the NDJSON length (a tar
//!   header needs it first), the chunk boundaries and the content hashes.
//!   The version is a SHA-256 of the format, identifier, chunk size and
//!   every line (32 hex digits, the length of WME's versions): equal
//!   content gives an equal version, and a build whose version is already
//!   current writes nothing (idempotent).
//! - Pass 2 streams the articles again through gzip (flate2, default
//!   level) into 1 MiB parts written as they fill up; the whole file is
//!   compressed on a second thread, the chunks on this one. Memory is
//!   bounded by [`LINES_IN_FLIGHT`] articles plus the gzip states and two
//!   part buffers; the chunk plan holds a few numbers per chunk.
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
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use rusqlite::{Connection, params};
use wikiedge_core::snapshot::{self as core, Blob, Chunk, Record, Ref, Size, Snapshot};

use crate::snapshot_structured::{Flavor, structured_line};

mod parts;
mod plan;

use parts::*;
use plan::*;

/// The key-value store every component opens.
const STORE: &str = "default";
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
    /// The state directory holding `sqlite_key_value.db`.
    pub state_dir: PathBuf,
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

fn open_db(args: &SnapshotArgs) -> Result<Connection> {
    let path = args.state_dir.join(crate::store_file::FILE_NAME);
    if !path.exists() {
        bail!(
            "{} does not exist: import articles first (wikiedge import)",
            path.display()
        );
    }
    crate::store_file::open(&path)
}

/// Lines in flight to the thread compressing the whole file.
const LINES_IN_FLIGHT: usize = 64;

/// Pass 2: writes the parts of the whole file (on a second thread, with its
/// own connection, so the two gzip streams compress in parallel) and of
/// every chunk (on this one).
fn write_parts(
    reader: &Connection,
    writer: Rc<Connection>,
    args: &SnapshotArgs,
    flavor: Flavor,
    identifier: &str,
    plan: &Plan,
) -> Result<(Blob, Vec<Blob>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(LINES_IN_FLIGHT);
    // Unbounded, but drained after every line: it holds a part or two.
    let (parts_tx, parts_rx) = std::sync::mpsc::channel::<(String, Vec<u8>)>();
    std::thread::scope(|scope| {
        let whole = scope.spawn(move || -> Result<Blob> {
            let sink = PartSink::new(
                PartOut::Channel(parts_tx),
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
        let chunks = write_chunks(
            reader, &writer, args, flavor, identifier, plan, tx, &parts_rx,
        );
        // The thread hangs up when done; store what it still sends.
        let mut drained = Ok(());
        for (key, part) in parts_rx.iter() {
            if drained.is_ok() {
                drained = set(&writer, &key, &part);
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

/// The chunk half of pass 2: every line goes to `whole` and to the current
/// chunk's tar.gz (when the flavor has chunks).
#[allow(clippy::too_many_arguments)]
fn write_chunks(
    reader: &Connection,
    writer: &Rc<Connection>,
    args: &SnapshotArgs,
    flavor: Flavor,
    identifier: &str,
    plan: &Plan,
    whole: std::sync::mpsc::SyncSender<Vec<u8>>,
    whole_parts: &std::sync::mpsc::Receiver<(String, Vec<u8>)>,
) -> Result<Vec<Blob>> {
    let mut blobs = Vec::with_capacity(plan.chunks.len());
    let mut current: Option<(TarGz, u64)> = None;
    let (mut articles, mut bytes) = (0u64, 0u64);
    let progress = Progress::new(args.progress, "pass 2/2 (write)");
    for_each_article(reader, args, flavor, |line, _| {
        if current.is_none() && flavor.chunked() {
            let n = blobs.len();
            let Some((count, size, version)) = plan.chunks.get(n) else {
                bail!("the article store changed during the build");
            };
            let id = core::chunk_identifier(identifier, n);
            let out = PartOut::Db(writer.clone());
            let sink = PartSink::new(out, id.clone(), version.clone(), args.part_size);
            let tar = TarGz::start(sink, &core::ndjson_name(&id), *size, plan.mtime)?;
            current = Some((tar, *count));
        }
        whole
            .send(line.to_vec())
            .map_err(|_| anyhow::anyhow!("the compressing thread stopped"))?;
        while let Ok((key, part)) = whole_parts.try_recv() {
            set(writer, &key, &part)?;
        }
        if let Some((tar, left)) = current.as_mut() {
            tar.line(line)?;
            *left -= 1;
            if *left == 0
                && let Some((tar, _)) = current.take()
            {
                blobs.push(tar.finish()?);
            }
        }
        articles += 1;
        bytes += line.len() as u64 + 1;
        progress.tick(articles, bytes);
        Ok(())
    })?;
    progress.done(articles, bytes);
    if articles != plan.articles || bytes != plan.bytes || current.is_some() {
        bail!("the article store changed during the build");
    }
    Ok(blobs)
}

/// Deletes every part of this snapshot and its chunks whose
/// `(identifier, version)` is not current. Returns how many.
fn delete_stale_parts(
    conn: &Connection,
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
        let mut stmt = conn.prepare(
            "SELECT key FROM spin_key_value WHERE store = ?1 AND key >= ?2 AND key < ?3",
        )?;
        let keys = stmt.query_map(params![STORE, prefix, prefix_end(&prefix)], |row| {
            row.get::<_, String>(0)
        })?;
        for key in keys {
            let key = key?;
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
    let tx = conn.unchecked_transaction()?;
    for key in &stale {
        tx.execute(
            "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
            params![STORE, key],
        )?;
    }
    tx.commit()?;
    Ok(stale.len() as u64)
}

/// Adds an identifier to the snapshot list, if it is not there yet.
fn add_to_index(conn: &Connection, flavor: Flavor, identifier: &str) -> Result<()> {
    let key = flavor.index_key();
    let mut ids: BTreeSet<String> = get(conn, key)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if ids.insert(identifier.to_string()) {
        set(conn, key, &serde_json::to_vec(&ids)?)?;
    }
    Ok(())
}

/// Builds (or confirms) the snapshot of one project namespace and, next to
/// it, its structured-contents snapshot.
pub fn run(args: SnapshotArgs) -> Result<Summary> {
    let mut summary = build(&args, Flavor::Articles)?;
    summary.structured = Some(Box::new(build(&args, Flavor::Structured)?));
    if args.progress {
        tracing::info!("snapshot: {summary}");
    }
    Ok(summary)
}

/// Builds (or confirms) one flavor of the snapshot of a project namespace.
fn build(args: &SnapshotArgs, flavor: Flavor) -> Result<Summary> {
    let started = Instant::now();
    if args.chunk_size == 0 || args.part_size == 0 {
        bail!("--chunk-size and the part size must be positive");
    }
    let identifier = core::identifier(&args.project, args.namespace);
    let reader = open_db(args)?;
    let writer = Rc::new(open_db(args)?);
    reader.execute_batch("BEGIN")?;
    let plan = plan(&reader, args, flavor, &identifier)?;
    if plan.articles == 0 {
        reader.execute_batch("COMMIT")?;
        bail!(
            "no articles of {} in namespace {} in the store",
            args.project,
            args.namespace
        );
    }
    let existing: Option<Record> = get(&writer, &flavor.record_key(&identifier))?
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
        Some(record) if record.meta.version == plan.version => {
            reader.execute_batch("COMMIT")?;
            record
        }
        _ => {
            let (blob, chunk_blobs) =
                write_parts(&reader, writer.clone(), args, flavor, &identifier, &plan)?;
            reader.execute_batch("COMMIT")?;
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
            set(
                &writer,
                &flavor.record_key(&identifier),
                &serde_json::to_vec(&record)?,
            )?;
            add_to_index(&writer, flavor, &identifier)?;
            summary.written = true;
            record
        }
    };
    summary.tar_gz_bytes = record.blob.bytes;
    summary.deleted_parts = delete_stale_parts(&writer, flavor, &identifier, &record)?;
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
