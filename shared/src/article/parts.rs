//! The parts of structured contents that plain text drops: the links and
//! images of a paragraph, the page's references and its tables.
//!
//! - Links: `[[Target|text]]` and `[[Target]]` (not files, categories or
//!   interlanguage links) become `{url: "{site}/wiki/Target", text}`;
//!   `[http://x text]` becomes `{url: "http://x", text}`.
//! - Images: `[[File:X.jpg|...|caption]]` becomes `{content_url:
//!   "{site}/wiki/Special:FilePath/X.jpg", caption}` (the wiki redirects
//!   that URL to the file, local or on Commons; the hashed upload path
//!   needs the file's metadata, which wikitext does not carry).
//! - References: every `<ref>...</ref>` with content, in page order
//!   (`<ref name=x/>` reuses are not new references). `identifier` is the
//!   `name` attribute, else `cite_note-{n}` with `n` counting from 1;
//!   `group` the `group` attribute; `type` the kind of a `{{cite kind|...}}`
//!   template inside (`web`, `book`, `journal`, ...), else `text`;
//!   `metadata` the cite template's named parameters as plain text;
//!   `text.value` the reference's plain text (the cite template's `title`
//!   when that is empty) with `text.links` its links.
//! - Tables: each top-level `{| ... |}` becomes `{identifier: "table_{n}",
//!   headers, rows}`: rows split at `|-`, cells at `!!`/`||` (and at line
//!   starts), a row of `!` cells only is a header row, every cell
//!   `{value}` in plain text (cell attributes before a single `|` dropped,
//!   nested tables dropped). Captions (`|+`) are not cells.
//!
//! Every scan is linear in the text and its output is bounded
//! ([`MAX_ITEMS`] of each kind), so hostile pages cost what long pages do.

use std::collections::BTreeMap;

use super::plaintext::plain_text;
use super::schema::Image;
use super::structured::{PartLink, Reference, ReferenceText, Table, TableCell};
use super::wikitext::{
    Localisation, capped, matching, next_marker, split_top_level, strip_comments,
};

/// The most links, images, references or tables one call returns.
pub const MAX_ITEMS: usize = 2_000;

/// Where the page's wiki lives: `https://en.wikipedia.org` from the
/// article URL `https://en.wikipedia.org/wiki/Pear` (empty when unknown).
pub fn site_of(article_url: &str) -> &str {
    article_url.find("/wiki/").map_or("", |i| &article_url[..i])
}

/// `Target name` as a `/wiki/` URL path segment, first letter uppercased
/// where the project does that to titles.
fn wiki_path(target: &str, loc: &Localisation) -> String {
    let target = target.trim().replace(' ', "_");
    let mut chars = target.chars();
    match chars.next() {
        Some(first) if loc.first_letter_upper => first.to_uppercase().chain(chars).collect(),
        _ => target,
    }
}

