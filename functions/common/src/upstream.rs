//! Fetching one article from its MediaWiki: the REST page with HTML, the
//! REST page source (for the wikitext behind abstracts and structured
//! contents; optional), the Action API query (page facts and the two latest
//! revisions) and the Action API first-revision query (`date_created`;
//! optional) — four requests (at most five per article in all), sent
//! concurrently and joined by the core's
//! `article_from_upstream` — then, when the article has a registered
//! editor or a parent revision, one follow-up Action API query for the
//! editor's record and the parent's text (docs/upstream.md). The whole
//! fetch races a timer so a slow upstream never hangs the request; the
//! follow-up gets what is left of it and, late or failed, only leaves its
//! fields out.

use std::time::Duration;

use futures::StreamExt;
use futures::future::{Either, join4, select};
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{EmptyBody, Request};
use wikiedge_core::Error;
use wikiedge_core::article::revertrisk;
use wikiedge_core::article::schema::Article;
use wikiedge_core::article::transform::ProjectContext;
use wikiedge_core::article::upstream::{
    PageInfo, RestPage, action_api_url, apply_follow_up, article_from_upstream,
    first_revision_timestamp, first_revision_url, follow_up_url, rest_with_html_url,
};

/// The User-Agent Wikimedia asks API clients to send.
const USER_AGENT: &str = concat!(
    "wikiedge/",
    env!("CARGO_PKG_VERSION"),
    " (open Wikimedia Enterprise API implementation)"
);

/// The most bytes read from one upstream answer. The largest Wikipedia
/// pages' HTML is a few MB; anything past this is refused (502) instead of
/// being buffered.
pub const MAX_UPSTREAM_BODY_BYTES: usize = 16 << 20;

/// One GET: the status and body, or a `BadGateway` when it failed to arrive
/// or is larger than [`MAX_UPSTREAM_BODY_BYTES`].
async fn get(url: &str) -> Result<(u16, Vec<u8>), Error> {
    let request = Request::get(url)
        .header("user-agent", USER_AGENT)
        .header("accept", "application/json")
        .body(EmptyBody::new())
        .map_err(|e| unreachable(format!("invalid upstream URL {url}: {e}")))?;
    let response = spin_sdk::http::send(request)
        .await
        .map_err(|e| unreachable(format!("upstream request to {url} failed: {e:?}")))?;
    let status = response.status().as_u16();
    let too_large = || {
        eprintln!(
            "{}: upstream body from {url} is larger than {MAX_UPSTREAM_BODY_BYTES} bytes",
            crate::name()
        );
        Error::BadGateway("the upstream answer is too large".into())
    };
    let declared = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPSTREAM_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let mut stream = response.into_body().stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| unreachable(format!("upstream body from {url} failed: {e:?}")))?;
        if body.len() + chunk.len() > MAX_UPSTREAM_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// A `BadGateway` whose detail (URLs, socket errors) goes to the log only.
fn unreachable(detail: String) -> Error {
    eprintln!("{}: {detail}", crate::name());
    Error::BadGateway("the upstream wiki could not be reached".into())
}

/// Maps a non-200 upstream status to an error; 404 is `NotFound`.
fn check(status: u16, what: &str) -> Result<(), Error> {
    match status {
        200 => Ok(()),
        404 => Err(Error::NotFound("article not found".into())),
        other => Err(Error::BadGateway(format!(
            "upstream {what} answered {other}"
        ))),
    }
}

async fn fetch_unbounded(
    base_url: &str,
    title: &str,
    ctx: &ProjectContext,
) -> Result<Article, Error> {
    let html_url = rest_with_html_url(base_url, title);
    let source_url = html_url.trim_end_matches("/with_html").to_string();
    let action_url = action_api_url(base_url, title);
    let first_url = first_revision_url(base_url, title);
    let (html, source, action, first) = join4(
        get(&html_url),
        get(&source_url),
        get(&action_url),
        get(&first_url),
    )
    .await;
    let (status, body) = html?;
    check(status, "REST page")?;
    let mut rest = RestPage::parse(&body)?;
    if rest.source.is_none() {
        // The source endpoint is best effort: without it the article has
        // HTML but no wikitext (and so no abstract or sections).
        if let Ok((200, body)) = source
            && let Ok(page) = RestPage::parse(&body)
            && page.latest.id == rest.latest.id
        {
            rest.source = page.source;
        }
    }
    let (status, body) = action?;
    check(status, "Action API")?;
    let mut info = PageInfo::parse(&body)?;
    // Best effort too: without it the article has no `date_created`.
    if let Ok((200, body)) = first {
        info.created = first_revision_timestamp(&body);
    }
    article_from_upstream(&rest, &info, ctx)
}

