//! The streaming reader behind [`DumpReader`].

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Contributor, DumpNamespace, DumpPage, DumpRevision, PreviousRevision, SiteInfo, Slot};
use crate::{Error, Result};

/// Which revisions of a page the reader yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Revisions {
    /// One item per page carrying its last revision (dumps list revisions
    /// oldest first), as an importer of current articles wants.
    #[default]
    Latest,
    /// One item per revision, each with the page's title, id and namespace.
    Each,
}

/// An owned XML event, namespace prefixes dropped.
enum Ev {
    Start(String, Vec<(String, String)>),
    Empty(String, Vec<(String, String)>),
    End(String),
    Text(String),
    Eof,
}

/// The page being read: header fields seen so far, its latest revision and
/// what the history before it tells.
#[derive(Default)]
struct OpenPage {
    page: DumpPage,
    /// How many revisions of the page were read.
    revisions_read: u64,
    /// The summary of the revision read last.
    last: Option<PreviousRevision>,
}

impl OpenPage {
    /// Records `revision` as the page's current one, with the creation date
    /// and parent revision the history read so far gives.
    fn push(&mut self, revision: DumpRevision) {
        if self.revisions_read == 0 && revision.parent_id.is_none() {
            self.page.created = Some(revision.timestamp.clone()).filter(|t| !t.is_empty());
        }
        let last = self.last.take();
        self.page.previous = match (last, revision.parent_id) {
            (Some(last), Some(parent)) if last.id == parent => Some(last),
            (Some(last), None) => Some(last),
            (_, Some(parent)) => Some(PreviousRevision {
                id: parent,
                ..PreviousRevision::default()
            }),
            (None, None) => None,
        };
        self.last = Some(PreviousRevision::of(&revision));
        self.revisions_read += 1;
        self.page.revision = Some(revision);
    }
}

/// A streaming reader of MediaWiki XML dumps; an iterator of pages.
pub struct DumpReader<R: BufRead> {
    reader: Reader<R>,
    buf: Vec<u8>,
    siteinfo: Option<SiteInfo>,
    language: Option<String>,
    revisions: Revisions,
    open: Option<OpenPage>,
    finished: bool,
}

impl<R: BufRead> DumpReader<R> {
    /// Starts reading a dump, consuming the `<siteinfo>` header if there is one.
    pub fn new(input: R) -> Result<Self> {
        let mut this = DumpReader {
            reader: Reader::from_reader(input),
            buf: Vec::new(),
            siteinfo: None,
            language: None,
            revisions: Revisions::Latest,
            open: None,
            finished: false,
        };
        loop {
            match this.next_event()? {
                Ev::Start(name, attrs) if name == "mediawiki" => {
                    this.language = attr(&attrs, "lang").map(str::to_string);
                }
                Ev::Start(name, _) if name == "siteinfo" => {
                    this.siteinfo = Some(this.siteinfo_body()?);
                    break;
                }
                Ev::Start(name, _) if name == "page" => {
                    this.open = Some(OpenPage::default());
                    break;
                }
                Ev::Start(name, _) => {
                    return Err(this.malformed(&format!("unexpected <{name}> before any page")));
                }
                Ev::Eof => {
                    this.finished = true;
                    break;
                }
                _ => {}
            }
        }
        Ok(this)
    }

    /// Chooses whether to yield the latest revision per page or each revision.
    pub fn revisions(mut self, revisions: Revisions) -> Self {
        self.revisions = revisions;
        self
    }

    /// The dump's `<siteinfo>`, when it has one.
    pub fn siteinfo(&self) -> Option<&SiteInfo> {
        self.siteinfo.as_ref()
    }

