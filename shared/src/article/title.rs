//! Page titles: normalisation as MediaWiki does it, storage keys and URLs.
//!
//! A title has three spellings here:
//! - the display form, with spaces (`Old French`), which is the article `name`;
//! - the key form, with underscores (`Old_French`), used in storage keys and URLs;
//! - the URL form, the key form with only the characters that would break a
//!   URL path percent-encoded. WME writes URLs with raw Unicode, parentheses
//!   and commas (`https://ru.wikipedia.org/wiki/Категория:Скриптовые_языки`,
//!   `.../Category:Articles_containing_Old_French_(842-ca._1400)-language_text`),
//!   so only `%`, `?`, `"` and `#`-free reserved characters are escaped.

use crate::{Error, Result};

/// The characters MediaWiki forbids in titles (`$wgLegalTitleChars`' complement).
const ILLEGAL: &[char] = &['#', '<', '>', '[', ']', '|', '{', '}'];

/// The longest title MediaWiki stores, in UTF-8 bytes.
pub const MAX_TITLE_BYTES: usize = 255;

/// Normalises a title to its display form: underscores to spaces, trimmed,
/// runs of spaces collapsed, and the first letter uppercased when the
/// project is first-letter case-insensitive (every Wikimedia project but the
/// Wiktionaries). An empty title, or one with illegal characters, control
/// characters or more than 255 bytes, is `Unprocessable` (WME answers 422
/// for a malformed name).
pub fn normalize(raw: &str, first_letter_upper: bool) -> Result<String> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_control() {
            return Err(Error::Unprocessable(
                "title contains a control character".into(),
            ));
        }
        if ILLEGAL.contains(&c) {
            return Err(Error::Unprocessable(format!(
                "title contains illegal character '{c}'"
            )));
        }
        let c = if c == '_' || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with(' ') {
        out.pop();
    }
    if out.is_empty() {
        return Err(Error::Unprocessable("title must not be empty".into()));
    }
    if out.len() > MAX_TITLE_BYTES {
        return Err(Error::Unprocessable(format!(
            "title must be at most {MAX_TITLE_BYTES} bytes"
        )));
    }
    if first_letter_upper {
        out = uppercase_first(&out);
    }
    Ok(out)
}

/// Uppercases the first character, as MediaWiki's `ucfirst` does.
fn uppercase_first(title: &str) -> String {
    let mut chars = title.chars();
    match chars.next() {
        // `ß`.to_uppercase() is "SS"; MediaWiki keeps such letters as they are.
        Some(first) if first.to_uppercase().count() == 1 => {
            first.to_uppercase().chain(chars).collect()
        }
        _ => title.to_string(),
    }
}

/// Percent-decodes one URL path segment (`Old_French_%28842%29` ->
/// `Old_French_(842)`). Bad escapes or invalid UTF-8 are `Unprocessable`.
pub fn decode_path_segment(segment: &str) -> Result<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Error::Unprocessable("title has a malformed percent escape".into())
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Unprocessable("title is not valid UTF-8".into()))
}

/// Decodes and normalises a title taken from a URL path (`/v2/articles/{name}`).
pub fn from_path_segment(segment: &str, first_letter_upper: bool) -> Result<String> {
    normalize(&decode_path_segment(segment)?, first_letter_upper)
}

/// The key form of a display title: spaces as underscores.
pub fn key_form(title: &str) -> String {
    title.replace(' ', "_")
}

/// The storage key of an article: `article:{project}:{Title_With_Underscores}`.
pub fn storage_key(project: &str, title: &str) -> String {
    format!("article:{project}:{}", key_form(title))
}

/// The URL path form of a title: the key form with `%`, `?`, `"`, `#`,
/// `&`, `+` and whitespace percent-encoded, everything else (Unicode,
/// parentheses, commas, apostrophes, colons) kept as WME writes it.
pub fn url_path_form(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    for c in key_form(title).chars() {
        match c {
            '%' | '?' | '"' | '#' | '&' | '+' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c if c.is_whitespace() || c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The page URL on a project: `{base}/wiki/{url_path_form(title)}`.
pub fn page_url(base_url: &str, title: &str) -> String {
    format!(
        "{}/wiki/{}",
        base_url.trim_end_matches('/'),
        url_path_form(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, upper: bool, expect: Result<&str>) {
        assert_eq!(
            normalize(raw, upper),
            expect.map(str::to_string),
            "normalize({raw:?})"
        );
    }

    fn check_err(raw: &str) {
        assert!(
            matches!(normalize(raw, true), Err(Error::Unprocessable(_))),
            "{raw:?}"
        );
    }

    #[test]
    fn normalises_like_mediawiki() {
        check("Squirrel", true, Ok("Squirrel"));
        check("squirrel", true, Ok("Squirrel"));
        check("squirrel", false, Ok("squirrel"));
        check(
            "  Old_French__(842-ca._1400)  ",
            true,
            Ok("Old French (842-ca. 1400)"),
        );
        check("ésope", true, Ok("Ésope"));
        check("ßeta", true, Ok("ßeta"));
        check("a\u{a0}b", true, Ok("A b"));
    }

    #[test]
    fn rejects_invalid_titles() {
        for raw in [
            "", "   ", "__", "a#b", "a<b", "a>b", "[[x]]", "a|b", "{{x}}", "a\u{7}b",
        ] {
            check_err(raw);
        }
        check_err(&"x".repeat(256));
        assert!(normalize(&"x".repeat(255), true).is_ok());
        // 128 two-byte letters are 256 bytes.
        check_err(&"é".repeat(128));
    }

    #[test]
    fn decodes_path_segments() {
        assert_eq!(
            from_path_segment("Old_French_%28842-ca._1400%29", true),
            Ok("Old French (842-ca. 1400)".to_string())
        );
        assert_eq!(
            from_path_segment("%D0%91%D0%B5%D0%BB%D0%BA%D0%B0", true),
            Ok("Белка".to_string())
        );
        assert!(matches!(
            decode_path_segment("a%zz"),
            Err(Error::Unprocessable(_))
        ));
        assert!(matches!(
            decode_path_segment("a%2"),
            Err(Error::Unprocessable(_))
        ));
        assert!(matches!(
            decode_path_segment("%FF"),
            Err(Error::Unprocessable(_))
        ));
        assert!(matches!(
            from_path_segment("a%23b", true),
            Err(Error::Unprocessable(_))
        ));
    }

    #[test]
    fn key_and_url_forms_match_wme() {
        assert_eq!(storage_key("enwiki", "Squirrel"), "article:enwiki:Squirrel");
        assert_eq!(
            storage_key("enwiki", "Red squirrel"),
            "article:enwiki:Red_squirrel"
        );
        assert_eq!(
            page_url(
                "https://en.wikipedia.org",
                "Category:Articles containing Old French (842-ca. 1400)-language text"
            ),
            "https://en.wikipedia.org/wiki/Category:Articles_containing_Old_French_(842-ca._1400)-language_text"
        );
        assert_eq!(
            page_url(
                "https://ru.wikipedia.org/",
                "Категория:Языки программирования, появившиеся в 2003 году"
            ),
            "https://ru.wikipedia.org/wiki/Категория:Языки_программирования,_появившиеся_в_2003_году"
        );
        assert_eq!(
            page_url("https://en.wikipedia.org", "What? 100%"),
            "https://en.wikipedia.org/wiki/What%3F_100%25"
        );
    }
}
