//! The field-coverage table of `docs/coverage.md`, generated from real
//! documents so it cannot drift: which WME article fields each path fills.
//!
//! - The field list is every field path of the real WME documents in the
//!   fixtures (`wme/responses/articles.json`), plus the schema fields
//!   those 2023 documents lack (`SCHEMA_ONLY`). `version.scores` and
//!   `version.maintenance_tags` are one row each (their inner counts depend
//!   on the page, not on the path).
//! - **dump**: the articles built from the real enwiki sample dump (206
//!   pages) and the real simplewiki history sample.
//! - **live**: the articles built from the documented-shape MediaWiki
//!   answers of the upstream tests (with a registered bot, an anonymous
//!   editor, and an administrator) and the follow-up call (the editor's record, the
//!   parent's text), with the real enwiki document's HTML and wikitext as
//!   the REST answers.
//! - **WME import**: the real documents as `wikiedge import` stores them
//!   (byte for byte; checked here through the schema round trip).
//!
//! `cargo test -p wikiedge-core coverage` checks the table;
//! `WIKIEDGE_WRITE_COVERAGE=1 cargo test -p wikiedge-core coverage` rewrites it.

use std::collections::BTreeSet;

use serde_json::Value;

use super::dump::tests::open;
use super::dump::{DumpPage, Revisions};
use super::schema::Article;
use super::transform::{ProjectContext, article_from_dump};
use super::upstream::tests::{ACTION_FULL, FIRST, FOLLOW_UP, REST, enwiki};
use super::upstream::{
    PageInfo, RestPage, apply_follow_up, article_from_upstream, first_revision_timestamp,
};

/// WME schema fields (OpenAPI 2024-01 `article`, `version`; the editor's
/// rights flags of WME's current `Editor` schema) the sample documents do
/// not carry.
const SCHEMA_ONLY: [&str; 9] = [
    "description",
    "version.tags",
    "version.is_flagged_stable",
    "version.noindex",
    "version.editor.is_anonymous",
    "version.editor.is_admin",
    "version.editor.is_patroller",
    "version.editor.has_advanced_rights",
    "version.maintenance_tags",
];

/// Objects listed as one row.
const WHOLE: [&str; 2] = ["version.scores", "version.maintenance_tags"];

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/coverage.md");

