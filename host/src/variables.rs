//! Application variables with Spin's semantics.
//!
//! `[variables]` declares application variables (with `default`, `required`,
//! `secret`); a component sees only its own `[component.x.variables]`, whose
//! values are templates that may reference application variables as
//! `{{ name }}`. Values come, highest priority first, from the environment
//! (`SPIN_VARIABLE_<NAME>`, as Spin's environment provider), from host-provided
//! development defaults (e.g. a generated key pair), then from `default`.
//! Everything is resolved once at load time, so a missing required variable
//! fails `wikiedge up` instead of a request. Secret values are never logged.

use crate::manifest::{Manifest, validate_variable_name};
use anyhow::{Result, bail};
use std::collections::{BTreeMap, HashMap};

/// The error a component sees from `spin:variables/get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    /// The name is not a valid variable name.
    InvalidName(String),
    /// The component declares no such variable.
    Undefined(String),
}

/// One component's resolved variables.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables {
    values: HashMap<String, String>,
}

impl ComponentVariables {
    /// Look a variable up the way `spin:variables/get` does.
    pub fn get(&self, name: &str) -> Result<String, GetError> {
        if validate_variable_name(name).is_err() {
            return Err(GetError::InvalidName(format!(
                "invalid variable name `{name}`"
            )));
        }
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| GetError::Undefined(format!("no variable for \"{name}\"")))
    }

    /// Every variable and its value, by name (`wasi:config/store.get-all`).
    pub fn all(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort();
        all
    }
}

/// Where application variable values come from.
pub struct Resolver<'a> {
    manifest: &'a Manifest,
    env: &'a dyn Fn(&str) -> Option<String>,
    dev_defaults: &'a BTreeMap<String, String>,
}

impl<'a> Resolver<'a> {
    /// A resolver over a manifest, an environment lookup and host defaults.
    pub fn new(
        manifest: &'a Manifest,
        env: &'a dyn Fn(&str) -> Option<String>,
        dev_defaults: &'a BTreeMap<String, String>,
    ) -> Self {
        Resolver {
            manifest,
            env,
            dev_defaults,
        }
    }

    /// The value of one application variable, if it has one.
    pub fn app_value(&self, name: &str) -> Option<String> {
        let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
        (self.env)(&env_name)
            .or_else(|| self.dev_defaults.get(name).cloned())
            .or_else(|| {
                self.manifest
                    .variables
                    .get(name)
                    .and_then(|d| d.default.clone())
            })
    }

    /// Check every required application variable has a value.
    pub fn validate(&self) -> Result<()> {
        let missing: Vec<_> = self
            .manifest
            .variables
            .iter()
            .filter(|(name, decl)| decl.required && self.app_value(name).is_none())
            .map(|(name, _)| format!("{name} (set SPIN_VARIABLE_{})", name.to_ascii_uppercase()))
            .collect();
        if !missing.is_empty() {
            bail!(
                "required application variables are not set: {}",
                missing.join(", ")
            );
        }
        Ok(())
    }

    /// Resolve all of one component's variables.
    pub fn component(&self, id: &str) -> Result<ComponentVariables> {
        let mut values = HashMap::new();
        if let Some(decl) = self.manifest.components.get(id) {
            for (name, template) in &decl.variables {
                let value = self
                    .expand(template)
                    .map_err(|e| anyhow::anyhow!("[component.{id}.variables] `{name}`: {e}"))?;
                values.insert(name.clone(), value);
            }
        }
        Ok(ComponentVariables { values })
    }

    /// Whether an application variable is secret (never log its value).
    pub fn is_secret(&self, name: &str) -> bool {
        self.manifest.variables.get(name).is_some_and(|d| d.secret)
    }

    /// Expand a template over application variables (`{{ name }}`): an
    /// undeclared variable or one without a value is an error.
    pub fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("unterminated `{{{{` in template");
            };
            let name = after[..end].trim();
            if !self.manifest.variables.contains_key(name) {
                bail!("template references undeclared application variable `{name}`");
            }
            match self.app_value(name) {
                Some(v) => out.push_str(&v),
                None => bail!(
                    "application variable `{name}` has no value (set SPIN_VARIABLE_{})",
                    name.to_ascii_uppercase()
                ),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "v"
[variables]
greeting = { default = "hello" }
api_key = { required = true, secret = true }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "c.wasm"
[component.c.variables]
message = "{{ greeting }}, world"
key = "{{api_key}}"
literal = "plain"
"#;

    fn manifest() -> Manifest {
        Manifest::parse(APP, Path::new("spin.toml")).expect("valid")
    }

    #[test]
    fn templates_resolve_from_env_then_defaults() -> Result<()> {
        let m = manifest();
        let env = |k: &str| (k == "SPIN_VARIABLE_API_KEY").then(|| "s3cret".to_string());
        let dev = BTreeMap::new();
        let r = Resolver::new(&m, &env, &dev);
        r.validate()?;
        let vars = r.component("c")?;
        assert_eq!(vars.get("message"), Ok("hello, world".into()));
        assert_eq!(vars.get("key"), Ok("s3cret".into()));
        assert_eq!(vars.get("literal"), Ok("plain".into()));
        assert!(r.is_secret("api_key"));
        Ok(())
    }

    #[test]
    fn env_overrides_defaults() -> Result<()> {
        let m = manifest();
        let env = |k: &str| match k {
            "SPIN_VARIABLE_GREETING" => Some("hi".to_string()),
            "SPIN_VARIABLE_API_KEY" => Some("k".to_string()),
            _ => None,
        };
        let dev = BTreeMap::new();
        let vars = Resolver::new(&m, &env, &dev).component("c")?;
        assert_eq!(vars.get("message"), Ok("hi, world".into()));
        Ok(())
    }

    #[test]
    fn missing_required_variable_fails_at_load() {
        let m = manifest();
        let env = |_: &str| None;
        let dev = BTreeMap::new();
        let r = Resolver::new(&m, &env, &dev);
        let err = r.validate().expect_err("api_key is required").to_string();
        assert!(
            err.contains("api_key") && err.contains("SPIN_VARIABLE_API_KEY"),
            "{err}"
        );
    }

    #[test]
    fn unknown_and_invalid_names_are_distinguished() -> Result<()> {
        let m = manifest();
        let env = |_: &str| Some("x".to_string());
        let dev = BTreeMap::new();
        let vars = Resolver::new(&m, &env, &dev).component("c")?;
        assert!(matches!(vars.get("nope"), Err(GetError::Undefined(_))));
        assert!(matches!(
            vars.get("Bad-Name"),
            Err(GetError::InvalidName(_))
        ));
        Ok(())
    }
}
