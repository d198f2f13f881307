//! Structured contents from wikitext: sections of paragraphs (with their
//! links and images), infoboxes, references, tables and the
//! `{{Short description}}` as `description`, in WME's part shapes
//! (docs/structured-contents.md says what is derived how; [`super::parts`]
//! does links, images, references and tables).
//!
//! Sections nest by heading level: a `===` heading becomes a part of the
//! `==` section before it. The lead section is named `Abstract`, as WME names
//! it. Infoboxes are the top-level `{{Infobox ...}}` templates, each one part
//! `{name, type: "infobox", has_parts: [{type: "section", has_parts: fields}]}`
//! with a `field` part per named parameter (`{type, name, value}`).

use super::parts::{images, links, references, site_of, tables};
use super::plaintext::{is_heading, plain_text};
use super::schema::Article;
use super::structured::{Part, StructuredContent};
use super::wikitext::{Localisation, capped, matching, split_top_level, strip_comments};

/// A flat section: heading level (1 for the lead), name and paragraphs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The heading level: 1 for the lead section, 2 for `==`, 3 for `===`, ...
    pub level: usize,
    /// The heading text (`Abstract` for the lead section).
    pub name: String,
    /// The section's paragraphs as plain text, empty ones dropped.
    pub paragraphs: Vec<String>,
    /// Where the same paragraphs are in [`Section::raw`], as wikitext (for
    /// their links): spans, not copies, since an article's text is held
    /// several times over while its sections are made.
    pub raw_paragraphs: Vec<std::ops::Range<usize>>,
    /// The section's own wikitext, sub-sections excluded (for its images).
    pub raw: String,
}

/// Splits wikitext into flat sections by heading lines.
pub fn sections(wikitext: &str, loc: &Localisation) -> Vec<Section> {
    let text = strip_comments(capped(wikitext));
    let mut out = Vec::new();
    // The open section's level and name, and where its body starts: the
    // lines between two headings, copied once at their exact size.
    let mut current = (1usize, "Abstract".to_string(), 0);
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if let Some((level, name)) = is_heading(line) {
            let (l, n, start) = std::mem::replace(
                &mut current,
                (level, plain_text(name, loc), at + line.len()),
            );
            out.push(section(l, n, text[start..at].to_string(), loc));
        }
        at += line.len();
    }
    let (level, name, start) = current;
    out.push(section(level, name, text[start..].to_string(), loc));
    // A lead with nothing readable is dropped, as WME does.
    if out
        .first()
        .is_some_and(|s| s.level == 1 && s.paragraphs.is_empty())
    {
        out.remove(0);
    }
    out
}

fn section(level: usize, name: String, raw: String, loc: &Localisation) -> Section {
    let (raw_paragraphs, paragraphs) = paragraphs(&raw, loc).into_iter().unzip();
    Section {
        level,
        name,
        paragraphs,
        raw_paragraphs,
        raw,
    }
}

