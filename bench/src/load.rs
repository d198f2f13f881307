//! An HTTP/1.1 load generator, closed loop or open loop.
//!
//! `connections` workers each own one keep-alive connection and send the
//! next request only when the previous response body has been read to the
//! end (closed loop: the offered load adapts to the server, so the figure
//! is the server's throughput at that concurrency, wrk-style).
//!
//! Timing: a warm-up phase, then a measured window of `duration`. A request
//! counts when its response *completes* inside the window; its latency is
//! from the moment it was handed to the connection to the last body byte.
//! At the end of the window every in-flight request is abandoned (not
//! counted) and the run returns: it always stops by itself.
//!
//! Open loop (`rate` set): requests arrive at a fixed rate whatever the
//! server does ([`crate::schedule`]). Each connection sends its requests at
//! their due times (or as soon as it is free, if it is behind), and a
//! request's latency runs from when it was *due* (as wrk2 measures, so that
//! a stall shows in every request it delays: no coordinated omission). A
//! request counts when it was due inside the window; one still unanswered
//! when the window closes is recorded with its wait so far (`late_at_end`,
//! a lower bound of its latency). tokio's timer has millisecond resolution:
//! a request may leave up to about 1 ms after it was due, and that lag
//! (reported as `send_lag`) is part of its latency, as a client's queueing
//! would be.
//!
//! Failures: a connection error (connect, send, or a body cut short) is
//! counted and the worker reconnects; a response that announces
//! `Connection: close` makes the worker reconnect without counting an error.
//! Responses with a status outside 2xx/3xx are counted as completed and also
//! reported separately.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderMap, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::schedule;
use crate::stats::{self, Latency};
use crate::timeline::{Second, Timeline};

mod cpu;
mod human;
mod target;
pub use cpu::{LoadCpu, ServerCpu};
use target::Target;

/// What to send, and how hard.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The request method.
    pub method: Method,
    /// An absolute `http://` URL.
    pub url: String,
    /// More request targets on the URL's host (origin-form: `/path?query`).
    /// When there are any, every request goes to one of them instead of the
    /// URL's path: connection `k` of `n` starts at the `k/n`-th of the list
    /// and walks it in order, round and round, so the requests spread
    /// evenly over the list (every path once before any twice, within the
    /// connections' share).
    pub paths: Vec<String>,
    /// Extra request headers.
    pub headers: HeaderMap,
    /// The request body (empty for none).
    pub body: Bytes,
    /// Concurrent connections (= requests in flight).
    pub connections: usize,
    /// The warm-up before measuring.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Load threads, each with its own single-threaded runtime (default:
    /// one per core; never more than the connections).
    pub threads: Option<usize>,
    /// Open loop: this many requests per second over all connections, each
    /// timed from when it was due. `None`: closed loop.
    pub rate: Option<f64>,
    /// The server's process: its CPU time over the measured window, with
    /// its live children's, is reported per request ([`ServerCpu`]).
    pub server_pid: Option<u32>,
}

/// The measured result of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    /// The target.
    pub url: String,
    /// The method.
    pub method: String,
    /// Connections used.
    pub connections: usize,
    /// Warm-up seconds.
    pub warmup_s: f64,
    /// Measured seconds.
    pub duration_s: f64,
    /// Responses completed (body fully read) inside the window.
    pub requests: u64,
    /// `requests / duration_s`.
    pub requests_per_s: f64,
    /// Latency of the completed requests.
    pub latency: Latency,
    /// Completed responses per status code.
    pub status_counts: BTreeMap<u16, u64>,
    /// Completed responses whose status is not 2xx or 3xx.
    pub non_success: u64,
    /// Connection-level errors inside the window (connect, send, body).
    pub errors: u64,
    /// Of `errors`, those that happened while connecting.
    pub connect_errors: u64,
    /// Connection-level errors during the warm-up (not in `errors`).
    pub warmup_errors: u64,
    /// Connections opened over the whole run, warm-up included.
    pub connections_opened: u64,
    /// Response body bytes of the completed requests.
    pub response_bytes: u64,
    /// `response_bytes / duration_s`.
    pub response_bytes_per_s: f64,
    /// Open loop: the arrival rate asked for (requests/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    /// Open loop: requests due in the window still unanswered at its end,
    /// recorded in `latency` with their wait so far.
    #[serde(default)]
    pub late_at_end: u64,
    /// Open loop: how long after its due time each request left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lag: Option<Latency>,
    /// Latency second by second through the measured window, each request
    /// in the second it was due in (open loop) or sent in (closed loop).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Second>,
    /// The same through the warm-up, its seconds counted from the start of
    /// the run: whether a queue the measured window begins with was built
    /// before it. A request is here when it was due in the warm-up (open
    /// loop, even if answered after it) or answered in it (closed loop).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warmup_timeline: Vec<Second>,
    /// With [`LoadConfig::server_pid`]: the server's CPU time in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu: Option<ServerCpu>,
    /// The load generator's own threads' CPU time in the window (`None`
    /// where their clocks cannot be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_cpu: Option<LoadCpu>,
}

