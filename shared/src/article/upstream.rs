//! Live MediaWiki responses -> WME [`Article`]: the REST page with HTML (and
//! its source for the wikitext), one Action API query for everything else
//! about the page and its two latest revisions, and one more for its first
//! revision (docs/upstream.md lists the calls).
//!
//! The fetcher (a component) sends the requests built by
//! [`rest_with_html_url`], [`action_api_url`] and [`first_revision_url`]
//! and hands the bodies to [`RestPage::parse`], [`PageInfo::parse`] and
//! [`first_revision_timestamp`]; [`article_from_upstream`] joins them. Both parsers accept `formatversion=1` and `=2` shapes, since
//! wikis and proxies differ, and turn an upstream that answers garbage into
//! `BadGateway` and a missing page into `NotFound`.

use serde::Deserialize;
use serde_json::Value;

use super::maintenance;
use super::plaintext::abstract_text;
use super::schema::{
    Article, ArticleBody, Editor, Entity, Image, Language, License, Namespace, PreviousVersion,
    Project, Protection, Size, Version, Visibility,
};
use super::title;
use super::transform::ProjectContext;
use super::wikitext;
use crate::{Error, Result};

mod follow_up;
#[cfg(test)]
use follow_up::revision_text;
pub use follow_up::{PARENT_QUERY, USERS_QUERY, apply_follow_up, follow_up_url};

/// The Action API query string (without `titles=`) the fetcher sends, one
/// query for all of: categories (hidden ones too, as WME lists them),
/// templates, the redirects pointing to the page, the Wikidata item, page
/// info with protection and watchers (MediaWiki discloses the count only
/// above the wiki's threshold), the lead image (`pageimages`, original
/// size), the short description (`description`), the Wikidata entities the
/// page uses with their aspects (`wbentityusage`, WME's
/// `additional_entities`), and the two latest
/// revisions with their editor, comment, flags, tags and size — the
/// current one and its parent. `|` is sent as `%7C`, which every URL
/// parser accepts.
pub const ACTION_API_QUERY: &str = "action=query&format=json&formatversion=2\
&prop=categories%7Ctemplates%7Credirects%7Cpageprops%7Cinfo%7Crevisions%7Cpageimages%7Cdescription%7Cwbentityusage\
&inprop=protection%7Cwatchers&ppprop=wikibase_item\
&cllimit=max&tllimit=max&rdlimit=max&rdprop=title&wbeulimit=max\
&rvprop=ids%7Ctimestamp%7Cflags%7Ccomment%7Cuser%7Cuserid%7Ctags%7Csize&rvlimit=2\
&piprop=original";

/// The Action API query string (without `titles=`) for the page's first
/// revision, whose timestamp is `date_created`. A page's revisions can be
/// listed in one direction per query, so this cannot join
/// [`ACTION_API_QUERY`], which needs the newest two.
pub const FIRST_REVISION_QUERY: &str = "action=query&format=json&formatversion=2\
&prop=revisions&rvdir=newer&rvlimit=1&rvprop=ids%7Ctimestamp";

/// Everything but RFC 3986 unreserved characters.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_component(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, COMPONENT).to_string()
}

/// The Action API URL for a title, e.g.
/// `https://en.wikipedia.org/w/api.php?action=query&...&titles=Squirrel`.
pub fn action_api_url(base_url: &str, title: &str) -> String {
    format!(
        "{}/w/api.php?{ACTION_API_QUERY}&titles={}",
        base_url.trim_end_matches('/'),
        encode_component(&title::key_form(title))
    )
}

/// The Action API URL of a title's first revision (see [`FIRST_REVISION_QUERY`]).
pub fn first_revision_url(base_url: &str, title: &str) -> String {
    format!(
        "{}/w/api.php?{FIRST_REVISION_QUERY}&titles={}",
        base_url.trim_end_matches('/'),
        encode_component(&title::key_form(title))
    )
}

