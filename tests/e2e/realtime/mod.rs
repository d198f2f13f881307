//! The Realtime API (`functions/realtime`) through the real host and the
//! real auth, quota and metering components: the real EventStreams fixture
//! events ingested against a mock upstream wiki, then streamed back over
//! SSE and NDJSON with filters, fields, parts, offsets and resumption.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Result, ensure};
use serde_json::{Value, json};
use wikiedge_tests::{Host, Resp, fake, post, raw, repo_root};

use crate::{ADMIN_KEY, BIN};

mod batches;
mod follow;
mod ingest;
mod stream;

/// A mock MediaWiki on loopback that serves every title: pages named in
/// the table get their id and revision from it, any other title a
/// deterministic page. It counts the requests it answers.
pub(crate) struct Wiki {
    pub(crate) url: String,
    pub(crate) hits: Arc<AtomicUsize>,
}

/// The fixture pages: key-form title -> (page id, latest revision id).
const PAGES: &[(&str, u64, u64)] = &[
    ("Varvara_Prohorova", 77_777_155, 1_245_305_770),
    (
        "File:Iris_foetidissima_fruit_(05).jpg",
        114_491_269,
        934_984_984,
    ),
    (
        "File:Jacobaea_vulgaris_-_Jakobs-Kreuzkraut.jpg",
        47_011_539,
        930_818_273,
    ),
    ("Q235989", 330_275, 686_140),
    ("Property:P115", 330_290, 686_147),
];

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn page_of(key: &str) -> (u64, u64) {
    PAGES
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, id, rev)| (*id, *rev))
        .unwrap_or_else(|| {
            let id = key
                .bytes()
                .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
                % 1_000_000_000;
            (id, 42)
        })
}

/// The HTML text of a `Noise_*` page: large enough that a few dozen make
/// a batch bigger than the socket buffers between a server and a client.
pub(crate) const NOISE_BYTES: usize = 256 * 1024;

/// `len` characters of deterministic noise seeded by `key`, drawn from 64
/// characters that need no escaping in HTML or JSON: it compresses to about
/// three quarters, so a batch of such pages stays large as a tar.gz.
fn noise(key: &str, len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.";
    let mut x = key.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    }) | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(ALPHABET[(x >> 58) as usize])
        })
        .collect()
}

fn wiki_answer(path: &str) -> String {
    let rest = |key: &str, with_html: bool| {
        let (id, rev) = page_of(key);
        let title = key.replace('_', " ");
        let mut page = json!({"id": id, "key": key, "title": title,
            "latest": {"id": rev, "timestamp": "2024-10-04T15:20:41Z"},
            "content_model": "wikitext",
            "license": {"url": "https://creativecommons.org/licenses/by-sa/4.0/", "title": "CC BY-SA 4.0"}});
        if with_html {
            let text = match key.strip_prefix("Noise_") {
                Some(_) => noise(key, NOISE_BYTES),
                None => format!("{title} is a page."),
            };
            page["html"] = json!(format!("<p>{text}</p>"));
        } else {
            page["source"] = json!(format!("'''{title}''' is a page."));
        }
        page.to_string()
    };
    if let Some(key) = path
        .strip_prefix("/w/rest.php/v1/page/")
        .and_then(|p| p.strip_suffix("/with_html"))
    {
        return rest(&percent_decode(key), true);
    }
    if let Some(key) = path.strip_prefix("/w/rest.php/v1/page/") {
        return rest(&percent_decode(key), false);
    }
    let key = path
        .split("titles=")
        .nth(1)
        .map(percent_decode)
        .unwrap_or_default();
    let (id, rev) = page_of(&key);
    json!({"batchcomplete": true, "query": {"pages": [{"pageid": id, "ns": 0,
        "title": key.replace('_', " "), "pagelanguage": "en", "lastrevid": rev}]}})
    .to_string()
}

impl Wiki {
    pub(crate) fn start() -> Result<Self> {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let url = fake::serve(move |req| {
            counter.fetch_add(1, Ordering::SeqCst);
            (200, wiki_answer(&req.path))
        })?;
        Ok(Wiki { url, hits })
    }

    pub(crate) fn overrides(&self) -> String {
        json!({"enwiki": self.url, "commonswiki": self.url, "testwikidatawiki": self.url})
            .to_string()
    }
}

/// Starts the app with the mock wiki as every fixture project's upstream.
pub(crate) fn app(
    wiki: &Wiki,
    max_connection_seconds: &str,
    extra: &[(&str, &str)],
) -> Result<Host> {
    let mut builder = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .env("SPIN_VARIABLE_UPSTREAM_OVERRIDES", &wiki.overrides())
        .env(
            "SPIN_VARIABLE_REALTIME_MAX_CONNECTION_SECONDS",
            max_connection_seconds,
        )
        .env("SPIN_VARIABLE_REALTIME_POLL_MS", "20")
        .arg("--quiet");
    for (k, v) in extra {
        builder = builder.env(k, v);
    }
    builder.start()
}

/// Creates an account on `plan` and returns its `Authorization` value.
pub(crate) fn account(host: &Host, username: &str, plan: &str) -> Result<String> {
    crate::common::account(host, username, json!({"plan": plan}))
}

pub(crate) fn ingest(host: &Host, body: &[u8]) -> Result<Resp> {
    post(
        &host.url("/v1/admin/ingest"),
        &[("x-admin-key", ADMIN_KEY)],
        body,
    )
}