/// The phase boundaries of a run.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    measure_from: Instant,
    end: Instant,
}

/// What one worker saw.
struct WorkerStats {
    hist: Histogram<u64>,
    /// Open loop: send time minus due time.
    lag: Histogram<u64>,
    late_at_end: u64,
    timeline: Timeline,
    warmup_timeline: Timeline,
    status_counts: BTreeMap<u16, u64>,
    errors: u64,
    connect_errors: u64,
    warmup_errors: u64,
    connections_opened: u64,
    response_bytes: u64,
}

impl WorkerStats {
    fn new() -> WorkerStats {
        WorkerStats {
            hist: stats::new_histogram(),
            lag: stats::new_histogram(),
            late_at_end: 0,
            timeline: Timeline::default(),
            warmup_timeline: Timeline::default(),
            status_counts: BTreeMap::new(),
            errors: 0,
            connect_errors: 0,
            warmup_errors: 0,
            connections_opened: 0,
            response_bytes: 0,
        }
    }

    fn error(&mut self, window: &Window, connecting: bool) {
        if Instant::now() >= window.measure_from {
            self.errors += 1;
            if connecting {
                self.connect_errors += 1;
            }
        } else {
            self.warmup_errors += 1;
        }
    }
}

async fn connect(addr: &str) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends when the sender is dropped or the peer
    // closes; its error (if any) surfaces through the sender.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Outcome of one request on an open connection.
struct Completed {
    status: u16,
    bytes: u64,
    close: bool,
}

async fn one_request(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<Completed> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let close = resp
        .headers()
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let mut body = resp.into_body();
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            bytes += data.len() as u64;
        }
    }
    Ok(Completed {
        status,
        bytes,
        close,
    })
}

/// Pause after a failed connect, so a dead server is not hammered in a
/// tight loop; never past the end of the run.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// A worker's connection, as [`connected`] leaves it.
enum Connection<'a> {
    /// Open, ready for a request.
    Ready(&'a mut SendRequest<Full<Bytes>>),
    /// The connect failed (counted, paused): try again.
    Retry,
    /// The run's window closed while connecting.
    WindowClosed,
}

/// The worker's open connection, or a new one (counted in
/// `connections_opened`); a failed connect is counted as an error and
/// followed by [`RECONNECT_BACKOFF`].
async fn connected<'a>(
    sender: &'a mut Option<SendRequest<Full<Bytes>>>,
    target: &Target,
    window: &Window,
    st: &mut WorkerStats,
) -> Connection<'a> {
    if sender.is_some() {
        return sender.as_mut().map_or(Connection::Retry, Connection::Ready);
    }
    match timeout_at(window.end, connect(&target.addr)).await {
        Err(_) => Connection::WindowClosed,
        Ok(Ok(s)) => {
            st.connections_opened += 1;
            Connection::Ready(sender.insert(s))
        }
        Ok(Err(_)) => {
            st.error(window, true);
            sleep_until((Instant::now() + RECONNECT_BACKOFF).min(window.end)).await;
            Connection::Retry
        }
    }
}

