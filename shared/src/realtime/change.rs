//! EventStreams `mediawiki.page_change.v1` events, as ingest receives them.
//!
//! A batch is one JSON object, a JSON array of objects, or NDJSON. An
//! object that wraps the event as EventStreams' SSE clients store it
//! (`{"id": [...], "data": {...}}`) is unwrapped.
//!
//! Choices:
//! - `page_change_kind` maps to WME's three event types (its docs and the
//!   Go SDK's `EventType*` constants: `update`, `delete`,
//!   `visibility-change`): `create`, `undelete`, `edit` and `move` ->
//!   `update` (WME: "sent when an article is created, its content is
//!   updated, or its name or namespace is changed"), `delete` -> `delete`,
//!   `visibility_change` -> `visibility-change`.
//! - Suppressed content is not published: a change whose revision content
//!   is hidden (`revision.is_content_visible: false`, as in a suppressed
//!   delete) is skipped. A visibility change that hides only the comment or
//!   the editor is published, with those parts left out.
//! - A change without `meta.id` cannot be ingested idempotently and is
//!   skipped, as are events of other schemas.

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result};

/// The WME event types (WME has exactly these three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A page was created, undeleted, edited or renamed.
    Update,
    /// A page was deleted.
    Delete,
    /// Parts of a revision were hidden or shown.
    VisibilityChange,
}

impl EventType {
    /// The WME name: `update`, `delete`, `visibility-change`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Update => "update",
            EventType::Delete => "delete",
            EventType::VisibilityChange => "visibility-change",
        }
    }

    /// The type of an EventStreams `page_change_kind`.
    pub fn from_page_change_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "create" | "undelete" | "edit" | "move" => EventType::Update,
            "delete" => EventType::Delete,
            "visibility_change" => EventType::VisibilityChange,
            _ => return None,
        })
    }
}

/// A user as EventStreams describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct User {
    /// The user name (or IP address of an anonymous edit).
    #[serde(default)]
    pub user_text: Option<String>,
    /// The user id; absent for anonymous edits.
    #[serde(default)]
    pub user_id: Option<u64>,
    /// The user's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Whether the user is a bot.
    #[serde(default)]
    pub is_bot: Option<bool>,
    /// Whether the user is a temporary account.
    #[serde(default)]
    pub is_temp: Option<bool>,
    /// The user's edit count.
    #[serde(default)]
    pub edit_count: Option<u64>,
    /// When the account was registered.
    #[serde(default)]
    pub registration_dt: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawPage {
    page_id: u64,
    page_title: String,
    namespace_id: i64,
}

#[derive(Debug, Default, Deserialize)]
struct RawRevision {
    #[serde(default)]
    rev_id: Option<u64>,
    #[serde(default)]
    rev_dt: Option<String>,
    #[serde(default)]
    is_minor_edit: Option<bool>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    editor: Option<User>,
    #[serde(default)]
    rev_size: Option<u64>,
    #[serde(default)]
    is_content_visible: Option<bool>,
    #[serde(default)]
    is_editor_visible: Option<bool>,
    #[serde(default)]
    is_comment_visible: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct RawMeta {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    dt: Option<String>,
    #[serde(default)]
    domain: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawChange {
    #[serde(rename = "$schema", default)]
    schema: Option<String>,
    #[serde(default)]
    page_change_kind: Option<String>,
    #[serde(default)]
    dt: Option<String>,
    #[serde(default)]
    wiki_id: Option<String>,
    #[serde(default)]
    page: Option<RawPage>,
    #[serde(default)]
    revision: Option<RawRevision>,
    #[serde(default)]
    meta: Option<RawMeta>,
}

/// One publishable page change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The event id (`meta.id`, a UUID).
    pub id: String,
    /// The WME event type.
    pub kind: EventType,
    /// The project (`wiki_id`), e.g. `enwiki`.
    pub project: String,
    /// The page id.
    pub page_id: u64,
    /// The title in display form (spaces), namespace prefix included.
    pub title: String,
    /// The namespace id.
    pub namespace: i64,
    /// The revision id, when the change names one.
    pub rev_id: Option<u64>,
    /// The revision's timestamp.
    pub rev_dt: Option<String>,
    /// When the change happened (`dt`, else `meta.dt`).
    pub date_created: Option<String>,
    /// The domain, e.g. `en.wikipedia.org`.
    pub domain: Option<String>,
    /// The revision comment, unless hidden.
    pub comment: Option<String>,
    /// The editor, unless hidden.
    pub editor: Option<User>,
    /// Whether the edit is minor.
    pub is_minor_edit: Option<bool>,
    /// The revision size in bytes.
    pub rev_size: Option<u64>,
    /// Whether the revision text is visible (always true once published).
    pub text_visible: bool,
    /// Whether the editor is visible.
    pub editor_visible: bool,
    /// Whether the comment is visible.
    pub comment_visible: bool,
}

impl Change {
    /// The stable page identifier the log partitions by: `{project}:{page_id}`
    /// (a move keeps its page id, so a page's events stay in order).
    pub fn page_key(&self) -> String {
        format!("{}:{}", self.project, self.page_id)
    }
}

/// What ingest makes of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    /// Publish it.
    Publish(Box<Change>),
    /// Not published, with the event id when it has one and why.
    Skip {
        /// `meta.id`, when present.
        id: Option<String>,
        /// Why it is not published.
        reason: String,
    },
}

