//! The live-wiki path: an article fetched from a fake MediaWiki that
//! answers in the shapes MediaWiki documents (REST `with_html` and source,
//! Action API `formatversion=2`, including the follow-up `list=users` +
//! `revids` query), with every field the APIs give asserted and the
//! upstream calls per article counted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde_json::json;
use wikiedge_tests::{Host, TempDir, fake, get, repo_root};

use crate::quota::bearer;
use crate::{ADMIN_KEY, BIN};

/// `GET /w/rest.php/v1/page/Squirrel/with_html` (ExistingPageHtml).
const WITH_HTML: &str = r#"{"id": 28492, "key": "Squirrel", "title": "Squirrel",
    "latest": {"id": 1171934824, "timestamp": "2023-08-24T01:14:42Z"}, "content_model": "wikitext",
    "license": {"url": "https://creativecommons.org/licenses/by-sa/4.0/", "title": "Creative Commons Attribution-Share Alike 4.0"},
    "html_url": "https://en.wikipedia.org/w/rest.php/v1/page/Squirrel/html",
    "html": "<p>Squirrels are members of the family Sciuridae.</p>"}"#;

/// `GET /w/rest.php/v1/page/Squirrel` (ExistingPageSource).
const SOURCE: &str = r#"{"id": 28492, "key": "Squirrel", "title": "Squirrel",
    "latest": {"id": 1171934824, "timestamp": "2023-08-24T01:14:42Z"}, "content_model": "wikitext",
    "license": {"url": "https://creativecommons.org/licenses/by-sa/4.0/", "title": "Creative Commons Attribution-Share Alike 4.0"},
    "source": "{{Short description|Family of rodents}}\n'''Squirrels''' are members of the family [[Sciuridae]].{{Citation needed|date=May 2023}}{{Clarify|reason=which?}}\n\n== Etymology ==\nFrom Greek.{{Update|date=2020}}\n[[Category:Sciuridae]]"}"#;

/// The answer to the page query (categories ... revisions, rvlimit=2).
const ACTION: &str = r#"{"continue": {"rvcontinue": "20230818071350|1170965821", "continue": "||categories|templates|redirects|pageprops|info|pageimages|description"},
    "query": {"pages": [{"pageid": 28492, "ns": 0, "title": "Squirrel", "contentmodel": "wikitext",
    "pagelanguage": "en", "pagelanguagehtmlcode": "en", "pagelanguagedir": "ltr",
    "touched": "2023-08-29T14:19:05Z", "lastrevid": 1171934824, "length": 34723,
    "protection": [{"type": "edit", "level": "autoconfirmed", "expiry": "infinity"},
                   {"type": "move", "level": "autoconfirmed", "expiry": "infinity"}],
    "restrictiontypes": ["edit", "move"], "watchers": 343,
    "categories": [{"ns": 14, "title": "Category:Sciuridae"}],
    "templates": [{"ns": 10, "title": "Template:Citation needed"}],
    "redirects": [{"pageid": 63522, "ns": 0, "title": "Sciuridae"}],
    "pageprops": {"wikibase_item": "Q9482"},
    "wbentityusage": {"P4807": {"aspects": ["C.P1630"]}, "Q9482": {"aspects": ["S", "T"]}},
    "original": {"source": "https://upload.wikimedia.org/wikipedia/commons/6/68/Sciuridae.jpg", "width": 600, "height": 600},
    "pageimage": "Sciuridae.jpg",
    "description": "Family of rodents", "descriptionsource": "local",
    "revisions": [
      {"revid": 1171934824, "parentid": 1170965821, "minor": true, "user": "OAbot", "userid": 28481209,
       "timestamp": "2023-08-24T01:14:42Z", "size": 34723,
       "comment": "[[Wikipedia:OABOT|Open access bot]]: pmc, doi updated in citation with #oabot.",
       "tags": ["mw-manual-revert"]},
      {"revid": 1170965821, "parentid": 1169000000, "minor": false, "user": "Example", "userid": 42,
       "timestamp": "2023-08-18T07:13:50Z", "size": 34675, "comment": "copyedit", "tags": []}]}]}}"#;

/// The editor's record in the answer to the follow-up query
/// (`list=users&usprop=editcount|groups|registration`, ApiQueryUsers,
/// formatversion=2), with the values of WME's own Squirrel document.
const USERS: &str = r#"[{"userid": 28481209, "name": "OAbot", "editcount": 342731,
    "registration": "2016-06-03T17:03:59Z", "groups": ["bot", "*", "user", "autoconfirmed"]}]"#;