/// The timestamp of the first revision in an answer to
/// [`FIRST_REVISION_QUERY`]; `None` for anything else (the field is then
/// left out, never an error).
pub fn first_revision_timestamp(json: &[u8]) -> Option<String> {
    let root: Value = serde_json::from_slice(json).ok()?;
    let page = first_page(&root)?;
    let revision = page.get("revisions")?.as_array()?.first()?;
    // Only a revision without a parent is the page's first.
    if revision
        .get("parentid")
        .and_then(Value::as_u64)
        .is_some_and(|p| p != 0)
    {
        return None;
    }
    revision
        .get("timestamp")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The first page of an `action=query` answer (formatversion 2: an array;
/// 1: an object keyed by page id).
fn first_page(root: &Value) -> Option<&Value> {
    match root.pointer("/query/pages") {
        Some(Value::Array(list)) => list.first(),
        Some(Value::Object(map)) => map.values().next(),
        _ => None,
    }
}

/// The `wbentityusage` of a page, `{"Q42": {"aspects": ["S", "T"]}, ...}`
/// (ApiPropsEntityUsage), as WME's `additional_entities`: identifier,
/// Wikidata URL and aspects. Entries without an id-like key or aspects
/// are skipped.
fn entity_usage(page: &Value) -> Vec<Entity> {
    let Some(usage) = page.get("wbentityusage").and_then(Value::as_object) else {
        return Vec::new();
    };
    usage
        .iter()
        .filter(|(id, _)| {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(|(id, v)| Entity {
            aspects: v
                .get("aspects")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            ..Entity::wikidata(id)
        })
        .collect()
}

/// One revision of `prop=revisions`, in either format version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionInfo {
    /// The revision id.
    pub id: u64,
    /// The parent revision id (0 or absent for a page's first revision).
    pub parent_id: Option<u64>,
    /// When it was saved.
    pub timestamp: Option<String>,
    /// The user name or IP address; `None` when hidden.
    pub user: Option<String>,
    /// The user id (0 for anonymous editors).
    pub user_id: Option<u64>,
    /// Whether the editor had no account.
    pub anonymous: bool,
    /// Whether the user is hidden (revision deletion).
    pub user_hidden: bool,
    /// The edit summary; `None` when hidden or absent.
    pub comment: Option<String>,
    /// Whether the comment is hidden.
    pub comment_hidden: bool,
    /// Whether the edit is marked minor.
    pub minor: bool,
    /// The change tags.
    pub tags: Vec<String>,
    /// The size in bytes.
    pub size: Option<u64>,
}

impl RevisionInfo {
    /// Reads one revision object; `None` without a revision id.
    fn parse(v: &Value) -> Option<Self> {
        // formatversion=2 flags are booleans; formatversion=1 flags are
        // present (as "") when set and absent otherwise.
        let flag = |key: &str| v.get(key).is_some_and(|f| f.as_bool() != Some(false));
        Some(RevisionInfo {
            id: v.get("revid").and_then(Value::as_u64)?,
            parent_id: v.get("parentid").and_then(Value::as_u64),
            timestamp: v
                .get("timestamp")
                .and_then(Value::as_str)
                .map(str::to_string),
            user: v.get("user").and_then(Value::as_str).map(str::to_string),
            user_id: v.get("userid").and_then(Value::as_u64),
            anonymous: flag("anon"),
            user_hidden: flag("userhidden"),
            comment: v.get("comment").and_then(Value::as_str).map(str::to_string),
            comment_hidden: flag("commenthidden"),
            minor: flag("minor"),
            tags: v
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            size: v.get("size").and_then(Value::as_u64),
        })
    }

    /// The WME editor; `None` when the user is hidden.
    fn editor(&self) -> Option<Editor> {
        if self.user_hidden {
            return None;
        }
        let name = self.user.clone()?;
        Some(Editor {
            identifier: self.user_id.filter(|id| *id != 0 && !self.anonymous),
            name: Some(name),
            is_anonymous: self.anonymous.then_some(true),
            ..Editor::default()
        })
    }
}

/// The REST URL of the page with its HTML, e.g.
/// `https://en.wikipedia.org/w/rest.php/v1/page/Squirrel/with_html`.
pub fn rest_with_html_url(base_url: &str, title: &str) -> String {
    format!(
        "{}/w/rest.php/v1/page/{}/with_html",
        base_url.trim_end_matches('/'),
        encode_component(&title::key_form(title))
    )
}

/// `GET /w/rest.php/v1/page/{title}/with_html` (ExistingPageHtml). The
/// source endpoint's `source` (wikitext) is read too when present.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RestPage {
    /// The page id.
    pub id: u64,
    /// The title in URL form (underscores).
    pub key: String,
    /// The title in display form.
    pub title: String,
    /// The latest revision.
    pub latest: RestRevision,
    /// The content model, e.g. `wikitext`.
    pub content_model: String,
    /// The wiki's license.
    #[serde(default)]
    pub license: RestLicense,
    /// The page HTML.
    #[serde(default)]
    pub html: Option<String>,
    /// The wikitext, from the source endpoint.
    #[serde(default)]
    pub source: Option<String>,
}

/// The `latest` revision of a REST page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RestRevision {
    /// The revision id.
    pub id: u64,
    /// When it was saved (ISO 8601).
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// The `license` of a REST page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RestLicense {
    /// The license URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The license name.
    #[serde(default)]
    pub title: Option<String>,
}

impl RestPage {
    /// Parses a REST page body; anything else is `BadGateway`.
    pub fn parse(json: &[u8]) -> Result<Self> {
        serde_json::from_slice(json)
            .map_err(|e| Error::BadGateway(format!("invalid REST page response: {e}")))
    }
}

impl RestLicense {
    /// The WME license block for this license.
    pub fn to_wme(&self) -> License {
        let url = self.url.clone().unwrap_or_default();
        if url.contains("by-sa/4.0") {
            License::cc_by_sa_4()
        } else if url.contains("by-sa/3.0") {
            License {
                name: "Creative Commons Attribution Share Alike 3.0 Unported".into(),
                identifier: "CC-BY-SA-3.0".into(),
                url,
            }
        } else {
            License {
                name: self.title.clone().unwrap_or_default(),
                identifier: String::new(),
                url,
            }
        }
    }
}

/// What the Action API query says about one page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageInfo {
    /// The page id.
    pub page_id: Option<u64>,
    /// The namespace number.
    pub namespace: Option<i64>,
    /// The normalised title.
    pub title: Option<String>,
    /// Category names with namespace, e.g. `Category:Sciuridae`.
    pub categories: Vec<String>,
    /// Template names with namespace, e.g. `Template:Cite web`.
    pub templates: Vec<String>,
    /// Titles of the redirects pointing to the page.
    pub redirects: Vec<String>,
    /// The Wikidata item, e.g. `Q9482`.
    pub wikibase_item: Option<String>,
    /// The Wikidata entities the page uses (`wbentityusage`), with their
    /// usage aspects as the API writes them (`S`, `T`, `C.P1630`, `L.en`).
    pub entities: Vec<Entity>,
    /// The protections in force.
    pub protection: Vec<Protection>,
    /// The latest revision id.
    pub last_revision: Option<u64>,
    /// The page content language, e.g. `en`.
    pub language: Option<String>,
    /// Whether a list was cut short (a `continue` other than the expected
    /// `rvcontinue`): categories, templates or redirects may be partial.
    pub incomplete: bool,
    /// The latest revisions, newest first: the current one and its parent.
    pub revisions: Vec<RevisionInfo>,
    /// How many users watch the page, when the wiki discloses it.
    pub watchers: Option<u64>,
    /// The lead image (`pageimages`, original size).
    pub image: Option<Image>,
    /// The short description.
    pub description: Option<String>,
    /// When the page was created; set by the fetcher from the answer to
    /// [`FIRST_REVISION_QUERY`] (see [`first_revision_timestamp`]).
    pub created: Option<String>,
}