/// The inner texts of the `[[...]]` spans, each when it closes (so a link
/// inside an image caption comes before the image); one pass with a stack.
fn bracket_spans(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut open: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < MAX_ITEMS {
        let Some(at) = next_marker(text, i, "[[", "]]") else {
            break;
        };
        i = at;
        match bytes.get(i..i + 2) {
            Some(b"[[") => {
                open.push(i + 2);
                i += 2;
            }
            Some(b"]]") => {
                if let Some(start) = open.pop() {
                    out.push(&text[start..i]);
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    out
}

/// The namespace prefix of a link target, if it has one.
fn prefix(target: &str) -> Option<&str> {
    target
        .split_once(':')
        .filter(|_| !target.starts_with(':'))
        .map(|(p, _)| p.trim())
}

fn is_language(prefix: &str) -> bool {
    prefix.len() <= 12
        && !prefix.is_empty()
        && prefix.chars().all(|c| c.is_ascii_lowercase() || c == '-')
}

/// The links of a piece of wikitext.
pub fn links(wikitext: &str, site: &str, loc: &Localisation) -> Vec<PartLink> {
    let mut out = Vec::new();
    for inner in bracket_spans(wikitext) {
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        if target.trim().is_empty() || target.contains(['[', ']', '{', '}', '<', '>']) {
            continue;
        }
        if let Some(p) = prefix(target)
            && (loc.is_file(p) || loc.is_category(p) || is_language(p))
        {
            continue;
        }
        let target = target.trim().trim_start_matches(':');
        let text = match label.map(|l| plain_text(l, loc)) {
            Some(l) if !l.is_empty() => l,
            _ => target.split('#').next().unwrap_or_default().to_string(),
        };
        out.push(PartLink {
            url: Some(format!("{site}/wiki/{}", wiki_path(target, loc))),
            text: Some(text),
            images: Some(Vec::new()),
        });
    }
    out.extend(external_links(wikitext, loc));
    out.truncate(MAX_ITEMS);
    out
}

/// `[http://x label]` links.
fn external_links(wikitext: &str, loc: &Localisation) -> Vec<PartLink> {
    let mut out = Vec::new();
    let mut from = 0;
    while out.len() < MAX_ITEMS {
        let Some(open) = wikitext[from..].find('[').map(|i| from + i) else {
            break;
        };
        let rest = &wikitext[open + 1..];
        let lower: String = rest
            .chars()
            .take(8)
            .collect::<String>()
            .to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            from = open + 1;
            continue;
        }
        let Some(close) = rest.find(']') else { break };
        let inner = &rest[..close];
        let (url, label) = inner.split_once(' ').unwrap_or((inner, ""));
        if !url.contains(['[', '<', '{', '\n']) {
            // A bare `[http://x]` shows no label; its URL stands in.
            let label = plain_text(label, loc);
            out.push(PartLink {
                url: Some(url.to_string()),
                text: Some(if label.is_empty() {
                    url.to_string()
                } else {
                    label
                }),
                images: Some(Vec::new()),
            });
        }
        from = open + 1 + close + 1;
    }
    out
}

/// The images (`[[File:...]]`) of a piece of wikitext.
pub fn images(wikitext: &str, site: &str, loc: &Localisation) -> Vec<Image> {
    let mut out = Vec::new();
    for inner in bracket_spans(wikitext) {
        let mut params = inner.split('|');
        let target = params.next().unwrap_or_default();
        let Some((p, name)) = target.split_once(':') else {
            continue;
        };
        if !loc.is_file(p.trim()) || name.trim().is_empty() || name.contains(['{', '}']) {
            continue;
        }
        // The caption is the last parameter that is not an option.
        let caption = params
            .rfind(|o| !is_image_option(o))
            .map(|c| plain_text(c, loc))
            .filter(|c| !c.is_empty());
        out.push(Image {
            content_url: Some(format!(
                "{site}/wiki/Special:FilePath/{}",
                wiki_path(name, loc)
            )),
            caption,
            ..Image::default()
        });
    }
    out
}

/// Whether an image parameter is a layout option rather than a caption.
fn is_image_option(param: &str) -> bool {
    let p = param.trim().to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "thumb",
        "thumbnail",
        "frame",
        "framed",
        "frameless",
        "border",
        "left",
        "right",
        "center",
        "centre",
        "none",
        "upright",
        "baseline",
        "middle",
        "sub",
        "super",
        "top",
        "text-top",
        "bottom",
        "text-bottom",
    ];
    WORDS.contains(&p.as_str())
        || p.ends_with("px")
            && p[..p.len() - 2]
                .chars()
                .all(|c| c.is_ascii_digit() || c == 'x')
        || ["upright=", "alt=", "link=", "page=", "class=", "lang="]
            .iter()
            .any(|k| p.starts_with(k))
}

/// An attribute of a tag's attribute text: `name="x"`, `name='x'`, `name=x`.
fn attribute(attrs: &str, name: &str) -> Option<String> {
    let lower = attrs.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name).map(|i| from + i) {
        let before_ok = i == 0 || !lower.as_bytes()[i - 1].is_ascii_alphanumeric();
        let after = attrs[i + name.len()..].trim_start();
        if before_ok && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let v = match value.chars().next() {
                Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or_default(),
                _ => value
                    .split(|c: char| c.is_whitespace() || c == '/')
                    .next()
                    .unwrap_or_default(),
            };
            let v = v.trim();
            return (!v.is_empty()).then(|| v.to_string());
        }
        from = i + name.len();
    }
    None
}

/// The first `{{cite kind|...}}` template of a reference: its kind and
/// named parameters as plain text.
fn cite_template(content: &str, loc: &Localisation) -> Option<(String, BTreeMap<String, String>)> {
    let start = content.find("{{")?;
    let end = matching(content, start, "{{", "}}");
    let inner = content[start + 2..end]
        .strip_suffix("}}")
        .unwrap_or(&content[start + 2..end]);
    let mut params = split_top_level(inner).into_iter();
    let name = params.next()?.trim().replace('_', " ").to_lowercase();
    let kind = name.strip_prefix("cite ")?.trim().to_string();
    let metadata = params
        .filter_map(|p| p.split_once('='))
        .filter_map(|(k, v)| {
            let v = plain_text(v, loc);
            (!v.is_empty()).then(|| (k.trim().to_string(), v))
        })
        .collect();
    Some((kind, metadata))
}

