//! `wikiedge import FILE` for Wikimedia Enterprise's own format: NDJSON of
//! WME Article documents, one per line, as WME's HTML dumps, snapshots and
//! chunks (and wikiedge's own snapshots) ship them — plain (`.ndjson`),
//! gzipped (`.ndjson.gz`) or as a tar.gz of `.ndjson` files (`.tar.gz`).
//! The format is recognised by content, not by name: gzip magic, then a tar
//! header (`ustar` at byte 257), else NDJSON.
//!
//! Each document is stored exactly as read (the line's bytes, surrounding
//! whitespace trimmed), so On-demand serves it field for field as WME wrote
//! it, `article_body.html` and `event` included. The key is the one the
//! articles component reads: `article:{is_part_of.identifier}:{name}` with
//! the name normalised by the project's case rule, and the title index
//! entry gets `rev` = `version.identifier` (0 when absent).
//!
//! - Streaming: one line at a time through a `BufReader` (and gzip and a
//!   streaming tar reader); memory is bounded by the largest line, and a
//!   line longer than [`MAX_LINE`] is skipped as malformed without being
//!   buffered whole.
//! - Malformed lines (not JSON, not an article, no `name` or no
//!   `is_part_of.identifier`) are skipped and counted; the first few are
//!   reported with their line number. Documents of another project than
//!   `--project` (when given) are skipped and counted.
//! - Never half-written: a document's article and index entry are written
//!   in the same batch ([`crate::bulk::Bulk::set_all`]), to whatever store
//!   the state directory or runtime config names.
//! - Idempotent: a document whose stored bytes and index revision are
//!   already the same is left alone (its `fetched` time included).
//! - Later lines win: a title seen twice keeps the last copy.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use wikiedge_core::article::layout::{
    Entry, article_key, document, index_key, new_copy, parse_index, stored_article,
};
use wikiedge_core::article::schema::Article;
use wikiedge_core::article::title;

use crate::bulk::Bulk;
use crate::import::{ImportArgs, ImportSummary, open_store};

/// The longest line (one document) read; longer ones are skipped.
pub const MAX_LINE: usize = 64 << 20;
/// Malformed lines reported by number before the rest are only counted.
const REPORTED: u64 = 10;

/// Whether `path` holds WME NDJSON (plain, gzipped or tar.gz) rather than
/// an XML dump: gzip magic, or a first non-blank byte `{`.
pub fn is_wme(path: &Path) -> Result<bool> {
    let mut head = [0u8; 512];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let n = read_full(&mut file, &mut head)?;
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(true);
    }
    Ok(head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The state of one run.
struct Run<'a> {
    store: Bulk,
    args: &'a ImportArgs,
    now: u64,
    summary: ImportSummary,
    /// Lines read in the current file (for error messages).
    line: u64,
    started: Instant,
    last_report: Instant,
    input_bytes: u64,
}