/// Every field path of a JSON document (arrays are looked into; objects
/// under `version.scores` are not).
fn paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                if WHOLE.contains(&path.as_str()) || !(v.is_object() || v.is_array()) {
                    out.insert(path);
                } else {
                    paths(v, &path, out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if item.is_object() {
                    paths(item, prefix, out);
                } else {
                    out.insert(prefix.to_string());
                }
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

fn paths_of(articles: &[Article]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for article in articles {
        let json = serde_json::to_value(article).expect("json");
        paths(&json, "", &mut out);
    }
    out
}

fn wme_documents() -> Vec<Value> {
    let path = wikiedge_tests::fixtures().join("wme/responses/articles.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn dump_articles() -> Vec<Article> {
    let mut pages: Vec<DumpPage> = open("enwiki-sample-206-pages.xml.bz2")
        .collect::<crate::Result<_>>()
        .expect("dump");
    pages.extend(
        open("simplewiki-history-export-0.11.xml")
            .revisions(Revisions::Latest)
            .collect::<crate::Result<Vec<_>>>()
            .expect("dump"),
    );
    pages
        .iter()
        .filter_map(|p| article_from_dump(p, &enwiki_ctx(), &[String::from("Redirect")]).ok())
        .collect()
}

fn enwiki_ctx() -> ProjectContext {
    enwiki()
}

fn live_articles(real: &Value) -> Vec<Article> {
    let mut rest = RestPage::parse(REST.as_bytes()).expect("rest");
    rest.html = real["article_body"]["html"].as_str().map(str::to_string);
    rest.source = real["article_body"]["wikitext"]
        .as_str()
        .map(str::to_string);
    let mut anonymous: Value = serde_json::from_str(ACTION_FULL).expect("json");
    let revision = &mut anonymous["query"]["pages"][0]["revisions"][0];
    revision["user"] = Value::from("203.0.113.7");
    revision["userid"] = Value::from(0);
    revision["anon"] = Value::from(true);
    // The same editor once more as an administrator, rollbacker and
    // checkuser, for the flags WME derives from those groups.
    let mut admin: Value = serde_json::from_str(FOLLOW_UP).expect("json");
    admin["query"]["users"][0]["groups"] = serde_json::json!([
        "checkuser",
        "rollback",
        "sysop",
        "*",
        "user",
        "autoconfirmed"
    ]);
    [
        (ACTION_FULL.to_string(), FOLLOW_UP.to_string()),
        (anonymous.to_string(), FOLLOW_UP.to_string()),
        (ACTION_FULL.to_string(), admin.to_string()),
    ]
    .iter()
    .map(|(body, follow_up)| {
        let mut info = PageInfo::parse(body.as_bytes()).expect("info");
        info.created = first_revision_timestamp(FIRST.as_bytes());
        let mut article = article_from_upstream(&rest, &info, &enwiki()).expect("article");
        apply_follow_up(&mut article, follow_up.as_bytes());
        article
    })
    .collect()
}

/// The table, as `docs/coverage.md` holds it.
fn table() -> String {
    let docs = wme_documents();
    let mut fields = BTreeSet::new();
    for doc in &docs {
        paths(doc, "", &mut fields);
    }
    fields.extend(SCHEMA_ONLY.iter().map(|f| f.to_string()));
    let dump = paths_of(&dump_articles());
    let live = paths_of(&live_articles(&docs[1]));
    let imported: Vec<Article> = docs
        .iter()
        .map(|d| serde_json::from_value(d.clone()).expect("article"))
        .collect();
    let import = paths_of(&imported);
    let mark = |set: &BTreeSet<String>, f: &str| if set.contains(f) { "yes" } else { "—" };
    let mut out = String::from(
        "# Article field coverage\n\n\
         Which fields of WME's article schema each way of building an article\n\
         fills. Generated by `shared/src/article/coverage.rs` from real\n\
         documents (see there); `cargo test -p wikiedge-core coverage` fails\n\
         when this file is out of date, `WIKIEDGE_WRITE_COVERAGE=1` rewrites it.\n\n\
         - **live**: fetched from the wiki's REST and Action APIs (docs/upstream.md),\n  \
           with the defaults: `version.scores.revertrisk` needs `revertrisk_url`.\n\
         - **dump**: built from a MediaWiki XML dump (`wikiedge import`); history\n  \
           fields need the page's earlier revisions in the dump.\n\
         - **WME import**: WME NDJSON loaded with `wikiedge import`, stored as read;\n  \
           a field is there exactly when the input has it.\n\
         - Fields marked *(schema)* are in WME's schema but not in the sample\n  \
           documents.\n\n\
         | field | live | dump | WME import |\n|---|---|---|---|\n",
    );
    for field in &fields {
        let label = if SCHEMA_ONLY.contains(&field.as_str()) {
            format!("`{field}` *(schema)*")
        } else {
            format!("`{field}`")
        };
        out.push_str(&format!(
            "| {label} | {} | {} | {} |\n",
            mark(&live, field),
            mark(&dump, field),
            if SCHEMA_ONLY.contains(&field.as_str()) {
                "if present"
            } else {
                mark(&import, field)
            },
        ));
    }
    out
}

#[test]
fn coverage_table_is_current() {
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return;
    }
    let table = table();
    // The paths every row is about are real: spot-check a few cells.
    assert!(table.contains("| `version.editor.identifier` | yes | yes | yes |"));
    assert!(table.contains("| `article_body.html` | yes | — | yes |"));
    assert!(table.contains("| `previous_version.identifier` | yes | yes | yes |"));
    for live in [
        "previous_version.number_of_characters",
        "version.editor.edit_count",
        "version.editor.groups",
        "version.editor.date_started",
        "version.editor.is_bot",
        "additional_entities.aspects",
        "main_entity.identifier",
    ] {
        assert!(
            table.contains(&format!("| `{live}` | yes |")),
            "{live} is not filled by the live path"
        );
    }
    if std::env::var_os("WIKIEDGE_WRITE_COVERAGE").is_some() {
        std::fs::write(DOC, &table).expect("write docs/coverage.md");
        return;
    }
    let current = std::fs::read_to_string(DOC).unwrap_or_default();
    assert!(
        current == table,
        "docs/coverage.md is out of date; rerun with WIKIEDGE_WRITE_COVERAGE=1"
    );
}