/// The references of a page, in order.
pub fn references(wikitext: &str, site: &str, loc: &Localisation) -> Vec<Reference> {
    let text = strip_comments(capped(wikitext));
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while out.len() < MAX_ITEMS {
        let Some(open) = lower[from..].find("<ref").map(|i| from + i) else {
            break;
        };
        let after = open + 4;
        // `<references>` and the like are not references.
        if !lower[after..].starts_with(['>', ' ', '\t', '\n', '/']) {
            from = after;
            continue;
        }
        let Some(tag_end) = lower[after..].find('>').map(|i| after + i) else {
            break;
        };
        let attrs = &text[after..tag_end];
        if attrs.trim_end().ends_with('/') {
            from = tag_end + 1;
            continue;
        }
        let Some(close) = lower[tag_end + 1..].find("</ref").map(|i| tag_end + 1 + i) else {
            break;
        };
        let content = &text[tag_end + 1..close];
        from = close + 5;
        let cite = cite_template(content, loc);
        let mut value = plain_text(content, loc);
        if value.is_empty()
            && let Some((_, meta)) = &cite
        {
            value = meta.get("title").cloned().unwrap_or_default();
        }
        let mut links = links(content, site, loc);
        if let Some(url) = cite.as_ref().and_then(|(_, m)| m.get("url")) {
            links.insert(
                0,
                PartLink {
                    url: Some(url.clone()),
                    text: Some(
                        cite.as_ref()
                            .and_then(|(_, m)| m.get("title").cloned())
                            .unwrap_or_else(|| url.clone()),
                    ),
                    images: Some(Vec::new()),
                },
            );
        }
        if value.is_empty() && links.is_empty() {
            continue;
        }
        let n = out.len() + 1;
        let (kind, metadata) = cite.unwrap_or_else(|| ("text".into(), BTreeMap::new()));
        out.push(Reference {
            identifier: Some(attribute(attrs, "name").unwrap_or_else(|| format!("cite_note-{n}"))),
            group: attribute(attrs, "group"),
            kind: Some(kind),
            metadata,
            text: Some(ReferenceText {
                value: Some(value),
                links,
            }),
        });
    }
    out
}

/// The top-level tables of a page.
pub fn tables(wikitext: &str, loc: &Localisation) -> Vec<Table> {
    let text = strip_comments(capped(wikitext));
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < MAX_ITEMS {
        let Some(pos) = text[i..].find("{|").map(|p| i + p) else {
            break;
        };
        let at_line_start = text[..pos].trim_end_matches([' ', '\t']).ends_with('\n') || {
            text[..pos].trim().is_empty()
        };
        let end = matching(&text, pos, "{|", "|}");
        if at_line_start {
            let body = text[pos + 2..end]
                .strip_suffix("|}")
                .unwrap_or(&text[pos + 2..end]);
            let table = table(body, out.len() + 1, loc);
            if !table.headers.is_empty() || !table.rows.is_empty() {
                out.push(table);
            }
        }
        i = end.max(pos + 2);
    }
    out
}

/// One table's rows (the text between `{|` and `|}`).
fn table(body: &str, n: usize, loc: &Localisation) -> Table {
    let mut headers: Vec<Vec<TableCell>> = Vec::new();
    let mut rows: Vec<Vec<TableCell>> = Vec::new();
    let mut row: Vec<(bool, String)> = Vec::new();
    let mut flush = |row: &mut Vec<(bool, String)>| {
        if row.is_empty() {
            return;
        }
        let all_header = row.iter().all(|(h, _)| *h);
        let cells = row
            .drain(..)
            .map(|(_, v)| TableCell {
                value: Some(plain_text(&v, loc)),
            })
            .collect();
        if all_header && rows.is_empty() {
            headers.push(cells);
        } else {
            rows.push(cells);
        }
    };
    let mut lines = body.lines();
    // The first line holds the table's attributes.
    lines.next();
    let mut depth = 0usize;
    for line in lines {
        let t = line.trim_start();
        if t.starts_with("{|") {
            depth += 1;
            continue;
        }
        if depth > 0 {
            if t.starts_with("|}") {
                depth -= 1;
            }
            continue;
        }
        if t.starts_with("|-") {
            flush(&mut row);
        } else if t.starts_with("|+") {
            continue;
        } else if let Some(rest) = t.strip_prefix('!') {
            row.extend(rest.split("!!").map(|c| (true, cell_value(c))));
        } else if let Some(rest) = t.strip_prefix('|') {
            row.extend(rest.split("||").map(|c| (false, cell_value(c))));
        } else if let Some((_, last)) = row.last_mut() {
            // A cell's text continues on the next line.
            last.push('\n');
            last.push_str(line);
        }
    }
    flush(&mut row);
    Table {
        identifier: Some(format!("table_{n}")),
        headers,
        rows,
    }
}

/// A cell's content without its attributes (`style="x" | value`): the text
/// after the first single `|` outside links and templates, when the part
/// before it looks like attributes.
fn cell_value(cell: &str) -> String {
    let parts = split_top_level(cell);
    if parts.len() > 1 && parts[0].contains('=') && !parts[0].contains("[[") {
        cell[parts[0].len() + 1..].to_string()
    } else {
        cell.to_string()
    }
}

#[cfg(test)]
mod tests;
