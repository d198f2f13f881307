//! `fields` projection and `filters` matching on JSON documents by dot paths.
//!
//! Paths walk objects by key and arrays element-wise, so `categories.name`
//! keeps the `name` of every category and a filter on it matches when any
//! category has that name. Projection is exclusive: only the listed paths
//! survive. `version` and `version.*` keep the whole object;
//! `version.identifier` keeps only that subfield.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

mod members;
pub use members::{members_of, parse_members};

/// One `{field, value}` equality filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// The dot path of the field, e.g. `in_language.identifier`.
    pub field: String,
    /// The JSON scalar the field must equal.
    pub value: Value,
}

impl Filter {
    /// Checks the filter is usable: a valid path and a scalar value.
    pub fn validate(&self) -> Result<()> {
        validate_path(&self.field, false)?;
        if self.value.is_object() || self.value.is_array() {
            return Err(Error::Unprocessable(format!(
                "filter value for '{}' must be a string, number, boolean or null",
                self.field
            )));
        }
        Ok(())
    }

    /// Whether the document has the field with this value (any element,
    /// where the path crosses an array).
    pub fn matches(&self, doc: &Value) -> bool {
        let segments: Vec<&str> = self.field.split('.').collect();
        any_at(doc, &segments, &self.value)
    }
}

/// Checks a dot path: non-empty segments, `*` only as the last one (for fields).
pub fn validate_path(path: &str, allow_wildcard: bool) -> Result<()> {
    let segments: Vec<&str> = path.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let wildcard_ok = allow_wildcard && i == segments.len() - 1 && i > 0;
        if segment.is_empty()
            || (*segment == "*" && !wildcard_ok)
            || (segment.contains('*') && *segment != "*")
        {
            return Err(Error::Unprocessable(format!("invalid field path '{path}'")));
        }
    }
    Ok(())
}

fn any_at(value: &Value, path: &[&str], expected: &Value) -> bool {
    match (value, path.split_first()) {
        (Value::Array(items), _) => items.iter().any(|item| any_at(item, path, expected)),
        (_, None) => scalar_eq(value, expected),
        (Value::Object(map), Some((key, rest))) => {
            map.get(*key).is_some_and(|v| any_at(v, rest, expected))
        }
        _ => false,
    }
}

/// Scalars compare exactly; numbers compare by value (`1` equals `1.0`).
fn scalar_eq(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => {
            match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => a.as_f64().is_some_and(|x| b.as_f64() == Some(x)),
            }
        }
        (Value::String(_) | Value::Bool(_) | Value::Null, _) => actual == expected,
        _ => false,
    }
}

/// Whether every filter matches the document.
pub fn matches_all(doc: &Value, filters: &[Filter]) -> bool {
    filters.iter().all(|f| f.matches(doc))
}

/// A tree of requested paths.
#[derive(Debug, Default)]
struct Selection {
    keep_all: bool,
    children: BTreeMap<String, Selection>,
}

impl Selection {
    fn from_fields(fields: &[String]) -> Self {
        let mut root = Selection::default();
        for field in fields {
            let mut node = &mut root;
            for segment in field.split('.') {
                if segment == "*" {
                    break;
                }
                node = node.children.entry(segment.to_string()).or_default();
            }
            node.keep_all = true;
        }
        root
    }

    /// What the selection keeps of `value`, moved out of it, not copied.
    fn apply(&self, value: Value) -> Option<Value> {
        if self.keep_all {
            return Some(value);
        }
        match value {
            Value::Object(mut map) => {
                let kept: Map<String, Value> = self
                    .children
                    .iter()
                    .filter_map(|(key, child)| Some((key.clone(), child.apply(map.remove(key)?)?)))
                    .collect();
                Some(Value::Object(kept))
            }
            Value::Array(items) => Some(Value::Array(
                items.into_iter().filter_map(|i| self.apply(i)).collect(),
            )),
            // A path that goes deeper than a scalar selects nothing.
            _ => None,
        }
    }
}

/// Keeps only the listed dot paths of a document; no fields keeps it all.
/// Takes the document: what is kept is moved out of it, not copied (a
/// document can be a large tree).
pub fn project(doc: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return doc;
    }
    Selection::from_fields(fields)
        .apply(doc)
        .unwrap_or_else(|| Value::Object(Map::new()))
}

