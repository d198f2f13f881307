//! The On-demand API (`functions/articles`) through the real host and the
//! real auth, quota and metering components: articles imported from the
//! real sample dump, articles fetched from a mock upstream MediaWiki, and
//! the metadata routes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use wikiedge_cli::import::{ImportArgs, run as import};
use wikiedge_tests::{Host, TempDir, fake, fixtures_or_skip, get, post, repo_root};

use crate::{ADMIN_KEY, BIN};

/// Creates an account and returns an `Authorization` header value for it.
pub fn bearer(host: &Host, username: &str) -> Result<String> {
    crate::common::account(host, username, serde_json::json!({}))
}

/// Starts the app on a state dir holding the imported real 206-page sample
/// dump of the fixtures (`None`, after saying so, without the fixtures).
pub fn app_with_sample(env: &[(&str, &str)]) -> Result<Option<(TempDir, Host)>> {
    let Some(fixtures) = fixtures_or_skip() else {
        return Ok(None);
    };
    let state = TempDir::new("articles")?;
    let summary = import(
        ImportArgs::new(
            fixtures.join("dumps/enwiki-sample-206-pages.xml.bz2"),
            Some("enwiki".into()),
        )
        .with_state_dir(state.path()),
    )?;
    assert_eq!(
        (summary.pages, summary.articles, summary.redirects),
        (206, 106, 100)
    );
    let mut builder = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .state_dir(state.path());
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    let host = builder.start()?;
    Ok(Some((state, host)))
}

