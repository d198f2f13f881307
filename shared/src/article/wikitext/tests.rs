use super::*;

fn en() -> Localisation {
    Localisation::default()
}

#[test]
fn finds_categories_with_sort_keys_and_local_names() {
    let text = "x [[Category:Anarchism| ]]\n[[category:political_ideologies|Anarchism]]\n\
                [[:Category:Not a member]] <!-- [[Category:Hidden]] --> [[Category:Anarchism]]";
    assert_eq!(
        categories(text, &en()),
        vec!["Category:Anarchism", "Category:Political ideologies"]
    );
    let de = Localisation {
        category: "Kategorie".into(),
        ..en()
    };
    assert_eq!(
        categories("[[Kategorie:Begriffsklärung]] [[Category:Tiere]]", &de),
        vec!["Kategorie:Begriffsklärung", "Kategorie:Tiere"]
    );
}

#[test]
fn finds_top_level_and_nested_templates() {
    let text = "{{short description|Family of rodents}}\n{{Automatic taxobox\n| fossil_range = \
                {{fossil range|Late Eocene}} {{{1}}} {{#if:x|y}} {{PAGENAME}} {{DEFAULTSORT:Sq}}\n}}\
                {{subst:Unsigned|x}} {{Template:Cite web|url=x}} {{lc:Foo}} {{Wikipedia:Foo}}";
    assert_eq!(
        templates(text, &en()),
        vec![
            "Template:Short description",
            "Template:Automatic taxobox",
            "Template:Fossil range",
            "Template:Unsigned",
            "Template:Cite web",
            "Wikipedia:Foo",
        ]
    );
}

#[test]
fn finds_redirect_targets() {
    let check = |text: &str, expect: Option<(&str, Option<&str>)>| {
        let got = redirect_target(text, &[]);
        let got = got
            .as_ref()
            .map(|t| (t.title.as_str(), t.fragment.as_deref()));
        assert_eq!(got, expect, "{text:?}");
    };
    check(
        "#REDIRECT [[Computer accessibility]]",
        Some(("Computer accessibility", None)),
    );
    check(
        "#redirect:[[Foo_bar#History|x]]\n{{R from move}}",
        Some(("Foo bar", Some("History"))),
    );
    check("  #Redirect [[:Category:X]]", Some(("Category:X", None)));
    check("Just [[text]]", None);
    check("#REDIRECT nothing", None);
    assert!(redirect_target("#WEITERLEITUNG [[Ziel]]", &["#weiterleitung"]).is_some());
}

#[test]
fn splits_parameters_at_top_level_only() {
    assert_eq!(
        split_top_level("a|b={{x|y}}|c=[[d|e]]"),
        vec!["a", "b={{x|y}}", "c=[[d|e]]"]
    );
    assert_eq!(matching("{{a{{b}}c}}d", 0, "{{", "}}"), 11);
    assert_eq!(matching("{{a{{b}}c", 0, "{{", "}}"), 9);
}

/// [`matching`] as it was before it jumped between markers: a
/// comparison at every character.
fn matching_char_by_char(text: &str, start: usize, open: &str, close: &str) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < text.len() {
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

/// Every construct of real pages ends where the character-by-character
/// scan ends it, found by [`matching`] and by [`Pairs`] alike; and so
/// in awkward texts (markers split by multi-byte characters, unclosed,
/// overlapping, at the very end).
#[test]
fn jumping_between_markers_ends_every_construct_where_the_char_scan_does() {
    let check = |text: &str, what: &str| -> usize {
        let mut checked = 0;
        for (open, close) in [("{{", "}}"), ("{|", "|}"), ("[[", "]]")] {
            let pairs = Pairs::new(text, open, close);
            for (start, _) in text.match_indices(open) {
                let expect = matching_char_by_char(text, start, open, close);
                assert_eq!(
                    matching(text, start, open, close),
                    expect,
                    "{what} {open} at {start}"
                );
                if open == "[[" {
                    assert_eq!(pairs.end(text, start), expect, "{what} pairs at {start}");
                }
                checked += 1;
            }
        }
        checked
    };
    for text in [
        "{{a|é{{b}}}}}} [[c|[[d]]]]] {|\n|x|}|} [[é]]é]] {{ü",
        "[[[[x]]",
        "]]]][[",
        "{{{{{{",
        "{|{|",
        "x}}{{y}}",
        "[[a]",
    ] {
        check(text, text);
    }
    if wikiedge_tests::fixtures_or_skip().is_some() {
        let mut checked = 0;
        for page in crate::article::dump::tests::open("enwiki-sample-206-pages.xml.bz2") {
            let page = page.expect("dump reads");
            if let Some(text) = page.revision.and_then(|r| r.text) {
                checked += check(&text, &page.title);
            }
        }
        assert!(checked > 10_000, "{checked} constructs");
    }
}
