//! The decisions of an article lookup (`/v2/articles/{name}`,
//! `/v2/structured-contents/{name}`), free of I/O: the articles component
//! gathers the inputs (the candidate copies' index entries, the clock, the
//! request's `If-None-Match`), asks here what to do, does it, and asks again.
//!
//! A lookup moves through two decisions:
//! 1. [`plan`], on the index entries alone: answer 304 from the index
//!    ([`Plan::NotModified`], free; [`Plan::WildcardNotModified`], charged),
//!    or look the copies up ([`Plan::Lookup`]): which to fetch from
//!    upstream ([`Source::Upstream`]), which to read from the cache and
//!    whether past their max age ([`Source::Cache`]), and whether quota is
//!    consumed before the lookup or deferred until the answer is known
//!    ([`Charge`]).
//! 2. [`answer`], on the copies that made it into the answer: a free 304,
//!    the documents, or nothing ([`Answer`]); with [`missing_error`] saying
//!    which error explains nothing.
//!
//! Between the two, a failed upstream refresh decides through
//! [`Freshness::after_failure`] whether a stale copy is served (and upstream
//! left alone for [`Freshness::retry_backoff`] seconds).
//!
//! The quota rules:
//! - A conditional request whose ETag matches copies known from the index
//!   alone (no refresh due, no document filter) is answered 304 without
//!   consuming quota: nothing was served.
//! - `If-None-Match: *` matches only fresh cached copies, and is charged
//!   like any other request (issue #16: a free `*` on uncached titles
//!   bought unlimited upstream traffic).
//! - Any lookup that goes upstream is charged before it does: upstream
//!   traffic is never free, whatever `If-None-Match` says.
//! - Any other conditional lookup defers consumption, so that a 304 found
//!   after reading the documents (filters applied) stays free; every other
//!   answer, an error included, consumes then.
//!
//! ETag: `"{rev}"` for one article, `"{rev1}-{rev2}-..."` in response order
//! for several.

use crate::Error;

use super::layout::Entry;

/// How long a cached copy is fresh, and how long upstream is left alone
/// after it failed to refresh one: the `article_max_age` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Seconds a copy is fresh after it was fetched.
    pub max_age: u64,
}

impl Freshness {
    /// Seconds to wait before trying upstream again after it failed for a
    /// stale copy: a tenth of the max age, between 10 s and 5 min.
    pub fn retry_backoff(self) -> u64 {
        (self.max_age / 10).clamp(10, 300)
    }

    /// Whether a copy is past its max age (exactly `max_age` old is fresh).
    pub fn is_stale(self, entry: Entry, now: u64) -> bool {
        now.saturating_sub(entry.fetched) > self.max_age
    }

    /// Whether a copy must be (re)fetched now: missing, or stale and not in
    /// its retry backoff (which ends at `retry_at`, inclusive).
    pub fn needs_fetch(self, entry: Option<Entry>, now: u64) -> bool {
        match entry {
            None => true,
            Some(e) => self.is_stale(e, now) && now >= e.retry_at,
        }
    }

    /// The entry of a copy just fetched from upstream at `now` (its
    /// `copy` is set by whoever writes it).
    pub fn fetched(rev: u64, now: u64) -> Entry {
        Entry {
            rev,
            fetched: now,
            retry_at: 0,
            copy: 0,
        }
    }

    /// What is left after upstream failed to refresh a copy: nothing when
    /// upstream says the page is gone (`gone`) or there was no copy, else
    /// the copy, served stale, with upstream left alone for
    /// [`Freshness::retry_backoff`] seconds (the entry to record).
    pub fn after_failure(self, entry: Option<Entry>, gone: bool, now: u64) -> Option<Entry> {
        match entry {
            Some(mut entry) if !gone => {
                entry.retry_at = now + self.retry_backoff();
                Some(entry)
            }
            _ => None,
        }
    }
}

/// When a lookup consumes its unit of quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Before anything else (and a denial ends the lookup with 429).
    Now,
    /// When the answer is known: a 304 then is free, anything else
    /// consumes.
    Deferred,
}

/// Where one candidate copy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Fetched from upstream (missing, or stale and out of its backoff).
    Upstream,
    /// Read from the cache; `stale`: past its max age (upstream is in its
    /// retry backoff), served with a staleness warning.
    Cache {
        /// Past its max age.
        stale: bool,
    },
}

