//! Wikitext to plain text, for abstracts and structured-content paragraphs.
//!
//! Removes what a reader does not see as prose (templates, tables, refs,
//! comments, file links, category links, HTML tags, bold/italic quotes) and
//! keeps link labels (`[[a|b]]` -> `b`, `[[a]]` -> `a`, `[http://x label]`
//! -> `label`). The output is one line with whitespace collapsed.

use super::wikitext::{Localisation, NextMatch, Pairs, capped, matching, strip_comments};

/// Links nested deeper than this inside link labels (`[[a|[[b|...]]]]`)
/// contribute no text: real pages nest a handful of levels at most.
pub const MAX_LINK_DEPTH: usize = 32;

/// Tags whose content is not prose and is removed with them.
const DROPPED_ELEMENTS: &[&str] = &[
    "ref",
    "gallery",
    "math",
    "score",
    "timeline",
    "syntaxhighlight",
    "imagemap",
];

/// The plain text of the lead section: everything before the first heading.
pub fn abstract_text(wikitext: &str, loc: &Localisation) -> String {
    plain_text(lead_section(wikitext), loc)
}

/// The part of the wikitext before the first `==` heading line.
pub fn lead_section(wikitext: &str) -> &str {
    let mut offset = 0;
    for line in wikitext.split_inclusive('\n') {
        if is_heading(line).is_some() {
            return &wikitext[..offset];
        }
        offset += line.len();
    }
    wikitext
}

/// If `line` is a heading (`== Name ==`), its level and name.
pub fn is_heading(line: &str) -> Option<(usize, &str)> {
    let line = line.trim_end();
    let level = line.bytes().take_while(|&b| b == b'=').count();
    let closing = line.bytes().rev().take_while(|&b| b == b'=').count();
    if level < 2 || closing < 2 || line.len() <= level + closing {
        return None;
    }
    let level = level.min(closing).min(6);
    Some((level, line[level..line.len() - level].trim()))
}

/// Converts a wikitext fragment to one line of plain text.
pub fn plain_text(wikitext: &str, loc: &Localisation) -> String {
    let text = strip_comments(capped(wikitext));
    let text = drop_elements(&text);
    let text = strip_markup(&text, loc);
    let text = strip_tags(&text);
    let text = decode_entities(&text);
    collapse(&text)
}

/// Removes `<ref>...</ref>`, `<ref/>` and the other non-prose elements.
fn drop_elements(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lower = text.to_ascii_lowercase();
    let mut i = 0;
    'scan: while let Some(pos) = lower[i..].find('<') {
        let start = i + pos;
        for name in DROPPED_ELEMENTS {
            let after = start + 1 + name.len();
            if lower[start + 1..].starts_with(name)
                && lower[after..].starts_with(|c: char| c == '>' || c == '/' || c.is_whitespace())
            {
                out.push_str(&text[i..start]);
                let Some(tag_end) = lower[start..].find('>').map(|e| start + e) else {
                    return out;
                };
                if lower[..tag_end].ends_with('/') {
                    i = tag_end + 1;
                    continue 'scan;
                }
                let close = format!("</{name}");
                i = match lower[tag_end..].find(&close) {
                    Some(c) => lower[tag_end + c..]
                        .find('>')
                        .map_or(text.len(), |e| tag_end + c + e + 1),
                    None => text.len(),
                };
                continue 'scan;
            }
        }
        out.push_str(&text[i..start + 1]);
        i = start + 1;
    }
    out.push_str(&text[i..]);
    out
}

