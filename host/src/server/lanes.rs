//! The serving threads: one single-threaded runtime per instance pool of
//! the app ([`crate::shard`]), the connections handed to them, and the
//! turns a request takes on one of them.

use super::send_timeout::SendTimeout;
use super::{ServeOptions, handle};
use crate::app::App;
use crate::idle::Activity;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How long a closing server waits for its instances to retire.
const RETIRE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What one serving thread works with.
pub(super) struct Lane {
    /// Which serving thread: the instance pools it uses
    /// ([`crate::shard::Sharded::get`]).
    pub(super) index: usize,
    /// Every serving thread's turns, this one's at `index`.
    pub(super) turns: Arc<[Turns]>,
    /// Buffered request body memory, in KiB, shared by every thread.
    pub(super) body_kib: Arc<tokio::sync::Semaphore>,
}

/// The requests one serving thread works on at once, and where to run
/// another thread's request on it.
pub(super) struct Turns {
    /// The thread's runtime.
    pub(super) runtime: tokio::runtime::Handle,
    /// One semaphore per component: requests the thread works on at once
    /// (its share of `max_in_flight_per_component`).
    components: std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>,
}

/// An accepted connection on its way to a serving thread, with its
/// connection slot.
struct Accepted {
    stream: std::net::TcpStream,
    client: SocketAddr,
    slot: tokio::sync::OwnedSemaphorePermit,
}

/// The accept loop's handle on a serving thread.
struct LaneHandle {
    connections: tokio::sync::mpsc::UnboundedSender<Accepted>,
    /// Connections open on the thread.
    open: Arc<AtomicUsize>,
    /// Resolves once the thread has finished its connections.
    done: tokio::sync::oneshot::Receiver<()>,
}

/// The serving threads, as the accept loop sees them.
pub(super) struct Lanes {
    handles: Vec<LaneHandle>,
    /// Set once every thread has finished its connections: until then each
    /// keeps running the requests other threads handed it.
    all_done: tokio::sync::watch::Sender<bool>,
}

impl Lanes {
    /// Start one serving thread per instance pool of `app`.
    pub(super) fn start(
        app: &Arc<App>,
        opts: ServeOptions,
        local: SocketAddr,
    ) -> anyhow::Result<Lanes> {
        let threads = app.threads.max(1);
        let body_kib = Arc::new(tokio::sync::Semaphore::new(
            (opts.max_buffered_body_bytes / 1024).clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ));
        let started =
            super::threads::start(threads, "wikiedge-serve-", &super::threads::os_thread)?;
        let turns: Arc<[Turns]> = started
            .iter()
            .enumerate()
            .map(|(index, thread)| Turns {
                runtime: thread.runtime.clone(),
                components: app
                    .components
                    .keys()
                    .map(|id| {
                        let permits =
                            crate::shard::share(opts.max_in_flight_per_component, threads, index);
                        (id.clone(), Arc::new(tokio::sync::Semaphore::new(permits)))
                    })
                    .collect(),
            })
            .collect();
        let (all_done, released) = tokio::sync::watch::channel(false);
        let mut lanes = Vec::with_capacity(threads);
        for (index, thread) in started.into_iter().enumerate() {
            let lane = Lane {
                index,
                turns: turns.clone(),
                body_kib: body_kib.clone(),
            };
            lanes.push(start_lane(
                app.clone(),
                lane,
                thread.work,
                released.clone(),
                local,
                opts,
            )?);
        }
        Ok(Lanes {
            handles: lanes,
            all_done,
        })
    }

    /// Hand an accepted connection, for its whole life, to the serving
    /// thread with the fewest open connections.
    pub(super) fn dispatch(
        &self,
        stream: tokio::net::TcpStream,
        client: SocketAddr,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) {
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot hand over a connection: {e}");
                return;
            }
        };
        let Some(lane) = self
            .handles
            .iter()
            .min_by_key(|l| l.open.load(Ordering::Relaxed))
        else {
            return;
        };
        lane.open.fetch_add(1, Ordering::Relaxed);
        if lane
            .connections
            .send(Accepted {
                stream,
                client,
                slot,
            })
            .is_err()
        {
            lane.open.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("a serving thread has stopped; the connection is closed");
        }
    }

    /// Stop handing out connections, wait until every thread has finished
    /// its in-flight requests, then retire the instances (`activity`'s)
    /// before letting the threads end.
    pub(super) async fn finish(self, activity: &Activity) {
        let mut finished = Vec::with_capacity(self.handles.len());
        for lane in self.handles {
            drop(lane.connections);
            finished.push(lane.done);
        }
        for done in finished {
            // An error means the thread is gone; nothing is left to wait for.
            let _ = done.await;
        }
        // Every request is answered: the instances retire while the
        // threads' runtimes still run (each thread waits for `all_done`).
        // Dropped with its runtime instead, an instance is cancelled, which
        // wasmtime reports to `ReuseState::drop` as "worker panicked".
        activity.close();
        let left = activity.instances_retired(RETIRE_LIMIT).await;
        if left > 0 {
            activity.discard();
            tracing::warn!(
                "shutdown: {left} instance(s) still busy after {RETIRE_LIMIT:?} discarded"
            );
        }
        let _ = self.all_done.send(true);
    }
}

