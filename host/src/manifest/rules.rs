//! The rules Spin applies when it loads a manifest, beyond its TOML shape.
//!
//! Each function cites the Spin source it mirrors (spinframework/spin, the
//! 4.1 line). Error texts are Spin's own, so a manifest that `spin up`
//! refuses is refused by `wikiedge up` with the same words; docs/host.md
//! lists every rule with the test that checks it.

use anyhow::{Result, anyhow, bail};
use std::fmt;

/// Spin's identifiers (`crates/serde/src/id.rs`, `Id<DELIM, LOWER>`): one or
/// more words separated by `delim`; each word starts with an ASCII letter
/// (or, after the first word, a digit), holds only ASCII letters and digits
/// (and `:`), and is all lower-case or all upper-case; `lower` forbids
/// upper-case words.
pub fn check_id(id: &str, delim: char, lower: bool) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty".into());
    }
    let wrong = if delim == '_' { '-' } else { '_' };
    if id.contains(wrong) {
        return Err(format!(
            "words must be separated with {delim:?}, not {wrong:?}"
        ));
    }
    for (i, word) in id.split(delim).enumerate() {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("{delim:?}-separated words must not be empty"));
        };
        if !(first.is_ascii_alphabetic() || (i > 0 && first.is_ascii_digit())) {
            return Err(format!(
                "{delim:?}-separated words must start with an ASCII letter or digit; got {first:?}"
            ));
        }
        let upper = first.is_ascii_uppercase();
        for ch in chars {
            if ch.is_ascii_digit() || ch == ':' {
                continue;
            }
            if !ch.is_ascii_alphanumeric() {
                return Err(format!(
                    "{delim:?}-separated words may only contain alphanumeric ASCII (plus ':' inside words); got {ch:?}"
                ));
            }
            if ch.is_ascii_uppercase() != upper {
                return Err(format!(
                    "{delim:?}-separated words must be all lowercase or all UPPERCASE; got {word:?}"
                ));
            }
        }
        if lower && upper {
            return Err(format!(
                "Lower-case identifiers must be all lowercase; got {id:?}"
            ));
        }
    }
    Ok(())
}

/// A component id (`KebabId`).
pub fn check_kebab(id: &str) -> Result<(), String> {
    check_id(id, '-', false)
}

/// A variable name (`LowerSnakeId`).
pub fn check_lower_snake(id: &str) -> Result<(), String> {
    check_id(id, '_', true)
}

/// A key-value store or database label: kebab-case or snake_case
/// (`crates/manifest/src/schema/v2.rs`, `kebab_or_snake_case`).
pub fn check_label(label: &str) -> Result<(), String> {
    if check_id(label, '-', false).is_ok() || check_id(label, '_', false).is_ok() {
        Ok(())
    } else {
        Err("expected kebab-case or snake_case".into())
    }
}

/// The name a dependency is declared under (`crates/serde/src/dependencies.rs`):
/// a plain kebab name, or `ns:pkg[/interface][@version]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyName {
    /// `foo-bar`.
    Plain(String),
    /// `foo:bar/baz@0.1.0` and its shorter forms.
    Package {
        /// `foo:bar`.
        package: String,
        /// `baz`.
        interface: Option<String>,
        /// `0.1.0`.
        version: Option<semver::Version>,
    },
}

impl DependencyName {
    /// Parse as Spin does.
    pub fn parse(s: &str) -> Result<Self> {
        if !s.contains([':', '/']) {
            check_kebab(s).map_err(|e| anyhow!("{e}"))?;
            return Ok(DependencyName::Plain(s.to_string()));
        }
        let (name, version) = match s.split_once('@') {
            Some((name, v)) => (name, Some(semver::Version::parse(v)?)),
            None => (s, None),
        };
        let (package, interface) = match name.split_once('/') {
            Some((p, i)) => {
                check_kebab(i).map_err(|e| anyhow!("{e}"))?;
                (p, Some(i.to_string()))
            }
            None => (name, None),
        };
        check_package_ref(package)?;
        Ok(DependencyName::Package {
            package: package.to_string(),
            interface,
            version,
        })
    }

