//! The WME structured-contents document (`/v2/structured-contents/{name}`):
//! an [`Article`] plus a description, infoboxes and the article split into
//! sections of parts.
//!
//! Parts nest: a section `has_parts` paragraphs, lists and sub-sections; an
//! infobox `has_parts` sections of fields. The same [`Part`] type models all
//! of them, distinguished by `type` (`section`, `paragraph`, `list`,
//! `list_item`, `infobox`, `field`, ...).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::schema::{Article, Image};

/// A structured-contents document.
///
/// Field names: WME's current server schema (`general/schema/structured.go`
/// of `wikimedia-enterprise/wikimedia-enterprise`) writes `infoboxes`,
/// `sections`, `references` and `tables`; the current Python SDK reads
/// `infoboxes`, `article_sections`, `references` and `tables`; the Go SDK
/// reads `infobox`; WME's OpenAPI file and its recorded responses use
/// `infobox` and `article_sections`. So the document is written with
/// every name a client reads: `infoboxes` and `infobox` carry the same
/// parts, as do `sections` and `article_sections`
/// (docs/structured-contents.md). Reading accepts either name of a pair.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StructuredContent {
    /// The article fields shared with `/v2/articles`.
    pub article: Article,
    /// The short description of the page.
    pub description: Option<String>,
    /// The infoboxes of the page (`infoboxes`, also written as `infobox`).
    pub infoboxes: Vec<Part>,
    /// The sections of the page, the lead first (`sections`, also written
    /// as `article_sections`).
    pub sections: Vec<Part>,
    /// The references of the page, in order.
    pub references: Vec<Reference>,
    /// The tables of the page, in order.
    pub tables: Vec<Table>,
}

/// How a [`StructuredContent`] is written.
#[derive(Serialize)]
struct WireOut<'a> {
    #[serde(flatten)]
    article: &'a Article,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: &'a Option<String>,
    #[serde(skip_serializing_if = "is_empty")]
    infoboxes: &'a [Part],
    #[serde(skip_serializing_if = "is_empty")]
    infobox: &'a [Part],
    #[serde(skip_serializing_if = "is_empty")]
    sections: &'a [Part],
    #[serde(skip_serializing_if = "is_empty")]
    article_sections: &'a [Part],
    #[serde(skip_serializing_if = "is_empty")]
    references: &'a [Reference],
    #[serde(skip_serializing_if = "is_empty")]
    tables: &'a [Table],
}

fn is_empty<T>(items: &&[T]) -> bool {
    items.is_empty()
}

/// How a [`StructuredContent`] is read: either name of each pair.
#[derive(Deserialize)]
struct WireIn {
    #[serde(flatten)]
    article: Article,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    infoboxes: Option<Vec<Part>>,
    #[serde(default)]
    infobox: Option<Vec<Part>>,
    #[serde(default)]
    sections: Option<Vec<Part>>,
    #[serde(default)]
    article_sections: Option<Vec<Part>>,
    #[serde(default)]
    references: Vec<Reference>,
    #[serde(default)]
    tables: Vec<Table>,
}

impl Serialize for StructuredContent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut {
            article: &self.article,
            description: &self.description,
            infoboxes: &self.infoboxes,
            infobox: &self.infoboxes,
            sections: &self.sections,
            article_sections: &self.sections,
            references: &self.references,
            tables: &self.tables,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StructuredContent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = WireIn::deserialize(deserializer)?;
        Ok(StructuredContent {
            article: w.article,
            description: w.description,
            infoboxes: w.infoboxes.or(w.infobox).unwrap_or_default(),
            sections: w.sections.or(w.article_sections).unwrap_or_default(),
            references: w.references,
            tables: w.tables,
        })
    }
}

/// A reference (WME `StructuredReference`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// The `name` of the `<ref>`, else `cite_note-{n}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// The `group` of the `<ref>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The cite template's kind (`web`, `book`, ...), else `text`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The cite template's named parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The reference's text and links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<ReferenceText>,
}

/// A reference's text (WME `StructuredReferenceText`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceText {
    /// The plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Its links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<PartLink>,
}

/// A table (WME `StructuredTable`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// `table_{n}`, counting the page's tables from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// The header rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Vec<TableCell>>,
    /// The body rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Vec<TableCell>>,
}

