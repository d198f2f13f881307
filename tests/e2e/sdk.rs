//! SDK compatibility: every public method of the official Wikimedia
//! Enterprise SDKs — Python `wikimedia-enterprise/wme-sdk-python`
//! (`modules/api/api_client.py` `Client`, `modules/auth/auth_client.py`
//! `AuthClient`) and Go `wikimedia-enterprise/wme-sdk-go` (`pkg/api`
//! `Client`) — sends here exactly the request the SDK sends (method, path,
//! headers, JSON body, Range splitting), with only the base URL changed to
//! the real host, and the response is checked the way the SDK's data
//! models read it and against the WME OpenAPI schemas.
//!
//! What each SDK sends (read from their source):
//! - Python `Client`: every request carries `User-Agent: WME Python SDK`,
//!   `Content-Type: application/json`, `Authorization: Bearer {token}`.
//!   Listings and single entities are `POST {base}v2/{path}` with the
//!   `Request.to_json()` body (no body for `req=None`; `{}` for an empty
//!   `Request()`). `head_*` is `HEAD .../download`; `read_*` a plain `GET
//!   .../download`; `download_*` a HEAD, then `GET` with `Range: bytes=s-e`
//!   (one range by default, `download_chunk_size` ranges when set).
//!   `stream_articles` is `GET {realtime}v2/articles` with the JSON body and
//!   `Cache-Control: no-cache`, `Accept: application/x-ndjson`,
//!   `Connection: keep-alive`.
//! - Go `Client`: the same headers with an empty User-Agent (Go then sends
//!   none); `POST` with `json.Marshal(req)` (`{}` for an empty `Request`,
//!   no body for `nil`); downloads split in `DownloadChunkSize` (25 MiB,
//!   5 MiB below that size) ranges `bytes=s-(s+size)` whose end is one past
//!   the chunk (clamped to the length); `ReadAll` gunzips and untars.
//! - Python `AuthClient`: `POST /v1/login {username,password}`,
//!   `/v1/token-refresh {username,refresh_token}`, `/v1/token-revoke
//!   {refresh_token}`, with httpx's own headers.
//!
//! docs/sdk-compatibility.md maps each SDK method to its test here.

use std::io::Read;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use wikiedge_tests::openapi::Spec;
use wikiedge_tests::{Host, Resp, TempDir, fixtures, post, raw, repo_root, request};

use crate::realtime::{Wiki, account, ingest, synthetic_event};
use crate::{ADMIN_KEY, BIN};

/// Snapshot chunks small enough that the sample makes several.
const CHUNK_SIZE: u64 = 1_000_000;
const SNAPSHOT: &str = "enwiki_namespace_0";

fn main_spec() -> Result<Spec> {
    Spec::load(&fixtures().join("wme/openapi/wme_main_api_openapi_2024-01.yaml"))
}

fn realtime_spec() -> Result<Spec> {
    Spec::load(&fixtures().join("wme/openapi/wme_realtime_api_openapi_2024-01.yaml"))
}

fn auth_spec() -> Result<Spec> {
    Spec::load(&fixtures().join("wme/openapi/wme_auth_docs.yaml"))
}

/// Which SDK a request imitates.
#[derive(Clone, Copy, Debug)]
enum Kit {
    Python,
    Go,
}

/// A client configured like an SDK user would: the base URL (with its
/// trailing slash, as both SDKs expect) and the access token.
struct Sdk<'a> {
    base: String,
    token: &'a str,
    kit: Kit,
}

impl<'a> Sdk<'a> {
    fn new(host: &Host, token: &'a str, kit: Kit) -> Self {
        Sdk {
            base: host.url("/"),
            token,
            kit,
        }
    }

    /// The headers the SDK sets on every request.
    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("content-type", "application/json".to_string()),
            ("authorization", format!("Bearer {}", self.token)),
        ];
        if let Kit::Python = self.kit {
            h.push(("user-agent", "WME Python SDK".to_string()));
        }
        h
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Resp> {
        let url = format!("{}v2/{path}", self.base);
        let owned = self.headers();
        let mut headers: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        headers.extend_from_slice(extra);
        request(method, &url, &headers, body)
    }

    /// `_get_entity` / `getEntity`: POST with the request's JSON (or none).
    fn get_entity(&self, path: &str, req: Option<&Value>) -> Result<Value> {
        let body = req.map(|r| r.to_string().into_bytes());
        let r = self.send("POST", path, &[], body.as_deref())?;
        ensure!(r.status == 200, "POST v2/{path}: {} {}", r.status, r.text());
        r.json()
    }

    /// `_head_entity` / `headEntity`: the headers as the SDK parses them.
    fn head_entity(&self, path: &str) -> Result<Headers> {
        let r = self.send("HEAD", path, &[], None)?;
        ensure!(r.status == 200, "HEAD v2/{path}: {}", r.status);
        Headers::parse(&r)
    }

    /// `_read_entity` / `readEntity`: a plain GET of the download.
    fn read_entity(&self, path: &str) -> Result<Vec<u8>> {
        let r = self.send("GET", path, &[], None)?;
        ensure!(r.status == 200, "GET v2/{path}: {} {}", r.status, r.text());
        Ok(r.body)
    }

    /// `_download_entity` / `downloadEntity`: HEAD, then the SDK's ranges,
    /// written at their offsets.
    fn download_entity(&self, path: &str, python_chunk_size: i64) -> Result<Vec<u8>> {
        let headers = self.head_entity(path)?;
        let len = headers.content_length;
        let ranges = match self.kit {
            Kit::Python => python_ranges(len, python_chunk_size),
            Kit::Go => go_ranges(len),
        };
        ensure!(!ranges.is_empty(), "no ranges for {len} bytes");
        let mut out = vec![0u8; len as usize];
        for (start, end, keep) in ranges {
            let spec = format!("bytes={start}-{end}");
            let r = self.send("GET", path, &[("range", &spec)], None)?;
            ensure!(
                r.status == 206 || r.status == 200,
                "{spec}: {} {}",
                r.status,
                r.text()
            );
            // Go copies `end - start` bytes of what came back; Python all of it.
            ensure!(
                r.body.len() as u64 >= keep,
                "{spec}: {} bytes",
                r.body.len()
            );
            out[start as usize..(start + keep) as usize].copy_from_slice(&r.body[..keep as usize]);
        }
        Ok(out)
    }
}

