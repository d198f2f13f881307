//! The Realtime API (`functions/realtime`) through the real host and the
//! real auth, quota and metering components: the real EventStreams fixture
//! events ingested against a mock upstream wiki, then streamed back over
//! SSE and NDJSON with filters, fields, parts, offsets and resumption.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use wikiedge_tests::{Host, Resp, fixtures_or_skip, get, post, repo_root};

use crate::{ADMIN_KEY, BIN};

/// A mock MediaWiki on loopback that serves every title: pages named in
/// the table get their id and revision from it, any other title a
/// deterministic page. It counts the requests it answers.
pub(crate) struct Wiki {
    pub(crate) url: String,
    hits: Arc<AtomicUsize>,
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

fn wiki_answer(path: &str) -> String {
    let rest = |key: &str, with_html: bool| {
        let (id, rev) = page_of(key);
        let title = key.replace('_', " ");
        let mut page = json!({"id": id, "key": key, "title": title,
            "latest": {"id": rev, "timestamp": "2024-10-04T15:20:41Z"},
            "content_model": "wikitext",
            "license": {"url": "https://creativecommons.org/licenses/by-sa/4.0/", "title": "CC BY-SA 4.0"}});
        if with_html {
            page["html"] = json!(format!("<p>{title} is a page.</p>"));
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
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let hits = counter.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    let n = stream.read(&mut buf).unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    hits.fetch_add(1, Ordering::SeqCst);
                    let body = wiki_answer(&path);
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Ok(Wiki { url, hits })
    }

    pub(crate) fn overrides(&self) -> String {
        json!({"enwiki": self.url, "commonswiki": self.url, "testwikidatawiki": self.url})
            .to_string()
    }
}

/// Starts the app with the mock wiki as every fixture project's upstream.
fn app(wiki: &Wiki, max_connection_seconds: &str, extra: &[(&str, &str)]) -> Result<Host> {
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
    let password = "correct horse battery staple";
    let body = json!({"username": username, "password": password, "plan": plan}).to_string();
    let created = post(
        &host.url("/v1/admin/accounts"),
        &[
            ("x-admin-key", ADMIN_KEY),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )?;
    ensure!(created.status == 201, "create account: {}", created.text());
    let login = json!({"username": username, "password": password}).to_string();
    let login = post(
        &host.url("/v1/login"),
        &[("content-type", "application/json")],
        login.as_bytes(),
    )?;
    let token = login.json()?["access_token"]
        .as_str()
        .context("access_token")?
        .to_string();
    Ok(format!("Bearer {token}"))
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
struct Stream {
    status: u16,
    headers: BTreeMap<String, String>,
    reader: BufReader<TcpStream>,
}

fn open(
    host: &Host,
    path: &str,
    auth: &str,
    extra: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Stream> {
    let addr = host
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut tcp = TcpStream::connect(&addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let method = if body.is_some() { "POST" } else { "GET" };
    let mut head = format!("{method} {path} HTTP/1.0\r\nhost: {addr}\r\nauthorization: {auth}\r\n");
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())?;
    if let Some(body) = body {
        tcp.write_all(body.as_bytes())?;
    }
    let mut reader = BufReader::new(tcp);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .context("status line")?
        .parse()?;
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Ok(Stream {
        status,
        headers,
        reader,
    })
}

/// One SSE event as received.
#[derive(Debug, Clone)]
struct SseEvent {
    id: String,
    data: Value,
}

impl Stream {
    /// Reads SSE events until `limit` events or the end of the stream.
    /// Returns them and the last id seen (id-only blocks included).
    fn sse(&mut self, limit: usize) -> Result<(Vec<SseEvent>, Option<String>)> {
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
    fn ndjson(mut self) -> Result<Vec<Value>> {
        let mut text = String::new();
        self.reader.read_to_string(&mut text)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Ok(serde_json::from_str(l)?))
            .collect()
    }

    fn error(mut self) -> Result<(u16, Value)> {
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

#[test]
fn replayed_fixture_events_are_published_once_with_full_articles() -> Result<()> {
    let Some(fixtures) = fixtures_or_skip() else {
        return Ok(());
    };
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "stream-reader", "paid")?;
    let body = fixture_ndjson(&fixtures)?;

    // Ingest needs an admin or the ingest key.
    let r = post(&host.url("/v1/admin/ingest"), &[], body.as_bytes())?;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()?["status"], 401);
    let r = post(
        &host.url("/v1/admin/ingest"),
        &[("authorization", &auth)],
        body.as_bytes(),
    )?;
    assert_eq!(r.status, 403);
    let r = ingest(&host, b"{not json")?;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()?["status"], 422);

    let r = ingest(&host, body.as_bytes())?;
    assert_eq!(r.status, 200, "{}", r.text());
    let report = r.json()?;
    // 10 page changes, one of them suppressed; the other fixture files
    // are other schemas or lack an event id.
    assert_eq!(report["published"], 9, "{report}");
    assert_eq!(report["duplicates"], 0);
    let skipped: Vec<&str> = report["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["status"] == "skipped")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(skipped.contains(&"suppressed content"), "{skipped:?}");

    // Ingest is idempotent per event id.
    let again = ingest(&host, body.as_bytes())?.json()?;
    assert_eq!(
        (again["published"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(9))
    );

    let events = all_ndjson(&host, &auth, "")?;
    assert_eq!(events.len(), 9);
    let mut types = by_type(&events);
    types.sort();
    assert_eq!(
        types,
        [
            ("create", "Q235989"),
            ("create", "Q235989"),
            ("delete", "Q235989"),
            ("move", "File:Jacobaea vulgaris - Jakobs-Kreuzkraut.jpg"),
            ("move", "Varvara Prohorova"),
            ("update", "File:Iris foetidissima fruit (05).jpg"),
            ("update", "Property:P115"),
            ("update", "Q235989"),
            ("visibility-change", "Q235989"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    // One page's events stay in order in its partition.
    let q: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "Q235989")
        .filter_map(|e| e["event"]["type"].as_str())
        .collect();
    assert_eq!(
        q,
        ["create", "update", "delete", "create", "visibility-change"]
    );

    let find = |name: &str, kind: &str| {
        events
            .iter()
            .find(|e| e["name"] == name && e["event"]["type"] == kind)
            .cloned()
            .unwrap_or_default()
    };
    let moved = find("Varvara Prohorova", "move");
    assert_eq!(moved["identifier"], 77_777_155);
    assert_eq!(moved["version"]["identifier"], 1_245_305_770);
    assert_eq!(moved["version"]["editor"]["name"], "Svidrigayloff");
    assert_eq!(
        moved["url"],
        "https://en.wikipedia.org/wiki/Varvara_Prohorova"
    );
    assert_eq!(moved["is_part_of"]["identifier"], "enwiki");
    assert_eq!(
        moved["article_body"]["html"],
        "<p>Varvara Prohorova is a page.</p>"
    );
    assert_eq!(
        moved["event"]["identifier"],
        "407f0254-d175-4fab-a299-a513498cbe31"
    );
    assert_eq!(moved["event"]["date_created"], "2024-09-12T06:58:34Z");
    assert!(moved["event"]["date_published"].is_string());
    assert!(moved["event"]["partition"].is_u64() && moved["event"]["offset"].is_u64());

    let file = find("File:Iris foetidissima fruit (05).jpg", "update");
    assert_eq!(file["is_part_of"]["identifier"], "commonswiki");
    let url = file["image"]["content_url"].as_str().unwrap_or("");
    assert!(
        url.starts_with("https://upload.wikimedia.org/wikipedia/commons/")
            && url.ends_with("/Iris_foetidissima_fruit_(05).jpg"),
        "{url}"
    );

    let deleted = find("Q235989", "delete");
    assert!(deleted.get("article_body").is_none(), "{deleted}");
    assert_eq!(deleted["identifier"], 330_275);
    let hidden = find("Q235989", "visibility-change");
    assert_eq!(hidden["visibility"]["comment"], false);
    assert!(hidden["version"].get("comment").is_none(), "{hidden}");

    // The article store was refreshed: On-demand serves it without upstream.
    let before = wiki.hits.load(Ordering::SeqCst);
    let r = get(
        &host.url("/v2/articles/Varvara_Prohorova"),
        &[("authorization", &auth)],
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    let stored = &r.json()?[0];
    assert_eq!(stored["version"]["identifier"], 1_245_305_770);
    assert_eq!(wiki.hits.load(Ordering::SeqCst), before);
    // The stored copy carries what the event knew and the fake wiki did
    // not say (its answers have no revisions): editor details and event.
    assert_eq!(stored["version"]["editor"], moved["version"]["editor"]);
    assert_eq!(stored["version"]["editor"]["name"], "Svidrigayloff");
    assert!(stored["version"]["editor"]["groups"].is_array(), "{stored}");
    assert_eq!(stored["event"]["identifier"], moved["event"]["identifier"]);
    assert_eq!(stored["event"]["type"], "move");
    assert!(stored["event"].get("partition").is_none());
    Ok(())
}

#[test]
fn filters_fields_parts_and_offsets_select_exactly_what_they_say() -> Result<()> {
    let Some(fixtures) = fixtures_or_skip() else {
        return Ok(());
    };
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "selector", "paid")?;
    let report = ingest(&host, fixture_ndjson(&fixtures)?.as_bytes())?.json()?;
    let published: Vec<&Value> = report["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["status"] == "published")
        .collect();
    assert_eq!(published.len(), 9);

    // filters: on the event type and on the project.
    let filters = |f: Value| format!("filters={}", url_encode(&f.to_string()));
    let deletes = all_ndjson(
        &host,
        &auth,
        &filters(json!([{"field": "event.type", "value": "delete"}])),
    )?;
    assert_eq!(
        by_type(&deletes),
        [("delete".to_string(), "Q235989".to_string())]
    );
    let enwiki = all_ndjson(
        &host,
        &auth,
        &filters(json!([{"field": "is_part_of.identifier", "value": "enwiki"}])),
    )?;
    assert_eq!(
        by_type(&enwiki),
        [("move".to_string(), "Varvara Prohorova".to_string())]
    );

    // fields: exactly the listed paths; objects need a wildcard.
    let named = all_ndjson(
        &host,
        &auth,
        &format!(
            "fields=name,event.type&{}",
            filters(json!([{"field": "is_part_of.identifier", "value": "enwiki"}]))
        ),
    )?;
    assert_eq!(
        named,
        [json!({"name": "Varvara Prohorova", "event": {"type": "move"}})]
    );
    let versions = all_ndjson(&host, &auth, "fields=version.*")?;
    assert_eq!(versions.len(), 9);
    assert!(versions.iter().all(|v| {
        v.as_object()
            .is_some_and(|o| o.len() == 1 && o.contains_key("version"))
    }));

    // parts: only the partitions asked for; offsets: from that offset on.
    let mut partitions: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for e in &published {
        partitions
            .entry(e["partition"].as_u64().unwrap_or(99))
            .or_default()
            .push(e["offset"].as_u64().unwrap_or(0));
    }
    let (&busy, offsets) = partitions
        .iter()
        .max_by_key(|(_, o)| o.len())
        .context("a partition")?;
    assert!(offsets.len() >= 5, "{partitions:?}");
    let only = all_ndjson(&host, &auth, &format!("parts=[{busy}]"))?;
    assert_eq!(only.len(), offsets.len());
    assert!(only.iter().all(|e| e["event"]["partition"] == busy));
    let from_two = all_ndjson(
        &host,
        &auth,
        &format!(
            "parts={busy}&offsets={}",
            url_encode(&json!({busy.to_string(): 2, "9999": 0}).to_string())
        ),
    )?;
    let got: Vec<u64> = from_two
        .iter()
        .filter_map(|e| e["event"]["offset"].as_u64())
        .collect();
    assert_eq!(got, (2..offsets.len() as u64).collect::<Vec<_>>());

    // offsets without since: listed partitions from their offset, the
    // others in live mode (nothing new arrives, so nothing from them).
    let path = format!(
        "/realtime/v2/articles?offsets={}",
        url_encode(&json!({busy.to_string(): 1}).to_string())
    );
    let live = open(
        &host,
        &path,
        &auth,
        &[("accept", "application/x-ndjson")],
        None,
    )?
    .ndjson()?;
    assert_eq!(live.len(), offsets.len() - 1);
    assert!(live.iter().all(|e| e["event"]["partition"] == busy));

    // since_per_partition in a POST body, with parts.
    let body =
        json!({"parts": [busy], "since_per_partition": {busy.to_string(): "2000-01-01T00:00:00Z"}});
    let posted = open(
        &host,
        "/realtime/v2/articles",
        &auth,
        &[("accept", "application/x-ndjson")],
        Some(&body.to_string()),
    )?
    .ndjson()?;
    assert_eq!(posted.len(), offsets.len());
    // A `since` in the future: nothing yet.
    let future = all_ndjson(&host, &auth, "parts=0&since=2999-01-01T00:00:00Z");
    assert!(future.is_err() || future.is_ok_and(|e| e.is_empty()));
    Ok(())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn url_encode(text: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

#[test]
fn invalid_parameters_and_plans_without_realtime_are_refused() -> Result<()> {
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "validator", "paid")?;
    let free = account(&host, "freeloader", "free")?;

    let r = open(&host, "/realtime/v2/articles", "Bearer nope", &[], None)?.error()?;
    assert_eq!(r.0, 401);
    assert_eq!(r.1["status"], 401);

    let (status, body) = open(&host, "/realtime/v2/articles", &free, &[], None)?.error()?;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"status": 403, "message": "Your plan does not include realtime"})
    );

    for query in [
        "since=yesterday",
        "parts=10",
        "parts=-1",
        "parts=abc",
        "fields=version",
        "fields=a..b",
        "offsets=%7B%22x%22%3A1%7D",
        "offsets=%7B%220%22%3A-1%7D",
        "offsets=not-json",
        "since_per_partition=%7B%220%22%3A%22soon%22%7D",
        "filters=%5B%7B%22field%22%3A%22a%22%2C%22value%22%3A%5B1%5D%7D%5D",
    ] {
        let path = format!("/realtime/v2/articles?{query}");
        let (status, body) = open(&host, &path, &auth, &[], None)?.error()?;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["status"], 422, "{query}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, _) = open(
        &host,
        "/realtime/v2/articles",
        &auth,
        &[],
        Some(r#"{"parts": [0, 12]}"#),
    )?
    .error()?;
    assert_eq!(status, 422);
    let (status, body) = open(
        &host,
        "/realtime/v2/articles",
        &auth,
        &[("last-event-id", "garbage")],
        None,
    )?
    .error()?;
    assert_eq!((status, body["status"].as_u64()), (422, Some(422)));

    // A valid SSE connection ends cleanly after the configured duration,
    // with its position as a final id, and is metered.
    let started = Instant::now();
    let mut stream = open(&host, "/realtime/v2/articles", &auth, &[], None)?;
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.headers.get("content-type").map(String::as_str),
        Some("text/event-stream")
    );
    let (events, last_id) = stream.sse(usize::MAX)?;
    assert!(events.is_empty());
    assert!(last_id.is_some_and(|id| id.starts_with("0:0,1:0")));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let usage = get(&host.url("/v1/usage"), &[("authorization", &auth)])?.json()?;
    let realtime: u64 = usage["usage"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["product"] == "realtime")
        .map(|row| row["admitted"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(realtime, 1, "{usage}");
    Ok(())
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

fn ingest_synthetic(host: &Host, range: std::ops::Range<usize>) -> Result<Vec<Instant>> {
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

#[test]
fn a_consumer_disconnected_fifty_times_receives_every_event_once_in_order() -> Result<()> {
    const TOTAL: usize = 240;
    let wiki = Wiki::start()?;
    let host = Arc::new(app(&wiki, "1", &[])?);
    let auth = account(&host, "resumer", "paid")?;

    // A producer ingests in small batches while the consumer keeps
    // dropping its connection.
    let producer = {
        let host = host.clone();
        std::thread::spawn(move || -> Result<()> {
            for start in (0..TOTAL).step_by(10) {
                ingest_synthetic(&host, start..start + 10)?;
                std::thread::sleep(Duration::from_millis(40));
            }
            Ok(())
        })
    };

    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut random = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut received: Vec<SseEvent> = Vec::new();
    let mut last_id: Option<String> = None;
    let started = Instant::now();
    let mut connections = 0;
    let mut disconnects = 0;
    while disconnects < 50 || received.len() < TOTAL {
        ensure!(
            started.elapsed() < Duration::from_secs(240),
            "gave up after {connections} connections with {} events",
            received.len()
        );
        let mut headers = vec![];
        if let Some(id) = &last_id {
            headers.push(("last-event-id", id.as_str()));
        }
        let path = if last_id.is_none() {
            "/realtime/v2/articles?since=1970-01-01T00:00:00Z"
        } else {
            "/realtime/v2/articles"
        };
        let mut stream = open(&host, path, &auth, &headers, None)?;
        ensure!(stream.status == 200, "status {}", stream.status);
        connections += 1;
        // Mostly an early client-side disconnect after 0..8 events; every
        // fifth connection runs into the server's max-connection cut.
        let limit = if connections % 5 == 0 {
            usize::MAX
        } else {
            random(9) as usize
        };
        let (events, id) = stream.sse(limit)?;
        drop(stream);
        disconnects += 1;
        if let Some(e) = events.last() {
            last_id = Some(e.id.clone());
        }
        if limit == usize::MAX
            && let Some(id) = id
        {
            last_id = Some(id);
        }
        received.extend(events);
    }
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("producer panicked"))??;

    // Every event exactly once...
    let ids: Vec<String> = received
        .iter()
        .filter_map(|e| e.data["event"]["identifier"].as_str().map(str::to_string))
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), TOTAL, "{connections} connections");
    assert_eq!(unique.len(), TOTAL);
    // ...and each partition in offset order, without holes.
    let mut per_partition: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for e in &received {
        per_partition
            .entry(e.data["event"]["partition"].as_u64().unwrap_or(99))
            .or_default()
            .push(e.data["event"]["offset"].as_u64().unwrap_or(u64::MAX));
    }
    for (p, offsets) in &per_partition {
        assert_eq!(
            offsets,
            &(0..offsets.len() as u64).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
    assert!(disconnects >= 50);
    Ok(())
}

/// Events/second from ingest to a connected consumer and ingest ->
/// delivered latency, with the default poll interval (50 ms). Phase 1
/// ingests 2000 events in NDJSON batches of 50 (throughput; latency counts
/// from the batch's request, so it includes the batch's own processing);
/// phase 2 ingests 100 single events one after another (latency of one
/// event). Run:
/// `cargo test --release -p wikiedge --test e2e realtime_throughput -- --ignored --nocapture`
#[test]
#[ignore]
fn realtime_throughput() -> Result<()> {
    const TOTAL: usize = 2000;
    const BATCH: usize = 50;
    const SINGLES: usize = 100;
    let wiki = Wiki::start()?;
    let host = Arc::new(app(
        &wiki,
        "300",
        &[("SPIN_VARIABLE_REALTIME_POLL_MS", "50")],
    )?);
    let auth = account(&host, "bench", "paid")?;

    let mut stream = open(
        &host,
        "/realtime/v2/articles",
        &auth,
        &[("accept", "application/x-ndjson")],
        None,
    )?;
    ensure!(stream.status == 200);
    let consumer = std::thread::spawn(move || -> Result<BTreeMap<String, Instant>> {
        let mut got = BTreeMap::new();
        let mut line = String::new();
        while got.len() < TOTAL + SINGLES {
            line.clear();
            if stream.reader.read_line(&mut line)? == 0 {
                bail!("stream ended after {} events", got.len());
            }
            let v: Value = serde_json::from_str(&line)?;
            let id = v["event"]["identifier"].as_str().unwrap_or("").to_string();
            got.insert(id, Instant::now());
        }
        Ok(got)
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut sent = BTreeMap::new();
    for start in (0..TOTAL).step_by(BATCH) {
        let times = ingest_synthetic(&host, start..start + BATCH)?;
        for (n, t) in (start..start + BATCH).zip(times) {
            sent.insert(format!("synthetic-{n:05}"), t);
        }
    }
    let ingested = started.elapsed();
    let mut single_sent = BTreeMap::new();
    for n in TOTAL..TOTAL + SINGLES {
        let times = ingest_synthetic(&host, n..n + 1)?;
        single_sent.insert(format!("synthetic-{n:05}"), times[0]);
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("consumer panicked"))??;
    let last = sent
        .keys()
        .filter_map(|id| got.get(id))
        .max()
        .copied()
        .context("events")?;
    let elapsed = last.duration_since(started);
    let percentiles = |sent: &BTreeMap<String, Instant>| {
        let mut ms: Vec<f64> = sent
            .iter()
            .filter_map(|(id, t)| Some(got.get(id)?.duration_since(*t).as_secs_f64() * 1000.0))
            .collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q) as usize];
        format!(
            "p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            at(0.5),
            at(0.95),
            at(1.0)
        )
    };
    println!(
        "realtime: {TOTAL} events in batches of {BATCH}: ingest {:.0} events/s, \
         ingest -> consumer {:.0} events/s, latency (batch request sent -> delivered) {}",
        TOTAL as f64 / ingested.as_secs_f64(),
        TOTAL as f64 / elapsed.as_secs_f64(),
        percentiles(&sent)
    );
    println!(
        "realtime: {SINGLES} single-event ingests: latency (request sent -> delivered) {}",
        percentiles(&single_sent)
    );
    Ok(())
}

#[test]
fn expired_events_are_compacted_away_and_the_ingest_key_works() -> Result<()> {
    let wiki = Wiki::start()?;
    let host = app(
        &wiki,
        "1",
        &[
            ("SPIN_VARIABLE_REALTIME_RETENTION_SECONDS", "1"),
            ("SPIN_VARIABLE_INGEST_KEY", "e2e-ingest-key-0123456789"),
        ],
    )?;
    let auth = account(&host, "historian", "paid")?;
    let one_page = |range: std::ops::Range<usize>| -> String {
        range
            .map(|n| format!("{}\n", synthetic_event(n, 7)))
            .collect()
    };
    let send = |body: String, key: &str| {
        post(
            &host.url("/v1/admin/ingest"),
            &[("x-ingest-key", key)],
            body.as_bytes(),
        )
    };
    assert_eq!(send(one_page(0..1), "wrong-key")?.status, 401);
    let first = send(one_page(0..3), "e2e-ingest-key-0123456789")?.json()?;
    assert_eq!(first["published"], 3, "{first}");
    let partition = first["events"][0]["partition"]
        .as_u64()
        .context("partition")?;
    std::thread::sleep(Duration::from_millis(2200));
    let second = send(one_page(3..6), "e2e-ingest-key-0123456789")?.json()?;
    assert_eq!(second["published"], 3, "{second}");

    // The three old events are gone; the log keeps its offsets.
    let events = all_ndjson(&host, &auth, &format!("parts={partition}"))?;
    let offsets: Vec<u64> = events
        .iter()
        .filter_map(|e| e["event"]["offset"].as_u64())
        .collect();
    assert_eq!(offsets, [3, 4, 5]);
    // A client resuming below the retained head continues at the head.
    let mut stream = open(
        &host,
        &format!("/realtime/v2/articles?parts={partition}"),
        &auth,
        &[("last-event-id", &format!("{partition}:1"))],
        None,
    )?;
    let (events, _) = stream.sse(usize::MAX)?;
    let offsets: Vec<u64> = events
        .iter()
        .filter_map(|e| e.data["event"]["offset"].as_u64())
        .collect();
    assert_eq!(offsets, [3, 4, 5]);
    // Their ids were forgotten with them: a replay is published again.
    let replay = send(one_page(0..1), "e2e-ingest-key-0123456789")?.json()?;
    assert_eq!(replay["published"], 1, "{replay}");
    Ok(())
}

/// A loopback EventStreams: serves `events` as SSE with ids `1..=n`,
/// starting after the request's `Last-Event-ID`; the first connection is
/// cut after `cut` events. Records the `Last-Event-ID` of each request.
fn sse_server(
    events: Vec<String>,
    cut: usize,
) -> Result<(String, Arc<std::sync::Mutex<Vec<String>>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!(
        "http://{}/v2/stream/mediawiki.page_change.v1",
        listener.local_addr()?
    );
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let Ok(clone) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(clone);
            let mut last = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|r| r > 0) && !line.trim().is_empty() {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("last-event-id:") {
                    last = v.trim().to_string();
                }
                line.clear();
            }
            if let Ok(mut seen) = record.lock() {
                seen.push(last.clone());
            }
            let start: usize = last.parse().unwrap_or(0);
            let end = if n == 0 {
                cut.min(events.len())
            } else {
                events.len()
            };
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
            );
            let _ = write!(stream, ": welcome\n\n");
            for (i, event) in events.iter().enumerate().take(end).skip(start) {
                let _ = write!(stream, "event: message\nid: {}\ndata: {event}\n\n", i + 1);
            }
        }
    });
    Ok((url, seen))
}

#[test]
fn follow_forwards_a_stream_and_resumes_after_a_cut() -> Result<()> {
    let Some(fixtures) = fixtures_or_skip() else {
        return Ok(());
    };
    use wikiedge_host::follow::{FollowArgs, load_cursor, run};
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "follower", "paid")?;
    let events: Vec<String> = fixture_ndjson(&fixtures)?
        .lines()
        .map(str::to_string)
        .collect();
    let total = events.len();
    let (stream_url, seen) = sse_server(events, 5)?;
    let state = wikiedge_tests::TempDir::new("follow")?;

    let mut args = FollowArgs::new(stream_url.clone(), host.url(""));
    args.state_dir = state.path().to_path_buf();
    args.admin_key = Some(ADMIN_KEY.to_string());
    args.batch = 4;
    args.max_events = Some(total as u64);
    args.max_seconds = Some(60);
    let summary = run(args.clone())?;
    assert_eq!(summary.forwarded, total as u64, "{summary:?}");
    assert_eq!(summary.published, 9);
    assert!(summary.connections >= 2);
    assert_eq!(load_cursor(state.path())?, Some(total.to_string()));
    let resumed = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        resumed[..2],
        ["".to_string(), "5".to_string()],
        "{resumed:?}"
    );

    // A second run resumes from the durable cursor: nothing new.
    args.max_events = None;
    args.max_seconds = Some(1);
    let again = run(args)?;
    assert_eq!(again.forwarded, 0);
    let last = seen.lock().map(|s| s.last().cloned()).unwrap_or_default();
    assert_eq!(last, Some(total.to_string()));

    let streamed = all_ndjson(&host, &auth, "")?;
    assert_eq!(streamed.len(), 9);
    Ok(())
}

/// The single file of a one-file tar.gz: its name and content.
fn untar_gz(bytes: &[u8]) -> Result<(String, Vec<u8>)> {
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

#[test]
fn an_hourly_batch_holds_exactly_that_hours_events() -> Result<()> {
    let Some(fixtures) = fixtures_or_skip() else {
        return Ok(());
    };
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "batcher", "paid")?;
    let free = account(&host, "batch-free", "free")?;
    ingest(&host, fixture_ndjson(&fixtures)?.as_bytes())?;
    ingest_synthetic(&host, 0..5)?;
    let events = all_ndjson(&host, &auth, "")?;
    assert_eq!(events.len(), 14);

    // The hour of the first event; expected batches from the events in it.
    let published = events[0]["event"]["date_published"]
        .as_str()
        .context("date_published")?
        .to_string();
    let (date, hour) = (&published[0..10], &published[11..13]);
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in &events {
        let at = e["event"]["date_published"].as_str().unwrap_or("");
        if at.starts_with(&published[..13]) {
            let id = format!(
                "{}_namespace_{}",
                e["is_part_of"]["identifier"].as_str().unwrap_or(""),
                e["namespace"]["identifier"].as_i64().unwrap_or(0)
            );
            expected
                .entry(id)
                .or_default()
                .insert(e["event"]["identifier"].as_str().unwrap_or("").to_string());
        }
    }
    assert!(expected.contains_key("enwiki_namespace_0"), "{expected:?}");

    let a = [("authorization", auth.as_str())];
    let base = format!("/v2/batches/{date}/{hour}");
    let r = get(&host.url(&base), &a)?;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json()?;
    let ids: BTreeSet<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["identifier"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids, expected.keys().cloned().collect());

    let r = get(&host.url(&format!("{base}/enwiki_namespace_0")), &a)?;
    assert_eq!(r.status, 200, "{}", r.text());
    let meta = r.json()?;
    assert_eq!(meta["is_part_of"]["identifier"], "enwiki");
    assert_eq!(meta["namespace"]["identifier"], 0);
    assert_eq!(meta["size"]["unit_text"], "MB");

    let r = get(
        &host.url(&format!("{base}/enwiki_namespace_0/download")),
        &a,
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/gzip"));
    let etag = r.header("etag").unwrap_or("").to_string();
    assert_eq!(
        etag,
        format!("\"{}\"", meta["version"].as_str().unwrap_or(""))
    );
    let (name, ndjson) = untar_gz(&r.body)?;
    assert_eq!(name, "enwiki_namespace_0.ndjson");
    let in_batch: BTreeSet<String> = String::from_utf8(ndjson)?
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .map(|v| v["event"]["identifier"].as_str().unwrap_or("").to_string())
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(Some(&in_batch), expected.get("enwiki_namespace_0"));
    let head = wikiedge_tests::request(
        "HEAD",
        &host.url(&format!("{base}/enwiki_namespace_0/download")),
        &a,
        None,
    )?;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), Some(etag.as_str()));

    // Other hours: an earlier one is empty, a future one does not exist yet.
    let r = get(&host.url("/v2/batches/2001-01-01/00"), &a)?;
    assert_eq!((r.status, r.json()?), (200, json!([])));
    assert_eq!(get(&host.url("/v2/batches/2999-01-01/00"), &a)?.status, 404);
    let r = get(&host.url(&format!("/v2/batches/{date}/24")), &a)?;
    assert_eq!((r.status, r.json()?["status"].as_u64()), (422, Some(422)));
    assert_eq!(
        get(&host.url(&format!("{base}/nowiki_namespace_0")), &a)?.status,
        404
    );
    assert_eq!(get(&host.url(&base), &[])?.status, 401);
    let r = get(&host.url(&base), &[("authorization", free.as_str())])?;
    assert_eq!(r.status, 403);
    Ok(())
}

#[test]
fn concurrent_ingests_of_the_same_events_publish_each_once() -> Result<()> {
    concurrent_ingests(&[])
}

/// The same where the store reports every compare-and-swap as failed
/// after it ran (Spin 4.1's Redis store): event ids are claimed with an
/// atomic increment, the title index through the exact CAS helper.
#[test]
fn concurrent_ingests_publish_each_once_where_cas_is_misreported() -> Result<()> {
    concurrent_ingests(&[("WIKIEDGE_EMULATE_SPIN_REDIS_CAS", "true")])
}

fn concurrent_ingests(extra: &[(&str, &str)]) -> Result<()> {
    let wiki = Wiki::start()?;
    let host = Arc::new(app(&wiki, "1", extra)?);
    let auth = account(&host, "racer", "paid")?;
    let body: String = (0..40)
        .map(|n| format!("{}\n", synthetic_event(n, n % 5)))
        .collect();
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (host, body) = (host.clone(), body.clone());
            std::thread::spawn(move || -> Result<(u64, u64)> {
                let report = ingest(&host, body.as_bytes())?.json()?;
                Ok((
                    report["published"].as_u64().unwrap_or(0),
                    report["duplicates"].as_u64().unwrap_or(0),
                ))
            })
        })
        .collect();
    let (mut published, mut duplicates) = (0, 0);
    for sender in senders {
        let (p, d) = sender
            .join()
            .map_err(|_| anyhow::anyhow!("sender panicked"))??;
        published += p;
        duplicates += d;
    }
    assert_eq!((published, duplicates), (40, 120));
    let events = all_ndjson(&host, &auth, "")?;
    let ids: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["event"]["identifier"].as_str())
        .collect();
    assert_eq!((events.len(), ids.len()), (40, 40));
    Ok(())
}

