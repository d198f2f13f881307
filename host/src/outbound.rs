//! `allowed_outbound_hosts` with Spin's semantics.
//!
//! Each entry is `scheme://host[:port]`; `*` is allowed as the whole scheme,
//! as the whole host, as a leading `*.` subdomain wildcard, or as the port.
//! Without an explicit port the scheme's default port is implied. An empty
//! list denies everything. `self` (the app itself) is not supported and is
//! rejected at load time with a clear error.

use anyhow::{Result, bail};

/// One parsed allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    Subdomains(String),
}

/// A component's outbound allow-list.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Vec<Allowed>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl OutboundPolicy {
    /// Parse a component's `allowed_outbound_hosts`.
    pub fn parse(entries: &[String]) -> Result<Self> {
        let mut allowed = Vec::new();
        for entry in entries {
            let Some((scheme, rest)) = entry.split_once("://") else {
                bail!(
                    "allowed_outbound_hosts entry `{entry}` must be of the form scheme://host[:port]"
                );
            };
            let rest = rest.trim_end_matches('/');
            if rest.contains('/') {
                bail!("allowed_outbound_hosts entry `{entry}` must not contain a path");
            }
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || p.is_empty() => (h, Some(p)),
                _ => (rest, None),
            };
            if host == "self" || host == "self.alt" {
                bail!(
                    "allowed_outbound_hosts entry `{entry}`: `self` is not supported by wikiedge"
                );
            }
            let scheme_opt = (scheme != "*").then(|| scheme.to_ascii_lowercase());
            let port = match port {
                Some("*") => None,
                Some(p) => Some(p.parse::<u16>().map_err(|_| {
                    anyhow::anyhow!("allowed_outbound_hosts entry `{entry}`: invalid port `{p}`")
                })?),
                None => match scheme_opt.as_deref() {
                    Some(s) => match default_port(s) {
                        Some(p) => Some(p),
                        None => {
                            bail!("allowed_outbound_hosts entry `{entry}` needs an explicit port")
                        }
                    },
                    None => None,
                },
            };
            let host = if host == "*" {
                HostPattern::Any
            } else if let Some(suffix) = host.strip_prefix("*.") {
                HostPattern::Subdomains(suffix.to_ascii_lowercase())
            } else if host.contains('*') {
                bail!(
                    "allowed_outbound_hosts entry `{entry}`: `*` may only be the whole host or a leading `*.`"
                );
            } else {
                HostPattern::Exact(host.to_ascii_lowercase())
            };
            allowed.push(Allowed {
                scheme: scheme_opt,
                host,
                port,
            });
        }
        Ok(OutboundPolicy { allowed })
    }

    /// Whether a request to this URL is allowed.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let port = port.or_else(|| default_port(&scheme));
        self.allowed.iter().any(|a| {
            a.scheme.as_ref().is_none_or(|s| *s == scheme)
                && a.port.is_none_or(|p| Some(p) == port)
                && match &a.host {
                    HostPattern::Any => true,
                    HostPattern::Exact(h) => *h == host,
                    HostPattern::Subdomains(suffix) => {
                        host.len() > suffix.len() + 1
                            && host.ends_with(suffix.as_str())
                            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                    }
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        OutboundPolicy::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("valid")
    }

    #[test]
    fn exact_hosts_and_default_ports() {
        let p = policy(&["https://en.wikipedia.org"]);
        assert!(p.allows("https", "en.wikipedia.org", None));
        assert!(p.allows("https", "EN.wikipedia.org", Some(443)));
        assert!(!p.allows("https", "en.wikipedia.org", Some(8443)));
        assert!(!p.allows("http", "en.wikipedia.org", None));
        assert!(!p.allows("https", "evil.org", None));
    }

    #[test]
    fn subdomain_and_port_wildcards() {
        let p = policy(&["https://*.wikipedia.org", "http://127.0.0.1:*"]);
        assert!(p.allows("https", "de.wikipedia.org", None));
        assert!(!p.allows("https", "wikipedia.org", None));
        assert!(!p.allows("https", "notwikipedia.org", None));
        assert!(p.allows("http", "127.0.0.1", Some(40123)));
        assert!(!p.allows("http", "127.0.0.2", Some(40123)));
    }

    #[test]
    fn empty_list_denies_everything() {
        assert!(!OutboundPolicy::default().allows("https", "example.org", None));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for bad in [
            "example.org",
            "https://ex*ample.org",
            "https://a.org/path",
            "https://self",
            "ftp://x.org",
        ] {
            assert!(OutboundPolicy::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
