//! Route matching with Spin's semantics.
//!
//! Routes are exact (`/foo`), may have named segments (`/users/:id`), and
//! may end in a trailing wildcard (`/foo/...`, also written `/foo/*`). The
//! most specific route wins, segment by segment: a literal segment beats a
//! named one, which beats the wildcard, so an exact match beats any wildcard
//! and among wildcards the longest prefix wins (routefinder's order, which
//! Spin uses). Named segments are passed as `spin-path-match-<name>`. Private routes (`{ private = true }`) are not reachable from
//! outside. A route declared twice is taken by the later declaration, as in
//! Spin, and reported as a warning. The application base
//! (`[application.trigger.http] base`) prefixes every route.

use crate::manifest::Manifest;
use http::{HeaderName, HeaderValue};

/// One routable entry.
#[derive(Debug, Clone)]
struct Entry {
    component: String,
    /// The route including the base, as written (`/base/foo/...`).
    based_route: String,
    /// The route as written in the manifest (`/foo/...`).
    raw_route: String,
    /// The route as written without its wildcard (`/foo`).
    component_route: String,
    wildcard: bool,
    /// The prefix split into segments; `Some(name)` for `:name` segments.
    segments: Vec<Segment>,
    /// The route's specificity, compared lexically: one entry per segment
    /// (2 literal, 1 named), then 3 for an exact route or 0 for a wildcard.
    rank: Vec<u8>,
    headers: RouteHeaders,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    /// A named segment and its `spin-path-match-<name>` header (`None`
    /// when the name cannot be a header name).
    Param(String, Option<HeaderName>),
}

/// The `spin-*` header values that depend on the route alone, made once
/// when the router is built, so that a request clones them instead of
/// building them (`None` for a route that is not a valid header value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHeaders {
    /// `spin-matched-route`.
    pub matched_route: Option<HeaderValue>,
    /// `spin-raw-component-route`.
    pub raw_component_route: Option<HeaderValue>,
    /// `spin-component-route`.
    pub component_route: Option<HeaderValue>,
}

/// The application's router.
#[derive(Debug, Clone)]
pub struct Router {
    entries: Vec<Entry>,
    base: String,
    /// `spin-base-path`, made once.
    base_header: Option<HeaderValue>,
}

/// A named segment captured from a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'r, 'p> {
    /// The segment's name in the route (`username` for `:username`).
    pub name: &'r str,
    /// `spin-path-match-<name>`, when that is a valid header name.
    pub header: Option<&'r HeaderName>,
    /// The path's segment.
    pub value: &'p str,
}

/// The outcome of routing one path: borrowed from the router (`'r`) and
/// the path (`'p`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'r, 'p> {
    /// The component that handles it.
    pub component: &'r str,
    /// The matched route with the base (`spin-matched-route`).
    pub based_route: &'r str,
    /// The matched route as written (`spin-raw-component-route`).
    pub raw_route: &'r str,
    /// The route without its wildcard (`spin-component-route`).
    pub component_route: &'r str,
    /// The part of the path after the route's prefix (`spin-path-info`).
    pub path_info: &'p str,
    /// Named segments captured from the path (`spin-path-match-<name>`).
    pub params: Vec<Param<'r, 'p>>,
    /// The route's `spin-*` header values.
    pub headers: &'r RouteHeaders,
}

/// A path's segments: what lies between its slashes, empty ones skipped.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// The rest of `path` after its first `n` segments, from the slash on
/// (`/a/b/c`, 1 -> `/b/c`; `/a/`, 1 -> `/`; `/a`, 1 -> ``).
fn rest_after_segments(path: &str, n: usize) -> &str {
    let bytes = path.as_bytes();
    let mut idx = 0;
    for _ in 0..n {
        while idx < bytes.len() && bytes[idx] == b'/' {
            idx += 1;
        }
        while idx < bytes.len() && bytes[idx] != b'/' {
            idx += 1;
        }
    }
    &path[idx..]
}

