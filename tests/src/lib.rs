//! End-to-end test support: start the real `wikiedge` binary on a manifest,
//! talk HTTP to it, stop or kill it.
//!
//! The e2e tests themselves live in `tests/e2e/` and are compiled as the
//! `e2e` test target of the `wikiedge` package (so `cargo test` builds the binary
//! first and hands its path over as `CARGO_BIN_EXE_wikiedge`). Components are
//! built once per test run through `wikiedge build`, i.e. with the same
//! build commands `spin build` would run.

pub mod fake;
pub mod manifest;
pub mod openapi;
mod ports;
pub mod raw;
mod redis;

pub use ports::{free_port, listens_on};
pub use redis::RedisServer;

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The real public fixtures: `WIKIEDGE_FIXTURES`, else `../shared/fixtures`
/// beside the repository. They are not the project's to commit, so a clone
/// on its own does not have them: tests reading them start with
/// [`fixtures_or_skip`].
pub fn fixtures() -> PathBuf {
    match std::env::var_os("WIKIEDGE_FIXTURES") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join("../shared/fixtures"),
    }
}

/// The fixtures folder when it exists. Otherwise prints why the running test
/// is skipped, straight to stderr (past the harness's capture, so `cargo
/// test` lists it), and returns `None`; under `WIKIEDGE_REQUIRE_FIXTURES=1`
/// (CI) a missing folder fails the test instead.
pub fn fixtures_or_skip() -> Option<PathBuf> {
    use std::io::Write;
    let dir = fixtures();
    if dir.is_dir() {
        return Some(dir);
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let reason = format!(
        "{test}: skipped: the real-data fixtures are not at {} (put ../shared/fixtures beside the checkout or set WIKIEDGE_FIXTURES)",
        dir.display()
    );
    if std::env::var("WIKIEDGE_REQUIRE_FIXTURES").is_ok_and(|v| v == "1") {
        panic!("{reason}, and WIKIEDGE_REQUIRE_FIXTURES=1");
    }
    let _ = writeln!(std::io::stderr(), "{reason}");
    None
}

/// Writes the project's own sample dump (`wikiedge sample-dump`, with
/// `extra_pages` generated articles) into `dir` and returns its path.
pub fn sample_dump(bin: &str, dir: &Path, extra_pages: u32) -> Result<PathBuf> {
    let path = dir.join(format!("sample-{extra_pages}.xml"));
    let out = Command::new(bin)
        .arg("sample-dump")
        .arg(&path)
        .args(["--extra-pages", &extra_pages.to_string()])
        .output()
        .context("running wikiedge sample-dump")?;
    if !out.status.success() {
        bail!(
            "wikiedge sample-dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(path)
}

/// The cargo target directory the components are built into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// A fresh directory under the target dir (`tempfile`), removed on drop.
/// Under the target dir rather than `/tmp` so that the SQLite stores the
/// tests write sit on the same disk as the build.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// Create one, named after `tag`.
    pub fn new(tag: &str) -> Result<Self> {
        let parent = target_dir().join("e2e-tmp");
        std::fs::create_dir_all(&parent)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{tag}-"))
            .tempdir_in(&parent)
            .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
        Ok(TempDir(dir))
    }
    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// Run `wikiedge build --from manifest` once per process and manifest.
pub fn build_components(bin: &str, manifest: &Path) -> Result<()> {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, bool>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built
        .lock()
        .map_err(|_| anyhow::anyhow!("build lock poisoned"))?;
    let key = manifest.to_path_buf();
    if built.contains_key(&key) {
        return Ok(());
    }
    let status = Command::new(bin)
        .args(["build", "--from"])
        .arg(manifest)
        .status()
        .context("running wikiedge build")?;
    if !status.success() {
        bail!("wikiedge build --from {} failed", manifest.display());
    }
    built.insert(key, true);
    Ok(())
}

/// The variables that open `spin.toml`'s outbound allow-lists to loopback,
/// as every test host gets them.
pub const LOOPBACK_OUTBOUND: &[(&str, &str)] = &[
    ("SPIN_VARIABLE_UPSTREAM_EXTRA_HOST", "http://127.0.0.1:*"),
    ("SPIN_VARIABLE_MAIL_WEBHOOK_HOST", "http://127.0.0.1:*"),
];

/// How to start a host.
pub struct Builder {
    bin: String,
    manifest: PathBuf,
    env: Vec<(String, String)>,
    state_dir: Option<PathBuf>,
    runtime_config: Option<PathBuf>,
    extra_args: Vec<String>,
    build: bool,
    cache_dir: Option<PathBuf>,
    first_port: Option<u16>,
}

impl Builder {
    /// Set an environment variable for the host (e.g. `SPIN_VARIABLE_X`).
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    /// Use this state dir instead of a fresh one (to test restarts).
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_path_buf());
        self
    }
    /// Use a runtime config file.
    pub fn runtime_config(mut self, file: &Path) -> Self {
        self.runtime_config = Some(file.to_path_buf());
        self
    }
    /// Extra command-line arguments for `wikiedge up`.
    pub fn arg(mut self, a: &str) -> Self {
        self.extra_args.push(a.to_string());
        self
    }
    /// Keep compiled code in this directory instead of the shared one in
    /// the target directory (a test that watches what of its host's code
    /// is resident needs files no other host maps).
    pub fn cache_dir(mut self, dir: &Path) -> Self {
        self.cache_dir = Some(dir.to_path_buf());
        self
    }
    /// Skip `wikiedge build` (the manifest's wasm files already exist).
    pub fn no_build(mut self) -> Self {
        self.build = false;
        self
    }

    /// Try `port` first instead of a free one (to test what happens when
    /// the port is taken).
    pub fn first_port(mut self, port: u16) -> Self {
        self.first_port = Some(port);
        self
    }

    /// Start the host and wait until it serves.
    pub fn start(self) -> Result<Host> {
        if self.build {
            build_components(&self.bin, &self.manifest)?;
        }
        let own_state = match &self.state_dir {
            Some(_) => None,
            None => Some(TempDir::new("state")?),
        };
        let state_dir = self.state_dir.clone().unwrap_or_else(|| {
            own_state
                .as_ref()
                .map(|t| t.path().to_path_buf())
                .unwrap_or_default()
        });
        // `free_port` only says a port was free a moment ago: another test
        // may bind it first, and then this host cannot listen. Such a host
        // exits at once saying so; start it again on another port.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = match (attempt, self.first_port) {
                (1, Some(port)) => port,
                _ => free_port(),
            };
            let mut host = self.spawn(port, state_dir.clone())?;
            match host.wait_ready(Duration::from_secs(120)) {
                Ok(()) => {
                    host._own_state = own_state;
                    return Ok(host);
                }
                Err(e) if attempt < 4 && host.lost_its_port() => {
                    eprintln!("wikiedge up lost port {port} to another process, retrying: {e}");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Spawn `wikiedge up` on `port`; not yet waited for.
    fn spawn(&self, port: u16, state_dir: PathBuf) -> Result<Host> {
        let log_path = state_dir.with_extension(format!("log-{port}"));
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("up")
            .arg("--from")
            .arg(&self.manifest)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--state-dir")
            .arg(&state_dir)
            .arg("--cache-dir")
            .arg(
                self.cache_dir
                    .clone()
                    .unwrap_or_else(|| target_dir().join("wikiedge-compile-cache")),
            )
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(rc) = &self.runtime_config {
            cmd.arg("--runtime-config-file").arg(rc);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("spawning wikiedge up")?;
        Ok(Host {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            state_dir,
            _own_state: None,
            log_path,
            builder_env: self.env.clone(),
            manifest: self.manifest.clone(),
            bin: self.bin.clone(),
        })
    }
}

/// A running `wikiedge up`.
pub struct Host {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The state dir it uses.
    pub state_dir: PathBuf,
    _own_state: Option<TempDir>,
    log_path: PathBuf,
    builder_env: Vec<(String, String)>,
    manifest: PathBuf,
    bin: String,
}

impl Host {
    /// Start building a host for `manifest`, using the binary at `bin`.
    ///
    /// The production `spin.toml` lets no component reach loopback; tests
    /// whose mock upstreams and webhooks listen on 127.0.0.1 get it through
    /// the manifest's own variables (`.env` can set them back).
    pub fn builder(bin: &str, manifest: &Path) -> Builder {
        Builder {
            bin: bin.to_string(),
            manifest: manifest.to_path_buf(),
            env: LOOPBACK_OUTBOUND
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            state_dir: None,
            runtime_config: None,
            extra_args: Vec::new(),
            build: true,
            cache_dir: None,
            first_port: None,
        }
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The address it listens on, `host:port`: what a raw connection
    /// connects to and sends as its `Host` header.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The host's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The host's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        let addr = self.addr().to_string();
        while start.elapsed() < limit {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("wikiedge up exited early ({status}):\n{}", self.log());
            }
            // Ready when this child holds the listening socket: a connection
            // alone could reach another process that took the port first.
            if let Some(pid) = self.pid()
                && let Some(port) = addr.rsplit(':').next().and_then(|p| p.parse().ok())
                && listens_on(pid, port)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "wikiedge up did not listen within {limit:?}:\n{}",
            self.log()
        )
    }

    /// Whether the host exited because its port was taken.
    fn lost_its_port(&mut self) -> bool {
        let exited = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
        exited && self.log().contains("cannot listen on")
    }

    /// Send SIGTERM and wait for the process to exit (at most `limit`).
    pub fn terminate(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("not running")
        };
        // SAFETY-free: libc::kill is a plain syscall wrapper.
        signal(child.id(), libc::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                bail!("wikiedge did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the host: no chance to flush anything.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Start a new host on the same manifest, state dir and environment.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.terminate(Duration::from_secs(30))?;
        }
        let mut b = Host::builder(&self.bin, &self.manifest)
            .state_dir(&self.state_dir)
            .no_build();
        for (k, v) in &self.builder_env {
            b = b.env(k, v);
        }
        let mut new = b.start()?;
        self.base = new.base.clone();
        self.log_path = new.log_path.clone();
        self.child = new.child.take();
        Ok(())
    }
}

#[allow(unsafe_code)]
fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Resp {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("not JSON (status {}): {}", self.status, self.text()))
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .max_idle_connections_per_host(64)
            .build()
            .into()
    })
}