/// Python's chunks: `(i, min(i + size, len) - 1)`, or one `(0, len - 1)`.
fn python_ranges(len: u64, chunk_size: i64) -> Vec<(u64, u64, u64)> {
    if len == 0 {
        return vec![];
    }
    if chunk_size <= 0 {
        return vec![(0, len - 1, len)];
    }
    let size = (chunk_size as u64).min(len);
    (0..len)
        .step_by(size as usize)
        .map(|i| {
            let end = (i + size).min(len) - 1;
            (i, end, end - i + 1)
        })
        .collect()
}

/// Go's chunks: size 25 MiB (5 MiB when the file is smaller than 5 MiB);
/// `Range: bytes=start-end` with `end = min(start + size, len)`, and
/// `end - start` bytes kept.
fn go_ranges(len: u64) -> Vec<(u64, u64, u64)> {
    let min = 5_242_880u64;
    let size = if len < min { min } else { min * 5 };
    let mut out = vec![];
    let mut i = 0;
    loop {
        let start = i * size;
        let end = (start + size).min(len);
        out.push((start, end, end - start));
        if end == len {
            break;
        }
        i += 1;
    }
    out
}

/// The SDKs' `Headers` model.
#[derive(Debug)]
struct Headers {
    etag: String,
    content_type: String,
    accept_ranges: String,
    last_modified: String,
    content_length: u64,
}

impl Headers {
    fn parse(r: &Resp) -> Result<Self> {
        let h = |n: &str| r.header(n).unwrap_or("").to_string();
        let content_length = h("content-length")
            .parse()
            .context("Content-Length is an integer")?;
        let last_modified = h("last-modified");
        // Go parses it with time.RFC1123: "Mon, 02 Jan 2006 15:04:05 MST".
        if !last_modified.is_empty() {
            rfc1123(&last_modified)?;
        }
        Ok(Headers {
            etag: h("etag").trim_matches('"').to_string(),
            content_type: h("content-type"),
            accept_ranges: h("accept-ranges"),
            last_modified,
            content_length,
        })
    }
}

fn rfc1123(text: &str) -> Result<()> {
    let parts: Vec<&str> = text.split(' ').collect();
    let ok = parts.len() == 6
        && parts[0].len() == 4
        && parts[0].ends_with(',')
        && parts[1].len() == 2
        && parts[1].bytes().all(|b| b.is_ascii_digit())
        && parts[2].len() == 3
        && parts[3].len() == 4
        && parts[4].len() == 8
        && parts[5] == "GMT";
    ensure!(ok, "Last-Modified '{text}' is not RFC 1123");
    Ok(())
}

/// The JSON types the SDK models declare.
#[derive(Clone, Copy, Debug)]
enum Ty {
    Str,
    Int,
    Num,
    Arr,
}

/// Checks that `value` has every `(dot path, type)` the model reads.
fn reads(value: &Value, fields: &[(&str, Ty)]) -> Result<()> {
    for (path, ty) in fields {
        let mut v = value;
        for seg in path.split('.') {
            v = v
                .get(seg)
                .with_context(|| format!("model field `{path}` missing in {value}"))?;
        }
        let ok = match ty {
            Ty::Str => v.is_string(),
            Ty::Int => v.is_i64() || v.is_u64(),
            Ty::Num => v.is_number(),
            Ty::Arr => v.is_array(),
        };
        ensure!(ok, "model field `{path}` is not {ty:?}: {v}");
    }
    Ok(())
}

const SNAPSHOT_MODEL: &[(&str, Ty)] = &[
    ("identifier", Ty::Str),
    ("version", Ty::Str),
    ("date_modified", Ty::Str),
    ("is_part_of.identifier", Ty::Str),
    ("in_language.identifier", Ty::Str),
    ("namespace.identifier", Ty::Int),
    ("size.value", Ty::Num),
    ("size.unit_text", Ty::Str),
];

const ARTICLE_MODEL: &[(&str, Ty)] = &[
    ("name", Ty::Str),
    ("identifier", Ty::Int),
    ("url", Ty::Str),
    ("date_modified", Ty::Str),
    ("version.identifier", Ty::Int),
    ("is_part_of.identifier", Ty::Str),
    ("in_language.identifier", Ty::Str),
    ("namespace.identifier", Ty::Int),
    ("article_body.wikitext", Ty::Str),
];

/// The files of a tar.gz, as `ReadAll` walks them: NDJSON lines parsed.
fn read_all(tar_gz: &[u8]) -> Result<Vec<Value>> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(tar_gz).read_to_end(&mut tar)?;
    let files = wikiedge_core::snapshot::read_tar(&tar).context("a well-formed tar")?;
    let mut out = vec![];
    for (_, content) in files {
        for line in String::from_utf8(content)?.lines() {
            if !line.trim().is_empty() {
                out.push(serde_json::from_str(line)?);
            }
        }
    }
    Ok(out)
}

/// The app on the imported sample with its snapshot built, the mock wiki as
/// upstream, short stream connections; and a `paid` account's token.
/// `None` (skipped, saying so) without the real-data fixtures.
fn app() -> Result<Option<(TempDir, Wiki, Host, String)>> {
    let Some((state, _summary)) = crate::snapshots::build_sample(CHUNK_SIZE)? else {
        return Ok(None);
    };
    let wiki = Wiki::start()?;
    let host = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .env("SPIN_VARIABLE_UPSTREAM_OVERRIDES", &wiki.overrides())
        .env("SPIN_VARIABLE_REALTIME_MAX_CONNECTION_SECONDS", "2")
        .env("SPIN_VARIABLE_REALTIME_POLL_MS", "20")
        .state_dir(state.path())
        .arg("--quiet")
        .start()?;
    let auth = account(&host, "sdk-user", "paid")?;
    let token = auth.trim_start_matches("Bearer ").to_string();
    Ok(Some((state, wiki, host, token)))
}

/// `app`, with the OpenAPI spec its answers are checked against. The specs
/// are real-data fixtures: without them the test is skipped, saying so.
type Checked = (Spec, TempDir, Wiki, Host, String);
fn app_checked_by(spec: fn() -> Result<Spec>) -> Result<Option<Checked>> {
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return Ok(None);
    }
    let spec = spec()?;
    Ok(app()?.map(|(state, wiki, host, token)| (spec, state, wiki, host, token)))
}

/// A listing (`get_snapshots`, `get_batches`, ...) under each request: a
/// list holding `id`, every item valid as `schema` and read by the
/// snapshot model. Returns the items of all the requests.
fn listing(
    sdk: &Sdk,
    spec: &Spec,
    schema: &str,
    path: &str,
    reqs: &[Option<Value>],
    id: &str,
) -> Result<Vec<Value>> {
    let mut all = vec![];
    for req in reqs {
        let v = sdk.get_entity(path, req.as_ref())?;
        let items = v.as_array().with_context(|| format!("{path}: a list"))?;
        ensure!(
            items.iter().any(|s| s["identifier"] == id),
            "{:?} {path} {req:?}: {v}",
            sdk.kit
        );
        for s in items {
            spec.validate(schema, s)?;
            reads(s, SNAPSHOT_MODEL)?;
        }
        all.extend(items.iter().cloned());
    }
    Ok(all)
}

