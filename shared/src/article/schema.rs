//! The WME Article document and its parts, field for field as the WME v2
//! OpenAPI spec (`components/schemas/article`) and real On-demand responses
//! spell them.
//!
//! Every optional value is omitted on serialisation, never written as
//! `null`, and empty lists are omitted too, because WME (a Go service using
//! `omitempty`) does the same. Booleans are `Option<bool>` so that a document
//! read from WME and written back is byte-for-byte the same JSON value: WME
//! omits `false` flags, and a transform here sets them only when true.
//! Open-ended blobs whose shape WME changes over time (`scores`) stay
//! [`serde_json::Value`].

use serde::{Deserialize, Serialize};

pub use crate::projects::{Language, Project};

/// One WME article: the latest revision of a page in one project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Article {
    /// The page title with spaces, e.g. `Squirrel`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The MediaWiki page id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<u64>,
    /// The plain text of the lead section.
    #[serde(rename = "abstract", default, skip_serializing_if = "Option::is_none")]
    pub abstract_text: Option<String>,
    /// The page's short description (as WME's newer documents and its
    /// structured contents carry it), e.g. `Family of rodents`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When the page was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_created: Option<String>,
    /// When the current revision was saved (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_modified: Option<String>,
    /// When the previous revision was saved (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_previously_modified: Option<String>,
    /// The page protections in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protection: Vec<Protection>,
    /// The current revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// The revision before the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<PreviousVersion>,
    /// The canonical page URL, e.g. `https://en.wikipedia.org/wiki/Squirrel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How many users watch the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchers_count: Option<u64>,
    /// The page's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Namespace>,
    /// The content language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_language: Option<Language>,
    /// The Wikidata item the page describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_entity: Option<Entity>,
    /// Further Wikidata entities used on the page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_entities: Vec<Entity>,
    /// The categories the page is in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<NamedLink>,
    /// The templates the page transcludes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<NamedLink>,
    /// The redirects that point to the page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<NamedLink>,
    /// The project the page belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_part_of: Option<Project>,
    /// The page content as HTML and wikitext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article_body: Option<ArticleBody>,
    /// The licenses the content is available under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub license: Vec<License>,
    /// The event that produced this version of the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
    /// The page's lead image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    /// Which parts of the revision are hidden (revision deletion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
}

/// A page protection: who may do what until when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    /// The protected action, e.g. `edit` or `move`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The group needed, e.g. `autoconfirmed` or `sysop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// When the protection ends, or `infinity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
}

/// A revision of the page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// The revision id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<u64>,
    /// The edit summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The change tags of the revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Whether the edit was marked minor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_minor_edit: Option<bool>,
    /// Whether the revision is the flagged stable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_flagged_stable: Option<bool>,
    /// Whether the revision carries a "citation needed" tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_tag_needs_citation: Option<bool>,
    /// Whether the page asks search engines not to index it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noindex: Option<bool>,
    /// Model scores (ORES, revert risk) as WME sends them; kept open-ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<serde_json::Value>,
    /// Counts of maintenance templates in the revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_tags: Option<MaintenanceTags>,
    /// Who saved the revision; omitted when the user is hidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub editor: Option<Editor>,
    /// The length of the wikitext in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_characters: Option<u64>,
    /// The size of the wikitext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// The event that produced the revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
}

/// Counts of maintenance templates, as WME reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceTags {
    /// How many `{{citation needed}}` the revision has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citation_needed_count: Option<u64>,
    /// How many point-of-view tags the revision has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pov_count: Option<u64>,
    /// How many `{{clarification needed}}` the revision has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clarification_needed_count: Option<u64>,
    /// How many `{{update}}` tags the revision has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_count: Option<u64>,
}

/// The user who saved a revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Editor {
    /// The user id (absent for anonymous editors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<u64>,
    /// The user name, or the IP address of an anonymous editor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The user's total edit count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_count: Option<u64>,
    /// The user's groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Whether the user is a bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_bot: Option<bool>,
    /// Whether the edit was made without an account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_anonymous: Option<bool>,
    /// Whether the user is an administrator (group `sysop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_admin: Option<bool>,
    /// Whether the user is in a group with patrolling rights
    /// ([`PATROLLER_GROUPS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_patroller: Option<bool>,
    /// Whether the user is in a group with advanced rights
    /// ([`ADVANCED_GROUPS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_advanced_rights: Option<bool>,
    /// When the user registered (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_started: Option<String>,
}

/// The user groups WME counts as patrolling (`is_patroller`): the
/// rollbackers, edit-filter managers, patrollers and the reviewers of the
/// wikis with flagged revisions.
pub const PATROLLER_GROUPS: [&str; 9] = [
    "rollback",
    "abusefilter",
    "patroller",
    "reviewer",
    "autoreview",
    "autoreviewer",
    "editor",
    "autoeditor",
    "eliminator",
];