/// Removes templates and tables, resolves links, drops quote markup.
///
/// One left-to-right pass. A link label is read in place (its range pushed
/// on an explicit stack, at most [`MAX_LINK_DEPTH`] deep) rather than by
/// recursion, and the ends of links come from a [`Pairs`] index, so nested
/// links cost no rescans and no call stack.
fn strip_markup(text: &str, loc: &Localisation) -> String {
    let links = Pairs::new(text, "[[", "]]");
    let mut next_bracket = NextMatch::new("]");
    let mut out = String::with_capacity(text.len());
    // The range being read (the whole text, or a link label) and, for each
    // enclosing range, where to resume and its bounds.
    let (mut from, mut to) = (0usize, text.len());
    let mut outer: Vec<(usize, usize, usize)> = Vec::new();
    let mut i = 0;
    loop {
        if i >= to {
            match outer.pop() {
                Some((resume, f, t)) => {
                    (i, from, to) = (resume, f, t);
                    continue;
                }
                None => break,
            }
        }
        let range = &text[..to];
        let rest = &text[i..to];
        if rest.starts_with("{{") {
            i = matching(range, i, "{{", "}}");
        } else if rest.starts_with("{|") && (i == from || text[..i].ends_with('\n')) {
            i = matching(range, i, "{|", "|}");
        } else if rest.starts_with("[[") {
            let end = links.end(text, i).min(to);
            let inner = text[i + 2..end]
                .strip_suffix("]]")
                .unwrap_or(&text[i + 2..end]);
            match link_text(inner, loc) {
                LinkText::Nothing => {}
                LinkText::Target(t) => out.push_str(t),
                LinkText::Label(label) => {
                    if outer.len() < MAX_LINK_DEPTH {
                        let start = i + 2 + (inner.len() - label.len());
                        outer.push((end, from, to));
                        (i, from, to) = (start, start, start + label.len());
                        continue;
                    }
                }
            }
            i = end;
        } else if rest.starts_with('[') && is_external(&rest[1..]) {
            let end = next_bracket
                .at_or_after(text, i)
                .filter(|&e| e < to)
                .map_or(to, |e| e + 1);
            let inner = text[i + 1..end].trim_end_matches(']');
            if let Some((_, label)) = inner.split_once(' ') {
                out.push_str(label);
            }
            i = end;
        } else if rest.starts_with("''") {
            let run = rest.bytes().take_while(|&b| b == b'\'').count();
            if run == 4 {
                out.push('\'');
            }
            i += run;
        } else if rest.starts_with("__")
            && rest[2..]
                .find("__")
                .is_some_and(|e| rest[2..2 + e].chars().all(|c| c.is_ascii_uppercase()) && e > 0)
        {
            // Behaviour switches such as `__NOTOC__`.
            i += 2 + rest[2..].find("__").unwrap_or(0) + 2;
        } else {
            // Only `{`, `[`, `'` and `_` start markup: the text up to the
            // next of them is prose, copied at once.
            let first = rest.chars().next().map_or(1, char::len_utf8);
            let run = rest.as_bytes()[first..]
                .iter()
                .position(|b| matches!(b, b'{' | b'[' | b'\'' | b'_'))
                .map_or(rest.len(), |p| first + p);
            out.push_str(&rest[..run]);
            i += run;
        }
    }
    out
}

/// What an internal link shows.
enum LinkText<'a> {
    /// Nothing (file, category and interlanguage links).
    Nothing,
    /// Its target, as is.
    Target(&'a str),
    /// Its label, which is wikitext itself.
    Label(&'a str),
}

/// The visible part of an internal link's inner text (`target|label`).
fn link_text<'a>(inner: &'a str, loc: &Localisation) -> LinkText<'a> {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) => (t, Some(l)),
        None => (inner, None),
    };
    // No title contains brackets or braces: this is markup debris (say,
    // `[[[[x]]` or an unclosed link swallowing the page), not a link.
    if target.contains(['[', ']', '{', '}']) {
        return LinkText::Nothing;
    }
    if let Some((prefix, _)) = target.split_once(':').filter(|_| !target.starts_with(':')) {
        let is_language = prefix.len() <= 12
            && !prefix.is_empty()
            && prefix.chars().all(|c| c.is_ascii_lowercase() || c == '-');
        if loc.is_file(prefix) || loc.is_category(prefix) || is_language {
            return LinkText::Nothing;
        }
    }
    match label {
        Some(label) if label.chars().any(|c| !c.is_whitespace()) => LinkText::Label(label),
        _ => LinkText::Target(
            target
                .trim_start_matches(':')
                .split('#')
                .next()
                .unwrap_or_default(),
        ),
    }
}

/// Whether the text after `[` starts an external link.
fn is_external(rest: &str) -> bool {
    let lower: String = rest
        .chars()
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("//")
}

/// Removes HTML-like tags (`<br />`, `<span ...>`, `</small>`), keeping text.
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut closes = NextMatch::new(">");
    let mut i = 0;
    while let Some(pos) = text[i..].find('<') {
        let start = i + pos;
        out.push_str(&text[i..start]);
        let next = text[start + 1..].chars().next();
        let is_tag = next.is_some_and(|c| c.is_ascii_alphabetic() || c == '/');
        match is_tag.then(|| closes.at_or_after(text, start)).flatten() {
            Some(end) => {
                if text[start + 1..].starts_with("br") {
                    out.push(' ');
                }
                i = end + 1;
            }
            _ => {
                out.push('<');
                i = start + 1;
            }
        }
    }
    out.push_str(&text[i..]);
    out
}

/// The HTML entities common in wikitext prose that [`decode_entities`]
/// decodes.
const ENTITIES: [(&str, &str); 9] = [
    ("&nbsp;", " "),
    ("&ndash;", "\u{2013}"),
    ("&mdash;", "\u{2014}"),
    ("&minus;", "\u{2212}"),
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&quot;", "\""),
    ("&#39;", "'"),
    ("&amp;", "&"),
];

