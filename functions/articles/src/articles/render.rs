//! Step 6 of an article lookup: stored JSON to the documents sent.

use wikiedge_core::Error;
use wikiedge_core::article::layout::{document, is_wrapped};
use wikiedge_core::article::projection::{
    Filter, matches_all, members_of, members_read, parse_members, project,
};
use wikiedge_core::article::schema::Article;
use wikiedge_core::article::sections::structured_content;
use wikiedge_core::article::structured::StructuredContent;

use super::Product;
use wikiedge_fn::kept;

/// Turns a stored value into the document to send: as stored for an
/// article without `fields` (possibly still in its array form, which
/// [`join_documents`] handles), else parsed or converted, filtered and
/// projected, and sent in the array form too (so that a lone one is the
/// body as it is). `None` when a filter drops it.
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
    // Only the top-level members that the fields and filters read are made
    // into a `Value`: a whole document as a `Value` takes several times its
    // JSON size, and an instance's memory only grows. The whole is kept
    // beside them for filters without fields, which send it as it is.
    let members = members_read(fields, filters);
    let (read, whole) = match product {
        Product::Articles => {
            // Anything but an object is parsed whole, as it always was.
            let read = parse_members(document(&json), &members)
                .or_else(|_| serde_json::from_slice(document(&json)))
                .map_err(corrupt)?;
            (read, Whole::Stored(json))
        }
        Product::Structured => {
            let article: Article = serde_json::from_slice(document(&json)).map_err(corrupt)?;
            // The stored bytes are parsed: they need not stay for the
            // rest (an instance's memory only grows).
            drop(json);
            let loc = wikiedge_core::article::wikitext::Localisation {
                first_letter_upper,
                ..Default::default()
            };
            let doc = structured_content(article, &loc);
            if filters.is_empty() && fields.is_empty() {
                // Nothing to select: written as made, as the snapshot
                // build writes it, not through a `Value` and a copy.
                return sent(&doc).map(Some).map_err(corrupt);
            }
            // Made straight from the document, not from it written out.
            (
                members_of(&doc, &members).map_err(corrupt)?,
                Whole::Made(Box::new(doc)),
            )
        }
    };
    if !matches_all(&read, filters) {
        return Ok(None);
    }
    match whole {
        // Filters alone: the article as stored, the structured contents as made.
        Whole::Stored(json) if fields.is_empty() => Ok(Some(json)),
        Whole::Made(doc) if fields.is_empty() => sent(&doc).map(Some).map_err(corrupt),
        whole => {
            // Gone before the projection is made and written.
            drop(whole);
            sent(&project(read, fields)).map(Some).map_err(corrupt)
        }
    }
}

/// The whole document a selection was read from, sent as it is when
/// only filters were asked.
enum Whole {
    /// The stored article.
    Stored(Vec<u8>),
    /// The structured contents made from it.
    Made(Box<StructuredContent>),
}

/// A rendered document in the array form, in a buffer of its exact size:
/// measured first, then written, not grown by doubling (which holds the
/// old buffer and the new one at once, and leaves up to half of the last
/// one unused, in a buffer an instance may keep).
fn sent<T: serde::Serialize>(doc: &T) -> serde_json::Result<Vec<u8>> {
    /// Counts what is written to it.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(2);
    serde_json::to_writer(&mut count, doc)?;
    let mut out = Vec::with_capacity(count.0);
    out.push(b'[');
    serde_json::to_writer(&mut out, doc)?;
    out.push(b']');
    Ok(out)
}

/// Whether [`render`] sends a stored value as it is, bytes unchanged: an
/// article with no `fields` and no document filters.
fn renders_as_stored(product: Product, filters: &[Filter], fields: &[String]) -> bool {
    product == Product::Articles && filters.is_empty() && fields.is_empty()
}

/// The [`kept::Tag::form`] of what [`render`] makes for `product` from a
/// stored value with document `filters` and `fields`: the stored value
/// itself for an article without either (sent as stored); the rendering of
/// the whole value for the structured contents without either; else what
/// was selected, by the route's name and the selection as the client gave
/// it, in JSON, so that two selections never share a form (the same fields
/// in another order make another form: a document kept twice, never a
/// wrong one). A document depends on nothing else but the value: the
/// project's first-letter rule is the key's. `None` (nothing kept) only if
/// the selection cannot be written out.
pub fn kept_form(product: Product, filters: &[Filter], fields: &[String]) -> Option<kept::Form> {
    if renders_as_stored(product, filters, fields) {
        return Some(kept::Form::Stored);
    }
    if filters.is_empty() && fields.is_empty() {
        return Some(kept::Form::Rendered(product.name()));
    }
    let selection = serde_json::to_string(&(fields, filters)).ok()?;
    Some(kept::Form::Selected(format!(
        "{} {selection}",
        product.name()
    )))
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
