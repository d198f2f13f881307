//! The published WME event: the article (fetched, or minimal for deletes
//! and unreachable upstreams) with the change's facts laid over it and the
//! `event` object that places it in the log.

use super::change::{Change, EventType, User};
use super::media::commons_content_url;
use crate::article::schema::{
    Article, Editor, Event, Image, Language, Namespace, Project, Version, Visibility,
};
use crate::article::title;
use crate::time::format_millis;

/// Where an event was placed in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The partition.
    pub partition: u32,
    /// The offset in the partition.
    pub offset: u64,
    /// When it was published (Unix milliseconds).
    pub published_ms: i64,
}

fn editor(user: &User) -> Editor {
    Editor {
        identifier: user.user_id,
        name: user.user_text.clone(),
        edit_count: user.edit_count,
        groups: user.groups.clone(),
        is_bot: user.is_bot.filter(|b| *b),
        is_anonymous: user.user_id.is_none().then_some(true),
        date_started: user.registration_dt.clone(),
        ..Editor::default()
    }
    .with_group_flags()
}

/// The article of a change when no fetched one exists (a delete, or an
/// upstream that could not answer): what the event itself says.
/// `base_url` and `language` come from the project registry when known.
pub fn minimal_article(change: &Change, base_url: Option<&str>, language: Option<&str>) -> Article {
    let base_url = base_url
        .map(str::to_string)
        .or_else(|| change.domain.as_ref().map(|d| format!("https://{d}")));
    Article {
        name: change.title.clone(),
        identifier: Some(change.page_id),
        date_modified: change.rev_dt.clone().or(change.date_created.clone()),
        url: base_url
            .as_deref()
            .map(|base| title::page_url(base, &change.title)),
        namespace: Some(Namespace {
            identifier: change.namespace,
            ..Namespace::default()
        }),
        in_language: language.map(|l| Language {
            identifier: l.to_string(),
            ..Language::default()
        }),
        is_part_of: Some(Project {
            identifier: change.project.clone(),
            url: base_url,
            ..Project::default()
        }),
        version: change.rev_id.map(|id| Version {
            identifier: Some(id),
            ..Version::default()
        }),
        ..Article::default()
    }
}

/// The event's editor laid over the fetched one: the event knows the
/// groups, edit count, bot flag and registration date, the fetch may know
/// the id or name where the event leaves them out.
fn merged_editor(fetched: Option<Editor>, event: Option<Editor>) -> Option<Editor> {
    match (fetched, event) {
        (Some(fetched), Some(event)) => Some(Editor {
            identifier: event.identifier.or(fetched.identifier),
            name: event.name.or(fetched.name),
            edit_count: event.edit_count.or(fetched.edit_count),
            groups: if event.groups.is_empty() {
                fetched.groups
            } else {
                event.groups
            },
            is_bot: event.is_bot.or(fetched.is_bot),
            is_anonymous: event.is_anonymous.or(fetched.is_anonymous),
            is_admin: event.is_admin.or(fetched.is_admin),
            is_patroller: event.is_patroller.or(fetched.is_patroller),
            has_advanced_rights: event.has_advanced_rights.or(fetched.has_advanced_rights),
            date_started: event.date_started.or(fetched.date_started),
        }),
        (fetched, event) => event.or(fetched),
    }
}

/// Lays the change's revision facts (comment, editor, minor flag) over the
/// article's version when both are about the same revision; the fetched
/// document keeps what the event does not say (tags, scores, maintenance
/// tags, the editor's id when the event lacks it).
fn apply_revision_facts(article: &mut Article, change: &Change) {
    let version = article.version.get_or_insert_with(Version::default);
    if version.identifier.is_none() {
        version.identifier = change.rev_id;
    }
    if change
        .rev_id
        .is_none_or(|id| version.identifier == Some(id))
    {
        if change.comment.is_some() || !change.comment_visible {
            version.comment = change.comment.clone();
        }
        version.editor = if change.editor_visible {
            merged_editor(version.editor.take(), change.editor.as_ref().map(editor))
        } else {
            None
        };
        if let Some(minor) = change.is_minor_edit {
            version.is_minor_edit = minor.then_some(true);
        }
    }
}

/// The copy of a fetched article that realtime ingest stores for
/// On-demand: the article with the change's revision facts and the
/// `event{identifier,type,date_created}` On-demand documents carry (the
/// log placement — partition, offset, publication — belongs to the
/// published event only).
pub fn stored_document(mut article: Article, change: &Change) -> Article {
    apply_revision_facts(&mut article, change);
    article.event = Some(Event {
        identifier: Some(change.id.clone()),
        kind: Some(change.kind.as_str().to_string()),
        date_created: change.date_created.clone(),
        ..Event::default()
    });
    article
}

