//! Generated MediaWiki XML dumps: the enwiki sample's article pages cycled
//! under new titles and page and revision ids (written to a temporary
//! directory only, never into the repository).

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The enwiki sample's article pages (namespace 0, not redirects), each a
/// `<page>...</page>` block, and the dump's head (up to the first page).
pub(crate) struct Sample {
    pub(crate) head: String,
    pub(crate) pages: Vec<String>,
}

pub(crate) fn read_sample(fixtures: &Path) -> Result<Sample> {
    let path = fixtures.join("dumps/enwiki-sample-206-pages.xml.bz2");
    let file = std::fs::File::open(&path).with_context(|| format!("{}", path.display()))?;
    let mut xml = String::new();
    bzip2::read::BzDecoder::new(file)
        .read_to_string(&mut xml)
        .with_context(|| format!("decompressing {}", path.display()))?;
    let first = xml.find("  <page>").context("no <page> in the sample")?;
    let head = xml[..first].to_string();
    let mut pages = Vec::new();
    let mut rest = &xml[first..];
    while let Some(start) = rest.find("<page>") {
        let end = rest[start..]
            .find("</page>")
            .context("unterminated <page>")?
            + start
            + "</page>".len();
        let page = &rest[start..end];
        if page.contains("<ns>0</ns>") && !page.contains("<redirect") {
            pages.push(page.to_string());
        }
        rest = &rest[end..];
    }
    if pages.is_empty() {
        bail!("no article pages in {}", path.display());
    }
    Ok(Sample { head, pages })
}

/// Replaces the text of the first `<tag>` element at or after `from`;
/// returns where that element ends.
fn replace_first(page: &mut String, tag: &str, from: usize, value: &str) -> Option<usize> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = page[from..].find(&open)? + from + open.len();
    let end = page[start..].find(&close)? + start;
    page.replace_range(start..end, value);
    Some(start + value.len() + close.len())
}

/// The `<title>` text of a page, as written in the XML (escaped).
fn xml_title(page: &str) -> Option<&str> {
    let t0 = page.find("<title>")? + "<title>".len();
    let t1 = page[t0..].find("</title>")? + t0;
    Some(&page[t0..t1])
}

/// The XML title of page `n` of a generated dump.
fn generated_xml_title(sample: &Sample, n: usize) -> Option<String> {
    let page = &sample.pages[n % sample.pages.len()];
    Some(format!("{} (cost curve {n})", xml_title(page)?))
}

/// The title (display form, unescaped) of page `n` of a generated dump.
pub(crate) fn generated_title(sample: &Sample, n: usize) -> Option<String> {
    Some(xml_unescape(&generated_xml_title(sample, n)?))
}

/// Text with XML's predefined entities and numeric references resolved.
fn xml_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Page `n` of a generated dump: sample page `n % len` under a new title
/// and new page and revision ids, so that every article is distinct.
pub(crate) fn generated_page(sample: &Sample, n: usize) -> Option<String> {
    let mut page = sample.pages[n % sample.pages.len()].clone();
    let title = generated_xml_title(sample, n)?;
    replace_first(&mut page, "title", 0, &title)?;
    let after_ns = page.find("</ns>")?;
    replace_first(&mut page, "id", after_ns, &(1_000_000_000 + n).to_string())?;
    let rev = page.find("<revision>")?;
    replace_first(&mut page, "id", rev, &(2_000_000_000 + n).to_string())?;
    Some(page)
}

/// Writes a dump of `articles` generated pages; returns its size.
pub(crate) fn write_dump(sample: &Sample, articles: usize, path: &Path) -> Result<u64> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    out.write_all(sample.head.as_bytes())?;
    for n in 0..articles {
        let page = generated_page(sample, n).context("a sample page without title or ids")?;
        out.write_all(b"  ")?;
        out.write_all(page.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.write_all(b"</mediawiki>\n")?;
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The request path of an article: `/v2/articles/{title}`, the title in
/// its key form (underscores) with every byte but the URL's unreserved
/// characters percent-encoded (the service decodes the segment once).
pub(crate) fn article_path(title: &str) -> String {
    let mut out = String::from("/v2/articles/");
    for b in wikiedge_core::article::title::key_form(title).bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let page = |t: &str, id: u32| {
            format!(
                "<page>\n    <title>{t}</title>\n    <ns>0</ns>\n    <id>{id}</id>\n    <revision>\n      <id>{}</id>\n      <contributor><id>7</id></contributor>\n      <text>x</text>\n    </revision>\n  </page>",
                id * 10
            )
        };
        Sample {
            head: "<mediawiki>\n".into(),
            pages: vec![page("Alpha", 1), page("Beta &amp; Gamma", 2)],
        }
    }

    #[test]
    fn generated_pages_are_distinct_copies_of_the_sample() {
        let s = sample();
        let p = generated_page(&s, 3).expect("page");
        // Page 3 is sample page 1 under a new title and ids; the
        // contributor's id is untouched.
        assert!(
            p.contains("<title>Beta &amp; Gamma (cost curve 3)</title>"),
            "{p}"
        );
        assert!(p.contains("<id>1000000003</id>"), "{p}");
        assert!(p.contains("<id>2000000003</id>"), "{p}");
        assert!(p.contains("<contributor><id>7</id>"), "{p}");
        assert!(
            !p.contains("<id>2</id>") && !p.contains("<id>20</id>"),
            "{p}"
        );
        assert_ne!(generated_page(&s, 1), generated_page(&s, 3));
    }

    #[test]
    fn titles_are_the_generated_pages_titles_unescaped_and_distinct() {
        let s = sample();
        assert_eq!(
            generated_title(&s, 3).as_deref(),
            Some("Beta & Gamma (cost curve 3)")
        );
        assert_eq!(
            generated_title(&s, 0).as_deref(),
            Some("Alpha (cost curve 0)")
        );
        let titles: std::collections::BTreeSet<String> =
            (0..50).filter_map(|n| generated_title(&s, n)).collect();
        assert_eq!(titles.len(), 50);
        assert_eq!(
            xml_unescape("a &lt;b&gt; &#233;&#xE9; &bogus; &"),
            "a <b> éé &bogus; &"
        );
    }

    #[test]
    fn article_paths_are_ascii_and_decode_to_the_title() {
        let path = article_path("Beta & Gamma (cost curve 3) é/?");
        assert_eq!(
            path,
            "/v2/articles/Beta_%26_Gamma_%28cost_curve_3%29_%C3%A9%2F%3F"
        );
        let segment = path.strip_prefix("/v2/articles/").expect("prefix");
        assert_eq!(
            wikiedge_core::article::title::from_path_segment(segment, true).as_deref(),
            Ok("Beta & Gamma (cost curve 3) é/?")
        );
    }
}