/// The top-level members of a document that `fields` and `filters` read:
/// the first segment of each path (never `*`: [`validate_path`]).
pub fn members_read<'a>(fields: &'a [String], filters: &'a [Filter]) -> BTreeSet<&'a str> {
    fields
        .iter()
        .map(String::as_str)
        .chain(filters.iter().map(|f| f.field.as_str()))
        .map(|path| path.split('.').next().unwrap_or(path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "name": "Squirrel", "identifier": 28492,
            "version": {"identifier": 1171934824, "is_minor_edit": true, "editor": {"name": "OAbot"}},
            "in_language": {"identifier": "en"},
            "categories": [{"name": "Category:Sciuridae", "url": "u1"}, {"name": "Category:Extant", "url": "u2"}]
        })
    }

    #[test]
    fn a_document_parsed_for_its_members_read_projects_and_matches_as_the_whole() {
        let whole = doc();
        let bytes = serde_json::to_vec(&whole).expect("JSON");
        let filter = |field: &str, value: Value| Filter {
            field: field.into(),
            value,
        };
        let selections: Vec<(Vec<String>, Vec<Filter>)> = vec![
            (vec!["name".into()], vec![]),
            (
                vec!["version.identifier".into(), "categories.name".into()],
                vec![],
            ),
            (
                vec!["version.*".into()],
                vec![filter("in_language.identifier", json!("en"))],
            ),
            (
                vec!["name".into()],
                vec![filter("in_language.identifier", json!("fr"))],
            ),
            (
                vec!["name".into()],
                vec![filter("categories.url", json!("u2"))],
            ),
            (vec!["nothing".into()], vec![]),
        ];
        for (fields, filters) in &selections {
            let members = members_read(fields, filters);
            let part = parse_members(&bytes, &members).expect("an object");
            assert_eq!(
                project(part.clone(), fields),
                project(whole.clone(), fields),
                "{fields:?}"
            );
            assert_eq!(
                matches_all(&part, filters),
                matches_all(&whole, filters),
                "{filters:?}"
            );
            // Only the members read were made into values.
            let made: BTreeSet<&str> = part
                .as_object()
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            assert!(made.is_subset(&members), "{made:?} of {members:?}");
        }
        assert_eq!(
            members_read(
                &["version.identifier".into(), "name".into()],
                &[filter("in_language.identifier", json!("en"))]
            ),
            BTreeSet::from(["in_language", "name", "version"])
        );
    }

    fn check(fields: &[&str], expect: Value) {
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        assert_eq!(project(doc(), &fields), expect, "{fields:?}");
    }

    #[test]
    fn projects_exclusively_by_dot_paths() {
        check(&["name"], json!({"name": "Squirrel"}));
        check(
            &["name", "version.identifier"],
            json!({"name": "Squirrel", "version": {"identifier": 1171934824}}),
        );
        check(&["version.*"], json!({"version": doc()["version"]}));
        check(
            &["version", "version.identifier"],
            json!({"version": doc()["version"]}),
        );
        check(
            &["categories.name"],
            json!({"categories": [{"name": "Category:Sciuridae"}, {"name": "Category:Extant"}]}),
        );
        check(&["nothing", "name.deeper"], json!({}));
        check(&[], doc());
    }

    #[test]
    fn filters_compare_scalars_exactly() {
        let f = |field: &str, value: Value| Filter {
            field: field.into(),
            value,
        };
        assert!(f("in_language.identifier", json!("en")).matches(&doc()));
        assert!(!f("in_language.identifier", json!("EN")).matches(&doc()));
        assert!(f("identifier", json!(28492)).matches(&doc()));
        assert!(f("identifier", json!(28492.0)).matches(&doc()));
        assert!(!f("identifier", json!("28492")).matches(&doc()));
        assert!(f("version.is_minor_edit", json!(true)).matches(&doc()));
        assert!(!f("version.is_minor_edit", json!("true")).matches(&doc()));
        assert!(f("categories.name", json!("Category:Extant")).matches(&doc()));
        assert!(!f("version", json!(1)).matches(&doc()));
        assert!(!f("missing.field", json!(1)).matches(&doc()));
        assert!(matches_all(
            &doc(),
            &[f("name", json!("Squirrel")), f("identifier", json!(28492))]
        ));
        assert!(!matches_all(
            &doc(),
            &[f("name", json!("Squirrel")), f("identifier", json!(1))]
        ));
    }

    #[test]
    fn rejects_bad_paths_and_values() {
        for bad in ["", ".", "a..b", "*", "a.*.b", "a*"] {
            assert!(
                matches!(validate_path(bad, true), Err(Error::Unprocessable(_))),
                "{bad:?}"
            );
        }
        assert!(validate_path("version.*", true).is_ok());
        assert!(validate_path("version.*", false).is_err());
        let object = Filter {
            field: "name".into(),
            value: json!({"a": 1}),
        };
        assert!(matches!(object.validate(), Err(Error::Unprocessable(_))));
    }
}
