//! Dump page -> WME [`Article`], and the redirect folding an importer needs.
//!
//! A dump has no HTML, scores, editor statistics or Wikidata links, so the
//! article built here carries what the dump knows: identity, URL, project,
//! language, the revision (id, comment, minor flag, editor id/name or IP,
//! size, maintenance tags counted as WME counts them), the modification
//! date, the abstract, categories and templates parsed from the wikitext,
//! the wikitext itself, the licences by revision date and the redirects the
//! caller folded in. When the dump carries the page's history, the creation
//! date and the parent revision (`previous_version`,
//! `date_previously_modified`); a current-only dump still gives the parent's
//! id from `<parentid>`. Hidden revision parts (revision deletion) are left out and
//! reported in `visibility`.

use std::collections::BTreeMap;

use super::dump::{Contributor, DumpPage, SiteInfo};
use super::maintenance;
use super::plaintext::abstract_text;
use super::schema::{
    Article, ArticleBody, Editor, Language, License, NamedLink, Namespace, PreviousVersion,
    Project, Size, Version, Visibility,
};
use super::title;
use super::wikitext::{self, Localisation};
use crate::projects::Registry;
use crate::{Error, Result};

/// What the transform needs to know about the page's project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectContext {
    /// The project's dbname, e.g. `enwiki`.
    pub identifier: String,
    /// The project's base URL, e.g. `https://en.wikipedia.org`.
    pub base_url: String,
    /// The content language code, e.g. `en`.
    pub language: String,
    /// The localised namespace names and title case rule.
    pub localisation: Localisation,
}

impl ProjectContext {
    /// The context for a registered project, with English namespace names
    /// (the upstream Action API reports categories and templates with their
    /// local names already).
    pub fn from_registry(registry: &Registry, identifier: &str) -> Result<Self> {
        Ok(ProjectContext {
            identifier: identifier.to_string(),
            base_url: registry.base_url(identifier)?.to_string(),
            language: registry.language_code(identifier)?.to_string(),
            localisation: Localisation {
                first_letter_upper: registry.first_letter_case(identifier),
                ..Localisation::default()
            },
        })
    }

    /// The context a dump describes: dbname and base URL from its siteinfo,
    /// the language from the dump's `xml:lang` (or the caller), namespace
    /// names and case from its namespaces. `None` when the siteinfo lacks
    /// the dbname or base URL; a dump without siteinfo needs
    /// [`ProjectContext::from_registry`].
    pub fn from_siteinfo(info: &SiteInfo, language: &str) -> Option<Self> {
        Some(ProjectContext {
            identifier: info.dbname.clone()?,
            base_url: info.base_url()?,
            language: language.to_string(),
            localisation: info.localisation(),
        })
    }

    /// A link to a page of this project, as WME writes categories and templates.
    pub fn link(&self, name: &str) -> NamedLink {
        NamedLink {
            name: name.to_string(),
            url: Some(title::page_url(&self.base_url, name)),
        }
    }
}

