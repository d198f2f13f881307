//! Pass 1 of a snapshot build: which articles, how many bytes, the version
//! and the chunk plan, read from the store in key order.

use anyhow::{Result, anyhow};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use wikiedge_core::article::layout::{ARTICLE_PREFIX, document};
use wikiedge_core::snapshot::*;

use super::keyfile::{FAN_IN, KeyFile, RUN_KEYS};
use super::*;

/// The few article fields a build looks at.
#[derive(Deserialize)]
pub(super) struct Head {
    pub(super) namespace: Option<Ref<i64>>,
    pub(super) in_language: Option<Ref<String>>,
    pub(super) date_modified: Option<String>,
}

/// One chunk as pass 1 plans it.
pub(super) struct PlannedChunk {
    pub(super) articles: u64,
    pub(super) bytes: u64,
    pub(super) hasher: Sha256,
}

/// What pass 1 learns.
pub(super) struct Plan {
    pub(super) articles: u64,
    pub(super) bytes: u64,
    pub(super) version: String,
    pub(super) chunks: Vec<(u64, u64, String)>,
    pub(super) language: String,
    pub(super) mtime: u64,
}

pub(super) fn hex32(digest: &[u8]) -> String {
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// How many articles one read asks the store for.
const READ_BATCH: usize = 32;

/// How many keys one listing asks the store for.
const KEY_PAGE: usize = 1024;

/// Keys asked for in one step of a listing without ordered pages.
const SCAN_STEP: usize = 1000;

/// The project's stored article keys, in key order: the order of every
/// line. Each pass lists them again a page at a time where the store lists
/// pages (SQLite), so a build holds a page of keys, not one per article;
/// where it does not (Redis), they are listed once, a step at a time, and
/// sorted into a file ([`KeyFile`]) that each pass reads.
pub(super) struct ArticleKeys {
    prefix: String,
    /// Every key, sorted on disk, when the store has no ordered pages.
    whole: Option<KeyFile>,
    /// Keys per page.
    page: usize,
}

impl ArticleKeys {
    /// The keys of `project`'s articles; with `progress`, a listing to
    /// sort on disk says how far it is.
    pub(super) fn of(store: &mut Bulk, project: &str, progress: bool) -> Result<ArticleKeys> {
        Self::paged(store, project, KEY_PAGE, progress)
    }

    /// The same, `page` keys at a time.
    pub(super) fn paged(
        store: &mut Bulk,
        project: &str,
        page: usize,
        progress: bool,
    ) -> Result<ArticleKeys> {
        let prefix = format!("{ARTICLE_PREFIX}{project}:");
        let whole = match store.keys_page(&prefix, None, 1)? {
            Some(_) => None,
            None => Some(Self::sorted(store, &prefix, RUN_KEYS, progress)?),
        };
        Ok(ArticleKeys {
            prefix,
            whole,
            page: page.max(1),
        })
    }

    /// The keys under `prefix`, listed a step at a time and sorted on disk
    /// `run` keys at a time.
    fn sorted(store: &mut Bulk, prefix: &str, run: usize, progress: bool) -> Result<KeyFile> {
        let shown = crate::progress::Progress::new("listing keys", progress);
        let (mut cursor, mut done, mut listed) = (None, false, 0usize);
        let file = KeyFile::sort(&std::env::temp_dir(), run, FAN_IN, || {
            if done {
                return Ok(None);
            }
            let (keys, next) = store.scan_keys(prefix, cursor.take(), SCAN_STEP)?;
            (cursor, done) = (next.clone(), next.is_none());
            listed += keys.len();
            shown.update(|| format!("{listed} keys of {prefix}* listed"));
            Ok(Some(keys))
        })?;
        shown.finish(format!(
            "{} keys of {prefix}* sorted on disk from {} runs",
            file.len(),
            file.runs()
        ));
        Ok(file)
    }

    /// Whether the keys are listed a page at a time (else sorted on disk).
    #[cfg(test)]
    pub(super) fn is_paged(&self) -> bool {
        self.whole.is_none()
    }

    /// The same keys as [`ArticleKeys::of`] lists, sorted on disk `run`
    /// at a time however the store lists them.
    #[cfg(test)]
    pub(super) fn on_disk(store: &mut Bulk, project: &str, run: usize) -> Result<ArticleKeys> {
        let prefix = format!("{ARTICLE_PREFIX}{project}:");
        let whole = Some(Self::sorted(store, &prefix, run, false)?);
        Ok(ArticleKeys {
            prefix,
            whole,
            page: KEY_PAGE,
        })
    }

    /// Calls `f` with the keys in order, at most [`READ_BATCH`] at a time;
    /// a key added or deleted while it runs may or may not be among them
    /// (pass 2's hash tells a pass that read other articles).
    pub(super) fn for_each_batch(
        &self,
        store: &mut Bulk,
        mut f: impl FnMut(&mut Bulk, &[String]) -> Result<()>,
    ) -> Result<()> {
        if let Some(keys) = &self.whole {
            return keys.for_each_batch(READ_BATCH, |batch| f(store, batch));
        }
        let mut after: Option<String> = None;
        loop {
            let page = store
                .keys_page(&self.prefix, after.as_deref(), self.page)?
                .ok_or_else(|| anyhow!("the store stopped listing {}* in pages", self.prefix))?;
            for batch in page.chunks(READ_BATCH) {
                f(store, batch)?;
            }
            if page.len() < self.page {
                return Ok(());
            }
            after = page.last().cloned();
        }
    }
}

/// The version hash of a flavor's lines: what pass 1 computes and pass 2
/// checks (equal content, equal version).
pub(super) struct Versioner {
    whole: Sha256,
    mtime: u64,
}

impl Versioner {
    pub(super) fn new(args: &SnapshotArgs, flavor: Flavor, identifier: &str) -> Self {
        let mut whole = Sha256::new();
        whole.update(FORMAT);
        if flavor != Flavor::Articles {
            // Articles keep the versions they had before flavors existed.
            whole.update(flavor.name());
        }
        whole.update(identifier);
        if flavor.chunked() {
            whole.update(args.chunk_size.to_le_bytes());
        }
        whole.update(args.part_size.to_le_bytes());
        Versioner { whole, mtime: 0 }
    }

    pub(super) fn line(&mut self, line: &[u8], head: &Head) {
        self.whole.update(line);
        self.whole.update(b"\n");
        if let Some(t) = head.date_modified.as_deref().and_then(core::parse_rfc3339) {
            self.mtime = self.mtime.max(t.max(0) as u64);
        }
    }

    /// The version and the tar mtime (the newest `date_modified`).
    pub(super) fn finish(mut self) -> (String, u64) {
        // The tar mtime changes the stored bytes: it belongs in the version.
        self.whole.update(self.mtime.to_le_bytes());
        (hex32(&self.whole.finalize()), self.mtime)
    }
}

/// Streams the project's stored articles of one namespace, in key order,
/// as NDJSON lines (without the newline) with their parsed head; for a
/// structured-contents snapshot each line is the article's structured
/// contents.
pub(super) fn for_each_article(
    store: &mut Bulk,
    keys: &ArticleKeys,
    args: &SnapshotArgs,
    flavor: Flavor,
    mut f: impl FnMut(&mut Bulk, &[u8], &Head) -> Result<()>,
) -> Result<()> {
    keys.for_each_batch(store, |store, batch| {
        let values = store.get_many(batch)?;
        for (key, value) in batch.iter().zip(values) {
            // Deleted since it was listed: not in this snapshot.
            let Some(stored) = value else { continue };
            let value = document(&stored);
            let head: Head = match serde_json::from_slice(value) {
                Ok(head) => head,
                Err(e) => {
                    tracing::warn!("snapshot: skipping unreadable article {key}: {e}");
                    continue;
                }
            };
            if head.namespace.as_ref().map(|n| n.identifier) != Some(args.namespace) {
                continue;
            }
            if flavor == Flavor::Structured {
                f(store, &structured_line(&args.project, value)?, &head)?;
            } else if value.contains(&b'\n') {
                // Stored JSON is compact; re-serialise anything that is not.
                let doc: serde_json::Value = serde_json::from_slice(value)?;
                f(store, &serde_json::to_vec(&doc)?, &head)?;
            } else {
                f(store, value, &head)?;
            }
        }
        Ok(())
    })
}

/// Pass 1: sizes, chunk boundaries and hashes.
pub(super) fn plan(
    store: &mut Bulk,
    keys: &ArticleKeys,
    args: &SnapshotArgs,
    flavor: Flavor,
    identifier: &str,
) -> Result<Plan> {
    let mut whole = Versioner::new(args, flavor, identifier);
    let mut chunks: Vec<PlannedChunk> = Vec::new();
    let (mut articles, mut bytes) = (0u64, 0u64);
    let mut language = String::new();
    let progress = Progress::new(args.progress, "pass 1/2 (plan)");
    for_each_article(store, keys, args, flavor, |_, line, head| {
        let len = line.len() as u64 + 1;
        let start_new = chunks
            .last()
            .is_none_or(|c| c.bytes > 0 && c.bytes + len > args.chunk_size);
        if start_new && flavor.chunked() {
            let mut hasher = Sha256::new();
            hasher.update(FORMAT);
            hasher.update(core::chunk_identifier(identifier, chunks.len()));
            chunks.push(PlannedChunk {
                articles: 0,
                bytes: 0,
                hasher,
            });
        }
        if let Some(chunk) = chunks.last_mut() {
            chunk.articles += 1;
            chunk.bytes += len;
            chunk.hasher.update(line);
            chunk.hasher.update(b"\n");
        }
        whole.line(line, head);
        articles += 1;
        bytes += len;
        if language.is_empty()
            && let Some(lang) = &head.in_language
        {
            language = lang.identifier.clone();
        }
        progress.tick(articles, bytes);
        Ok(())
    })?;
    progress.done(articles, bytes);
    let (version, mtime) = whole.finish();
    // The tar mtime and the part size change the stored bytes and their
    // layout: they belong in every version.
    for chunk in &mut chunks {
        chunk.hasher.update(mtime.to_le_bytes());
        chunk.hasher.update(args.part_size.to_le_bytes());
    }
    Ok(Plan {
        articles,
        bytes,
        version,
        chunks: chunks
            .into_iter()
            .map(|c| (c.articles, c.bytes, hex32(&c.hasher.finalize())))
            .collect(),
        language,
        mtime,
    })
}
