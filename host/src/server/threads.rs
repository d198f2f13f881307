//! Starting the serving threads, each with a runtime it builds, runs and
//! drops itself.
//!
//! A tokio runtime must not be dropped inside another runtime's async
//! context (tokio panics: "Cannot drop a runtime in a context where
//! blocking is not allowed"). The serving threads are started from the
//! main runtime, so if the runtimes were built there and the OS then
//! refused the second thread, the first runtime would be dropped in the
//! main runtime and `wikiedge up` would panic instead of exiting with an
//! error. So each thread builds its own runtime, sends back a handle, and
//! waits for its work; if starting fails, the threads already started are
//! never given any, and each drops its runtime on its own thread.

use std::sync::mpsc;

/// What a started thread runs on its runtime.
pub(super) type Work = Box<dyn FnOnce(&tokio::runtime::Runtime) + Send>;

/// Spawns a named thread running the closure; `std::thread::Builder` in
/// production, a stand-in that can refuse in tests.
pub(super) type Spawn<'a> = &'a dyn Fn(String, Box<dyn FnOnce() + Send>) -> std::io::Result<()>;

/// A started thread: its runtime's handle, and where to send its work.
pub(super) struct Started {
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) work: mpsc::SyncSender<Work>,
}

/// Spawns the thread through `std::thread::Builder`.
pub(super) fn os_thread(name: String, body: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    std::thread::Builder::new().name(name).spawn(body).map(drop)
}

/// Starts `count` threads named `{prefix}{index}`, each with a
/// current-thread runtime of its own. Fails (and the threads already
/// started exit, dropping their runtimes themselves) if a thread cannot be
/// spawned or its runtime cannot be built.
pub(super) fn start(count: usize, prefix: &str, spawn: Spawn) -> anyhow::Result<Vec<Started>> {
    let mut started = Vec::with_capacity(count);
    for index in 0..count {
        let (ready, handle) = mpsc::sync_channel(1);
        let (work, next) = mpsc::sync_channel::<Work>(1);
        spawn(
            format!("{prefix}{index}"),
            Box::new(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                if ready.send(Ok(runtime.handle().clone())).is_err() {
                    return;
                }
                // This runtime is the thread's until it ends: its stores'
                // connections can be its own.
                crate::kv::redis::serve_on_this_thread();
                // No work comes when starting failed: the runtime is then
                // dropped here, on its own thread.
                if let Ok(work) = next.recv() {
                    work(&runtime);
                }
            }),
        )
        .map_err(|e| anyhow::anyhow!("cannot start serving thread {index}: {e}"))?;
        let runtime = match handle.recv() {
            Ok(Ok(runtime)) => runtime,
            Ok(Err(e)) => anyhow::bail!("cannot build serving thread {index}'s runtime: {e}"),
            Err(_) => anyhow::bail!("serving thread {index} stopped while starting"),
        };
        started.push(Started { runtime, work });
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::thread::JoinHandle;

    /// Spawns real threads until `refuse_from`, then refuses as an OS out
    /// of threads would; keeps the handles to join.
    struct Refusing {
        refuse_from: usize,
        joins: Mutex<Vec<JoinHandle<()>>>,
    }

    impl Refusing {
        fn spawn(&self, name: String, body: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
            let mut joins = self.joins.lock().expect("joins");
            if joins.len() >= self.refuse_from {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "Resource temporarily unavailable",
                ));
            }
            joins.push(std::thread::Builder::new().name(name).spawn(body)?);
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_refused_thread_is_an_error_and_the_started_ones_exit() {
        let refusing = Refusing {
            refuse_from: 1,
            joins: Mutex::new(Vec::new()),
        };
        // Started from inside a runtime, as `serve` does: dropping the
        // first thread's runtime here would panic.
        let result = start(2, "test-serve-", &|n, b| refusing.spawn(n, b));
        let err = result.err().expect("the second thread was refused");
        assert!(err.to_string().contains("serving thread 1"), "{err}");
        let joins = std::mem::take(&mut *refusing.joins.lock().expect("joins"));
        assert_eq!(joins.len(), 1);
        for join in joins {
            join.join()
                .expect("the started thread exits without panicking");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_thread_runs_its_work_on_a_runtime_of_its_own() -> anyhow::Result<()> {
        let started = start(2, "test-serve-", &os_thread)?;
        let mut stops = Vec::new();
        for s in &started {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            stops.push(stop);
            s.work
                .send(Box::new(move |rt| {
                    let _ = rt.block_on(stopped);
                }))
                .map_err(|_| anyhow::anyhow!("thread gone"))?;
        }
        // A task spawned through the handle sent back runs on that thread.
        for (index, s) in started.iter().enumerate() {
            let name = s
                .runtime
                .spawn(async { std::thread::current().name().map(str::to_string) })
                .await?;
            assert_eq!(name, Some(format!("test-serve-{index}")));
        }
        for stop in stops {
            stop.send(()).map_err(|_| anyhow::anyhow!("thread gone"))?;
        }
        Ok(())
    }
}
