//! The WME article: its schema, the transforms that build it from MediaWiki
//! dumps and APIs, and the request projection (`fields`, `filters`, `limit`).
//!
//! - [`schema`]: the Article document and its parts.
//! - [`structured`]: the structured-contents document and its parts.
//! - [`title`]: title normalisation, storage keys and URLs.
//! - [`layout`]: the key-value layout of stored articles and their index.
//! - [`wikitext`]: categories, templates and redirects from wikitext.
//! - [`plaintext`]: wikitext to plain text (abstracts, paragraphs).
//! - [`sections`]: sections and infoboxes for structured contents.
//! - [`parts`]: links, images, references and tables for structured contents.
//! - [`dump`]: the streaming MediaWiki XML dump reader.
//! - [`maintenance`]: `version.maintenance_tags`, counted as WME counts them.
//! - [`transform`]: dump page -> article, redirect folding.
//! - [`upstream`]: REST + Action API responses -> article.
//! - [`pipeline`]: the decisions of an article lookup (freshness, backoff,
//!   ETags, `If-None-Match`, when quota is charged), free of I/O.
//! - [`projection`]: `fields` and `filters` on JSON documents by dot paths.
//! - [`revertrisk`]: `version.scores.revertrisk` from Lift Wing (opt-in).
//! - [`request`]: the On-demand request (`fields`, `filters`, `limit`).

#[cfg(test)]
mod coverage;
pub mod dump;
pub mod layout;
pub mod maintenance;
pub mod parts;
pub mod pipeline;
pub mod plaintext;
pub mod projection;
pub mod request;
pub mod revertrisk;
pub mod schema;
pub mod sections;
pub mod structured;
pub mod title;
pub mod transform;
pub mod upstream;
pub mod wikitext;