/// A single entity (`get_snapshot`, `get_batch`, ...): valid as `schema`
/// and read by the snapshot model.
fn entity(sdk: &Sdk, spec: &Spec, schema: &str, path: &str, req: Option<&Value>) -> Result<Value> {
    let v = sdk.get_entity(path, req)?;
    spec.validate(schema, &v)?;
    reads(&v, SNAPSHOT_MODEL)?;
    Ok(v)
}

/// `head_*` of a whole download: a gzip of some length, ranges offered,
/// its ETag the entity's `version`, a Last-Modified.
fn head_of(sdk: &Sdk, path: &str, entity: &Value) -> Result<Headers> {
    let head = sdk.head_entity(path)?;
    ensure!(head.content_length > 0, "{head:?}");
    ensure!(
        head.etag == entity["version"].as_str().unwrap_or(""),
        "{head:?}"
    );
    ensure!(head.accept_ranges == "bytes", "{head:?}");
    ensure!(head.content_type == "application/gzip", "{head:?}");
    ensure!(!head.last_modified.is_empty(), "{head:?}");
    Ok(head)
}

/// `read_*` (a plain GET of as many bytes as the HEAD said), then
/// `download_*` with each (Python) chunk size, each equal to the read.
fn read_and_download(sdk: &Sdk, path: &str, head: &Headers, sizes: &[i64]) -> Result<Vec<u8>> {
    let bytes = sdk.read_entity(path)?;
    ensure!(
        bytes.len() as u64 == head.content_length,
        "{path}: {} bytes, HEAD said {head:?}",
        bytes.len()
    );
    for size in sizes {
        let got = sdk.download_entity(path, *size)?;
        ensure!(
            got == bytes,
            "{:?} {path}: download (chunk size {size}) differs",
            sdk.kit
        );
    }
    Ok(bytes)
}

/// Publishes `n` synthetic events and returns the `date_published` of the
/// first, as the SDK's stream reads it.
fn publish(host: &Host, token: &str, kit: Kit, n: usize) -> Result<String> {
    ingest_synthetic(host, 0..n)?;
    let (_, text) = stream(
        host,
        "/v2/articles",
        token,
        kit,
        &json!({"since": "2000-01-01T00:00:00Z"}),
    )?;
    let events = ndjson(&text)?;
    let published = events
        .first()
        .and_then(|e| e["event"]["date_published"].as_str())
        .context("an event")?;
    Ok(published.to_string())
}

#[test]
fn auth_client_login_refresh_and_revoke_work_as_the_python_sdk_sends_them() -> Result<()> {
    // The responses are checked against WME's OpenAPI schemas, which are
    // real-data fixtures: without them the test is skipped, saying so.
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return Ok(());
    }
    let spec = auth_spec()?;
    let host = crate::app()?;
    let (username, password) = ("sdk-auth", "correct horse battery staple");
    let created = post(
        &host.url("/v1/admin/accounts"),
        &[
            ("x-admin-key", ADMIN_KEY),
            ("content-type", "application/json"),
        ],
        json!({"username": username, "password": password})
            .to_string()
            .as_bytes(),
    )?;
    ensure!(created.status == 201, "{}", created.text());
    // httpx.Client(base_url=".../v1").post(url, json=data): its own headers.
    let httpx = [
        ("content-type", "application/json"),
        ("user-agent", "python-httpx/0.28.1"),
        ("accept", "*/*"),
    ];
    let send = |path: &str, body: Value| -> Result<Resp> {
        post(
            &host.url(&format!("/v1{path}")),
            &httpx,
            body.to_string().as_bytes(),
        )
    };

    // login(): {"username", "password"} -> access_token, refresh_token.
    let r = send(
        "/login",
        json!({"username": username, "password": password}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    let login = r.json()?;
    spec.validate("login", &login)?;
    reads(
        &login,
        &[
            ("access_token", Ty::Str),
            ("refresh_token", Ty::Str),
            ("id_token", Ty::Str),
            ("expires_in", Ty::Int),
        ],
    )?;
    let refresh_token = login["refresh_token"].as_str().unwrap_or("").to_string();

    // refresh_token(): {"username", "refresh_token"} -> a new access_token.
    let r = send(
        "/token-refresh",
        json!({"username": username, "refresh_token": refresh_token}),
    )?;
    assert_eq!(r.status, 200, "{}", r.text());
    let refreshed = r.json()?;
    spec.validate("refresh-token", &refreshed)?;
    reads(&refreshed, &[("access_token", Ty::Str)])?;
    let access = refreshed["access_token"].as_str().unwrap_or("");
    let r = request(
        "GET",
        &host.url("/v2/codes"),
        &[("authorization", &format!("Bearer {access}"))],
        None,
    )?;
    assert_eq!(r.status, 200, "the refreshed token works: {}", r.text());

    // revoke_token(): {"refresh_token"} -> 2xx (the SDK reads no body);
    // the token refreshes no more.
    let r = send("/token-revoke", json!({"refresh_token": refresh_token}))?;
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text());
    let r = send(
        "/token-refresh",
        json!({"username": username, "refresh_token": refresh_token}),
    )?;
    assert_eq!(r.status, 401, "{}", r.text());
    spec.validate("error", &r.json()?)?;
    Ok(())
}

/// A metadata call: path, schema, whether a list, the fields its model reads.
type MetadataCase = (
    &'static str,
    &'static str,
    bool,
    &'static [(&'static str, Ty)],
);

