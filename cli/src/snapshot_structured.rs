//! What makes a structured-contents snapshot differ from an article
//! snapshot in `wikiedge snapshot build` (host/src/snapshot.rs runs both
//! through the same two passes).
//!
//! - Lines: every stored article, transformed by
//!   `wikiedge_core::article::sections::structured_content` exactly as
//!   On-demand's `/v2/structured-contents/{name}` transforms it (the title
//!   case rule of the project included), one compact JSON per line.
//! - Keys: the record `structured-snapshot:{identifier}`, the list
//!   `structured-snapshot-index`, the parts under the blob id
//!   `structured-contents_{identifier}` (`wikiedge_core::snapshot`).
//! - No chunks: WME's structured-contents snapshots have none, and neither
//!   SDK has a chunk method for them.

use anyhow::Result;
use wikiedge_core::article::schema::Article;
use wikiedge_core::article::sections::structured_content;
use wikiedge_core::article::wikitext::Localisation;
use wikiedge_core::snapshot as core;

/// Which snapshot a build writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `/v2/snapshots`: the stored articles, with chunks.
    Articles,
    /// `/v2/snapshots/structured-contents`: their structured contents.
    Structured,
}

impl Flavor {
    /// A name that goes into the version hash, so the two never share one.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Articles => "articles",
            Flavor::Structured => "structured-contents",
        }
    }

    /// The id the tar.gz's parts are stored under.
    pub fn blob_id(self, identifier: &str) -> String {
        match self {
            Flavor::Articles => identifier.to_string(),
            Flavor::Structured => core::structured_blob_id(identifier),
        }
    }

    /// The key of the record.
    pub fn record_key(self, identifier: &str) -> String {
        match self {
            Flavor::Articles => core::record_key(identifier),
            Flavor::Structured => core::structured_record_key(identifier),
        }
    }

    /// The key of the list the record is named in.
    pub fn index_key(self) -> &'static str {
        match self {
            Flavor::Articles => core::INDEX_KEY,
            Flavor::Structured => core::STRUCTURED_INDEX_KEY,
        }
    }

    /// Whether the snapshot is also split into chunks.
    pub fn chunked(self) -> bool {
        self == Flavor::Articles
    }
}

/// The project's title case rule, as On-demand applies it: Wiktionaries
/// are case-sensitive, every other project uppercases the first letter.
fn localisation(project: &str) -> Localisation {
    Localisation {
        first_letter_upper: !project.ends_with("wiktionary"),
        ..Localisation::default()
    }
}

/// The structured-contents line of one stored article (compact JSON).
pub fn structured_line(project: &str, stored: &[u8]) -> Result<Vec<u8>> {
    let article: Article = serde_json::from_slice(stored)?;
    let doc = structured_content(article, &localisation(project));
    Ok(serde_json::to_vec(&doc)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_structured_line_drops_the_body_and_carries_sections() -> Result<()> {
        let stored = serde_json::json!({
            "name": "Pear", "identifier": 7,
            "article_body": {"wikitext": "'''Pear''' is a tree.\n== Uses ==\nEaten."}
        });
        let line = structured_line("enwiki", stored.to_string().as_bytes())?;
        let doc: serde_json::Value = serde_json::from_slice(&line)?;
        assert_eq!(doc["name"], "Pear");
        assert!(doc.get("article_body").is_none(), "{doc}");
        assert_eq!(doc["sections"][1]["name"], "Uses");
        assert!(!line.contains(&b'\n'));
        Ok(())
    }

    #[test]
    fn the_two_flavors_never_share_a_key() {
        let id = "enwiki_namespace_0";
        assert_ne!(
            Flavor::Articles.record_key(id),
            Flavor::Structured.record_key(id)
        );
        assert_ne!(Flavor::Articles.blob_id(id), Flavor::Structured.blob_id(id));
        assert_ne!(Flavor::Articles.index_key(), Flavor::Structured.index_key());
    }
}