impl PageInfo {
    /// Parses an Action API `action=query` response for a single title.
    /// An API error or a body without pages is `BadGateway`; a missing or
    /// invalid page is `NotFound`.
    pub fn parse(json: &[u8]) -> Result<Self> {
        let root: Value = serde_json::from_slice(json)
            .map_err(|e| Error::BadGateway(format!("invalid Action API response: {e}")))?;
        if let Some(error) = root.get("error") {
            let info = error
                .get("info")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return Err(Error::BadGateway(format!("Action API error: {info}")));
        }
        let page = first_page(&root)
            .ok_or_else(|| Error::BadGateway("Action API response has no pages".into()))?;
        // `missing`/`invalid` are `true` in formatversion=2 and `""` in 1.
        if page.get("missing").is_some() || page.get("invalid").is_some() {
            return Err(Error::NotFound("article not found".into()));
        }
        let titles = |key: &str| -> Vec<String> {
            page.get(key)
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|v| v.get("title")?.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let protection = page
            .get("protection")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|p| Protection {
                        kind: p.get("type").and_then(Value::as_str).map(str::to_string),
                        level: p.get("level").and_then(Value::as_str).map(str::to_string),
                        expiry: p.get("expiry").and_then(Value::as_str).map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(PageInfo {
            page_id: page.get("pageid").and_then(Value::as_u64),
            namespace: page.get("ns").and_then(Value::as_i64),
            title: page
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_string),
            categories: titles("categories"),
            templates: titles("templates"),
            redirects: titles("redirects"),
            wikibase_item: page
                .pointer("/pageprops/wikibase_item")
                .and_then(Value::as_str)
                .map(str::to_string),
            entities: entity_usage(page),
            protection,
            last_revision: page.get("lastrevid").and_then(Value::as_u64),
            language: page
                .get("pagelanguage")
                .and_then(Value::as_str)
                .map(str::to_string),
            // More revisions (`rvcontinue`) are expected: only the newest
            // two are asked for. Any other continuation cuts a list short.
            incomplete: root
                .get("continue")
                .and_then(Value::as_object)
                .is_some_and(|c| c.keys().any(|k| k != "continue" && k != "rvcontinue")),
            revisions: page
                .get("revisions")
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(RevisionInfo::parse).collect())
                .unwrap_or_default(),
            watchers: page.get("watchers").and_then(Value::as_u64),
            image: page.get("original").and_then(|o| {
                Some(Image {
                    content_url: Some(o.get("source")?.as_str()?.to_string()),
                    width: o.get("width").and_then(Value::as_u64),
                    height: o.get("height").and_then(Value::as_u64),
                    ..Image::default()
                })
            }),
            description: page
                .get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map(str::to_string),
            created: None,
        })
    }
}

