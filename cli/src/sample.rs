//! `wikiedge sample-dump FILE`: writes a small MediaWiki XML dump (export
//! 0.11) whose every word this project wrote, so a fresh clone can import,
//! serve, snapshot and test articles without any downloaded data.
//!
//! The dump has the shapes real dumps have: articles with an infobox,
//! sections, links, categories, templates and references; redirects both
//! after and before their target (the importer's fix-up pass); a page in a
//! namespace WME does not serve (skipped); a category and a template page
//! (served namespaces 14 and 10). `--extra-pages N` appends N generated
//! articles, for tests that need volume (several snapshot chunks).

use std::io::{self, Write};

/// The project (dbname) of the sample dump.
pub const PROJECT: &str = "enwiki";

/// What a sample dump holds; the importer's summary must match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleCounts {
    /// `<page>` elements.
    pub pages: u64,
    /// Pages the importer serves as articles (namespaces 0, 6, 10, 14).
    pub articles: u64,
    /// Redirect pages.
    pub redirects: u64,
    /// Pages of other namespaces.
    pub skipped: u64,
}

struct Page<'a> {
    title: &'a str,
    ns: i64,
    id: u64,
    rev: u64,
    redirect: Option<&'a str>,
    text: String,
}

const ANARCHISM: &str = r#"{{Short description|Political philosophy and movement}}
{{Infobox ideology
| name = Anarchism
| founded = 19th century
| key_people = [[Pierre-Joseph Proudhon]]
}}
'''Anarchism''' is a [[political philosophy]] and [[social movement|movement]] that is skeptical of all justifications for [[authority]].<ref>{{cite book |title=A sample reference |year=2020}}</ref> This sample article was written for the wikiedge project's tests.

== History ==
The history of anarchism in this sample is short: it is one paragraph long, with a [[Earth|link to Earth]].

=== Modern era ===
A second-level section, so the article has nested sections.

== See also ==
* [[Anarchy]]
* [[Libertarianism]]

== References ==
{{Reflist}}

[[Category:Anarchism| ]]
[[Category:Political ideologies]]
"#;

const EARTH: &str = r#"{{Short description|Third planet from the Sun}}
{{Infobox planet
| name = Earth
| mean_radius = 6371.0 km
}}
'''Earth''' is the third [[planet]] from the [[Sun]] and, in this sample, the second article.<ref>Written for the wikiedge sample dump.</ref>

== Geography ==
Earth has oceans and continents. {{Main|Geography of Earth}}

== References ==
{{Reflist}}

[[Category:Planets of the Solar System]]
"#;

const WIKIMEDIA: &str = r#"The '''Wikimedia Foundation''' hosts [[Wikipedia]]. This short article has no sections and one [[external link]]: [https://wikimediafoundation.org/ the foundation's site].

[[Category:Wikimedia Foundation]]
"#;

const PEAR: &str = r#"{{Taxobox
| name = Pears
| genus = Pyrus
}}
The '''pear''' is a tree of the genus ''Pyrus''. Pears & apples are related; 3 < 4.

== Cultivation ==
{| class="wikitable"
! Variety !! Colour
|-
| Williams || green
|-
| Red Anjou || red
|}

[[Category:Pears]]
"#;

const CATEGORY: &str = "This category holds [[political ideology|political ideologies]].\n";
const TEMPLATE: &str =
    "<includeonly>{{{name}}}</includeonly><noinclude>A sample infobox template.</noinclude>\n";
const TALK: &str =
    "== A talk section ==\nTalk pages are not articles; the importer skips them. ~~~~\n";

