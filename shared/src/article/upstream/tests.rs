use super::*;
use crate::article::wikitext::Localisation;

fn api(name: &str) -> std::path::PathBuf {
    wikiedge_tests::fixtures().join("mediawiki-api").join(name)
}

pub(crate) fn enwiki() -> ProjectContext {
    ProjectContext {
        identifier: "enwiki".into(),
        base_url: "https://en.wikipedia.org".into(),
        language: "en".into(),
        localisation: Localisation::default(),
    }
}

/// A with_html body in the ExistingPageHtml schema's shape.
pub(crate) const REST: &str = r#"{"id": 28492, "key": "Squirrel", "title": "Squirrel",
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

/// A formatversion=2 answer to the full ACTION_API_QUERY in the shapes
/// MediaWiki documents (ApiQueryRevisions, ApiQueryInfo inprop=watchers,
/// PageImages piprop=original, ShortDescription prop=description), with
/// the values of WME's own Squirrel document.
pub(crate) const ACTION_FULL: &str = r#"{"continue": {"rvcontinue": "20230818071350|1170965821", "continue": "||categories|templates|redirects|pageprops|info|pageimages|description"},
    "query": {"pages": [{"pageid": 28492, "ns": 0, "title": "Squirrel", "contentmodel": "wikitext",
    "pagelanguage": "en", "lastrevid": 1171934824, "length": 34723,
    "protection": [{"type": "edit", "level": "autoconfirmed", "expiry": "infinity"}],
    "restrictiontypes": ["edit", "move"], "watchers": 343,
    "categories": [{"ns": 14, "title": "Category:Sciuridae"}],
    "templates": [{"ns": 10, "title": "Template:Automatic taxobox"}],
    "redirects": [{"pageid": 63522, "ns": 0, "title": "Sciuridae"}],
    "original": {"source": "https://upload.wikimedia.org/wikipedia/commons/6/68/Sciuridae.jpg", "width": 600, "height": 600},
    "pageimage": "Sciuridae.jpg",
    "description": "Family of rodents", "descriptionsource": "local",
    "pageprops": {"wikibase_item": "Q9482"},
    "wbentityusage": {"P4807": {"aspects": ["C.P1630"]}, "Q9482": {"aspects": ["S", "T"]}},
    "revisions": [
      {"revid": 1171934824, "parentid": 1170965821, "minor": true, "user": "OAbot", "userid": 28481209,
       "timestamp": "2023-08-24T01:14:42Z", "size": 34723,
       "comment": "[[Wikipedia:OABOT|Open access bot]]: pmc, doi updated in citation with #oabot.",
       "tags": ["mw-reverted"]},
      {"revid": 1170965821, "parentid": 1170000000, "minor": false, "user": "203.0.113.7", "anon": true, "userid": 0,
       "timestamp": "2023-08-18T07:13:50Z", "size": 34675, "comment": "", "tags": []}]}]}}"#;

/// A formatversion=2 answer to the follow-up call (`list=users` with
/// `usprop=editcount|groups|registration`, ApiQueryUsers; and the
/// parent revision with `rvslots=main` content, ApiQueryRevisions), with
/// the editor values of WME's own Squirrel document. The parent's text
/// is 12 characters in 13 bytes.
pub(crate) const FOLLOW_UP: &str = r#"{"batchcomplete": true, "query": {
    "users": [{"userid": 28481209, "name": "OAbot", "editcount": 342731,
               "registration": "2016-06-03T17:03:59Z", "groups": ["bot", "*", "user", "autoconfirmed"]}],
    "pages": [{"pageid": 28492, "ns": 0, "title": "Squirrel",
      "revisions": [{"revid": 1170965821, "parentid": 1170000000, "size": 13,
        "slots": {"main": {"contentmodel": "wikitext", "contentformat": "text/x-wiki",
                           "content": "Écureuil est"}}}]}]}}"#;