impl Run<'_> {
    fn malformed(&mut self, source: &str, why: &str) {
        self.summary.malformed += 1;
        if self.summary.malformed <= REPORTED {
            eprintln!("import: skipping {source} line {}: {why}", self.line);
        } else if self.summary.malformed == REPORTED + 1 {
            eprintln!("import: more malformed lines; counting them only");
        }
    }

    /// Imports one line (its article and index entry in one batch).
    fn line(&mut self, source: &str, bytes: &[u8]) -> Result<()> {
        let text = bytes.trim_ascii();
        if text.is_empty() {
            return Ok(());
        }
        self.summary.pages += 1;
        // One parse checks the shape (the whole line must be a WME Article)
        // and finds what identifies it; the bytes are stored as read.
        let article: Article = match serde_json::from_slice(text) {
            Ok(article) => article,
            Err(e) => {
                self.malformed(source, &format!("not a WME article: {e}"));
                return Ok(());
            }
        };
        let project = article.is_part_of.map(|p| p.identifier).unwrap_or_default();
        let name = article.name;
        if name.is_empty() || project.is_empty() {
            self.malformed(source, "no name or no is_part_of.identifier");
            return Ok(());
        }
        if self.args.project.as_ref().is_some_and(|p| *p != project) {
            self.summary.skipped += 1;
            return Ok(());
        }
        let upper = !project.ends_with("wiktionary");
        let Ok(name) = title::normalize(&name, upper) else {
            self.malformed(source, &format!("invalid title {name:?}"));
            return Ok(());
        };
        let rev = article.version.and_then(|v| v.identifier).unwrap_or(0);
        let key = article_key(&project, &name);
        let ikey = index_key(&name);
        let mut index = parse_index(self.store.get(&ikey)?.as_deref());
        self.summary.articles += 1;
        if index.get(&project).is_some_and(|e| e.rev == rev)
            && self.store.get(&key)?.as_deref().map(document) == Some(text)
        {
            return Ok(());
        }
        index.insert(
            project,
            Entry {
                rev,
                fetched: self.now,
                retry_at: 0,
                copy: new_copy(rand::random()),
            },
        );
        self.store.set_all([
            (key, stored_article(text)),
            (ikey, serde_json::to_vec(&index)?),
        ])?;
        self.summary.written += 1;
        Ok(())
    }

    /// Imports every line of one NDJSON stream.
    fn ndjson(&mut self, source: &str, input: &mut dyn BufRead) -> Result<()> {
        self.line = 0;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = Read::take(&mut *input, MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("reading {source}"))?;
            if n == 0 {
                return Ok(());
            }
            self.line += 1;
            self.input_bytes += n as u64;
            if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
                self.summary.pages += 1;
                self.malformed(source, &format!("longer than {MAX_LINE} bytes"));
                self.input_bytes += discard_line(input)?;
                continue;
            }
            self.line(source, &buf)?;
            self.progress();
        }
    }

    fn progress(&mut self) {
        if self.args.progress && self.last_report.elapsed() >= Duration::from_secs(2) {
            self.last_report = Instant::now();
            let secs = self.started.elapsed().as_secs_f64();
            eprintln!(
                "import: {} documents, {} written, {} malformed ({:.0} documents/s, {:.1} MB/s)",
                self.summary.pages,
                self.summary.written,
                self.summary.malformed,
                self.summary.pages as f64 / secs,
                self.input_bytes as f64 / 1e6 / secs,
            );
        }
    }
}

/// Skips the rest of an over-long line; returns the bytes skipped.
fn discard_line(input: &mut dyn BufRead) -> Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(skipped + i as u64 + 1);
            }
            None => {
                let n = buf.len();
                input.consume(n);
                skipped += n as u64;
            }
        }
    }
}

/// A streaming reader of a tar archive's entries (ustar, GNU and pax
/// headers; only the size, type and name are used).
struct Tar<R> {
    inner: R,
}

/// One tar header, parsed.
struct TarHeader {
    name: String,
    size: u64,
    regular: bool,
}

impl<R: Read> Tar<R> {
    /// The next header, or `None` at the end-of-archive block or input end.
    fn next_header(&mut self) -> Result<Option<TarHeader>> {
        let mut block = [0u8; 512];
        let n = read_full(&mut self.inner, &mut block)?;
        if n == 0 || block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        anyhow::ensure!(n == 512, "truncated tar header");
        let text = |range: std::ops::Range<usize>| {
            let field = &block[range];
            let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
            String::from_utf8_lossy(&field[..end]).into_owned()
        };
        let size = if block[124] & 0x80 != 0 {
            // GNU base-256 size.
            block[125..136]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        } else {
            let octal = text(124..136);
            u64::from_str_radix(octal.trim_matches(|c: char| c == ' ' || c == '\0'), 8).unwrap_or(0)
        };
        let prefix = if &block[257..262] == b"ustar" {
            text(345..500)
        } else {
            String::new()
        };
        let name = text(0..100);
        let name = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let regular = matches!(block[156], b'0' | 0 | b'7');
        Ok(Some(TarHeader {
            name,
            size,
            regular,
        }))
    }

    /// Skips `n` bytes.
    fn skip(&mut self, n: u64) -> Result<()> {
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())?;
        anyhow::ensure!(copied == n, "truncated tar entry");
        Ok(())
    }
}

fn padding(size: u64) -> u64 {
    (512 - size % 512) % 512
}

