//! Bounded, deterministic fuzzing of every parser that reads untrusted
//! input: wikitext transforms, the dump reader, JWT verification, `Range`,
//! article `fields`/`filters` requests and realtime stream requests.
//!
//! Plain `cargo test` on stable Rust: a seeded generator builds inputs from
//! the tokens each parser cares about (so the interesting paths are hit
//! far more often than with random bytes), a fixed number of cases per
//! target, and the property is "no panic, and the output is well-formed".
//! Set `WIKIEDGE_FUZZ_CASES` to run longer. Super-linear time is covered
//! by the hostile-shape tests next to each transform (which would time out
//! if quadratic), not by timings here.

use wikiedge_core::article::dump::DumpReader;
use wikiedge_core::article::plaintext::{abstract_text, plain_text};
use wikiedge_core::article::projection::{matches_all, project};
use wikiedge_core::article::request::ArticlesRequest;
use wikiedge_core::article::sections::{infoboxes, section_parts, sections};
use wikiedge_core::article::wikitext::{Localisation, categories, redirect_target, templates};
use wikiedge_core::realtime::request::StreamRequest;
use wikiedge_core::snapshot::{RangeRequest, parse_range};

/// xorshift64*: deterministic, dependency-free.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// A string of up to `max` tokens drawn from `tokens`.
    fn text(&mut self, tokens: &[&str], max: usize) -> String {
        let n = self.below(max + 1);
        (0..n).map(|_| tokens[self.below(tokens.len())]).collect()
    }
}

fn cases() -> usize {
    std::env::var("WIKIEDGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

const WIKITEXT: &[&str] = &[
    "[[",
    "]]",
    "{{",
    "}}",
    "{|",
    "|}",
    "|",
    "[",
    "]",
    "{",
    "}",
    "'",
    "''",
    "'''",
    "=",
    "==",
    "\n",
    "\n\n",
    ":",
    "#",
    "<",
    ">",
    "/",
    "<ref>",
    "</ref>",
    "<ref name=a/>",
    "<!--",
    "-->",
    "Category",
    "File",
    "Template",
    "Infobox",
    "http://x",
    " ",
    "a",
    "Bc",
    "__NOTOC__",
    "__",
    "&nbsp;",
    "&amp;",
    "é",
    "日本",
    "😀",
    "#REDIRECT",
    "<br />",
    "<gallery>",
];

#[test]
fn wikitext_transforms_never_panic_and_strip_markup() {
    let loc = Localisation::default();
    let mut g = Gen(0x5eed_0001);
    let mut read = 0;
    for _ in 0..cases() {
        let text = g.text(WIKITEXT, 200);
        read += text.len();
        let plain = plain_text(&text, &loc);
        assert!(!plain.contains('\n'), "{text:?} -> {plain:?}");
        assert_eq!(plain.trim(), plain, "{text:?}");
        let _ = abstract_text(&text, &loc);
        for c in categories(&text, &loc) {
            assert!(c.starts_with("Category:"), "{text:?} -> {c:?}");
        }
        let t = templates(&text, &loc);
        let mut dedup = t.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), t.len(), "{text:?}");
        let _ = redirect_target(&text, &[]);
        let flat = sections(&text, &loc);
        assert!(flat.iter().all(|s| (1..=6).contains(&s.level)), "{text:?}");
        let _ = section_parts(flat);
        let _ = infoboxes(&text, &loc);
    }
    // The generator is not vacuous: about 100 tokens per case.
    assert!(read > cases() * 200, "{read}");
}