/// The parent revision's text: 31 characters in 35 bytes.
const PARENT_TEXT: &str = "Écureuils — la famille Sciuridæ";

/// The answer to the follow-up query: the `users` part when it asks
/// `list=users`, the parent revision (`revids=`, `rvslots=main` content)
/// when it asks for it — what MediaWiki answers to each.
fn follow_up_answer(path: &str) -> String {
    let mut query = serde_json::Map::new();
    if path.contains("&list=users&") && path.contains("&ususers=OAbot") {
        query.insert("users".into(), serde_json::from_str(USERS).expect("json"));
    }
    if path.contains("&revids=1170965821") {
        query.insert(
            "pages".into(),
            json!([{"pageid": 28492, "ns": 0, "title": "Squirrel",
                "revisions": [{"revid": 1170965821, "parentid": 1169000000, "size": PARENT_TEXT.len(),
                    "slots": {"main": {"contentmodel": "wikitext", "contentformat": "text/x-wiki",
                                       "content": PARENT_TEXT}}}]}]),
        );
    }
    json!({"batchcomplete": true, "query": query}).to_string()
}

/// An answer about `Squirrel` turned into one about `Acorn` (page 28493),
/// whose current revision an IP address saved.
fn acorn(answer: &str) -> String {
    answer
        .replace("Squirrel", "Acorn")
        .replace("28492", "28493")
        .replace(
            r#""user": "OAbot", "userid": 28481209"#,
            r#""user": "203.0.113.7", "anon": true, "userid": 0"#,
        )
}

/// The answer to the first-revision query (rvdir=newer, rvlimit=1).
const FIRST: &str = r#"{"continue": {"rvcontinue": "20011009175509|284620", "continue": "||"},
    "query": {"pages": [{"pageid": 28492, "ns": 0, "title": "Squirrel",
    "revisions": [{"revid": 284620, "parentid": 0, "timestamp": "2001-10-09T17:55:09Z"}]}]}}"#;

/// The Lift Wing revert-risk answer (language-agnostic model).
const REVERTRISK: &str = r#"{"model_name": "revertrisk-language-agnostic", "model_version": "3",
    "wiki_db": "enwiki", "revision_id": 1171934824,
    "output": {"prediction": false, "probabilities": {"true": 0.1187, "false": 0.8813}}}"#;

/// What the model is asked for `Squirrel`'s revision.
const REVERTRISK_ASKED: &str = r#"{"lang":"en","rev_id":1171934824}"#;

/// The path the fake serves the revert-risk model on.
const REVERTRISK_PATH: &str =
    "/service/lw/inference/v1/models/revertrisk-language-agnostic:predict";

/// A fake MediaWiki (and Lift Wing) on loopback counting the requests by kind.
struct FakeWiki {
    url: String,
    calls: Arc<Mutex<BTreeMap<&'static str, usize>>>,
    follow_ups: Arc<Mutex<Vec<String>>>,
}