async fn worker(target: Arc<Target>, window: Window, connections: usize, k: usize) -> WorkerStats {
    let mut st = WorkerStats::new();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut next = target.first_path(k, connections);
    while Instant::now() < window.end {
        let conn = match connected(&mut sender, &target, &window, &mut st).await {
            Connection::Ready(conn) => conn,
            Connection::Retry => continue,
            Connection::WindowClosed => break,
        };
        let req = match target.request(next) {
            Ok(r) => r,
            // The template was validated up front; treat as fatal.
            Err(_) => break,
        };
        next = next.wrapping_add(1);
        let started = Instant::now();
        match timeout_at(window.end, one_request(conn, req)).await {
            // The window closed with this request in flight: not counted.
            Err(_) => break,
            Ok(Err(_)) => {
                st.error(&window, false);
                sender = None;
            }
            Ok(Ok(done)) => {
                let finished = Instant::now();
                let took = finished.duration_since(started);
                if finished >= window.measure_from && finished < window.end {
                    record(&mut st.hist, took);
                    let at = started.saturating_duration_since(window.measure_from);
                    st.timeline.record(at, took);
                    *st.status_counts.entry(done.status).or_default() += 1;
                    st.response_bytes += done.bytes;
                } else if finished < window.measure_from {
                    st.warmup_timeline
                        .record(started.saturating_duration_since(window.start), took);
                }
                if done.close {
                    sender = None;
                }
            }
        }
    }
    st
}

/// One open-loop connection: connection `k` of `connections`, sending its
/// requests at their due times at `rate` requests/s overall.
async fn open_worker(
    target: Arc<Target>,
    window: Window,
    rate: f64,
    connections: usize,
    k: usize,
) -> WorkerStats {
    let mut st = WorkerStats::new();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let measure_from = window.measure_from - window.start;
    let end = window.end - window.start;
    let mut i = 0u64;
    loop {
        let due = schedule::due(rate, connections, k, i);
        if due >= end {
            break;
        }
        sleep_until(window.start + due).await;
        let conn = match connected(&mut sender, &target, &window, &mut st).await {
            Connection::Ready(conn) => conn,
            // The request stays owed; retry after the pause.
            Connection::Retry => continue,
            Connection::WindowClosed => break,
        };
        let first = target.first_path(k, connections);
        let Ok(req) = target.request(first.wrapping_add(i as usize)) else {
            break;
        };
        let sent = Instant::now() - window.start;
        let counted = due >= measure_from;
        match timeout_at(window.end, one_request(conn, req)).await {
            // The window closed with this request in flight: owed.
            Err(_) => break,
            Ok(Err(_)) => {
                st.error(&window, false);
                sender = None;
            }
            Ok(Ok(done)) => {
                let took = schedule::latency(due, Instant::now() - window.start);
                if !counted {
                    st.warmup_timeline.record(due, took);
                } else {
                    record(&mut st.hist, took);
                    st.timeline.record(due - measure_from, took);
                    record(&mut st.lag, sent.saturating_sub(due));
                    *st.status_counts.entry(done.status).or_default() += 1;
                    st.response_bytes += done.bytes;
                }
                if done.close {
                    sender = None;
                }
            }
        }
        i += 1;
    }
    for wait in schedule::owed_at_end(rate, connections, k, i, measure_from, end) {
        record(&mut st.hist, wait);
        st.timeline
            .record((end - wait).saturating_sub(measure_from), wait);
        st.late_at_end += 1;
    }
    st
}

