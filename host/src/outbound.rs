//! `allowed_outbound_hosts` with Spin's semantics.
//!
//! Each entry is `scheme://host[:port]`; `*` is allowed as the whole scheme,
//! as the whole host, as a leading `*.` subdomain wildcard, or as the port.
//! Without an explicit port the scheme's default port is implied. An empty
//! list denies everything. `self` (the app itself) is not supported and is
//! rejected at load time with a clear error.
//!
//! An entry may be a template over application variables (`"{{ host }}"`,
//! `"https://{{ name }}.example.org"`), as in Spin, and [`OutboundPolicy::resolve`]
//! follows Spin's two steps exactly:
//! - at load (Spin's loader, `crates/loader/src/local.rs`, `load_component`
//!   calling `AllowedHostsConfig::validate` in
//!   `crates/outbound-networking-config/src/allowed_hosts.rs`): a literal
//!   entry must parse and a template must be well formed (no unmatched
//!   `{{`, `crates/expressions/src/template.rs`), or the app is refused;
//! - per instance (`crates/factor-outbound-networking/src/lib.rs`, `prepare`:
//!   `resolver.prepare()` then `AllowedHostsConfig::parse`): each template
//!   is resolved against the application variables and parsed as *one*
//!   entry. Should any of that fail (an undeclared variable, a value that
//!   is not `scheme://host[:port]`, an empty value), Spin logs the error
//!   and the component may reach no host at all. Variables cannot change
//!   while `wikiedge up` runs, so this host does the same once, at load:
//!   the error is logged and the component's allow-list denies everything.

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

    /// Spin's load-time check (`AllowedHostsConfig::validate`): literal
    /// entries parse, templates are well formed.
    pub fn validate(entries: &[String]) -> Result<()> {
        Self::literals_and_templates(entries).map(|_| ())
    }

    /// The literal entries parsed, and the (well-formed) templates.
    fn literals_and_templates(entries: &[String]) -> Result<(Self, Vec<&String>)> {
        let mut literals = Vec::new();
        let mut templates = Vec::new();
        for entry in entries {
            if entry.contains("{{") {
                check_template(entry)?;
                templates.push(entry);
            } else {
                literals.push(entry.clone());
            }
        }
        Ok((OutboundPolicy::parse(&literals)?, templates))
    }

    /// Resolve and parse a component's `allowed_outbound_hosts`, templates
    /// included, the way Spin does (see the module docs): `Err` for what
    /// Spin refuses at load; a template that does not resolve to a valid
    /// entry is logged (`component`) and denies every host.
    pub fn resolve(
        entries: &[String],
        component: &str,
        expand: impl Fn(&str) -> Result<String>,
    ) -> Result<Self> {
        let (mut policy, templates) = Self::literals_and_templates(entries)?;
        for template in templates {
            let resolved = expand(template).and_then(|value| {
                let one = OutboundPolicy::parse(std::slice::from_ref(&value))?;
                Ok((value, one))
            });
            match resolved {
                Ok((_, one)) => policy.allowed.extend(one.allowed),
                Err(e) => {
                    tracing::error!(
                        "component `{component}`: allowed_outbound_hosts entry `{template}`: {e:#}; \
                         as in Spin, the component may reach no host"
                    );
                    return Ok(OutboundPolicy::default());
                }
            }
        }
        Ok(policy)
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

/// Spin's template syntax check (`Template::new`): every `{{` is closed.
fn check_template(entry: &str) -> Result<()> {
    let mut rest = entry;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start + 2..].find("}}") else {
            bail!("allowed_outbound_hosts entry `{entry}`: unmatched '{{{{' in template");
        };
        rest = &rest[start + 2 + end + 2..];
    }
    Ok(())
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

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// `{{ extra }}` is `http://127.0.0.1:*`; `{{ empty }}` is empty; any
    /// other name is undeclared.
    fn expand(template: &str) -> Result<String> {
        Ok(template
            .replace("{{ extra }}", "http://127.0.0.1:*")
            .replace("{{ empty }}", "")
            .replace("{{ name }}", "de"))
        .and_then(|v| {
            if v.contains("{{") {
                bail!("undeclared variable")
            }
            Ok(v)
        })
    }

    #[test]
    fn templates_resolve_to_one_entry_each() -> Result<()> {
        let p = OutboundPolicy::resolve(
            &entries(&[
                "https://*.wikipedia.org",
                "{{ extra }}",
                "https://{{ name }}.example.org",
            ]),
            "c",
            expand,
        )?;
        assert!(p.allows("https", "en.wikipedia.org", None));
        assert!(p.allows("http", "127.0.0.1", Some(40123)));
        assert!(p.allows("https", "de.example.org", None));
        assert!(!p.allows("https", "fr.example.org", None));
        Ok(())
    }

    #[test]
    fn a_template_that_does_not_resolve_to_a_host_denies_everything() -> Result<()> {
        for bad in ["{{ empty }}", "{{ unknown }}", "{{ extra }}/path"] {
            let p =
                OutboundPolicy::resolve(&entries(&["https://*.wikipedia.org", bad]), "c", expand)?;
            assert!(!p.allows("https", "en.wikipedia.org", None), "{bad}");
            assert!(!p.allows("http", "127.0.0.1", Some(80)), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn what_spin_refuses_at_load_is_refused() {
        for bad in [
            &["{{ extra"][..],
            &["https://a.org/path", "{{ extra }}"][..],
        ] {
            assert!(
                OutboundPolicy::resolve(&entries(bad), "c", expand).is_err(),
                "{bad:?}"
            );
        }
    }
}