    /// The dump's content language, from the root element's `xml:lang`.
    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }

    /// A `BadRequest` naming the byte position where reading stopped.
    fn malformed(&self, what: &str) -> Error {
        Error::BadRequest(format!(
            "malformed dump XML at byte {}: {what}",
            self.reader.buffer_position()
        ))
    }

    fn next_event(&mut self) -> Result<Ev> {
        self.buf.clear();
        let event = match self.reader.read_event_into(&mut self.buf) {
            Ok(event) => event,
            Err(e) => {
                let pos = self.reader.error_position();
                return Err(Error::BadRequest(format!(
                    "malformed dump XML at byte {pos}: {e}"
                )));
            }
        };
        let owned = match event {
            Event::Start(e) => Ev::Start(local_name(&e), attributes(&e)?),
            Event::Empty(e) => Ev::Empty(local_name(&e), attributes(&e)?),
            Event::End(e) => Ev::End(String::from_utf8_lossy(e.local_name().as_ref()).into_owned()),
            Event::Text(t) => Ev::Text(
                t.unescape()
                    .map_err(|e| Error::BadRequest(format!("malformed dump XML text: {e}")))?
                    .into_owned(),
            ),
            Event::CData(c) => Ev::Text(String::from_utf8_lossy(&c).into_owned()),
            Event::Eof => Ev::Eof,
            _ => Ev::Text(String::new()),
        };
        Ok(owned)
    }

    /// Reads the text content of the element just opened, up to its end tag.
    fn text_body(&mut self) -> Result<String> {
        let mut out = String::new();
        let mut depth = 0usize;
        loop {
            match self.next_event()? {
                Ev::Text(t) if depth == 0 => out.push_str(&t),
                Ev::Start(..) => depth += 1,
                Ev::End(_) if depth == 0 => return Ok(out),
                Ev::End(_) => depth -= 1,
                Ev::Eof => return Err(self.malformed("unexpected end of input")),
                _ => {}
            }
        }
    }

    /// Skips the rest of the element just opened.
    fn skip(&mut self) -> Result<()> {
        self.text_body().map(|_| ())
    }

    fn number<T: std::str::FromStr>(&self, field: &str, text: &str) -> Result<T> {
        text.trim()
            .parse()
            .map_err(|_| self.malformed(&format!("<{field}> is not a number: {text:?}")))
    }

    fn siteinfo_body(&mut self) -> Result<SiteInfo> {
        let mut info = SiteInfo::default();
        loop {
            match self.next_event()? {
                Ev::Start(name, _) if name == "namespaces" => {}
                Ev::End(name) if name == "namespaces" => {}
                Ev::Start(name, attrs) if name == "namespace" => {
                    let ns = self.namespace(&attrs, true)?;
                    info.namespaces.push(ns);
                }
                Ev::Empty(name, attrs) if name == "namespace" => {
                    let ns = self.namespace(&attrs, false)?;
                    info.namespaces.push(ns);
                }
                Ev::Start(name, _) => {
                    let text = self.text_body()?;
                    match name.as_str() {
                        "sitename" => info.sitename = Some(text),
                        "dbname" => info.dbname = Some(text),
                        "base" => info.base = Some(text),
                        "generator" => info.generator = Some(text),
                        "case" => info.case = Some(text),
                        _ => {}
                    }
                }
                Ev::End(_) => return Ok(info),
                Ev::Eof => return Err(self.malformed("unexpected end of input in <siteinfo>")),
                _ => {}
            }
        }
    }

    fn namespace(&mut self, attrs: &[(String, String)], has_body: bool) -> Result<DumpNamespace> {
        let key = attr(attrs, "key").ok_or_else(|| self.malformed("<namespace> without key"))?;
        let key = self.number("namespace key", key)?;
        let name = if has_body {
            self.text_body()?
        } else {
            String::new()
        };
        Ok(DumpNamespace {
            key,
            case: attr(attrs, "case").map(str::to_string),
            name,
        })
    }

    fn revision_body(&mut self) -> Result<DumpRevision> {
        let mut rev = DumpRevision::default();
        loop {
            match self.next_event()? {
                Ev::Empty(name, attrs) => match name.as_str() {
                    "minor" => rev.minor = true,
                    "contributor" if is_deleted(&attrs) => {
                        rev.contributor = Some(Contributor::Deleted)
                    }
                    "comment" => rev.comment_deleted = is_deleted(&attrs),
                    "text" => {
                        rev.text_deleted = is_deleted(&attrs);
                        rev.text = (!rev.text_deleted).then(String::new);
                    }
                    _ => {}
                },
                Ev::Start(name, attrs) => match name.as_str() {
                    "id" => rev.id = self.text_body().and_then(|t| self.number("id", &t))?,
                    "parentid" => {
                        rev.parent_id =
                            Some(self.text_body().and_then(|t| self.number("parentid", &t))?)
                    }
                    "timestamp" => rev.timestamp = self.text_body()?,
                    "contributor" if is_deleted(&attrs) => {
                        self.skip()?;
                        rev.contributor = Some(Contributor::Deleted);
                    }
                    "contributor" => rev.contributor = Some(self.contributor_body()?),
                    "comment" => {
                        rev.comment_deleted = is_deleted(&attrs);
                        let text = self.text_body()?;
                        rev.comment = (!rev.comment_deleted).then_some(text);
                    }
                    "minor" => {
                        self.skip()?;
                        rev.minor = true;
                    }
                    "model" => rev.model = Some(self.text_body()?),
                    "format" => rev.format = Some(self.text_body()?),
                    "text" => {
                        rev.text_deleted = is_deleted(&attrs);
                        let text = self.text_body()?;
                        rev.text = (!rev.text_deleted).then_some(text);
                    }
                    "sha1" => rev.sha1 = Some(self.text_body()?).filter(|s| !s.is_empty()),
                    "content" => {
                        let slot = self.slot_body()?;
                        if slot.role == "main" {
                            rev.model = slot.model.or(rev.model);
                            rev.format = slot.format.or(rev.format);
                            rev.text_deleted = slot.text.is_none();
                            rev.text = slot.text;
                        } else {
                            rev.slots.push(slot);
                        }
                    }
                    _ => self.skip()?,
                },
                Ev::End(_) => return Ok(rev),
                Ev::Eof => return Err(self.malformed("unexpected end of input in <revision>")),
                Ev::Text(_) => {}
            }
        }
    }

    fn contributor_body(&mut self) -> Result<Contributor> {
        let (mut name, mut id, mut ip) = (None, None, None);
        loop {
            match self.next_event()? {
                Ev::Start(tag, _) => {
                    let text = self.text_body()?;
                    match tag.as_str() {
                        "username" => name = Some(text),
                        "id" => id = Some(self.number("contributor id", &text)?),
                        "ip" => ip = Some(text),
                        _ => {}
                    }
                }
                Ev::End(_) => break,
                Ev::Eof => return Err(self.malformed("unexpected end of input in <contributor>")),
                _ => {}
            }
        }
        Ok(match (name, ip) {
            (Some(name), _) => Contributor::User { name, id },
            (None, Some(ip)) => Contributor::Anonymous(ip),
            (None, None) => Contributor::Deleted,
        })
    }

    fn slot_body(&mut self) -> Result<Slot> {
        let mut slot = Slot::default();
        loop {
            match self.next_event()? {
                Ev::Start(name, attrs) => {
                    let deleted = is_deleted(&attrs);
                    let text = self.text_body()?;
                    match name.as_str() {
                        "role" => slot.role = text,
                        "model" => slot.model = Some(text),
                        "format" => slot.format = Some(text),
                        "text" => slot.text = (!deleted).then_some(text),
                        _ => {}
                    }
                }
                Ev::Empty(name, attrs) if name == "text" => {
                    slot.text = (!is_deleted(&attrs)).then(String::new);
                }
                Ev::End(_) => return Ok(slot),
                Ev::Eof => return Err(self.malformed("unexpected end of input in <content>")),
                _ => {}
            }
        }
    }

    /// Reads until the next page (or revision, per [`Revisions`]) is complete.
    fn next_page(&mut self) -> Result<Option<DumpPage>> {
        loop {
            let event = self.next_event()?;
            let Some(open) = self.open.as_mut() else {
                match event {
                    Ev::Start(name, _) if name == "page" => self.open = Some(OpenPage::default()),
                    Ev::Start(name, _) if name == "siteinfo" => {
                        self.siteinfo = Some(self.siteinfo_body()?)
                    }
                    Ev::Start(name, _) if name == "mediawiki" => {}
                    Ev::Start(..) => self.skip()?,
                    Ev::Eof => return Ok(None),
                    _ => {}
                }
                continue;
            };
            match event {
                Ev::Start(name, attrs) | Ev::Empty(name, attrs) if name == "redirect" => {
                    open.page.redirect = attr(&attrs, "title").map(str::to_string);
                }
                Ev::Start(name, _) => match name.as_str() {
                    "title" => {
                        let title = self.text_body()?;
                        self.page_mut().title = title;
                    }
                    "ns" => {
                        let ns = self.text_body().and_then(|t| self.number("ns", &t))?;
                        self.page_mut().namespace = ns;
                    }
                    "id" => {
                        let id = self.text_body().and_then(|t| self.number("id", &t))?;
                        self.page_mut().id = id;
                    }
                    "revision" => {
                        let revision = self.revision_body()?;
                        let open = self.open.get_or_insert_with(OpenPage::default);
                        open.push(revision);
                        if self.revisions == Revisions::Each {
                            // Hand the revision over rather than copy its text.
                            let revision = open.page.revision.take();
                            let mut page = open.page.clone();
                            page.revision = revision;
                            return Ok(Some(page));
                        }
                    }
                    _ => self.skip()?,
                },
                Ev::End(name) if name == "page" => {
                    let page = self.open.take().map(|o| o.page).unwrap_or_default();
                    if self.revisions == Revisions::Latest {
                        return Ok(Some(page));
                    }
                }
                Ev::End(name) if name == "redirect" => {}
                Ev::End(name) => {
                    return Err(self.malformed(&format!("unexpected </{name}> in <page>")));
                }
                Ev::Eof => return Err(self.malformed("unexpected end of input in <page>")),
                _ => {}
            }
        }
    }

    fn page_mut(&mut self) -> &mut DumpPage {
        &mut self.open.get_or_insert_with(OpenPage::default).page
    }
}

impl<R: BufRead> Iterator for DumpReader<R> {
    type Item = Result<DumpPage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.next_page() {
            Ok(Some(page)) => Some(Ok(page)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                // A malformed dump cannot be resynchronised: stop after the error.
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

fn local_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

fn attributes(e: &BytesStart<'_>) -> Result<Vec<(String, String)>> {
    e.attributes()
        .map(|a| {
            let a =
                a.map_err(|err| Error::BadRequest(format!("malformed dump XML attribute: {err}")))?;
            let value = a
                .unescape_value()
                .map_err(|err| Error::BadRequest(format!("malformed dump XML attribute: {err}")))?;
            Ok((
                String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(),
                value.into_owned(),
            ))
        })
        .collect()
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn is_deleted(attrs: &[(String, String)]) -> bool {
    attr(attrs, "deleted").is_some()
}
