//! Route matching with Spin's semantics.
//!
//! Routes are exact (`/foo`) or trailing wildcards (`/foo/...`, also written
//! `/foo/*`). An exact match beats any wildcard; among wildcards the longest
//! prefix wins. Private routes (`{ private = true }`) are not reachable from
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
    /// The path prefix to match, without trailing slash or wildcard.
    prefix: String,
    wildcard: bool,
}

/// The application's router.
#[derive(Debug, Clone, Default)]
pub struct Router {
    entries: Vec<Entry>,
    base: String,
}

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
            let entry = Entry {
                component: component.to_string(),
                based_route: if based_route.is_empty() {
                    "/".into()
                } else {
                    based_route
                },
                raw_route: raw.to_string(),
                prefix,
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
        let trimmed = strip_one_slash(path);
        // Exact routes first.
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| !e.wildcard && e.prefix == trimmed)
        {
            return Some(self.matched(e, String::new()));
        }
        // Then the longest wildcard prefix that matches on a segment boundary.
        let best = self
            .entries
            .iter()
            .filter(|e| e.wildcard)
            .filter(|e| {
                path == e.prefix
                    || e.prefix.is_empty()
                    || (path.starts_with(&e.prefix) && path[e.prefix.len()..].starts_with('/'))
            })
            .max_by_key(|e| e.prefix.len())?;
        let rest = &path[best.prefix.len().min(path.len())..];
        Some(self.matched(best, rest.to_string()))
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
    fn later_duplicate_wins_with_a_warning() {
        let (r, warnings) = Router::from_routes("/", [("/a", "first"), ("/a", "second")]);
        check(&r, "/a", Some(("second", "")));
        assert_eq!(warnings.len(), 1);
    }
}
