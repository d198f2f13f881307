//! The portal in a real browser: Debian's Chromium, headless, driven over
//! WebDriver (plain HTTP to `chromedriver`) against the whole application.
//! A visitor signs up (the proof of work solved in the page), reads the code
//! from the dev outbox, confirms, logs in, sees the quota drop after an
//! article request made with their token, asks for exceptional access; the
//! admin approves it with a higher limit in the review queue; the visitor's
//! dashboard then shows the higher limit and the grant's expiry. Screenshots go
//! to `target/browser-screenshots/`.
//!
//! Needs `chromium` and `chromium-driver` (`.ci/run` installs them); without
//! `/usr/bin/chromedriver` the test says so and passes without running.

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wikiedge_cli::import::{ImportArgs, run as import};
use wikiedge_tests::{Host, TempDir, free_port, get, repo_root, request, target_dir};

use crate::{ADMIN_KEY, BIN};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    session: String,
    _profile: TempDir,
}

impl Driver {
    fn start() -> Result<Driver> {
        let port = free_port();
        let log = target_dir().join("browser-screenshots/chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--verbose")
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while get(&format!("{base}/status"), &[]).is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not start within 20 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = TempDir::new("chromium-profile")?;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,1600",
            // chromedriver's reliable channel (it recommends it itself).
            "--remote-debugging-pipe",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!(
            "--user-data-dir={}",
            profile.path().canonicalize()?.display()
        )])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
        }}});
        let mut driver = Driver {
            child,
            base,
            session: String::new(),
            _profile: profile,
        };
        let created = driver.call("POST", "/session", Some(caps))?;
        driver.session = created["sessionId"]
            .as_str()
            .context("sessionId")?
            .to_string();
        Ok(driver)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let body = body.map(|b| b.to_string().into_bytes());
        let resp = request(
            method,
            &url,
            &[("content-type", "application/json")],
            body.as_deref(),
        )?;
        let value: Value = resp.json()?;
        if resp.status != 200 {
            bail!("webdriver {method} {path}: {} {value}", resp.status);
        }
        Ok(value["value"].clone())
    }

    fn open(&self, url: &str) -> Result<()> {
        self.call("POST", "/url", Some(json!({ "url": url })))?;
        Ok(())
    }

    fn find(&self, css: &str) -> Result<String> {
        let found = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Ok(found[ELEMENT].as_str().context("element id")?.to_string())
    }

    fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let id = self.find(css)?;
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )?;
        Ok(())
    }

    fn click(&self, css: &str) -> Result<()> {
        let id = self.find(css)?;
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})))?;
        Ok(())
    }

    fn text(&self, css: &str) -> Result<String> {
        let id = self.find(css)?;
        Ok(self
            .call("GET", &format!("/element/{id}/text"), None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// Waits (at most `secs`) until the element's text contains `want`.
    fn wait_text(&self, css: &str, want: &str, secs: u64) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.text(css).unwrap_or_default();
            if text.contains(want) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                let status = self.text("#status").unwrap_or_default();
                bail!("{css} never showed {want:?}: {text:?} (status: {status:?})");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn screenshot(&self, dir: &Path, name: &str) -> Result<PathBuf> {
        let png = self.call("GET", "/screenshot", None)?;
        let bytes = STANDARD.decode(png.as_str().context("screenshot")?)?;
        anyhow::ensure!(bytes.starts_with(b"\x89PNG"), "a PNG");
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        Ok(path)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", "", None);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn outbox_code(host: &Host, username: &str) -> Result<String> {
    let resp = get(&host.url("/v1/admin/outbox"), &[("x-admin-key", ADMIN_KEY)])?;
    let messages = resp.json()?["messages"].clone();
    let code = messages
        .as_array()
        .context("messages")?
        .iter()
        .rev()
        .find(|m| m["username"] == username && m["purpose"] == "confirm")
        .and_then(|m| m["code"].as_str())
        .context("no confirmation code in the outbox")?;
    Ok(code.to_string())
}

#[test]
fn a_visitor_signs_up_asks_for_access_and_the_admin_approves_it() -> Result<()> {
    if !Path::new(CHROMEDRIVER).exists() {
        eprintln!(
            "browser test skipped: {CHROMEDRIVER} is not installed (apt-get install chromium chromium-driver)"
        );
        return Ok(());
    }
    let shots = target_dir().join("browser-screenshots");
    std::fs::create_dir_all(&shots)?;
    // The project's own sample dump (no downloaded data needed), so an
    // article request is served from the store.
    let state = TempDir::new("browser")?;
    let dump = wikiedge_tests::sample_dump(BIN, state.path(), 0)?;
    import(ImportArgs::new(dump, Some("enwiki".into())).with_state_dir(state.path()))?;
    let host = Host::builder(BIN, &repo_root().join("spin.toml"))
        .env("SPIN_VARIABLE_ADMIN_API_KEY", ADMIN_KEY)
        .env("SPIN_VARIABLE_SIGNUP_POW_DIFFICULTY", "12")
        .state_dir(state.path())
        .start()?;
    let driver = Driver::start()?;
    let portal = host.url("/portal");

    // Sign up: the page fetches a challenge and solves it with WebCrypto.
    driver.open(&format!("{portal}#signup"))?;
    driver.type_into("#su-username", "ada")?;
    driver.type_into("#su-email", "ada@example.org")?;
    driver.type_into("#su-password", "correct horse battery")?;
    driver.click("#signup-form button[type=submit]")?;
    driver.wait_text("#status", "Account created", 90)?;

    // Confirm with the code from the dev outbox, then log in.
    let code = outbox_code(&host, "ada")?;
    driver.type_into("#cf-code", &code)?;
    driver.click("#confirm-form button[type=submit]")?;
    driver.wait_text("#status", "Confirmed", 30)?;
    driver.type_into("#li-password", "correct horse battery")?;
    driver.click("#login-form button[type=submit]")?;
    driver.wait_text("#who", "Logged in as ada", 30)?;
    let quota = driver.wait_text("#quota-table tbody", "ondemand", 30)?;
    // Resets are shown as a date this side of 1970 (the API gives seconds left).
    anyhow::ensure!(!quota.contains("1970"), "{quota}");
    driver.wait_text("#usage-caption", "Requests denied", 30)?;
    anyhow::ensure!(driver.text("#account")?.contains("free"), "free plan");
    anyhow::ensure!(
        driver.text("#grants")?.contains("None"),
        "no grant yet: {quota}"
    );
    let used = "#quota-table tbody tr:first-child td:nth-child(3)";
    anyhow::ensure!(driver.text(used)? == "0", "nothing used yet: {quota}");

    // An article request with the visitor's token (read from the page's
    // sessionStorage); after a reload the dashboard shows the quota used.
    let token = driver.call(
        "POST",
        "/execute/sync",
        Some(json!({"script": "return sessionStorage.getItem('wikiedge.access');", "args": []})),
    )?;
    let bearer = format!(
        "Bearer {}",
        token.as_str().context("token in sessionStorage")?
    );
    let article = get(
        &host.url("/v2/articles/Anarchism"),
        &[("authorization", &bearer)],
    )?;
    anyhow::ensure!(article.status == 200, "article: {}", article.status);
    driver.call("POST", "/refresh", Some(json!({})))?;
    driver.wait_text("#who", "Logged in as ada", 30)?;
    let after = driver.wait_text(used, "1", 30)?;
    anyhow::ensure!(after == "1", "one on-demand request used: {after}");
    let left = driver.text("#quota-table tbody tr:first-child td:nth-child(4)")?;
    let limit = driver.text("#quota-table tbody tr:first-child td:nth-child(2)")?;
    anyhow::ensure!(
        left.parse::<u64>()? + 1 == limit.parse::<u64>()?,
        "{left} of {limit}"
    );
    driver.wait_text("#usage-caption", "Requests denied", 30)?;
    driver.screenshot(&shots, "dashboard.png")?;

    // The data view lists snapshots (none are built here) without an error.
    driver.open(&format!("{portal}#data"))?;
    driver.wait_text("#snapshots-table", "Identifier", 30)?;
    std::thread::sleep(Duration::from_millis(1500));
    let class = driver.call(
        "POST",
        "/execute/sync",
        Some(json!({"script": "return document.getElementById('status').className;", "args": []})),
    )?;
    anyhow::ensure!(class != "error", "data view: {}", driver.text("#status")?);

    // Ask for exceptional access.
    driver.open(&format!("{portal}#access"))?;
    for (id, text) in [
        ("#ac-who", "A university research group"),
        ("#ac-purpose", "Studying citation practice"),
        ("#ac-need", "We need every article of two wikis monthly"),
        ("#ac-obligation", "Results are published openly"),
        ("#ac-mission", "It improves verifiability"),
        ("#ac-values", "Open data, open results"),
    ] {
        driver.type_into(id, text)?;
    }
    driver.click("#access-form button[type=submit]")?;
    driver.wait_text("#status", "Request sent", 30)?;
    driver.wait_text("#my-requests", "pending", 30)?;

    // The admin (with the admin key, kept in page memory) approves it.
    driver.open(&format!("{portal}#admin"))?;
    driver.type_into("#admin-key", &format!("{ADMIN_KEY}\u{E004}"))?;
    driver.wait_text("#review-queue", "Studying citation practice", 30)?;
    let accounts = driver.wait_text("#accounts-table", "ada", 30)?;
    anyhow::ensure!(accounts.contains("active"), "{accounts}");
    driver.screenshot(&shots, "review-queue.png")?;
    // Approve with a higher on-demand limit than the free plan's.
    let field = driver.find("#review-queue input[name=ondemand]")?;
    driver.call("POST", &format!("/element/{field}/clear"), Some(json!({})))?;
    driver.type_into("#review-queue input[name=ondemand]", "250000")?;
    driver.click("#review-queue form button[value=approve]")?;
    driver.wait_text("#status", "Approved", 30)?;
    driver.wait_text("#review-queue", "Nothing to review", 30)?;

    // The visitor's dashboard shows the grant and its expiry.
    driver.open(&format!("{portal}#dashboard"))?;
    let grants = driver.wait_text("#grants", "until", 30)?;
    anyhow::ensure!(grants.contains("ondemand: 250000/month"), "{grants}");
    let limit = driver.wait_text("#quota-table tbody tr:first-child", "250000", 30)?;
    anyhow::ensure!(
        limit.contains("249999"),
        "the higher limit, one used: {limit}"
    );
    driver.screenshot(&shots, "dashboard-approved.png")?;
    Ok(())
}