#[test]
fn metadata_methods_of_both_sdks_get_what_their_models_read() -> Result<()> {
    let Some((spec, _state, _wiki, host, token)) = app_checked_by(main_spec)? else {
        return Ok(());
    };
    for kit in [Kit::Python, Kit::Go] {
        let sdk = Sdk::new(&host, &token, kit);
        // (path, schema, list?, model fields). `None`, `{}` and a request
        // with fields/filters, as SDK users pass them.
        let cases: &[MetadataCase] = &[
            (
                "codes",
                "code",
                true,
                &[("identifier", Ty::Str), ("name", Ty::Str)],
            ),
            (
                "codes/wiki",
                "code",
                false,
                &[("identifier", Ty::Str), ("name", Ty::Str)],
            ),
            (
                "languages",
                "language",
                true,
                &[("identifier", Ty::Str), ("name", Ty::Str)],
            ),
            (
                "languages/en",
                "language",
                false,
                &[
                    ("identifier", Ty::Str),
                    ("name", Ty::Str),
                    ("direction", Ty::Str),
                ],
            ),
            (
                "projects",
                "project",
                true,
                &[("identifier", Ty::Str), ("url", Ty::Str)],
            ),
            (
                "projects/enwiki",
                "project",
                false,
                &[
                    ("identifier", Ty::Str),
                    ("code", Ty::Str),
                    ("url", Ty::Str),
                    ("in_language.identifier", Ty::Str),
                ],
            ),
            (
                "namespaces",
                "namespace",
                true,
                &[("identifier", Ty::Int), ("name", Ty::Str)],
            ),
            (
                "namespaces/0",
                "namespace",
                false,
                &[("identifier", Ty::Int), ("description", Ty::Str)],
            ),
        ];
        for (path, schema, list, model) in cases {
            for req in [None, Some(json!({}))] {
                let v = sdk.get_entity(path, req.as_ref())?;
                let items = if *list {
                    let items = v.as_array().with_context(|| format!("{path}: a list"))?;
                    ensure!(!items.is_empty(), "{kit:?} {path}: empty");
                    items.clone()
                } else {
                    ensure!(v.is_object(), "{kit:?} {path}: an object: {v}");
                    vec![v]
                };
                for item in &items {
                    spec.validate(schema, item)
                        .with_context(|| format!("{kit:?} {path}"))?;
                    reads(item, model).with_context(|| format!("{kit:?} {path}"))?;
                }
            }
        }
        // A Request with fields and filters, as the SDK READMEs show.
        let req = json!({"fields": ["identifier", "name"],
            "filters": [{"field": "in_language.identifier", "value": "de"}]});
        let v = sdk.get_entity("projects", Some(&req))?;
        let items = v.as_array().context("projects")?;
        ensure!(!items.is_empty(), "de projects");
        for p in items {
            let keys: Vec<&String> = p.as_object().context("object")?.keys().collect();
            ensure!(
                keys.iter().all(|k| *k == "identifier" || *k == "name"),
                "{p}"
            );
            ensure!(
                p["identifier"]
                    .as_str()
                    .is_some_and(|i| i.starts_with("de")),
                "{p}"
            );
        }
        // `limit` cuts a list; NDJSON `Accept` gets the whole list by lines.
        let all = sdk.get_entity("projects", None)?;
        let all = all.as_array().context("projects")?;
        let v = sdk.get_entity("projects", Some(&json!({"limit": 3})))?;
        ensure!(v.as_array().map(Vec::len) == Some(3), "limit 3: {v}");
        ensure!(v[0] == all[0], "the first three: {v}");
        let r = sdk.send(
            "POST",
            "projects",
            &[("accept", "application/x-ndjson")],
            Some(b"{}"),
        )?;
        ensure!(r.status == 200, "{}", r.text());
        ensure!(
            r.header("content-type") == Some("application/x-ndjson"),
            "{:?}",
            r.header("content-type")
        );
        let lines = ndjson(&r.text())?;
        ensure!(lines.len() == all.len(), "{} lines", lines.len());
        for p in &lines {
            spec.validate("project", p)?;
        }
        let r = sdk.send(
            "POST",
            "codes/wiki",
            &[("accept", "application/x-ndjson")],
            None,
        )?;
        let lines = ndjson(&r.text())?;
        ensure!(
            lines.len() == 1 && lines[0]["identifier"] == "wiki",
            "{}",
            r.text()
        );
    }
    Ok(())
}

#[test]
fn on_demand_methods_of_both_sdks_get_articles_and_structured_contents() -> Result<()> {
    let Some((spec, _state, _wiki, host, token)) = app_checked_by(main_spec)? else {
        return Ok(());
    };
    for kit in [Kit::Python, Kit::Go] {
        let sdk = Sdk::new(&host, &token, kit);
        // get_articles / GetArticles.
        for req in [
            None,
            Some(json!({})),
            Some(
                json!({"limit": 1, "filters": [{"field": "is_part_of.identifier", "value": "enwiki"}]}),
            ),
        ] {
            let v = sdk.get_entity("articles/Anarchism", req.as_ref())?;
            let items = v.as_array().context("articles: a list")?;
            ensure!(items.len() == 1, "{kit:?}: {} articles", items.len());
            for a in items {
                spec.validate("article", a)?;
                reads(a, ARTICLE_MODEL)?;
                ensure!(a["name"] == "Anarchism", "{a}");
            }
        }
        let req = json!({"fields": ["name", "identifier", "version.identifier", "is_part_of.*"]});
        let v = sdk.get_entity("articles/Anarchism", Some(&req))?;
        let a = v.get(0).context("one article")?;
        spec.validate("article", a)?;
        reads(
            a,
            &[
                ("name", Ty::Str),
                ("identifier", Ty::Int),
                ("version.identifier", Ty::Int),
                ("is_part_of.identifier", Ty::Str),
            ],
        )?;
        ensure!(a.get("article_body").is_none(), "fields respected: {a}");

        // get_structured_contents / GetStructuredContents.
        let v = sdk.get_entity("structured-contents/Anarchism", Some(&json!({})))?;
        let items = v.as_array().context("structured contents: a list")?;
        ensure!(!items.is_empty(), "{kit:?}: no structured contents");
        for sc in items {
            spec.validate("structured-content", sc)?;
            reads(
                sc,
                &[
                    ("name", Ty::Str),
                    ("identifier", Ty::Int),
                    ("url", Ty::Str),
                    ("abstract", Ty::Str),
                    ("version.identifier", Ty::Int),
                    ("is_part_of.identifier", Ty::Str),
                    ("in_language.identifier", Ty::Str),
                ],
            )?;
        }
    }
    Ok(())
}

