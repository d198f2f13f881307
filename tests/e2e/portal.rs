//! The portal component (`functions/portal`): its compiled-in assets, its
//! security headers through the real host, and the OpenAPI document, which
//! must name every route of `spin.toml`.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::PathBuf;

use wikiedge_tests::manifest::{Component, spin_manifest};
use wikiedge_tests::{Host, get, post, repo_root, target_dir};

use crate::BIN;

fn asset(name: &str) -> Result<String> {
    let path = repo_root().join("functions/portal/static").join(name);
    std::fs::read_to_string(&path).with_context(|| path.display().to_string())
}

fn openapi() -> Result<Value> {
    Ok(serde_json::from_str(&asset("openapi.json")?)?)
}

/// The routes of `spin.toml` (without the catch-all `/...`).
fn spin_routes() -> Result<Vec<String>> {
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo_root().join("spin.toml"))?)?;
    let triggers = manifest["trigger"]["http"]
        .as_array()
        .context("[[trigger.http]]")?;
    Ok(triggers
        .iter()
        .filter_map(|t| t["route"].as_str())
        .filter(|r| *r != "/...")
        .map(str::to_string)
        .collect())
}

/// Whether an OpenAPI path documents a Spin route: `:name` is `{name}`,
/// and a trailing `/...` is any path at or under its prefix.
fn documents(route: &str, path: &str) -> bool {
    let route: String = route
        .split('/')
        .map(|seg| match seg.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/");
    match route.strip_suffix("/...") {
        Some(prefix) => path == prefix || path.starts_with(&format!("{prefix}/")),
        None => path == route,
    }
}

#[test]
fn every_route_in_spin_toml_is_in_the_openapi_document() -> Result<()> {
    let doc = openapi()?;
    anyhow::ensure!(doc["openapi"] == "3.1.0", "OpenAPI 3.1");
    let paths: Vec<&String> = doc["paths"].as_object().context("paths")?.keys().collect();
    let routes = spin_routes()?;
    anyhow::ensure!(routes.len() > 20, "spin.toml has its routes: {routes:?}");
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| !paths.iter().any(|p| documents(r, p)))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "routes missing from openapi.json: {missing:?}"
    );
    // The matcher itself: a wildcard needs a path under it, a parameter its name.
    anyhow::ensure!(documents("/v2/articles/...", "/v2/articles/{name}"));
    anyhow::ensure!(!documents("/v2/articles/...", "/v2/articlesx"));
    anyhow::ensure!(documents(
        "/v1/admin/accounts/:username/plan",
        "/v1/admin/accounts/{username}/plan"
    ));
    anyhow::ensure!(!documents("/v1/quota", "/v1/quotas"));
    Ok(())
}

#[test]
fn the_page_has_no_inline_code_no_third_party_and_no_local_storage() -> Result<()> {
    let html = asset("index.html")?;
    anyhow::ensure!(html.contains(r#"<script src="/portal/app.js" defer></script>"#));
    anyhow::ensure!(html.contains(r#"href="/portal/app.css""#));
    anyhow::ensure!(html.matches("<script").count() == 1, "one script, external");
    anyhow::ensure!(!html.contains("style="), "no inline styles");
    for handler in ["onclick=", "onsubmit=", "onload=", "onerror=", "oninput="] {
        anyhow::ensure!(!html.contains(handler), "inline handler {handler}");
    }
    anyhow::ensure!(!html.contains("http://") && !html.contains("https://"));
    // Every input is labelled.
    for id in html
        .split("<input id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
    {
        anyhow::ensure!(
            html.contains(&format!("for=\"{id}\"")),
            "input {id} has no label"
        );
    }
    let js = asset("app.js")?;
    anyhow::ensure!(!js.contains("localStorage"), "tokens never in localStorage");
    let js = js.replace("http://www.w3.org/2000/svg", "");
    anyhow::ensure!(!js.contains("http://") && !js.contains("https://"));
    Ok(())
}

fn portal_manifest() -> Result<PathBuf> {
    let source = format!(
        "{}/wasm32-wasip2/component/wikiedge_portal.wasm",
        target_dir().display()
    );
    let manifest = spin_manifest(
        "portal-only",
        &[("/portal/...", "portal"), ("/openapi.json", "portal")],
        &[Component {
            id: "portal",
            source: &source,
            build: "cargo build --target wasm32-wasip2 --profile component -p wikiedge-portal",
        }],
    );
    let dir = target_dir().join("e2e-tmp");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("portal-only.toml");
    std::fs::write(&path, manifest)?;
    Ok(path)
}

#[test]
fn the_portal_serves_its_assets_with_a_strict_policy() -> Result<()> {
    let host = Host::builder(BIN, &portal_manifest()?).start()?;
    for (path, kind, file) in [
        ("/portal", "text/html", "index.html"),
        ("/portal/", "text/html", "index.html"),
        ("/portal/app.js", "text/javascript", "app.js"),
        ("/portal/app.css", "text/css", "app.css"),
        ("/openapi.json", "application/json", "openapi.json"),
    ] {
        let resp = get(&host.url(path), &[])?;
        anyhow::ensure!(resp.status == 200, "{path}: {}", resp.status);
        anyhow::ensure!(
            resp.header("content-type")
                .is_some_and(|c| c.starts_with(kind)),
            "{path}: {:?}",
            resp.header("content-type")
        );
        anyhow::ensure!(resp.text() == asset(file)?, "{path} serves {file}");
        let csp = resp.header("content-security-policy").context("CSP")?;
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            anyhow::ensure!(csp.contains(part), "{path}: CSP {csp}");
        }
        anyhow::ensure!(!csp.contains("unsafe-inline"), "{csp}");
        anyhow::ensure!(resp.header("x-content-type-options") == Some("nosniff"));
    }
    let missing = get(&host.url("/portal/../spin.toml"), &[])?;
    anyhow::ensure!(missing.status == 404, "{}", missing.status);
    let posted = post(&host.url("/portal"), &[], b"x")?;
    anyhow::ensure!(posted.status == 405, "{}", posted.status);
    Ok(())
}
