//! Small, robust wikitext utilities: categories, templates, redirects and
//! template parameters. This is no parser: it scans for the few constructs
//! an article document needs and tolerates anything it does not understand
//! (unbalanced braces end a construct at the end of the text, never panic).

//!
//! Wikitext comes from anyone who can edit a page, so every scan here (and
//! in `plaintext.rs` and `sections.rs`) is iterative and linear (or
//! `n log n`) in the input: no recursion on nesting, no rescanning the rest
//! of the page per construct, and no transform reads more than
//! [`MAX_WIKITEXT_BYTES`] of a page.

use super::title;
use std::collections::HashSet;

/// The most wikitext any transform reads: MediaWiki's own page size limit
/// (`$wgMaxArticleSize`, 2 MiB). Anything after it is ignored.
pub const MAX_WIKITEXT_BYTES: usize = 2 << 20;

/// The longest link target or template name worth resolving (a title is at
/// most 255 bytes; namespace and fragment come on top). Longer ones are not
/// titles and are skipped without being looked at.
const MAX_TARGET_BYTES: usize = 1024;

/// `text` cut to [`MAX_WIKITEXT_BYTES`] at a character boundary.
pub fn capped(text: &str) -> &str {
    if text.len() <= MAX_WIKITEXT_BYTES {
        return text;
    }
    let mut end = MAX_WIKITEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The localised namespace names a project uses in wikitext.
///
/// Dumps carry them in `<siteinfo><namespaces>`; the English canonical names
/// are always accepted as well, because MediaWiki accepts them on every wiki.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Localisation {
    /// The local name of namespace 14 (e.g. `Kategorie`), used in output.
    pub category: String,
    /// The local name of namespace 10 (e.g. `Vorlage`), used in output.
    pub template: String,
    /// The local name of namespace 6 (e.g. `Datei`).
    pub file: String,
    /// Whether titles get their first letter uppercased on this project.
    pub first_letter_upper: bool,
}

impl Default for Localisation {
    fn default() -> Self {
        Localisation {
            category: "Category".into(),
            template: "Template".into(),
            file: "File".into(),
            first_letter_upper: true,
        }
    }
}

impl Localisation {
    /// Whether `prefix` names the category namespace (local or canonical).
    pub fn is_category(&self, prefix: &str) -> bool {
        same_name(prefix, &self.category) || same_name(prefix, "Category")
    }

    /// Whether `prefix` names the file namespace (local, canonical or `Image`).
    pub fn is_file(&self, prefix: &str) -> bool {
        same_name(prefix, &self.file) || same_name(prefix, "File") || same_name(prefix, "Image")
    }

    /// Whether `prefix` names the template namespace (local or canonical).
    pub fn is_template(&self, prefix: &str) -> bool {
        same_name(prefix, &self.template) || same_name(prefix, "Template")
    }

    /// Normalises a page name part (not the namespace) per the project's case rule.
    fn page(&self, name: &str) -> Option<String> {
        title::normalize(name, self.first_letter_upper).ok()
    }
}

/// Namespace names compare case-insensitively, with `_` as space.
fn same_name(a: &str, b: &str) -> bool {
    let a = a.trim().replace('_', " ");
    a.to_lowercase() == b.replace('_', " ").to_lowercase()
}

/// The first occurrence of `needle` in `text` (vectorised; `str::find`
/// with a string needle builds a two-way searcher on every call, which was
/// a fifth of a dump import's time).
pub(crate) fn find(text: &str, needle: &str) -> Option<usize> {
    match needle.as_bytes() {
        [byte] => memchr::memchr(*byte, text.as_bytes()),
        bytes => memchr::memmem::find(text.as_bytes(), bytes),
    }
}