/// The first decision of a lookup, on the index entries alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// 304 from the index: free (no quota consumed, not metered).
    NotModified {
        /// The ETag of the copies.
        etag: String,
        /// Some copy is past its max age (warn).
        stale: bool,
    },
    /// `If-None-Match: *` and every copy cached and fresh: 304, charged
    /// and metered like any other answer.
    WildcardNotModified {
        /// The ETag of the copies.
        etag: String,
    },
    /// Look the copies up.
    Lookup {
        /// When quota is consumed.
        charge: Charge,
        /// Where each candidate comes from, in candidate order.
        sources: Vec<Source>,
    },
}

/// Decides how a lookup starts, given each candidate's index entry (in
/// answer order; `None`: not cached), the request's `If-None-Match`, and
/// whether document filters apply (then the answer, and its ETag, is only
/// known after reading the documents).
pub fn plan(
    freshness: Freshness,
    if_none_match: Option<&str>,
    entries: &[Option<Entry>],
    document_filters: bool,
    now: u64,
) -> Plan {
    let fetch_needed = entries.iter().any(|e| freshness.needs_fetch(*e, now));
    if let Some(inm) = if_none_match
        && !fetch_needed
        && !document_filters
        && !entries.is_empty()
    {
        // No fetch due: every copy is cached, the index knows the answer.
        let tag = etag(entries.iter().map(|e| e.map_or(0, |e| e.rev)));
        let stale = entries
            .iter()
            .any(|e| e.is_some_and(|e| freshness.is_stale(e, now)));
        if etag_matches(inm, &tag) {
            return Plan::NotModified { etag: tag, stale };
        }
        if is_wildcard(inm) && !stale {
            return Plan::WildcardNotModified { etag: tag };
        }
    }
    let charge = if if_none_match.is_some() && !fetch_needed {
        Charge::Deferred
    } else {
        Charge::Now
    };
    let sources = entries
        .iter()
        .map(|&entry| match entry {
            Some(e) if !freshness.needs_fetch(entry, now) => Source::Cache {
                stale: freshness.is_stale(e, now),
            },
            _ => Source::Upstream,
        })
        .collect();
    Plan::Lookup { charge, sources }
}

/// One copy in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// Its revision (0 when unknown).
    pub rev: u64,
    /// Served past its max age.
    pub stale: bool,
}

/// The last decision of a lookup, on what it found. A charge that was
/// [`Charge::Deferred`] is consumed now, except for a [`Answer::NotModified`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 304: free (no quota consumed, not metered). Only for a deferred
    /// charge: a lookup charged first was charged for the documents.
    NotModified {
        /// The ETag of the copies.
        etag: String,
        /// Some copy is served past its max age (warn).
        stale: bool,
    },
    /// 200 with the documents.
    Documents {
        /// The ETag of the copies.
        etag: String,
        /// Some copy is served past its max age (warn).
        stale: bool,
    },
    /// Nothing to serve: the error [`missing_error`] names. Charged: a
    /// lookup made on the caller's behalf costs, found or not.
    Missing,
}

/// Decides the answer, given the copies served (in answer order), the
/// request's `If-None-Match` and how the lookup was charged.
pub fn answer(if_none_match: Option<&str>, charge: Charge, served: &[Served]) -> Answer {
    if served.is_empty() {
        return Answer::Missing;
    }
    let etag = etag(served.iter().map(|s| s.rev));
    let stale = served.iter().any(|s| s.stale);
    match if_none_match {
        Some(inm) if charge == Charge::Deferred && etag_matches(inm, &etag) => {
            Answer::NotModified { etag, stale }
        }
        _ => Answer::Documents { etag, stale },
    }
}

/// The error of a lookup that found nothing: the first upstream failure
/// that is not a "not found", else a 404 naming the title.
pub fn missing_error(upstream_errors: Vec<Error>, title: &str) -> Error {
    upstream_errors
        .into_iter()
        .find(|e| !matches!(e, Error::NotFound(_)))
        .unwrap_or_else(|| Error::NotFound(format!("article '{title}' not found")))
}

/// The ETag of copies with these revisions, in answer order.
pub fn etag(revs: impl IntoIterator<Item = u64>) -> String {
    let revs: Vec<String> = revs.into_iter().map(|r| r.to_string()).collect();
    format!("\"{}\"", revs.join("-"))
}

/// Whether an `If-None-Match` value names the ETag, strong or weak (`W/`),
/// alone or in a list. `*` is handled apart: see [`is_wildcard`].
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .any(|tag| tag.trim().trim_start_matches("W/") == etag)
}

/// Whether an `If-None-Match` value is (or lists) `*`, which matches any
/// current copy: answered 304 only for fresh cached copies, and charged.
pub fn is_wildcard(if_none_match: &str) -> bool {
    if_none_match.split(',').any(|tag| tag.trim() == "*")
}

#[cfg(test)]
mod tests;