#[test]
fn imported_articles_are_served_with_etag_quota_headers_and_metering() -> Result<()> {
    let Some((_state, host)) = app_with_sample(&[])? else {
        return Ok(());
    };
    let auth = bearer(&host, "reader")?;
    let auth = auth.as_str();

    let r = get(&host.url("/v2/articles/Anarchism"), &[])?;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()?["status"], 401);

    let r = get(
        &host.url("/v2/articles/Anarchism"),
        &[("authorization", auth)],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("etag"), Some("\"716551092\""));
    assert!(r.header("ratelimit").is_some() && r.header("ratelimit-policy").is_some());
    // Sent with its length, not in chunks.
    let length = r.body.len().to_string();
    assert_eq!(r.header("content-length"), Some(length.as_str()));
    assert_eq!(r.header("transfer-encoding"), None);
    let articles = r.json()?;
    assert_eq!(articles.as_array().map(Vec::len), Some(1));
    assert_eq!(articles[0]["name"], "Anarchism");
    assert_eq!(articles[0]["is_part_of"]["identifier"], "enwiki");
    assert!(
        articles[0]["abstract"]
            .as_str()
            .unwrap_or("")
            .starts_with("Anarchism is a political philosophy")
    );

    // A matching If-None-Match is a 304 with no body and costs no quota.
    let before = r.header("ratelimit").unwrap_or("").to_string();
    let r = get(
        &host.url("/v2/articles/Anarchism"),
        &[("authorization", auth), ("if-none-match", "\"716551092\"")],
    )?;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), None);
    // The monthly item's remaining count must not move; its `t` (seconds
    // to the reset) may tick down between the two requests.
    let monthly = |h: &str| {
        let item = h.split(',').next().unwrap_or("");
        let field = |name: &str| {
            item.split(';')
                .find_map(|p| p.trim().strip_prefix(name))
                .and_then(|v| v.parse::<u64>().ok())
        };
        (
            item.split(';').next().unwrap_or("").to_string(),
            field("r="),
            field("t="),
        )
    };
    let (name_before, remaining_before, reset_before) = monthly(&before);
    let (name_after, remaining_after, reset_after) = monthly(r.header("ratelimit").unwrap_or(""));
    assert_eq!(
        (name_after.as_str(), remaining_after),
        (name_before.as_str(), remaining_before)
    );
    assert!(remaining_before.is_some(), "{before}");
    assert!(
        matches!((reset_before, reset_after), (Some(b), Some(a)) if a <= b && b - a <= 1),
        "{before} then {:?}",
        r.header("ratelimit")
    );

    // Lower-case first letter, fields and NDJSON.
    let r = get(
        &host.url("/v2/articles/anarchism?fields=name,version.identifier"),
        &[("authorization", auth), ("accept", "application/x-ndjson")],
    )?;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(
        r.text(),
        "{\"name\":\"Anarchism\",\"version\":{\"identifier\":716551092}}\n"
    );

    // POST with a project filter; redirects folded into their target.
    let body = br#"{"fields": ["name", "redirects.name"], "filters": [{"field": "is_part_of.identifier", "value": "enwiki"}]}"#;
    let r = post(
        &host.url("/v2/articles/Ayn_Rand"),
        &[("authorization", auth)],
        body,
    )?;
    assert_eq!(
        r.json()?,
        serde_json::json!([{"name": "Ayn Rand", "redirects": [{"name": "AynRand"}]}])
    );

    // Structured contents: sections from the wikitext.
    let r = get(
        &host.url("/v2/structured-contents/Anarchism?fields=article_sections.name"),
        &[("authorization", auth)],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()?[0]["article_sections"][1]["name"],
        "Etymology and terminology"
    );

    // Validation errors are 422 with the WME body.
    let r = post(
        &host.url("/v2/articles/Anarchism"),
        &[("authorization", auth)],
        br#"{"limit": 11}"#,
    )?;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()?,
        serde_json::json!({"status": 422, "message": "limit must be between 1 and 10"})
    );

    // Usage: three admitted on-demand calls (the 304 and the 422 are free), one structured.
    let usage = get(&host.url("/v1/usage"), &[("authorization", auth)])?.json()?;
    let count = |product: &str| {
        usage["usage"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|row| row["product"] == product)
            .map(|row| row["admitted"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(
        (count("ondemand"), count("structured-contents")),
        (3, 1),
        "{usage}"
    );
    Ok(())
}

/// A mock MediaWiki serving one page, `Squirrel`, that can be switched off.
/// A mock upstream MediaWiki on loopback serving the page "Squirrel".
pub struct MockWiki {
    /// Its base URL.
    pub url: String,
    down: Arc<AtomicBool>,
    /// Requests it has received.
    pub hits: Arc<AtomicUsize>,
}

const REST: &str = r#"{"id": 28492, "key": "Squirrel", "title": "Squirrel",
    "latest": {"id": 1171934824, "timestamp": "2023-08-24T01:14:42Z"}, "content_model": "wikitext",
    "license": {"url": "https://creativecommons.org/licenses/by-sa/4.0/", "title": "CC BY-SA 4.0"},
    "html": "<p>Squirrels are members of the family Sciuridae.</p>"}"#;
const SOURCE: &str = r#"{"id": 28492, "key": "Squirrel", "title": "Squirrel",
    "latest": {"id": 1171934824, "timestamp": "2023-08-24T01:14:42Z"}, "content_model": "wikitext",
    "source": "'''Squirrels''' are members of the family [[Sciuridae]].\n\n== Etymology ==\nFrom Greek."}"#;
const ACTION: &str = r#"{"batchcomplete": true, "query": {"pages": [{"pageid": 28492, "ns": 0,
    "title": "Squirrel", "pagelanguage": "en", "lastrevid": 1171934824,
    "categories": [{"ns": 14, "title": "Category:Sciuridae"}],
    "redirects": [{"pageid": 63522, "ns": 0, "title": "Squirrels"}],
    "pageprops": {"wikibase_item": "Q9482"}}]}}"#;

