//! The project registry built from the real site matrix.
//!
//! WME derives `/v2/projects`, `/v2/languages`, `/v2/codes` and
//! `/v2/namespaces` from the MediaWiki Action API `action=sitematrix`
//! response; [`Registry::from_sitematrix`] does the same. The types here are
//! the exact metadata shapes of those routes.
//!
//! What goes in, checked against WME's own responses in the fixtures:
//! - Every language site of the matrix is a project, closed wikis included
//!   (WME lists closed wikis such as `chowiki`; they stay flagged so a caller
//!   can refuse upstream fetches for them). The `specials` (meta, commons,
//!   private and fishbowl wikis) are not projects in WME.
//! - A project's `name` is the site's local `sitename` with underscores as
//!   spaces (WME shows `ويكي الكتب` where the matrix says `ويكي_الكتب`).
//! - A language is `{identifier: code, name: localname, alternate_name: name,
//!   direction: dir}`. `localname` is in the language the matrix was
//!   requested in (`uselang`); WME requests English names.
//!
//! Parsing the 134 KB fixture takes a few milliseconds natively, so a
//! component can build the registry once per instance from an embedded copy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::article::schema::Namespace;
use crate::{Error, Result};

/// The site matrix the registry is built from: a real `action=sitematrix`
/// response (provenance in `shared/data/README.md`).
pub const SITEMATRIX: &[u8] = include_bytes!("../data/sitematrix.json");

/// A language, as `/v2/languages` and `in_language` show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Language {
    /// The language code, e.g. `en`.
    pub identifier: String,
    /// The language's name in the UI language (English for WME).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The language's own name for itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_name: Option<String>,
    /// The writing direction, `ltr` or `rtl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
}

/// A project (one wiki), as `/v2/projects` and `is_part_of` show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// The project's site name, e.g. `Wikipedia`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The database name, e.g. `enwiki`.
    pub identifier: String,
    /// The base URL, e.g. `https://en.wikipedia.org`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The project code (type), e.g. `wiki` or `wiktionary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The project's content language (identifier only, as WME shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_language: Option<Language>,
}

/// A project code (type), as `/v2/codes` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    /// The code, e.g. `wiki`.
    pub identifier: String,
    /// The product name, e.g. `Wikipedia`.
    pub name: String,
    /// A one-line description.
    pub description: String,
}

/// The project codes WME serves, with its names and descriptions.
const CODES: [(&str, &str, &str); 7] = [
    ("wiki", "Wikipedia", "The free encyclopedia."),
    (
        "wikibooks",
        "Wikibooks",
        "E-book textbooks and annotated texts.",
    ),
    ("wikinews", "Wikinews", "The free news source."),
    (
        "wikiquote",
        "Wikiquote",
        "Quotes across your favorite books, movies, authors, and more.",
    ),
    ("wikisource", "Wikisource", "The free digital library."),
    (
        "wikivoyage",
        "Wikivoyage",
        "The ultimate worldwide travel guide.",
    ),
    (
        "wiktionary",
        "Wiktionary",
        "A dictionary for over 170 languages.",
    ),
];

/// The namespaces WME serves, with its names and descriptions.
const NAMESPACES: [(i64, &str, &str); 4] = [
    (
        0,
        "Articles",
        "The main namespace, article namespace, or mainspace is the namespace of Wikipedia that contains the encyclopedia proper\u{2014}that is, where 'live' Wikipedia articles reside.",
    ),
    (
        6,
        "File",
        "The File namespace is a namespace consisting of administration pages in which all of Wikipedia's media content resides. On Wikipedia, all media filenames begin with the prefix File:, including data files for images, video clips, or audio clips, including document length clips; or MIDI files (a small file of computer music instructions).",
    ),
    (
        10,
        "Template",
        "The Template namespace on Wikipedia is used to store templates, which contain Wiki markup intended for inclusion on multiple pages, usually via transclusion. Although the Template namespace is used for storing most templates, it is possible to transclude and substitute from other namespaces, and so some template pages are placed in other namespaces, such as the User namespace.",
    ),
    (
        14,
        "Category",
        "Categories are intended to group together pages on similar subjects. They are implemented by a MediaWiki feature that adds any page with a text like [[Category:XYZ]] in its wiki markup to the automated listing that is the category with name XYZ. Categories help readers to find, and navigate around, a subject area, to see pages sorted by title, and to thus find article relationships.",
    ),
];

/// The WME project codes in WME's order.
pub fn codes() -> Vec<Code> {
    CODES
        .iter()
        .map(|(identifier, name, description)| Code {
            identifier: identifier.to_string(),
            name: name.to_string(),
            description: description.to_string(),
        })
        .collect()
}

/// One WME project code by identifier, or `NotFound`.
pub fn code(identifier: &str) -> Result<Code> {
    codes()
        .into_iter()
        .find(|c| c.identifier == identifier)
        .ok_or_else(|| Error::NotFound(format!("code '{identifier}' not found")))
}