#[test]
fn snapshot_and_chunk_methods_of_both_sdks_list_head_read_and_download() -> Result<()> {
    let Some((spec, _state, _wiki, host, token)) = app_checked_by(main_spec)? else {
        return Ok(());
    };
    let mut whole: Option<Vec<u8>> = None;
    for kit in [Kit::Python, Kit::Go] {
        let sdk = Sdk::new(&host, &token, kit);
        // get_snapshots / GetSnapshots, with and without a request.
        let reqs = [
            None,
            Some(json!({})),
            Some(json!({"filters": [{"field": "is_part_of.identifier", "value": "enwiki"}]})),
        ];
        listing(&sdk, &spec, "snapshot", "snapshots", &reqs, SNAPSHOT)?;
        // get_snapshot / GetSnapshot.
        let path = format!("snapshots/{SNAPSHOT}");
        let snap = entity(&sdk, &spec, "snapshot", &path, Some(&json!({})))?;
        reads(&snap, &[("chunks", Ty::Arr)])?;
        let chunks: Vec<String> = snap["chunks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        ensure!(chunks.len() > 1, "several chunks: {snap}");

        // head_snapshot / HeadSnapshot, read_snapshot / ReadSnapshot (a
        // plain GET; Go gunzips and untars it, Python's read_* feeds the
        // gzip bytes to its NDJSON reader), download_snapshot /
        // DownloadSnapshot: HEAD, then the SDK's ranges (Python once with
        // its default single range, once with 1 MB chunks).
        let download = format!("{path}/download");
        let head = head_of(&sdk, &download, &snap)?;
        let chunk_sizes: &[i64] = match kit {
            Kit::Python => &[-1, 1_000_000],
            Kit::Go => &[0],
        };
        let bytes = read_and_download(&sdk, &download, &head, chunk_sizes)?;
        let articles = read_all(&bytes)?;
        ensure!(articles.len() > 100, "{} articles", articles.len());
        for a in articles.iter().take(5) {
            reads(a, ARTICLE_MODEL)?;
        }
        if let Some(w) = &whole {
            ensure!(w == &bytes, "both SDKs read the same snapshot");
        }
        whole = Some(bytes);

        // get_chunks / GetChunks, get_chunk / GetChunk.
        let v = sdk.get_entity(&format!("snapshots/{SNAPSHOT}/chunks"), None)?;
        let listed = v.as_array().context("chunks: a list")?;
        ensure!(listed.len() == chunks.len(), "{v}");
        for c in listed {
            spec.validate("snapshot", c)?;
            reads(c, SNAPSHOT_MODEL)?;
        }
        let first = &chunks[0];
        let path = format!("snapshots/{SNAPSHOT}/chunks/{first}");
        let c = entity(&sdk, &spec, "snapshot", &path, None)?;
        ensure!(c["identifier"] == first.as_str(), "{c}");

        // head_chunk, read_chunk, download_chunk.
        let path = format!("{path}/download");
        let head = sdk.head_entity(&path)?;
        ensure!(head.content_length > 0 && !head.etag.is_empty(), "{head:?}");
        let bytes = read_and_download(&sdk, &path, &head, &[300_000])?;
        ensure!(!read_all(&bytes)?.is_empty(), "chunk holds articles");
    }
    Ok(())
}

/// Checks a structured-contents document the way the current Python
/// SDK's `StructuredContent.from_json` reads it — `infoboxes`,
/// `article_sections`, `references`, `tables`, each `Part` recursively,
/// every `Link` with the `url`, `text` and `images` it indexes without a
/// default — and that WME's current names (`sections`) carry the same parts
/// and the Go SDK's `infobox` the same infoboxes.
fn reads_structured(doc: &Value) -> Result<()> {
    reads(
        doc,
        &[("name", Ty::Str), ("identifier", Ty::Int), ("url", Ty::Str)],
    )?;
    ensure!(
        doc.get("article_body").is_none(),
        "no body: {}",
        doc["name"]
    );
    ensure!(
        doc.get("sections") == doc.get("article_sections"),
        "{}",
        doc["name"]
    );
    ensure!(
        doc.get("infoboxes") == doc.get("infobox"),
        "{}",
        doc["name"]
    );
    fn part(p: &Value) -> Result<()> {
        ensure!(p.is_object(), "a part: {p}");
        if let Some(t) = p.get("type") {
            ensure!(t.is_string(), "type: {p}");
        }
        for link in p
            .get("links")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            reads(
                link,
                &[("url", Ty::Str), ("text", Ty::Str), ("images", Ty::Arr)],
            )?;
        }
        for image in p
            .get("images")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            reads(image, &[("content_url", Ty::Str)])?;
        }
        for child in p
            .get("has_parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            part(child)?;
        }
        Ok(())
    }
    for key in ["infoboxes", "article_sections", "references", "tables"] {
        if let Some(v) = doc.get(key) {
            ensure!(v.is_array(), "{key}: {v}");
        }
    }
    for p in ["infoboxes", "article_sections"]
        .iter()
        .filter_map(|k| doc.get(*k).and_then(Value::as_array))
        .flatten()
    {
        part(p)?;
    }
    for r in doc
        .get("references")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        reads(
            r,
            &[
                ("identifier", Ty::Str),
                ("type", Ty::Str),
                ("text.value", Ty::Str),
            ],
        )?;
    }
    for t in doc
        .get("tables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        reads(t, &[("identifier", Ty::Str)])?;
        for row in ["headers", "rows"]
            .iter()
            .filter_map(|k| t.get(*k).and_then(Value::as_array))
            .flatten()
        {
            for cell in row.as_array().context("a row is a list")? {
                reads(cell, &[("value", Ty::Str)])?;
            }
        }
    }
    Ok(())
}

#[test]
fn structured_snapshot_methods_of_the_python_sdk_list_head_read_and_download() -> Result<()> {
    let Some((spec, _state, _wiki, host, token)) = app_checked_by(main_spec)? else {
        return Ok(());
    };
    let sdk = Sdk::new(&host, &token, Kit::Python);
    // get_structured_snapshots: `snapshots/structured-contents/` (with the
    // slash in the released client, without it in the newer one), with
    // `Request()` and with filters.
    let reqs = [
        Some(json!({})),
        Some(json!({"filters": [{"field": "is_part_of.identifier", "value": "enwiki"}]})),
    ];
    for path in [
        "snapshots/structured-contents/",
        "snapshots/structured-contents",
    ] {
        listing(&sdk, &spec, "snapshot", path, &reqs, SNAPSHOT)?;
    }
    let filtered = sdk.get_entity(
        "snapshots/structured-contents/",
        Some(&json!({"filters": [{"field": "is_part_of.identifier", "value": "dewiki"}]})),
    )?;
    ensure!(filtered == json!([]), "filters apply: {filtered}");

    // get_structured_snapshot.
    let path = format!("snapshots/structured-contents/{SNAPSHOT}");
    let snap = entity(&sdk, &spec, "snapshot", &path, Some(&json!({})))?;
    let article_snap = sdk.get_entity(&format!("snapshots/{SNAPSHOT}"), None)?;
    ensure!(
        snap["version"] != article_snap["version"],
        "a snapshot of its own"
    );
    let only = sdk.get_entity(&path, Some(&json!({"fields": ["version"]})))?;
    ensure!(
        only == json!({"version": snap["version"]}),
        "fields apply: {only}"
    );

    // head_structured_snapshot; read_structured_snapshot, a plain GET
    // whose documents validate and read as the SDK's StructuredContent
    // model reads them; download_structured_snapshot: HEAD, then one
    // range, then 1 MB ranges.
    let download = format!("{path}/download");
    let head = head_of(&sdk, &download, &snap)?;
    let bytes = read_and_download(&sdk, &download, &head, &[-1, 1_000_000])?;
    let docs = read_all(&bytes)?;
    ensure!(docs.len() > 100, "{} documents", docs.len());
    for doc in &docs {
        spec.validate("structured-content", doc)?;
        reads_structured(doc)?;
    }
    let with_links = docs
        .iter()
        .filter(|d| d.to_string().contains("\"links\""))
        .count();
    ensure!(with_links > 50, "{with_links} documents with links");
    ensure!(
        docs.iter().any(|d| d.get("references").is_some()),
        "some document has references"
    );

    // Go: the SDK's example calls GetStructuredSnapshots(ctx,
    // &api.Request{}) and GetStructuredSnapshot(ctx, id, req) with an
    // `in_language.identifier` filter (their source is not in the stored
    // versions of the SDK; getEntity POSTs json.Marshal(req), as for every
    // listing). The example reads DateModified, Identifier and Size.
    let go = Sdk::new(&host, &token, Kit::Go);
    let list = "snapshots/structured-contents";
    listing(&go, &spec, "snapshot", list, &[Some(json!({}))], SNAPSHOT)?;
    let req = json!({"filters": [{"field": "in_language.identifier", "value": "en"}]});
    let one = go.get_entity(&path, Some(&req))?;
    spec.validate("snapshot", &one)?;
    reads(
        &one,
        &[
            ("date_modified", Ty::Str),
            ("identifier", Ty::Str),
            ("size.value", Ty::Num),
        ],
    )?;
    Ok(())
}

