//! MediaWiki XML dumps (export-0.10 and export-0.11), read as a stream.
//!
//! [`DumpReader`] walks any [`std::io::BufRead`] (the host decompresses
//! bz2/gz) and yields one [`DumpPage`] at a time, so memory stays bounded by
//! the largest page rather than the dump. Element names are matched by local
//! name, so both schema namespaces (`.../export-0.10/`, `.../export-0.11/`)
//! read the same way.

mod reader;
#[cfg(test)]
pub(crate) mod tests;

pub use reader::{DumpReader, Revisions};

use super::wikitext::Localisation;

/// The `<siteinfo>` header of a dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteInfo {
    /// The site name, e.g. `Wikipedia`.
    pub sitename: Option<String>,
    /// The database name, e.g. `enwiki`.
    pub dbname: Option<String>,
    /// The main page URL, e.g. `https://en.wikipedia.org/wiki/Main_Page`.
    pub base: Option<String>,
    /// The MediaWiki version that wrote the dump.
    pub generator: Option<String>,
    /// The title case rule: `first-letter` or `case-sensitive`.
    pub case: Option<String>,
    /// The namespaces with their local names.
    pub namespaces: Vec<DumpNamespace>,
}

/// One `<namespace key=".." case="..">Name</namespace>` of the siteinfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpNamespace {
    /// The namespace number.
    pub key: i64,
    /// The namespace's title case rule.
    pub case: Option<String>,
    /// The local name (empty for the main namespace).
    pub name: String,
}

impl SiteInfo {
    /// The project base URL (scheme and host of `base`), e.g. `https://en.wikipedia.org`.
    pub fn base_url(&self) -> Option<String> {
        let base = self.base.as_deref()?;
        let after_scheme = base.find("://")? + 3;
        let end = base[after_scheme..]
            .find('/')
            .map_or(base.len(), |e| after_scheme + e);
        Some(base[..end].to_string())
    }

    /// The local name of a namespace, if the siteinfo lists it.
    pub fn namespace_name(&self, key: i64) -> Option<&str> {
        self.namespaces
            .iter()
            .find(|n| n.key == key)
            .map(|n| n.name.as_str())
    }

    /// The wikitext localisation (category/template/file names, case rule).
    pub fn localisation(&self) -> Localisation {
        let default = Localisation::default();
        let name = |key: i64, fallback: String| {
            self.namespace_name(key)
                .filter(|n| !n.is_empty())
                .map_or(fallback, str::to_string)
        };
        Localisation {
            category: name(14, default.category),
            template: name(10, default.template),
            file: name(6, default.file),
            first_letter_upper: self.case.as_deref() != Some("case-sensitive"),
        }
    }
}

/// Who saved a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contributor {
    /// A registered user.
    User {
        /// The user name.
        name: String,
        /// The user id.
        id: Option<u64>,
    },
    /// An anonymous editor, by IP address.
    Anonymous(String),
    /// The contributor is hidden (`<contributor deleted="deleted"/>`).
    Deleted,
}

/// A non-main content slot of a multi-slot (MCR) revision, e.g. `mediainfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    /// The slot role, e.g. `mediainfo`.
    pub role: String,
    /// The content model, e.g. `wikibase-mediainfo`.
    pub model: Option<String>,
    /// The content format, e.g. `application/json`.
    pub format: Option<String>,
    /// The slot content, `None` when deleted.
    pub text: Option<String>,
}

/// One `<revision>` of a page; its main slot is the article content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpRevision {
    /// The revision id.
    pub id: u64,
    /// The parent revision id.
    pub parent_id: Option<u64>,
    /// When the revision was saved (RFC 3339, as the dump writes it).
    pub timestamp: String,
    /// Who saved it; `None` when the dump has no contributor element.
    pub contributor: Option<Contributor>,
    /// The edit summary; `None` when absent or deleted.
    pub comment: Option<String>,
    /// Whether the comment is hidden (`<comment deleted="deleted"/>`).
    pub comment_deleted: bool,
    /// Whether the edit is marked minor.
    pub minor: bool,
    /// The main slot's content model, e.g. `wikitext`.
    pub model: Option<String>,
    /// The main slot's content format, e.g. `text/x-wiki`.
    pub format: Option<String>,
    /// The main slot's content; `None` when suppressed.
    pub text: Option<String>,
    /// Whether the text is hidden (`<text deleted="deleted"/>`).
    pub text_deleted: bool,
    /// The revision's SHA-1 (base 36), when given.
    pub sha1: Option<String>,
    /// The other content slots (0.11 multi-slot revisions).
    pub slots: Vec<Slot>,
}

/// One `<page>` of a dump with one revision (see [`Revisions`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpPage {
    /// The full page title with namespace prefix, with spaces.
    pub title: String,
    /// The namespace number.
    pub namespace: i64,
    /// The page id.
    pub id: u64,
    /// The redirect target title, when the page is a redirect.
    pub redirect: Option<String>,
    /// The revision: the latest one, or each in turn.
    pub revision: Option<DumpRevision>,
    /// When the page was created: the timestamp of its first revision, known
    /// only when the dump carries that revision (the first `<revision>` of
    /// the page has no `<parentid>`).
    pub created: Option<String>,
    /// The parent of [`DumpPage::revision`]: the revision before it in the
    /// dump when that is its parent (or the dump has no `<parentid>`s), else
    /// just the `<parentid>`.
    pub previous: Option<PreviousRevision>,
}

/// The revision before the current one, in brief.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreviousRevision {
    /// The revision id.
    pub id: u64,
    /// When it was saved, when the dump carries it.
    pub timestamp: Option<String>,
    /// The length of its main-slot text in characters, when the dump carries it.
    pub number_of_characters: Option<u64>,
}

impl PreviousRevision {
    /// The summary of a revision the dump carries.
    pub fn of(revision: &DumpRevision) -> Self {
        PreviousRevision {
            id: revision.id,
            timestamp: Some(revision.timestamp.clone()).filter(|t| !t.is_empty()),
            number_of_characters: revision.text.as_deref().map(|t| t.chars().count() as u64),
        }
    }
}
