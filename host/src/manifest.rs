//! Parsing of Spin application manifests (`spin_manifest_version = 2`).
//!
//! The manifest is read with Spin's own strictness: unknown keys are refused
//! where Spin refuses them, ids and labels follow Spin's word rules, and the
//! normalisation and validation steps of Spin's loader run in Spin's order
//! with Spin's error texts (see [`rules`] and docs/host.md). What Spin
//! accepts but wikiedge cannot run (remote sources, registry dependencies,
//! non-HTTP triggers, inline components) is refused after those checks,
//! saying that it is wikiedge's limit.

pub mod rules;

use anyhow::{Context, Result, anyhow, bail};
pub use rules::DependencyName;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A parsed manifest and the directory its relative paths resolve against.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it was read from.
    pub path: PathBuf,
    /// The directory relative paths in the manifest are resolved against.
    pub base_dir: PathBuf,
    /// The application name.
    pub name: String,
    /// The base path of the HTTP trigger (`[application.trigger.http] base`).
    pub http_base: String,
    /// Application variables: name -> declaration.
    pub variables: BTreeMap<String, VariableDecl>,
    /// HTTP triggers in manifest order.
    pub http_triggers: Vec<HttpTrigger>,
    /// Components by id.
    pub components: BTreeMap<String, ComponentDecl>,
}

/// `[variables] name = { default = "...", required = true, secret = true }`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    /// Default value, if any.
    #[serde(default)]
    pub default: Option<String>,
    /// Whether a value must be provided.
    #[serde(default)]
    pub required: bool,
    /// Whether the value must never be logged.
    #[serde(default)]
    pub secret: bool,
    /// Free-form description.
    #[serde(default)]
    pub description: Option<String>,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone)]
pub struct HttpTrigger {
    /// The route: `/exact`, `/prefix/...`, or `None` for `{ private = true }`.
    pub route: Option<String>,
    /// The component id it invokes.
    pub component: String,
}

/// A `[component.<id>]` table (Spin's `Component`, `deny_unknown_fields`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDecl {
    /// Path of the `.wasm` file, relative to the manifest.
    pub source: Source,
    /// Human description.
    #[serde(default)]
    pub description: Option<String>,
    /// Key-value store labels the component may open.
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// SQLite database labels (Spin's `sqlite_databases`; wikiedge provides none).
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    /// AI models (Spin's `ai_models`; wikiedge provides none).
    #[serde(default)]
    pub ai_models: Vec<String>,
    /// Hosts outbound HTTP may reach (Spin's `allowed_outbound_hosts`).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Spin's deprecated `allowed_http_hosts` (refused by wikiedge with a hint).
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    /// Component variables: name -> template (may reference `{{ app_var }}`).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Environment variables for the component.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Build settings for `wikiedge build`.
    #[serde(default)]
    pub build: Option<BuildDecl>,
    /// Component dependencies as written: import name -> how to satisfy it.
    #[serde(default, rename = "dependencies")]
    pub raw_dependencies: toml::Table,
    /// The dependencies after Spin's normalisation: every one a local file
    /// (`{ component = "id" }` resolved to that component's source).
    #[serde(skip)]
    pub dependencies: Vec<Dependency>,
    /// Whether dependencies get this component's configuration.
    #[serde(default)]
    pub dependencies_inherit_configuration: bool,
    /// Files to mount (accepted for compatibility; wikiedge components use none).
    #[serde(default)]
    pub files: Vec<toml::Value>,
    /// Spin's `exclude_files`.
    #[serde(default)]
    pub exclude_files: Vec<String>,
    /// Spin's `[component.x.tool]` table (ignored).
    #[serde(default)]
    pub tool: Option<toml::Table>,
    /// Spin's `[component.x.profile]` table (ignored: wikiedge runs the default profile).
    #[serde(default)]
    pub profile: Option<toml::Table>,
}

