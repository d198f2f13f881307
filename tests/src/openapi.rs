//! Validating JSON responses against a schema of the official WME OpenAPI
//! document (`../shared/fixtures/wme/openapi/*.yaml`).
//!
//! The WME specs use a small part of OpenAPI 3.0 schemas: `type`,
//! `properties`, `items`, `$ref` (to `#/components/schemas/...`), `enum`,
//! `format: date-time`. This checks every field the response has against
//! the declared schema — types, nesting, arrays, enums — and, recursively,
//! every nested object. Fields the schema does not declare are collected
//! rather than rejected: OpenAPI allows them unless a schema says
//! `additionalProperties: false`, and WME's own responses carry some
//! (e.g. `date_created`) that its spec does not list.

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A loaded OpenAPI document.
pub struct Spec {
    doc: serde_norway::Value,
}

/// What validation found besides errors.
#[derive(Debug, Default)]
pub struct Report {
    /// Dot paths of fields the schema does not declare.
    pub undeclared: Vec<String>,
}

impl Spec {
    /// Load a YAML OpenAPI file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        Ok(Spec {
            doc: serde_norway::from_str(&text)?,
        })
    }

    /// Validate `value` against `#/components/schemas/{name}`.
    pub fn validate(&self, name: &str, value: &Value) -> Result<Report> {
        let schema = self.schema(name)?;
        let mut report = Report::default();
        self.check(schema, value, name, &mut report, 0)?;
        Ok(report)
    }

    fn schema(&self, name: &str) -> Result<&serde_norway::Value> {
        self.doc
            .get("components")
            .and_then(|c| c.get("schemas"))
            .and_then(|s| s.get(name))
            .with_context(|| format!("no schema `{name}` in the spec"))
    }

    fn check(
        &self,
        schema: &serde_norway::Value,
        value: &Value,
        path: &str,
        report: &mut Report,
        depth: usize,
    ) -> Result<()> {
        if depth > 32 {
            bail!("{path}: schema nesting too deep");
        }
        if let Some(reference) = schema.get("$ref").and_then(|r| r.as_str()) {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .with_context(|| format!("{path}: unsupported $ref {reference}"))?;
            return self.check(self.schema(name)?, value, path, report, depth + 1);
        }
        if let Some(options) = schema.get("enum").and_then(|e| e.as_sequence()) {
            let ok = options.iter().any(|o| yaml_eq_json(o, value));
            if !ok {
                bail!("{path}: {value} is not one of the allowed values");
            }
        }
        let ty = schema.get("type").and_then(|t| t.as_str());
        let inferred = ty.or_else(|| {
            if schema.get("properties").is_some() {
                Some("object")
            } else if schema.get("items").is_some() {
                Some("array")
            } else {
                None
            }
        });
        match inferred {
            Some("object") => {
                let Some(obj) = value.as_object() else {
                    bail!("{path}: expected an object, got {value}")
                };
                let props = schema.get("properties").and_then(|p| p.as_mapping());
                for (key, field) in obj {
                    let field_path = format!("{path}.{key}");
                    match props.and_then(|p| p.get(serde_norway::Value::String(key.clone()))) {
                        Some(field_schema) => {
                            self.check(field_schema, field, &field_path, report, depth + 1)?
                        }
                        None => report.undeclared.push(field_path),
                    }
                }
            }
            Some("array") => {
                let Some(items) = value.as_array() else {
                    bail!("{path}: expected an array, got {value}")
                };
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(
                            item_schema,
                            item,
                            &format!("{path}[{i}]"),
                            report,
                            depth + 1,
                        )?;
                    }
                }
            }
            Some("string") => {
                let Some(s) = value.as_str() else {
                    bail!("{path}: expected a string, got {value}")
                };
                if schema.get("format").and_then(|f| f.as_str()) == Some("date-time")
                    && !looks_like_date_time(s)
                {
                    bail!("{path}: `{s}` is not an RFC 3339 date-time");
                }
            }
            Some("integer") if !(value.is_i64() || value.is_u64()) => {
                bail!("{path}: expected an integer, got {value}");
            }
            Some("number") if !value.is_number() => {
                bail!("{path}: expected a number, got {value}");
            }
            Some("boolean") if !value.is_boolean() => {
                bail!("{path}: expected a boolean, got {value}");
            }
            Some("integer" | "number" | "boolean") => {}
            Some(other) => bail!("{path}: unsupported schema type `{other}`"),
            None => {}
        }
        if value.is_null() {
            bail!("{path}: null where the schema wants a value (absent values must be omitted)");
        }
        Ok(())
    }
}

fn yaml_eq_json(y: &serde_norway::Value, j: &Value) -> bool {
    match (y, j) {
        (serde_norway::Value::String(a), Value::String(b)) => a == b,
        (serde_norway::Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (serde_norway::Value::Bool(a), Value::Bool(b)) => a == b,
        _ => false,
    }
}

fn looks_like_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Option<Spec> {
        let path = crate::fixtures_or_skip()?.join("wme/openapi/wme_main_api_openapi_2024-01.yaml");
        Some(Spec::load(&path).expect("spec loads"))
    }

    #[test]
    fn the_real_wme_articles_validate() -> Result<()> {
        let Some(spec) = spec() else { return Ok(()) };
        let text = std::fs::read_to_string(crate::fixtures().join("wme/responses/articles.json"))?;
        let articles: Value = serde_json::from_str(&text)?;
        for a in articles.as_array().context("array")? {
            spec.validate("article", a)?;
        }
        Ok(())
    }

    #[test]
    fn wrong_types_and_nulls_are_caught() {
        let Some(spec) = spec() else { return };
        for bad in [
            serde_json::json!({"name": 5}),
            serde_json::json!({"identifier": "12"}),
            serde_json::json!({"categories": {"name": "x"}}),
            serde_json::json!({"version": {"identifier": "x"}}),
            serde_json::json!({"is_part_of": {"identifier": 3}}),
            serde_json::json!({"abstract": null}),
        ] {
            assert!(spec.validate("article", &bad).is_err(), "{bad}");
        }
        let ok = spec
            .validate("article", &serde_json::json!({"name": "X", "extra": 1}))
            .expect("valid");
        assert_eq!(ok.undeclared, vec!["article.extra".to_string()]);
    }
}
