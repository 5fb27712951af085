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

struct Shard {
    handle: Handle,
    committer: Arc<Committer>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

pub struct Shards {
    shards: Mutex<Vec<Shard>>,
    handles: Vec<Handle>,
    committers: Vec<Arc<Committer>>,
    next: AtomicUsize,
}

impl Shards {
    /// Starts one shard per committer.
    pub fn start(committers: Vec<Arc<Committer>>) -> std::io::Result<Shards> {
        let mut shards = Vec::with_capacity(committers.len());
        for (i, committer) in committers.iter().enumerate() {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = runtime.handle().clone();
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
            shards.push(Shard {
                handle,
                committer: committer.clone(),
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        info!(shards = shards.len(), "engine threads started");
        let handles = shards.iter().map(|s| s.handle.clone()).collect();
        Ok(Shards { shards: Mutex::new(shards), handles, committers, next: AtomicUsize::new(0) })
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The runtime of the shard partition `p` lives on.
    pub fn of_partition(&self, p: PartitionId) -> &Handle {
        &self.handles[p as usize % self.handles.len()]
    }

    /// The committer of the shard partition `p` lives on.
    pub fn committer(&self, p: PartitionId) -> &Arc<Committer> {
        &self.committers[p as usize % self.committers.len()]
    }

    /// The runtime for the next client connection (shards take turns).
    pub fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.handles[i % self.handles.len()]
    }

    /// Stops every shard and waits for the threads, except the caller's own if it is one (that
    /// one ends once the caller's task returns).
    pub fn stop(&self) {
        let mut shards = std::mem::take(&mut *self.shards.lock().expect("shards lock"));
        let me = SHARD.with(Cell::get);
        for shard in &mut shards {
            if let Some(stop) = shard.stop.take() {
                let _ = stop.send(());
            }
        }
        for (i, shard) in shards.iter_mut().enumerate() {
            if let Some(thread) = shard.thread.take().filter(|_| me != Some(i)) {
                let _ = thread.join();
                // What its partitions made before they stopped (nothing of it was answered).
                shard.committer.flush();
            }
        }
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        self.stop();
    }
}