fn strip_one_slash(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

impl Router {
    /// Build the router from a manifest; returns the duplicate-route warnings.
    pub fn build(manifest: &Manifest) -> (Self, Vec<String>) {
        let routes = manifest
            .http_triggers
            .iter()
            .filter_map(|t| t.route.as_deref().map(|r| (r, t.component.as_str())));
        Self::from_routes(&manifest.http_base, routes)
    }

    /// Build from `(route, component)` pairs.
    pub fn from_routes<'a>(
        base: &str,
        routes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> (Self, Vec<String>) {
        let base = strip_one_slash(base).to_string();
        let mut entries: Vec<Entry> = Vec::new();
        let mut warnings = Vec::new();
        for (raw, component) in routes {
            let absolute = if raw.starts_with('/') {
                raw.to_string()
            } else {
                format!("/{raw}")
            };
            let based_route = format!("{base}{}", strip_one_slash(&absolute));
            let (prefix, wildcard) = if let Some(p) = based_route.strip_suffix("/...") {
                (p.to_string(), true)
            } else if let Some(p) = based_route.strip_suffix("/*") {
                (p.to_string(), true)
            } else {
                (based_route.clone(), false)
            };
            let segments: Vec<Segment> = segments(&prefix)
                .map(|s| match s.strip_prefix(':') {
                    Some(name) => {
                        let header =
                            HeaderName::from_bytes(format!("spin-path-match-{name}").as_bytes());
                        Segment::Param(name.to_string(), header.ok())
                    }
                    None => Segment::Literal(s.to_string()),
                })
                .collect();
            let rank = segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(_) => 2,
                    Segment::Param(..) => 1,
                })
                // An exact route ends above any wildcard, so it beats a
                // wildcard with the same prefix (`/a` over `/a/...` for
                // `/a`), as Spin's "exact matches take precedence" rule says.
                .chain([if wildcard { 0 } else { 3 }])
                .collect();
            let based_route = if based_route.is_empty() {
                "/".to_string()
            } else {
                based_route
            };
            let component_route = raw
                .strip_suffix("/...")
                .or_else(|| raw.strip_suffix("/*"))
                .unwrap_or(raw)
                .to_string();
            let value = |s: &str| HeaderValue::from_str(s).ok();
            let headers = RouteHeaders {
                matched_route: value(&based_route),
                raw_component_route: value(raw),
                component_route: value(&component_route),
            };
            let entry = Entry {
                segments,
                rank,
                headers,
                component: component.to_string(),
                based_route,
                raw_route: raw.to_string(),
                component_route,
                wildcard,
            };
            if let Some(existing) = entries.iter_mut().find(|e| e.raw_route == entry.raw_route) {
                warnings.push(format!(
                    "route {} is declared for both `{}` and `{}`; `{}` handles it",
                    entry.based_route, existing.component, entry.component, entry.component
                ));
                *existing = entry;
            } else {
                entries.push(entry);
            }
        }
        let base_header = HeaderValue::from_str(if base.is_empty() { "/" } else { &base }).ok();
        let router = Router {
            entries,
            base,
            base_header,
        };
        (router, warnings)
    }

    /// The base path (`spin-base-path`).
    pub fn base(&self) -> &str {
        if self.base.is_empty() {
            "/"
        } else {
            &self.base
        }
    }

    /// [`Self::base`] as the `spin-base-path` header's value (`None` when
    /// the base is not a valid header value).
    pub fn base_header(&self) -> &Option<HeaderValue> {
        &self.base_header
    }

    /// Every reachable `(route, component)` pair, for the startup banner.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.based_route.as_str(), e.component.as_str()))
    }

    /// Route a request path (without query string).
    pub fn route<'r, 'p>(&'r self, path: &'p str) -> Option<RouteMatch<'r, 'p>> {
        let count = segments(path).count();
        let e = self
            .entries
            .iter()
            .filter(|e| Self::matches(e, path, count))
            // The first declared of equal ranks.
            .reduce(|best, e| if e.rank > best.rank { e } else { best })?;
        let path_info = if e.wildcard {
            rest_after_segments(path, e.segments.len())
        } else {
            ""
        };
        let params = e
            .segments
            .iter()
            .zip(segments(path))
            .filter_map(|(seg, value)| match seg {
                Segment::Param(name, header) => Some(Param {
                    name,
                    header: header.as_ref(),
                    value,
                }),
                Segment::Literal(_) => None,
            })
            .collect();
        Some(RouteMatch {
            component: &e.component,
            based_route: &e.based_route,
            raw_route: &e.raw_route,
            component_route: &e.component_route,
            path_info,
            params,
            headers: &e.headers,
        })
    }

    /// Whether a route matches a path of `count` segments: as many
    /// segments (at least as many for a wildcard), and its literal ones
    /// equal to the path's.
    fn matches(e: &Entry, path: &str, count: usize) -> bool {
        if count < e.segments.len() || (!e.wildcard && count != e.segments.len()) {
            return false;
        }
        e.segments
            .iter()
            .zip(segments(path))
            .all(|(seg, part)| match seg {
                Segment::Literal(l) => l == part,
                Segment::Param(..) => true,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(base: &str, routes: &[(&'static str, &'static str)]) -> Router {
        Router::from_routes(base, routes.iter().copied()).0
    }

    fn check(r: &Router, path: &str, expect: Option<(&str, &str)>) {
        let got = r.route(path).map(|m| (m.component, m.path_info));
        assert_eq!(got, expect, "routing {path}");
    }

    #[test]
    fn exact_routes_match_only_themselves() {
        let r = router("/", &[("/foo", "foo"), ("/foo/bar", "foobar")]);
        check(&r, "/foo", Some(("foo", "")));
        check(&r, "/foo/", Some(("foo", "")));
        check(&r, "/foo/bar", Some(("foobar", "")));
        check(&r, "/foo/baz", None);
        check(&r, "/", None);
    }

    #[test]
    fn wildcards_capture_the_rest_of_the_path() {
        let r = router("/", &[("/...", "all"), ("/api/...", "api")]);
        check(&r, "/", Some(("all", "/")));
        check(&r, "/x/y", Some(("all", "/x/y")));
        check(&r, "/api", Some(("api", "")));
        check(&r, "/api/", Some(("api", "/")));
        check(&r, "/api/v1/x", Some(("api", "/v1/x")));
        // A prefix only matches on a segment boundary.
        check(&r, "/apix", Some(("all", "/apix")));
    }

    #[test]
    fn most_specific_route_wins_regardless_of_order() {
        let r = router(
            "/",
            &[
                ("/one/...", "one"),
                ("/one/two/three/...", "three"),
                ("/one/two/...", "two"),
            ],
        );
        check(&r, "/one/two/three/four", Some(("three", "/four")));
        check(&r, "/one/two/x", Some(("two", "/x")));
        let r = router("/", &[("/...", "wild"), ("/one", "exact")]);
        check(&r, "/one", Some(("exact", "")));
    }

    #[test]
    fn an_exact_route_beats_a_wildcard_of_the_same_prefix() {
        for routes in [
            [
                ("/v2/articles/...", "articles"),
                ("/v2/articles", "realtime"),
            ],
            [
                ("/v2/articles", "realtime"),
                ("/v2/articles/...", "articles"),
            ],
        ] {
            let r = router("/", &routes);
            check(&r, "/v2/articles", Some(("realtime", "")));
            check(&r, "/v2/articles/Earth", Some(("articles", "/Earth")));
        }
    }

    #[test]
    fn base_prefixes_every_route() {
        let r = router("/base", &[("/foo", "foo"), ("/w/...", "w")]);
        check(&r, "/base/foo", Some(("foo", "")));
        check(&r, "/foo", None);
        let m = r.route("/base/w/a").expect("matches");
        assert_eq!(m.based_route, "/base/w/...");
        assert_eq!(m.raw_route, "/w/...");
        assert_eq!(m.component_route, "/w");
        let value = |v: &Option<HeaderValue>| v.as_ref().map(|v| v.as_bytes().to_vec());
        assert_eq!(
            value(&m.headers.matched_route),
            Some(b"/base/w/...".to_vec())
        );
        assert_eq!(
            value(&m.headers.raw_component_route),
            Some(b"/w/...".to_vec())
        );
        assert_eq!(value(&m.headers.component_route), Some(b"/w".to_vec()));
        assert_eq!(r.base(), "/base");
        assert_eq!(value(r.base_header()), Some(b"/base".to_vec()));
        let root = router("/", &[("/foo", "foo")]);
        assert_eq!(value(root.base_header()), Some(b"/".to_vec()));
    }

    #[test]
    fn named_segments_are_captured_and_beat_wildcards() {
        let r = router(
            "/",
            &[
                ("/v1/admin/accounts/...", "auth"),
                ("/v1/admin/accounts/:username/plan", "quota"),
            ],
        );
        let m = r.route("/v1/admin/accounts/alice/plan").expect("matches");
        assert_eq!(m.component, "quota");
        let params: Vec<_> = m.params.iter().map(|p| (p.name, p.value)).collect();
        assert_eq!(params, vec![("username", "alice")]);
        let header = m.params[0].header.map(HeaderName::as_str);
        assert_eq!(header, Some("spin-path-match-username"));
        check(&r, "/v1/admin/accounts/alice", Some(("auth", "/alice")));
        check(
            &r,
            "/v1/admin/accounts/alice/plan/x",
            Some(("auth", "/alice/plan/x")),
        );
        check(&r, "/v1/admin/accounts", Some(("auth", "")));
    }

    #[test]
    fn private_routes_are_unreachable() -> anyhow::Result<()> {
        let m = crate::manifest::Manifest::parse(
            "spin_manifest_version = 2\n[application]\nname = \"p\"\n[[trigger.http]]\nroute = { private = true }\ncomponent = \"hidden\"\n[component.hidden]\nsource = \"h.wasm\"\n",
            std::path::Path::new("spin.toml"),
        )?;
        let (r, _) = Router::build(&m);
        assert_eq!(r.routes().count(), 0);
        check(&r, "/", None);
        check(&r, "/hidden", None);
        Ok(())
    }

    #[test]
    fn later_duplicate_wins_with_a_warning() {
        let (r, warnings) = Router::from_routes("/", [("/a", "first"), ("/a", "second")]);
        check(&r, "/a", Some(("second", "")));
        assert_eq!(warnings.len(), 1);
    }
}