    /// The package the composer registers this dependency under
    /// (`crates/compose/src/lib.rs`, `register_dependency`).
    pub fn registered_package(&self) -> &str {
        match self {
            DependencyName::Plain(p) => p,
            DependencyName::Package { package, .. } => package,
        }
    }

    /// Whether this dependency satisfies the import `import`
    /// (`crates/compose/src/lib.rs`, `matches_import`).
    pub fn matches_import(&self, import: &str) -> bool {
        match self {
            DependencyName::Plain(p) => p == import,
            DependencyName::Package {
                package,
                interface,
                version,
            } => {
                if !import.contains([':', '/']) {
                    return false;
                }
                let Some((ipkg, rest)) = import.split_once('/') else {
                    return false;
                };
                let (iface, iver) = match rest.split_once('@') {
                    Some((i, v)) => (i, semver::Version::parse(v).ok()),
                    None => (rest, None),
                };
                ipkg == package
                    && interface.as_deref().is_none_or(|i| i == iface)
                    && version.as_ref().is_none_or(|v| iver.as_ref() == Some(v))
            }
        }
    }
}

impl fmt::Display for DependencyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DependencyName::Plain(p) => write!(f, "{p}"),
            DependencyName::Package {
                package,
                interface,
                version,
            } => {
                write!(f, "{package}")?;
                if let Some(i) = interface {
                    write!(f, "/{i}")?;
                }
                if let Some(v) = version {
                    write!(f, "@{v}")?;
                }
                Ok(())
            }
        }
    }
}

/// `namespace:name`, each a lower-case kebab label (wasm-pkg `PackageRef`).
fn check_package_ref(s: &str) -> Result<()> {
    let Some((ns, name)) = s.split_once(':') else {
        bail!("invalid package ref {s:?}: missing ':'");
    };
    for label in [ns, name] {
        check_id(label, '-', true).map_err(|e| anyhow!("invalid package ref {s:?}: {e}"))?;
    }
    Ok(())
}

/// What a dependency declaration's value says, for the rules below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyKind {
    /// `"1.2"`: a version requirement from the default registry.
    Version,
    /// `{ version = ..., package = ... }`: a registry package.
    Package {
        /// Whether `package` is given.
        has_package: bool,
    },
    /// `{ path = ... }`.
    Local,
    /// `{ url = ..., digest = ... }`.
    Http,
    /// `{ component = ... }`.
    AppComponent,
}

/// `ComponentDependencies::validate` (`crates/manifest/src/schema/v2.rs`):
/// plain names must name a package; a whole-package name may not pick an
/// export; two names of one package must differ in interface or in
/// (semver-compatible) version.
pub fn validate_dependencies(deps: &[(DependencyName, DependencyKind, bool)]) -> Result<()> {
    for (name, kind, _) in deps {
        if let DependencyName::Plain(plain) = name
            && matches!(
                kind,
                DependencyKind::Version | DependencyKind::Package { has_package: false }
            )
        {
            bail!("dependency {plain:?} must specify a package name");
        }
    }
    for (name, kind, has_export) in deps {
        if let DependencyName::Package {
            interface: None, ..
        } = name
            && matches!(kind, DependencyKind::Package { .. } | DependencyKind::Local)
            && *has_export
        {
            bail!(
                "using an export to satisfy the package dependency {:?} is not currently permitted",
                name.to_string()
            );
        }
    }
    for (i, (this, ..)) in deps.iter().enumerate() {
        for (other, ..) in deps.iter().skip(i + 1) {
            if let (
                DependencyName::Package {
                    package: p1,
                    interface: i1,
                    version: v1,
                },
                DependencyName::Package {
                    package: p2,
                    interface: i2,
                    version: v2,
                },
            ) = (this, other)
                && p1 == p2
            {
                if let (Some(a), Some(b)) = (v1, v2)
                    && compatible(a) != compatible(b)
                {
                    continue;
                }
                if let (Some(a), Some(b)) = (i1, i2)
                    && a != b
                {
                    continue;
                }
                bail!(
                    "{:?} dependency conflicts with {:?}",
                    this.to_string(),
                    other.to_string()
                );
            }
        }
    }
    Ok(())
}

