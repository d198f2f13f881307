//! `wikiedge import DUMP.xml[.bz2] --project enwiki [--state-dir .spin]`:
//! loads a MediaWiki XML dump into the key-value store the host serves, so
//! an offline machine answers `/v2/articles` with real articles. The same
//! command reads Wikimedia Enterprise NDJSON (`.ndjson`, `.ndjson.gz`,
//! `.tar.gz` of NDJSON), recognised by content: see [`crate::import_wme`].
//!
//! It writes the layout the articles component reads (see
//! `functions/articles/src/store.rs`), into store `default` of
//! `<state-dir>/sqlite_key_value.db` (Spin's `spin_key_value` table):
//! - `article:{project}:{Title_Key}`: the WME Article JSON (compact);
//! - `article-projects:{Title_Key}`: the title index, a JSON object of
//!   project -> `{"rev": N, "fetched": UNIX_SECONDS, "copy": RANDOM}`
//!   (`copy` names the write, for readers that keep the bytes), merged with the
//!   entries of other projects already there.
//!
//! How:
//! - One streaming pass over the dump (core `DumpReader` over a `BufReader`,
//!   bz2 through `MultiBzDecoder`): memory is bounded by the largest page
//!   plus the redirect map (target -> redirect titles), which grows with the
//!   number of redirects only. Reading and decompressing run on a thread of
//!   their own ([`ReadAhead`], a few MiB ahead), so bzip2 decoding overlaps
//!   the parsing, transforming and writing.
//! - Articles are written with the redirects seen so far; redirects that
//!   come after their target are folded in by a fix-up pass over the
//!   redirect targets at the end (one read, and a write only when the list
//!   changed).
//! - Articles: non-redirect pages of the namespaces WME serves (0, 6, 10,
//!   14). Redirect pages of any namespace are folded. Everything else is
//!   counted as skipped.
//! - Idempotent: an article whose stored index entry already has the dump's
//!   revision is left as it is (its `fetched` time included), and the
//!   fix-up writes only differences, so a re-run leaves the store unchanged.
//! - Writes go through the runtime's store trait in batches ([`Bulk`]), to
//!   the SQLite file of the state directory or to the store a runtime config
//!   names (`--runtime-config-file`, as for `wikiedge up`; Redis works the
//!   same). Next to a running `wikiedge up` on SQLite this is safe: SQLite
//!   serialises writers and the busy timeout waits.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bulk::{Bulk, Target};
use crate::readahead::ReadAhead;
use anyhow::{Context, Result, bail};
use wikiedge_core::article::dump::{DumpPage, DumpReader};
use wikiedge_core::article::layout::{
    Entry, article_key, document, index_key, new_copy, parse_index, to_stored,
};
use wikiedge_core::article::schema::Article;
use wikiedge_core::article::transform::{ProjectContext, article_from_dump};
use wikiedge_core::article::{title, wikitext};
use wikiedge_core::projects::Registry;

/// The key-value store the articles component keeps articles in.
pub(crate) const STORE: &str = wikiedge_core::stores::BULK;
/// The namespaces WME serves articles from.
const NAMESPACES: [i64; 4] = [0, 6, 10, 14];
use wikiedge_core::projects::SITEMATRIX;

/// What to import, and where.
#[derive(Debug, Clone)]
pub struct ImportArgs {
    /// The dump file (`.xml` or `.xml.bz2`).
    pub dump: PathBuf,
    /// The project id (dbname), e.g. `enwiki`; the dump's siteinfo when `None`.
    pub project: Option<String>,
    /// The state directory holding `sqlite_key_value.db` (`.spin` by default).
    pub state_dir: PathBuf,
    /// A runtime config defining the stores (as for `wikiedge up`); the
    /// state directory's SQLite file when `None`.
    pub runtime_config: Option<PathBuf>,
    /// Print progress to stderr.
    pub progress: bool,
}

impl ImportArgs {
    /// Arguments with the defaults: state dir `.spin`, progress on.
    pub fn new(dump: impl Into<PathBuf>, project: Option<String>) -> Self {
        ImportArgs {
            dump: dump.into(),
            project,
            state_dir: PathBuf::from(".spin"),
            runtime_config: None,
            progress: true,
        }
    }
}