pub(crate) const FIRST: &str = r#"{"continue": {"rvcontinue": "20011009175509|1", "continue": "||"},
    "query": {"pages": [{"pageid": 28492, "ns": 0, "title": "Squirrel",
    "revisions": [{"revid": 284620, "parentid": 0, "timestamp": "2001-10-09T17:55:09Z"}]}]}}"#;

#[test]
fn live_answers_fill_revision_history_image_watchers_and_description() {
    let mut rest = RestPage::parse(REST.as_bytes()).expect("rest");
    rest.source = Some("Squirrels{{Citation needed|date=May 2023}} are {{POV}}.".into());
    let mut info = PageInfo::parse(ACTION_FULL.as_bytes()).expect("info");
    info.created = first_revision_timestamp(FIRST.as_bytes());
    let json =
        serde_json::to_value(article_from_upstream(&rest, &info, &enwiki()).expect("article"))
            .expect("json");
    assert_eq!(json["date_created"], "2001-10-09T17:55:09Z");
    assert_eq!(json["date_modified"], "2023-08-24T01:14:42Z");
    assert_eq!(json["date_previously_modified"], "2023-08-18T07:13:50Z");
    assert_eq!(
        json["previous_version"],
        serde_json::json!({"identifier": 1170965821})
    );
    assert_eq!(json["watchers_count"], 343);
    assert_eq!(json["description"], "Family of rodents");
    // Only `rvcontinue`: the lists are complete.
    assert!(!info.incomplete);
    let cut = PageInfo::parse(
        br#"{"continue": {"clcontinue": "28492|X", "continue": "||"},
        "query": {"pages": [{"pageid": 1, "ns": 0, "title": "T"}]}}"#,
    )
    .expect("info");
    assert!(cut.incomplete);
    assert_eq!(
        json["image"],
        serde_json::json!({"content_url": "https://upload.wikimedia.org/wikipedia/commons/6/68/Sciuridae.jpg",
                           "width": 600, "height": 600})
    );
    let version = &json["version"];
    assert_eq!(
        version["editor"],
        serde_json::json!({"identifier": 28481209, "name": "OAbot"})
    );
    assert_eq!(
        version["comment"],
        "[[Wikipedia:OABOT|Open access bot]]: pmc, doi updated in citation with #oabot."
    );
    assert_eq!(version["is_minor_edit"], true);
    assert_eq!(version["tags"], serde_json::json!(["mw-reverted"]));
    assert_eq!(
        version["maintenance_tags"],
        serde_json::json!({"citation_needed_count": 1, "pov_count": 1})
    );
    assert_eq!(version["has_tag_needs_citation"], true);
    assert!(json.get("visibility").is_none());
    // Saved after 2023-06-29: CC BY-SA 4.0 only.
    assert_eq!(json["license"].as_array().map(Vec::len), Some(1));
}

fn live_article() -> Article {
    let rest = RestPage::parse(REST.as_bytes()).expect("rest");
    let info = PageInfo::parse(ACTION_FULL.as_bytes()).expect("info");
    article_from_upstream(&rest, &info, &enwiki()).expect("article")
}

#[test]
fn entity_usage_becomes_additional_entities() {
    let json = serde_json::to_value(live_article()).expect("json");
    assert_eq!(
        json["additional_entities"],
        serde_json::json!([
            {"identifier": "P4807", "url": "https://www.wikidata.org/entity/P4807", "aspects": ["C.P1630"]},
            {"identifier": "Q9482", "url": "https://www.wikidata.org/entity/Q9482", "aspects": ["S", "T"]}
        ])
    );
    // A cut-short usage list is reported like any other.
    let cut = PageInfo::parse(
        br#"{"continue": {"wbeucontinue": "28492|Q1", "continue": "||"},
        "query": {"pages": [{"pageid": 1, "ns": 0, "title": "T",
        "wbentityusage": {"Q1": {"aspects": ["O"]}, "bad key": {"aspects": []}}}]}}"#,
    )
    .expect("info");
    assert!(cut.incomplete);
    assert_eq!(cut.entities.len(), 1);
    assert_eq!(cut.entities[0].aspects, ["O"]);
    assert!(
        ACTION_API_QUERY.contains("%7Cwbentityusage&")
            && ACTION_API_QUERY.contains("wbeulimit=max")
    );
}

