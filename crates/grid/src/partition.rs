//! The partition actor: the single writer of one partition on this node.
//!
//! # Ownership
//! - **Owns** the partition's [`EntryCache`] (hot entries) and its [`PartitionMeta`] (key count,
//!   write sequence). Disk holds every entry; the cache is a subset that always equals disk.
//! - **Started** by the [`supervisor`](crate::supervisor) at node start, and again by it if the
//!   actor fails; a restarted actor begins with an empty cache and reloads its metadata from disk.
//! - **Messages**: [`PartitionMsg`]. One message at a time, so every operation on a key is atomic
//!   and writes to a partition are totally ordered by `seq`.
//! - **Exits** when the supervisor stops it at shutdown.
//!
//! # Write path
//! Load the entry (cache, else disk), [`apply`] the operation, and if it changed write entry,
//! expiry-index row and metadata in one batch. The reply is sent only after the batch is durable.
//! If the disk refuses, the change is dropped from memory too and the client gets the error.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use metrics::{Counter, Gauge};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sessiongrid_model::apply::apply;
use sessiongrid_model::reply::Reply;
use sessiongrid_model::session::event::{self, Before, SessionEvent};
use sessiongrid_model::{time, Entry, KeyFilter, Op, PartitionId, Value};
use sessiongrid_store::{PartitionMeta, Store, StoreError};
use tracing::{debug_span, warn, Instrument};

use crate::cache::EntryCache;
use crate::events::EventBus;

pub enum PartitionMsg {
    /// Run one operation on one key.
    Exec { key: Bytes, op: Op, reply: RpcReplyPort<Result<Reply, StoreError>> },
    /// Keys matching an optional glob and type name, skipping expired ones.
    Keys { filter: KeyFilter, reply: RpcReplyPort<Result<Vec<Bytes>, StoreError>> },
    /// Key counts, as `DBSIZE` and `INFO` report them.
    Count { reply: RpcReplyPort<PartitionMeta> },
    /// Delete every key.
    Flush { reply: RpcReplyPort<Result<(), StoreError>> },
    /// Delete keys whose deadline has passed (sent by the actor's own timer).
    Sweep,
}

/// Everything a partition actor needs to start.
#[derive(Clone)]
pub struct PartitionArgs {
    pub id: PartitionId,
    pub store: Store,
    pub cache_bytes_max: usize,
    pub value_bytes_max: usize,
    pub sweep_interval: Duration,
    pub sweep_keys_max: usize,
    pub events: Arc<EventBus>,
}

pub struct Partition;

pub struct PartitionState {
    args: PartitionArgs,
    cache: EntryCache,
    meta: PartitionMeta,
    metrics: PartitionMetrics,
}

/// Handles to the node-wide series this partition contributes to.
struct PartitionMetrics {
    cached_bytes: Gauge,
    cached_entries: Gauge,
    evictions: Counter,
    expired: Counter,
    disk_reads: Counter,
}

impl PartitionMetrics {
    fn new() -> Self {
        PartitionMetrics {
            cached_bytes: metrics::gauge!("sessiongrid_memory_entries_bytes"),
            cached_entries: metrics::gauge!("sessiongrid_memory_entries"),
            evictions: metrics::counter!("sessiongrid_memory_evictions_total"),
            expired: metrics::counter!("sessiongrid_expired_keys_total"),
            disk_reads: metrics::counter!("sessiongrid_store_entry_reads_total"),
        }
    }
}

