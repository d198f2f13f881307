//! What an instance of `articles` keeps of the bodies it sent
//! (`wikiedge_fn::kept`) is sent again only for the same write of the
//! article and the same route and selection.

use std::time::Duration;

use anyhow::{Context, Result};
use wikiedge_tests::{get, post};

use crate::articles::{app_with_sample, bearer};

/// An instance keeps the article bodies and the structured contents it
/// sent, with or without a selection (`wikiedge_fn::kept`), and sends one
/// again while the title index
/// names the same write of the article. An article written again by
/// someone else (here the test, through the store, as another host or
/// `wikiedge import` would: new bytes, the same revision, a new `copy` in
/// the index) is served as written from then on, on both routes, by every
/// instance, not as one kept it.
#[test]
fn an_article_written_again_is_served_as_written_not_as_an_instance_kept_it() -> Result<()> {
    use wikiedge_core::article::layout::{article_key, index_key, parse_index};
    let kv = |e: wikiedge_host::kv::KvError| anyhow::anyhow!("{e}");
    let Some((state, host)) = app_with_sample(&[])? else {
        return Ok(());
    };
    let auth = bearer(&host, "keeper")?;
    let auth = auth.as_str();
    let url = host.url("/v2/articles/Albedo");
    let structured = host.url("/v2/structured-contents/Albedo");
    // Another account for the second route: each stays in its burst.
    let reader = bearer(&host, "structured-keeper")?;
    let reader = reader.as_str();
    let name = |r: &wikiedge_tests::Resp| -> Result<String> {
        assert_eq!(r.status, 200, "{}", r.text());
        Ok(r.json()?[0]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    };
    let first = get(&url, &[("authorization", auth)])?;
    assert_eq!(name(&first)?, "Albedo");
    for _ in 0..8 {
        // Sent again: by now mostly from what the instances kept.
        let again = get(&url, &[("authorization", auth)])?;
        assert_eq!(again.body, first.body);
    }
    // A selection, kept under its own form, asked by a third account.
    let selected = host.url("/v2/structured-contents/Albedo?fields=name");
    let selector = bearer(&host, "selection-keeper")?;
    let selector = selector.as_str();
    for _ in 0..8 {
        let r = get(&selected, &[("authorization", selector)])?;
        assert_eq!(r.text(), r#"[{"name":"Albedo"}]"#);
    }
    let first_structured = get(&structured, &[("authorization", reader)])?;
    assert_eq!(name(&first_structured)?, "Albedo");
    for _ in 0..8 {
        let again = get(&structured, &[("authorization", reader)])?;
        assert_eq!(again.body, first_structured.body);
    }

    let db =
        wikiedge_host::kv::sqlite::SqliteDatabase::open(&state.path().join("sqlite_key_value.db"))?;
    let store = db.store("bulk");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let key = article_key("enwiki", "Albedo");
        let stored = store
            .get(key.clone())
            .await
            .map_err(kv)?
            .context("Albedo is stored")?;
        let mut doc: serde_json::Value = serde_json::from_slice(&stored)?;
        doc[0]["name"] = "Albedo, written again".into();
        store
            .set(key, serde_json::to_vec(&doc)?)
            .await
            .map_err(kv)?;
        let ikey = index_key("Albedo");
        let mut index = parse_index(store.get(ikey.clone()).await.map_err(kv)?.as_deref());
        let entry = index.get_mut("enwiki").context("an enwiki entry")?;
        assert_ne!(entry.copy, 0, "the import names its write");
        entry.copy = entry.copy.wrapping_add(1).max(1);
        store
            .set(ikey, serde_json::to_vec(&index)?)
            .await
            .map_err(kv)?;
        anyhow::Ok(())
    })?;
    // The host sees another process's writes within its read cache's TTL.
    std::thread::sleep(wikiedge_host::kv::cache::TTL + Duration::from_millis(500));
    // The selection first, then the structured contents: an article
    // lookup of the new write would drop what was kept of the old one in
    // any form.
    for _ in 0..8 {
        let r = get(&selected, &[("authorization", selector)])?;
        assert_eq!(r.text(), r#"[{"name":"Albedo, written again"}]"#);
    }
    for _ in 0..8 {
        let r = get(&structured, &[("authorization", reader)])?;
        assert_eq!(name(&r)?, "Albedo, written again");
    }
    for _ in 0..8 {
        let r = get(&url, &[("authorization", auth)])?;
        assert_eq!(name(&r)?, "Albedo, written again");
    }
    Ok(())
}

/// An instance keeps the document it made for each route and selection
/// (`fields`, document filters) under that route and selection
/// (`wikiedge_fn::kept`), and sends each request the one it asked for:
/// every selection of one article, asked in turn over and over (by now
/// mostly from what the instance kept), gets the same bytes as its first
/// answer, and those hold exactly the fields asked for. A filter that the
/// article fails is never answered from a document kept for one it passed.
#[test]
fn each_selection_of_an_article_is_sent_its_own_document() -> Result<()> {
    let plans = r#"[{"name":"free","monthly":{"ondemand":100000,"snapshot":30,"chunk":1500},"burst_per_second":1000}]"#;
    let Some((_state, host)) = app_with_sample(&[("SPIN_VARIABLE_PLANS", plans)])? else {
        return Ok(());
    };
    let auth = bearer(&host, "selector")?;
    let auth = auth.as_str();
    // Path, POST body, and the top-level fields the document must have
    // (empty: the whole document, which has more than these).
    let named =
        br#"{"fields": ["name", "url"], "filters": [{"field": "name", "value": "Albedo"}]}"#;
    let other =
        br#"{"fields": ["name", "url"], "filters": [{"field": "name", "value": "Not Albedo"}]}"#;
    /// A path, its POST body if any, and the fields its document holds.
    type Selection<'a> = (&'a str, Option<&'a [u8]>, &'a [&'a str]);
    let selections: [Selection; 8] = [
        ("/v2/articles/Albedo", None, &[]),
        ("/v2/articles/Albedo?fields=name", None, &["name"]),
        (
            "/v2/articles/Albedo?fields=name,url",
            None,
            &["name", "url"],
        ),
        (
            "/v2/articles/Albedo?fields=url,version.identifier",
            None,
            &["url", "version"],
        ),
        ("/v2/structured-contents/Albedo", None, &[]),
        (
            "/v2/structured-contents/Albedo?fields=name",
            None,
            &["name"],
        ),
        (
            "/v2/structured-contents/Albedo",
            Some(named),
            &["name", "url"],
        ),
        (
            "/v2/structured-contents/Albedo?fields=article_sections.name",
            None,
            &["article_sections"],
        ),
    ];
    let ask = |path: &str, body: Option<&[u8]>| match body {
        Some(body) => post(&host.url(path), &[("authorization", auth)], body),
        None => get(&host.url(path), &[("authorization", auth)]),
    };
    let mut firsts = Vec::new();
    for (path, body, fields) in selections {
        let r = ask(path, body)?;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let doc = r.json()?;
        let keys: Vec<&str> = doc[0]
            .as_object()
            .context("one document")?
            .keys()
            .map(String::as_str)
            .collect();
        if fields.is_empty() {
            assert!(keys.len() > 3 && keys.contains(&"name"), "{path}: {keys:?}");
        } else {
            let mut keys = keys;
            keys.sort_unstable();
            let mut want = fields.to_vec();
            want.sort_unstable();
            assert_eq!(keys, want, "{path}");
        }
        // The article's own values, where the selection has them.
        if fields.is_empty() || fields.contains(&"name") {
            assert_eq!(doc[0]["name"], "Albedo", "{path}");
        }
        if fields.contains(&"url") {
            let url = doc[0]["url"].as_str().unwrap_or_default();
            assert!(url.ends_with("/Albedo"), "{path}: {doc}");
        }
        firsts.push(r.body);
    }
    for round in 0..4 {
        for ((path, body, _), first) in selections.iter().zip(&firsts) {
            let r = ask(path, *body)?;
            assert_eq!(r.status, 200, "round {round}, {path}: {}", r.text());
            assert!(r.body == *first, "round {round}, {path}: {}", r.text());
        }
        let r = ask("/v2/structured-contents/Albedo", Some(other))?;
        assert_eq!(r.status, 404, "round {round}: {}", r.text());
    }
    Ok(())
}
