//! Dump reader tests on the five real dumps in the fixtures.

use std::io::{BufReader, Cursor};

use super::*;
use crate::Error;

/// Opens a fixture dump, decompressing `.bz2` as the host would.
pub(crate) fn open(name: &str) -> DumpReader<Box<dyn std::io::BufRead>> {
    let file = std::fs::File::open(wikiedge_tests::fixtures().join("dumps").join(name))
        .expect("dump fixture");
    let input: Box<dyn std::io::BufRead> = if name.ends_with(".bz2") {
        Box::new(BufReader::new(bzip2::read::MultiBzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    DumpReader::new(input).expect("dump header")
}

fn pages(name: &str) -> Vec<DumpPage> {
    open(name)
        .collect::<Result<Vec<_>, _>>()
        .expect("dump reads")
}

#[test]
fn enwiki_sample_has_106_articles_and_100_redirects() {
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return;
    }
    let reader = open("enwiki-sample-206-pages.xml.bz2");
    let info = reader.siteinfo().expect("siteinfo").clone();
    assert_eq!(info.dbname.as_deref(), Some("enwiki"));
    assert_eq!(info.base_url().as_deref(), Some("https://en.wikipedia.org"));
    // The fixture README says 28 namespaces; the siteinfo really lists 35.
    assert_eq!(info.namespaces.len(), 35);
    assert_eq!(info.namespace_name(14), Some("Category"));
    assert_eq!(info.namespace_name(0), Some(""));
    let pages: Vec<DumpPage> = reader.collect::<Result<_, _>>().expect("dump reads");
    assert_eq!(pages.len(), 206);
    let articles = pages
        .iter()
        .filter(|p| p.namespace == 0 && p.redirect.is_none())
        .count();
    let redirects_ns0 = pages
        .iter()
        .filter(|p| p.namespace == 0 && p.redirect.is_some())
        .count();
    let redirects = pages.iter().filter(|p| p.redirect.is_some()).count();
    // The README's "100 redirects (ns 0)" is 99 in ns 0 plus one in ns 4.
    assert_eq!((articles, redirects_ns0, redirects), (106, 99, 100));
    assert_eq!(pages[0].title, "AccessibleComputing");
    assert_eq!(pages[0].redirect.as_deref(), Some("Computer accessibility"));
    let anarchism = &pages[1];
    assert_eq!((anarchism.title.as_str(), anarchism.id), ("Anarchism", 12));
    let rev = anarchism.revision.as_ref().expect("revision");
    assert_eq!(rev.id, 716551092);
    assert_eq!(rev.timestamp, "2016-04-22T10:19:33Z");
    assert_eq!(rev.model.as_deref(), Some("wikitext"));
    assert!(
        rev.text
            .as_deref()
            .is_some_and(|t| t.contains("'''Anarchism''' is a [[political philosophy]]"))
    );
}

#[test]
fn pear_is_one_export_0_10_page() {
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return;
    }
    let pages = pages("enwiki-pear-export-0.10.xml");
    assert_eq!(pages.len(), 1);
    let rev = pages[0].revision.as_ref().expect("revision");
    assert_eq!(
        (pages[0].id, rev.id, rev.parent_id),
        (24278, 638548877, Some(638548865))
    );
    assert!(matches!(&rev.contributor, Some(Contributor::User { name, .. }) if !name.is_empty()));
}

#[test]
fn table_markup_dump_without_siteinfo_reads() {
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return;
    }
    let reader = open("enwiki-table-markup-5-pages.xml.bz2");
    assert!(reader.siteinfo().is_none());
    let pages: Vec<DumpPage> = reader.collect::<Result<_, _>>().expect("dump reads");
    let titles: Vec<&str> = pages.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(
        titles,
        vec![
            "Constructive vote of no confidence",
            "List of Prison Break characters",
            "Academy Award for Best Production Design",
            "Economy of Estonia",
            "Brahui language",
        ]
    );
    let first = pages[0].revision.as_ref().expect("revision");
    assert!(first.minor);
    assert_eq!(first.comment.as_deref(), Some("/* Israel */"));
    assert!(first.text.as_deref().is_some_and(|t| t.contains("{|")));
}