impl Actor for Partition {
    type Msg = PartitionMsg;
    type State = PartitionState;
    type Arguments = PartitionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PartitionMsg>,
        args: PartitionArgs,
    ) -> Result<PartitionState, ActorProcessingErr> {
        let meta = args.store.partition_meta(args.id)?;
        myself.send_interval(args.sweep_interval, || PartitionMsg::Sweep);
        Ok(PartitionState {
            cache: EntryCache::new(args.cache_bytes_max),
            args,
            meta,
            metrics: PartitionMetrics::new(),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<PartitionMsg>,
        state: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        state.account_cache(|cache| cache.clear());
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PartitionMsg>,
        msg: PartitionMsg,
        state: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PartitionMsg::Exec { key, op, reply } => {
                let span = debug_span!("partition_op", partition = state.args.id, op = op.name());
                let result = state.exec(key, op).instrument(span).await;
                let _ = reply.send(result);
            }
            PartitionMsg::Keys { filter, reply } => {
                let _ = reply.send(state.keys(&filter));
            }
            PartitionMsg::Count { reply } => {
                let _ = reply.send(state.meta);
            }
            PartitionMsg::Flush { reply } => {
                let _ = reply.send(state.flush().await);
            }
            PartitionMsg::Sweep => match state.sweep().await {
                // A full batch means more may be due: continue after queued client requests.
                Ok(swept) if swept == state.args.sweep_keys_max => {
                    let _ = myself.cast(PartitionMsg::Sweep);
                }
                Ok(_) => {}
                Err(e) => warn!(partition = state.args.id, error = %e, "expiry sweep failed"),
            },
        }
        Ok(())
    }
}

impl PartitionState {
    /// The entry of `key`, from the cache (removing it there) or from disk.
    fn load(&mut self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        if let Some(entry) = self.account_cache(|cache| cache.take(key)) {
            return Ok(Some(entry));
        }
        self.metrics.disk_reads.increment(1);
        self.args.store.get(self.args.id, key)
    }

    /// Runs `f` on the cache and reports the change in cached bytes and entries.
    fn account_cache<T>(&mut self, f: impl FnOnce(&mut EntryCache) -> T) -> T {
        let (bytes, len) = (self.cache.bytes(), self.cache.len());
        let out = f(&mut self.cache);
        self.metrics.cached_bytes.increment(self.cache.bytes() as f64 - bytes as f64);
        self.metrics.cached_entries.increment(self.cache.len() as f64 - len as f64);
        out
    }

    fn cache_insert(&mut self, key: Bytes, entry: Entry) {
        let evicted = self.account_cache(|cache| cache.insert(key, entry));
        self.metrics.evictions.increment(evicted as u64);
    }

    async fn exec(&mut self, key: Bytes, op: Op) -> Result<Reply, StoreError> {
        let mut slot = self.load(&key)?;
        if let Some(too_big) = self.check_size(&op, slot.as_ref()) {
            if let Some(entry) = slot {
                self.cache_insert(key, entry);
            }
            return Ok(too_big);
        }
        let before = slot.as_ref().map(|e| e.expire_at_ms);
        let was_session = slot.as_ref().is_some_and(Entry::is_session);
        let session_before = Before::of(&key, slot.as_ref());
        let now = time::now_ms();
        let outcome = apply(op, &mut slot, now);
        if outcome.changed {
            if before.flatten().is_some_and(|at| at < now) && slot.is_none() {
                self.metrics.expired.increment(1);
            }
            self.persist(&key, before, was_session, &mut slot).await?;
            let events = event::derive(&key, &session_before, slot.as_ref(), now);
            self.publish(events);
        }
        if let Some(entry) = slot {
            self.cache_insert(key, entry);
        }
        Ok(outcome.reply)
    }

    /// Stamps events with this partition's last write and publishes them.
    fn publish(&self, mut events: Vec<SessionEvent>) {
        if events.is_empty() {
            return;
        }
        for e in &mut events {
            (e.partition, e.version) = (self.args.id, self.meta.seq);
        }
        self.args.events.publish(events);
    }

    /// Refuses an `APPEND` that would grow a string past `value_bytes_max`.
    fn check_size(&self, op: &Op, current: Option<&Entry>) -> Option<Reply> {
        let Op::Append { value } = op else { return None };
        let len = match current {
            Some(e @ Entry { value: Value::Str(s), .. }) if !e.is_expired(time::now_ms()) => {
                s.len()
            }
            _ => 0,
        };
        (len + value.len() > self.args.value_bytes_max)
            .then(|| Reply::error("ERR string exceeds maximum allowed size (value_bytes_max)"))
    }