/// semver's compatibility class (`normalize_compatible_version`).
fn compatible(v: &semver::Version) -> semver::Version {
    let mut v = v.clone();
    v.build = semver::BuildMetadata::EMPTY;
    if !v.pre.is_empty() {
        return v;
    }
    if v.major > 0 {
        v.minor = 0;
        v.patch = 0;
    } else if v.minor > 0 {
        v.patch = 0;
    }
    v
}

/// What a depended-on component declares, for
/// `ensure_is_acceptable_dependency` (`crates/manifest/src/normalize.rs`).
pub struct Resources<'a> {
    /// `ai_models`.
    pub ai_models: bool,
    /// `allowed_http_hosts`.
    pub allowed_http_hosts: bool,
    /// `allowed_outbound_hosts`.
    pub allowed_outbound_hosts: bool,
    /// `dependencies`.
    pub dependencies: bool,
    /// `files`.
    pub files: bool,
    /// `key_value_stores`.
    pub key_value_stores: bool,
    /// `sqlite_databases`.
    pub sqlite_databases: bool,
    /// `variables`.
    pub variables: bool,
    /// The depended-on component's id.
    pub id: &'a str,
}

/// A `{ component = "id" }` dependency must have no resources or
/// permissions of its own: once composed they would not apply.
pub fn ensure_acceptable_dependency(dep: &Resources<'_>, depender: &str) -> Result<()> {
    let surprises: Vec<&str> = [
        (dep.ai_models, "ai_models"),
        (dep.allowed_http_hosts, "allowed_http_hosts"),
        (dep.allowed_outbound_hosts, "allowed_outbound_hosts"),
        (dep.dependencies, "dependencies"),
        (dep.files, "files"),
        (dep.key_value_stores, "key_value_stores"),
        (dep.sqlite_databases, "sqlite_databases"),
        (dep.variables, "variables"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if surprises.is_empty() {
        Ok(())
    } else {
        bail!(
            "Dependencies may not have their own resources or permissions. Component {} cannot be used as a dependency of {depender} because it specifies: {}",
            dep.id,
            surprises.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_spins_words() {
        assert!(check_kebab("articles").is_ok());
        assert!(check_kebab("a-1").is_ok());
        assert!(check_kebab("HTTP-api").is_ok());
        assert!(check_kebab("1a").is_err());
        assert!(check_kebab("a--b").is_err());
        assert!(check_kebab("a_b").expect_err("snake").contains("not '_'"));
        assert!(check_kebab("Ab").is_err());
        assert!(check_lower_snake("jwt_key").is_ok());
        assert!(check_lower_snake("JWT_KEY").is_err());
        assert!(check_label("snake_case").is_ok());
        assert!(check_label("kebab-case").is_ok());
        assert!(check_label("b@dlabel").is_err());
    }

    #[test]
    fn dependency_names_match_imports_as_spins_composer() -> Result<()> {
        for (dep, imports) in [
            ("foo:bar/baz@0.1.0", vec!["foo:bar/baz@0.1.0"]),
            ("foo:bar/baz", vec!["foo:bar/baz@0.1.0", "foo:bar/baz"]),
            ("foo:bar", vec!["foo:bar/baz@0.1.0", "foo:bar/baz"]),
            ("foo:bar@0.1.0", vec!["foo:bar/baz@0.1.0"]),
            ("foo-bar", vec!["foo-bar"]),
        ] {
            let d = DependencyName::parse(dep)?;
            for i in imports {
                assert!(d.matches_import(i), "{dep} should match {i}");
            }
        }
        for (dep, imports) in [
            ("foo:bar/baz@0.1.0", vec!["foo:bar/baz"]),
            ("foo:bar/baz", vec!["foo:bar/bub", "foo:bar/bub@0.1.0"]),
            ("foo:bar", vec!["foo:bub/bib"]),
            ("foo:bar@0.1.0", vec!["foo:bar/baz"]),
            ("foo:bar/baz", vec!["foo:bar/baz-bub", "foo-bar"]),
        ] {
            let d = DependencyName::parse(dep)?;
            for i in imports {
                assert!(!d.matches_import(i), "{dep} should not match {i}");
            }
        }
        assert_eq!(
            DependencyName::parse("wikiedge:auth/auth@0.1.0")?.registered_package(),
            "wikiedge:auth"
        );
        Ok(())
    }
}
