use super::*;
use crate::article::schema::Article;
use crate::article::sections::structured_content;

const SITE: &str = "https://en.wikipedia.org";

/// A page written for these tests: every part structured contents has.
const PAGE: &str = "{{Short description|Fruit tree}}\n\
    {{Infobox fruit\n| name = Pear\n}}\n\
    '''Pear''' is a [[tree]] of the [[Rosaceae|rose family]].<ref name=\"kew\">{{cite web|url=https://kew.org/pear|title=Pear at Kew}}</ref>\n\n\
    See [https://example.org/pears the pear site].<ref>Smith, ''Pears'', 1999.</ref> Again.<ref name=\"kew\"/>\n\
    == Uses ==\n\
    [[File:Pear tree.jpg|thumb|upright=1.2|A pear [[tree]]]]\n\
    Eaten raw.[[Category:Fruit]][[de:Birne]]\n\n\
    {| class=\"wikitable\"\n|+ Cultivars\n! Name !! Origin\n|-\n| Bartlett || England\n|-\n| style=\"color:red\" | Bosc\n| France\n|}\n";

fn loc() -> Localisation {
    Localisation::default()
}

#[test]
fn paragraph_links_are_internal_and_external_links_only() {
    let got = links(
        "a [[tree]], [[Rosaceae|rose family]], [[:Category:X|cats]], [[File:A.jpg]], \
         [[Category:Y]], [[de:Birne]], [https://e.org/p pears], [https://e.org/bare]",
        SITE,
        &loc(),
    );
    let pairs: Vec<(&str, Option<&str>)> = got
        .iter()
        .map(|l| (l.url.as_deref().unwrap_or(""), l.text.as_deref()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("https://en.wikipedia.org/wiki/Tree", Some("tree")),
            (
                "https://en.wikipedia.org/wiki/Rosaceae",
                Some("rose family")
            ),
            ("https://en.wikipedia.org/wiki/Category:X", Some("cats")),
            ("https://e.org/p", Some("pears")),
            ("https://e.org/bare", Some("https://e.org/bare")),
        ]
    );
}

#[test]
fn images_carry_a_file_path_url_and_the_caption() {
    let got = images(
        "[[File:Pear tree.jpg|thumb|upright=1.2|A pear [[tree]]]] [[Image:B.png|40px]]",
        SITE,
        &loc(),
    );
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].content_url.as_deref(),
        Some("https://en.wikipedia.org/wiki/Special:FilePath/Pear_tree.jpg")
    );
    assert_eq!(got[0].caption.as_deref(), Some("A pear tree"));
    assert_eq!(got[1].caption, None);
}

#[test]
fn references_are_numbered_named_typed_and_reuses_skipped() {
    let refs = references(PAGE, SITE, &loc());
    assert_eq!(refs.len(), 2, "{refs:?}");
    let kew = &refs[0];
    assert_eq!(kew.identifier.as_deref(), Some("kew"));
    assert_eq!(kew.kind.as_deref(), Some("web"));
    assert_eq!(
        kew.metadata.get("title").map(String::as_str),
        Some("Pear at Kew")
    );
    let text = kew.text.as_ref().expect("text");
    assert_eq!(text.value.as_deref(), Some("Pear at Kew"));
    assert_eq!(text.links[0].url.as_deref(), Some("https://kew.org/pear"));
    let book = &refs[1];
    assert_eq!(book.identifier.as_deref(), Some("cite_note-2"));
    assert_eq!(book.kind.as_deref(), Some("text"));
    assert_eq!(
        book.text.as_ref().and_then(|t| t.value.as_deref()),
        Some("Smith, Pears, 1999.")
    );
}

#[test]
fn tables_have_header_rows_body_rows_and_plain_cells() {
    let got = tables(PAGE, &loc());
    assert_eq!(got.len(), 1);
    let t = &got[0];
    let cells = |rows: &[Vec<TableCell>]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| {
                r.iter()
                    .map(|c| c.value.clone().unwrap_or_default())
                    .collect()
            })
            .collect()
    };
    assert_eq!(t.identifier.as_deref(), Some("table_1"));
    assert_eq!(cells(&t.headers), vec![vec!["Name", "Origin"]]);
    assert_eq!(
        cells(&t.rows),
        vec![vec!["Bartlett", "England"], vec!["Bosc", "France"]]
    );
}

#[test]
fn structured_content_carries_every_part_under_the_current_names() {
    let article = Article {
        name: "Pear".into(),
        url: Some(format!("{SITE}/wiki/Pear")),
        article_body: Some(crate::article::schema::ArticleBody {
            wikitext: Some(PAGE.into()),
            ..Default::default()
        }),
        ..Article::default()
    };
    let doc = structured_content(article, &loc());
    let json = serde_json::to_value(&doc).expect("json");
    assert_eq!(json["description"], "Fruit tree");
    assert_eq!(json["infoboxes"][0]["name"], "Infobox fruit");
    let lead = &json["sections"][0];
    assert_eq!(lead["name"], "Abstract");
    assert_eq!(
        lead["has_parts"][0]["value"],
        "Pear is a tree of the rose family."
    );
    assert_eq!(lead["has_parts"][0]["links"][1]["text"], "rose family");
    // What the Python SDK's `Link.from_json` indexes without a default.
    assert_eq!(
        lead["has_parts"][0]["links"][1]["images"],
        serde_json::json!([])
    );
    let uses = &json["sections"][1];
    assert_eq!(uses["name"], "Uses");
    assert_eq!(uses["images"][0]["caption"], "A pear tree");
    assert_eq!(json["references"][0]["identifier"], "kew");
    assert_eq!(json["tables"][0]["rows"][1][0]["value"], "Bosc");
    assert_eq!(json["sections"], json["article_sections"]);
    assert_eq!(json["infoboxes"], json["infobox"]);
    assert!(json.get("article_body").is_none());
}

#[test]
fn the_description_is_written_once_template_first() {
    let article = |text: &str| Article {
        description: Some("From the API".into()),
        article_body: Some(crate::article::schema::ArticleBody {
            wikitext: Some(text.into()),
            ..Default::default()
        }),
        ..Article::default()
    };
    let doc = structured_content(article("Plain."), &loc());
    let text = serde_json::to_string(&doc).expect("json");
    assert_eq!(text.matches("\"description\"").count(), 1, "{text}");
    assert_eq!(doc.description.as_deref(), Some("From the API"));
    let doc = structured_content(article("{{Short description|Tree}}"), &loc());
    assert_eq!(doc.description.as_deref(), Some("Tree"));
}

#[test]
fn site_is_what_comes_before_wiki() {
    assert_eq!(site_of("https://en.wikipedia.org/wiki/Pear"), SITE);
    assert_eq!(site_of("nonsense"), "");
}