impl FakeWiki {
    /// Starts it; `revertrisk_ok: false` makes the model answer 500.
    fn start(revertrisk_ok: bool) -> Result<Self> {
        let calls: Arc<Mutex<BTreeMap<&'static str, usize>>> = Arc::default();
        let follow_ups: Arc<Mutex<Vec<String>>> = Arc::default();
        let counted = calls.clone();
        let asked = follow_ups.clone();
        let url = fake::serve(move |req| {
            let (calls, follow_ups) = (&counted, &asked);
            let path = req.path.clone();
            // `Acorn` is `Squirrel` last edited from an IP address.
            let (name, page) = if path.contains("Acorn") {
                ("Acorn", acorn as fn(&str) -> String)
            } else {
                ("Squirrel", str::to_string as fn(&str) -> String)
            };
            let api = path.starts_with("/w/api.php?") && path.ends_with(&format!("&titles={name}"));
            let follow_up = path.starts_with("/w/api.php?action=query&")
                && !path.contains("titles=")
                && (path.contains("&list=users&") || path.contains("&revids="));
            if follow_up {
                follow_ups.lock().expect("lock").push(path.clone());
            }
            let (kind, status, body) = if req.method == "POST" && path == REVERTRISK_PATH {
                if req.body != REVERTRISK_ASKED.as_bytes() {
                    // The model reads the revision it is asked about.
                    (
                        "revertrisk",
                        400,
                        r#"{"error": "bad request body"}"#.to_string(),
                    )
                } else if revertrisk_ok {
                    ("revertrisk", 200, REVERTRISK.to_string())
                } else {
                    ("revertrisk", 500, r#"{"error": "boom"}"#.to_string())
                }
            } else if path == format!("/w/rest.php/v1/page/{name}/with_html") {
                ("with_html", 200, page(WITH_HTML))
            } else if path == format!("/w/rest.php/v1/page/{name}") {
                ("source", 200, page(SOURCE))
            } else if api && path.contains("rvdir=newer") {
                ("first_revision", 200, page(FIRST))
            } else if api && path.contains("prop=categories") {
                ("page_query", 200, page(ACTION))
            } else if follow_up {
                ("follow_up", 200, follow_up_answer(&path))
            } else {
                ("other", 404, r#"{"httpCode": 404}"#.to_string())
            };
            *calls.lock().expect("lock").entry(kind).or_default() += 1;
            (status, body)
        })?;
        Ok(FakeWiki {
            url,
            calls,
            follow_ups,
        })
    }

    fn calls(&self) -> BTreeMap<&'static str, usize> {
        self.calls.lock().expect("lock").clone()
    }

    fn follow_ups(&self) -> Vec<String> {
        self.follow_ups.lock().expect("lock").clone()
    }
}

#[test]
fn a_live_article_has_editor_history_entities_image_watchers_and_description_in_five_calls()
-> Result<()> {
    let wiki = FakeWiki::start(true)?;
    let (_state, host) = app_on(&wiki, "live-fields", false)?;
    let auth = bearer(&host, "live-reader", "user")?;
    let a = [("authorization", auth.as_str())];

    let r = get(&host.url("/v2/articles/Squirrel"), &a)?;
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = &r.json()?[0];
    assert_eq!(doc["identifier"], 28492);
    assert_eq!(doc["date_created"], "2001-10-09T17:55:09Z");
    assert_eq!(doc["date_modified"], "2023-08-24T01:14:42Z");
    assert_eq!(doc["date_previously_modified"], "2023-08-18T07:13:50Z");
    // The parent's length in characters, not bytes.
    assert_eq!(PARENT_TEXT.len(), 35);
    assert_eq!(
        doc["previous_version"],
        json!({"identifier": 1170965821, "number_of_characters": 31})
    );
    assert_eq!(doc["watchers_count"], 343);
    assert_eq!(doc["description"], "Family of rodents");
    assert_eq!(
        doc["image"],
        json!({"content_url": "https://upload.wikimedia.org/wikipedia/commons/6/68/Sciuridae.jpg",
               "width": 600, "height": 600})
    );
    assert_eq!(
        doc["protection"],
        json!([{"type": "edit", "level": "autoconfirmed", "expiry": "infinity"},
               {"type": "move", "level": "autoconfirmed", "expiry": "infinity"}])
    );
    assert_eq!(
        doc["main_entity"],
        json!({"identifier": "Q9482", "url": "https://www.wikidata.org/entity/Q9482"})
    );
    assert_eq!(
        doc["additional_entities"],
        json!([{"identifier": "P4807", "url": "https://www.wikidata.org/entity/P4807", "aspects": ["C.P1630"]},
               {"identifier": "Q9482", "url": "https://www.wikidata.org/entity/Q9482", "aspects": ["S", "T"]}])
    );
    let version = &doc["version"];
    assert_eq!(version["identifier"], 1171934824);
    // The editor as in WME's own Squirrel document.
    assert_eq!(
        version["editor"],
        json!({"identifier": 28481209, "name": "OAbot", "edit_count": 342731,
               "groups": ["bot", "*", "user", "autoconfirmed"], "is_bot": true,
               "date_started": "2016-06-03T17:03:59Z"})
    );
    assert_eq!(
        version["comment"],
        "[[Wikipedia:OABOT|Open access bot]]: pmc, doi updated in citation with #oabot."
    );
    assert_eq!(version["is_minor_edit"], true);
    assert_eq!(version["tags"], json!(["mw-manual-revert"]));
    assert_eq!(
        version["maintenance_tags"],
        json!({"citation_needed_count": 1, "clarification_needed_count": 1, "update_count": 1})
    );
    assert_eq!(version["has_tag_needs_citation"], true);
    // Revert risk is off by default: no scores, no model call.
    assert!(version.get("scores").is_none());
    assert_eq!(doc["license"][0]["identifier"], "CC-BY-SA-4.0");

    // Five upstream calls for the article, one of each kind, all answered:
    // the editor's record and the parent share the one follow-up query.
    let calls = wiki.calls();
    assert_eq!(
        calls,
        BTreeMap::from([
            ("first_revision", 1),
            ("follow_up", 1),
            ("page_query", 1),
            ("source", 1),
            ("with_html", 1)
        ]),
        "{calls:?}"
    );
    let follow_ups = wiki.follow_ups();
    assert!(
        follow_ups[0].contains("&ususers=OAbot") && follow_ups[0].contains("&revids=1170965821"),
        "{follow_ups:?}"
    );

    // Served again from the store: no further upstream call.
    let r = get(&host.url("/v2/articles/Squirrel"), &a)?;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()?[0]["watchers_count"], 343);
    assert_eq!(wiki.calls().values().sum::<usize>(), 5);
    Ok(())
}