/// Sets `version.scores` from the Lift Wing revert-risk model at `url`
/// (core `article::revertrisk`), within `timeout` (the Spin variable
/// `revertrisk_timeout_ms`, 1 s by default: the article is answered without
/// scores rather than wait longer); on any
/// failure the article stays as it is. One more upstream call per fetched
/// article, made only when the operator enabled it.
pub async fn add_revertrisk(article: &mut Article, url: &str, timeout: Duration) {
    let Some(rev_id) = article.version.as_ref().and_then(|v| v.identifier) else {
        return;
    };
    let lang = article
        .in_language
        .as_ref()
        .map(|l| l.identifier.clone())
        .unwrap_or_default();
    let work = async {
        let body = bytes::Bytes::from(revertrisk::request_body(rev_id, &lang));
        // With its length, the body goes out in one piece rather than in
        // chunks: what the model reads is what it gets.
        let request = Request::post(url)
            .header("user-agent", USER_AGENT)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .body(spin_sdk::http::FullBody::new(body))
            .ok()?;
        let response = spin_sdk::http::send(request).await.ok()?;
        if response.status().as_u16() != 200 {
            return None;
        }
        let body = response.into_body().bytes().await.ok()?;
        revertrisk::scores(&body, rev_id)
    };
    let work = std::pin::pin!(work);
    let timer = std::pin::pin!(spin_sdk::time::sleep(timeout));
    match select(work, timer).await {
        Either::Left((Some(scores), _)) => {
            if let Some(version) = article.version.as_mut() {
                version.scores = Some(scores);
            }
        }
        Either::Left((None, _)) => eprintln!("{}: no revert risk for {rev_id}", crate::name()),
        Either::Right(((), _)) => eprintln!(
            "{}: revert risk for {rev_id} took over {} ms",
            crate::name(),
            timeout.as_millis()
        ),
    }
}

/// The follow-up call (core `follow_up_url`): the editor's edit count,
/// groups and registration and the parent revision's length, within
/// `budget`. Sequential, since the page query names the editor and the
/// parent; best effort, since the article is complete without it.
async fn add_follow_up(article: &mut Article, base_url: &str, budget: Duration) {
    let Some(url) = follow_up_url(base_url, article) else {
        return;
    };
    if budget.is_zero() {
        return;
    }
    let work = std::pin::pin!(get(&url));
    let timer = std::pin::pin!(spin_sdk::time::sleep(budget));
    match select(work, timer).await {
        Either::Left((Ok((200, body)), _)) => apply_follow_up(article, &body),
        Either::Left((Ok((status, _)), _)) => {
            eprintln!("{}: follow-up query answered {status}", crate::name())
        }
        Either::Left((Err(_), _)) => {}
        Either::Right(((), _)) => eprintln!(
            "{}: follow-up query took over {} ms",
            crate::name(),
            budget.as_millis()
        ),
    }
}

/// Fetches an article, giving up after `timeout` with `GatewayTimeout`.
pub async fn fetch(
    base_url: &str,
    title: &str,
    ctx: &ProjectContext,
    timeout: Duration,
) -> Result<Article, Error> {
    let started = std::time::Instant::now();
    let work = std::pin::pin!(fetch_unbounded(base_url, title, ctx));
    let timer = std::pin::pin!(spin_sdk::time::sleep(timeout));
    let mut article = match select(work, timer).await {
        Either::Left((result, _)) => result?,
        Either::Right(((), _)) => {
            return Err(Error::GatewayTimeout(format!(
                "upstream did not answer within {} ms",
                timeout.as_millis()
            )));
        }
    };
    let left = timeout.saturating_sub(started.elapsed());
    add_follow_up(&mut article, base_url, left).await;
    Ok(article)
}
