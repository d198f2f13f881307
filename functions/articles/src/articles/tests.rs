//! The component's own parts; the lookup's decisions (freshness, backoff,
//! ETags, `If-None-Match`, charging) are tested in the core
//! (`wikiedge_core::article::pipeline`).

use super::*;

#[test]
fn documents_join_as_array_or_ndjson() {
    let docs = vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()];
    assert_eq!(
        join_documents(docs.clone(), false),
        b"[{\"a\":1},{\"b\":2}]"
    );
    assert_eq!(join_documents(docs, true), b"{\"a\":1}\n{\"b\":2}\n");
}

#[test]
fn stored_values_join_in_either_form_and_a_lone_array_is_sent_as_stored() {
    use wikiedge_core::article::layout::stored_article;
    let old = b"{\"a\":1}".to_vec();
    let new = stored_article(b"{\"b\":2}");
    let both = vec![old.clone(), new.clone()];
    assert_eq!(
        join_documents(both.clone(), false),
        b"[{\"a\":1},{\"b\":2}]"
    );
    assert_eq!(join_documents(both, true), b"{\"a\":1}\n{\"b\":2}\n");
    assert_eq!(join_documents(vec![old], false), b"[{\"a\":1}]");
    assert_eq!(join_documents(vec![new.clone()], true), b"{\"b\":2}\n");
    let ptr = new.as_ptr();
    let sent = join_documents(vec![new], false);
    assert_eq!(sent, b"[{\"b\":2}]");
    assert_eq!(
        sent.as_ptr(),
        ptr,
        "a lone stored array is sent without a copy"
    );
}

#[test]
fn project_filters_select_projects_and_others_stay_document_filters() {
    let request = |body: &str| ArticlesRequest::from_json(body.as_bytes()).expect("valid");
    let (project, rest) = split_filters(&request(
        r#"{"filters": [{"field": "is_part_of.identifier", "value": "dewiki"},
                        {"field": "in_language.identifier", "value": "de"}]}"#,
    ));
    assert_eq!(project, Some(Some("dewiki".to_string())));
    assert_eq!(rest.len(), 1);
    assert_eq!(language_filter(&rest), Some("de".to_string()));
    let (project, _) = split_filters(&request(
        r#"{"filters": [{"field": "is_part_of.identifier", "value": "dewiki"},
                        {"field": "is_part_of.identifier", "value": "enwiki"}]}"#,
    ));
    assert_eq!(project, Some(None));
    let (project, rest) = split_filters(&request("{}"));
    assert_eq!((project, rest.len()), (None, 0));
}

#[test]
fn wiktionaries_keep_the_first_letter_as_given() {
    assert!(first_letter_upper("enwiki") && !first_letter_upper("enwiktionary"));
}

