use super::*;

/// Fresh for 100 s; backoff 10 s.
const FRESHNESS: Freshness = Freshness { max_age: 100 };
const NOW: u64 = 1_000;

fn entry(rev: u64, fetched: u64, retry_at: u64) -> Entry {
    Entry {
        rev,
        fetched,
        retry_at,
        copy: 0,
    }
}

/// Fetched 50 s ago: fresh.
fn fresh(rev: u64) -> Option<Entry> {
    Some(entry(rev, NOW - 50, 0))
}

/// Fetched 200 s ago, upstream backing off until after now.
fn stale_backing_off(rev: u64) -> Option<Entry> {
    Some(entry(rev, NOW - 200, NOW + 5))
}

/// Fetched 200 s ago, backoff over.
fn stale_due(rev: u64) -> Option<Entry> {
    Some(entry(rev, NOW - 200, NOW - 5))
}

fn lookup(charge: Charge, sources: &[Source]) -> Plan {
    Plan::Lookup {
        charge,
        sources: sources.to_vec(),
    }
}

const CACHE: Source = Source::Cache { stale: false };
const CACHE_STALE: Source = Source::Cache { stale: true };

#[test]
fn a_copy_is_stale_only_past_its_max_age() {
    let e = |fetched| entry(1, fetched, 0);
    assert!(
        !FRESHNESS.is_stale(e(NOW - 100), NOW),
        "exactly max_age old"
    );
    assert!(FRESHNESS.is_stale(e(NOW - 101), NOW));
    assert!(
        !FRESHNESS.is_stale(e(NOW + 30), NOW),
        "fetched in the future"
    );
    let never = Freshness { max_age: 0 };
    assert!(!never.is_stale(e(NOW), NOW) && never.is_stale(e(NOW - 1), NOW));
}

#[test]
fn the_retry_backoff_is_a_tenth_of_the_max_age_between_10_s_and_5_min() {
    let backoff = |max_age| Freshness { max_age }.retry_backoff();
    assert_eq!(backoff(0), 10);
    assert_eq!(backoff(99), 10);
    assert_eq!(backoff(1_000), 100);
    assert_eq!(backoff(3_000), 300);
    assert_eq!(backoff(86_400), 300);
}

#[test]
fn missing_and_stale_copies_are_fetched_unless_backing_off() {
    assert!(FRESHNESS.needs_fetch(None, NOW));
    assert!(!FRESHNESS.needs_fetch(fresh(1), NOW));
    assert!(FRESHNESS.needs_fetch(stale_due(1), NOW));
    assert!(!FRESHNESS.needs_fetch(stale_backing_off(1), NOW));
    // The backoff ends at `retry_at`, inclusive.
    assert!(FRESHNESS.needs_fetch(Some(entry(1, 0, NOW)), NOW));
    assert!(!FRESHNESS.needs_fetch(Some(entry(1, 0, NOW + 1)), NOW));
    // A retry time never delays a fresh copy's refresh: it has none due.
    assert!(!FRESHNESS.needs_fetch(Some(entry(1, NOW, NOW - 1)), NOW));
}

#[test]
fn a_fetched_copy_is_fresh_with_no_backoff() {
    let e = Freshness::fetched(42, NOW);
    assert_eq!(e, entry(42, NOW, 0));
    assert!(!FRESHNESS.needs_fetch(Some(e), NOW + 100));
    assert!(FRESHNESS.needs_fetch(Some(e), NOW + 101));
}

#[test]
fn a_failed_refresh_serves_the_old_copy_and_backs_off() {
    let old = entry(7, NOW - 200, 0);
    let kept = FRESHNESS.after_failure(Some(old), false, NOW);
    assert_eq!(kept, Some(entry(7, NOW - 200, NOW + 10)));
    // Within the backoff the copy is served stale without a fetch; after
    // it, upstream is tried again.
    assert!(!FRESHNESS.needs_fetch(kept, NOW + 9));
    assert!(FRESHNESS.needs_fetch(kept, NOW + 10));
    let long = Freshness { max_age: 86_400 };
    assert_eq!(
        long.after_failure(Some(old), false, NOW)
            .map(|e| e.retry_at),
        Some(NOW + 300)
    );
}