/// `source = "path.wasm"` (URL sources need Spin's registry and are rejected).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Source {
    /// A local file.
    Path(String),
    /// `{ url = "...", digest = "..." }` or a registry package.
    Remote(toml::Table),
}

/// `[component.<id>.build]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildDecl {
    /// The shell command to run.
    pub command: String,
    /// The directory to run it in, relative to the manifest.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Files that trigger a rebuild (used by `spin watch`; informational here).
    #[serde(default)]
    pub watch: Vec<String>,
}

/// One normalised dependency: import name, file, export.
#[derive(Debug, Clone)]
pub struct Dependency {
    /// The name it was declared under.
    pub name: DependencyName,
    /// The `.wasm` file, relative to the manifest.
    pub path: String,
    /// Which export of it satisfies the import (defaults to the import name).
    pub export: Option<String>,
}

/// A dependency value as written, before normalisation.
enum RawDependency {
    Local {
        path: String,
        export: Option<String>,
    },
    AppComponent {
        component: String,
        export: Option<String>,
    },
    Unsupported(rules::DependencyKind, bool),
}

impl RawDependency {
    /// Classify a value the way Spin's untagged `ComponentDependency` does.
    fn parse(v: &toml::Value) -> Result<Self, String> {
        use rules::DependencyKind as K;
        let t = match v {
            toml::Value::String(_) => return Ok(RawDependency::Unsupported(K::Version, false)),
            toml::Value::Table(t) => t,
            other => return Err(format!("expected a string or a table, found {other}")),
        };
        let has = |k: &str| t.contains_key(k);
        let string = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let only = |allowed: &[&str]| t.keys().all(|k| allowed.contains(&k.as_str()));
        let export = string("export");
        let no_match =
            || "data did not match any variant of untagged enum ComponentDependency".to_string();
        if has("component") {
            if !only(&["component", "export", "environment"]) {
                return Err(no_match());
            }
            return Ok(RawDependency::AppComponent {
                component: string("component").ok_or_else(no_match)?,
                export,
            });
        }
        if has("path") {
            if !only(&["path", "export"]) {
                return Err(no_match());
            }
            return Ok(RawDependency::Local {
                path: string("path").ok_or_else(no_match)?,
                export,
            });
        }
        if has("url") && has("digest") && only(&["url", "digest", "export"]) {
            return Ok(RawDependency::Unsupported(K::Http, export.is_some()));
        }
        if has("version") && only(&["version", "registry", "package", "export"]) {
            return Ok(RawDependency::Unsupported(
                K::Package {
                    has_package: has("package"),
                },
                export.is_some(),
            ));
        }
        Err(no_match())
    }