/// Joins the REST page and the Action API page info into a WME article.
/// Responses about different pages (a move or delete between the two
/// requests) are `BadGateway`, so the caller retries rather than caching a
/// mixed document.
pub fn article_from_upstream(
    rest: &RestPage,
    info: &PageInfo,
    ctx: &ProjectContext,
) -> Result<Article> {
    if info.page_id.is_some_and(|id| id != rest.id) {
        return Err(Error::BadGateway(
            "upstream responses describe different pages".into(),
        ));
    }
    let wikitext = rest.source.as_deref();
    let is_wikitext = rest.content_model == "wikitext";
    // The revision metadata counts only if it is about the REST page's
    // revision (an edit can land between the two requests).
    let current = info.revisions.first().filter(|r| r.id == rest.latest.id);
    let parent = current.and_then(|c| {
        let parent_id = c.parent_id.filter(|p| *p != 0)?;
        Some(
            info.revisions
                .get(1)
                .filter(|p| p.id == parent_id)
                .cloned()
                .unwrap_or(RevisionInfo {
                    id: parent_id,
                    ..RevisionInfo::default()
                }),
        )
    });
    let maintenance = wikitext
        .filter(|_| is_wikitext)
        .map(maintenance::maintenance_tags);
    let visibility = current
        .filter(|c| c.user_hidden || c.comment_hidden)
        .map(|c| Visibility {
            text: Some(true),
            comment: Some(!c.comment_hidden),
            user: Some(!c.user_hidden),
        });
    // A page whose only revision is the current one was created by it.
    let created = info.created.clone().or_else(|| {
        current
            .filter(|c| c.parent_id.is_none_or(|p| p == 0))
            .and_then(|c| c.timestamp.clone())
    });
    let timestamp = rest
        .latest
        .timestamp
        .clone()
        .or_else(|| current.and_then(|c| c.timestamp.clone()));
    let license = if rest
        .license
        .url
        .as_deref()
        .is_some_and(|u| u.contains("by-sa"))
    {
        License::for_revision(timestamp.as_deref().unwrap_or_default())
    } else {
        vec![rest.license.to_wme()]
    };
    let version = Version {
        identifier: Some(rest.latest.id),
        comment: current
            .filter(|c| !c.comment_hidden)
            .and_then(|c| c.comment.clone()),
        tags: current.map(|c| c.tags.clone()).unwrap_or_default(),
        is_minor_edit: current.and_then(|c| c.minor.then_some(true)),
        editor: current.and_then(RevisionInfo::editor),
        has_tag_needs_citation: maintenance
            .as_ref()
            .and_then(maintenance::has_tag_needs_citation),
        maintenance_tags: maintenance,
        number_of_characters: wikitext.map(|t| t.chars().count() as u64),
        size: wikitext.map(|t| Size {
            value: t.len() as u64,
            unit_text: "B".into(),
        }),
        ..Version::default()
    };
    let abstract_value = wikitext
        .filter(|_| is_wikitext)
        .map(|t| abstract_text(t, &ctx.localisation))
        .filter(|a| !a.is_empty());
    // The Action API is authoritative for categories and templates (it sees
    // transclusions); without it, fall back to what the wikitext shows.
    let (categories, templates) = match wikitext {
        Some(t) if info.categories.is_empty() && info.templates.is_empty() && is_wikitext => (
            wikitext::categories(t, &ctx.localisation),
            wikitext::templates(t, &ctx.localisation),
        ),
        _ => (info.categories.clone(), info.templates.clone()),
    };
    Ok(Article {
        name: rest.title.clone(),
        identifier: Some(rest.id),
        abstract_text: abstract_value,
        description: info.description.clone(),
        date_created: created,
        date_modified: timestamp,
        date_previously_modified: parent.as_ref().and_then(|p| p.timestamp.clone()),
        protection: info.protection.clone(),
        version: Some(version),
        previous_version: parent.as_ref().map(|p| PreviousVersion {
            identifier: Some(p.id),
            number_of_characters: None,
        }),
        watchers_count: info.watchers,
        url: Some(title::page_url(&ctx.base_url, &rest.title)),
        namespace: Some(Namespace {
            identifier: info.namespace.unwrap_or(0),
            ..Namespace::default()
        }),
        in_language: Some(Language {
            identifier: info
                .language
                .clone()
                .unwrap_or_else(|| ctx.language.clone()),
            ..Language::default()
        }),
        main_entity: info.wikibase_item.as_deref().map(Entity::wikidata),
        additional_entities: info.entities.clone(),
        categories: categories.iter().map(|c| ctx.link(c)).collect(),
        templates: templates.iter().map(|t| ctx.link(t)).collect(),
        redirects: info.redirects.iter().map(|r| ctx.link(r)).collect(),
        is_part_of: Some(Project {
            identifier: ctx.identifier.clone(),
            url: Some(ctx.base_url.clone()),
            ..Project::default()
        }),
        article_body: (rest.html.is_some() || wikitext.is_some()).then(|| ArticleBody {
            html: rest.html.clone(),
            wikitext: wikitext.map(str::to_string),
        }),
        license,
        image: info.image.clone(),
        visibility,
        ..Article::default()
    })
}

#[cfg(test)]
pub(crate) mod tests;