#[test]
fn the_dump_reader_never_panics_on_mangled_xml() {
    const XML: &[&str] = &[
        "<mediawiki>",
        "</mediawiki>",
        "<siteinfo>",
        "</siteinfo>",
        "<page>",
        "</page>",
        "<title>",
        "</title>",
        "<ns>",
        "</ns>",
        "0",
        "<id>",
        "</id>",
        "12",
        "<revision>",
        "</revision>",
        "<text>",
        "</text>",
        "<text bytes=\"3\" xml:space=\"preserve\">",
        "<redirect title=\"X\" />",
        "<timestamp>",
        "</timestamp>",
        "2024-01-01T00:00:00Z",
        "<contributor>",
        "</contributor>",
        "<username>",
        "</username>",
        "&amp;",
        "&lt;",
        "&#",
        "<![CDATA[",
        "]]>",
        "<!--",
        "-->",
        "x",
        " ",
        "\n",
        "<",
        ">",
        "\"",
        "é",
        "<text deleted=\"deleted\" />",
    ];
    let mut g = Gen(0x5eed_0002);
    for _ in 0..cases() {
        let xml = format!("<mediawiki>{}", g.text(XML, 120));
        if let Ok(reader) = DumpReader::new(std::io::Cursor::new(xml.into_bytes())) {
            for page in reader.take(1000) {
                let _ = page;
            }
        }
    }
}

#[test]
fn jwt_verification_refuses_garbage_without_panicking() {
    const PARTS: &[&str] = &[
        ".",
        "eyJ",
        "hbGciOiJFZERTQSJ9",
        "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9",
        "e30",
        "AAAA",
        "-_",
        "=",
        "+/",
        "a",
        "é",
        "..",
        "eyJhbGciOiJub25lIn0",
    ];
    let key = wikiedge_core::auth::signing::generate([7; 32]).verifying_key();
    let mut g = Gen(0x5eed_0003);
    for _ in 0..cases() {
        let token = g.text(PARTS, 40);
        assert!(
            wikiedge_core::auth::jwt::verify(&token, &key, "iss", "aud", 0).is_err(),
            "{token:?}"
        );
    }
}

#[test]
fn range_headers_give_in_bounds_ranges_or_none() {
    const RANGE: &[&str] = &[
        "bytes=",
        "bytes",
        "=",
        "-",
        ",",
        "0",
        "1",
        "9",
        "18446744073709551615",
        " ",
        "a",
        "items=",
        "99999999999999999999",
    ];
    let mut g = Gen(0x5eed_0004);
    for _ in 0..cases() {
        let header = g.text(RANGE, 12);
        let len = g.next() % 5000;
        if let RangeRequest::Partial { start, end } = parse_range(Some(&header), len) {
            assert!(
                start <= end && end < len,
                "{header:?} on {len}: {start}-{end}"
            );
        }
    }
}

#[test]
fn article_and_stream_requests_parse_or_refuse_cleanly() {
    const JSON: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\"fields\"",
        "\"filters\"",
        "\"limit\"",
        "\"field\"",
        "\"value\"",
        "\"name\"",
        "\"is_part_of.identifier\"",
        "\"version.*\"",
        "\"a.b\"",
        "1",
        "-1",
        "1e400",
        "null",
        "true",
        "\"enwiki\"",
        "\"since\"",
        "\"parts\"",
        "\"offsets\"",
        "\"0\"",
        "\"*\"",
        " ",
        "\"é\"",
    ];
    const QUERY: &[&str] = &[
        "&", "=", "fields", "filters", "limit", "since", "parts", "offsets", "%", "%2C", "%zz",
        ",", "name", "1", "-1", "[", "]", "+", "é",
    ];
    let doc = serde_json::json!({"name": "A", "is_part_of": {"identifier": "enwiki"},
        "version": {"identifier": 1, "editor": {"name": "x"}}});
    let mut g = Gen(0x5eed_0005);
    for _ in 0..cases() {
        let body = g.text(JSON, 40);
        if let Ok(req) = ArticlesRequest::from_json(body.as_bytes()) {
            let fields = req.fields.clone().unwrap_or_default();
            let _ = project(doc.clone(), &fields);
            assert!(req.limit() >= 1, "{body:?}");
        }
        let query = g.text(QUERY, 20);
        if let Ok(req) = ArticlesRequest::from_query(&query) {
            let _ = project(doc.clone(), &req.fields.clone().unwrap_or_default());
        }
        let _ = StreamRequest::from_json(body.as_bytes());
        let _ = StreamRequest::from_query(&query);
    }
    // `filters` are evaluated against documents without panicking.
    let _ = matches_all(&doc, &[]);
}