#[test]
fn a_failed_refresh_of_a_gone_page_or_of_no_copy_leaves_nothing() {
    assert_eq!(FRESHNESS.after_failure(fresh(1), true, NOW), None);
    assert_eq!(FRESHNESS.after_failure(None, false, NOW), None);
    assert_eq!(FRESHNESS.after_failure(None, true, NOW), None);
}

#[test]
fn etags_join_revisions_in_answer_order() {
    assert_eq!(etag([716_551_092]), "\"716551092\"");
    assert_eq!(etag([2, 1, 3]), "\"2-1-3\"");
    assert_eq!(etag([0]), "\"0\"");
    assert_eq!(etag([]), "\"\"");
}

#[test]
fn if_none_match_lists_and_weak_tags_match() {
    assert!(etag_matches("\"1\"", "\"1\""));
    assert!(etag_matches("W/\"1\"", "\"1\""));
    assert!(etag_matches("W/\"1\", \"2\"", "\"2\""));
    assert!(etag_matches("\"9\",W/\"2\"", "\"2\""));
    assert!(!etag_matches("\"1\"", "\"2\""));
    assert!(
        !etag_matches("1", "\"1\""),
        "an unquoted tag is another tag"
    );
    assert!(!etag_matches("\"1\"", "\"1-2\""), "one article is not two");
    assert!(!etag_matches("\"1-2\"", "\"2-1\""), "order matters");
    assert!(!etag_matches("*", "\"7\""), "the wildcard is decided apart");
}

#[test]
fn the_wildcard_is_a_bare_star_alone_or_listed() {
    assert!(is_wildcard("*"));
    assert!(is_wildcard(" * "));
    assert!(is_wildcard("\"1\", *"));
    assert!(!is_wildcard("\"*\""));
    assert!(!is_wildcard("W/*"));
    assert!(!is_wildcard("\"1\""));
}

#[test]
fn an_unconditional_lookup_is_charged_first() {
    let plan = |entries: &[Option<Entry>]| plan(FRESHNESS, None, entries, false, NOW);
    assert_eq!(plan(&[fresh(1)]), lookup(Charge::Now, &[CACHE]));
    assert_eq!(
        plan(&[fresh(1), stale_backing_off(2), None, stale_due(3)]),
        lookup(
            Charge::Now,
            &[CACHE, CACHE_STALE, Source::Upstream, Source::Upstream]
        )
    );
    assert_eq!(plan(&[]), lookup(Charge::Now, &[]));
}

#[test]
fn a_matching_etag_known_from_the_index_is_a_free_304() {
    let plan = |inm, entries: &[Option<Entry>]| plan(FRESHNESS, Some(inm), entries, false, NOW);
    assert_eq!(
        plan("\"1\"", &[fresh(1)]),
        Plan::NotModified {
            etag: "\"1\"".into(),
            stale: false
        }
    );
    assert_eq!(
        plan("W/\"1-2\"", &[fresh(1), fresh(2)]),
        Plan::NotModified {
            etag: "\"1-2\"".into(),
            stale: false
        }
    );
    // A stale copy upstream is backing off for: still free, with a warning.
    assert_eq!(
        plan("\"0\", \"1\"", &[stale_backing_off(1)]),
        Plan::NotModified {
            etag: "\"1\"".into(),
            stale: true
        }
    );
}

#[test]
fn a_conditional_lookup_that_goes_upstream_is_charged_first() {
    let plan = |inm, entries: &[Option<Entry>]| plan(FRESHNESS, Some(inm), entries, false, NOW);
    // The ETag matches the index, but the copy is due for a refresh.
    assert_eq!(
        plan("\"1\"", &[stale_due(1)]),
        lookup(Charge::Now, &[Source::Upstream])
    );
    // One candidate of two is not cached.
    assert_eq!(
        plan("\"1\"", &[fresh(1), None]),
        lookup(Charge::Now, &[CACHE, Source::Upstream])
    );
    assert_eq!(plan("*", &[None]), lookup(Charge::Now, &[Source::Upstream]));
}

