//! The key-value layout of stored articles, the one definition the articles
//! component, `wikiedge import` and any bulk tool share, in the `bulk`
//! store ([`crate::stores`]).
//!
//! - `article:{project}:{Title_Key}` ([`article_key`]) holds the WME Article
//!   JSON, compact, inside a one-element JSON array (`[{...}]`,
//!   [`stored_article`]): the very body of `GET /v2/articles/{name}` when
//!   one project has the title, which the articles component then sends
//!   without copying it into a new buffer. Values written before this form
//!   hold the bare object; [`document`] reads either.
//! - `article-projects:{Title_Key}` ([`index_key`]) is the title index: a
//!   small JSON object mapping each project that has the title to its
//!   [`Entry`], `{"enwiki": {"rev": 716551092, "fetched": 1764374400}}`,
//!   plus `"retry_at"` (Unix seconds) after an upstream failure and
//!   `"copy"`, a random number naming the write of the article (every
//!   writer draws a new one; entries written before it have none). It answers
//!   "which projects have this title", the ETag and the freshness check in
//!   one read.
//!
//! The title in both keys is the display title normalised with the
//! project's case rule, in key form (underscores). Components update the
//! index by compare-and-swap ([`crate::cas`]); so readers take the payload
//! out of the CAS envelope ([`parse_index`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::title;

/// The prefix of article keys.
pub const ARTICLE_PREFIX: &str = "article:";
/// The prefix of title index keys.
pub const INDEX_PREFIX: &str = "article-projects:";

/// What the index knows about one project's copy of a title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The revision id of the stored article (its ETag).
    pub rev: u64,
    /// When the article was fetched or imported (Unix seconds).
    pub fetched: u64,
    /// Not before this time (Unix seconds) try upstream again after a failure.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_at: u64,
    /// Which write of the article this entry records: a random number
    /// drawn at every write of the stored article ([`new_copy`]), so that
    /// a reader that keeps the article's bytes across requests (the
    /// articles component, `wikiedge_fn::kept`) knows they are still the
    /// stored ones. 0 in entries written before it existed, whose bytes are
    /// not kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub copy: u64,
}

/// A `copy` for a new write of an article, from 64 random bits (never 0).
pub fn new_copy(random: [u8; 8]) -> u64 {
    u64::from_le_bytes(random).max(1)
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Project id -> entry, ordered by project id.
pub type Index = BTreeMap<String, Entry>;

/// The index key of a (normalised, display-form) title.
pub fn index_key(display_title: &str) -> String {
    format!("{INDEX_PREFIX}{}", title::key_form(display_title))
}

/// The key of one project's copy of a (normalised, display-form) title.
pub fn article_key(project: &str, display_title: &str) -> String {
    title::storage_key(project, display_title)
}

/// The stored form of an article's compact JSON object: `[` + `json` + `]`.
pub fn stored_article(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 2);
    out.push(b'[');
    out.extend_from_slice(json);
    out.push(b']');
    out
}

/// An article serialised straight into its stored form (no second copy).
pub fn to_stored<T: Serialize + ?Sized>(article: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = vec![b'['];
    serde_json::to_writer(&mut out, article)?;
    out.push(b']');
    Ok(out)
}

/// Whether a stored value is in the array form of [`stored_article`] (an
/// article object never starts with `[`).
pub fn is_wrapped(stored: &[u8]) -> bool {
    stored.len() >= 2 && stored[0] == b'[' && stored[stored.len() - 1] == b']'
}

/// The article's JSON object inside a stored value, in either form.
pub fn document(stored: &[u8]) -> &[u8] {
    if is_wrapped(stored) {
        &stored[1..stored.len() - 1]
    } else {
        stored
    }
}

/// An index record's entries, out of its CAS envelope if it has one; a
/// missing or unreadable record is empty.
pub fn parse_index(bytes: Option<&[u8]>) -> Index {
    bytes
        .and_then(|b| serde_json::from_slice(crate::cas::payload(b)).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_article_is_stored_as_the_array_it_is_served_in_and_read_in_either_form() {
        let doc = br#"{"identifier":1,"name":"Squirrel"}"#;
        let stored = stored_article(doc);
        assert_eq!(stored, br#"[{"identifier":1,"name":"Squirrel"}]"#);
        let value: serde_json::Value = serde_json::from_slice(doc).unwrap_or_default();
        assert_eq!(to_stored(&value).ok(), Some(stored.clone()));
        assert!(is_wrapped(&stored));
        assert_eq!(document(&stored), doc);
        // A value written before the array form is the bare object.
        assert!(!is_wrapped(doc));
        assert_eq!(document(doc), doc);
        assert_eq!(document(b""), b"");
        assert_eq!(document(b"["), b"[");
    }

    #[test]
    fn keys_use_the_key_form_of_the_title() {
        assert_eq!(
            index_key("Albert Einstein"),
            "article-projects:Albert_Einstein"
        );
        assert_eq!(
            article_key("enwiki", "Albert Einstein"),
            "article:enwiki:Albert_Einstein"
        );
        assert!(article_key("dewiki", "X").starts_with(ARTICLE_PREFIX));
    }

    #[test]
    fn an_index_reads_plain_or_enveloped_and_writes_without_zero_retry() {
        let mut index = Index::new();
        index.insert(
            "enwiki".into(),
            Entry {
                rev: 7,
                fetched: 9,
                retry_at: 0,
                copy: 0,
            },
        );
        let plain = serde_json::to_vec(&index).expect("json");
        assert_eq!(
            String::from_utf8_lossy(&plain),
            r#"{"enwiki":{"rev":7,"fetched":9}}"#
        );
        assert_eq!(parse_index(Some(&plain)), index);
        let wrapped = crate::cas::encode(&crate::cas::decode(b"{}"), [42; 16], &plain);
        assert_eq!(parse_index(Some(&wrapped)), index);
        assert_eq!(parse_index(Some(b"not json")), Index::new());
        assert_eq!(parse_index(None), Index::new());
    }
}