    fn kind(&self) -> (rules::DependencyKind, bool) {
        match self {
            RawDependency::Local { export, .. } => (rules::DependencyKind::Local, export.is_some()),
            RawDependency::AppComponent { export, .. } => {
                (rules::DependencyKind::AppComponent, export.is_some())
            }
            RawDependency::Unsupported(k, e) => (*k, *e),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    trigger: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    component: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // fields Spin accepts and wikiedge only type-checks
struct RawApplication {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
    #[serde(default)]
    targets: Vec<toml::Value>,
    #[serde(default)]
    trigger: Option<toml::Table>,
    #[serde(default)]
    tool: Option<toml::Table>,
}

impl Manifest {
    /// Read and validate a manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parse and validate manifest text; `path` is used for errors and paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let shown = path.display();
        // Spin: `spin_manifest::manifest_from_file` (schema/v2.rs shape).
        let raw: RawManifest = toml::from_str(text)
            .map_err(|e| anyhow!("Failed to read Spin app manifest from \"{shown}\": {e}"))?;
        Self::from_raw(raw, path)
            .with_context(|| format!("Failed to load Spin app from \"{shown}\""))
    }

    fn from_raw(raw: RawManifest, path: &Path) -> Result<Self> {
        match raw.spin_manifest_version.as_integer() {
            Some(2) => {}
            _ => bail!("`spin_manifest_version` must be 2 (only manifest v2 is supported)"),
        }
        for name in raw.variables.keys() {
            rules::check_lower_snake(name).map_err(|e| anyhow!("[variables] `{name}`: {e}"))?;
        }

        // Shape of each component (Spin: `Component`, deny_unknown_fields).
        let mut components = BTreeMap::new();
        let mut raw_deps: BTreeMap<String, Vec<(String, RawDependency)>> = BTreeMap::new();
        for (id, table) in raw.component {
            rules::check_kebab(&id).map_err(|e| anyhow!("[component.{id}]: {e}"))?;
            let decl: ComponentDecl = toml::Value::Table(table)
                .try_into()
                .map_err(|e| anyhow!("[component.{id}]: {e}"))?;
            for name in decl.variables.keys() {
                rules::check_lower_snake(name)
                    .map_err(|e| anyhow!("[component.{id}.variables] `{name}`: {e}"))?;
            }
            for label in decl.key_value_stores.iter().chain(&decl.sqlite_databases) {
                rules::check_label(label)
                    .map_err(|e| anyhow!("[component.{id}] store label `{label}`: {e}"))?;
            }
            for model in &decl.ai_models {
                rules::check_kebab(model)
                    .map_err(|e| anyhow!("[component.{id}] ai_models `{model}`: {e}"))?;
            }
            let mut deps = Vec::new();
            for (name, value) in &decl.raw_dependencies {
                DependencyName::parse(name)
                    .map_err(|e| anyhow!("[component.{id}.dependencies] \"{name}\": {e}"))?;
                let dep = RawDependency::parse(value)
                    .map_err(|e| anyhow!("[component.{id}.dependencies] \"{name}\": {e}"))?;
                deps.push((name.clone(), dep));
            }
            raw_deps.insert(id.clone(), deps);
            components.insert(id, decl);
        }

        // Spin: normalize.rs, `normalize_dependency_component_refs`.
        for (id, deps) in &raw_deps {
            let mut resolved = Vec::new();
            for (name, dep) in deps {
                let name_parsed = DependencyName::parse(name)?;
                match dep {
                    RawDependency::AppComponent { component, export } => {
                        let target: &ComponentDecl = components
                            .get(component)
                            .ok_or_else(|| anyhow!("dependency ID {component} does not exist"))?;
                        rules::ensure_acceptable_dependency(
                            &rules::Resources {
                                ai_models: !target.ai_models.is_empty(),
                                allowed_http_hosts: !target.allowed_http_hosts.is_empty(),
                                allowed_outbound_hosts: !target.allowed_outbound_hosts.is_empty(),
                                dependencies: !target.raw_dependencies.is_empty(),
                                files: !target.files.is_empty(),
                                key_value_stores: !target.key_value_stores.is_empty(),
                                sqlite_databases: !target.sqlite_databases.is_empty(),
                                variables: !target.variables.is_empty(),
                                id: component,
                            },
                            id,
                        )?;
                        match &target.source {
                            Source::Path(p) => resolved.push(Dependency {
                                name: name_parsed,
                                path: p.clone(),
                                export: export.clone(),
                            }),
                            Source::Remote(_) => bail!(
                                "[component.{id}.dependencies] \"{name}\": component `{component}` has a remote source, which wikiedge does not support"
                            ),
                        }
                    }
                    RawDependency::Local { path, export } => resolved.push(Dependency {
                        name: name_parsed,
                        path: path.clone(),
                        export: export.clone(),
                    }),
                    RawDependency::Unsupported(..) => {}
                }
            }
            if let Some(decl) = components.get_mut(id) {
                decl.dependencies = resolved;
            }
        }

        // Spin: `AppManifest::validate_dependencies` (schema/v2.rs).
        for (id, deps) in &raw_deps {
            let list: Vec<_> = deps
                .iter()
                .map(|(name, dep)| {
                    let (kind, export) = dep.kind();
                    DependencyName::parse(name).map(|n| (n, kind, export))
                })
                .collect::<Result<_>>()?;
            rules::validate_dependencies(&list)
                .with_context(|| format!("component {id:?} has invalid dependencies"))?;
        }

        // Spin: loader/src/local.rs, `locked_variable`.
        for (name, var) in &raw.variables {
            if var.required == var.default.is_some() {
                bail!("variable `{name}`: must be `required` OR have a `default`");
            }
        }

        // What Spin accepts but wikiedge cannot run.
        for (id, decl) in &components {
            if let Source::Remote(_) = &decl.source {
                bail!(
                    "[component.{id}] source: remote and registry sources are not supported by wikiedge; build the component locally"
                );
            }
            for (name, dep) in &raw_deps[id] {
                if let RawDependency::Unsupported(..) = dep {
                    bail!(
                        "[component.{id}.dependencies] \"{name}\": only `path` and `component` dependencies are supported by wikiedge"
                    );
                }
            }
            if !decl.allowed_http_hosts.is_empty() {
                bail!(
                    "[component.{id}]: the deprecated `allowed_http_hosts` is not supported by wikiedge; use `allowed_outbound_hosts`"
                );
            }
            // Spin's loader checks literal entries and template syntax here
            // (templates are resolved per instance; see outbound.rs).
            crate::outbound::OutboundPolicy::validate(&decl.allowed_outbound_hosts).map_err(
                |e| {
                    anyhow::anyhow!("[component.{id}] `allowed_outbound_hosts` is malformed: {e:#}")
                },
            )?;
        }

        let http_base = raw
            .application
            .trigger
            .as_ref()
            .and_then(|t| t.get("http"))
            .and_then(|h| h.get("base"))
            .and_then(|b| b.as_str())
            .unwrap_or("/")
            .to_string();

        let mut http_triggers = Vec::new();
        for (kind, entries) in raw.trigger {
            if kind != "http" {
                bail!("[[trigger.{kind}]]: only HTTP triggers are supported by wikiedge");
            }
            for (i, entry) in entries.into_iter().enumerate() {
                let at = format!("[[trigger.http]] #{} ", i + 1);
                let component = match entry.get("component") {
                    Some(toml::Value::String(s)) => s.clone(),
                    Some(_) => bail!(
                        "{at}`component`: inline components are not supported by wikiedge; reference a [component.<id>] by id"
                    ),
                    None => bail!("{at}is missing `component`"),
                };
                if !components.contains_key(&component) {
                    bail!("{at}`component` = \"{component}\" names no [component.{component}]");
                }
                let route = match entry.get("route") {
                    Some(toml::Value::String(r)) => {
                        if !r.starts_with('/') {
                            bail!("{at}`route` = \"{r}\" must start with '/'");
                        }
                        Some(r.clone())
                    }
                    Some(toml::Value::Table(t))
                        if t.get("private").and_then(|p| p.as_bool()) == Some(true) =>
                    {
                        None
                    }
                    Some(other) => {
                        bail!("{at}`route` = {other}: expected a path or {{ private = true }}")
                    }
                    None => bail!("{at}is missing `route`"),
                };
                http_triggers.push(HttpTrigger { route, component });
            }
        }

        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Manifest {
            path: path.to_path_buf(),
            base_dir,
            name: raw.application.name,
            http_base,
            variables: raw.variables,
            http_triggers,
            components,
        })
    }

    /// The absolute-or-relative path of a component's wasm file.
    pub fn source_path(&self, id: &str) -> Option<PathBuf> {
        match &self.components.get(id)?.source {
            Source::Path(p) => Some(self.base_dir.join(p)),
            Source::Remote(_) => None,
        }
    }
}

/// Spin variable names: lower-case letters, digits and underscores, starting
/// with a letter.
pub fn validate_variable_name(name: &str) -> Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        bail!(
            "variable names must be lower-case letters, digits and underscores, starting with a letter"
        )
    }
}

#[cfg(test)]
mod tests;