/// Send one request. `headers` are `(name, value)` pairs.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Resp> {
    let mut builder = http_request(method, url)?;
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = builder.body(body.map(|b| b.to_vec()).unwrap_or_default())?;
    let mut resp = agent()
        .run(req)
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut body = Vec::new();
    resp.body_mut().as_reader().read_to_end(&mut body)?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn http_request(method: &str, url: &str) -> Result<ureq::http::request::Builder> {
    Ok(ureq::http::Request::builder().method(method).uri(url))
}

/// Sends `GET path` with `Authorization: auth` on a raw connection and reads
/// only the response head, leaving the body unread: a client that takes its
/// time (a held download, a stalled stream). Returns the connection and the
/// status line.
pub fn get_head_only(host: &Host, path: &str, auth: &str) -> Result<(std::net::TcpStream, String)> {
    get_head_only_with(host, path, &[("Authorization", auth)])
}

/// [`get_head_only`] with any request headers.
pub fn get_head_only_with(
    host: &Host,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(std::net::TcpStream, String)> {
    use std::io::Write;
    let addr = host.addr();
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if s.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    Ok((s, head.lines().next().unwrap_or_default().to_string()))
}

/// Reads `stream` until the server closes it (or it fails, or its read
/// timeout passes) and returns how many bytes came: what a client that
/// stalled gets once it reads on.
pub fn bytes_until_closed(stream: &mut std::net::TcpStream) -> usize {
    let mut received = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return received,
            Ok(n) => received += n,
        }
    }
}

/// GET a URL.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Resp> {
    request("GET", url, headers, None)
}

/// POST a body.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Resp> {
    request("POST", url, headers, Some(body))
}