/// The event document: `article` with the change's revision facts
/// (comment, editor, minor flag, visibility), the Commons `image` of a
/// `File:` page, and `event{identifier,type,date_created,date_published,
/// partition,offset}`.
pub fn event_document(mut article: Article, change: &Change, at: Placement) -> Article {
    apply_revision_facts(&mut article, change);
    if change.kind == EventType::VisibilityChange
        || !change.comment_visible
        || !change.editor_visible
    {
        article.visibility = Some(Visibility {
            text: Some(change.text_visible),
            comment: Some(change.comment_visible),
            user: Some(change.editor_visible),
        });
    }
    if change.namespace == 6 && change.project == "commonswiki" {
        article.image = commons_content_url(&change.title).map(|url| Image {
            content_url: Some(url),
            ..Image::default()
        });
    }
    if change.kind == EventType::Delete {
        article.article_body = None;
        article.abstract_text = None;
    }
    article.event = Some(Event {
        identifier: Some(change.id.clone()),
        kind: Some(change.kind.as_str().to_string()),
        date_created: change.date_created.clone(),
        date_published: Some(format_millis(at.published_ms)),
        partition: Some(i64::from(at.partition)),
        offset: i64::try_from(at.offset).ok(),
    });
    article
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::change::{Classified, classify, parse_batch};

    fn change(name: &str) -> Change {
        let path = wikiedge_tests::fixtures()
            .join("eventstreams/events")
            .join(name);
        let bytes = std::fs::read(path).unwrap_or_default();
        let events = parse_batch(&bytes).unwrap_or_default();
        match events.first().map(classify) {
            Some(Classified::Publish(c)) => *c,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn a_delete_is_a_minimal_article_with_its_event() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let c = change("wdqs_page_change_wikibase_item-delete.json");
        let at = Placement {
            partition: 3,
            offset: 7,
            published_ms: 1_728_055_574_000,
        };
        let doc = event_document(minimal_article(&c, None, None), &c, at);
        let json = serde_json::to_value(&doc).unwrap_or_default();
        assert_eq!(json["name"], "Q235989");
        assert_eq!(json["url"], "https://test.wikidata.org/wiki/Q235989");
        assert_eq!(json["event"]["type"], "delete");
        assert_eq!(
            json["event"]["identifier"],
            "b9da7c08-48ee-4f8b-8e57-3edbf650360e"
        );
        assert_eq!(json["event"]["partition"], 3);
        assert_eq!(json["event"]["offset"], 7);
        assert_eq!(json["event"]["date_created"], "2024-10-04T15:26:14Z");
        assert!(json.get("article_body").is_none());
    }

    #[test]
    fn the_stored_copy_merges_the_event_into_the_fetched_article() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let c = change("wdqs_page_change_wikibase_item-edit.json");
        let rev = c.rev_id.expect("revision");
        let fetched = Article {
            name: c.title.clone(),
            version: Some(Version {
                identifier: Some(rev),
                comment: Some("fetched comment".into()),
                tags: vec!["mobile edit".into()],
                editor: Some(Editor {
                    identifier: Some(1),
                    name: Some("Fetched".into()),
                    ..Editor::default()
                }),
                ..Version::default()
            }),
            ..Article::default()
        };
        let stored = serde_json::to_value(stored_document(fetched, &c)).expect("json");
        let event_editor = c.editor.clone().expect("event editor");
        let version = &stored["version"];
        // The event's editor details win, the fetched tags stay.
        assert_eq!(
            version["editor"]["name"].as_str(),
            event_editor.user_text.as_deref()
        );
        assert_eq!(version["tags"], serde_json::json!(["mobile edit"]));
        assert_eq!(version["comment"].as_str(), c.comment.as_deref());
        assert_eq!(
            version["editor"]["groups"],
            serde_json::json!(["bureaucrat", "suppress", "sysop", "*", "user"])
        );
        assert_eq!(version["editor"]["identifier"], 2490);
        assert_eq!(version["editor"]["edit_count"], 27);
        assert_eq!(version["editor"]["date_started"], "2017-09-28T06:49:13Z");
        assert!(version.get("is_minor_edit").is_none());
        assert_eq!(stored["event"]["identifier"], c.id.as_str());
        assert_eq!(stored["event"]["type"], c.kind.as_str());
        assert!(stored["event"].get("partition").is_none());
        assert!(stored["event"].get("offset").is_none());

        // An event about another revision leaves the fetched facts alone.
        let older = Article {
            version: Some(Version {
                identifier: Some(rev - 1),
                comment: Some("older".into()),
                ..Version::default()
            }),
            ..Article::default()
        };
        let stored = stored_document(older, &c);
        assert_eq!(
            stored.version.and_then(|v| v.comment).as_deref(),
            Some("older")
        );
    }

    #[test]
    fn commons_files_carry_their_image() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let c = change("wdqs_page_change_mediainfo_edit-mediainfo-item.json");
        let at = Placement {
            partition: 0,
            offset: 0,
            published_ms: 0,
        };
        let doc = event_document(minimal_article(&c, None, None), &c, at);
        let url = doc.image.and_then(|i| i.content_url).unwrap_or_default();
        assert!(
            url.starts_with("https://upload.wikimedia.org/wikipedia/commons/")
                && url.ends_with("/Iris_foetidissima_fruit_(05).jpg"),
            "{url}"
        );
        assert_eq!(
            doc.version.and_then(|v| v.editor).and_then(|e| e.name),
            Some("GRuban".into())
        );
    }
}