impl MockWiki {
    /// Start it.
    pub fn start() -> Result<Self> {
        let down = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let (d, h) = (down.clone(), hits.clone());
        let url = fake::serve(move |req| {
            let path = req.path.as_str();
            h.fetch_add(1, Ordering::SeqCst);
            if d.load(Ordering::SeqCst) {
                // Slower than any timeout the test configures.
                std::thread::sleep(Duration::from_secs(5));
            }
            let (status, body) = if path == "/w/rest.php/v1/page/Squirrel/with_html" {
                (200, REST)
            } else if path == "/w/rest.php/v1/page/Squirrel" {
                (200, SOURCE)
            } else if path.starts_with("/w/api.php?") && path.ends_with("titles=Squirrel") {
                (200, ACTION)
            } else if path.starts_with("/w/api.php?") {
                (
                    200,
                    r#"{"query": {"pages": [{"ns": 0, "title": "X", "missing": true}]}}"#,
                )
            } else {
                (404, r#"{"httpCode": 404}"#)
            };
            (status, body.to_string())
        })?;
        Ok(MockWiki { url, down, hits })
    }
}

#[test]
fn uncached_articles_come_from_upstream_and_stale_copies_survive_an_outage() -> Result<()> {
    let wiki = MockWiki::start()?;
    let overrides = format!("{{\"enwiki\":\"{}\"}}", wiki.url);
    let Some((_state, host)) = app_with_sample(&[
        ("SPIN_VARIABLE_UPSTREAM_OVERRIDES", &overrides),
        ("SPIN_VARIABLE_ARTICLE_MAX_AGE", "1"),
        ("SPIN_VARIABLE_UPSTREAM_TIMEOUT_MS", "500"),
    ])?
    else {
        return Ok(());
    };
    let auth = bearer(&host, "fetcher")?;
    let auth = auth.as_str();

    let r = get(
        &host.url("/v2/articles/Squirrel"),
        &[("authorization", auth)],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("etag"), Some("\"1171934824\""));
    assert!(r.header("warning").is_none());
    let article = &r.json()?[0];
    assert_eq!(article["url"], "https://en.wikipedia.org/wiki/Squirrel");
    assert_eq!(article["main_entity"]["identifier"], "Q9482");
    assert_eq!(article["redirects"][0]["name"], "Squirrels");
    assert!(
        article["abstract"]
            .as_str()
            .unwrap_or("")
            .starts_with("Squirrels are members")
    );

    // Unknown upstream: 404 with the WME body.
    let r = get(
        &host.url("/v2/articles/No_such_page"),
        &[("authorization", auth)],
    )?;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()?["status"], 404);

    // Upstream goes slow: the stale copy is served within the time bound.
    wiki.down.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2100));
    let started = std::time::Instant::now();
    let r = get(
        &host.url("/v2/articles/Squirrel"),
        &[("authorization", auth)],
    )?;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("warning"), Some("110 - \"Response is Stale\""));
    assert_eq!(r.json()?[0]["name"], "Squirrel");

    // Nothing cached and upstream slow: 504, never a hang.
    let r = get(
        &host.url("/v2/articles/Other_page"),
        &[("authorization", auth)],
    )?;
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(wiki.hits.load(Ordering::SeqCst) > 3);
    Ok(())
}

#[test]
fn metadata_routes_need_a_token_and_serve_the_site_matrix() -> Result<()> {
    let Some((_state, host)) = app_with_sample(&[])? else {
        return Ok(());
    };
    assert_eq!(get(&host.url("/v2/projects"), &[])?.status, 401);
    let auth = bearer(&host, "meta")?;
    let auth = auth.as_str();
    let r = get(&host.url("/v2/projects/enwiki"), &[("authorization", auth)])?;
    assert_eq!(r.status, 200);
    assert!(r.header("ratelimit").is_some());
    let project = r.json()?;
    assert_eq!(
        (project["identifier"].as_str(), project["url"].as_str()),
        (Some("enwiki"), Some("https://en.wikipedia.org"))
    );
    let codes = get(
        &host.url("/v2/codes?fields=identifier"),
        &[("authorization", auth)],
    )?
    .json()?;
    assert_eq!(codes[0], serde_json::json!({"identifier": "wiki"}));
    let r = get(&host.url("/v2/namespaces/14"), &[("authorization", auth)])?;
    assert_eq!(r.json()?["name"], "Category");
    let r = get(
        &host.url("/v2/languages/zz-none"),
        &[("authorization", auth)],
    )?;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()?["status"], 404);
    // Metadata is free: the on-demand allowance is untouched.
    let usage = get(&host.url("/v1/usage"), &[("authorization", auth)])?.json()?;
    assert!(
        usage["usage"].as_array().is_none_or(|rows| rows.is_empty()),
        "{usage}"
    );
    Ok(())
}