/// Splits a section body at blank lines (outside templates and tables) and
/// converts each paragraph to plain text: `(where its wikitext is in
/// body, plain text)` pairs.
fn paragraphs(body: &str, loc: &Localisation) -> Vec<(std::ops::Range<usize>, String)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < body.len() {
        let rest = &body[i..];
        if rest.starts_with("{{") {
            i = matching(body, i, "{{", "}}");
        } else if rest.starts_with("{|") {
            i = matching(body, i, "{|", "|}");
        } else if rest.starts_with("\n\n") {
            out.push((start..i, plain_text(&body[start..i], loc)));
            i += 2;
            start = i;
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out.push((start..body.len(), plain_text(&body[start..], loc)));
    out.retain(|(_, p)| !p.is_empty());
    out
}

/// Nests flat sections into WME `sections` parts (paragraphs only).
pub fn section_parts(sections: Vec<Section>) -> Vec<Part> {
    nest(sections, None)
}

/// Nests flat sections into WME `sections` parts, each paragraph with its
/// `links` and each section with its `images` (URLs on `site`).
pub fn linked_section_parts(sections: Vec<Section>, site: &str, loc: &Localisation) -> Vec<Part> {
    nest(sections, Some((site, loc)))
}

/// The sections' paragraphs are moved into the parts, not copied.
fn nest(sections: Vec<Section>, linked: Option<(&str, &Localisation)>) -> Vec<Part> {
    let mut stack: Vec<(usize, Part)> = Vec::new();
    let mut top = Vec::new();
    for section in sections {
        let raw = &section.raw;
        let children = section
            .paragraphs
            .into_iter()
            .zip(&section.raw_paragraphs)
            .map(|(p, span)| Part {
                links: linked.map_or_else(Vec::new, |(site, loc)| {
                    links(raw.get(span.clone()).unwrap_or_default(), site, loc)
                }),
                ..Part::leaf("paragraph", p)
            })
            .collect();
        let mut part = Part::named("section", &section.name, children);
        if let Some((site, loc)) = linked {
            part.images = images(&section.raw, site, loc);
        }
        // The lead is a sibling of the `==` sections, not their parent.
        let level = section.level.max(2);
        while stack.last().is_some_and(|(open, _)| *open >= level) {
            close(&mut stack, &mut top);
        }
        stack.push((level, part));
    }
    while !stack.is_empty() {
        close(&mut stack, &mut top);
    }
    top
}

/// Pops the innermost open section into its parent (or the top level).
fn close(stack: &mut Vec<(usize, Part)>, top: &mut Vec<Part>) {
    if let Some((_, part)) = stack.pop() {
        match stack.last_mut() {
            Some((_, parent)) => parent.has_parts.push(part),
            None => top.push(part),
        }
    }
}

/// The top-level templates of `text`: each one's name (trimmed, `_` read
/// as a space) and its parameters, in order. Each template is matched once
/// and the walk goes on after its end, so the walk is linear in the text.
fn top_level_templates(text: &str) -> impl Iterator<Item = (String, Vec<&str>)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let start = i + text[i..].find("{{")?;
        let end = matching(text, start, "{{", "}}");
        i = end;
        let inner = text[start + 2..end]
            .strip_suffix("}}")
            .unwrap_or(&text[start + 2..end]);
        let mut params = split_top_level(inner).into_iter();
        let name = params.next().unwrap_or_default().trim().replace('_', " ");
        Some((name, params.collect()))
    })
}

/// The top-level `{{Infobox ...}}` templates as WME infobox parts.
pub fn infoboxes(wikitext: &str, loc: &Localisation) -> Vec<Part> {
    let text = strip_comments(capped(wikitext));
    top_level_templates(&text)
        .filter(|(name, _)| name.to_lowercase().starts_with("infobox"))
        .map(|(name, params)| {
            let fields: Vec<Part> = params
                .into_iter()
                .filter_map(|p| p.split_once('='))
                .filter_map(|(key, value)| {
                    let value = plain_text(value, loc);
                    (!value.is_empty()).then(|| Part {
                        name: Some(key.trim().to_string()),
                        ..Part::leaf("field", value)
                    })
                })
                .collect();
            let section = Part {
                kind: Some("section".into()),
                has_parts: fields,
                ..Part::default()
            };
            Part::named("infobox", &name, vec![section])
        })
        .collect()
}

/// The page's own short description: the first positional parameter of a
/// top-level `{{Short description|...}}` (the English Wikipedia template
/// that WME's `description` carries there); `none` means "no description".
pub fn short_description(wikitext: &str, loc: &Localisation) -> Option<String> {
    let text = strip_comments(capped(wikitext));
    let (_, params) = top_level_templates(&text)
        .find(|(name, _)| name.eq_ignore_ascii_case("short description"))?;
    let value = params.into_iter().find(|p| !p.contains('='))?;
    let value = plain_text(value, loc);
    let value = value.trim();
    (!value.is_empty() && !value.eq_ignore_ascii_case("none")).then(|| value.to_string())
}

