//! Step 1 and 2 of an article lookup: which projects' copies of the title
//! are candidates, with their title index entries (one key-value get per
//! spelling of the title).

use wikiedge_core::Error;
use wikiedge_core::article::projection::Filter;
use wikiedge_core::article::request::ArticlesRequest;
use wikiedge_core::article::title;

use crate::config::Config;
use crate::store::{self, Entry};

/// The filter field that selects projects without parsing documents.
const PROJECT_FIELD: &str = "is_part_of.identifier";
/// The document filter that names a language.
const LANGUAGE_FIELD: &str = "in_language.identifier";

/// One project's copy of the title, as it moves through the lookup.
#[derive(Debug)]
pub struct Candidate {
    pub project: String,
    /// The display title under the project's case rule.
    pub title: String,
    pub entry: Option<Entry>,
    /// The article JSON, once read or fetched.
    pub json: Option<Vec<u8>>,
    /// Served past its max age.
    pub stale: bool,
}

impl Candidate {
    fn new(project: &str, title: &str, entry: Option<Entry>) -> Self {
        Candidate {
            project: project.to_string(),
            title: title.to_string(),
            entry,
            json: None,
            stale: false,
        }
    }

    /// The revision of the copy (0 when unknown): its part of the ETag.
    pub fn rev(&self) -> u64 {
        self.entry.map_or(0, |e| e.rev)
    }
}

/// Splits filters into the project selection and the document filters.
/// `Some(None)` in the first slot means the project filters contradict
/// (two different projects, or a non-string value): nothing matches.
pub fn split_filters(request: &ArticlesRequest) -> (Option<Option<String>>, Vec<Filter>) {
    let mut project: Option<Option<String>> = None;
    let mut rest = Vec::new();
    for filter in request.filters.iter().flatten() {
        if filter.field != PROJECT_FIELD {
            rest.push(filter.clone());
            continue;
        }
        let value = filter.value.as_str().map(str::to_string);
        project = match (project, value) {
            (None, value) => Some(value),
            (Some(Some(a)), Some(b)) if a == b => Some(Some(a)),
            _ => Some(None),
        };
    }
    (project, rest)
}

/// The language an `in_language.identifier` document filter names.
pub fn language_filter(filters: &[Filter]) -> Option<String> {
    filters
        .iter()
        .find(|f| f.field == LANGUAGE_FIELD)
        .and_then(|f| f.value.as_str())
        .map(str::to_string)
}

/// The projects of a language that can be fetched from: open ones, and
/// closed ones with an upstream override.
fn projects_of_language(config: &Config, language: &str) -> Result<Vec<String>, Error> {
    let registry = wikiedge_fn::config::registry()?;
    Ok(registry
        .projects()
        .into_iter()
        .filter(|p| {
            p.in_language
                .as_ref()
                .is_some_and(|l| l.identifier == language)
        })
        .filter(|p| {
            !registry.is_closed(&p.identifier) || config.overrides.contains_key(&p.identifier)
        })
        .map(|p| p.identifier)
        .collect())
}

/// The candidate projects with their index entries, ordered by project.
pub async fn candidates(
    config: &Config,
    kv: &spin_sdk::key_value::Store,
    raw_name: &str,
    project_filter: Option<Option<String>>,
    language: Option<String>,
) -> Result<Vec<Candidate>, Error> {
    let decoded = title::decode_path_segment(raw_name)?;
    match project_filter {
        Some(None) => Ok(Vec::new()),
        Some(Some(project)) => {
            let name = title::normalize(&decoded, first_letter_upper(&project))?;
            let index = store::read_index(kv, &name).await?;
            if let Some(entry) = index.get(&project) {
                return Ok(vec![Candidate::new(&project, &name, Some(*entry))]);
            }
            // Not cached: only a project we can fetch from is worth trying.
            let known = config.overrides.contains_key(&project)
                || wikiedge_fn::config::registry()?.project(&project).is_ok();
            Ok(if known {
                vec![Candidate::new(&project, &name, None)]
            } else {
                Vec::new()
            })
        }
        None => {
            // Most projects uppercase the first letter; Wiktionaries keep
            // the title as given. Look under both spellings when they differ.
            let upper = title::normalize(&decoded, true)?;
            let exact = title::normalize(&decoded, false)?;
            let mut out = Vec::new();
            let mut spellings = vec![upper.clone()];
            if exact != upper {
                spellings.push(exact);
            }
            for name in &spellings {
                for (project, entry) in store::read_index(kv, name).await? {
                    if !out.iter().any(|c: &Candidate| c.project == project) {
                        out.push(Candidate::new(&project, name, Some(entry)));
                    }
                }
            }
            if let Some(language) = language {
                // A language filter: every project of that language is a
                // candidate, fetched from its upstream when no one has yet.
                for project in projects_of_language(config, &language)? {
                    if !out.iter().any(|c| c.project == project) {
                        let name = title::normalize(&decoded, first_letter_upper(&project))?;
                        out.push(Candidate::new(&project, &name, None));
                    }
                }
            } else if out.is_empty() {
                for project in config.default_projects() {
                    let name = title::normalize(&decoded, first_letter_upper(&project))?;
                    out.push(Candidate::new(&project, &name, None));
                }
            }
            out.sort_by(|a, b| a.project.cmp(&b.project));
            Ok(out)
        }
    }
}

/// The project's title case rule without parsing the site matrix (which
/// would cost milliseconds on every request where instances are not
/// reused): Wiktionaries are case-sensitive, every other project
/// uppercases the first letter, as `Registry::first_letter_case` says.
pub fn first_letter_upper(project: &str) -> bool {
    !project.ends_with("wiktionary")
}