#[test]
fn structured_contents_read_under_the_names_both_sdks_models_read() -> Result<()> {
    let Some((spec, _state, _wiki, host, token)) = app_checked_by(main_spec)? else {
        return Ok(());
    };
    for kit in [Kit::Python, Kit::Go] {
        let sdk = Sdk::new(&host, &token, kit);
        let v = sdk.get_entity("structured-contents/Anarchism", Some(&json!({})))?;
        let doc = v.get(0).context("one document")?;
        spec.validate("structured-content", doc)?;
        reads_structured(doc)?;
        reads(
            doc,
            &[
                ("sections", Ty::Arr),
                ("article_sections", Ty::Arr),
                ("references", Ty::Arr),
            ],
        )?;
        ensure!(
            doc["sections"][0]["name"] == "Abstract",
            "{}",
            doc["sections"][0]
        );
        let v = sdk.get_entity("structured-contents/Aristotle", Some(&json!({})))?;
        let aristotle = v.get(0).context("Aristotle")?;
        spec.validate("structured-content", aristotle)?;
        reads_structured(aristotle)?;
        ensure!(
            aristotle["infoboxes"][0]["name"] == "Infobox philosopher",
            "{}",
            aristotle["infoboxes"]
        );
        let lead = doc["sections"][0]["has_parts"][0]["links"]
            .as_array()
            .context("the lead's first paragraph has links")?;
        ensure!(
            lead.iter().any(|l| l["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://en.wikipedia.org/wiki/"))),
            "{lead:?}"
        );
        // `fields` picks one of the names.
        let only = sdk.get_entity(
            "structured-contents/Anarchism",
            Some(&json!({"fields": ["name", "sections.name"]})),
        )?;
        let only = only.get(0).context("one")?;
        ensure!(only.get("article_sections").is_none(), "{only}");
        ensure!(only["sections"][0]["name"] == "Abstract", "{only}");
    }
    Ok(())
}

/// One streaming request as the SDKs send it: `GET` with a JSON body and
/// their headers, over HTTP/1.1; the body read (chunked) until the server
/// ends the connection's stream.
fn stream(host: &Host, path: &str, token: &str, kit: Kit, body: &Value) -> Result<(u16, String)> {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
        ("cache-control", "no-cache"),
        ("accept", "application/x-ndjson"),
        ("connection", "keep-alive"),
    ];
    if let Kit::Python = kit {
        headers.push(("user-agent", "WME Python SDK"));
    }
    let body = body.to_string();
    let r = raw::open(
        host,
        "GET",
        path,
        "HTTP/1.1",
        &headers,
        Some(body.as_bytes()),
    )?;
    let status = r.status;
    Ok((status, String::from_utf8(r.body()?)?))
}

fn ingest_synthetic(host: &Host, range: std::ops::Range<usize>) -> Result<()> {
    let body: String = range
        .clone()
        .map(|n| format!("{}\n", synthetic_event(n, n % 7)))
        .collect();
    let r = ingest(host, body.as_bytes())?;
    ensure!(r.status == 200, "ingest: {}", r.text());
    ensure!(r.json()?["published"] == range.len(), "{}", r.text());
    Ok(())
}

fn ndjson(text: &str) -> Result<Vec<Value>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

