//! The WME structured-contents document (`/v2/structured-contents/{name}`):
//! an [`Article`] plus a description, infoboxes and the article split into
//! sections of parts.
//!
//! Parts nest: a section `has_parts` paragraphs, lists and sub-sections; an
//! infobox `has_parts` sections of fields. The same [`Part`] type models all
//! of them, distinguished by `type` (`section`, `paragraph`, `list`,
//! `list_item`, `infobox`, `field`, ...).

use serde::{Deserialize, Serialize};

use super::schema::{Article, Image};

/// A structured-contents document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StructuredContent {
    /// The article fields shared with `/v2/articles`.
    #[serde(flatten)]
    pub article: Article,
    /// The short description of the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The infoboxes of the page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub infobox: Vec<Part>,
    /// The sections of the page, the lead first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub article_sections: Vec<Part>,
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

    /// A leaf node of the given type with a plain-text value.
    pub fn leaf(kind: &str, value: &str) -> Self {
        Part {
            kind: Some(kind.to_string()),
            value: Some(value.to_string()),
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
    /// Images inside the link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn responses() -> std::path::PathBuf {
        crate::testdata::fixtures().join("wme/responses")
    }

    fn check_round_trip(file: &str, expected_len: usize) {
        let text = std::fs::read_to_string(responses().join(file)).expect("fixture");
        let all: Vec<Value> = serde_json::from_str(&text).expect("json");
        assert_eq!(all.len(), expected_len, "{file}");
        for original in &all {
            let doc: StructuredContent = serde_json::from_value(original.clone()).expect("parses");
            let again = serde_json::to_value(&doc).expect("serialises");
            assert_eq!(&again, original, "{file}: {}", doc.article.name);
        }
    }

    #[test]
    fn structured_contents_fixtures_round_trip_losslessly() {
        if crate::testdata::fixtures_or_skip().is_none() {
            return;
        }
        check_round_trip("structured-contents.json", 3);
        check_round_trip("example_structured-contents_Montreal_response_i.json", 3);
    }

    #[test]
    fn infobox_and_sections_are_typed() {
        if crate::testdata::fixtures_or_skip().is_none() {
            return;
        }
        let text = std::fs::read_to_string(
            responses().join("example_structured-contents_response_ii.json"),
        )
        .expect("fixture");
        let all: Vec<StructuredContent> = serde_json::from_str(&text).expect("parses");
        let doc = &all[0];
        let infobox = doc.infobox.first().expect("an infobox");
        assert_eq!(infobox.kind.as_deref(), Some("infobox"));
        let first = doc.article_sections.first().expect("a section");
        assert_eq!(first.kind.as_deref(), Some("section"));
        let again = serde_json::to_value(&all).expect("serialises");
        let original: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(again, original);
    }
}
