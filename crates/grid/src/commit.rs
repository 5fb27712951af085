//! The commit group of one engine thread: the writes its partition actors made, written to
//! RocksDB together, on that thread, once every task that was ready before has run.
//!
//! # Ownership
//! - **Owns** the queue of commits of the partitions of one [`shard`](crate::shard), and a
//!   clone of the store. Its task ([`Committer::run`]) lives on the shard's thread, like the
//!   partition actors that submit to it; a partition that must read its own writes back from
//!   disk writes the group at once itself ([`Committer::flush`]).
//! - A commit carries a partition's writes of one message (or none) and what to do once they
//!   are on disk: deliver the message's replies, replication and events. Commits are done in
//!   the order they were submitted; a partition whose write failed has nothing written after
//!   it (its later commits fail too) until its actor restarts from disk.
//!
//! Waking the task is a push on the thread's own run queue, and it runs after every task that
//! was ready when it was woken: the group holds the writes of everything that happened in
//! between, as one write-ahead-log append, with no other thread involved. The partitions'
//! metadata goes in one row of the thread's journal ([`MetaJournal`]), not a row per
//! partition.

use std::sync::{Arc, Mutex};

use metrics::Histogram;
use sessiongrid_store::{Batch, MetaJournal, Store, StoreError};
use tokio::sync::Notify;

/// Called once the commit's writes are on disk, or with the reason they are not.
pub type Then = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A partition's writes from the moment its replica made them until they are on disk. Shared
/// by the partition's disk (which adds writes and reads after them) and its actor (which
/// submits them with what they caused).
#[derive(Clone, Default)]
pub struct Pending(Arc<Mutex<PendingInner>>);

#[derive(Default)]
struct PendingInner {
    /// Writes made and not submitted yet.
    batch: Option<Batch>,
    /// Commits submitted and not done yet.
    in_flight: usize,
    /// A commit of this partition failed: memory is ahead of disk.
    failed: Option<StoreError>,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, PendingInner> {
        self.0.lock().expect("pending lock")
    }

    pub fn add(&self, batch: Batch) {
        let mut inner = self.lock();
        match inner.batch.as_mut() {
            Some(earlier) => earlier.extend(batch),
            None => inner.batch = Some(batch),
        }
    }

    /// Nothing waits to be written or is being written: what the partition says now may leave.
    pub fn is_idle(&self) -> bool {
        let inner = self.lock();
        inner.batch.is_none() && inner.in_flight == 0
    }

    /// Idle, and no commit of this partition failed: memory and disk agree.
    pub fn is_settled(&self) -> bool {
        let inner = self.lock();
        inner.batch.is_none() && inner.in_flight == 0 && inner.failed.is_none()
    }

    pub fn has_writes(&self) -> bool {
        self.lock().batch.is_some()
    }

    /// A commit of this partition failed: it must restart from disk.
    pub fn failure(&self) -> Option<StoreError> {
        self.lock().failed.clone()
    }
}

struct Commit {
    pending: Pending,
    batch: Option<Batch>,
    then: Then,
}

/// See the module documentation.
pub struct Committer {
    store: Store,
    /// Where the groups record their partitions' metadata (taken only by `flush`, on the
    /// thread).
    journal: Mutex<MetaJournal>,
    group: Mutex<Vec<Commit>>,
    wake: Notify,
    /// Commits per write.
    groups: Histogram,
}

impl Committer {
    pub fn new(store: Store) -> Committer {
        Committer {
            journal: Mutex::new(store.journal()),
            store,
            group: Mutex::new(Vec::new()),
            wake: Notify::new(),
            groups: metrics::histogram!("sessiongrid_store_group_batches"),
        }
    }

    /// Queues `pending`'s writes (if any) for the next group; `then` runs once they are on
    /// disk, after every commit submitted before.
    pub fn submit(&self, pending: &Pending, then: Then) {
        let batch = {
            let mut inner = pending.lock();
            inner.in_flight += 1;
            inner.batch.take()
        };
        let commit = Commit { pending: pending.clone(), batch, then };
        let mut group = self.group.lock().expect("commit group lock");
        group.push(commit);
        let first = group.len() == 1;
        drop(group);
        if first {
            self.wake.notify_one();
        }
    }