#[test]
fn stream_articles_of_both_sdks_reads_the_stream_at_v2_articles_with_a_json_body() -> Result<()> {
    let Some((spec, _state, _wiki, host, token)) = app_checked_by(realtime_spec)? else {
        return Ok(());
    };
    ingest_synthetic(&host, 0..12)?;
    for kit in [Kit::Python, Kit::Go] {
        // `since` as each SDK formats it: Python's isoformat() of an aware
        // datetime, Go's RFC 3339 with nanoseconds.
        let since = match kit {
            Kit::Python => "2000-01-01T00:00:00+00:00",
            Kit::Go => "2000-01-01T00:00:00.000000001Z",
        };
        let (status, text) = stream(&host, "/v2/articles", &token, kit, &json!({"since": since}))?;
        ensure!(status == 200, "{kit:?}: {status} {text}");
        let all = ndjson(&text)?;
        ensure!(all.len() == 12, "{kit:?}: {} events", all.len());
        for e in &all {
            spec.validate("article", e)?;
            reads(
                e,
                &[
                    ("name", Ty::Str),
                    ("identifier", Ty::Int),
                    ("event.identifier", Ty::Str),
                    ("event.type", Ty::Str),
                    ("event.date_published", Ty::Str),
                    ("event.partition", Ty::Int),
                    ("event.offset", Ty::Int),
                    ("is_part_of.identifier", Ty::Str),
                ],
            )?;
        }

        // parts: each event arrives on exactly one part, and part `n`
        // reads partitions 5n..5n+4 (WME's 50 partitions). WME refuses
        // `since` with `parts` (422); parallel consumers start each
        // partition with `since_per_partition` instead.
        let (status, text) = stream(
            &host,
            "/v2/articles",
            &token,
            kit,
            &json!({"since": since, "parts": [0]}),
        )?;
        ensure!(status == 422, "{kit:?}: since with parts: {status} {text}");
        let mut seen = 0;
        for part in 0..10u64 {
            let starts: serde_json::Map<String, Value> = (part * 5..part * 5 + 5)
                .map(|p| (p.to_string(), json!(since)))
                .collect();
            let (status, text) = stream(
                &host,
                "/v2/articles",
                &token,
                kit,
                &json!({"parts": [part], "since_per_partition": starts}),
            )?;
            ensure!(status == 200, "{status} {text}");
            let got = ndjson(&text)?;
            for e in &got {
                let p = e["event"]["partition"].as_u64().context("partition")?;
                ensure!(p / 5 == part, "{kit:?}: partition {p} on part {part}");
            }
            seen += got.len();
        }
        ensure!(seen == 12, "{kit:?}: parts cover {seen} of 12");

        // filters and fields: the events of one page, two fields.
        let name = all[0]["name"].as_str().context("name")?.to_string();
        let expected = all.iter().filter(|e| e["name"] == name.as_str()).count();
        ensure!(expected >= 1 && expected < all.len(), "{name}: {expected}");
        let (status, text) = stream(
            &host,
            "/v2/articles",
            &token,
            kit,
            &json!({"since": since, "fields": ["name", "event.*"],
                "filters": [{"field": "name", "value": name}]}),
        )?;
        ensure!(status == 200, "{status} {text}");
        let some = ndjson(&text)?;
        ensure!(some.len() == expected, "{kit:?}: {} filtered", some.len());
        for e in &some {
            ensure!(
                e["name"] == name.as_str() && e.get("identifier").is_none(),
                "{e}"
            );
        }

        // offsets: resume after the first event of its partition.
        let first = &all[0];
        let p = first["event"]["partition"].as_u64().context("partition")?;
        let o = first["event"]["offset"].as_u64().context("offset")?;
        let (status, text) = stream(
            &host,
            "/v2/articles",
            &token,
            kit,
            &json!({"offsets": {p.to_string(): o + 1}}),
        )?;
        ensure!(status == 200, "{status} {text}");
        // That partition resumes after `o`; the others, without a start,
        // are live and send nothing already in the log.
        let resumed: Vec<(u64, u64)> = ndjson(&text)?
            .iter()
            .map(|e| {
                (
                    e["event"]["partition"].as_u64().unwrap_or(u64::MAX),
                    e["event"]["offset"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        let expected: Vec<(u64, u64)> = all
            .iter()
            .map(|e| {
                (
                    e["event"]["partition"].as_u64().unwrap_or(u64::MAX),
                    e["event"]["offset"].as_u64().unwrap_or(0),
                )
            })
            .filter(|(ep, eo)| *ep == p && *eo > o)
            .collect();
        ensure!(
            resumed == expected,
            "{kit:?}: resumed {resumed:?}, expected {expected:?}"
        );
    }
    // A bad request is a 422 in the WME error shape.
    let (status, text) = stream(
        &host,
        "/v2/articles",
        &token,
        Kit::Go,
        &json!({"parts": [10]}),
    )?;
    ensure!(status == 422, "{status} {text}");
    main_spec()?.validate("error", &serde_json::from_str(&text)?)?;
    // On-demand still answers its own route on the same base URL.
    let sdk = Sdk::new(&host, &token, Kit::Go);
    let v = sdk.get_entity("articles/Anarchism", None)?;
    ensure!(v.as_array().is_some_and(|a| a.len() == 1), "{v}");
    Ok(())
}

/// The UTC date and hour of `date_published`.
fn hour_of(published: &str) -> Result<(String, String)> {
    if published.len() < 13 {
        bail!("date_published '{published}'");
    }
    Ok((published[0..10].to_string(), published[11..13].to_string()))
}

#[test]
fn batch_methods_of_the_python_sdk_list_head_and_download_an_hour() -> Result<()> {
    let Some((spec, _state, _wiki, host, token)) = app_checked_by(main_spec)? else {
        return Ok(());
    };
    let published = publish(&host, &token, Kit::Python, 6)?;
    let (date, hour) = hour_of(&published)?;
    let prefix = format!("batches/{date}/{hour}");
    let sdk = Sdk::new(&host, &token, Kit::Python);

    // get_batches: POST with the request (none, {}, fields+filters).
    let id = "enwiki_namespace_0";
    for b in listing(&sdk, &spec, "batch", &prefix, &[None, Some(json!({}))], id)? {
        let version = b["version"].as_str().unwrap_or("");
        ensure!(
            version.len() == 32 && version.bytes().all(|c| c.is_ascii_hexdigit()),
            "version '{version}' is 32 hex characters"
        );
    }
    let req = json!({"fields": ["identifier", "version"],
        "filters": [{"field": "namespace.identifier", "value": 0}]});
    let v = sdk.get_entity(&prefix, Some(&req))?;
    for b in v.as_array().context("a list")? {
        let keys: Vec<&String> = b.as_object().context("object")?.keys().collect();
        ensure!(keys.len() == 2, "fields respected: {b}");
    }
    // NDJSON, as the spec offers.
    let r = sdk.send(
        "POST",
        &prefix,
        &[("accept", "application/x-ndjson")],
        Some(b"{}"),
    )?;
    ensure!(r.status == 200, "{}", r.text());
    ensure!(!ndjson(&r.text())?.is_empty(), "NDJSON list");

    // get_batch; head_batch, read_batch, download_batch (HEAD + ranges).
    let b = entity(&sdk, &spec, "batch", &format!("{prefix}/{id}"), None)?;
    let path = format!("{prefix}/{id}/download");
    let head = head_of(&sdk, &path, &b)?;
    let used = |host: &Host| -> Result<u64> {
        let report = request(
            "GET",
            &host.url("/v1/quota"),
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )?
        .json()?;
        report["products"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["product"] == "realtime"))
            .and_then(|p| p["used"].as_u64())
            .context("realtime in the quota report")
    };
    let before = used(&host)?;
    let sizes = [(head.content_length / 3).max(1) as i64, -1];
    let whole = read_and_download(&sdk, &path, &head, &sizes)?;
    let docs = read_all(&whole)?;
    ensure!(docs.len() == 6, "{} events in the batch", docs.len());
    for d in &docs {
        reads(d, ARTICLE_MODEL.get(..2).unwrap_or_default())?;
    }
    let after = used(&host)?;
    // Like snapshots: one unit per batch version and account, whatever
    // the number of ranges or repeated downloads.
    ensure!(
        after - before == 1,
        "a read and two ranged downloads of one batch cost {} units",
        after - before
    );
    Ok(())
}

#[test]
fn batch_methods_of_the_go_sdk_read_the_daily_form() -> Result<()> {
    let Some((spec, _state, _wiki, host, token)) = app_checked_by(main_spec)? else {
        return Ok(());
    };
    let published = publish(&host, &token, Kit::Go, 5)?;
    // GetBatches formats the date with Go's DateFormat "2006-01-02": no hour.
    let (date, hour) = hour_of(&published)?;
    let sdk = Sdk::new(&host, &token, Kit::Go);

    // GetBatches(ctx, &dte, nil) and with a Request.
    let reqs = [
        None,
        Some(json!({"filters": [{"field": "is_part_of.identifier", "value": "enwiki"}]})),
    ];
    let id = "enwiki_namespace_0";
    listing(&sdk, &spec, "batch", &format!("batches/{date}"), &reqs, id)?;
    // GetBatch, HeadBatch, ReadBatch, DownloadBatch.
    let path = format!("batches/{date}/{id}");
    let b = entity(&sdk, &spec, "batch", &path, Some(&json!({})))?;
    let path = format!("{path}/download");
    let head = head_of(&sdk, &path, &b)?;
    let read = read_and_download(&sdk, &path, &head, &[0])?;
    let docs = read_all(&read)?;
    ensure!(docs.len() == 5, "{} events in the day's batch", docs.len());
    // The hour form is still answered beside the day form.
    let hourly = sdk.get_entity(&format!("batches/{date}/{hour}/{id}"), None)?;
    ensure!(hourly["identifier"] == id, "{hourly}");
    Ok(())
}

#[test]
fn get_articles_with_a_language_or_project_filter_fetches_a_title_nobody_fetched() -> Result<()> {
    // The responses are checked against WME's OpenAPI schemas, which are
    // real-data fixtures: without them the test is skipped, saying so.
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return Ok(());
    }
    let spec = main_spec()?;
    // Every open English project answers from the mock wiki (whose pages
    // say `pagelanguage: en`).
    let matrix = std::fs::read(repo_root().join("shared/data/sitematrix.json"))?;
    let registry = wikiedge_core::projects::Registry::from_sitematrix(&matrix)?;
    let english: Vec<String> = registry
        .projects()
        .into_iter()
        .filter(|p| p.in_language.as_ref().is_some_and(|l| l.identifier == "en"))
        .filter(|p| !registry.is_closed(&p.identifier))
        .map(|p| p.identifier)
        .collect();
    ensure!(english.len() > 3, "{english:?}");
    let wiki = Wiki::start()?;
    // Two other projects also answer (as English pages: the mock says so),
    // so a lookup that asked every configured upstream would show them.
    let overrides: serde_json::Map<String, Value> = english
        .iter()
        .chain(&["dewiki".to_string(), "afwiki".to_string()])
        .map(|p| (p.clone(), Value::String(wiki.url.clone())))
        .collect();
    let host = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .env(
            "SPIN_VARIABLE_UPSTREAM_OVERRIDES",
            &Value::Object(overrides).to_string(),
        )
        .arg("--quiet")
        .start()?;
    let auth = account(&host, "sdk-filters", "paid")?;
    let token = auth.trim_start_matches("Bearer ").to_string();
    let sdk = Sdk::new(&host, &token, Kit::Python);

    // in_language.identifier: every English project is asked, up to `limit`.
    let req = json!({"limit": 10, "filters": [{"field": "in_language.identifier", "value": "en"}]});
    let v = sdk.get_entity("articles/A_new_title", Some(&req))?;
    let items = v.as_array().context("a list")?;
    ensure!(
        items.len() == english.len().min(10),
        "{} of {} English projects: {v}",
        items.len(),
        english.len()
    );
    for a in items {
        spec.validate("article", a)?;
        reads(a, ARTICLE_MODEL)?;
        ensure!(a["in_language"]["identifier"] == "en", "{a}");
        let project = a["is_part_of"]["identifier"].as_str().unwrap_or("");
        ensure!(english.iter().any(|g| g == project), "{project}");
    }

    // is_part_of.identifier: that project only, fetched on the miss.
    let project = english.last().context("an English project")?;
    let req = json!({"filters": [{"field": "is_part_of.identifier", "value": project}]});
    let v = sdk.get_entity("articles/Another_new_title", Some(&req))?;
    let items = v.as_array().context("a list")?;
    ensure!(items.len() == 1, "{v}");
    ensure!(
        items[0]["is_part_of"]["identifier"] == project.as_str(),
        "{v}"
    );
    Ok(())
}

#[test]
fn an_unfiltered_miss_asks_the_projects_of_unfiltered_projects() -> Result<()> {
    // Two fake wikis, as enwiki and dewiki; a title nobody fetched, asked
    // without filters, goes to the projects `unfiltered_projects` names.
    let en = Wiki::start()?;
    let de = Wiki::start()?;
    let overrides = json!({"enwiki": en.url, "dewiki": de.url}).to_string();
    for (unfiltered, project) in [("dewiki", "dewiki"), (" enwiki ", "enwiki")] {
        let host = Host::builder(BIN, &repo_root().join("spin.toml"))
            .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
            .env("SPIN_VARIABLE_UPSTREAM_OVERRIDES", &overrides)
            .env("SPIN_VARIABLE_UNFILTERED_PROJECTS", unfiltered)
            .arg("--quiet")
            .start()?;
        let auth = account(&host, "sdk-unfiltered", "paid")?;
        let token = auth.trim_start_matches("Bearer ").to_string();
        let sdk = Sdk::new(&host, &token, Kit::Python);
        let hits = |w: &Wiki| w.hits.load(std::sync::atomic::Ordering::SeqCst);
        let (en_before, de_before) = (hits(&en), hits(&de));
        let title = format!("Unfiltered_{project}");
        let v = sdk.get_entity(&format!("articles/{title}"), Some(&json!({})))?;
        let items = v.as_array().context("a list")?;
        ensure!(items.len() == 1, "{unfiltered}: {v}");
        ensure!(
            items[0]["is_part_of"]["identifier"] == project,
            "{unfiltered}: {v}"
        );
        let (en_asked, de_asked) = (hits(&en) - en_before, hits(&de) - de_before);
        match project {
            "dewiki" => ensure!(
                de_asked > 0 && en_asked == 0,
                "en {en_asked}, de {de_asked}"
            ),
            _ => ensure!(
                en_asked > 0 && de_asked == 0,
                "en {en_asked}, de {de_asked}"
            ),
        }
    }
    Ok(())
}
