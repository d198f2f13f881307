//! `version.maintenance_tags`: counts of maintenance templates in a
//! revision's wikitext, counted exactly as Wikimedia Enterprise counts them.
//!
//! WME's builder (`general/builder/maintenance_tags.go` in
//! wikimedia-enterprise) counts the non-overlapping matches of four Go RE2
//! patterns over the raw wikitext:
//!
//! | field | pattern |
//! |---|---|
//! | `citation_needed_count` | `(?i){{Citation needed(\|*).*?}}` |
//! | `pov_count` | `(?i){{POV(\|*).*?}}` |
//! | `clarification_needed_count` | `(?i){{clarify(\|*).*?}}` |
//! | `update_count` | `(?i){{update(\|*).*?}}` |
//!
//! So a match is `{{` followed by the name (ASCII case-insensitively; none
//! of the names has a letter with a non-ASCII case fold), then anything up
//! to the first `}}` on the same line (`.` does not match a newline). The
//! name is a prefix, not a word: `{{POV-section}}` and `{{Update after}}`
//! count, `{{ POV}}` and `{{Clarification needed}}` do not — as in WME.
//! The counters are independent: `{{Citation needed|{{POV}}}}` counts one
//! of each.
//!
//! The scan is linear in the input and iterative: every candidate `{{` is
//! examined once, and the next `}}` and the next newline are found by
//! cursors that only move forward.

use super::schema::MaintenanceTags;

/// The four template-name prefixes, in the order of [`MaintenanceTags`].
const NAMES: [&[u8]; 4] = [b"citation needed", b"pov", b"clarify", b"update"];

/// Counts the maintenance templates of `wikitext` as WME does; zero counts
/// are omitted (WME's Go struct has `omitempty` on each count).
pub fn maintenance_tags(wikitext: &str) -> MaintenanceTags {
    let counts = count(wikitext.as_bytes());
    let some = |n: u64| (n > 0).then_some(n);
    MaintenanceTags {
        citation_needed_count: some(counts[0]),
        pov_count: some(counts[1]),
        clarification_needed_count: some(counts[2]),
        update_count: some(counts[3]),
    }
}

/// Raw counts per name of [`NAMES`].
fn count(text: &[u8]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (slot, name) in out.iter_mut().zip(NAMES) {
        *slot = count_one(text, name);
    }
    out
}

/// A forward-only cursor to the next occurrence of a byte pattern.
struct NextFrom<'a> {
    text: &'a [u8],
    pattern: &'a [u8],
    /// Whether `found` holds an answer yet.
    searched: bool,
    /// The last answer.
    found: Option<usize>,
}

impl<'a> NextFrom<'a> {
    fn new(text: &'a [u8], pattern: &'a [u8]) -> Self {
        NextFrom {
            text,
            pattern,
            searched: false,
            found: None,
        }
    }

    /// The first occurrence at or after `at`. `at` must not decrease
    /// between calls; a new search starts only past the last answer, so the
    /// total work is linear in the text.
    fn at(&mut self, at: usize) -> Option<usize> {
        if self.searched {
            match self.found {
                None => return None,
                Some(found) if found >= at => return Some(found),
                Some(_) => {}
            }
        }
        self.searched = true;
        self.found = find(self.text, self.pattern, at);
        self.found
    }
}

/// The first occurrence of a short `pattern` in `text` at or after `start`
/// (vectorised: this scan is most of the transform's time on long pages).
fn find(text: &[u8], pattern: &[u8], start: usize) -> Option<usize> {
    let rest = text.get(start..)?;
    let found = match pattern {
        [byte] => memchr::memchr(*byte, rest),
        _ => memchr::memmem::find(rest, pattern),
    };
    found.map(|i| start + i)
}

/// Non-overlapping matches of `{{NAME…}}` (see the module docs).
fn count_one(text: &[u8], name: &[u8]) -> u64 {
    let mut opens = NextFrom::new(text, b"{{");
    let mut closes = NextFrom::new(text, b"}}");
    let mut newlines = NextFrom::new(text, b"\n");
    let mut n = 0;
    let mut pos = 0;
    while let Some(open) = opens.at(pos) {
        let after_name = open + 2 + name.len();
        let named = text
            .get(open + 2..after_name)
            .is_some_and(|s| s.eq_ignore_ascii_case(name));
        if named
            && let Some(close) = closes.at(after_name)
            && newlines.at(after_name).is_none_or(|nl| nl > close)
        {
            n += 1;
            pos = close + 2;
        } else {
            pos = open + 1;
        }
    }
    n
}