#[test]
fn follow_up_asks_for_the_registered_editor_and_the_parent_only() {
    let base = "https://en.wikipedia.org/";
    let mut article = live_article();
    assert_eq!(
        follow_up_url(base, &article).as_deref(),
        Some(
            "https://en.wikipedia.org/w/api.php?action=query&format=json&formatversion=2\
             &list=users&usprop=editcount%7Cgroups%7Cregistration&ususers=OAbot\
             &prop=revisions&rvprop=ids%7Csize%7Ccontent&rvslots=main&revids=1170965821"
        )
    );
    // An IP editor has no user record: only the parent is asked for.
    let version = article.version.as_mut().expect("version");
    version.editor = Some(Editor {
        name: Some("203.0.113.7".into()),
        is_anonymous: Some(true),
        ..Editor::default()
    });
    let url = follow_up_url(base, &article).expect("url");
    assert!(
        !url.contains("list=users") && url.ends_with("&revids=1170965821"),
        "{url}"
    );
    // Nothing to ask: no call at all.
    article.previous_version = None;
    assert_eq!(follow_up_url(base, &article), None);
    // A name with spaces and slashes is one encoded value.
    article.version.as_mut().expect("version").editor = Some(Editor {
        identifier: Some(7),
        name: Some("A b/c".into()),
        ..Editor::default()
    });
    assert!(
        follow_up_url(base, &article)
            .expect("url")
            .ends_with("&ususers=A%20b%2Fc")
    );
}

#[test]
fn follow_up_answer_fills_the_editor_and_the_parent_length() {
    let mut article = live_article();
    apply_follow_up(&mut article, FOLLOW_UP.as_bytes());
    let json = serde_json::to_value(&article).expect("json");
    // Field for field as in WME's own Squirrel document.
    assert_eq!(
        json["version"]["editor"],
        serde_json::json!({"identifier": 28481209, "name": "OAbot", "edit_count": 342731,
                           "groups": ["bot", "*", "user", "autoconfirmed"], "is_bot": true,
                           "date_started": "2016-06-03T17:03:59Z"})
    );
    // Characters, not bytes (the size is 13).
    assert_eq!(
        json["previous_version"],
        serde_json::json!({"identifier": 1170965821, "number_of_characters": 12})
    );

    // A record for someone else, a missing user, a hidden parent text
    // or garbage change nothing.
    for body in [
        r#"{"query": {"users": [{"userid": 1, "name": "Other", "editcount": 5, "groups": ["sysop"]}]}}"#,
        r#"{"query": {"users": [{"name": "OAbot", "missing": true}]}}"#,
        r#"{"query": {"users": [{"userid": 99, "name": "OAbot", "editcount": 5}]}}"#,
        r#"{"query": {"pages": [{"pageid": 28492, "revisions": [{"revid": 1170965821, "slots": {"main": {"texthidden": true}}}]}]}}"#,
        r#"{"query": {"pages": [{"pageid": 28492, "revisions": [{"revid": 5, "slots": {"main": {"content": "x"}}}]}]}}"#,
        "<html>",
    ] {
        let mut untouched = live_article();
        apply_follow_up(&mut untouched, body.as_bytes());
        assert_eq!(untouched, live_article(), "{body}");
    }
}

#[test]
fn reads_the_recorded_rvslots_main_answer() {
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return;
    }
    let recorded: Value =
        serde_json::from_slice(&std::fs::read(api("android_wikitext.json")).expect("fixture"))
            .expect("json");
    let revision = recorded
        .pointer("/query/pages/0/revisions/0")
        .expect("revision");
    assert_eq!(revision_text(revision), Some("\\o/\n\ntest12\n\n3"));
    // The formatversion=1 spelling of the recorded 2017 answers.
    assert_eq!(revision_text(&serde_json::json!({"*": "abc"})), Some("abc"));
}