fn pages(extra: u32) -> Vec<Page<'static>> {
    let mut pages = vec![
        // A redirect before its target: folded by the importer's fix-up.
        Page {
            title: "Anarchist",
            ns: 0,
            id: 100,
            rev: 9100,
            redirect: Some("Anarchism"),
            text: "#REDIRECT [[Anarchism]]\n".into(),
        },
        Page {
            title: "Anarchism",
            ns: 0,
            id: 12,
            rev: 9012,
            redirect: None,
            text: ANARCHISM.into(),
        },
        Page {
            title: "Anarchy",
            ns: 0,
            id: 101,
            rev: 9101,
            redirect: Some("Anarchism"),
            text: "#REDIRECT [[Anarchism]] {{R from related word}}\n".into(),
        },
        Page {
            title: "Earth",
            ns: 0,
            id: 9228,
            rev: 9228,
            redirect: None,
            text: EARTH.into(),
        },
        Page {
            title: "Planet Earth",
            ns: 0,
            id: 102,
            rev: 9102,
            redirect: Some("Earth"),
            text: "#REDIRECT [[Earth]]\n".into(),
        },
        Page {
            title: "Wikimedia Foundation",
            ns: 0,
            id: 18618509,
            rev: 9300,
            redirect: None,
            text: WIKIMEDIA.into(),
        },
        Page {
            title: "Pear",
            ns: 0,
            id: 24278,
            rev: 9400,
            redirect: None,
            text: PEAR.into(),
        },
        Page {
            title: "Category:Political ideologies",
            ns: 14,
            id: 700,
            rev: 9700,
            redirect: None,
            text: CATEGORY.into(),
        },
        Page {
            title: "Template:Infobox ideology",
            ns: 10,
            id: 701,
            rev: 9701,
            redirect: None,
            text: TEMPLATE.into(),
        },
        Page {
            title: "Talk:Anarchism",
            ns: 1,
            id: 702,
            rev: 9702,
            redirect: None,
            text: TALK.into(),
        },
    ];
    for n in 1..=u64::from(extra) {
        pages.push(Page {
            title: "",
            ns: 0,
            id: 1_000_000 + n,
            rev: 2_000_000 + n,
            redirect: None,
            text: generated_text(n),
        });
    }
    pages
}

fn generated_text(n: u64) -> String {
    let mut text = format!(
        "'''Sample page {n}''' is a generated article of the wikiedge sample dump. It links to [[Sample page {}]] and [[Earth]].\n\n",
        n + 1
    );
    for s in 1..=3 {
        text.push_str(&format!("== Section {s} ==\n"));
        for p in 0..4 {
            text.push_str(&format!(
                "Paragraph {p} of section {s} of sample page {n}: words that take room in a snapshot, \
                 number {}, so that a few hundred of these pages fill several chunks.\n\n",
                n * 31 + s * 7 + p
            ));
        }
    }
    text.push_str("[[Category:Sample pages]]\n");
    text
}