fn record(hist: &mut Histogram<u64>, d: Duration) {
    stats::record(hist, u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
}

/// Runs the load and returns the measured result. Returns after
/// `warmup + duration` (plus task teardown), whatever the server does.
pub async fn run(cfg: &LoadConfig) -> Result<LoadResult> {
    if cfg.connections == 0 {
        return Err(anyhow!("at least one connection is needed"));
    }
    if cfg.duration.is_zero() {
        return Err(anyhow!("the duration must be positive"));
    }
    if let Some(rate) = cfg.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(anyhow!("the rate must be a positive number of requests/s"));
    }
    let target = Arc::new(Target::new(cfg)?);
    target.request(0)?;
    let start = Instant::now();
    let window = Window {
        start,
        measure_from: start + cfg.warmup,
        end: start + cfg.warmup + cfg.duration,
    };
    // One single-threaded runtime per load thread, each driving its share
    // of the connections: a connection's request loop and its hyper
    // connection task then share a thread, with no cross-thread wake-ups
    // (on the 2-core dev box: ~40% more requests/s against `baseline` than
    // one work-stealing runtime).
    let threads = cfg
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, cfg.connections);
    let mut pending = Vec::with_capacity(threads);
    for t in 0..threads {
        let ks: Vec<usize> = (t..cfg.connections).step_by(threads).collect();
        let share = ks.len();
        let (rate, connections) = (cfg.rate, cfg.connections);
        let target = target.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("loadgen-{t}"))
            .spawn(move || {
                let stats = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| {
                        rt.block_on(async {
                            // This thread's own CPU clock over the window.
                            let clock = tokio::spawn(cpu::sample_this_thread(
                                window.measure_from,
                                window.end,
                            ));
                            let tasks: Vec<_> = ks
                                .into_iter()
                                .map(|k| match rate {
                                    None => {
                                        tokio::spawn(worker(target.clone(), window, connections, k))
                                    }
                                    Some(rate) => tokio::spawn(open_worker(
                                        target.clone(),
                                        window,
                                        rate,
                                        connections,
                                        k,
                                    )),
                                })
                                .collect();
                            let mut out = Vec::with_capacity(share);
                            for task in tasks {
                                out.push(task.await.context("load worker panicked")?);
                            }
                            Ok((out, clock.await.ok().flatten()))
                        })
                    });
                let _ = tx.send(stats);
            })
            .context("starting a load thread")?;
        pending.push(rx);
    }
    // The server's CPU clock, read at the window's two ends while the load
    // threads run.
    let sample_cpu = cpu::sample(cfg.server_pid, window.measure_from, window.end);
    let collect = async {
        let mut workers = Vec::with_capacity(cfg.connections);
        // The load threads' CPU, summed; `None` if any clock was unread.
        let mut load_cpu = Some(Duration::ZERO);
        for rx in pending {
            let (stats, cpu) = rx.await.context("load thread died")??;
            workers.extend(stats);
            load_cpu = load_cpu.zip(cpu).map(|(sum, c)| sum + c);
        }
        anyhow::Ok((workers, load_cpu))
    };
    let (server_cpu, collected) = tokio::join!(sample_cpu, collect);
    let (workers, load_cpu) = collected?;
    let mut hist = stats::new_histogram();
    let mut lag = stats::new_histogram();
    let mut timeline = Timeline::default();
    let mut warmup_timeline = Timeline::default();
    let mut result = LoadResult {
        url: cfg.url.clone(),
        method: cfg.method.to_string(),
        connections: cfg.connections,
        warmup_s: cfg.warmup.as_secs_f64(),
        duration_s: cfg.duration.as_secs_f64(),
        ..LoadResult::default()
    };
    for st in workers {
        hist.add(&st.hist)
            .map_err(|e| anyhow!("merging histograms: {e:?}"))?;
        lag.add(&st.lag)
            .map_err(|e| anyhow!("merging histograms: {e:?}"))?;
        result.late_at_end += st.late_at_end;
        timeline.merge(st.timeline);
        warmup_timeline.merge(st.warmup_timeline);
        for (s, n) in st.status_counts {
            *result.status_counts.entry(s).or_default() += n;
        }
        result.errors += st.errors;
        result.connect_errors += st.connect_errors;
        result.warmup_errors += st.warmup_errors;
        result.connections_opened += st.connections_opened;
        result.response_bytes += st.response_bytes;
    }
    result.latency = Latency::of(&hist);
    result.timeline = timeline.seconds();
    result.warmup_timeline = warmup_timeline.seconds();
    // Answered requests (open loop: the latency also holds the owed ones).
    result.requests = result.status_counts.values().sum();
    if cfg.rate.is_some() {
        result.target_rate = cfg.rate;
        result.send_lag = Some(Latency::of(&lag));
    }
    result.non_success = result
        .status_counts
        .iter()
        .filter(|(s, _)| !(200..400).contains(*s))
        .map(|(_, n)| n)
        .sum();
    result.server_cpu =
        server_cpu.map(|(pid, cpu)| ServerCpu::of(pid, cpu, cfg.duration, result.requests));
    result.load_cpu = load_cpu.map(|cpu| LoadCpu::of(threads, cpu, cfg.duration, result.requests));
    result.requests_per_s = result.requests as f64 / result.duration_s;
    result.response_bytes_per_s = result.response_bytes as f64 / result.duration_s;
    Ok(result)
}