/// Imports a WME NDJSON file; see the module docs.
pub fn run(args: &ImportArgs) -> Result<ImportSummary> {
    let started = Instant::now();
    let path = &args.dump;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let file_bytes = file.metadata().map_or(0, |m| m.len());
    let mut file = BufReader::with_capacity(1 << 20, file);
    let gzipped = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut input: Box<dyn BufRead> = if gzipped {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(file),
        ))
    } else {
        Box::new(file)
    };
    let is_tar = {
        let head = input.fill_buf()?;
        head.len() >= 262 && &head[257..262] == b"ustar"
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut run = Run {
        store: open_store(args)?,
        args,
        now,
        summary: ImportSummary::empty(),
        line: 0,
        started,
        last_report: Instant::now(),
        input_bytes: 0,
    };
    let source = path.display().to_string();
    let result = if is_tar {
        let mut tar = Tar { inner: input };
        (|| -> Result<()> {
            while let Some(header) = tar.next_header()? {
                let wanted = header.regular
                    && (header.name.ends_with(".ndjson") || header.name.ends_with(".json"));
                if wanted {
                    let entry = format!("{source}:{}", header.name);
                    let mut body =
                        BufReader::with_capacity(1 << 20, (&mut tar.inner).take(header.size));
                    run.ndjson(&entry, &mut body)?;
                    let rest = std::io::copy(&mut body, &mut std::io::sink())?;
                    anyhow::ensure!(rest == 0, "unread bytes in {entry}");
                    tar.skip(padding(header.size))?;
                } else {
                    tar.skip(header.size + padding(header.size))?;
                }
            }
            Ok(())
        })()
    } else {
        run.ndjson(&source, &mut input)
    };
    // What was read before an unreadable input stays imported, whole
    // documents only; the error still fails the run.
    run.store.flush()?;
    result?;
    let mut summary = run.summary;
    summary.file_bytes = file_bytes;
    summary.xml_bytes = run.input_bytes;
    summary.elapsed = started.elapsed();
    if args.progress {
        eprintln!("import: done: {summary}");
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use wikiedge_core::article::layout::Index;

    const ARTICLES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/wme/responses/articles.ndjson"
    );

    use tempfile::TempDir;

    /// The real WME documents, one per line, as read from the fixture.
    fn real_lines() -> Vec<String> {
        std::fs::read_to_string(ARTICLES)
            .expect("fixture")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    fn args(file: &Path, state: &Path, project: Option<&str>) -> ImportArgs {
        ImportArgs {
            dump: file.to_path_buf(),
            project: project.map(str::to_string),
            state_dir: state.to_path_buf(),
            runtime_config: None,
            progress: false,
        }
    }

    /// A stored value as the raw bytes.
    fn raw(state: &Path, key: &str) -> Option<Vec<u8>> {
        open_store(&args(Path::new("-"), state, None))
            .expect("store")
            .get(key)
            .expect("get")
    }

    /// A stored article's document (an index record as it is).
    fn stored(state: &Path, key: &str) -> Option<Vec<u8>> {
        raw(state, key).map(|v| document(&v).to_vec())
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).expect("gzip");
        gz.finish().expect("gzip")
    }

    fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        use wikiedge_core::snapshot::{TAR_TRAILER, tar_header, tar_padding};
        let mut out = Vec::new();
        for (name, body) in files {
            out.extend_from_slice(&tar_header(name, body.len() as u64, 0));
            out.extend_from_slice(body);
            out.resize(out.len() + tar_padding(body.len() as u64) as usize, 0);
        }
        out.extend_from_slice(&TAR_TRAILER);
        out
    }

    #[test]
    fn real_documents_are_stored_byte_for_byte_and_reimport_is_a_no_op() -> Result<()> {
        let dir = TempDir::new().expect("temp dir");
        let lines = real_lines();
        assert_eq!(lines.len(), 3);
        let file = dir.path().join("articles.ndjson");
        std::fs::write(&file, lines.join("\n") + "\n")?;
        assert!(is_wme(&file)?);
        let state = dir.path().join("state");
        let first = crate::import::run(args(&file, &state, None))?;
        assert_eq!(
            (first.pages, first.articles, first.written, first.malformed),
            (3, 3, 3, 0)
        );
        for (line, project) in lines.iter().zip(["dewiki", "enwiki", "ruwiki"]) {
            let key = title::storage_key(project, "Squirrel");
            assert_eq!(stored(&state, &key).as_deref(), Some(line.as_bytes()));
            // Stored as the one-element array the article route sends.
            assert_eq!(raw(&state, &key), Some(stored_article(line.as_bytes())));
        }
        let index: Index =
            serde_json::from_slice(&stored(&state, "article-projects:Squirrel").expect("index"))?;
        assert_eq!(index["enwiki"].rev, 1171934824);
        assert_eq!(index["dewiki"].rev, 181072077);
        assert_eq!(index.len(), 3);
        let second = crate::import::run(args(&file, &state, None))?;
        assert_eq!((second.articles, second.written), (3, 0));
        Ok(())
    }

    #[test]
    fn gzip_and_tar_gz_read_like_plain_ndjson() -> Result<()> {
        let dir = TempDir::new().expect("temp dir");
        let ndjson = real_lines().join("\n") + "\n";
        let gz = dir.path().join("articles.ndjson.gz");
        std::fs::write(&gz, gzip(ndjson.as_bytes()))?;
        let summary = crate::import::run(args(&gz, &dir.path().join("a"), None))?;
        assert_eq!((summary.articles, summary.written), (3, 3));

        // A tar.gz with a README first and the NDJSON split in two files.
        let lines = real_lines();
        let one = format!("{}\n", lines[0]);
        let rest = format!("{}\n{}\n", lines[1], lines[2]);
        let archive = tar(&[
            ("README.txt", b"not json"),
            ("enwiki_namespace_0_chunk_0.ndjson", one.as_bytes()),
            ("enwiki_namespace_0_chunk_1.ndjson", rest.as_bytes()),
        ]);
        let tgz = dir.path().join("snapshot.tar.gz");
        std::fs::write(&tgz, gzip(&archive))?;
        let state = dir.path().join("b");
        let summary = crate::import::run(args(&tgz, &state, None))?;
        assert_eq!(
            (summary.pages, summary.articles, summary.malformed),
            (3, 3, 0)
        );
        let key = title::storage_key("ruwiki", "Squirrel");
        assert_eq!(stored(&state, &key).as_deref(), Some(lines[2].as_bytes()));
        Ok(())
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted_and_project_filters() -> Result<()> {
        let dir = TempDir::new().expect("temp dir");
        let lines = real_lines();
        let body = [
            lines[0].as_str(),
            "{\"name\": \"Truncated\", \"is_part_of\": {\"identif",
            "not json at all",
            "{\"name\": \"No project\"}",
            "{\"name\": 7, \"is_part_of\": {\"identifier\": \"enwiki\"}}",
            "",
            lines[1].as_str(),
            "{\"name\": \"A|b\", \"is_part_of\": {\"identifier\": \"enwiki\"}}",
        ]
        .join("\n");
        let file = dir.path().join("mixed.ndjson");
        std::fs::write(&file, body)?;
        let state = dir.path().join("state");
        let summary = crate::import::run(args(&file, &state, None))?;
        assert_eq!(
            (summary.pages, summary.articles, summary.malformed),
            (7, 2, 5)
        );
        assert!(stored(&state, &title::storage_key("enwiki", "Squirrel")).is_some());
        assert!(stored(&state, &title::storage_key("enwiki", "No project")).is_none());

        let state = dir.path().join("only-en");
        let summary = crate::import::run(args(&file, &state, Some("enwiki")))?;
        assert_eq!((summary.articles, summary.skipped), (1, 1));
        assert!(stored(&state, &title::storage_key("dewiki", "Squirrel")).is_none());
        Ok(())
    }

    #[test]
    fn an_over_long_line_is_skipped_without_buffering_it() -> Result<()> {
        let mut input: &[u8] = b"aaaaaaaaaa\nb\n";
        assert_eq!(discard_line(&mut input)?, 11);
        assert_eq!(input, b"b\n");
        Ok(())
    }

    #[test]
    fn xml_dumps_are_not_taken_for_ndjson() -> Result<()> {
        let sample = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/dumps/enwiki-pear-export-0.10.xml"
        );
        assert!(!is_wme(Path::new(sample))?);
        Ok(())
    }
}