/// The user groups WME counts as advanced rights (`has_advanced_rights`).
pub const ADVANCED_GROUPS: [&str; 4] = ["checkuser", "bureaucrat", "oversight", "steward"];

impl Editor {
    /// Sets the flags WME derives from the user's groups — `is_bot`
    /// (`bot`), `is_admin` (`sysop`), `is_patroller` ([`PATROLLER_GROUPS`])
    /// and `has_advanced_rights` ([`ADVANCED_GROUPS`]) — to `true` when a
    /// group grants them; a flag already `true` stays (WME omits `false`).
    pub fn with_group_flags(mut self) -> Self {
        let any = |set: &[&str]| self.groups.iter().any(|g| set.contains(&g.as_str()));
        let (bot, admin, patroller, advanced) = (
            any(&["bot"]),
            any(&["sysop"]),
            any(&PATROLLER_GROUPS),
            any(&ADVANCED_GROUPS),
        );
        let set = |flag: &mut Option<bool>, on: bool| {
            if on {
                *flag = Some(true);
            }
        };
        set(&mut self.is_bot, bot);
        set(&mut self.is_admin, admin);
        set(&mut self.is_patroller, patroller);
        set(&mut self.has_advanced_rights, advanced);
        self
    }
}

/// A size with its unit (`B` for bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    /// The amount.
    pub value: u64,
    /// The unit, e.g. `B`.
    pub unit_text: String,
}

/// The revision before the current one, in brief.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousVersion {
    /// The revision id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<u64>,
    /// The length of its wikitext in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_characters: Option<u64>,
}

/// A namespace reference (`identifier` is the MediaWiki namespace number).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// The namespace number, e.g. 0 for articles.
    pub identifier: i64,
    /// The WME name of the namespace, e.g. `Articles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A description of the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A Wikidata entity reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// The entity id, e.g. `Q9482`.
    pub identifier: String,
    /// The entity URL, e.g. `https://www.wikidata.org/entity/Q9482`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How the page uses the entity (Wikibase usage aspects).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aspects: Vec<String>,
}

impl Entity {
    /// A Wikidata entity reference with its canonical URL.
    pub fn wikidata(identifier: &str) -> Self {
        Entity {
            identifier: identifier.to_string(),
            url: Some(format!("https://www.wikidata.org/entity/{identifier}")),
            aspects: Vec::new(),
        }
    }
}

/// A category, template or redirect: a page name and its URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedLink {
    /// The full page name with namespace, e.g. `Category:Sciuridae`.
    pub name: String,
    /// The page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The page content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleBody {
    /// The Parsoid HTML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The wikitext source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wikitext: Option<String>,
}

/// A content license.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    /// The license's full name.
    pub name: String,
    /// The SPDX-style identifier, e.g. `CC-BY-SA-4.0`.
    pub identifier: String,
    /// The license deed URL.
    pub url: String,
}

impl License {
    /// CC BY-SA 4.0, the license of Wikimedia text since June 2023.
    pub fn cc_by_sa_4() -> Self {
        License {
            name: "Creative Commons Attribution Share Alike 4.0 International".to_string(),
            identifier: "CC-BY-SA-4.0".to_string(),
            url: "https://creativecommons.org/licenses/by-sa/4.0/".to_string(),
        }
    }

    /// CC BY-SA 3.0, spelled exactly as WME's documents spell it.
    pub fn cc_by_sa_3() -> Self {
        License {
            name: "Creative Commons Attribution Share Alike 3.0 Unported".to_string(),
            identifier: "CC-BY-SA-3.0".to_string(),
            url: "https://creativecommons.org/licenses/by-sa/3.0/".to_string(),
        }
    }

    /// The GNU FDL that Wikimedia text was dual-licensed under with CC BY-SA
    /// 3.0 until June 2023 ("unversioned" in the Terms of Use, hence no
    /// version in the identifier).
    pub fn gfdl() -> Self {
        License {
            name: "GNU Free Documentation License".to_string(),
            identifier: "GFDL".to_string(),
            url: "https://www.gnu.org/copyleft/fdl.html".to_string(),
        }
    }

    /// The licences of a revision saved at `timestamp` (RFC 3339, UTC):
    /// CC BY-SA 4.0 from [`CC_BY_SA_4_SINCE`] on, CC BY-SA 3.0 and the GFDL
    /// before. An empty or unreadable timestamp gets today's licence.
    pub fn for_revision(timestamp: &str) -> Vec<License> {
        let dated =
            timestamp.len() >= 10 && timestamp.as_bytes()[..4].iter().all(u8::is_ascii_digit);
        if dated && timestamp < CC_BY_SA_4_SINCE {
            vec![License::cc_by_sa_3(), License::gfdl()]
        } else {
            vec![License::cc_by_sa_4()]
        }
    }
}