/// Builds the WME article for a dump page from its (latest) revision;
/// `redirects` are the titles of the redirect pages pointing to it. A page
/// without a revision is `Unprocessable`.
pub fn article_from_dump(
    page: &DumpPage,
    ctx: &ProjectContext,
    redirects: &[String],
) -> Result<Article> {
    let revision = page
        .revision
        .as_ref()
        .ok_or_else(|| Error::Unprocessable(format!("page '{}' has no revision", page.title)))?;
    let loc = &ctx.localisation;
    let wikitext = revision.text.as_deref();
    let is_wikitext = revision.model.as_deref().is_none_or(|m| m == "wikitext");
    let editor = match &revision.contributor {
        Some(Contributor::User { name, id }) => Some(Editor {
            identifier: *id,
            name: Some(name.clone()),
            ..Editor::default()
        }),
        Some(Contributor::Anonymous(ip)) => Some(Editor {
            name: Some(ip.clone()),
            is_anonymous: Some(true),
            ..Editor::default()
        }),
        Some(Contributor::Deleted) | None => None,
    };
    let user_hidden = revision.contributor == Some(Contributor::Deleted);
    let visibility =
        (user_hidden || revision.comment_deleted || revision.text_deleted).then_some(Visibility {
            text: Some(!revision.text_deleted),
            comment: Some(!revision.comment_deleted),
            user: Some(!user_hidden),
        });
    let maintenance = wikitext
        .filter(|_| is_wikitext)
        .map(maintenance::maintenance_tags);
    let version = Version {
        identifier: Some(revision.id),
        has_tag_needs_citation: maintenance
            .as_ref()
            .and_then(maintenance::has_tag_needs_citation),
        maintenance_tags: maintenance,
        comment: revision
            .comment
            .clone()
            .filter(|_| !revision.comment_deleted),
        is_minor_edit: revision.minor.then_some(true),
        editor,
        number_of_characters: wikitext.map(|t| t.chars().count() as u64),
        size: wikitext.map(|t| Size {
            value: t.len() as u64,
            unit_text: "B".into(),
        }),
        ..Version::default()
    };
    let (abstract_value, categories, templates) = match wikitext {
        // A redirect page has no prose; its `#REDIRECT` line is not an abstract.
        Some(text) if is_wikitext && page.redirect.is_some() => (
            None,
            wikitext::categories(text, loc),
            wikitext::templates(text, loc),
        ),
        Some(text) if is_wikitext => (
            Some(abstract_text(text, loc)).filter(|a| !a.is_empty()),
            wikitext::categories(text, loc),
            wikitext::templates(text, loc),
        ),
        _ => (None, Vec::new(), Vec::new()),
    };
    Ok(Article {
        name: page.title.clone(),
        identifier: Some(page.id),
        abstract_text: abstract_value,
        date_created: page.created.clone(),
        date_modified: Some(revision.timestamp.clone()).filter(|t| !t.is_empty()),
        date_previously_modified: page.previous.as_ref().and_then(|p| p.timestamp.clone()),
        version: Some(version),
        previous_version: page.previous.as_ref().map(|p| PreviousVersion {
            identifier: Some(p.id),
            number_of_characters: p.number_of_characters,
        }),
        url: Some(title::page_url(&ctx.base_url, &page.title)),
        namespace: Some(Namespace {
            identifier: page.namespace,
            ..Namespace::default()
        }),
        in_language: Some(Language {
            identifier: ctx.language.clone(),
            ..Language::default()
        }),
        categories: categories.iter().map(|c| ctx.link(c)).collect(),
        templates: templates.iter().map(|t| ctx.link(t)).collect(),
        redirects: redirects.iter().map(|r| ctx.link(r)).collect(),
        is_part_of: Some(Project {
            identifier: ctx.identifier.clone(),
            url: Some(ctx.base_url.clone()),
            ..Project::default()
        }),
        article_body: wikitext.map(|t| ArticleBody {
            html: None,
            wikitext: Some(t.to_string()),
        }),
        license: License::for_revision(&revision.timestamp),
        visibility,
        ..Article::default()
    })
}

/// Redirect pages folded by target: target title -> redirect titles, in
/// the order seen. Titles are normalised (spaces, first letter per the
/// project's case rule), so `[[computer_accessibility]]` and
/// `Computer accessibility` are one target. Section anchors are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedirectIndex {
    by_target: BTreeMap<String, Vec<String>>,
}