#[test]
fn simplewiki_history_keeps_suppressed_revisions_apart() {
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return;
    }
    let latest = pages("simplewiki-history-export-0.11.xml");
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[0].revision.as_ref().map(|r| r.id), Some(5566832));
    assert_eq!(latest[1].title, "Talk:Cristiano Ronaldo");
    assert_eq!(latest[1].revision.as_ref().map(|r| r.id), Some(8750749));

    let each: Vec<DumpPage> = open("simplewiki-history-export-0.11.xml")
        .revisions(Revisions::Each)
        .collect::<Result<_, _>>()
        .expect("dump reads");
    assert_eq!(each.len(), 33);
    let revs: Vec<&DumpRevision> = each.iter().filter_map(|p| p.revision.as_ref()).collect();
    let count = |f: &dyn Fn(&DumpRevision) -> bool| revs.iter().filter(|r| f(r)).count();
    assert_eq!(count(&|r| r.text_deleted), 4);
    assert_eq!(count(&|r| r.text.is_none()), 4);
    assert_eq!(count(&|r| r.contributor == Some(Contributor::Deleted)), 4);
    assert_eq!(count(&|r| r.comment_deleted), 3);
    assert_eq!(count(&|r| r.comment_deleted && r.comment.is_some()), 0);
    assert_eq!(count(&|r| r.minor), 10);
    let blanked = revs
        .iter()
        .find(|r| r.id == 360821)
        .expect("blanking revision");
    assert_eq!(blanked.text.as_deref(), Some(""));
    assert!(!blanked.text_deleted);
    assert!(each.iter().all(|p| p.id != 0 && !p.title.is_empty()));
}

#[test]
fn commons_multi_slot_revisions_keep_the_main_slot() {
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return;
    }
    let reader = open("commonswiki-mediainfo-export-0.11.xml").revisions(Revisions::Each);
    assert_eq!(
        reader.siteinfo().and_then(|s| s.dbname.as_deref()),
        Some("commonswiki")
    );
    let each: Vec<DumpPage> = reader.collect::<Result<_, _>>().expect("dump reads");
    assert_eq!(each.len(), 59);
    let with_slots: Vec<&DumpRevision> = each
        .iter()
        .filter_map(|p| p.revision.as_ref())
        .filter(|r| !r.slots.is_empty())
        .collect();
    assert_eq!(with_slots.len(), 27);
    for rev in &with_slots {
        assert_eq!(rev.slots[0].role, "mediainfo");
        assert_eq!(rev.slots[0].model.as_deref(), Some("wikibase-mediainfo"));
        assert_eq!(rev.model.as_deref(), Some("wikitext"));
        assert!(
            rev.text
                .as_deref()
                .is_some_and(|t| t.contains("[[Category:"))
        );
    }
    let latest = pages("commonswiki-mediainfo-export-0.11.xml");
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].namespace, 6);
    assert_eq!(latest[0].revision.as_ref().map(|r| r.id), Some(1080349301));
}

#[test]
fn main_slot_in_a_content_element_is_the_text() {
    let xml = r#"<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/"><page><title>A</title><ns>0</ns><id>1</id>
        <revision><id>2</id><timestamp>2020-01-01T00:00:00Z</timestamp><contributor><ip>192.0.2.1</ip></contributor>
        <content><role>main</role><model>wikitext</model><format>text/x-wiki</format><text>Hello &amp; bye</text></content>
        </revision></page></mediawiki>"#;
    let pages: Vec<DumpPage> = DumpReader::new(Cursor::new(xml))
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("reads");
    let rev = pages[0].revision.as_ref().expect("revision");
    assert_eq!(rev.text.as_deref(), Some("Hello & bye"));
    assert_eq!(
        rev.contributor,
        Some(Contributor::Anonymous("192.0.2.1".into()))
    );
}

#[test]
fn malformed_xml_is_an_error_with_a_position() {
    let xml = "<mediawiki><page><title>A</title><ns>0</ns><id>1</id><revision><id>2</wrong></revision></page></mediawiki>";
    let results: Vec<_> = DumpReader::new(Cursor::new(xml)).expect("reader").collect();
    assert_eq!(results.len(), 1);
    match &results[0] {
        Err(Error::BadRequest(message)) => assert!(message.contains("at byte"), "{message}"),
        other => panic!("expected a BadRequest, got {other:?}"),
    }
    let truncated = "<mediawiki><page><title>A</title>";
    let results: Vec<_> = DumpReader::new(Cursor::new(truncated))
        .expect("reader")
        .collect();
    assert!(matches!(results.as_slice(), [Err(Error::BadRequest(_))]));
    let not_a_number = "<mediawiki><page><title>A</title><ns>x</ns></page></mediawiki>";
    let results: Vec<_> = DumpReader::new(Cursor::new(not_a_number))
        .expect("reader")
        .collect();
    assert!(matches!(results.as_slice(), [Err(Error::BadRequest(_))]));
}
