//! The group writer: one thread that writes every batch handed to it, gathering all that are
//! waiting into one RocksDB write, so one write-ahead-log append (and, in `power` durability,
//! one fsync) covers many partitions' writes.
//!
//! # Ownership
//! - **Owns** its thread, which holds a clone of the store; **started** by `Store::open`;
//!   **stopped** when the last `Store` handle is dropped (its queue closes; the drop waits for
//!   the thread, so the database is closed when it returns).
//! - A batch's answer says whether the write that carried it succeeded: all of a group succeed
//!   or fail together.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

use rocksdb::WriteBatch;
use tokio::sync::oneshot;

use crate::batch::Batch;
use std::sync::Arc;

use crate::store::{write_now, Inner, StoreError};

/// Most batches written together.
const GROUP_BATCHES_MAX: usize = 1024;

/// Called on the writer thread with the outcome of the write that carried a batch.
pub type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

type Job = (Batch, Done);

pub(crate) struct Writer {
    queue: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub(crate) fn start(store: Arc<Inner>) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(store, rx))
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        Ok(Writer { queue: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)) })
    }

    pub(crate) fn submit(&self, batch: Batch) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        self.submit_then(
            batch,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx
    }

    /// Hands `batch` to the writer; `done` runs on its thread with the outcome (at once with
    /// [`StoreError::Cancelled`] if the writer has stopped).
    pub(crate) fn submit_then(&self, batch: Batch, done: Done) {
        let queue = self.queue.lock().expect("writer queue lock");
        let refused = match queue.as_ref() {
            Some(queue) => queue.send((batch, done)).err().map(|e| e.0 .1),
            None => Some(done),
        };
        drop(queue);
        if let Some(done) = refused {
            done(Err(StoreError::Cancelled));
        }
    }

    /// Closes the queue and waits for the thread to write what is queued and exit.
    pub(crate) fn stop(&self) {
        drop(self.queue.lock().expect("writer queue lock").take());
        if let Some(thread) = self.thread.lock().expect("writer thread lock").take() {
            let _ = thread.join();
        }
    }
}

fn run(store: Arc<Inner>, jobs: Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_BATCHES_MAX {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let mut wb = WriteBatch::default();
        let mut answers = Vec::with_capacity(group.len());
        for (batch, answer) in group {
            batch.write_into(&store.db, &mut wb);
            answers.push(answer);
        }
        let result = write_now(&store, wb);
        metrics::histogram!("sessiongrid_store_group_batches").record(answers.len() as f64);
        metrics::histogram!("sessiongrid_store_write_seconds").record(started.elapsed());
        if result.is_err() {
            metrics::counter!("sessiongrid_store_write_errors_total").increment(1);
        }
        for done in answers {
            done(result.clone());
        }
    }
}