/// Whether the revision carries a `{{Citation needed}}`, WME's
/// `version.has_tag_needs_citation` (set only when true).
pub fn has_tag_needs_citation(tags: &MaintenanceTags) -> Option<bool> {
    tags.citation_needed_count.map(|_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(text: &str) -> [u64; 4] {
        count(text.as_bytes())
    }

    #[test]
    fn counts_each_template_case_insensitively() {
        assert_eq!(
            counts("a{{Citation needed|date=May 2020}} b{{citation needed}} {{CITATION NEEDED|}}"),
            [3, 0, 0, 0]
        );
        assert_eq!(
            counts("{{POV}} {{pov|talk=x}} {{Pov-section}}"),
            [0, 3, 0, 0]
        );
        assert_eq!(
            counts("{{clarify|reason=which?}} {{Clarify}}"),
            [0, 0, 2, 0]
        );
        assert_eq!(
            counts("{{Update|date=2021}} {{update after|2024}}"),
            [0, 0, 0, 2]
        );
    }

    #[test]
    fn matches_like_wme_regexes_at_the_edges() {
        // Not a template, a space before the name, another name.
        assert_eq!(counts("Citation needed {Citation needed} {{ POV}}"), [0; 4]);
        assert_eq!(counts("{{Clarification needed}} {{}} {{"), [0; 4]);
        // `.` stops at a newline: no `}}` on the same line, no match.
        assert_eq!(counts("{{Citation needed|date=\nMay 2020}}"), [0; 4]);
        // `{{{POV}}}`: the match starts at the second brace pair.
        assert_eq!(counts("{{{POV}}}"), [0, 1, 0, 0]);
        // Non-overlapping per counter, independent across counters.
        assert_eq!(counts("{{Citation needed|{{POV}}}}"), [1, 1, 0, 0]);
        assert_eq!(counts("{{update{{update}}"), [0, 0, 0, 1]);
        // Multi-line text with the tag on one line.
        assert_eq!(
            counts("Line one\n  this has the {{Citation needed}} tag\n"),
            [1, 0, 0, 0]
        );
        // Non-ASCII around the tags is fine.
        assert_eq!(counts("é{{pov}}ü{{Update}}—"), [0, 1, 0, 1]);
    }

    #[test]
    fn zero_counts_are_omitted() {
        let tags = maintenance_tags("{{Citation needed}} {{Update}} {{Update}}");
        assert_eq!(
            tags,
            MaintenanceTags {
                citation_needed_count: Some(1),
                pov_count: None,
                clarification_needed_count: None,
                update_count: Some(2),
            }
        );
        assert_eq!(has_tag_needs_citation(&tags), Some(true));
        let none = maintenance_tags("plain prose");
        assert_eq!(none, MaintenanceTags::default());
        assert_eq!(has_tag_needs_citation(&none), None);
        assert_eq!(serde_json::to_string(&none).expect("json"), "{}");
    }

    #[test]
    fn real_wme_documents_agree_with_their_has_tag_needs_citation() {
        let Some(fixtures) = wikiedge_tests::fixtures_or_skip() else {
            return;
        };
        let path = fixtures.join("wme/responses/articles.json");
        let docs: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        let mut seen = Vec::new();
        for doc in &docs {
            let wikitext = doc["article_body"]["wikitext"].as_str().expect("wikitext");
            let tags = maintenance_tags(wikitext);
            let flag = doc["version"]["has_tag_needs_citation"].as_bool();
            assert_eq!(has_tag_needs_citation(&tags), flag, "{}", doc["url"]);
            seen.push(tags.citation_needed_count.unwrap_or(0));
        }
        // enwiki's Squirrel has two `{{Citation needed|…}}`; de and ru none.
        assert_eq!(seen, [0, 2, 0]);
    }

    #[test]
    fn pathological_input_is_scanned_in_one_pass() {
        // Many opening candidates and no closing braces: a naive
        // search-to-`}}` per candidate would be quadratic.
        let text = "{{POV".repeat(200_000);
        assert_eq!(counts(&text), [0; 4]);
        let text = format!("{}}}}}", "{{update|".repeat(100_000));
        assert_eq!(counts(&text), [0, 0, 0, 1]);
    }
}