/// Start serving thread `lane.index` by sending it its `work`: it serves the
/// connections sent to it until the sender is dropped, lets their in-flight
/// requests finish, and then keeps running requests other threads handed
/// it until `released` says every thread is done.
fn start_lane(
    app: Arc<App>,
    lane: Lane,
    work: std::sync::mpsc::SyncSender<super::threads::Work>,
    mut released: tokio::sync::watch::Receiver<bool>,
    local: SocketAddr,
    opts: ServeOptions,
) -> anyhow::Result<LaneHandle> {
    let (connections, mut incoming) = tokio::sync::mpsc::unbounded_channel::<Accepted>();
    let (finished, done) = tokio::sync::oneshot::channel();
    let open = Arc::new(AtomicUsize::new(0));
    let counted = open.clone();
    let index = lane.index;
    work.send(Box::new(move |runtime| {
        runtime.block_on(async move {
            let lane = Arc::new(lane);
            let graceful = hyper_util::server::graceful::GracefulShutdown::new();
            // The connections' tasks, so that those still open at shutdown
            // can be cut (aborted: nothing is added to a connection's own
            // polls); finished ones are reaped as they end.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Accepted {
                    stream,
                    client,
                    slot,
                } = tokio::select! {
                    accepted = incoming.recv() => match accepted {
                        Some(accepted) => accepted,
                        None => break,
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                };
                let stream = match tokio::net::TcpStream::from_std(stream) {
                    Ok(s) => s,
                    Err(e) => {
                        counted.fetch_sub(1, Ordering::Relaxed);
                        tracing::warn!("cannot serve a connection: {e}");
                        continue;
                    }
                };
                let app = app.clone();
                let lane = lane.clone();
                let service = hyper::service::service_fn(move |req| {
                    let app = app.clone();
                    let lane = lane.clone();
                    async move {
                        Ok::<_, Infallible>(handle(&app, &lane, req, client, local, opts).await)
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(opts.header_read_timeout)
                    .serve_connection(
                        TokioIo::new(SendTimeout::new(stream, opts.send_timeout)),
                        service,
                    );
                let conn = graceful.watch(conn);
                let counted = counted.clone();
                connections.spawn(async move {
                    let _slot = slot;
                    if let Err(e) = conn.await
                        && !e.is_incomplete_message()
                        && !e.is_timeout()
                    {
                        tracing::debug!("connection error: {e}");
                    }
                    counted.fetch_sub(1, Ordering::Relaxed);
                });
            }
            // Requests in flight finish, and idle connections close; a
            // response still streaming at the deadline (a realtime feed
            // lasts up to 15 minutes) is cut, so a stop takes a bounded
            // time. Its guest sees the connection gone, as when a reader
            // stalls past the send timeout.
            if tokio::time::timeout(opts.shutdown_timeout, graceful.shutdown())
                .await
                .is_err()
            {
                while connections.try_join_next().is_some() {}
                tracing::warn!(
                    "shutdown: {} connection(s) still open after {:?} cut",
                    connections.len(),
                    opts.shutdown_timeout
                );
                connections.shutdown().await;
            }
            let _ = finished.send(());
            // Other threads' connections may still wait on requests
            // they handed to this one, and the instances retire on their
            // threads ([`Lanes::finish`]).
            let _ = released.wait_for(|all| *all).await;
        });
    }))
    .map_err(|_| anyhow::anyhow!("serving thread {index} stopped while starting"))?;
    Ok(LaneHandle {
        connections,
        open,
        done,
    })
}

/// A turn for a request to `component` arriving on `lane`: this thread's
/// if it has one free, else another thread's that has one free (the request
/// then runs on that thread's instances), else the next of this thread's.
/// Returns the serving thread whose instances run the request, and the
/// permit, held until the response head is ready.
pub(super) async fn take_turn(
    lane: &Lane,
    component: &str,
) -> (usize, Option<tokio::sync::OwnedSemaphorePermit>) {
    let own = lane.index;
    let Some(mine) = lane.turns[own].components.get(component) else {
        return (own, None);
    };
    if let Ok(permit) = mine.clone().try_acquire_owned() {
        return (own, Some(permit));
    }
    let others = (1..lane.turns.len()).map(|k| (own + k) % lane.turns.len());
    for other in others {
        if let Some(theirs) = lane.turns[other].components.get(component)
            && let Ok(permit) = theirs.clone().try_acquire_owned()
        {
            crate::metrics::metrics().handed_over();
            return (other, Some(permit));
        }
    }
    (own, mine.clone().acquire_owned().await.ok())
}
