//! One response path: every component answers errors the same way
//! (`wikiedge_core::reply`), checked route by route on the real app.

use crate::app;
use anyhow::Result;
use wikiedge_tests::{get, post};

/// A protected route of every component that checks a bearer token.
const PROTECTED: &[&str] = &[
    "/v2/articles/Squirrel",
    "/v2/structured-contents/Squirrel",
    "/v2/projects",
    "/v2/snapshots",
    "/v2/batches/2026-01-01/00",
    "/v2/articles",
    "/v1/quota",
    "/v1/usage",
    "/v1/get-user",
];

#[test]
fn every_401_names_the_bearer_scheme_with_the_wme_body() -> Result<()> {
    let host = app()?;
    for path in PROTECTED {
        for auth in [None, Some("Bearer not-a-token")] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
            let r = get(&host.url(path), &headers)?;
            assert_eq!(r.status, 401, "{path} {auth:?}: {}", r.text());
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer"),
                "{path} {auth:?}: 401 without WWW-Authenticate"
            );
            assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
            let body = r.json()?;
            assert_eq!(body["status"], 401, "{path}: {body}");
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{path}: {body}"
            );
        }
    }
    Ok(())
}

#[test]
fn json_bodies_follow_one_rule_set_everywhere() -> Result<()> {
    let host = app()?;
    let big = vec![b' '; 64 * 1024 + 1];
    // A declared JSON body over 64 KiB: 413 from auth and from quota alike.
    for path in ["/v1/login", "/v1/access-requests"] {
        let r = post(
            &host.url(path),
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer x"),
            ],
            &big,
        )?;
        assert!(
            r.status == 413 || r.status == 401,
            "{path}: {} {}",
            r.status,
            r.text()
        );
        if path == "/v1/login" {
            assert_eq!(r.status, 413, "{path}: {}", r.text());
        }
        // Another content type: 415 before anything else about the body.
        let r = post(
            &host.url("/v1/login"),
            &[("content-type", "text/plain")],
            b"{}",
        )?;
        assert_eq!(r.status, 415, "{}", r.text());
        assert_eq!(r.json()?["status"], 415);
    }
    Ok(())
}