impl ImportArgs {
    /// The same arguments with another state directory.
    pub fn with_state_dir(mut self, state_dir: impl Into<PathBuf>) -> Self {
        self.state_dir = state_dir.into();
        self
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    /// Pages read from the dump.
    pub pages: u64,
    /// Article pages imported (written, or already current).
    pub articles: u64,
    /// Of those, articles written (new or changed).
    pub written: u64,
    /// Redirect pages folded into their targets.
    pub redirects: u64,
    /// Pages neither imported nor folded (other namespaces, unreadable;
    /// for WME NDJSON: documents of another project than `--project`).
    pub skipped: u64,
    /// WME NDJSON lines skipped because they are not a WME article.
    pub malformed: u64,
    /// Targets whose redirect list was completed after they were written.
    pub fixed_up: u64,
    /// Bytes of the dump file read.
    pub file_bytes: u64,
    /// Bytes of XML (or NDJSON) parsed (after decompression).
    pub xml_bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl ImportSummary {
    /// A summary of nothing yet.
    pub fn empty() -> Self {
        ImportSummary {
            pages: 0,
            articles: 0,
            written: 0,
            redirects: 0,
            skipped: 0,
            malformed: 0,
            fixed_up: 0,
            file_bytes: 0,
            xml_bytes: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// Pages per second.
    pub fn pages_per_sec(&self) -> f64 {
        self.pages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Megabytes (10^6) of XML parsed per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.xml_bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pages {}, articles {} ({} written), redirects {} ({} targets fixed up), skipped {}, \
             malformed {}, elapsed {:.2}s, {:.0} pages/s, {:.1} MB/s of input ({:.1} MB file)",
            self.pages,
            self.articles,
            self.written,
            self.redirects,
            self.fixed_up,
            self.skipped,
            self.malformed,
            self.elapsed.as_secs_f64(),
            self.pages_per_sec(),
            self.mb_per_sec(),
            self.file_bytes as f64 / 1e6,
        )
    }
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened dump: the XML stream and its byte counters.
struct Opened {
    input: Box<dyn BufRead>,
    file_bytes: Arc<AtomicU64>,
    xml_bytes: Arc<AtomicU64>,
}

/// Opens the dump, decompressing `.bz2`, with byte counters on the file
/// and on the XML. Reading and decompressing run on a thread of their own
/// ([`ReadAhead`]), a few MiB ahead of the parser.
fn open_dump(path: &Path) -> Result<Opened> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let file_bytes = Arc::new(AtomicU64::new(0));
    let xml_bytes = Arc::new(AtomicU64::new(0));
    let file = Counting {
        inner: file,
        count: file_bytes.clone(),
    };
    let xml: Box<dyn Read + Send> = if path.extension().is_some_and(|e| e == "bz2") {
        Box::new(bzip2::read::MultiBzDecoder::new(BufReader::with_capacity(
            1 << 20,
            file,
        )))
    } else {
        Box::new(file)
    };
    let xml = Counting {
        inner: xml,
        count: xml_bytes.clone(),
    };
    let ahead = ReadAhead::spawn(xml, 1 << 20, 4).context("starting the dump reader thread")?;
    Ok(Opened {
        input: Box::new(BufReader::with_capacity(64 << 10, ahead)),
        file_bytes,
        xml_bytes,
    })
}

/// The store the articles component reads, as `wikiedge up --state-dir
/// state_dir [--runtime-config-file runtime_config]` opens it.
pub fn target(state_dir: &Path, runtime_config: Option<&Path>) -> Target {
    Target {
        state_dir: state_dir.to_path_buf(),
        runtime_config: runtime_config.map(Path::to_path_buf),
        label: STORE.to_string(),
    }
}

/// Opens the store the articles component reads.
pub(crate) fn open_store(args: &ImportArgs) -> Result<Bulk> {
    Bulk::open(&target(&args.state_dir, args.runtime_config.as_deref()))
}

/// The project context: the dump's siteinfo, else the site matrix.
fn project_context(
    reader: &DumpReader<Box<dyn BufRead>>,
    project: Option<&str>,
) -> Result<ProjectContext> {
    let language = reader.language().unwrap_or_default().to_string();
    let from_dump = reader
        .siteinfo()
        .and_then(|info| ProjectContext::from_siteinfo(info, &language));
    let registry = || Registry::from_sitematrix(SITEMATRIX).context("embedded site matrix");
    match (from_dump, project) {
        (Some(ctx), None) => Ok(ctx),
        (Some(mut ctx), Some(project)) => {
            if ctx.identifier != project {
                tracing::warn!(
                    "import: the dump says it is {}; importing it as {project}",
                    ctx.identifier
                );
                ctx.identifier = project.to_string();
            }
            if ctx.language.is_empty() {
                ctx.language = registry()?
                    .language_code(project)
                    .map(str::to_string)
                    .unwrap_or_default();
            }
            Ok(ctx)
        }
        (None, Some(project)) => ProjectContext::from_registry(&registry()?, project)
            .with_context(|| format!("unknown project {project}")),
        (None, None) => bail!("the dump has no siteinfo: pass --project"),
    }
}

/// The normalised redirect target of a page, if it is a redirect.
fn redirect_target(page: &DumpPage, first_letter_upper: bool) -> Option<String> {
    let target = page.redirect.clone().or_else(|| {
        let text = page.revision.as_ref()?.text.as_deref()?;
        wikitext::redirect_target(text, &[]).map(|t| t.title)
    })?;
    let target = target.split('#').next().unwrap_or_default();
    title::normalize(target, first_letter_upper).ok()
}

/// The state of one import run.
struct Importer {
    store: Bulk,
    ctx: ProjectContext,
    now: u64,
    /// Target title -> redirect titles, in dump order.
    redirects: BTreeMap<String, Vec<String>>,
    summary: ImportSummary,
}

impl Importer {
    /// Imports one article page (its article and index entry in one batch).
    fn article(&mut self, page: &DumpPage) -> Result<()> {
        let upper = self.ctx.localisation.first_letter_upper;
        let name = title::normalize(&page.title, upper).unwrap_or_else(|_| page.title.clone());
        let redirects = self.redirects.get(&name).cloned().unwrap_or_default();
        let article = match article_from_dump(page, &self.ctx, &redirects) {
            Ok(article) => article,
            Err(err) => {
                tracing::warn!("import: skipping {}: {err}", page.title);
                self.summary.skipped += 1;
                return Ok(());
            }
        };
        let rev = page.revision.as_ref().map_or(0, |r| r.id);
        let key = index_key(&name);
        let mut index = parse_index(self.store.get(&key)?.as_deref());
        self.summary.articles += 1;
        if index
            .get(&self.ctx.identifier)
            .is_some_and(|e| e.rev == rev)
        {
            return Ok(());
        }
        let json = to_stored(&article)?;
        index.insert(
            self.ctx.identifier.clone(),
            Entry {
                rev,
                fetched: self.now,
                retry_at: 0,
                copy: new_copy(rand::random()),
            },
        );
        self.store.set_all([
            (article_key(&self.ctx.identifier, &name), json),
            (key, serde_json::to_vec(&index)?),
        ])?;
        self.summary.written += 1;
        Ok(())
    }

    /// Completes the redirect lists of targets written before their
    /// redirects were seen.
    fn fix_up(&mut self) -> Result<()> {
        for (target, redirects) in &self.redirects {
            let key = article_key(&self.ctx.identifier, target);
            let Some(bytes) = self.store.get(&key)? else {
                continue;
            };
            let Ok(mut article) = serde_json::from_slice::<Article>(document(&bytes)) else {
                continue;
            };
            let current: Vec<&str> = article.redirects.iter().map(|r| r.name.as_str()).collect();
            if current == redirects.iter().map(String::as_str).collect::<Vec<_>>() {
                continue;
            }
            article.redirects = redirects.iter().map(|r| self.ctx.link(r)).collect();
            self.store.set(key, to_stored(&article)?)?;
            self.summary.fixed_up += 1;
        }
        self.store.flush()
    }
}

/// Runs an import; see the module docs.
pub fn run(args: ImportArgs) -> Result<ImportSummary> {
    if crate::import_wme::is_wme(&args.dump)? {
        return crate::import_wme::run(&args);
    }
    let started = Instant::now();
    let Opened {
        input,
        file_bytes,
        xml_bytes,
    } = open_dump(&args.dump)?;
    let reader = DumpReader::new(input)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading {}", args.dump.display()))?;
    let ctx = project_context(&reader, args.project.as_deref())?;
    let store = open_store(&args)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut importer = Importer {
        store,
        ctx,
        now,
        redirects: BTreeMap::new(),
        summary: ImportSummary::empty(),
    };
    let upper = importer.ctx.localisation.first_letter_upper;
    let progress = crate::progress::Progress::new("import", args.progress);
    for page in reader {
        let page = page.map_err(|e| anyhow::anyhow!("{e}")).with_context(|| {
            format!(
                "reading {} after {} pages",
                args.dump.display(),
                importer.summary.pages
            )
        })?;
        importer.summary.pages += 1;
        if let Some(target) = redirect_target(&page, upper) {
            let list = importer.redirects.entry(target).or_default();
            if !list.contains(&page.title) {
                list.push(page.title.clone());
            }
            importer.summary.redirects += 1;
        } else if NAMESPACES.contains(&page.namespace) && page.revision.is_some() {
            importer.article(&page)?;
        } else {
            importer.summary.skipped += 1;
        }
        progress.update(|| {
            let secs = started.elapsed().as_secs_f64();
            format!(
                "{} pages, {} articles, {} redirects ({:.0} pages/s, {:.1} MB/s)",
                importer.summary.pages,
                importer.summary.articles,
                importer.summary.redirects,
                importer.summary.pages as f64 / secs,
                xml_bytes.load(Ordering::Relaxed) as f64 / 1e6 / secs,
            )
        });
    }
    importer.store.flush()?;
    importer.fix_up()?;
    let mut summary = importer.summary;
    summary.file_bytes = file_bytes.load(Ordering::Relaxed);
    summary.xml_bytes = xml_bytes.load(Ordering::Relaxed);
    summary.elapsed = started.elapsed();
    progress.finish(&summary);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wikiedge_core::article::layout::Index;

    fn get(store: &Bulk, key: &str) -> Result<Option<Vec<u8>>> {
        store.get(key)
    }

    /// The state dir's store, as `wikiedge up` would open it.
    fn open(dir: &TempDir) -> Result<Bulk> {
        Bulk::open(&Target::new(dir.path(), STORE))
    }

    /// The real 206-page sample of the fixtures; `None` (the test is
    /// skipped, saying so) without them.
    fn sample() -> Option<PathBuf> {
        wikiedge_tests::fixtures_or_skip().map(|f| f.join("dumps/enwiki-sample-206-pages.xml.bz2"))
    }

    use tempfile::TempDir;

    fn import(dir: &TempDir, sample: &Path) -> Result<ImportSummary> {
        run(ImportArgs {
            dump: sample.into(),
            project: Some("enwiki".into()),
            state_dir: dir.path().to_path_buf(),
            runtime_config: None,
            progress: false,
        })
    }

    fn redirects_of(article: &serde_json::Value) -> Vec<&str> {
        article["redirects"]
            .as_array()
            .map(|list| list.iter().filter_map(|r| r["name"].as_str()).collect())
            .unwrap_or_default()
    }

    fn dump_store(dir: &TempDir) -> Result<Vec<(String, Vec<u8>)>> {
        let mut store = open(dir)?;
        let keys = store.keys("")?;
        let values = store.get_many(&keys)?;
        Ok(keys
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }

    #[test]
    fn imports_the_sample_dump_with_redirects_folded() -> Result<()> {
        let Some(sample) = sample() else {
            return Ok(());
        };
        let dir = TempDir::new().expect("temp dir");
        let summary = import(&dir, &sample)?;
        assert_eq!(
            (
                summary.pages,
                summary.articles,
                summary.redirects,
                summary.skipped
            ),
            (206, 106, 100, 0)
        );
        assert_eq!(summary.written, 106);
        // ANOVA, Analysis of Variance and Astronomers and Astrophysicists
        // come after their targets: two targets completed by the fix-up.
        assert_eq!(summary.fixed_up, 2);
        assert!(summary.xml_bytes > summary.file_bytes);

        let conn = open(&dir)?;
        let json = get(&conn, "article:enwiki:Anarchism")?.expect("Anarchism stored");
        assert!(wikiedge_core::article::layout::is_wrapped(&json));
        let article: serde_json::Value = serde_json::from_slice(document(&json))?;
        assert_eq!(article["name"], "Anarchism");
        assert_eq!(article["version"]["identifier"], 716551092);
        assert_eq!(article["is_part_of"]["identifier"], "enwiki");
        // What the dump knows beyond the text: maintenance tags, the
        // licences of a 2016 revision, the parent revision's id.
        assert_eq!(
            article["version"]["maintenance_tags"],
            serde_json::json!({"citation_needed_count": 3})
        );
        assert_eq!(article["license"][0]["identifier"], "CC-BY-SA-3.0");
        assert_eq!(article["license"][1]["identifier"], "GFDL");
        assert_eq!(article["previous_version"]["identifier"], 714146352);
        // None of Anarchism's redirects is among the sample's 206 pages.
        assert!(redirects_of(&article).is_empty());
        let index: Index =
            serde_json::from_slice(&get(&conn, "article-projects:Anarchism")?.expect("index"))?;
        assert_eq!(index["enwiki"].rev, 716551092);

        // Redirects are folded into their targets, not stored as articles.
        let stored = |title: &str| {
            get(&conn, &title::storage_key("enwiki", title))
                .map(|v| v.map(|v| document(&v).to_vec()))
        };
        let afroasiatic: serde_json::Value =
            serde_json::from_slice(&stored("Afroasiatic languages")?.expect("target stored"))?;
        assert_eq!(
            redirects_of(&afroasiatic),
            ["AfroAsiaticLanguages", "Afro-asiatic languages"]
        );
        assert_eq!(
            afroasiatic["redirects"][0]["url"],
            "https://en.wikipedia.org/wiki/AfroAsiaticLanguages"
        );
        let ayn_rand: serde_json::Value =
            serde_json::from_slice(&stored("Ayn Rand")?.expect("target stored"))?;
        assert_eq!(redirects_of(&ayn_rand), ["AynRand"]);
        assert!(stored("AynRand")?.is_none());
        let anova: serde_json::Value =
            serde_json::from_slice(&stored("Analysis of variance")?.expect("target stored"))?;
        assert_eq!(redirects_of(&anova), ["ANOVA", "Analysis of Variance"]);
        assert!(stored("AccessibleComputing")?.is_none());
        Ok(())
    }

    #[test]
    fn importing_twice_leaves_the_same_store() -> Result<()> {
        let Some(sample) = sample() else {
            return Ok(());
        };
        let dir = TempDir::new().expect("temp dir");
        let first = import(&dir, &sample)?;
        let before = dump_store(&dir)?;
        let second = import(&dir, &sample)?;
        assert_eq!(dump_store(&dir)?, before);
        assert_eq!(
            (
                second.pages,
                second.articles,
                second.redirects,
                second.skipped
            ),
            (first.pages, first.articles, first.redirects, first.skipped)
        );
        assert_eq!((second.written, second.fixed_up), (0, 0));
        // 106 articles and their 106 index records.
        assert_eq!(before.len(), 212);
        Ok(())
    }

    /// Imports the sample and prints the summary; with
    /// `WIKIEDGE_IMPORT_STATE_DIR` set it imports into that state directory
    /// (to serve it with `wikiedge up --state-dir`). Run by hand:
    /// `cargo test -p wikiedge --release --lib import -- --ignored --nocapture`.
    #[test]
    #[ignore = "prints throughput; run by hand"]
    fn reports_throughput_on_the_sample() -> Result<()> {
        let Some(sample) = sample() else {
            return Ok(());
        };
        let dir = TempDir::new().expect("temp dir");
        let state_dir = std::env::var_os("WIKIEDGE_IMPORT_STATE_DIR")
            .map_or_else(|| dir.path().to_path_buf(), PathBuf::from);
        let summary =
            run(ImportArgs::new(sample, Some("enwiki".into())).with_state_dir(state_dir))?;
        println!("{summary}");
        Ok(())
    }
}