/// Spin answers an unclaimed path with an empty 404; the app's own `/...`
/// route (the `fallback` component) gives WME clients the JSON body every
/// other error has, under `spin up` and `wikiedge up` alike.
#[test]
fn unknown_paths_get_the_apps_json_404() -> Result<()> {
    let state = TempDir::new("fallback")?;
    let host = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .state_dir(state.path())
        .start()?;
    for path in ["/nothing/here", "/v3/articles/Anarchism", "/"] {
        let r = get(&host.url(path), &[])?;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        assert_eq!(
            r.json()?,
            serde_json::json!({"status": 404, "message": "Not found"})
        );
    }
    // Claimed routes still reach their components.
    assert_eq!(get(&host.url("/v2/articles/Anarchism"), &[])?.status, 401);
    Ok(())
}

/// On the project's own sample dump (no downloaded data): import, then
/// On-demand and Structured Contents answer from it.
#[test]
fn the_projects_own_sample_dump_is_imported_and_served() -> Result<()> {
    let state = TempDir::new("articles-own")?;
    let dump = wikiedge_tests::sample_dump(BIN, state.path(), 0)?;
    let mut args = ImportArgs::new(dump, None).with_state_dir(state.path());
    args.progress = false;
    let summary = import(args)?;
    let expected = wikiedge_cli::sample::counts(0);
    assert_eq!(
        (
            summary.pages,
            summary.articles,
            summary.redirects,
            summary.skipped
        ),
        (
            expected.pages,
            expected.articles,
            expected.redirects,
            expected.skipped
        )
    );
    assert_eq!(
        (summary.articles, summary.redirects, summary.skipped),
        (6, 3, 1)
    );
    let host = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .state_dir(state.path())
        .start()?;
    let auth = bearer(&host, "own-sample")?;
    let h = [("authorization", auth.as_str())];

    let r = get(&host.url("/v2/articles/Anarchism"), &h)?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("etag"), Some("\"9012\""));
    let a = &r.json()?[0];
    assert_eq!(a["name"], "Anarchism");
    assert_eq!(a["identifier"], 12);
    assert_eq!(a["is_part_of"]["identifier"], "enwiki");
    assert!(
        a["abstract"]
            .as_str()
            .unwrap_or("")
            .starts_with("Anarchism is a political philosophy"),
        "{}",
        a["abstract"]
    );
    // A redirect before its target and one after are both folded in.
    let mut redirects: Vec<&str> = a["redirects"]
        .as_array()
        .context("redirects")?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    redirects.sort_unstable();
    assert_eq!(redirects, ["Anarchist", "Anarchy"]);

    let r = get(
        &host.url("/v2/structured-contents/Anarchism?fields=article_sections.name"),
        &h,
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json()?;
    let sections: Vec<&str> = body[0]["article_sections"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(sections.contains(&"History"), "{sections:?}");

    let pear = get(
        &host.url("/v2/articles/Pear?fields=name,version.identifier"),
        &h,
    )?;
    assert_eq!(
        pear.json()?,
        serde_json::json!([{"name": "Pear", "version": {"identifier": 9400}}])
    );
    Ok(())
}