/// Opens a stream on a raw connection and returns it with its status line,
/// leaving the body unread.
pub(crate) fn open_raw_stream(host: &Host, auth: &str) -> Result<(TcpStream, String)> {
    let addr = host.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET /realtime/v2/articles HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if s.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head.lines().next().unwrap_or_default().to_string();
    Ok((s, status))
}

#[test]
fn the_ninth_concurrent_stream_of_an_account_is_refused() -> Result<()> {
    let wiki = Wiki::start()?;
    let host = app(&wiki, "30", &[])?;
    let auth = account(&host, "greedy", "paid")?;
    let mut open = Vec::new();
    for _ in 0..8 {
        let (s, status) = open_raw_stream(&host, &auth)?;
        ensure!(status.starts_with("HTTP/1.1 200"), "{status}");
        open.push(s);
    }
    let (_ninth, status) = open_raw_stream(&host, &auth)?;
    ensure!(status.starts_with("HTTP/1.1 429"), "{status}");
    let r = get(
        &host.url("/realtime/v2/articles"),
        &[("authorization", auth.as_str())],
    )?;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()?["status"], 429);
    assert!(r.header("retry-after").is_some());
    // The cap is per account: another account still gets its stream.
    let other = account(&host, "modest", "paid")?;
    let (_s, status) = open_raw_stream(&host, &other)?;
    ensure!(status.starts_with("HTTP/1.1 200"), "{status}");
    drop(open);
    Ok(())
}