/// The four namespaces WME serves (0, 6, 10, 14) in WME's order.
pub fn namespaces() -> Vec<Namespace> {
    NAMESPACES
        .iter()
        .map(|(identifier, name, description)| Namespace {
            identifier: *identifier,
            name: Some(name.to_string()),
            description: Some(description.to_string()),
        })
        .collect()
}

/// One WME namespace by number, or `NotFound` for namespaces WME does not serve.
pub fn namespace(identifier: i64) -> Result<Namespace> {
    namespaces()
        .into_iter()
        .find(|n| n.identifier == identifier)
        .ok_or_else(|| Error::NotFound(format!("namespace '{identifier}' not found")))
}

/// The raw `action=sitematrix` response, as far as the registry reads it.
#[derive(Deserialize)]
struct SiteMatrixResponse {
    sitematrix: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct RawLanguage {
    code: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    localname: Option<String>,
    #[serde(default)]
    dir: Option<String>,
    #[serde(default)]
    site: Vec<RawSite>,
}

#[derive(Deserialize)]
struct RawSite {
    url: String,
    dbname: String,
    code: String,
    #[serde(default)]
    sitename: Option<String>,
    #[serde(default)]
    closed: Option<serde_json::Value>,
}

/// A project with the registry's private flags.
#[derive(Debug, Clone)]
struct Site {
    project: Project,
    closed: bool,
}

/// The projects and languages of the Wikimedia wikis, built from the site matrix.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Projects in site-matrix order (by language, then site).
    sites: Vec<Site>,
    /// dbname -> index into `sites`.
    by_id: BTreeMap<String, usize>,
    /// Languages in site-matrix order.
    languages: Vec<Language>,
}

impl Registry {
    /// Builds the registry from the JSON bytes of an `action=sitematrix`
    /// response; a body that is not a site matrix is `BadGateway`.
    pub fn from_sitematrix(json: &[u8]) -> Result<Self> {
        let raw: SiteMatrixResponse = serde_json::from_slice(json)
            .map_err(|e| Error::BadGateway(format!("invalid sitematrix: {e}")))?;
        // Language entries are keyed "0", "1", ...; order them numerically.
        let mut entries: Vec<(u64, serde_json::Value)> = raw
            .sitematrix
            .into_iter()
            .filter_map(|(key, value)| key.parse::<u64>().ok().map(|n| (n, value)))
            .collect();
        entries.sort_by_key(|(n, _)| *n);
        let mut registry = Registry::default();
        for (_, value) in entries {
            let lang: RawLanguage = serde_json::from_value(value)
                .map_err(|e| Error::BadGateway(format!("invalid sitematrix language: {e}")))?;
            registry.languages.push(Language {
                identifier: lang.code.clone(),
                name: lang.localname.clone(),
                alternate_name: lang.name.clone(),
                direction: lang.dir.clone(),
            });
            for site in lang.site {
                let project = Project {
                    name: site.sitename.map(|n| n.replace('_', " ")),
                    identifier: site.dbname.clone(),
                    url: Some(site.url),
                    code: Some(site.code),
                    in_language: Some(Language {
                        identifier: lang.code.clone(),
                        ..Language::default()
                    }),
                };
                let closed = site
                    .closed
                    .is_some_and(|c| c != serde_json::Value::Bool(false));
                registry.by_id.insert(site.dbname, registry.sites.len());
                registry.sites.push(Site { project, closed });
            }
        }
        Ok(registry)
    }

    /// All projects, closed ones included, in site-matrix order.
    pub fn projects(&self) -> Vec<Project> {
        self.sites.iter().map(|s| s.project.clone()).collect()
    }

    /// How many projects the registry knows.
    pub fn project_count(&self) -> usize {
        self.sites.len()
    }

    /// One project by dbname (e.g. `enwiki`), or `NotFound`.
    pub fn project(&self, identifier: &str) -> Result<&Project> {
        self.by_id
            .get(identifier)
            .map(|&i| &self.sites[i].project)
            .ok_or_else(|| Error::NotFound(format!("project '{identifier}' not found")))
    }

    /// Whether the project is closed (read-only upstream); `false` when unknown.
    pub fn is_closed(&self, identifier: &str) -> bool {
        self.by_id
            .get(identifier)
            .is_some_and(|&i| self.sites[i].closed)
    }

    /// The base URL for upstream fetches, e.g. `https://en.wikipedia.org`.
    pub fn base_url(&self, identifier: &str) -> Result<&str> {
        self.project(identifier)?
            .url
            .as_deref()
            .ok_or_else(|| Error::NotFound(format!("project '{identifier}' has no url")))
    }

    /// The project's content language code, e.g. `en` for `enwiki`.
    pub fn language_code(&self, identifier: &str) -> Result<&str> {
        self.project(identifier)?
            .in_language
            .as_ref()
            .map(|l| l.identifier.as_str())
            .ok_or_else(|| Error::NotFound(format!("project '{identifier}' has no language")))
    }