/// What [`write`] writes with `extra` generated pages.
pub fn counts(extra: u32) -> SampleCounts {
    let pages = pages(extra);
    let served = |ns: i64| [0, 6, 10, 14].contains(&ns);
    SampleCounts {
        pages: pages.len() as u64,
        articles: pages
            .iter()
            .filter(|p| p.redirect.is_none() && served(p.ns))
            .count() as u64,
        redirects: pages.iter().filter(|p| p.redirect.is_some()).count() as u64,
        skipped: pages
            .iter()
            .filter(|p| p.redirect.is_none() && !served(p.ns))
            .count() as u64,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes the sample dump (export 0.11) with `extra` generated articles.
pub fn write(out: &mut impl Write, extra: u32) -> io::Result<SampleCounts> {
    writeln!(
        out,
        r#"<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="en">
  <siteinfo>
    <sitename>Wikipedia</sitename>
    <dbname>{PROJECT}</dbname>
    <base>https://en.wikipedia.org/wiki/Main_Page</base>
    <generator>wikiedge sample-dump</generator>
    <case>first-letter</case>
    <namespaces>
      <namespace key="0" case="first-letter" />
      <namespace key="1" case="first-letter">Talk</namespace>
      <namespace key="6" case="first-letter">File</namespace>
      <namespace key="10" case="first-letter">Template</namespace>
      <namespace key="14" case="first-letter">Category</namespace>
    </namespaces>
  </siteinfo>"#
    )?;
    for (i, page) in pages(extra).iter().enumerate() {
        let generated;
        let title = if page.title.is_empty() {
            generated = format!("Sample page {}", page.id - 1_000_000);
            generated.as_str()
        } else {
            page.title
        };
        let redirect = page
            .redirect
            .map(|t| format!("\n    <redirect title=\"{}\" />", escape(t)))
            .unwrap_or_default();
        // Timestamps a minute apart from 2024-01-01, deterministic.
        let minute = i as u64 % 60;
        let hour = (i as u64 / 60) % 24;
        writeln!(
            out,
            r#"  <page>
    <title>{title}</title>
    <ns>{ns}</ns>
    <id>{id}</id>{redirect}
    <revision>
      <id>{rev}</id>
      <parentid>{parent}</parentid>
      <timestamp>2024-01-01T{hour:02}:{minute:02}:00Z</timestamp>
      <contributor>
        <username>Wikiedge sample</username>
        <id>1</id>
      </contributor>
      <comment>Written for the wikiedge sample dump</comment>
      <origin>{rev}</origin>
      <model>wikitext</model>
      <format>text/x-wiki</format>
      <text bytes="{bytes}" xml:space="preserve">{text}</text>
    </revision>
  </page>"#,
            title = escape(title),
            ns = page.ns,
            id = page.id,
            rev = page.rev,
            parent = page.rev - 1,
            bytes = page.text.len(),
            text = escape(&page.text),
        )?;
    }
    writeln!(out, "</mediawiki>")?;
    Ok(counts(extra))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wikiedge_core::article::dump::DumpReader;

    #[test]
    fn the_sample_reads_back_as_written() -> anyhow::Result<()> {
        let mut xml = Vec::new();
        let counts = write(&mut xml, 3)?;
        assert_eq!(
            counts,
            SampleCounts {
                pages: 13,
                articles: 9,
                redirects: 3,
                skipped: 1
            }
        );
        let reader = DumpReader::new(std::io::BufReader::new(xml.as_slice()))?;
        assert_eq!(
            reader.siteinfo().and_then(|s| s.dbname.clone()),
            Some(PROJECT.to_string())
        );
        let mut pages = Vec::new();
        for page in reader {
            pages.push(page?);
        }
        assert_eq!(pages.len(), 13);
        assert_eq!(pages[0].title, "Anarchist");
        assert_eq!(pages[0].redirect.as_deref(), Some("Anarchism"));
        let pear = pages.iter().find(|p| p.title == "Pear").expect("Pear");
        let text = pear
            .revision
            .as_ref()
            .and_then(|r| r.text.as_deref())
            .unwrap_or("");
        assert!(
            text.contains("Pears & apples are related; 3 < 4."),
            "{text}"
        );
        assert_eq!(pages[12].title, "Sample page 3");
        Ok(())
    }

    /// The importer reads the sample as the counts say, folds both
    /// redirects of Anarchism (one before it, one after), and a re-run
    /// writes nothing.
    #[test]
    fn the_sample_imports_with_redirects_folded_idempotently() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let dump = dir.path().join("sample.xml");
        let mut file = std::fs::File::create(&dump)?;
        let counts = write(&mut file, 2)?;
        drop(file);
        let state = dir.path().join("state");
        let import = || {
            let mut args = crate::import::ImportArgs::new(&dump, None).with_state_dir(&state);
            args.progress = false;
            crate::import::run(args)
        };
        let first = import()?;
        assert_eq!(
            (first.pages, first.articles, first.redirects, first.skipped),
            (
                counts.pages,
                counts.articles,
                counts.redirects,
                counts.skipped
            )
        );
        // Anarchy and Planet Earth come after their targets: two fix-ups.
        assert_eq!((first.articles, first.written, first.fixed_up), (8, 8, 2));
        let store =
            crate::bulk::Bulk::open(&crate::bulk::Target::new(&state, crate::import::STORE))?;
        let value = store
            .get("article:enwiki:Anarchism")?
            .expect("Anarchism stored");
        let article: serde_json::Value =
            serde_json::from_slice(wikiedge_core::article::layout::document(&value))?;
        let mut redirects: Vec<&str> = article["redirects"]
            .as_array()
            .map(|r| r.iter().filter_map(|r| r["name"].as_str()).collect())
            .unwrap_or_default();
        redirects.sort_unstable();
        assert_eq!(redirects, ["Anarchist", "Anarchy"]);
        assert_eq!(article["version"]["identifier"], 9012);
        let again = import()?;
        assert_eq!((again.written, again.fixed_up), (0, 0));
        Ok(())
    }
}