#[test]
fn structured_contents_are_rendered_in_the_array_form_and_kept_under_their_selection() {
    use wikiedge_core::article::layout::{document, is_wrapped, to_stored};
    use wikiedge_core::article::projection::Filter;
    use wikiedge_core::article::schema::Article;
    use wikiedge_core::article::sections::structured_content;
    let article: Article = serde_json::from_str(
        r#"{"name": "Squirrel", "identifier": 28492,
            "article_body": {"wikitext": "Lead text.\n== History ==\nOld [[tree]]s."}}"#,
    )
    .expect("an article");
    let stored = to_stored(&article).expect("stored");
    let none: &[Filter] = &[];
    let whole = render(Product::Structured, stored.clone(), none, &[], true)
        .expect("renders")
        .expect("no filter drops it");
    assert!(is_wrapped(&whole), "a lone rendering is the body as it is");
    let made = structured_content(article, &Default::default());
    let expect = serde_json::to_value(&made).expect("a value");
    let got: serde_json::Value = serde_json::from_slice(document(&whole)).expect("JSON");
    assert_eq!(got, expect);
    assert!(
        got["article_sections"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{got}"
    );

    let fields = ["name".to_string()];
    let named = render(Product::Structured, stored.clone(), none, &fields, true)
        .expect("renders")
        .expect("kept");
    assert_eq!(named, br#"[{"name":"Squirrel"}]"#);
    let named = render(Product::Articles, stored.clone(), none, &fields, true)
        .expect("renders")
        .expect("kept");
    assert_eq!(named, br#"[{"name":"Squirrel"}]"#);
    let sent = render(Product::Articles, stored.clone(), none, &[], true)
        .expect("renders")
        .expect("kept");
    assert_eq!(sent, stored, "an article is sent as stored");

    // Filters alone: the whole rendering when they pass, nothing when not;
    // with fields too, the projection of what passed.
    let passes = [Filter {
        field: "article_sections.name".into(),
        value: "History".into(),
    }];
    let fails = [Filter {
        field: "name".into(),
        value: "Not Squirrel".into(),
    }];
    let filtered = render(Product::Structured, stored.clone(), &passes, &[], true)
        .expect("renders")
        .expect("the filter passes");
    assert_eq!(filtered, whole);
    let named_squirrel = [Filter {
        field: "name".into(),
        value: "Squirrel".into(),
    }];
    let filtered = render(
        Product::Articles,
        stored.clone(),
        &named_squirrel,
        &[],
        true,
    )
    .expect("renders")
    .expect("the filter passes");
    assert_eq!(filtered, stored, "an article that passes is sent as stored");
    for product in [Product::Structured, Product::Articles] {
        let none_left = render(product, stored.clone(), &fails, &[], true).expect("renders");
        assert_eq!(none_left, None);
        let none_left = render(product, stored.clone(), &fails, &fields, true).expect("renders");
        assert_eq!(none_left, None);
    }
    let sections = ["article_sections.name".to_string()];
    let named = render(
        Product::Structured,
        stored.clone(),
        &passes,
        &sections,
        true,
    )
    .expect("renders")
    .expect("the filter passes");
    let got: serde_json::Value = serde_json::from_slice(document(&named)).expect("JSON");
    let names: Vec<serde_json::Value> = expect["article_sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| serde_json::json!({"name": s["name"]}))
        .collect();
    assert_eq!(got, serde_json::json!({"article_sections": names}));

    let form = |product, filters: &[Filter], fields: &[String]| {
        kept_form(product, filters, fields).expect("a form")
    };
    assert_eq!(form(Product::Articles, none, &[]), kept::Form::Stored);
    assert_eq!(
        form(Product::Structured, none, &[]),
        kept::Form::Rendered("structured-contents")
    );
    let filter = Filter {
        field: "name".into(),
        value: "Squirrel".into(),
    };
    let url = ["url".to_string()];
    let both = ["name".to_string(), "url".to_string()];
    let swapped = ["url".to_string(), "name".to_string()];
    // Every selection on either route is a form of its own, apart from
    // the plain ones and from each other; the same one is the same form.
    let forms = [
        form(Product::Articles, none, &[]),
        form(Product::Structured, none, &[]),
        form(Product::Articles, none, &fields),
        form(Product::Structured, none, &fields),
        form(Product::Structured, none, &url),
        form(Product::Structured, none, &both),
        form(Product::Structured, none, &swapped),
        form(Product::Articles, std::slice::from_ref(&filter), &[]),
        form(Product::Structured, std::slice::from_ref(&filter), &[]),
        form(Product::Structured, std::slice::from_ref(&filter), &fields),
    ];
    for (i, a) in forms.iter().enumerate() {
        for b in &forms[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(
        form(Product::Structured, std::slice::from_ref(&filter), &fields),
        form(
            Product::Structured,
            &[filter.clone()],
            &["name".to_string()]
        )
    );
    // A field name holding the separators of a naive join stays apart.
    assert_ne!(
        form(Product::Articles, none, &["name,url".to_string()]),
        form(Product::Articles, none, &both)
    );
}
