//! Parsing of Spin application manifests (`spin_manifest_version = 2`).
//!
//! Only the parts of the manifest the host acts on are modelled; unknown keys
//! are accepted (Spin has many we do not need), but every key we do read is
//! type-checked and errors name the file and the key, as `spin up` does.

use anyhow::{Context, Result, anyhow, bail};
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

/// A `[component.<id>]` table.
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
    /// Hosts outbound HTTP may reach (Spin's `allowed_outbound_hosts`).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Component variables: name -> template (may reference `{{ app_var }}`).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Environment variables for the component.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Build settings for `wikiedge build`.
    #[serde(default)]
    pub build: Option<BuildDecl>,
    /// Component dependencies: import name -> how to satisfy it.
    #[serde(default)]
    pub dependencies: BTreeMap<String, DependencyDecl>,
    /// Whether dependencies get this component's configuration.
    #[serde(default)]
    pub dependencies_inherit_configuration: bool,
    /// Files to mount (accepted for compatibility; wikiedge components use none).
    #[serde(default)]
    pub files: Vec<toml::Value>,
    /// Spin's `[component.x.tool]` table (ignored).
    #[serde(default)]
    pub tool: Option<toml::Value>,
}

/// `source = "path.wasm"` (URL sources need Spin's registry and are rejected).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Source {
    /// A local file.
    Path(String),
    /// `{ url = "...", digest = "..." }`.
    Remote {
        /// The URL.
        url: String,
        /// The expected digest.
        digest: String,
    },
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

/// How one dependency import is satisfied.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum DependencyDecl {
    /// `{ path = "x.wasm", export = "..." }`.
    Local {
        /// The file.
        path: String,
        /// Which export of it to use (defaults to the import name).
        #[serde(default)]
        export: Option<String>,
    },
    /// `{ component = "id", export = "..." }`: another component of this app.
    Component {
        /// The component id.
        component: String,
        /// Which export of it to use (defaults to the import name).
        #[serde(default)]
        export: Option<String>,
    },
    /// Registry and URL forms (parsed so the error can say they are unsupported).
    Other(toml::Value),
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    component: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
    #[serde(default)]
    trigger: Option<toml::Table>,
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
        let raw: RawManifest =
            toml::from_str(text).map_err(|e| anyhow!("invalid manifest {shown}: {e}"))?;
        match raw.spin_manifest_version.as_integer() {
            Some(2) => {}
            _ => bail!(
                "invalid manifest {shown}: `spin_manifest_version` must be 2 (only manifest v2 is supported)"
            ),
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

        let mut components = BTreeMap::new();
        for (id, table) in raw.component {
            validate_id(&id)
                .with_context(|| format!("invalid manifest {shown}: [component.{id}]"))?;
            let decl: ComponentDecl = toml::Value::Table(table)
                .try_into()
                .map_err(|e| anyhow!("invalid manifest {shown}: [component.{id}]: {e}"))?;
            if let Source::Remote { url, .. } = &decl.source {
                bail!(
                    "invalid manifest {shown}: [component.{id}] source: remote sources ({url}) are not supported by wikiedge; build the component locally"
                );
            }
            for (import, dep) in &decl.dependencies {
                if let DependencyDecl::Other(v) = dep {
                    bail!(
                        "invalid manifest {shown}: [component.{id}.dependencies] \"{import}\" = {v}: only `path` and `component` dependencies are supported by wikiedge"
                    );
                }
            }
            components.insert(id, decl);
        }

        let mut http_triggers = Vec::new();
        for (kind, entries) in raw.trigger {
            if kind != "http" {
                bail!(
                    "invalid manifest {shown}: [[trigger.{kind}]]: only HTTP triggers are supported"
                );
            }
            for (i, entry) in entries.into_iter().enumerate() {
                let at = format!("[[trigger.http]] #{} ", i + 1);
                let component = match entry.get("component") {
                    Some(toml::Value::String(s)) => s.clone(),
                    Some(_) => bail!(
                        "invalid manifest {shown}: {at}`component`: inline components are not supported; reference a [component.<id>] by id"
                    ),
                    None => bail!("invalid manifest {shown}: {at}is missing `component`"),
                };
                if !components.contains_key(&component) {
                    bail!(
                        "invalid manifest {shown}: {at}`component` = \"{component}\" names no [component.{component}]"
                    );
                }
                let route = match entry.get("route") {
                    Some(toml::Value::String(r)) => {
                        if !r.starts_with('/') {
                            bail!(
                                "invalid manifest {shown}: {at}`route` = \"{r}\" must start with '/'"
                            );
                        }
                        Some(r.clone())
                    }
                    Some(toml::Value::Table(t))
                        if t.get("private").and_then(|p| p.as_bool()) == Some(true) =>
                    {
                        None
                    }
                    Some(other) => bail!(
                        "invalid manifest {shown}: {at}`route` = {other}: expected a path or {{ private = true }}"
                    ),
                    None => bail!("invalid manifest {shown}: {at}is missing `route`"),
                };
                http_triggers.push(HttpTrigger { route, component });
            }
        }

        for (id, decl) in &components {
            for (import, dep) in &decl.dependencies {
                if let DependencyDecl::Component { component, .. } = dep {
                    if !components.contains_key(component) {
                        bail!(
                            "invalid manifest {shown}: [component.{id}.dependencies] \"{import}\" names no [component.{component}]"
                        );
                    }
                    if component == id {
                        bail!("invalid manifest {shown}: [component.{id}] cannot depend on itself");
                    }
                }
            }
            for name in decl.variables.keys() {
                validate_variable_name(name).with_context(|| {
                    format!("invalid manifest {shown}: [component.{id}.variables] `{name}`")
                })?;
            }
        }
        for name in raw.variables.keys() {
            validate_variable_name(name)
                .with_context(|| format!("invalid manifest {shown}: [variables] `{name}`"))?;
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
            Source::Remote { .. } => None,
        }
    }
}

fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        });
    if ok {
        Ok(())
    } else {
        bail!("`{id}` is not a kebab-case id")
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
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(text, Path::new("app/spin.toml"))
    }

    const GOOD: &str = r#"
spin_manifest_version = 2
[application]
name = "demo"
[variables]
greeting = { default = "hi" }
api_key = { required = true, secret = true }
[[trigger.http]]
route = "/hello/..."
component = "hello"
[[trigger.http]]
route = { private = true }
component = "lib"
[component.hello]
source = "hello.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["https://example.org"]
dependencies_inherit_configuration = true
[component.hello.variables]
message = "{{ greeting }} there"
[component.hello.dependencies]
"test:greet/greeter" = { component = "lib" }
[component.hello.build]
command = "cargo build"
workdir = "hello"
[component.lib]
source = "lib.wasm"
"#;

    #[test]
    fn parses_a_full_manifest() -> Result<()> {
        let m = parse(GOOD)?;
        assert_eq!(m.name, "demo");
        assert_eq!(m.http_triggers.len(), 2);
        assert_eq!(m.http_triggers[0].route.as_deref(), Some("/hello/..."));
        assert_eq!(m.http_triggers[1].route, None);
        let hello = &m.components["hello"];
        assert_eq!(hello.key_value_stores, vec!["default"]);
        assert!(hello.dependencies_inherit_configuration);
        assert!(m.variables["api_key"].secret);
        assert_eq!(
            m.source_path("hello"),
            Some(PathBuf::from("app/hello.wasm"))
        );
        Ok(())
    }

    fn error_of(text: &str) -> String {
        format!("{:#}", parse(text).expect_err("should fail"))
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let e = error_of(&GOOD.replace("component = \"hello\"", "component = \"nope\""));
        assert!(
            e.contains("app/spin.toml") && e.contains("names no [component.nope]"),
            "{e}"
        );
        let e = error_of(&GOOD.replace("spin_manifest_version = 2", "spin_manifest_version = 1"));
        assert!(e.contains("spin_manifest_version"), "{e}");
        let e = error_of(&GOOD.replace(
            "key_value_stores = [\"default\"]",
            "key_value_stores = \"default\"",
        ));
        assert!(e.contains("[component.hello]"), "{e}");
        let e = error_of(&GOOD.replace("route = \"/hello/...\"", "route = \"hello\""));
        assert!(e.contains("must start with '/'"), "{e}");
        let e = error_of(&GOOD.replace("{ component = \"lib\" }", "{ component = \"ghost\" }"));
        assert!(e.contains("dependencies") && e.contains("ghost"), "{e}");
        let e = error_of(&GOOD.replace("greeting = { default", "Greeting = { default"));
        assert!(e.contains("[variables] `Greeting`"), "{e}");
    }

    #[test]
    fn unsupported_forms_are_refused_clearly() {
        let e = error_of(&GOOD.replace(
            "source = \"lib.wasm\"",
            "source = { url = \"https://x/y.wasm\", digest = \"sha256:00\" }",
        ));
        assert!(e.contains("remote sources"), "{e}");
        let e = error_of(&GOOD.replace("{ component = \"lib\" }", "\">= 0.1.0\""));
        assert!(e.contains("only `path` and `component`"), "{e}");
    }
}