impl RedirectIndex {
    /// Folds every redirect page among `pages` (by its `<redirect title>`,
    /// else by its `#REDIRECT` wikitext) into an index.
    pub fn from_pages<'a>(
        pages: impl IntoIterator<Item = &'a DumpPage>,
        first_letter_upper: bool,
    ) -> Self {
        let mut index = RedirectIndex::default();
        for page in pages {
            index.add_page(page, first_letter_upper);
        }
        index
    }

    /// Adds one page if it is a redirect; returns whether it was.
    pub fn add_page(&mut self, page: &DumpPage, first_letter_upper: bool) -> bool {
        let target = page.redirect.clone().or_else(|| {
            let text = page.revision.as_ref()?.text.as_deref()?;
            wikitext::redirect_target(text, &[]).map(|t| t.title)
        });
        match target {
            Some(target) => self.add(&page.title, &target, first_letter_upper),
            None => false,
        }
    }

    /// Records that `redirect` points to `target`; returns false for an
    /// invalid target title.
    pub fn add(&mut self, redirect: &str, target: &str, first_letter_upper: bool) -> bool {
        let target = target.split('#').next().unwrap_or_default();
        let Ok(target) = title::normalize(target, first_letter_upper) else {
            return false;
        };
        let list = self.by_target.entry(target).or_default();
        if !list.iter().any(|r| r == redirect) {
            list.push(redirect.to_string());
        }
        true
    }

    /// The redirects pointing to `target` (a normalised title).
    pub fn redirects_to(&self, target: &str) -> &[String] {
        self.by_target.get(target).map_or(&[], Vec::as_slice)
    }

    /// How many distinct targets have redirects.
    pub fn target_count(&self) -> usize {
        self.by_target.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::dump::tests::open;

    fn enwiki() -> ProjectContext {
        ProjectContext {
            identifier: "enwiki".into(),
            base_url: "https://en.wikipedia.org".into(),
            language: "en".into(),
            localisation: Localisation::default(),
        }
    }

    #[test]
    fn anarchism_becomes_a_wme_article() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let reader = open("enwiki-sample-206-pages.xml.bz2");
        assert_eq!(reader.language(), Some("en"));
        let language = reader.language().unwrap_or_default().to_string();
        let ctx = ProjectContext::from_siteinfo(reader.siteinfo().expect("siteinfo"), &language)
            .expect("context");
        assert_eq!(ctx, enwiki());
        let pages: Vec<DumpPage> = reader.collect::<Result<_>>().expect("dump reads");
        let redirects = RedirectIndex::from_pages(&pages, true);
        assert_eq!(
            redirects.redirects_to("Computer accessibility"),
            ["AccessibleComputing", "Accessible computing"]
        );
        let anarchism = &pages[1];
        let article = article_from_dump(anarchism, &ctx, redirects.redirects_to("Anarchism"))
            .expect("article");
        let abstract_text = article.abstract_text.as_deref().expect("abstract");
        assert!(
            abstract_text.starts_with("Anarchism is a political philosophy that advocates"),
            "{abstract_text}"
        );
        assert!(
            abstract_text.ends_with("mutualism, or participatory economics."),
            "{abstract_text}"
        );
        assert!(
            !abstract_text.contains("[[")
                && !abstract_text.contains("{{")
                && !abstract_text.contains("<ref")
        );
        assert_eq!(
            article.url.as_deref(),
            Some("https://en.wikipedia.org/wiki/Anarchism")
        );
        assert!(
            article
                .categories
                .iter()
                .any(|c| c.name == "Category:Anarchism"
                    && c.url.as_deref()
                        == Some("https://en.wikipedia.org/wiki/Category:Anarchism"))
        );
        assert!(
            article
                .templates
                .iter()
                .any(|t| t.name == "Template:Anarchism sidebar")
        );
        let json = serde_json::to_value(&article).expect("json");
        assert_eq!(json["version"]["identifier"], 716551092);
        assert_eq!(json["version"]["size"]["unit_text"], "B");
        assert_eq!(
            json["is_part_of"],
            serde_json::json!({"identifier": "enwiki", "url": "https://en.wikipedia.org"})
        );
        // Saved in 2016: CC BY-SA 3.0 and the GFDL, not 4.0.
        assert_eq!(
            json["license"],
            serde_json::json!([
                {"name": "Creative Commons Attribution Share Alike 3.0 Unported",
                 "identifier": "CC-BY-SA-3.0",
                 "url": "https://creativecommons.org/licenses/by-sa/3.0/"},
                {"name": "GNU Free Documentation License", "identifier": "GFDL",
                 "url": "https://www.gnu.org/copyleft/fdl.html"}
            ])
        );
        // Three `{{Citation needed|…}}` in the 2016 text (counted with
        // WME's regex by Python's `re` over the raw dump).
        assert_eq!(
            json["version"]["maintenance_tags"],
            serde_json::json!({"citation_needed_count": 3})
        );
        assert_eq!(json["version"]["has_tag_needs_citation"], true);
        assert_eq!(
            json["version"]["editor"],
            serde_json::json!({"name": "85.193.216.88", "is_anonymous": true})
        );
        // A current-only dump: the parent's id from <parentid>, but neither
        // its date nor the page's creation date.
        assert_eq!(
            json["previous_version"],
            serde_json::json!({"identifier": 714146352})
        );
        assert!(json.get("date_previously_modified").is_none());
        assert!(json.get("date_created").is_none());
        assert_eq!(json["date_modified"], "2016-04-22T10:19:33Z");
        assert!(json.get("visibility").is_none());
        let wikitext = json["article_body"]["wikitext"].as_str().expect("wikitext");
        assert_eq!(json["version"]["size"]["value"], wikitext.len());
        assert_eq!(
            json["version"]["number_of_characters"],
            wikitext.chars().count()
        );
    }

    #[test]
    fn pear_abstract_is_plain_prose() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let pages: Vec<DumpPage> = open("enwiki-pear-export-0.10.xml")
            .collect::<Result<_>>()
            .expect("reads");
        let article = article_from_dump(&pages[0], &enwiki(), &[]).expect("article");
        let abstract_text = article.abstract_text.expect("abstract");
        assert!(
            abstract_text
                .starts_with("The pear is any of several tree and shrub species of genus Pyrus"),
            "{abstract_text}"
        );
        assert!(!abstract_text.contains("''") && !abstract_text.contains('|'));
        assert!(article.redirects.is_empty());
    }

    #[test]
    fn suppressed_parts_are_omitted_and_flagged() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let pages: Vec<DumpPage> = open("simplewiki-history-export-0.11.xml")
            .revisions(crate::article::dump::Revisions::Each)
            .collect::<Result<_>>()
            .expect("reads");
        let page = pages
            .iter()
            .find(|p| p.revision.as_ref().is_some_and(|r| r.id == 1714215))
            .expect("suppressed revision");
        let ctx = ProjectContext {
            identifier: "simplewiki".into(),
            base_url: "https://simple.wikipedia.org".into(),
            ..enwiki()
        };
        let json = serde_json::to_value(article_from_dump(page, &ctx, &[]).expect("article"))
            .expect("json");
        assert_eq!(
            json["visibility"],
            serde_json::json!({"text": false, "comment": false, "user": false})
        );
        assert!(json["version"].get("editor").is_none());
        assert!(json["version"].get("comment").is_none());
        assert!(json.get("article_body").is_none());
        assert_eq!(
            json["url"],
            "https://simple.wikipedia.org/wiki/User:Ryulong"
        );
    }

    #[test]
    fn maintenance_tags_of_real_pages_match_wmes_regexes() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let pages: Vec<DumpPage> = open("enwiki-sample-206-pages.xml.bz2")
            .collect::<Result<_>>()
            .expect("reads");
        let tags = |name: &str| {
            let page = pages.iter().find(|p| p.title == name).expect("page");
            let article = article_from_dump(page, &enwiki(), &[]).expect("article");
            serde_json::to_value(article.version.expect("version").maintenance_tags).expect("json")
        };
        // Expected counts from WME's four regexes run by Python's `re`.
        assert_eq!(
            tags("Andorra"),
            serde_json::json!({"clarification_needed_count": 3, "update_count": 1})
        );
        assert_eq!(
            tags("Aruba"),
            serde_json::json!({"citation_needed_count": 13, "clarification_needed_count": 2})
        );
        assert_eq!(
            tags("Autism"),
            serde_json::json!({"clarification_needed_count": 1})
        );
        assert_eq!(tags("AccessibleComputing"), serde_json::json!({}));
    }

    #[test]
    fn history_gives_creation_and_the_parent_revision() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let pages: Vec<DumpPage> = open("simplewiki-history-export-0.11.xml")
            .collect::<Result<_>>()
            .expect("reads");
        let ctx = ProjectContext {
            identifier: "simplewiki".into(),
            base_url: "https://simple.wikipedia.org".into(),
            ..enwiki()
        };
        let json = |i: usize| {
            serde_json::to_value(article_from_dump(&pages[i], &ctx, &[]).expect("article"))
                .expect("json")
        };
        let ryulong = json(0);
        assert_eq!(ryulong["name"], "User:Ryulong");
        assert_eq!(ryulong["version"]["identifier"], 5566832);
        assert_eq!(ryulong["date_created"], "2006-12-13T03:07:14Z");
        assert_eq!(ryulong["date_modified"], "2017-01-12T02:07:18Z");
        assert_eq!(ryulong["date_previously_modified"], "2015-01-27T18:38:51Z");
        assert_eq!(
            ryulong["previous_version"],
            serde_json::json!({"identifier": 4997179, "number_of_characters": 33})
        );
        assert_eq!(
            ryulong["version"]["editor"],
            serde_json::json!({"name": "206.255.40.218", "is_anonymous": true})
        );
        let talk = json(1);
        assert_eq!(talk["date_created"], "2011-01-24T16:37:27Z");
        assert_eq!(talk["date_previously_modified"], "2022-09-26T02:54:16Z");
        assert_eq!(
            talk["previous_version"],
            serde_json::json!({"identifier": 8458564, "number_of_characters": 1025})
        );
        // 2023-03-30 is before the move to 4.0.
        assert_eq!(talk["license"][0]["identifier"], "CC-BY-SA-3.0");
        assert_eq!(talk["license"][1]["identifier"], "GFDL");
    }

    #[test]
    fn each_revision_carries_the_history_before_it() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let revisions: Vec<DumpPage> = open("simplewiki-history-export-0.11.xml")
            .revisions(crate::article::dump::Revisions::Each)
            .collect::<Result<_>>()
            .expect("reads");
        assert_eq!(revisions.len(), 33);
        let first = &revisions[0];
        assert_eq!(first.created.as_deref(), Some("2006-12-13T03:07:14Z"));
        assert_eq!(first.previous, None);
        let second = &revisions[1];
        assert_eq!(second.revision.as_ref().map(|r| r.id), Some(360821));
        assert_eq!(
            second
                .previous
                .as_ref()
                .map(|p| (p.id, p.timestamp.as_deref())),
            Some((266092, Some("2006-12-13T03:07:14Z")))
        );
        // A registered editor keeps the user id.
        let json = serde_json::to_value(
            article_from_dump(&revisions[0], &enwiki(), &[]).expect("article"),
        )
        .expect("json");
        assert_eq!(
            json["version"]["editor"],
            serde_json::json!({"identifier": 6629, "name": "Ryulong"})
        );
    }

    #[test]
    fn redirect_index_normalises_targets() {
        let mut index = RedirectIndex::default();
        assert!(index.add("Squirrels", "squirrel#Behaviour", true));
        assert!(index.add("Sciuridae", "Squirrel", true));
        assert!(index.add("Sciuridae", "Squirrel", true));
        assert!(!index.add("Bad", "a|b", true));
        assert_eq!(index.redirects_to("Squirrel"), ["Squirrels", "Sciuridae"]);
        assert_eq!(index.target_count(), 1);
        assert!(index.redirects_to("Nothing").is_empty());
    }

    #[test]
    fn every_real_page_and_every_truncation_transforms_without_panic() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        use crate::article::sections::{infoboxes, section_parts, sections};
        let loc = Localisation::default();
        let mut pages: Vec<DumpPage> = Vec::new();
        for dump in [
            "enwiki-sample-206-pages.xml.bz2",
            "enwiki-table-markup-5-pages.xml.bz2",
        ] {
            pages.extend(open(dump).collect::<Result<Vec<_>>>().expect("dump reads"));
        }
        assert_eq!(pages.len(), 211);
        let mut with_abstract = 0;
        let mut without: Vec<String> = Vec::new();
        for page in &pages {
            let article = article_from_dump(page, &enwiki(), &[]).expect("article");
            with_abstract += usize::from(article.abstract_text.is_some());
            if article.abstract_text.is_none() && page.redirect.is_none() {
                without.push(page.title.clone());
            }
            let text = page
                .revision
                .as_ref()
                .and_then(|r| r.text.as_deref())
                .unwrap_or_default();
            let _ = section_parts(sections(text, &loc));
            let _ = infoboxes(text, &loc);
        }
        // Redirects have no abstract; of the 111 articles only one has an
        // empty lead (it starts with `{{Compact ToC}}` and a heading).
        assert_eq!(without, ["List of anthropologists"]);
        assert_eq!(with_abstract, 110);
        // Cutting wikitext anywhere leaves unbalanced markup; nothing may panic.
        let text = pages[1]
            .revision
            .as_ref()
            .and_then(|r| r.text.clone())
            .expect("text");
        for (cut, _) in text.char_indices().step_by(997) {
            let _ = abstract_text(&text[..cut], &loc);
            let _ = wikitext::templates(&text[cut..], &loc);
            let _ = wikitext::categories(&text[cut..], &loc);
            let _ = sections(&text[cut..], &loc);
        }
    }
}
