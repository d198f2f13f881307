//! `wikiedge follow`: an EventStreams SSE stream forwarded to ingest,
//! resumed after a cut.

use crate::ADMIN_KEY;
use anyhow::Result;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use wikiedge_tests::fixtures_or_skip;

use super::*;

/// A loopback EventStreams: serves `events` as SSE with ids `1..=n`,
/// starting after the request's `Last-Event-ID`; the first connection is
/// cut after `cut` events. Records the `Last-Event-ID` of each request.
fn sse_server(
    events: Vec<String>,
    cut: usize,
) -> Result<(String, Arc<std::sync::Mutex<Vec<String>>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!(
        "http://{}/v2/stream/mediawiki.page_change.v1",
        listener.local_addr()?
    );
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let Ok(clone) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(clone);
            let mut last = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|r| r > 0) && !line.trim().is_empty() {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("last-event-id:") {
                    last = v.trim().to_string();
                }
                line.clear();
            }
            if let Ok(mut seen) = record.lock() {
                seen.push(last.clone());
            }
            let start: usize = last.parse().unwrap_or(0);
            let end = if n == 0 {
                cut.min(events.len())
            } else {
                events.len()
            };
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
            );
            let _ = write!(stream, ": welcome\n\n");
            for (i, event) in events.iter().enumerate().take(end).skip(start) {
                let _ = write!(stream, "event: message\nid: {}\ndata: {event}\n\n", i + 1);
            }
        }
    });
    Ok((url, seen))
}

#[test]
fn follow_forwards_a_stream_and_resumes_after_a_cut() -> Result<()> {
    let Some(fixtures) = fixtures_or_skip() else {
        return Ok(());
    };
    use wikiedge_cli::follow::{FollowArgs, load_cursor, run};
    let wiki = Wiki::start()?;
    let host = app(&wiki, "1", &[])?;
    let auth = account(&host, "follower", "paid")?;
    let events: Vec<String> = fixture_ndjson(&fixtures)?
        .lines()
        .map(str::to_string)
        .collect();
    let total = events.len();
    let (stream_url, seen) = sse_server(events, 5)?;
    let state = wikiedge_tests::TempDir::new("follow")?;

    let mut args = FollowArgs::new(stream_url.clone(), host.url(""));
    args.state_dir = state.path().to_path_buf();
    args.admin_key = Some(ADMIN_KEY.to_string());
    args.batch = 4;
    args.max_events = Some(total as u64);
    args.max_seconds = Some(60);
    let summary = run(args.clone())?;
    assert_eq!(summary.forwarded, total as u64, "{summary:?}");
    assert_eq!(summary.published, 9);
    assert!(summary.connections >= 2);
    assert_eq!(load_cursor(state.path())?, Some(total.to_string()));
    let resumed = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        resumed[..2],
        ["".to_string(), "5".to_string()],
        "{resumed:?}"
    );

    // A second run resumes from the durable cursor: nothing new.
    args.max_events = None;
    args.max_seconds = Some(1);
    let again = run(args)?;
    assert_eq!(again.forwarded, 0);
    let last = seen.lock().map(|s| s.last().cloned()).unwrap_or_default();
    assert_eq!(last, Some(total.to_string()));

    let streamed = all_ndjson(&host, &auth, "")?;
    assert_eq!(streamed.len(), 9);
    Ok(())
}