#[test]
fn a_conditional_lookup_from_the_cache_defers_its_charge() {
    let plan =
        |inm, entries: &[Option<Entry>], filters| plan(FRESHNESS, Some(inm), entries, filters, NOW);
    // Another ETag: the answer is a 200, charged when it is sent.
    assert_eq!(
        plan("\"2\"", &[fresh(1)], false),
        lookup(Charge::Deferred, &[CACHE])
    );
    // Document filters: the ETag is known only after reading the documents.
    assert_eq!(
        plan("\"1\"", &[fresh(1)], true),
        lookup(Charge::Deferred, &[CACHE])
    );
    assert_eq!(
        plan("*", &[fresh(1)], true),
        lookup(Charge::Deferred, &[CACHE])
    );
    // No candidate at all: nothing to match, nothing fetched yet.
    assert_eq!(plan("\"1\"", &[], false), lookup(Charge::Deferred, &[]));
}

#[test]
fn the_wildcard_matches_only_fresh_cached_copies_and_is_charged() {
    let plan = |inm, entries: &[Option<Entry>]| plan(FRESHNESS, Some(inm), entries, false, NOW);
    assert_eq!(
        plan("*", &[fresh(1), fresh(2)]),
        Plan::WildcardNotModified {
            etag: "\"1-2\"".into()
        }
    );
    assert_eq!(
        plan("\"9\", *", &[fresh(1)]),
        Plan::WildcardNotModified {
            etag: "\"1\"".into()
        }
    );
    // A stale copy (upstream backing off) is no match for `*`: served, 200.
    assert_eq!(
        plan("*", &[fresh(1), stale_backing_off(2)]),
        lookup(Charge::Deferred, &[CACHE, CACHE_STALE])
    );
    // A matching tag wins over the wildcard: free.
    assert_eq!(
        plan("\"1\", *", &[fresh(1)]),
        Plan::NotModified {
            etag: "\"1\"".into(),
            stale: false
        }
    );
}

fn served(rev: u64, stale: bool) -> Served {
    Served { rev, stale }
}

#[test]
fn nothing_found_is_missing_however_it_was_charged() {
    assert_eq!(
        answer(Some("\"1\""), Charge::Deferred, &[]),
        Answer::Missing
    );
    assert_eq!(answer(None, Charge::Now, &[]), Answer::Missing);
}

#[test]
fn a_deferred_lookup_whose_answer_matches_is_a_free_304() {
    assert_eq!(
        answer(
            Some("\"3-4\""),
            Charge::Deferred,
            &[served(3, false), served(4, true)]
        ),
        Answer::NotModified {
            etag: "\"3-4\"".into(),
            stale: true
        }
    );
}

#[test]
fn every_other_answer_is_the_documents() {
    let documents = |etag: &str, stale| Answer::Documents {
        etag: etag.into(),
        stale,
    };
    assert_eq!(
        answer(Some("\"2\""), Charge::Deferred, &[served(1, false)]),
        documents("\"1\"", false)
    );
    // The wildcard never matches here: `*` after a lookup is a 200.
    assert_eq!(
        answer(Some("*"), Charge::Deferred, &[served(1, true)]),
        documents("\"1\"", true)
    );
    // Charged first (it went upstream): a matching tag still gets the
    // documents it paid for.
    assert_eq!(
        answer(Some("\"1\""), Charge::Now, &[served(1, false)]),
        documents("\"1\"", false)
    );
    assert_eq!(
        answer(None, Charge::Now, &[served(5, false), served(6, true)]),
        documents("\"5-6\"", true)
    );
}

#[test]
fn nothing_found_is_explained_by_an_upstream_failure_else_404() {
    let timeout = Error::GatewayTimeout("upstream timed out".into());
    let err = missing_error(vec![Error::NotFound("gone".into()), timeout.clone()], "Foo");
    assert_eq!(err, timeout);
    assert_eq!(
        missing_error(vec![Error::NotFound("gone".into())], "Foo bar"),
        Error::NotFound("article 'Foo bar' not found".into())
    );
    assert_eq!(
        missing_error(Vec::new(), "X"),
        Error::NotFound("article 'X' not found".into())
    );
}