    /// Whether titles on the project get their first letter uppercased.
    /// Wiktionaries are case-sensitive; every other Wikimedia project is not.
    pub fn first_letter_case(&self, identifier: &str) -> bool {
        self.project(identifier)
            .ok()
            .and_then(|p| p.code.as_deref())
            .is_none_or(|code| code != "wiktionary")
    }

    /// All languages in site-matrix order.
    pub fn languages(&self) -> &[Language] {
        &self.languages
    }

    /// One language by code (e.g. `en`), or `NotFound`.
    pub fn language(&self, identifier: &str) -> Result<&Language> {
        self.languages
            .iter()
            .find(|l| l.identifier == identifier)
            .ok_or_else(|| Error::NotFound(format!("language '{identifier}' not found")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(wikiedge_tests::fixtures().join(path)).expect("fixture is readable")
    }

    fn registry() -> Registry {
        Registry::from_sitematrix(&read("mediawiki-api/sitematrix.json"))
            .expect("sitematrix parses")
    }

    fn wme(name: &str) -> Value {
        serde_json::from_slice(&read(&format!("wme/responses/{name}"))).expect("json")
    }

    #[test]
    fn enwiki_matches_wme_project_json() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let registry = registry();
        let ours = serde_json::to_value(registry.project("enwiki").expect("enwiki")).expect("json");
        assert_eq!(ours, wme("project.json"));
        assert_eq!(registry.base_url("enwiki"), Ok("https://en.wikipedia.org"));
        assert_eq!(registry.language_code("enwiki"), Ok("en"));
        assert!(registry.first_letter_case("enwiki"));
        assert!(!registry.first_letter_case("enwiktionary"));
        assert!(matches!(
            registry.project("nowiki-x"),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn projects_match_wme_where_the_sitematrix_has_them() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let registry = registry();
        // The fixture matrix (count 996 incl. specials) has 882 language sites;
        // WME's newer list has 892: the 10 missing are wikis created later
        // (fatwiki, gurwiki, btmwiktionary, ...). All 882 are in WME's list.
        assert_eq!(registry.project_count(), 882);
        let theirs = wme("projects.json");
        let theirs = theirs.as_array().expect("array");
        assert_eq!(theirs.len(), 892);
        let mut same = 0;
        for project in theirs {
            let id = project["identifier"].as_str().expect("identifier");
            let Ok(ours) = registry.project(id) else {
                continue;
            };
            let ours = serde_json::to_value(ours).expect("json");
            // Only the name may differ: 4 sites were renamed since the matrix
            // (e.g. idwikiquote `Wikiquote` -> `Wikikutip`).
            assert_eq!(ours["url"], project["url"], "{id}");
            assert_eq!(ours["code"], project["code"], "{id}");
            assert_eq!(ours["in_language"], project["in_language"], "{id}");
            if &ours == project {
                same += 1;
            }
        }
        assert_eq!(same, 878);
        assert!(registry.is_closed("chowiki"));
        assert!(!registry.is_closed("enwiki"));
    }

    #[test]
    fn languages_match_wme_except_the_ui_language_name() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let registry = registry();
        // WME lists 339; the 6 extra are the languages of the 10 newer wikis.
        assert_eq!(registry.languages().len(), 333);
        let theirs = wme("languages.json");
        let theirs = theirs.as_array().expect("array");
        assert_eq!(theirs.len(), 339);
        let mut same_native = 0;
        for lang in theirs {
            let Ok(ours) = registry.language(lang["identifier"].as_str().expect("id")) else {
                continue;
            };
            assert_eq!(ours.direction.as_deref(), lang["direction"].as_str());
            if ours.alternate_name.as_deref() == lang["alternate_name"].as_str() {
                same_native += 1;
            }
        }
        // 5 native names changed spelling since (e.g. `татарча/tatarça`).
        assert_eq!(same_native, 328);
        let en = registry.language("en").expect("en");
        assert_eq!(en.alternate_name.as_deref(), Some("English"));
    }

    #[test]
    fn codes_and_namespaces_match_wme_exactly() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        assert_eq!(
            serde_json::to_value(codes()).expect("json"),
            wme("codes.json")
        );
        assert_eq!(
            serde_json::to_value(code("wiki").expect("wiki")).expect("json"),
            wme("code.json")
        );
        assert_eq!(
            serde_json::to_value(namespaces()).expect("json"),
            wme("namespaces.json")
        );
        assert_eq!(
            serde_json::to_value(namespace(6).expect("file")).expect("json"),
            wme("namespace.json")
        );
        assert!(matches!(namespace(1), Err(Error::NotFound(_))));
        assert!(matches!(code("wikimania"), Err(Error::NotFound(_))));
    }

    #[test]
    fn garbage_is_a_bad_gateway() {
        assert!(matches!(
            Registry::from_sitematrix(b"{}"),
            Err(Error::BadGateway(_))
        ));
        assert!(matches!(
            Registry::from_sitematrix(b"<html>"),
            Err(Error::BadGateway(_))
        ));
    }
}
