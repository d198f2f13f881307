//! Pass 1 of a snapshot build: which articles, how many bytes, the version
//! and the chunk plan, read from the store in key order.

use anyhow::Result;
use rusqlite::{Connection, params};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use wikiedge_core::snapshot::*;

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

/// The upper bound of a key prefix range: the prefix with its last byte
/// incremented (every prefix here ends in ASCII `:` or `_`).
pub(super) fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Streams the project's stored articles of one namespace, in key order,
/// as NDJSON lines (without the newline) with their parsed head; for a
/// structured-contents snapshot each line is the article's structured
/// contents.
pub(super) fn for_each_article(
    conn: &Connection,
    args: &SnapshotArgs,
    flavor: Flavor,
    mut f: impl FnMut(&[u8], &Head) -> Result<()>,
) -> Result<()> {
    let prefix = format!("article:{}:", args.project);
    let mut stmt = conn.prepare(
        "SELECT key, value FROM spin_key_value WHERE store = ?1 AND key >= ?2 AND key < ?3 \
         ORDER BY key",
    )?;
    let mut rows = stmt.query(params![STORE, prefix, prefix_end(&prefix)])?;
    while let Some(row) = rows.next()? {
        let value = row.get_ref(1)?.as_blob()?;
        let head: Head = match serde_json::from_slice(value) {
            Ok(head) => head,
            Err(e) => {
                let key: String = row.get(0)?;
                tracing::warn!("snapshot: skipping unreadable article {key}: {e}");
                continue;
            }
        };
        if head.namespace.as_ref().map(|n| n.identifier) != Some(args.namespace) {
            continue;
        }
        if flavor == Flavor::Structured {
            f(&structured_line(&args.project, value)?, &head)?;
        } else if value.contains(&b'\n') {
            // Stored JSON is compact; re-serialise anything that is not.
            let doc: serde_json::Value = serde_json::from_slice(value)?;
            f(&serde_json::to_vec(&doc)?, &head)?;
        } else {
            f(value, &head)?;
        }
    }
    Ok(())
}

/// Pass 1: sizes, chunk boundaries and hashes.
pub(super) fn plan(
    conn: &Connection,
    args: &SnapshotArgs,
    flavor: Flavor,
    identifier: &str,
) -> Result<Plan> {
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
    let mut chunks: Vec<PlannedChunk> = Vec::new();
    let (mut articles, mut bytes, mut mtime) = (0u64, 0u64, 0u64);
    let mut language = String::new();
    let progress = Progress::new(args.progress, "pass 1/2 (plan)");
    for_each_article(conn, args, flavor, |line, head| {
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
        whole.update(line);
        whole.update(b"\n");
        articles += 1;
        bytes += len;
        if language.is_empty()
            && let Some(lang) = &head.in_language
        {
            language = lang.identifier.clone();
        }
        if let Some(t) = head.date_modified.as_deref().and_then(core::parse_rfc3339) {
            mtime = mtime.max(t.max(0) as u64);
        }
        progress.tick(articles, bytes);
        Ok(())
    })?;
    progress.done(articles, bytes);
    // The tar mtime and the part size change the stored bytes and their
    // layout: they belong in every version.
    whole.update(mtime.to_le_bytes());
    for chunk in &mut chunks {
        chunk.hasher.update(mtime.to_le_bytes());
        chunk.hasher.update(args.part_size.to_le_bytes());
    }
    Ok(Plan {
        articles,
        bytes,
        version: hex32(&whole.finalize()),
        chunks: chunks
            .into_iter()
            .map(|c| (c.articles, c.bytes, hex32(&c.hasher.finalize())))
            .collect(),
        language,
        mtime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_end_just_after_the_prefix() {
        assert_eq!(prefix_end("article:enwiki:"), "article:enwiki;");
        assert_eq!(
            prefix_end("snapshot-blob:x_chunk_"),
            "snapshot-blob:x_chunk`"
        );
    }
}
