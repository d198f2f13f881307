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

/// One routable entry.
#[derive(Debug, Clone)]
struct Entry {
    component: String,
    /// The route including the base, as written (`/base/foo/...`).
    based_route: String,
    /// The route as written in the manifest (`/foo/...`).
    raw_route: String,
    wildcard: bool,
    /// The prefix split into segments; `Some(name)` for `:name` segments.
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param(String),
}

/// The application's router.
#[derive(Debug, Clone, Default)]
pub struct Router {
    entries: Vec<Entry>,
    base: String,
}

/// A route's specificity for one path, compared lexically.
type Rank = Vec<u8>;

/// Named segments captured from a path.
type Params = Vec<(String, String)>;

/// The outcome of routing one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The component that handles it.
    pub component: String,
    /// The matched route with the base (`spin-matched-route`).
    pub based_route: String,
    /// The matched route as written (`spin-raw-component-route`).
    pub raw_route: String,
    /// The route without its wildcard (`spin-component-route`).
    pub component_route: String,
    /// The part of the path after the route's prefix (`spin-path-info`).
    pub path_info: String,
    /// Named segments captured from the path (`spin-path-match-<name>`).
    pub params: Vec<(String, String)>,
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
            let segments = prefix
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| match s.strip_prefix(':') {
                    Some(name) => Segment::Param(name.to_string()),
                    None => Segment::Literal(s.to_string()),
                })
                .collect();
            let entry = Entry {
                segments,
                component: component.to_string(),
                based_route: if based_route.is_empty() {
                    "/".into()
                } else {
                    based_route
                },
                raw_route: raw.to_string(),
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
        (Router { entries, base }, warnings)
    }

    /// The base path (`spin-base-path`).
    pub fn base(&self) -> &str {
        if self.base.is_empty() {
            "/"
        } else {
            &self.base
        }
    }

    /// Every reachable `(route, component)` pair, for the startup banner.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.based_route.as_str(), e.component.as_str()))
    }

    /// Route a request path (without query string).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut best: Option<(Rank, &Entry, Params)> = None;
        for e in &self.entries {
            let Some((rank, params)) = Self::match_entry(e, &parts) else {
                continue;
            };
            if best.as_ref().is_none_or(|(r, _, _)| rank > *r) {
                best = Some((rank, e, params));
            }
        }
        let (_, e, params) = best?;
        let path_info = if e.wildcard {
            rest_after_segments(path, e.segments.len()).to_string()
        } else {
            String::new()
        };
        let mut m = self.matched(e, path_info);
        m.params = params;
        Some(m)
    }

    /// The rank of a route for these path segments, if it matches: one entry
    /// per segment (2 literal, 1 named, 0 wildcard), then 3 for an exact
    /// route, compared lexically.
    fn match_entry(e: &Entry, parts: &[&str]) -> Option<(Rank, Params)> {
        if parts.len() < e.segments.len() || (!e.wildcard && parts.len() != e.segments.len()) {
            return None;
        }
        let mut rank = Vec::with_capacity(e.segments.len() + 1);
        let mut params = Vec::new();
        for (seg, part) in e.segments.iter().zip(parts) {
            match seg {
                Segment::Literal(l) if l == part => rank.push(2),
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    rank.push(1);
                    params.push((name.clone(), part.to_string()));
                }
            }
        }
        // An exact route ends above any wildcard, so it beats a wildcard
        // with the same prefix (`/a` over `/a/...` for `/a`), as Spin's
        // "exact matches take precedence" rule says.
        rank.push(if e.wildcard { 0 } else { 3 });
        Some((rank, params))
    }

    fn matched(&self, e: &Entry, path_info: String) -> RouteMatch {
        let component_route = e
            .raw_route
            .strip_suffix("/...")
            .or_else(|| e.raw_route.strip_suffix("/*"))
            .unwrap_or(&e.raw_route)
            .to_string();
        RouteMatch {
            component: e.component.clone(),
            based_route: e.based_route.clone(),
            raw_route: e.raw_route.clone(),
            component_route,
            path_info,
            params: Vec::new(),
        }
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
        let want = expect.map(|(c, p)| (c.to_string(), p.to_string()));
        assert_eq!(got, want, "routing {path}");
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
        assert_eq!(r.base(), "/base");
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
        assert_eq!(
            m.params,
            vec![("username".to_string(), "alice".to_string())]
        );
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
