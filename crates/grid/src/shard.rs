//! The engine's threads. Each shard is one thread running its own single-threaded runtime: the
//! partition actors of its share of the partitions (partition `p` lives on shard
//! `p % shards`), the client connections handed to it, and its [`Committer`]. A request whose
//! connection and partition share a shard never leaves the thread: it is parsed, executed,
//! written with its group and answered there.
//!
//! # Ownership
//! - **Owns** the shard threads and their runtimes. **Started** by
//!   [`Grid`](crate::Grid) before any actor; **stopped** when the grid shuts down or its last
//!   handle is dropped: each runtime is dropped on its own thread (tasks still there, such as
//!   connections, are dropped with it) and the threads are joined, so the store is released.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sessiongrid_model::PartitionId;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tracing::info;

use crate::commit::Committer;

thread_local! {
    /// The shard this thread runs, if it is one.
    static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
}

/// A running shard thread: how to stop it, and its committer, written once more after it stops.
struct Running {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
    committer: Arc<Committer>,
}

pub struct Shards {
    running: Mutex<Vec<Running>>,
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl Shards {
    /// Starts one shard per committer; shard `i` runs `committers[i]`.
    pub fn start(committers: &[Arc<Committer>]) -> std::io::Result<Shards> {
        let mut running = Vec::with_capacity(committers.len());
        let mut handles = Vec::with_capacity(committers.len());
        for (i, committer) in committers.iter().enumerate() {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            let writer = committer.clone();
            let thread =
                std::thread::Builder::new().name(format!("shard-{i}")).spawn(move || {
                    SHARD.with(|s| s.set(Some(i)));
                    runtime.block_on(async move {
                        tokio::spawn(writer.run());
                        let _ = stopped.await;
                    });
                    drop(runtime);
                })?;
            running.push(Running { stop, thread, committer: committer.clone() });
        }
        info!(shards = handles.len(), "engine threads started");
        Ok(Shards { running: Mutex::new(running), handles, next: AtomicUsize::new(0) })
    }

    /// How many engine threads there are.
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// The runtime of the shard partition `p` lives on.
    pub fn of_partition(&self, p: PartitionId) -> &Handle {
        &self.handles[p as usize % self.handles.len()]
    }

    /// The runtime for the next client connection (shards take turns).
    pub fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.handles[i % self.handles.len()]
    }

    /// Stops every shard and waits for the threads, except the caller's own if it is one (that
    /// one ends once the caller's task returns).
    pub fn stop(&self) {
        let running = std::mem::take(&mut *self.running.lock().expect("shards lock"));
        let me = SHARD.with(Cell::get);
        let mut stopping = Vec::with_capacity(running.len());
        for Running { stop, thread, committer } in running {
            let _ = stop.send(());
            stopping.push((thread, committer));
        }
        for (i, (thread, committer)) in stopping.into_iter().enumerate() {
            if me != Some(i) {
                let _ = thread.join();
                // What its partitions made before they stopped (nothing of it was answered).
                committer.flush();
            }
        }
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        self.stop();
    }
}
