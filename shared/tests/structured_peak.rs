//! How much memory making an article's structured contents holds at its
//! peak, counted by a global allocator that tracks the bytes live (this
//! test binary's only test, so nothing else allocates meanwhile). The
//! articles component makes them in an instance whose memory only grows
//! (`functions/common/src/kept.rs` keeps what it can beside that peak), so
//! the peak is a bound worth holding: a paragraph is split once and its
//! wikitext is a span of its section's text, not a copy, and the parts take
//! the paragraphs' text instead of copying it.
//!
//! `cargo test --release -p wikiedge-core --test structured_peak -- --nocapture`
//! prints the figures (BENCHMARKS.md, "Selections kept").

use peak_alloc::PeakAlloc;
use wikiedge_core::article::schema::Article;
use wikiedge_core::article::sections::structured_content;

#[global_allocator]
static COUNTED: PeakAlloc = PeakAlloc;

/// An article of `sections` sections of `paragraphs` paragraphs, each of
/// about 120 words with a link, a bold word and a reference: the shape of
/// an encyclopedia article, at any size.
fn article(sections: usize, paragraphs: usize) -> Vec<u8> {
    let mut text =
        String::from("{{Short description|A test}}\n'''Lead''' text of the [[lead]].\n\n");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for s in 0..sections {
        text.push_str(&format!("== Section {s} ==\n"));
        for _ in 0..paragraphs {
            for w in 0..120 {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let word: String = (0..3 + (seed >> 61) as usize)
                    .map(|i| (b'a' + ((seed >> (i * 5)) % 26) as u8) as char)
                    .collect();
                match w {
                    10 => text.push_str(&format!("[[{word}]] ")),
                    40 => text.push_str(&format!("'''{word}''' ")),
                    80 => text.push_str(&format!("{word}<ref>{{{{cite web|title={word}|url=https://example.org/{word}}}}}</ref> ")),
                    _ => {
                        text.push_str(&word);
                        text.push(' ');
                    }
                }
            }
            text.push_str("\n\n");
        }
    }
    serde_json::to_vec(&serde_json::json!({
        "name": "Peak", "identifier": 1, "url": "https://en.wikipedia.org/wiki/Peak",
        "article_body": {"wikitext": text}
    }))
    .expect("JSON")
}

#[test]
fn making_structured_contents_holds_at_most_six_times_the_stored_article() {
    for (sections, paragraphs) in [(8, 4), (40, 6), (120, 8)] {
        let stored = article(sections, paragraphs);
        let parsed: Article = serde_json::from_slice(&stored).expect("an article");
        let before = COUNTED.current_usage();
        COUNTED.reset_peak_usage();
        let doc = structured_content(parsed, &Default::default());
        let peak = COUNTED.peak_usage() - before;
        let written = serde_json::to_vec(&doc).expect("JSON").len();
        println!(
            "{sections} sections of {paragraphs} paragraphs: stored {} bytes, structured contents {written}, peak {peak} ({:.1} times the stored article)",
            stored.len(),
            peak as f64 / stored.len() as f64
        );
        // 7-8 times before paragraphs were spans and moved, about 5 since.
        assert!(
            peak <= 6 * stored.len(),
            "making the structured contents of a {} byte article held {peak} bytes",
            stored.len()
        );
    }
}
