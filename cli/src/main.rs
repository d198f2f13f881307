//! The `wikiedge` command.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use wikiedge_host::app::{App, AppOptions, ReuseLimits, VariableDefaults};
use wikiedge_host::manifest::Manifest;
use wikiedge_host::server::{ServeOptions, serve};

mod heap;
use heap::{HeapArgs, MALLOC_ARENA_MAX, SNAPSHOT_MALLOC_ARENA_MAX};

#[derive(Parser)]
#[command(
    name = "wikiedge",
    version,
    about = "Run the wikiedge Spin application without Spin"
)]
struct Cli {
    /// Log lines as `text` or `json` (one JSON object a line). Which lines:
    /// `RUST_LOG` (default `warn,wikiedge=info`; the access log is target
    /// `wikiedge::access`).
    #[arg(
        long,
        global = true,
        env = "WIKIEDGE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `tracing` to stderr, filtered by `RUST_LOG`.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,wikiedge=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application (like `spin up`).
    Up(UpArgs),
    /// Manage accounts through the running service's admin API.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Load a MediaWiki XML dump (.xml or .xml.bz2), or Wikimedia Enterprise NDJSON
    /// (.ndjson, .ndjson.gz, .tar.gz of NDJSON), into the article store.
    Import {
        /// The dump or NDJSON file.
        dump: PathBuf,
        /// The project id (dbname), e.g. enwiki; defaults to the dump's siteinfo.
        /// For NDJSON: import only this project's documents.
        #[arg(long)]
        project: Option<String>,
        /// The state directory of the store (`wikiedge up --state-dir`).
        #[arg(long, env = "WIKIEDGE_STATE_DIR", default_value = ".spin")]
        state_dir: PathBuf,
        /// A runtime config defining the key-value stores, as for `wikiedge up`
        /// (for example store `default` on Redis); else the state directory's
        /// SQLite file.
        #[arg(long)]
        runtime_config_file: Option<PathBuf>,
        /// Do not print progress.
        #[arg(long)]
        quiet: bool,
    },
    /// Snapshots: `wikiedge snapshot build` writes a project namespace's tar.gz NDJSON.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Follow an EventStreams page_change SSE stream into `/v1/admin/ingest`.
    Follow(FollowArgs),
    /// Write a small MediaWiki XML dump written by this project (.xml, or .xml.bz2
    /// compressed), for trying `import` and the API without downloading one.
    SampleDump {
        /// Where to write it.
        out: PathBuf,
        /// Generated articles to add to the hand-written ones.
        #[arg(long, default_value_t = 0)]
        extra_pages: u32,
    },
    /// Compile a component (its bytes on standard input) into a compiled
    /// code file: what `wikiedge up` runs to keep the compiler's memory out
    /// of the server.
    #[command(hide = true)]
    CompileComponent(wikiedge_cli::compile::CompileArgs),
    /// Run every component's build command (like `spin build`).
    Build {
        /// The manifest.
        #[arg(long = "from", short = 'f', default_value = "spin.toml")]
        from: PathBuf,
        /// Only build these components.
        #[arg(long = "component-id", short = 'c')]
        components: Vec<String>,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Build `{project}_namespace_{ns}` from the article store into the same store.
    Build {
        /// The project id.
        #[arg(long, default_value = "enwiki")]
        project: String,
        /// The namespace number.
        #[arg(long, default_value_t = 0)]
        namespace: i64,
        /// The state directory of the store (`wikiedge up --state-dir`).
        #[arg(long, env = "WIKIEDGE_STATE_DIR", default_value = ".spin")]
        state_dir: PathBuf,
        /// A runtime config defining the key-value stores, as for `wikiedge up`
        /// (for example on Redis); else the state directory's SQLite file.
        #[arg(long)]
        runtime_config_file: Option<PathBuf>,
        /// Bytes of NDJSON per chunk.
        #[arg(long, default_value_t = wikiedge_cli::snapshot::DEFAULT_CHUNK_SIZE)]
        chunk_size: u64,
        /// Do not print progress.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        heap: HeapArgs,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account (`POST /v1/admin/accounts`).
    Create {
        /// The username (case-insensitive).
        #[arg(long)]
        username: String,
        /// The password (or set WIKIEDGE_ACCOUNT_PASSWORD to keep it out of the shell history).
        #[arg(long, env = "WIKIEDGE_ACCOUNT_PASSWORD", hide_env_values = true)]
        password: String,
        /// The plan.
        #[arg(long, default_value = "free")]
        plan: String,
        /// `user` or `admin`.
        #[arg(long, default_value = "user")]
        role: String,
        /// The service's base URL.
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        url: String,
        /// The admin API key (default: SPIN_VARIABLE_ADMIN_API_KEY, then the development key in the state dir).
        #[arg(long, env = "SPIN_VARIABLE_ADMIN_API_KEY", hide_env_values = true)]
        admin_key: Option<String>,
        /// The state dir holding the development keys.
        #[arg(long, env = "WIKIEDGE_STATE_DIR", default_value = ".spin")]
        state_dir: PathBuf,
        /// Also trust the CA certificates in this PEM file (a private CA).
        #[arg(long)]
        ca_cert: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
#[command(after_help = "\
TLS: wikiedge up serves plain HTTP. In production keep --listen on loopback \
and put a TLS-terminating reverse proxy in front, with response buffering off \
for the realtime streams, e.g. Caddy: `reverse_proxy 127.0.0.1:3000 { flush_interval -1 }`, \
or nginx: `proxy_pass http://127.0.0.1:3000; proxy_buffering off;`. \
Full examples: deploy/README.md (\"TLS: behind a reverse proxy\").

Logging: RUST_LOG filters (default warn,wikiedge=info; the access log is \
target wikiedge::access), --log-format json writes one JSON object a line.")]
struct UpArgs {
    /// The manifest.
    #[arg(long = "from", short = 'f', default_value = "spin.toml")]
    from: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "WIKIEDGE_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where the key-value data and development keys live (default: .spin next to the manifest).
    #[arg(long, env = "WIKIEDGE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// A runtime configuration file (key-value stores).
    #[arg(long)]
    runtime_config_file: Option<PathBuf>,
    /// Build the components first.
    #[arg(long)]
    build: bool,
    /// Where compiled code is cached (default: $XDG_CACHE_HOME/wikiedge or ~/.cache/wikiedge).
    #[arg(long, env = "WIKIEDGE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Do not cache compiled code.
    #[arg(long)]
    no_cache: bool,
    /// Do not log one line per request.
    #[arg(long)]
    quiet: bool,
    /// Requests one instance handles before it is retired.
    #[arg(long, default_value_t = ReuseLimits::default().max_requests)]
    max_instance_reuse_count: usize,
    /// Requests one instance handles at the same time.
    #[arg(long, default_value_t = ReuseLimits::default().max_concurrent)]
    max_instance_concurrent_reuse_count: usize,
    /// Seconds an idle instance is kept.
    #[arg(long, default_value_t = ReuseLimits::default().idle_timeout.as_secs())]
    idle_instance_timeout: u64,
    /// MiB of linear memory above which an instance is retired as soon as
    /// it is idle instead of kept for `--idle-instance-timeout`.
    #[arg(long, default_value_t = (ReuseLimits::default().max_idle_memory >> 20) as u64)]
    idle_instance_max_memory_mib: u64,
    /// When key-value writes reach the disk: `interval` (fsync the WAL once
    /// a second; acknowledged writes survive kill -9), `interval:MS`, or `fsync`
    /// (every commit fsynced; acknowledged writes also survive power loss).
    #[arg(long, env = "WIKIEDGE_KV_DURABILITY", default_value = "interval")]
    kv_durability: wikiedge_host::kv::sqlite::Durability,
    /// Requests one component works on at once; more wait in line.
    #[arg(long, env = "WIKIEDGE_MAX_IN_FLIGHT_PER_COMPONENT", default_value_t = ServeOptions::default().max_in_flight_per_component)]
    max_in_flight_per_component: usize,
    /// Also serve Prometheus metrics at http://ADDR/metrics (requests by
    /// component and status, latency, instances, key-value operations).
    #[arg(long, env = "WIKIEDGE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    max_body_bytes: usize,
    /// Report every key-value compare-and-swap as failed after doing it, as
    /// Spin 4.1's Redis store does (for testing the app against that).
    #[arg(long, env = "WIKIEDGE_EMULATE_SPIN_REDIS_CAS")]
    emulate_spin_redis_cas: bool,
    /// Open connections at most; more clients wait in the listen backlog.
    #[arg(long, env = "WIKIEDGE_MAX_CONNECTIONS", default_value_t = ServeOptions::default().max_connections)]
    max_connections: usize,
    /// Seconds a client has to send a request's headers (also the idle
    /// keep-alive timeout).
    #[arg(long, env = "WIKIEDGE_HEADER_READ_TIMEOUT", default_value_t = ServeOptions::default().header_read_timeout.as_secs_f64())]
    header_read_timeout: f64,
    /// Seconds a client has to send a request's body (408 after it).
    #[arg(long, env = "WIKIEDGE_BODY_READ_TIMEOUT", default_value_t = ServeOptions::default().body_read_timeout.as_secs_f64())]
    body_read_timeout: f64,
    /// Request body bytes buffered at once across all connections (503 beyond).
    #[arg(long, env = "WIKIEDGE_MAX_BUFFERED_BODY_BYTES", default_value_t = ServeOptions::default().max_buffered_body_bytes)]
    max_buffered_body_bytes: usize,
    /// Seconds a client may refuse response bytes before its connection is closed.
    #[arg(long, env = "WIKIEDGE_SEND_TIMEOUT", default_value_t = ServeOptions::default().send_timeout.as_secs_f64())]
    send_timeout: f64,
    /// Seconds a stopping host lets responses still open (realtime streams)
    /// run before it cuts their connections.
    #[arg(long, env = "WIKIEDGE_SHUTDOWN_TIMEOUT", default_value_t = ServeOptions::default().shutdown_timeout.as_secs_f64())]
    shutdown_timeout: f64,
    /// Milliseconds of guest CPU time a request may use before its response
    /// head is ready (503 after it).
    #[arg(long, env = "WIKIEDGE_REQUEST_CPU_LIMIT_MS", default_value_t = ReuseLimits::default().cpu_limit.as_millis() as u64)]
    request_cpu_limit_ms: u64,
    /// MiB of linear memory one guest may grow to.
    #[arg(long, env = "WIKIEDGE_MAX_INSTANCE_MEMORY_MIB", default_value_t = (wikiedge_host::engine::MAX_MEMORY >> 20) as u64)]
    max_instance_memory_mib: u64,
    /// Seconds without requests (and without instances coming or going)
    /// after which caches are dropped and free memory is returned to the
    /// kernel; 0: never.
    #[arg(long, env = "WIKIEDGE_IDLE_RELEASE_SECONDS", default_value_t = 5.0)]
    idle_release_seconds: f64,
    #[command(flatten)]
    heap: HeapArgs,
    /// Serving threads, each with its own instances of every component;
    /// 0: one per core.
    #[arg(long, env = "WIKIEDGE_WORKER_THREADS", default_value_t = 0)]
    worker_threads: usize,
}

/// A positive number of seconds from the command line.
fn seconds(name: &str, value: f64) -> Result<std::time::Duration> {
    anyhow::ensure!(
        value.is_finite() && value > 0.0,
        "--{name} must be a positive number of seconds"
    );
    Ok(std::time::Duration::from_secs_f64(value))
}

#[derive(clap::Args)]
struct FollowArgs {
    /// The SSE stream (https:// or http://).
    #[arg(long, default_value = wikiedge_cli::follow::DEFAULT_STREAM)]
    stream: String,
    /// Also trust the CA certificates in this PEM file (a private CA).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// The wikiedge base URL whose /v1/admin/ingest receives the events.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    to: String,
    /// Where the stream cursor is kept.
    #[arg(long, env = "WIKIEDGE_STATE_DIR", default_value = ".spin")]
    state_dir: PathBuf,
    /// Admin key for ingest (`X-Admin-Key`).
    #[arg(long, env = "SPIN_VARIABLE_ADMIN_API_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Ingest key (`X-Ingest-Key`), preferred over the admin key.
    #[arg(long, env = "SPIN_VARIABLE_INGEST_KEY", hide_env_values = true)]
    ingest_key: Option<String>,
    /// Events per forwarded batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Stop after forwarding this many events.
    #[arg(long)]
    max_events: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    max_seconds: Option<u64>,
}

fn follow(args: FollowArgs) -> Result<()> {
    let mut run = wikiedge_cli::follow::FollowArgs::new(args.stream, args.to);
    run.state_dir = args.state_dir;
    run.admin_key = args.admin_key.filter(|k| !k.is_empty());
    run.ingest_key = args.ingest_key.filter(|k| !k.is_empty());
    run.batch = args.batch;
    run.max_events = args.max_events;
    run.max_seconds = args.max_seconds;
    run.ca_cert = args.ca_cert;
    let summary = wikiedge_cli::follow::run(run)?;
    println!("{summary}");
    Ok(())
}

fn sample_dump(out: &std::path::Path, extra_pages: u32) -> Result<()> {
    use std::io::Write;
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let file = std::io::BufWriter::new(file);
    let counts = if out.extension().is_some_and(|e| e == "bz2") {
        let mut bz = bzip2::write::BzEncoder::new(file, bzip2::Compression::default());
        let counts = wikiedge_cli::sample::write(&mut bz, extra_pages)?;
        bz.finish()?.flush()?;
        counts
    } else {
        let mut file = file;
        let counts = wikiedge_cli::sample::write(&mut file, extra_pages)?;
        file.flush()?;
        counts
    };
    tracing::info!(
        "Wrote {} ({} pages: {} articles, {} redirects; project {})",
        out.display(),
        counts.pages,
        counts.articles,
        counts.redirects,
        wikiedge_cli::sample::PROJECT
    );
    Ok(())
}

fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("wikiedge"))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::Snapshot {
        command: SnapshotCommand::Build { heap, .. },
    } = &cli.command
    {
        // A build hands lines and parts between threads: 58-65 MiB at the
        // peak for 10k articles with glibc's arenas, 55-57 with two, 50
        // with one, as fast (BENCHMARKS.md, "One heap arena for the
        // snapshot build").
        heap.bound(SNAPSHOT_MALLOC_ARENA_MAX);
    }
    init_logging(cli.log_format);
    match cli.command {
        Command::Snapshot {
            command:
                SnapshotCommand::Build {
                    project,
                    namespace,
                    state_dir,
                    runtime_config_file,
                    chunk_size,
                    quiet,
                    heap: _,
                },
        } => {
            let mut args = wikiedge_cli::snapshot::SnapshotArgs::new(project);
            args.namespace = namespace;
            args.state_dir = state_dir;
            args.runtime_config = runtime_config_file;
            args.chunk_size = chunk_size;
            args.progress = !quiet;
            let summary = wikiedge_cli::snapshot::run(args)?;
            if quiet {
                println!("{summary}");
            }
            Ok(())
        }
        Command::Build { from, components } => {
            let manifest = Manifest::load(&from)?;
            wikiedge_host::build_cmd::build(&manifest, &components)
        }
        Command::Up(args) => up(args),
        Command::CompileComponent(args) => wikiedge_cli::compile::run(&args),
        Command::SampleDump { out, extra_pages } => sample_dump(&out, extra_pages),
        Command::Account {
            command:
                AccountCommand::Create {
                    username,
                    password,
                    plan,
                    role,
                    url,
                    admin_key,
                    state_dir,
                    ca_cert,
                },
        } => {
            let req = wikiedge_cli::account::CreateAccount {
                admin_key: wikiedge_cli::account::admin_key(admin_key, &state_dir)?,
                url,
                username,
                password,
                plan,
                role,
                ca_cert,
            };
            let created = wikiedge_cli::account::create(&req)?;
            println!("{}", serde_json::to_string_pretty(&created)?);
            Ok(())
        }
        Command::Follow(args) => follow(args),
        Command::Import {
            dump,
            project,
            state_dir,
            runtime_config_file,
            quiet,
        } => {
            let mut args =
                wikiedge_cli::import::ImportArgs::new(dump, project).with_state_dir(state_dir);
            args.runtime_config = runtime_config_file;
            args.progress = !quiet;
            let summary = wikiedge_cli::import::run(args)?;
            if quiet {
                println!("{summary}");
            }
            Ok(())
        }
    }
}

fn up(args: UpArgs) -> Result<()> {
    let started = std::time::Instant::now();
    if args.build {
        let manifest = Manifest::load(&args.from)?;
        wikiedge_host::build_cmd::build(&manifest, &[])?;
    }
    let state_dir = args.state_dir.clone().unwrap_or_else(|| {
        args.from
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."))
            .join(".spin")
    });
    let cache_dir = if args.no_cache {
        None
    } else {
        args.cache_dir.clone().or_else(default_cache_dir)
    };
    args.heap.bound(MALLOC_ARENA_MAX);
    wikiedge_host::engine::quiet_error_backtraces();
    // The requests are served by threads of their own (`server::serve`);
    // this runtime only loads the app, accepts connections and runs the
    // metrics listener and the idle release.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let threads = if args.worker_threads > 0 {
        args.worker_threads
    } else {
        wikiedge_host::shard::default_threads()
    };
    anyhow::ensure!(
        args.max_instance_memory_mib > 0 && args.max_instance_memory_mib <= 4096,
        "--max-instance-memory-mib must be between 1 and 4096"
    );
    let max_memory = (args.max_instance_memory_mib as usize) << 20;
    runtime.block_on(async move {
        let engine = wikiedge_host::engine::engine_with(wikiedge_host::engine::EngineOptions {
            max_memory,
        })?;
        let manifest = Manifest::load(&args.from)?;
        let env = |k: &str| std::env::var(k).ok();
        let dev = wikiedge_cli::devkeys::dev_defaults(&manifest, &state_dir, &env)?;
        let opts = AppOptions {
            manifest: args.from.clone(),
            state_dir: state_dir.clone(),
            runtime_config: args.runtime_config_file.clone(),
            store_defaults: wikiedge_cli::bulk::store_defaults(&state_dir),
            compile_process: wikiedge_cli::compile::process(args.max_instance_memory_mib),
            cache_dir,
            kv_durability: args.kv_durability,
            emulate_spin_redis_cas: args.emulate_spin_redis_cas,
            variable_defaults: VariableDefaults(dev),
            threads,
        };
        let reuse = ReuseLimits {
            max_requests: args.max_instance_reuse_count.max(1),
            max_concurrent: args.max_instance_concurrent_reuse_count.max(1),
            idle_timeout: std::time::Duration::from_secs(args.idle_instance_timeout),
            cpu_limit: std::time::Duration::from_millis(args.request_cpu_limit_ms.max(1)),
            max_memory,
            max_idle_memory: (args.idle_instance_max_memory_mib as usize) << 20,
        };
        let app = App::load(&opts, engine, reuse)?;
        // Loading read every component's bytes and freed them: hand the
        // freed heap back before serving, as a quiet spell does later.
        wikiedge_host::idle::trim_allocator();
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        if let Some(metrics_addr) = args.metrics_listen {
            let metrics = tokio::net::TcpListener::bind(metrics_addr)
                .await
                .with_context(|| format!("cannot listen on {metrics_addr} for metrics"))?;
            tracing::info!(
                "Serving metrics on http://{}/metrics",
                metrics.local_addr()?
            );
            tokio::spawn(wikiedge_host::metrics::serve(metrics));
        }
        tracing::info!("Storing key-value data in {}", state_dir.display());
        tracing::info!(
            "Serving http://{addr} (ready in {:.0} ms)",
            started.elapsed().as_secs_f64() * 1000.0
        );
        tracing::info!("Available routes:");
        for (route, component) in app.router.routes() {
            tracing::info!("  {component}: http://{addr}{route}");
        }
        let app = Arc::new(app);
        let serve_opts = ServeOptions {
            max_body: args.max_body_bytes,
            log_requests: !args.quiet,
            max_in_flight_per_component: args.max_in_flight_per_component,
            max_connections: args.max_connections.max(1),
            header_read_timeout: seconds("header-read-timeout", args.header_read_timeout)?,
            body_read_timeout: seconds("body-read-timeout", args.body_read_timeout)?,
            max_buffered_body_bytes: args.max_buffered_body_bytes,
            send_timeout: seconds("send-timeout", args.send_timeout)?,
            shutdown_timeout: seconds("shutdown-timeout", args.shutdown_timeout)?,
            release_after_idle: if args.idle_release_seconds == 0.0 {
                None
            } else {
                Some(seconds("idle-release-seconds", args.idle_release_seconds)?)
            },
        };
        serve(app, listener, serve_opts, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