/// Splits a request body into event objects: one object, an array, or NDJSON.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Value>> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::Unprocessable("events must be UTF-8 JSON".into()))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Error::Unprocessable("no events in the request body".into()));
    }
    let values = if trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(trimmed)? {
            Value::Array(items) => items,
            _ => return Err(Error::Unprocessable("events must be JSON objects".into())),
        }
    } else if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        vec![value]
    } else {
        let mut out = Vec::new();
        for (n, line) in trimmed.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str::<Value>(line)
                .map_err(|e| Error::Unprocessable(format!("line {}: invalid JSON: {e}", n + 1)))?;
            out.push(value);
        }
        out
    };
    values
        .into_iter()
        .map(|value| match value {
            Value::Object(mut map) => {
                // An EventStreams SSE record: `{"id": [...], "data": {...}}`.
                if !map.contains_key("meta")
                    && map.get("data").is_some_and(Value::is_object)
                    && let Some(data) = map.remove("data")
                {
                    return Ok(data);
                }
                Ok(Value::Object(map))
            }
            _ => Err(Error::Unprocessable("events must be JSON objects".into())),
        })
        .collect()
}

/// Classifies one event object.
pub fn classify(value: &Value) -> Classified {
    let id = value
        .pointer("/meta/id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let skip = |reason: &str| Classified::Skip {
        id: id.clone(),
        reason: reason.to_string(),
    };
    let raw: RawChange = match serde_json::from_value(value.clone()) {
        Ok(raw) => raw,
        Err(_) => return skip("not a mediawiki.page_change event"),
    };
    if raw
        .schema
        .as_deref()
        .is_some_and(|s| !s.starts_with("/mediawiki/page/change/"))
    {
        return skip("not a mediawiki.page_change event");
    }
    let Some(kind) = raw
        .page_change_kind
        .as_deref()
        .and_then(EventType::from_page_change_kind)
    else {
        return skip("unknown or missing page_change_kind");
    };
    let (Some(page), Some(project)) = (raw.page, raw.wiki_id) else {
        return skip("missing page or wiki_id");
    };
    let meta = raw.meta.unwrap_or_default();
    let Some(event_id) = meta.id.filter(|id| !id.is_empty() && id.len() <= 128) else {
        return skip("missing meta.id");
    };
    let revision = raw.revision.unwrap_or_default();
    let text_visible = revision.is_content_visible.unwrap_or(true);
    if !text_visible {
        return skip("suppressed content");
    }
    let editor_visible = revision.is_editor_visible.unwrap_or(true);
    let comment_visible = revision.is_comment_visible.unwrap_or(true);
    Classified::Publish(Box::new(Change {
        id: event_id,
        kind,
        project,
        page_id: page.page_id,
        title: page.page_title.replace('_', " "),
        namespace: page.namespace_id,
        rev_id: revision.rev_id,
        rev_dt: revision.rev_dt,
        date_created: raw.dt.or(meta.dt),
        domain: meta.domain,
        comment: revision.comment.filter(|_| comment_visible),
        editor: revision.editor.filter(|_| editor_visible),
        is_minor_edit: revision.is_minor_edit,
        rev_size: revision.rev_size,
        text_visible,
        editor_visible,
        comment_visible,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<Value> {
        let bytes = std::fs::read(
            wikiedge_tests::fixtures()
                .join("eventstreams/events")
                .join(name),
        )
        .unwrap_or_default();
        parse_batch(&bytes).unwrap_or_default()
    }

    fn check(name: &str, expect: Option<(&str, &str, &str)>) {
        let events = fixture(name);
        assert_eq!(events.len(), 1, "{name}");
        match (classify(&events[0]), expect) {
            (Classified::Publish(c), Some((kind, project, title))) => {
                assert_eq!(
                    (c.kind.as_str(), c.project.as_str(), c.title.as_str()),
                    (kind, project, title),
                    "{name}"
                );
            }
            (Classified::Skip { .. }, None) => {}
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn fixture_events_map_to_wme_event_types() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        check(
            "wdqs_page_change_mediainfo_edit-mediainfo-item.json",
            Some((
                "update",
                "commonswiki",
                "File:Iris foetidissima fruit (05).jpg",
            )),
        );
        check(
            "wdqs_page_change_wikibase_item-create.json",
            Some(("update", "testwikidatawiki", "Q235989")),
        );
        check(
            "wdqs_page_change_wikibase_item-delete.json",
            Some(("delete", "testwikidatawiki", "Q235989")),
        );
        check(
            "wdqs_page_change_wikibase_item-undelete.json",
            Some(("update", "testwikidatawiki", "Q235989")),
        );
        check(
            "wdqs_page_change_wikibase_item-visibility-change.json",
            Some(("visibility-change", "testwikidatawiki", "Q235989")),
        );
        check(
            "wmf-event-stream-sdk-go_page-change.json",
            Some(("update", "enwiki", "Varvara Prohorova")),
        );
        // Suppressed: not published.
        check("wdqs_page_change_wikibase_item-page-suppress.json", None);
        // No meta.id and no page_change_kind: not ingestible.
        check("wmf-event-stream-sdk-go_page-change-large-revid.json", None);
    }

    #[test]
    fn only_wmes_three_event_types_exist() {
        for (kind, want) in [
            ("create", Some("update")),
            ("undelete", Some("update")),
            ("edit", Some("update")),
            ("move", Some("update")),
            ("delete", Some("delete")),
            ("visibility_change", Some("visibility-change")),
            ("purge", None),
        ] {
            assert_eq!(
                EventType::from_page_change_kind(kind).map(EventType::as_str),
                want,
                "{kind}"
            );
        }
    }

    #[test]
    fn other_schemas_are_skipped_and_wrappers_unwrapped() {
        for event in fixture("wmf-event-stream-sdk-go_page-delete.json") {
            assert!(matches!(classify(&event), Classified::Skip { .. }));
        }
    }

    #[test]
    fn batches_are_objects_arrays_or_ndjson() {
        assert_eq!(parse_batch(br#"{"a":1}"#).map(|v| v.len()).ok(), Some(1));
        assert_eq!(
            parse_batch(br#"[{"a":1},{"b":2}]"#).map(|v| v.len()).ok(),
            Some(2)
        );
        assert_eq!(
            parse_batch(b"{\"a\":1}\n\n{\"b\":2}\n")
                .map(|v| v.len())
                .ok(),
            Some(2)
        );
        assert!(parse_batch(b"").is_err());
        assert!(parse_batch(b"[1,2]").is_err());
        assert!(parse_batch(b"{\"a\":1}\nnope").is_err());
    }

    #[test]
    fn hidden_comments_and_editors_are_left_out() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let events = fixture("wdqs_page_change_wikibase_item-visibility-change.json");
        let Classified::Publish(change) = classify(&events[0]) else {
            panic!("not published");
        };
        assert_eq!(change.comment, None);
        assert!(change.editor.is_some());
        assert!(!change.comment_visible);
    }
}