/// A table cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableCell {
    /// The cell's plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One node of structured content: a section, paragraph, list, field, ...
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// The node's name (a section heading, an infobox field name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The node type, e.g. `section`, `paragraph`, `infobox`, `field`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The node's plain-text value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Several plain-text values, for multi-valued fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// The child nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub has_parts: Vec<Part>,
    /// Images in the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    /// Links in the node's value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<PartLink>,
}

impl Part {
    /// A node of the given type with a name and children.
    pub fn named(kind: &str, name: &str, has_parts: Vec<Part>) -> Self {
        Part {
            name: Some(name.to_string()),
            kind: Some(kind.to_string()),
            has_parts,
            ..Part::default()
        }
    }

    /// A leaf node of the given type with a plain-text value (taken as it
    /// is when it is a `String`).
    pub fn leaf(kind: &str, value: impl Into<String>) -> Self {
        Part {
            kind: Some(kind.to_string()),
            value: Some(value.into()),
            ..Part::default()
        }
    }
}

/// A link inside a part's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartLink {
    /// The link target URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The link text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Images inside the link. `Some` (written even when empty) on every
    /// link wikiedge derives: the Python SDK's `Link.from_json` reads
    /// `data['images']` (and `data['text']`) and fails without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<Image>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn responses() -> std::path::PathBuf {
        wikiedge_tests::fixtures().join("wme/responses")
    }

    /// WME's recorded documents (older names `infobox`/`article_sections`)
    /// read completely: written again, they carry every field they had,
    /// plus the same parts under the current names.
    fn check_round_trip(file: &str, expected_len: usize) {
        let text = std::fs::read_to_string(responses().join(file)).expect("fixture");
        let all: Vec<Value> = serde_json::from_str(&text).expect("json");
        assert_eq!(all.len(), expected_len, "{file}");
        for original in &all {
            let doc: StructuredContent = serde_json::from_value(original.clone()).expect("parses");
            let mut again = serde_json::to_value(&doc).expect("serialises");
            let obj = again.as_object_mut().expect("an object");
            assert_eq!(obj.get("infoboxes"), original.get("infobox"), "{file}");
            assert_eq!(
                obj.get("sections"),
                original.get("article_sections"),
                "{file}"
            );
            obj.remove("infoboxes");
            obj.remove("sections");
            assert_eq!(&again, original, "{file}: {}", doc.article.name);
        }
    }

    #[test]
    fn structured_contents_fixtures_round_trip_losslessly() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        check_round_trip("structured-contents.json", 3);
        check_round_trip("example_structured-contents_Montreal_response_i.json", 3);
    }

    #[test]
    fn infobox_and_sections_are_typed() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let text = std::fs::read_to_string(
            responses().join("example_structured-contents_response_ii.json"),
        )
        .expect("fixture");
        let all: Vec<StructuredContent> = serde_json::from_str(&text).expect("parses");
        let doc = &all[0];
        let infobox = doc.infoboxes.first().expect("an infobox");
        assert_eq!(infobox.kind.as_deref(), Some("infobox"));
        let first = doc.sections.first().expect("a section");
        assert_eq!(first.kind.as_deref(), Some("section"));
    }

    #[test]
    fn both_names_of_each_pair_are_written_and_either_is_read() {
        let doc = StructuredContent {
            infoboxes: vec![Part::named("infobox", "Infobox x", vec![])],
            sections: vec![Part::named("section", "Abstract", vec![])],
            ..StructuredContent::default()
        };
        let json = serde_json::to_value(&doc).expect("json");
        assert_eq!(json["infoboxes"], json["infobox"]);
        assert_eq!(json["sections"], json["article_sections"]);
        assert_eq!(json["sections"][0]["name"], "Abstract");
        // Our own output reads back (both names present) ...
        let back: StructuredContent = serde_json::from_value(json).expect("reads");
        assert_eq!(back, doc);
        // ... and so does a document with only the current names.
        let current = serde_json::json!({"name": "x", "sections": [{"type": "section"}],
            "infoboxes": [{"type": "infobox"}]});
        let back: StructuredContent = serde_json::from_value(current).expect("reads");
        assert_eq!((back.sections.len(), back.infoboxes.len()), (1, 1));
        // Empty parts are left out under every name.
        let json = serde_json::to_value(StructuredContent::default()).expect("json");
        for key in [
            "infoboxes",
            "infobox",
            "sections",
            "article_sections",
            "references",
            "tables",
        ] {
            assert!(json.get(key).is_none(), "{key}: {json}");
        }
    }
}
