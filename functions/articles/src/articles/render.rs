//! Step 6 of an article lookup: stored JSON to the documents sent.

use serde_json::Value;
use wikiedge_core::Error;
use wikiedge_core::article::layout::{document, is_wrapped};
use wikiedge_core::article::projection::{Filter, matches_all, project};
use wikiedge_core::article::schema::Article;
use wikiedge_core::article::sections::structured_content;

use super::Product;

/// Turns a stored value into the document to send: as stored on the fast
/// path (possibly still in its array form, which [`join_documents`]
/// handles), else parsed, converted, filtered and projected. `None` when a
/// filter drops it.
pub fn render(
    product: Product,
    json: Vec<u8>,
    filters: &[Filter],
    fields: &[String],
    first_letter_upper: bool,
) -> Result<Option<Vec<u8>>, Error> {
    if renders_as_stored(product, filters, fields) {
        return Ok(Some(json));
    }
    let corrupt = |e: serde_json::Error| Error::Internal(format!("stored article is corrupt: {e}"));
    let json = document(&json);
    let doc: Value = match product {
        Product::Articles => serde_json::from_slice(json).map_err(corrupt)?,
        Product::Structured => {
            let article: Article = serde_json::from_slice(json).map_err(corrupt)?;
            let loc = wikiedge_core::article::wikitext::Localisation {
                first_letter_upper,
                ..Default::default()
            };
            serde_json::to_value(structured_content(article, &loc)).map_err(corrupt)?
        }
    };
    if !matches_all(&doc, filters) {
        return Ok(None);
    }
    let doc = project(&doc, fields);
    serde_json::to_vec(&doc).map(Some).map_err(corrupt)
}

/// Whether [`render`] sends a stored value as it is, bytes unchanged: an
/// article with no `fields` and no document filters.
pub fn renders_as_stored(product: Product, filters: &[Filter], fields: &[String]) -> bool {
    product == Product::Articles && filters.is_empty() && fields.is_empty()
}

/// Whether [`join_documents`] returns the one document it is given as
/// the body, bytes unchanged: a lone stored value in the array form, not
/// as NDJSON.
pub fn joins_as_is(docs: &[Vec<u8>], ndjson: bool) -> bool {
    !ndjson && docs.len() == 1 && is_wrapped(&docs[0])
}

/// Joins documents (each an article object, or a stored value in either
/// form: [`document`]) into a JSON array or NDJSON. A lone stored value in
/// the array form already is the JSON array: it is returned as it is, not
/// copied (an article is 100-200 KB).
pub fn join_documents(mut docs: Vec<Vec<u8>>, ndjson: bool) -> Vec<u8> {
    if joins_as_is(&docs, ndjson) {
        return docs.swap_remove(0);
    }
    let size: usize = docs.iter().map(|d| d.len() + 1).sum::<usize>() + 2;
    let mut out = Vec::with_capacity(size);
    if ndjson {
        for doc in &docs {
            out.extend_from_slice(document(doc));
            out.push(b'\n');
        }
    } else {
        out.push(b'[');
        for (i, doc) in docs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(document(doc));
        }
        out.push(b']');
    }
    out
}