#[test]
fn revision_metadata_of_another_revision_is_not_used() {
    // An edit landed between the REST and Action API requests.
    let mut rest = RestPage::parse(REST.as_bytes()).expect("rest");
    rest.latest.id = 1171999999;
    let info = PageInfo::parse(ACTION_FULL.as_bytes()).expect("info");
    let json =
        serde_json::to_value(article_from_upstream(&rest, &info, &enwiki()).expect("article"))
            .expect("json");
    assert_eq!(
        json["version"],
        serde_json::json!({"identifier": 1171999999})
    );
    assert!(json.get("previous_version").is_none());
    assert!(json.get("date_previously_modified").is_none());
    // Page-level facts still hold.
    assert_eq!(json["watchers_count"], 343);
}

#[test]
fn hidden_users_and_comments_and_anonymous_editors() {
    let body = r#"{"query": {"pages": [{"pageid": 28492, "ns": 0, "title": "Squirrel",
        "revisions": [{"revid": 1171934824, "parentid": 0, "userhidden": true, "commenthidden": true,
          "timestamp": "2019-01-01T00:00:00Z", "tags": []}]}]}}"#;
    let rest = RestPage::parse(REST.as_bytes()).expect("rest");
    let info = PageInfo::parse(body.as_bytes()).expect("info");
    let json =
        serde_json::to_value(article_from_upstream(&rest, &info, &enwiki()).expect("article"))
            .expect("json");
    assert!(json["version"].get("editor").is_none());
    assert!(json["version"].get("comment").is_none());
    assert_eq!(
        json["visibility"],
        serde_json::json!({"text": true, "comment": false, "user": false})
    );
    // The only revision (no parent) dates the page's creation.
    assert_eq!(json["date_created"], "2019-01-01T00:00:00Z");
    let anon = RevisionInfo::parse(&serde_json::json!(
        {"revid": 1, "user": "203.0.113.7", "anon": "", "userid": 0, "minor": ""}
    ))
    .expect("revision");
    assert!(anon.minor && anon.anonymous);
    assert_eq!(
        anon.editor(),
        Some(Editor {
            name: Some("203.0.113.7".into()),
            is_anonymous: Some(true),
            ..Editor::default()
        })
    );
    // A first-revision answer whose revision has a parent is not a creation.
    assert_eq!(
        first_revision_timestamp(
            br#"{"query": {"pages": [{"revisions": [{"revid": 5, "parentid": 4, "timestamp": "x"}]}]}}"#
        ),
        None
    );
    assert_eq!(first_revision_timestamp(b"<html>"), None);
}

#[test]
fn reads_the_recorded_pageimages_and_description_answer() {
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return;
    }
    let body = std::fs::read(api("android_reading_list_page_info.json")).expect("fixture");
    let info = PageInfo::parse(&body).expect("info");
    // The first page of the recorded answer: thumbnail only (no
    // `original`, so no image), a local description.
    assert_eq!(info.title.as_deref(), Some("Joe Biden"));
    assert_eq!(
        info.description.as_deref(),
        Some("47th Vice President of the United States")
    );
    assert_eq!(info.image, None);
    assert!(info.revisions.is_empty() && info.watchers.is_none());
}

#[test]
fn reads_recorded_formatversion_1_answers() {
    if wikiedge_tests::fixtures_or_skip().is_none() {
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
                    info.page_id.is_some() && info.title.is_some() && info.last_revision.is_some()
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
    if wikiedge_tests::fixtures_or_skip().is_none() {
        return;
    }
    let lead: Value =
        serde_json::from_slice(&std::fs::read(api("android_page_lead_mw.json")).expect("fixture"))
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
    assert!(ACTION_API_QUERY.contains("inprop=protection%7Cwatchers"));
    assert!(ACTION_API_QUERY.contains("rvlimit=2"));
    assert_eq!(
        first_revision_url("https://en.wikipedia.org", "AC/DC"),
        format!("https://en.wikipedia.org/w/api.php?{FIRST_REVISION_QUERY}&titles=AC%2FDC")
    );
}
