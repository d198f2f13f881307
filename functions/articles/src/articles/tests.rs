use super::*;

#[test]
fn if_none_match_lists_and_weak_tags_match() {
    assert!(etag_matches("\"1\"", "\"1\""));
    assert!(etag_matches("W/\"1\", \"2\"", "\"2\""));
    assert!(!etag_matches("*", "\"7\""));
    assert!(is_wildcard("*") && is_wildcard("\"1\", *") && !is_wildcard("\"*\""));
    assert!(!etag_matches("\"1\"", "\"1-2\""));
}

#[test]
fn documents_join_as_array_or_ndjson() {
    let docs = vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()];
    assert_eq!(join_documents(&docs, false), b"[{\"a\":1},{\"b\":2}]");
    assert_eq!(join_documents(&docs, true), b"{\"a\":1}\n{\"b\":2}\n");
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
    let (project, _) = split_filters(&request(
        r#"{"filters": [{"field": "is_part_of.identifier", "value": "dewiki"},
                        {"field": "is_part_of.identifier", "value": "enwiki"}]}"#,
    ));
    assert_eq!(project, Some(None));
    let (project, rest) = split_filters(&request("{}"));
    assert_eq!((project, rest.len()), (None, 0));
}

#[test]
fn stale_copies_are_refetched_unless_backing_off() {
    let config = Config {
        overrides: Default::default(),
        unfiltered: Vec::new(),
        max_age: 100,
        timeout: std::time::Duration::from_millis(10),
        revertrisk_url: None,
    };
    let entry = |fetched, retry_at| {
        Some(Entry {
            rev: 1,
            fetched,
            retry_at,
        })
    };
    assert!(needs_fetch(&config, None, 1_000));
    assert!(!needs_fetch(&config, entry(950, 0), 1_000));
    assert!(needs_fetch(&config, entry(800, 0), 1_000));
    assert!(!needs_fetch(&config, entry(800, 1_010), 1_000));
    assert!(first_letter_upper("enwiki") && !first_letter_upper("enwiktionary"));
}
