//! Every response body of the On-demand and metadata routes validates
//! against the official WME OpenAPI schemas in the fixtures.

use crate::articles::{app_with_sample, bearer};
use anyhow::{Context, Result};
use wikiedge_tests::openapi::Spec;
use wikiedge_tests::{fixtures_or_skip, get, post};

fn spec(fixtures: &std::path::Path) -> Result<Spec> {
    Spec::load(&fixtures.join("wme/openapi/wme_main_api_openapi_2024-01.yaml"))
}

#[test]
fn articles_and_metadata_validate_against_the_official_schemas() -> Result<()> {
    let Some(fixtures) = fixtures_or_skip() else {
        return Ok(());
    };
    let spec = spec(&fixtures)?;
    let Some((_state, host)) = app_with_sample(&[])? else {
        return Ok(());
    };
    let auth = bearer(&host, "schema")?;
    let h = [("authorization", auth.as_str())];

    // Real imported articles, whole and projected, as JSON and NDJSON.
    let titles = [
        "Anarchism",
        "Afghanistan",
        "Albedo",
        "Ayn_Rand",
        "Aristotle",
        "Autism",
    ];
    let mut checked = 0;
    for title in titles {
        let r = get(&host.url(&format!("/v2/articles/{title}")), &h)?;
        if r.status == 404 {
            continue;
        }
        assert_eq!(r.status, 200, "{title}: {}", r.text());
        for article in r.json()?.as_array().context("array")? {
            spec.validate("article", article)
                .with_context(|| format!("article {title}"))?;
            checked += 1;
        }
    }
    assert!(checked >= 4, "validated {checked} articles");

    let r = post(
        &host.url("/v2/articles/Anarchism"),
        &[h[0], ("content-type", "application/json")],
        br#"{"fields":["name","version.identifier","is_part_of.*","categories"]}"#,
    )?;
    for article in r.json()?.as_array().context("array")? {
        spec.validate("article", article)?;
    }
    let r = get(
        &host.url("/v2/articles/Anarchism"),
        &[h[0], ("accept", "application/x-ndjson")],
    )?;
    for line in r.text().lines().filter(|l| !l.is_empty()) {
        spec.validate("article", &serde_json::from_str(line)?)?;
    }

    // Structured contents.
    let r = get(&host.url("/v2/structured-contents/Anarchism"), &h)?;
    assert_eq!(r.status, 200, "{}", r.text());
    for sc in r.json()?.as_array().context("array")? {
        spec.validate("structured-content", sc)?;
    }

    // Metadata.
    for (path, schema) in [
        ("/v2/projects", "project"),
        ("/v2/projects/enwiki", "project"),
        ("/v2/languages/en", "language"),
        ("/v2/codes", "code"),
        ("/v2/codes/wiki", "code"),
        ("/v2/namespaces", "namespace"),
        ("/v2/namespaces/0", "namespace"),
    ] {
        let r = get(&host.url(path), &h)?;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let v = r.json()?;
        let items = match v.as_array() {
            Some(items) => items.clone(),
            None => vec![v],
        };
        for item in &items {
            spec.validate(schema, item)
                .with_context(|| path.to_string())?;
        }
    }

    // Errors have the WME error shape.
    let r = get(&host.url("/v2/articles/Anarchism?limit=11"), &h)?;
    assert_eq!(r.status, 422);
    spec.validate("error", &r.json()?)?;
    Ok(())
}