    /// Writes every queued commit now, on this thread, as one write, then runs their `then`s
    /// in order.
    pub fn flush(&self) {
        let mut group = std::mem::take(&mut *self.group.lock().expect("commit group lock"));
        if group.is_empty() {
            return;
        }
        let mut all: Option<Batch> = None;
        for commit in &mut group {
            let batch = commit.batch.take().filter(|_| commit.pending.failure().is_none());
            match (all.as_mut(), batch) {
                (Some(all), Some(batch)) => all.extend(batch),
                (None, batch) => all = batch,
                (Some(_), None) => {}
            }
        }
        let result = all.map_or(Ok(()), |batch| {
            self.store.commit_journaled(batch, &mut self.journal.lock().expect("journal lock"))
        });
        self.groups.record(group.len() as f64);
        for Commit { pending, then, .. } in group {
            let outcome = {
                let mut inner = pending.lock();
                inner.in_flight -= 1;
                if let Err(e) = &result {
                    inner.failed.get_or_insert_with(|| e.clone());
                }
                inner.failed.clone().map_or(Ok(()), Err)
            };
            then(outcome);
        }
    }

    /// Writes the groups as they form, for as long as the thread runs.
    pub async fn run(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiongrid_model::config::Durability;

    /// (tag, succeeded) of every `then` run, in order.
    type Seen = Arc<Mutex<Vec<(u8, bool)>>>;

    fn recorder() -> (Seen, impl Fn(u8) -> Then) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let then = move |tag: u8| -> Then {
            let log = log.clone();
            Box::new(move |r: Result<(), StoreError>| log.lock().unwrap().push((tag, r.is_ok())))
        };
        (seen, then)
    }

    /// Adds a write of row `name` (in partition `p`'s batch) to `pending`.
    fn write(store: &Store, pending: &Pending, p: u16, name: &[u8]) {
        let mut batch = store.batch(p);
        batch.put_extra(name, b"1");
        pending.add(batch);
    }

    #[test]
    fn a_group_is_written_once_and_answered_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        let committer = Committer::new(store.clone());
        let (seen, then) = recorder();
        let (a, b) = (Pending::default(), Pending::default());
        write(&store, &a, 1, b"a");
        committer.submit(&a, then(1));
        committer.submit(&b, then(2));
        write(&store, &a, 2, b"b");
        assert!(!a.is_idle() && !b.is_idle());
        committer.submit(&a, then(3));
        assert!(store.get_extra(b"a").unwrap().is_none(), "nothing written before the flush");
        committer.flush();
        assert_eq!(*seen.lock().unwrap(), vec![(1, true), (2, true), (3, true)]);
        assert!(store.get_extra(b"b").unwrap().is_some());
        assert!(a.is_idle() && b.is_idle());
    }

    #[test]
    fn after_a_failed_commit_nothing_more_of_that_partition_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        let committer = Committer::new(store.clone());
        let (seen, then) = recorder();
        let (bad, good) = (Pending::default(), Pending::default());
        bad.lock().failed = Some(StoreError::Cancelled);
        write(&store, &bad, 1, b"late");
        committer.submit(&bad, then(1));
        write(&store, &good, 2, b"other");
        committer.submit(&good, then(2));
        committer.flush();
        assert_eq!(*seen.lock().unwrap(), vec![(1, false), (2, true)]);
        assert!(store.get_extra(b"late").unwrap().is_none());
        assert!(store.get_extra(b"other").unwrap().is_some());
        // Both are idle now, but only the good one is settled: the failed one's memory is
        // ahead of its disk, so nothing may be read from it before its partition restarts.
        assert!(bad.is_idle() && good.is_idle());
        assert!(!bad.is_settled() && good.is_settled());
    }
}