    /// Writes the new state of `key` (`slot`, where `before` was its previous expiry or `None` if
    /// it was absent). On failure the key is dropped from memory, so the next read sees disk.
    async fn persist(
        &mut self,
        key: &[u8],
        before: Option<Option<u64>>,
        was_session: bool,
        slot: &mut Option<Entry>,
    ) -> Result<(), StoreError> {
        let mut meta = self.meta;
        meta.seq += 1;
        let is_session = slot.as_ref().is_some_and(Entry::is_session);
        meta.sessions = (meta.sessions + is_session as u64).saturating_sub(was_session as u64);
        let mut batch = self.args.store.batch(self.args.id);
        let old_expiry = before.flatten();
        let new_expiry = slot.as_ref().and_then(|e| e.expire_at_ms);
        meta.expiring = (meta.expiring + new_expiry.is_some() as u64)
            .saturating_sub(old_expiry.is_some() as u64);
        match slot.as_mut() {
            Some(entry) => {
                entry.version = meta.seq;
                batch.put(key, entry, old_expiry);
                meta.keys += before.is_none() as u64;
            }
            None => {
                batch.delete(key, old_expiry);
                meta.keys = meta.keys.saturating_sub(before.is_some() as u64);
            }
        }
        batch.set_meta(&meta);
        match self.args.store.commit(batch).await {
            Ok(()) => {
                self.meta = meta;
                Ok(())
            }
            Err(e) => {
                *slot = None;
                Err(e)
            }
        }
    }

    fn keys(&mut self, filter: &KeyFilter) -> Result<Vec<Bytes>, StoreError> {
        let now = time::now_ms();
        let mut keys = Vec::new();
        self.args.store.for_each(self.args.id, |key, entry| {
            if filter.accepts(key, &entry, now) {
                keys.push(Bytes::copy_from_slice(key));
            }
            true
        })?;
        Ok(keys)
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        let meta = PartitionMeta { seq: self.meta.seq + 1, ..PartitionMeta::default() };
        self.args.store.clear(self.args.id, &meta).await?;
        self.meta = meta;
        self.account_cache(|cache| cache.clear());
        Ok(())
    }

    /// Deletes up to `sweep_keys_max` keys whose deadline has passed, in one batch; returns how
    /// many index rows it processed.
    async fn sweep(&mut self) -> Result<usize, StoreError> {
        let now = time::now_ms();
        // An entry lives through the millisecond of its deadline, so only earlier rows are due.
        let due = self.args.store.due_expiries(
            self.args.id,
            now.saturating_sub(1),
            self.args.sweep_keys_max,
        )?;
        let rows = due.len();
        let mut meta = self.meta;
        let store = self.args.store.clone();
        let mut batch = store.batch(self.args.id);
        let mut expired = 0;
        let mut events = Vec::new();
        for (at, key) in due {
            let key = Bytes::from(key);
            let slot = self.load(&key)?;
            match slot.as_ref().and_then(|e| e.expire_at_ms) {
                Some(deadline) if deadline < now => {
                    events.extend(event::derive(&key, &Before::of(&key, slot.as_ref()), None, now));
                    if slot.as_ref().is_some_and(Entry::is_session) {
                        meta.sessions = meta.sessions.saturating_sub(1);
                    }
                    // Taken out of the cache by `load`; disk follows when the batch commits.
                    batch.delete(&key, Some(deadline));
                    meta.keys = meta.keys.saturating_sub(1);
                    meta.expiring = meta.expiring.saturating_sub(1);
                    expired += 1;
                }
                _ => {
                    // The row is due but its key is live or gone: the row is stale (the deadline
                    // moved or the key was deleted), so drop it.
                    batch.unindex(&key, Some(at));
                    if let Some(entry) = slot {
                        self.cache_insert(key, entry);
                    }
                }
            }
        }
        if expired > 0 {
            meta.seq += 1;
            batch.set_meta(&meta);
        }
        store.commit(batch).await?;
        self.meta = meta;
        self.metrics.expired.increment(expired);
        self.publish(events);
        Ok(rows)
    }
}
