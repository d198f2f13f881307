//! `baseline`: a bare native hyper server returning fixed bytes.
//!
//! ```text
//! baseline --body article.json --content-type application/json \
//!          -H 'etag: "123"' --listen 127.0.0.1:8080
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use wikiedge_bench::baseline::{FixedResponse, serve};

/// A bare hyper 1 HTTP/1.1 server answering every request with the same
/// fixed response.
#[derive(Debug, Parser)]
#[command(name = "baseline")]
struct Args {
    /// The file whose bytes are the response body.
    #[arg(long)]
    body: PathBuf,
    /// The `content-type` header.
    #[arg(long, default_value = "application/json")]
    content_type: String,
    /// More response headers, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The response status.
    #[arg(long, default_value_t = 200)]
    status: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let body =
        std::fs::read(&args.body).with_context(|| format!("reading {}", args.body.display()))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&args.content_type)?,
    );
    for h in &args.headers {
        let (name, value) = wikiedge_bench::parse_header(h)?;
        headers.append(name, value);
    }
    let fixed = FixedResponse {
        status: StatusCode::from_u16(args.status)?,
        headers,
        body: body.into(),
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    rt.enable_all().build()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        println!("listening on http://{}", listener.local_addr()?);
        serve(listener, fixed).await
    })
}