/// Removes `<!-- ... -->` comments (an unterminated one runs to the end).
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find(rest, "<!--") {
        out.push_str(&rest[..start]);
        match find(&rest[start + 4..], "-->") {
            Some(end) => rest = &rest[start + 4 + end + 3..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// Finds the end of a bracketed construct starting at `start` (which points
/// at `open`), honouring nesting; returns the byte index just past the
/// matching `close`, or `text.len()` when unbalanced.
pub(crate) fn matching(text: &str, start: usize, open: &str, close: &str) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while let Some(at) = next_marker(text, i, open, close) {
        i = at;
        if text[i..].starts_with(open) {
            depth += 1;
            i += open.len();
        } else if text[i..].starts_with(close) {
            depth -= 1;
            i += close.len();
            if depth == 0 {
                return i;
            }
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    text.len()
}

/// The first position at or after `from` where `open` or `close` may start:
/// where either one's first byte is. A scan for the two markers may jump
/// there, since no position before it starts either; it is a character
/// boundary, as the first byte of a string is never a UTF-8 continuation
/// byte. One `memchr2` instead of two comparisons at every character.
pub(crate) fn next_marker(text: &str, from: usize, open: &str, close: &str) -> Option<usize> {
    let (&o, &c) = (open.as_bytes().first()?, close.as_bytes().first()?);
    let rest = text.as_bytes().get(from..)?;
    memchr::memchr2(o, c, rest).map(|p| from + p)
}

/// Every `open ... close` pair of one kind in a text, matched in one pass
/// with a stack, so that finding the end of each of many (nested)
/// constructs costs a lookup instead of a scan. Tokenises exactly as
/// [`matching`] does; an open without a close ends at the end of the text.
pub(crate) struct Pairs {
    /// `(start of open, just past its close)`, sorted by start.
    ends: Vec<(usize, usize)>,
    open: &'static str,
    close: &'static str,
}

impl Pairs {
    /// Index `text`. `open` and `close` are two ASCII bytes each.
    pub(crate) fn new(text: &str, open: &'static str, close: &'static str) -> Self {
        let bytes = text.as_bytes();
        let (o, c) = (open.as_bytes(), close.as_bytes());
        let mut ends = Vec::new();
        let mut stack = Vec::new();
        let mut i = 0;
        while let Some(at) = next_marker(text, i, open, close) {
            i = at;
            if bytes[i..].starts_with(o) {
                stack.push(i);
                i += o.len();
            } else if bytes[i..].starts_with(c) {
                if let Some(start) = stack.pop() {
                    ends.push((start, i + c.len()));
                }
                i += c.len();
            } else {
                // Both markers are ASCII, so stepping bytes finds the same
                // tokens as stepping characters.
                i += 1;
            }
        }
        ends.extend(stack.into_iter().map(|start| (start, text.len())));
        ends.sort_unstable();
        Pairs { ends, open, close }
    }

    /// What [`matching`]`(text, start, open, close)` returns, for the text
    /// this index was built on.
    pub(crate) fn end(&self, text: &str, start: usize) -> usize {
        match self.ends.binary_search_by_key(&start, |&(s, _)| s) {
            Ok(k) => self.ends[k].1,
            // Not a token start of the one-pass scan (cannot happen for the
            // positions the transforms ask about; kept correct anyway).
            Err(_) => matching(text, start, self.open, self.close),
        }
    }
}

/// The first position at or after `from` where `needle` occurs, remembered
/// so that a left-to-right caller asking again and again scans the text
/// once in total.
pub(crate) struct NextMatch {
    needle: &'static str,
    /// The position last asked about and the answer then (`None`: nothing
    /// at or after it); `None` before the first question.
    last: Option<(usize, Option<usize>)>,
}

impl NextMatch {
    pub(crate) fn new(needle: &'static str) -> Self {
        NextMatch { needle, last: None }
    }

    /// The first occurrence in `text` at or after `from`. Asked with
    /// non-decreasing positions (as the transforms do), all questions
    /// together scan the text once; a smaller position is answered by a
    /// fresh scan.
    pub(crate) fn at_or_after(&mut self, text: &str, from: usize) -> Option<usize> {
        match self.last {
            Some((asked, Some(p))) if asked <= from && p >= from => return Some(p),
            Some((asked, None)) if asked <= from => return None,
            _ => {}
        }
        let found = text
            .get(from..)
            .and_then(|rest| find(rest, self.needle))
            .map(|p| from + p);
        self.last = Some((from, found));
        found
    }
}

/// Splits at top-level `|` (outside nested `{{ }}` and `[[ ]]`).
pub(crate) fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut braces, mut brackets, mut last, mut i) = (0i32, 0i32, 0usize, 0usize);
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let two = &bytes[i..(i + 2).min(bytes.len())];
        if two == b"{{" {
            braces += 1;
            i += 2;
        } else if two == b"}}" {
            braces -= 1;
            i += 2;
        } else if two == b"[[" {
            brackets += 1;
            i += 2;
        } else if two == b"]]" {
            brackets -= 1;
            i += 2;
        } else {
            if bytes[i] == b'|' && braces <= 0 && brackets <= 0 {
                parts.push(&text[last..i]);
                last = i + 1;
            }
            i += 1;
        }
    }
    parts.push(&text[last..]);
    parts
}

/// The categories of a page in order of appearance, each as
/// `{local category namespace}:{Name}` without the sort key, deduplicated.
/// `[[:Category:X]]` is a link to a category, not a membership, and is skipped.
pub fn categories(text: &str, loc: &Localisation) -> Vec<String> {
    let text = strip_comments(capped(text));
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let (mut closes, mut pipes, mut colons) = (
        NextMatch::new("]]"),
        NextMatch::new("|"),
        NextMatch::new(":"),
    );
    let mut pos = 0;
    while let Some(start) = find(&text[pos..], "[[") {
        let inner_start = pos + start + 2;
        // The first `]]` after the opening ends the link (as before; the
        // lookup is shared by all the `[[` before that `]]`).
        let Some(end) = closes.at_or_after(&text, inner_start) else {
            break;
        };
        pos = inner_start;
        let target_end = pipes
            .at_or_after(&text, inner_start)
            .map_or(end, |p| p.min(end));
        if target_end - inner_start > MAX_TARGET_BYTES {
            continue;
        }
        let target = &text[inner_start..target_end];
        let Some(colon) = colons
            .at_or_after(&text, inner_start)
            .filter(|&c| c < target_end)
        else {
            continue;
        };
        let (prefix, name) = (&text[inner_start..colon], &text[colon + 1..target_end]);
        if !loc.is_category(prefix) || target.trim_start().starts_with(':') {
            continue;
        }
        let Some(name) = loc.page(name) else {
            continue;
        };
        let full = format!("{}:{name}", loc.category);
        if seen.insert(full.clone()) {
            out.push(full);
        }
    }
    out
}

/// Parser functions and magic words that look like templates but are not.
const MAGIC_PREFIXES: &[&str] = &[
    "lc",
    "uc",
    "lcfirst",
    "ucfirst",
    "urlencode",
    "anchorencode",
    "fullurl",
    "localurl",
    "canonicalurl",
    "formatnum",
    "padleft",
    "padright",
    "ns",
    "nse",
    "int",
    "plural",
    "grammar",
    "gender",
    "filepath",
    "msgnw",
    "raw",
    "defaultsort",
    "defaultsortkey",
    "defaultcategorysort",
    "displaytitle",
    "tag",
    "special",
    "pagesincategory",
    "pagesize",
    "protectionlevel",
    "localtime",
    "formatdate",
];

/// Resolves the name part of a `{{...}}` to a page name, or `None` for
/// parser functions, magic words and template parameters.
fn template_page(raw: &str, loc: &Localisation) -> Option<String> {
    let mut name = raw.trim();
    for prefix in ["subst:", "safesubst:", "msg:"] {
        if name
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        {
            name = name[prefix.len()..].trim();
        }
    }
    if name.is_empty() || name.starts_with('#') || name.starts_with('{') || name.contains('{') {
        return None;
    }
    if let Some((prefix, rest)) = name.split_once(':') {
        let lower = prefix.trim().to_lowercase();
        if MAGIC_PREFIXES.contains(&lower.as_str()) {
            return None;
        }
        if loc.is_template(prefix) {
            return loc.page(rest).map(|p| format!("{}:{p}", loc.template));
        }
        if prefix.trim().is_empty() {
            // `{{:Main page}}` transcludes an article.
            return loc.page(rest);
        }
        // A transclusion from another namespace (`{{Wikipedia:Foo}}`) keeps its prefix.
        return title::normalize(name, loc.first_letter_upper).ok();
    }
    // All-caps names are magic variables (`PAGENAME`, `CURRENTYEAR`, `!`).
    if name
        .chars()
        .all(|c| c.is_ascii_uppercase() || c == ' ' || !c.is_alphanumeric())
    {
        return None;
    }
    loc.page(name).map(|p| format!("{}:{p}", loc.template))
}

/// The templates a page transcludes directly, top-level and nested, in order
/// of appearance, each as `{local template namespace}:{Name}`, deduplicated.
/// (The Action API's `prop=templates` also lists templates transcluded by
/// templates; wikitext alone cannot know those.)
pub fn templates(text: &str, loc: &Localisation) -> Vec<String> {
    let text = strip_comments(capped(text));
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut i = 0;
    while let Some(pos) = find(&text[i..], "{{") {
        let start = i + pos;
        let brace_run = text[start..].bytes().take_while(|&b| b == b'{').count();
        if brace_run != 2 {
            // A template parameter `{{{1}}}` (or braces we cannot attribute).
            i = start + brace_run;
            continue;
        }
        let name_start = start + 2;
        let name_end = text.as_bytes()[name_start..]
            .iter()
            .position(|b| matches!(b, b'|' | b'}' | b'{' | b'\n'))
            .map_or(text.len(), |e| name_start + e);
        // The name scan stops at the next `{`, so it never passes the next
        // template: all of them together read the text once.
        if name_end - name_start <= MAX_TARGET_BYTES
            && let Some(page) = template_page(&text[name_start..name_end], loc)
            && seen.insert(page.clone())
        {
            out.push(page);
        }
        i = start + 2;
    }
    out
}

/// A redirect's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTarget {
    /// The target page title with spaces (not case-normalised).
    pub title: String,
    /// The section anchor after `#`, if any.
    pub fragment: Option<String>,
}

/// The target of a `#REDIRECT [[Target#Section]]` page (the keyword is
/// case-insensitive; `extra_keywords` adds localised ones like `#WEITERLEITUNG`).
pub fn redirect_target(text: &str, extra_keywords: &[&str]) -> Option<RedirectTarget> {
    let text = text.trim_start();
    let keyword_len = std::iter::once("#redirect")
        .chain(extra_keywords.iter().copied())
        .find(|k| {
            text.len() >= k.len()
                && text.is_char_boundary(k.len())
                && text[..k.len()].eq_ignore_ascii_case(k)
        })?
        .len();
    let rest = text[keyword_len..].trim_start();
    let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
    let inner = rest.strip_prefix("[[")?;
    let inner = &inner[..inner.find("]]")?];
    let target = inner.split('|').next().unwrap_or_default();
    let (page, fragment) = match target.split_once('#') {
        Some((p, f)) => (p, Some(f.trim().to_string()).filter(|f| !f.is_empty())),
        None => (target, None),
    };
    let page = page.trim().trim_start_matches(':').replace('_', " ");
    (!page.is_empty()).then(|| RedirectTarget {
        title: page.trim().to_string(),
        fragment,
    })
}

#[cfg(test)]
mod tests;