/// Decodes the handful of HTML entities in [`ENTITIES`], in one pass: each
/// begins with its only `&` and ends with its only `;`, so no two
/// occurrences overlap and no decoded text forms a new one (`&amp;lt;` is
/// `&lt;`, not `<`).
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'&', &text.as_bytes()[i..]) {
        let at = i + p;
        out.push_str(&text[i..at]);
        match ENTITIES
            .iter()
            .find(|(from, _)| text[at..].starts_with(from))
        {
            Some((from, to)) => {
                out.push_str(to);
                i = at + from.len();
            }
            None => {
                out.push('&');
                i = at + 1;
            }
        }
    }
    out.push_str(&text[i..]);
    out
}

/// Collapses whitespace runs to one space, trims, and tidies the gaps that
/// removed markup leaves before punctuation (`word ,` -> `word,`).
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        let glue = word.starts_with([',', '.', ';', ':', ')']) && !out.is_empty();
        if !out.is_empty() && !glue && !out.ends_with('(') {
            out.push(' ');
        }
        out.push_str(word);
    }
    let out = replace_all(&out, "()", "");
    let out = replace_all(&out, "( )", "");
    replace_all(&out, "  ", " ")
}

/// `text.replace(from, to)`, found with `memmem` (`str::replace`'s searcher
/// took a tenth of a snapshot build's structured contents here).
fn replace_all(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for at in memchr::memmem::find_iter(text.as_bytes(), from.as_bytes()) {
        out.push_str(&text[last..at]);
        out.push_str(to);
        last = at + from.len();
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(wikitext: &str, expect: &str) {
        assert_eq!(
            plain_text(wikitext, &Localisation::default()),
            expect,
            "{wikitext:?}"
        );
    }

    #[test]
    fn strips_markup_to_prose() {
        check("'''Bold''' and ''italic'' text", "Bold and italic text");
        check(
            "A [[family (biology)|family]] of [[rodent]]s.",
            "A family of rodents.",
        );
        check(
            "See [http://example.org the site] or [http://example.org].",
            "See the site or.",
        );
        check(
            "Fact.<ref name=\"a\">{{cite web|url=x}}</ref> Next<ref name=b/>.",
            "Fact. Next.",
        );
        check("x {{convert|1|km}} y {{a|{{b}}}} z", "x y z");
        check("{|\n| cell\n|}\nAfter", "After");
        check(
            "[[File:Pear.jpg|thumb|A [[pear]]]]Pears [[Category:Fruit]][[de:Birne]]",
            "Pears",
        );
        check(
            "a<!-- hidden -->b<br />c&nbsp;d <span class=\"x\">e</span>",
            "ab c d e",
        );
        check("__NOTOC__Text", "Text");
        check("Unbalanced {{template", "Unbalanced");
        check("x < y", "x < y");
    }

    #[test]
    fn replace_all_replaces_as_str_replace_does() {
        for text in [
            "",
            "()",
            "(())",
            "( ) () (  )",
            "a  b   c",
            "((  ))",
            "é()ü",
            "()()",
        ] {
            for (from, to) in [("()", ""), ("( )", ""), ("  ", " "), ("é", "e")] {
                assert_eq!(
                    replace_all(text, from, to),
                    text.replace(from, to),
                    "{text:?} {from:?}"
                );
            }
        }
    }

    #[test]
    fn finds_the_lead_section() {
        let text = "Lead [[a|b]].\n\n== History ==\nLater.";
        assert_eq!(lead_section(text), "Lead [[a|b]].\n\n");
        assert_eq!(abstract_text(text, &Localisation::default()), "Lead b.");
        assert_eq!(is_heading("=== Sub ===\n"), Some((3, "Sub")));
        assert_eq!(is_heading("== =="), Some((2, "")));
        assert_eq!(is_heading("a == b =="), None);
        assert_eq!(is_heading("===="), None);
    }

    /// The recursive, rescanning implementation this module had before it
    /// was made linear, kept to prove the rewrite reads real pages the same.
    mod before {
        use super::super::*;

        pub fn plain_text(wikitext: &str, loc: &Localisation) -> String {
            let text = strip_comments(wikitext);
            let text = drop_elements(&text);
            let text = strip_markup(&text, loc);
            let text = strip_tags(&text);
            let text = decode_entities(&text);
            collapse(&text)
        }

        /// One `replace` per entity, in this order.
        fn decode_entities(text: &str) -> String {
            [
                ("&nbsp;", " "),
                ("&ndash;", "\u{2013}"),
                ("&mdash;", "\u{2014}"),
                ("&minus;", "\u{2212}"),
                ("&lt;", "<"),
                ("&gt;", ">"),
                ("&quot;", "\""),
                ("&#39;", "'"),
                ("&amp;", "&"),
            ]
            .iter()
            .fold(text.to_string(), |acc, (from, to)| acc.replace(from, to))
        }

        fn strip_markup(text: &str, loc: &Localisation) -> String {
            let mut out = String::with_capacity(text.len());
            let mut i = 0;
            while i < text.len() {
                let rest = &text[i..];
                if rest.starts_with("{{") {
                    i = matching(text, i, "{{", "}}");
                } else if rest.starts_with("{|") && (i == 0 || text[..i].ends_with('\n')) {
                    i = matching(text, i, "{|", "|}");
                } else if rest.starts_with("[[") {
                    let end = matching(text, i, "[[", "]]");
                    let inner = text[i + 2..end]
                        .strip_suffix("]]")
                        .unwrap_or(&text[i + 2..end]);
                    out.push_str(&link_label(inner, loc));
                    i = end;
                } else if rest.starts_with('[') && is_external(&rest[1..]) {
                    let end = rest.find(']').map_or(text.len(), |e| i + e + 1);
                    let inner = text[i + 1..end].trim_end_matches(']');
                    if let Some((_, label)) = inner.split_once(' ') {
                        out.push_str(label);
                    }
                    i = end;
                } else if rest.starts_with("''") {
                    let run = rest.bytes().take_while(|&b| b == b'\'').count();
                    if run == 4 {
                        out.push('\'');
                    }
                    i += run;
                } else if rest.starts_with("__")
                    && rest[2..].find("__").is_some_and(|e| {
                        rest[2..2 + e].chars().all(|c| c.is_ascii_uppercase()) && e > 0
                    })
                {
                    i += 2 + rest[2..].find("__").unwrap_or(0) + 2;
                } else {
                    let c = rest.chars().next().unwrap_or(' ');
                    out.push(c);
                    i += c.len_utf8();
                }
            }
            out
        }

        fn link_label(inner: &str, loc: &Localisation) -> String {
            match link_text(inner, loc) {
                LinkText::Nothing => String::new(),
                LinkText::Target(t) => t.to_string(),
                LinkText::Label(l) => strip_markup(l, loc),
            }
        }

        fn strip_tags(text: &str) -> String {
            let mut out = String::with_capacity(text.len());
            let mut i = 0;
            while let Some(pos) = text[i..].find('<') {
                let start = i + pos;
                out.push_str(&text[i..start]);
                let next = text[start + 1..].chars().next();
                let is_tag = next.is_some_and(|c| c.is_ascii_alphabetic() || c == '/');
                match text[start..].find('>') {
                    Some(end) if is_tag => {
                        if text[start + 1..].starts_with("br") {
                            out.push(' ');
                        }
                        i = start + end + 1;
                    }
                    _ => {
                        out.push('<');
                        i = start + 1;
                    }
                }
            }
            out.push_str(&text[i..]);
            out
        }
    }

    #[test]
    fn the_linear_rewrite_reads_real_pages_as_before() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let loc = Localisation::default();
        let mut compared = 0;
        for dump in [
            "enwiki-sample-206-pages.xml.bz2",
            "enwiki-table-markup-5-pages.xml.bz2",
        ] {
            for page in crate::article::dump::tests::open(dump) {
                let page = page.expect("dump reads");
                let Some(text) = page.revision.and_then(|r| r.text) else {
                    continue;
                };
                assert_eq!(
                    plain_text(&text, &loc),
                    before::plain_text(&text, &loc),
                    "{}",
                    page.title
                );
                // And every paragraph-sized piece, cut anywhere.
                for (cut, _) in text.char_indices().step_by(1999) {
                    let Some(piece) = text.get(cut..text.len().min(cut + 3000)) else {
                        continue;
                    };
                    assert_eq!(
                        plain_text(piece, &loc),
                        before::plain_text(piece, &loc),
                        "{} at {cut}",
                        page.title
                    );
                }
                compared += 1;
            }
        }
        assert!(compared > 100, "{compared}");
        // Nesting within the depth limit reads the same, too.
        for text in [
            "[[a|b [[c|d [[e|f]] g]] h]] i",
            "[[a|{{x|[[b|c]]}} [http://e f] ''g'' __NOTOC__]]",
            "x[[[y]]] [[[[z]]]] [[a|]] [[ |b]] [[:fr:c|d]] [[File:x|[[y|z]]]]",
            "<b>[[a|<i>b</i>]]</b> <1<2<a>",
            "[[a|\n{|\n|t\n|}\nq]]",
            "a &amp;lt; b &lt;&gt;&amp;&amp;amp; &nbsp&nbsp; &#39;&quot;&ndash;&mdash;&minus; & &;",
            "{{x}}&amp; [[a|&lt;b&gt;]] __TOC__&amp;",
        ] {
            assert_eq!(
                plain_text(text, &loc),
                before::plain_text(text, &loc),
                "{text:?}"
            );
        }
    }
}
