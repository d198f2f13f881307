//! Live MediaWiki responses -> WME [`Article`]: the REST page with HTML plus
//! one Action API query for categories, templates, redirects, page props
//! and protection.
//!
//! The fetcher (a component) sends the two requests built by
//! [`rest_with_html_url`] and [`action_api_url`] and hands the bodies to
//! [`RestPage::parse`] and [`PageInfo::parse`]; [`article_from_upstream`]
//! joins them. Both parsers accept `formatversion=1` and `=2` shapes, since
//! wikis and proxies differ, and turn an upstream that answers garbage into
//! `BadGateway` and a missing page into `NotFound`.

use serde::Deserialize;
use serde_json::Value;

use super::plaintext::abstract_text;
use super::schema::{
    Article, ArticleBody, Entity, Language, License, Namespace, Project, Protection, Size, Version,
};
use super::title;
use super::transform::ProjectContext;
use super::wikitext;
use crate::{Error, Result};

/// The Action API query string (without `titles=`) the fetcher sends:
/// categories (hidden ones too, as WME lists them), templates, the
/// redirects pointing to the page, the Wikidata item, and page info with
/// protection. `|` is sent as `%7C`, which every URL parser accepts.
pub const ACTION_API_QUERY: &str = "action=query&format=json&formatversion=2\
&prop=categories%7Ctemplates%7Credirects%7Cpageprops%7Cinfo&inprop=protection\
&ppprop=wikibase_item&cllimit=max&tllimit=max&rdlimit=max&rdprop=title";

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
    /// The protections in force.
    pub protection: Vec<Protection>,
    /// The latest revision id.
    pub last_revision: Option<u64>,
    /// The page content language, e.g. `en`.
    pub language: Option<String>,
    /// Whether the answer was cut short (`continue` present): lists may be partial.
    pub incomplete: bool,
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
        let pages = root.pointer("/query/pages");
        // formatversion=2 gives an array; formatversion=1 an object keyed by page id.
        let page = match pages {
            Some(Value::Array(list)) => list.first(),
            Some(Value::Object(map)) => map.values().next(),
            _ => None,
        }
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
            protection,
            last_revision: page.get("lastrevid").and_then(Value::as_u64),
            language: page
                .get("pagelanguage")
                .and_then(Value::as_str)
                .map(str::to_string),
            incomplete: root.get("continue").is_some(),
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
    let version = Version {
        identifier: Some(rest.latest.id),
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
        date_modified: rest.latest.timestamp.clone(),
        protection: info.protection.clone(),
        version: Some(version),
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
        license: vec![rest.license.to_wme()],
        ..Article::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::wikitext::Localisation;

    fn api(name: &str) -> std::path::PathBuf {
        crate::testdata::fixtures().join("mediawiki-api").join(name)
    }

    fn enwiki() -> ProjectContext {
        ProjectContext {
            identifier: "enwiki".into(),
            base_url: "https://en.wikipedia.org".into(),
            language: "en".into(),
            localisation: Localisation::default(),
        }
    }

    /// A with_html body in the ExistingPageHtml schema's shape.
    const REST: &str = r#"{"id": 28492, "key": "Squirrel", "title": "Squirrel",
        "latest": {"id": 1171934824, "timestamp": "2023-08-24T01:14:42Z"}, "content_model": "wikitext",
        "license": {"url": "https://creativecommons.org/licenses/by-sa/4.0/", "title": "Creative Commons Attribution-Share Alike 4.0"},
        "html": "<!DOCTYPE html><html><body><p>Squirrels are members of the family Sciuridae.</p></body></html>"}"#;

    /// A formatversion=2 answer to ACTION_API_QUERY in MediaWiki's shape.
    const ACTION: &str = r#"{"batchcomplete": true, "query": {"pages": [{"pageid": 28492, "ns": 0,
        "title": "Squirrel", "contentmodel": "wikitext", "pagelanguage": "en", "lastrevid": 1171934824,
        "protection": [{"type": "edit", "level": "autoconfirmed", "expiry": "infinity"},
                       {"type": "move", "level": "sysop", "expiry": "infinity"}],
        "categories": [{"ns": 14, "title": "Category:Sciuridae"}, {"ns": 14, "title": "Category:Use dmy dates from October 2020"}],
        "templates": [{"ns": 10, "title": "Template:Automatic taxobox"}],
        "redirects": [{"pageid": 63522, "ns": 0, "title": "Sciuridae"}],
        "pageprops": {"wikibase_item": "Q9482"}}]}}"#;

    #[test]
    fn joins_rest_and_action_api_into_an_article() {
        let rest = RestPage::parse(REST.as_bytes()).expect("rest");
        let info = PageInfo::parse(ACTION.as_bytes()).expect("info");
        let article = article_from_upstream(&rest, &info, &enwiki()).expect("article");
        let json = serde_json::to_value(&article).expect("json");
        assert_eq!(
            json["main_entity"],
            serde_json::json!({"identifier": "Q9482", "url": "https://www.wikidata.org/entity/Q9482"})
        );
        assert_eq!(
            json["protection"][0],
            serde_json::json!({"type": "edit", "level": "autoconfirmed", "expiry": "infinity"})
        );
        assert_eq!(
            json["redirects"][0],
            serde_json::json!({"name": "Sciuridae", "url": "https://en.wikipedia.org/wiki/Sciuridae"})
        );
        assert_eq!(
            json["categories"][1]["url"],
            "https://en.wikipedia.org/wiki/Category:Use_dmy_dates_from_October_2020"
        );
        assert_eq!(
            json["version"],
            serde_json::json!({"identifier": 1171934824})
        );
        assert_eq!(json["license"][0]["identifier"], "CC-BY-SA-4.0");
        assert_eq!(json["date_modified"], "2023-08-24T01:14:42Z");
        assert!(
            json["article_body"]["html"]
                .as_str()
                .is_some_and(|h| h.contains("Sciuridae"))
        );
        assert!(json["article_body"].get("wikitext").is_none());
    }

    #[test]
    fn reads_recorded_formatversion_1_answers() {
        if crate::testdata::fixtures_or_skip().is_none() {
            return;
        }
        let recorded: Value = serde_json::from_slice(
            &std::fs::read(api("action-api-recorded-enwiki-2017.json")).expect("fixture"),
        )
        .expect("json");
        let answers = recorded["http://en.wikipedia.org/w/api.php"]
            .as_object()
            .expect("object");
        let mut found = 0;
        let mut missing = 0;
        for (request, answer) in answers {
            if !request.contains("\"info|pageprops\"") {
                continue;
            }
            let body = serde_json::to_vec(answer).expect("bytes");
            match PageInfo::parse(&body) {
                Ok(info) => {
                    assert!(
                        info.page_id.is_some()
                            && info.title.is_some()
                            && info.last_revision.is_some()
                    );
                    assert_eq!(info.language.as_deref(), Some("en"));
                    found += 1;
                }
                Err(Error::NotFound(_)) => missing += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((found, missing), (12, 1));
    }

    #[test]
    fn upstream_failures_map_to_http() {
        let api_error = br#"{"error": {"code": "badvalue", "info": "Unrecognized value"}}"#;
        assert!(matches!(
            PageInfo::parse(api_error),
            Err(Error::BadGateway(_))
        ));
        assert!(matches!(
            PageInfo::parse(b"<html>"),
            Err(Error::BadGateway(_))
        ));
        let missing = br#"{"query": {"pages": [{"ns": 0, "title": "Nope", "missing": true}]}}"#;
        assert!(matches!(PageInfo::parse(missing), Err(Error::NotFound(_))));
        assert!(matches!(
            RestPage::parse(b"{\"id\": 1}"),
            Err(Error::BadGateway(_))
        ));
        let rest = RestPage::parse(REST.as_bytes()).expect("rest");
        let other = PageInfo {
            page_id: Some(1),
            ..PageInfo::default()
        };
        assert!(matches!(
            article_from_upstream(&rest, &other, &enwiki()),
            Err(Error::BadGateway(_))
        ));
    }

    #[test]
    fn wikibase_item_is_read_from_pageprops_like_the_recorded_lead() {
        if crate::testdata::fixtures_or_skip().is_none() {
            return;
        }
        let lead: Value = serde_json::from_slice(
            &std::fs::read(api("android_page_lead_mw.json")).expect("fixture"),
        )
        .expect("json");
        let item = lead
            .pointer("/mobileview/pageprops")
            .cloned()
            .expect("pageprops");
        let body = serde_json::json!({"query": {"pages": [{"pageid": 3811039, "ns": 0, "title": "Juan Manuel Márquez", "pageprops": item}]}});
        let info = PageInfo::parse(&serde_json::to_vec(&body).expect("bytes")).expect("info");
        assert_eq!(info.wikibase_item.as_deref(), Some("Q557497"));
    }

    #[test]
    fn builds_fetch_urls() {
        assert_eq!(
            rest_with_html_url("https://en.wikipedia.org", "Old French (842-ca. 1400)"),
            "https://en.wikipedia.org/w/rest.php/v1/page/Old_French_%28842-ca._1400%29/with_html"
        );
        let url = action_api_url("https://en.wikipedia.org/", "AC/DC");
        assert!(url.starts_with(
            "https://en.wikipedia.org/w/api.php?action=query&format=json&formatversion=2&prop="
        ));
        assert!(url.ends_with("&titles=AC%2FDC"), "{url}");
        assert!(ACTION_API_QUERY.contains("inprop=protection"));
    }
}