#[test]
fn an_ip_editor_gets_no_user_lookup() -> Result<()> {
    let wiki = FakeWiki::start(true)?;
    let (_state, host) = app_on(&wiki, "live-anon", false)?;
    let auth = bearer(&host, "anon-reader", "user")?;
    let r = get(
        &host.url("/v2/articles/Acorn"),
        &[("authorization", auth.as_str())],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = &r.json()?[0];
    assert_eq!(doc["identifier"], 28493);
    assert_eq!(
        doc["version"]["editor"],
        json!({"name": "203.0.113.7", "is_anonymous": true})
    );
    // The parent is still measured: the follow-up asks for it alone.
    assert_eq!(doc["previous_version"]["number_of_characters"], 31);
    let follow_ups = wiki.follow_ups();
    assert_eq!(follow_ups.len(), 1, "{follow_ups:?}");
    assert!(
        !follow_ups[0].contains("list=users") && follow_ups[0].ends_with("&revids=1170965821"),
        "{follow_ups:?}"
    );
    assert_eq!(wiki.calls().values().sum::<usize>(), 5);
    Ok(())
}

/// Starts the app with the fake wiki as enwiki's upstream (and as the
/// revert-risk model with `revertrisk`).
fn app_on(wiki: &FakeWiki, tag: &str, revertrisk: bool) -> Result<(TempDir, Host)> {
    let state = TempDir::new(tag)?;
    let overrides = format!("{{\"enwiki\":\"{}\"}}", wiki.url);
    let mut builder = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .env("SPIN_VARIABLE_UPSTREAM_OVERRIDES", &overrides)
        .env("SPIN_VARIABLE_UPSTREAM_TIMEOUT_MS", "5000")
        // The model answers at once; the bound only has to outlast a
        // loaded CI machine (the 1 s default did not, once).
        .env("SPIN_VARIABLE_REVERTRISK_TIMEOUT_MS", "10000")
        .state_dir(state.path());
    if revertrisk {
        let model = format!("{}{REVERTRISK_PATH}", wiki.url);
        builder = builder.env("SPIN_VARIABLE_REVERTRISK_URL", &model);
    }
    Ok((state, builder.start()?))
}

#[test]
fn revert_risk_comes_from_lift_wing_when_enabled_and_never_fails_the_answer() -> Result<()> {
    let wiki = FakeWiki::start(true)?;
    let (_state, host) = app_on(&wiki, "revertrisk", true)?;
    let auth = bearer(&host, "risk-reader", "user")?;
    let r = get(
        &host.url("/v2/articles/Squirrel"),
        &[("authorization", auth.as_str())],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()?[0]["version"]["scores"],
        json!({"revertrisk": {"prediction": false, "probability": {"false": 0.8813, "true": 0.1187}}})
    );
    assert_eq!(wiki.calls().get("revertrisk"), Some(&1));
    assert_eq!(wiki.calls().values().sum::<usize>(), 6);

    // A failing model: the article is still served, without scores.
    let broken = FakeWiki::start(false)?;
    let (_state, host) = app_on(&broken, "revertrisk-down", true)?;
    let auth = bearer(&host, "risk-reader", "user")?;
    let r = get(
        &host.url("/v2/articles/Squirrel"),
        &[("authorization", auth.as_str())],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = &r.json()?[0];
    assert_eq!(doc["version"]["identifier"], 1171934824);
    assert!(doc["version"].get("scores").is_none());
    assert_eq!(broken.calls().get("revertrisk"), Some(&1));
    Ok(())
}