/// The structured-contents document of an article: its fields plus the
/// infoboxes and sections parsed from its wikitext (none without wikitext).
/// The wikitext body itself is dropped, as in WME's structured contents.
pub fn structured_content(mut article: Article, loc: &Localisation) -> StructuredContent {
    let wikitext = article
        .article_body
        .take()
        .and_then(|b| b.wikitext)
        .unwrap_or_default();
    let url = article.url.clone().unwrap_or_default();
    let site = site_of(&url);
    StructuredContent {
        infoboxes: infoboxes(&wikitext, loc),
        sections: linked_section_parts(sections(&wikitext, loc), site, loc),
        references: references(&wikitext, site, loc),
        tables: tables(&wikitext, loc),
        // The template's text, else what the Action API said (upstream
        // path); moved out of the article so it is written once.
        description: short_description(&wikitext, loc).or(article.description.take()),
        article,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::dump::tests::open;
    use crate::article::transform::{ProjectContext, article_from_dump};

    const TEXT: &str = "{{Infobox fruit\n| name = Pear\n| genus = ''[[Pyrus]]''\n| image = \n}}\n\
        '''Pear''' is a tree.\n\nIt has [[fruit]]s.\n== Species ==\nMany.\n=== Asian ===\nRound.\n\
        == Uses ==\n{{Main|Cooking}}\nEaten.";

    #[test]
    fn splits_sections_and_paragraphs() {
        let loc = Localisation::default();
        let flat = sections(TEXT, &loc);
        let names: Vec<_> = flat.iter().map(|s| (s.level, s.name.as_str())).collect();
        assert_eq!(
            names,
            vec![(1, "Abstract"), (2, "Species"), (3, "Asian"), (2, "Uses")]
        );
        assert_eq!(
            flat[0].paragraphs,
            vec!["Pear is a tree.", "It has fruits."]
        );
        // Each paragraph's wikitext is a span of its section's text.
        let raw: Vec<&str> = flat[0]
            .raw_paragraphs
            .iter()
            .map(|span| &flat[0].raw[span.clone()])
            .collect();
        assert_eq!(
            raw,
            vec![
                "{{Infobox fruit\n| name = Pear\n| genus = ''[[Pyrus]]''\n| image = \n}}\n'''Pear''' is a tree.",
                "It has [[fruit]]s.\n"
            ]
        );
        let parts = section_parts(flat);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].has_parts[1].name.as_deref(), Some("Asian"));
        assert_eq!(
            parts[1].has_parts[1].has_parts[0].value.as_deref(),
            Some("Round.")
        );
        let json = serde_json::to_value(&parts[0]).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"name": "Abstract", "type": "section", "has_parts": [
                {"type": "paragraph", "value": "Pear is a tree."},
                {"type": "paragraph", "value": "It has fruits."}]})
        );
    }

    #[test]
    fn the_short_description_template_is_the_description() {
        let loc = Localisation::default();
        let text = "<!-- x -->{{Short description|Political [[philosophy]] and movement}}\n{{Other uses}}\n'''A''' is.";
        assert_eq!(
            short_description(text, &loc).as_deref(),
            Some("Political philosophy and movement")
        );
        assert_eq!(short_description("{{short_description|none}}", &loc), None);
        assert_eq!(short_description("{{Infobox x|a=b}} text", &loc), None);
    }

    #[test]
    fn extracts_infobox_fields() {
        let boxes = infoboxes(TEXT, &Localisation::default());
        assert_eq!(boxes.len(), 1);
        let json = serde_json::to_value(&boxes[0]).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"name": "Infobox fruit", "type": "infobox", "has_parts": [{"type": "section",
                "has_parts": [{"name": "name", "type": "field", "value": "Pear"},
                              {"name": "genus", "type": "field", "value": "Pyrus"}]}]})
        );
    }

    #[test]
    fn pear_from_the_dump_has_structured_contents() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let pages: Vec<_> = open("enwiki-pear-export-0.10.xml")
            .collect::<crate::Result<_>>()
            .expect("reads");
        let ctx = ProjectContext {
            identifier: "enwiki".into(),
            base_url: "https://en.wikipedia.org".into(),
            language: "en".into(),
            localisation: Localisation::default(),
        };
        let article = article_from_dump(&pages[0], &ctx, &[]).expect("article");
        let doc = structured_content(article, &ctx.localisation);
        assert!(doc.article.article_body.is_none());
        assert_eq!(doc.article.name, "Pear");
        let lead = &doc.sections[0];
        assert_eq!(lead.name.as_deref(), Some("Abstract"));
        let first = lead.has_parts[0].value.as_deref().expect("paragraph");
        assert!(
            first.starts_with("The pear is any of several tree and shrub species"),
            "{first}"
        );
        let names: Vec<&str> = doc
            .sections
            .iter()
            .filter_map(|s| s.name.as_deref())
            .collect();
        assert_eq!(
            names[..5],
            [
                "Abstract",
                "Etymology",
                "Description",
                "History",
                "Cultivation"
            ]
        );
        let history = &doc.sections[3];
        assert!(
            history
                .has_parts
                .iter()
                .any(|p| p.name.as_deref() == Some("Major recognized taxa"))
        );
        // Pear uses a taxobox, not an `{{Infobox ...}}`.
        assert!(doc.infoboxes.is_empty());
        assert!(
            doc.sections
                .iter()
                .all(|s| s.kind.as_deref() == Some("section"))
        );
    }

    #[test]
    fn aristotle_infobox_from_the_dump() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let page = open("enwiki-sample-206-pages.xml.bz2")
            .filter_map(crate::Result::ok)
            .find(|p| p.title == "Aristotle")
            .expect("Aristotle is in the sample");
        let text = page.revision.and_then(|r| r.text).expect("text");
        let boxes = infoboxes(&text, &Localisation::default());
        assert_eq!(boxes.len(), 1);
        assert_eq!(boxes[0].name.as_deref(), Some("Infobox philosopher"));
        let fields = &boxes[0].has_parts[0].has_parts;
        let field = |name: &str| {
            fields
                .iter()
                .find(|f| f.name.as_deref() == Some(name))
                .and_then(|f| f.value.as_deref())
        };
        assert_eq!(field("name"), Some("Aristotle"));
        assert_eq!(field("image"), Some("Aristotle Altemps Inv8575.jpg"));
        // The caption is wrapped in a template, which plain text drops.
        assert_eq!(field("caption"), None);
    }

    /// Every wikitext transform on one page, the way an import, the upstream
    /// fetch and realtime ingest run them (article, then structured contents).
    fn every_transform(text: &str) -> (crate::article::schema::Article, StructuredContent) {
        use crate::article::dump::{DumpPage, DumpRevision};
        use crate::article::wikitext::{categories, redirect_target, templates};
        let loc = Localisation::default();
        let _ = categories(text, &loc);
        let _ = templates(text, &loc);
        let _ = redirect_target(text, &[]);
        let _ = crate::article::plaintext::plain_text(text, &loc);
        let _ = section_parts(sections(text, &loc));
        let _ = infoboxes(text, &loc);
        let page = DumpPage {
            title: "Hostile".into(),
            id: 1,
            revision: Some(DumpRevision {
                id: 2,
                text: Some(text.to_string()),
                ..DumpRevision::default()
            }),
            ..DumpPage::default()
        };
        let ctx = ProjectContext {
            identifier: "enwiki".into(),
            base_url: "https://en.wikipedia.org".into(),
            language: "en".into(),
            localisation: loc.clone(),
        };
        let article = article_from_dump(&page, &ctx, &[]).expect("article");
        let doc = structured_content(article.clone(), &loc);
        (article, doc)
    }

    fn nested_links(depth: usize) -> String {
        format!("{}x{}", "[[a|".repeat(depth), "]]".repeat(depth))
    }

    #[test]
    fn two_hundred_thousand_nested_links_go_through_every_transform() {
        // 1 MB of `[[a|[[a|...x]]...]]`: quadratic and recursive before.
        let page = format!("Lead [[b|c]] text. {}\n\nAfter.", nested_links(200_000));
        let (article, doc) = every_transform(&page);
        // Labels nested deeper than MAX_LINK_DEPTH contribute nothing, the
        // text around them survives and no markup leaks into prose.
        assert_eq!(
            article.abstract_text.as_deref(),
            Some("Lead c text. After.")
        );
        assert!(article.templates.is_empty() && article.categories.is_empty());
        let lead = &doc.sections[0];
        assert_eq!(lead.has_parts.len(), 2);
        assert_eq!(lead.has_parts[0].value.as_deref(), Some("Lead c text."));
        // Shallow nesting still reads the innermost label.
        let (article, _) = every_transform(&format!("Deep {} end.", nested_links(20)));
        assert_eq!(article.abstract_text.as_deref(), Some("Deep x end."));
    }

    #[test]
    fn two_hundred_thousand_unclosed_templates_go_through_every_transform() {
        let page = format!("Lead text.\n\n{}", "{{".repeat(200_000));
        let (article, doc) = every_transform(&page);
        assert_eq!(article.abstract_text.as_deref(), Some("Lead text."));
        assert!(article.templates.is_empty());
        assert!(doc.infoboxes.is_empty());
        assert_eq!(doc.sections[0].has_parts.len(), 1);
        // Unclosed templates with names: each one is listed once.
        let page = format!("Lead.\n{}", "{{Foo|".repeat(200_000));
        let (article, _) = every_transform(&page);
        assert_eq!(article.templates.len(), 1);
        assert_eq!(article.abstract_text.as_deref(), Some("Lead."));
    }

    #[test]
    fn other_hostile_shapes_go_through_every_transform() {
        let n = 100_000;
        let shapes = [
            // Many distinct templates and categories (deduplication).
            (0..n).map(|i| format!("{{{{T{i}}}}}")).collect::<String>(),
            (0..n)
                .map(|i| format!("[[Category:C{i}]]"))
                .collect::<String>(),
            // Openings whose close is far away or missing.
            "[[Category:".repeat(n),
            format!("{}]]", "[[".repeat(n)),
            "[http://x ".repeat(n),
            "<a".repeat(n),
            "<ref>".repeat(n),
            "{|\n".repeat(n),
            "__A".repeat(n),
            "''".repeat(n),
            "=".repeat(n),
            "<!--".repeat(n),
            "[[a|{{b|".repeat(n),
        ];
        for (k, page) in shapes.iter().enumerate() {
            let (article, _) = every_transform(page);
            if let Some(a) = &article.abstract_text {
                assert!(
                    !a.contains("[[") && !a.contains("{{"),
                    "shape {k}: {}",
                    a.chars().take(80).collect::<String>()
                );
            }
        }
        let (article, _) = every_transform(&shapes[0]);
        assert_eq!(article.templates.len(), n);
        let (article, _) = every_transform(&shapes[1]);
        assert_eq!(article.categories.len(), n);
    }

    #[test]
    fn transforms_read_at_most_the_page_size_limit() {
        use crate::article::wikitext::{MAX_WIKITEXT_BYTES, categories};
        let loc = Localisation::default();
        let filler = "word ".repeat(MAX_WIKITEXT_BYTES / 5);
        let page = format!("{filler}[[Category:Past the limit]]");
        assert!(page.len() > MAX_WIKITEXT_BYTES);
        assert!(categories(&page, &loc).is_empty());
        let page = format!("[[Category:Within]]{filler}");
        assert_eq!(categories(&page, &loc), ["Category:Within"]);
    }

    /// `cargo test -p wikiedge-core --release -- --ignored hostile_timing --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn hostile_timing() {
        for (name, page) in [
            ("200k nested links", nested_links(200_000)),
            ("200k unclosed {{", "{{".repeat(200_000)),
            ("200k [[a|{{b|", "[[a|{{b|".repeat(200_000)),
        ] {
            let start = std::time::Instant::now();
            let _ = every_transform(&page);
            eprintln!("{name}: {:?}", start.elapsed());
        }
    }
}