/// When Wikimedia text moved to CC BY-SA 4.0 (the Terms of Use update
/// announced for 29 June 2023): revisions saved from then on are 4.0 only.
pub const CC_BY_SA_4_SINCE: &str = "2023-06-29T00:00:00Z";

/// The event that produced a document (create, update, delete, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The event id (a UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// The event type, e.g. `update`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When the event was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_created: Option<String>,
    /// When the event was published (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_published: Option<String>,
    /// The stream partition (Realtime only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i64>,
    /// The offset in the partition (Realtime only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}

/// An image reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The image file URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_url: Option<String>,
    /// The width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u64>,
    /// The height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// The caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// The alternative text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternative_text: Option<String>,
}

/// Which parts of a revision are hidden by revision deletion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visibility {
    /// Whether the comment is visible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<bool>,
    /// Whether the text is visible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<bool>,
    /// Whether the user is visible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn read(name: &str) -> String {
        std::fs::read_to_string(wikiedge_tests::fixtures().join("wme/responses").join(name))
            .expect("fixture is readable")
    }

    fn check_round_trip(original: &Value) {
        let article: Article = serde_json::from_value(original.clone()).expect("article parses");
        let again = serde_json::to_value(&article).expect("article serialises");
        assert_eq!(&again, original, "round trip of {}", article.name);
    }

    #[test]
    fn articles_json_round_trips_losslessly() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let all: Vec<Value> = serde_json::from_str(&read("articles.json")).expect("json");
        assert_eq!(all.len(), 3);
        all.iter().for_each(check_round_trip);
        let en: Article = serde_json::from_value(all[1].clone()).expect("article");
        assert_eq!(
            en.is_part_of.as_ref().map(|p| p.identifier.as_str()),
            Some("enwiki")
        );
        assert_eq!(
            en.version.as_ref().and_then(|v| v.identifier),
            Some(1171934824)
        );
    }

    #[test]
    fn articles_ndjson_round_trips_losslessly() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let text = read("articles.ndjson");
        let lines: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("ndjson line"))
            .collect();
        assert_eq!(lines.len(), 3);
        lines.iter().for_each(check_round_trip);
    }

    #[test]
    fn licence_follows_the_revision_date() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let ids = |t: &str| -> Vec<String> {
            License::for_revision(t)
                .into_iter()
                .map(|l| l.identifier)
                .collect()
        };
        assert_eq!(ids("2016-04-22T10:19:33Z"), ["CC-BY-SA-3.0", "GFDL"]);
        assert_eq!(ids("2023-06-28T23:59:59Z"), ["CC-BY-SA-3.0", "GFDL"]);
        assert_eq!(ids("2023-06-29T00:00:00Z"), ["CC-BY-SA-4.0"]);
        assert_eq!(ids("2024-09-12T08:00:00Z"), ["CC-BY-SA-4.0"]);
        assert_eq!(ids(""), ["CC-BY-SA-4.0"]);
        // The 3.0 object is spelled exactly as in WME's own documents.
        let all: Vec<Value> = serde_json::from_str(&read("articles.json")).expect("json");
        let wme: License = serde_json::from_value(all[0]["license"][0].clone()).expect("license");
        assert_eq!(wme, License::cc_by_sa_3());
    }

    #[test]
    fn editor_flags_follow_the_groups_as_wme_derives_them() {
        let editor = |groups: &[&str]| {
            let e = Editor {
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..Editor::default()
            }
            .with_group_flags();
            (e.is_bot, e.is_admin, e.is_patroller, e.has_advanced_rights)
        };
        let t = Some(true);
        assert_eq!(
            editor(&["bot", "*", "user", "autoconfirmed"]),
            (t, None, None, None)
        );
        assert_eq!(
            editor(&["sysop", "rollback", "*", "user"]),
            (None, t, t, None)
        );
        assert_eq!(editor(&["checkuser", "autoreviewer"]), (None, None, t, t));
        assert_eq!(
            editor(&["*", "user", "autoconfirmed"]),
            (None, None, None, None)
        );
        // A flag someone already set stays set.
        let bot = Editor {
            is_bot: Some(true),
            ..Editor::default()
        }
        .with_group_flags();
        assert_eq!(bot.is_bot, Some(true));
    }

    #[test]
    fn absent_values_are_omitted_not_null() {
        let article = Article {
            name: "Squirrel".into(),
            identifier: Some(1),
            ..Article::default()
        };
        let json = serde_json::to_string(&article).expect("serialises");
        assert_eq!(json, r#"{"name":"Squirrel","identifier":1}"#);
    }
}