/// Every fixture event, as NDJSON in the order they happened.
fn fixture_ndjson(fixtures: &std::path::Path) -> Result<String> {
    let mut events = Vec::new();
    let dir = fixtures.join("eventstreams/events");
    for entry in std::fs::read_dir(&dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        match serde_json::from_str::<Value>(&text)? {
            Value::Array(items) => events.extend(items),
            other => events.push(other),
        }
    }
    let dt = |e: &Value| {
        e.pointer("/meta/dt")
            .or_else(|| e.pointer("/data/meta/dt"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    events.sort_by_key(dt);
    Ok(events
        .iter()
        .map(|e| format!("{e}\n"))
        .collect::<Vec<_>>()
        .concat())
}

/// One open stream: status, headers and the body reader. HTTP/1.0, so the
/// body ends when the server closes the connection.
pub(crate) struct Stream {
    pub(crate) status: u16,
    pub(crate) headers: BTreeMap<String, String>,
    reader: BufReader<TcpStream>,
}

pub(crate) fn open(
    host: &Host,
    path: &str,
    auth: &str,
    extra: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Stream> {
    let mut headers = vec![("authorization", auth)];
    headers.extend_from_slice(extra);
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let method = if body.is_some() { "POST" } else { "GET" };
    let raw = raw::open(
        host,
        method,
        path,
        "HTTP/1.0",
        &headers,
        body.map(str::as_bytes),
    )?;
    Ok(Stream {
        status: raw.status,
        headers: raw.headers,
        reader: raw.reader,
    })
}

/// One SSE event as received.
#[derive(Debug, Clone)]
pub(crate) struct SseEvent {
    pub(crate) id: String,
    pub(crate) data: Value,
}

impl Stream {
    /// Reads SSE events until `limit` events or the end of the stream.
    /// Returns them and the last id seen (id-only blocks included).
    pub(crate) fn sse(&mut self, limit: usize) -> Result<(Vec<SseEvent>, Option<String>)> {
        let mut events = Vec::new();
        let mut last_id = None;
        let mut parser = wikiedge_core::sse::Parser::new();
        let mut line = String::new();
        while events.len() < limit {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                break;
            }
            let Some(block) = parser.line(&line) else {
                continue;
            };
            if let Some(id) = block.id {
                last_id = Some(id.clone());
                if let Some(data) = block.data.filter(|d| !d.is_empty()) {
                    events.push(SseEvent {
                        id,
                        data: serde_json::from_str(&data)?,
                    });
                }
            }
        }
        Ok((events, last_id))
    }

    /// Reads the whole body as NDJSON.
    pub(crate) fn ndjson(mut self) -> Result<Vec<Value>> {
        let mut text = String::new();
        self.reader.read_to_string(&mut text)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Ok(serde_json::from_str(l)?))
            .collect()
    }

    pub(crate) fn error(mut self) -> Result<(u16, Value)> {
        let mut text = String::new();
        self.reader.read_to_string(&mut text)?;
        Ok((self.status, serde_json::from_str(&text)?))
    }
}

/// Streams everything from the start of the log as NDJSON (one connection).
fn all_ndjson(host: &Host, auth: &str, query: &str) -> Result<Vec<Value>> {
    let path = if query.is_empty() {
        "/realtime/v2/articles?since=1970-01-01T00:00:00Z".to_string()
    } else {
        format!("/realtime/v2/articles?since=1970-01-01T00:00:00Z&{query}")
    };
    let stream = open(
        host,
        &path,
        auth,
        &[("accept", "application/x-ndjson")],
        None,
    )?;
    ensure!(stream.status == 200, "status {}", stream.status);
    stream.ndjson()
}

fn by_type(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["event"]["type"].as_str().unwrap_or("").to_string(),
                e["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn url_encode(text: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

/// A page-change event for a synthetic page.
pub(crate) fn synthetic_event(n: usize, page: usize) -> Value {
    json!({
        "$schema": "/mediawiki/page/change/1.2.0",
        "changelog_kind": "update",
        "page_change_kind": "edit",
        "dt": "2024-10-07T19:33:46Z",
        "wiki_id": "enwiki",
        "page": {"page_id": 1000 + page, "page_title": format!("Page_{page}"), "namespace_id": 0},
        "revision": {"rev_id": 5000 + n, "rev_dt": "2024-10-07T19:33:46Z",
            "is_content_visible": true, "is_editor_visible": true, "is_comment_visible": true,
            "comment": format!("edit {n}")},
        "meta": {"id": format!("synthetic-{n:05}"), "dt": "2024-10-07T19:33:46Z",
            "domain": "en.wikipedia.org", "stream": "mediawiki.page_change.v1"}
    })
}

pub(crate) fn ingest_synthetic(host: &Host, range: std::ops::Range<usize>) -> Result<Vec<Instant>> {
    let body: String = range
        .clone()
        .map(|n| format!("{}\n", synthetic_event(n, n % 37)))
        .collect();
    let sent = Instant::now();
    let r = ingest(host, body.as_bytes())?;
    ensure!(r.status == 200, "ingest: {}", r.text());
    ensure!(r.json()?["published"] == range.len(), "{}", r.text());
    Ok(vec![sent; range.len()])
}

/// The single file of a one-file tar.gz: its name and content.
pub(crate) fn untar_gz(bytes: &[u8]) -> Result<(String, Vec<u8>)> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut tar)?;
    ensure!(tar.len() >= 1024, "archive too short");
    let name = String::from_utf8_lossy(&tar[..100])
        .trim_end_matches('\0')
        .to_string();
    let size_text = String::from_utf8_lossy(&tar[124..135]).to_string();
    let size = usize::from_str_radix(size_text.trim_matches(|c: char| c == '\0' || c == ' '), 8)?;
    Ok((name, tar[512..512 + size].to_vec()))
}

/// Opens a stream on a raw connection and returns it with its status line,
/// leaving the body unread.
pub(crate) fn open_raw_stream(host: &Host, auth: &str) -> Result<(TcpStream, String)> {
    wikiedge_tests::get_head_only(host, "/realtime/v2/articles", auth)
}
