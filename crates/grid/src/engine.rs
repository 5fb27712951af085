//! The state a node's actors and request paths share, and the path of a client request: routed
//! by the topology control last published, to the local partition actor or to the primary's
//! node, retried while the answer says "not here yet".
//!
//! # What is shared, and who writes it
//! - `view` (control): the topology the node follows and the one it routes by. Changes only
//!   when control adopts a topology or a merge target moves.
//! - `lease` (control, after every step): until when partitions of which epoch may serve.
//! - `partitions` (the supervisor): the actor of every partition.
//! - `forwards` (request paths and the inbox): requests waiting for a peer's answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ractor::{ActorRef, RpcReplyPort};
use sessiongrid_cluster::events::Inflow;
pub use sessiongrid_cluster::node::Work;
use sessiongrid_cluster::route::{route, Route, RETRY_MS};
use sessiongrid_cluster::{ClusterConfig, Lease, Msg, NodeId, Now, Refusal, Topology};
use sessiongrid_model::notify::{self, Flags, Notices};
use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::{Op, PartitionId, Reply};
use tokio::sync::{oneshot, watch, Notify};

use crate::control::ControlMsg;
use crate::events::EventBus;
use crate::partition::PartitionMsg;
use crate::pubsub::PubSub;
use crate::transport::Transport;

/// The topologies control publishes for request paths.
#[derive(Clone, Default)]
pub struct View {
    /// The topology this node follows.
    pub topology: Option<Arc<Topology>>,
    /// The topology requests are routed by (the other side's while merging into it).
    pub routing: Option<Arc<Topology>>,
}

/// A node's clock: monotonic ms since start for timers and leases, unix ms for deadlines.
pub struct Clock {
    started: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock { started: Instant::now() }
    }

    pub fn now(&self) -> Now {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Now { mono: self.started.elapsed().as_millis() as u64, wall }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Requests forwarded to a peer, waiting for its answer.
pub struct Forwards {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Result<Reply, Refusal>>>>,
}

impl Default for Forwards {
    /// Ids above every one this node used before a restart: a primary drops a request id it
    /// has seen from this node (see `sessiongrid_cluster::dedup`).
    fn default() -> Self {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let first = sessiongrid_cluster::dedup::first_forward_id(wall);
        Forwards { next: AtomicU64::new(first - 1), waiting: Mutex::default() }
    }
}

impl Forwards {
    fn register(&self) -> (u64, oneshot::Receiver<Result<Reply, Refusal>>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().expect("forwards lock").insert(id, tx);
        (id, rx)
    }

    fn forget(&self, id: u64) {
        self.waiting.lock().expect("forwards lock").remove(&id);
    }

    /// A peer's answer to forward `id` (ignored if nobody waits for it any more).
    pub fn answer(&self, id: u64, result: Result<Reply, Refusal>) {
        let waiter = self.waiting.lock().expect("forwards lock").remove(&id);
        if let Some(tx) = waiter {
            let _ = tx.send(result);
        }
    }
}

pub struct Shared {
    pub me: NodeId,
    pub cfg: Arc<ClusterConfig>,
    pub clock: Clock,
    pub view: watch::Sender<View>,
    pub lease: Mutex<Lease>,
    pub partitions: RwLock<Vec<ActorRef<PartitionMsg>>>,
    pub control: OnceLock<ActorRef<ControlMsg>>,
    pub forwards: Forwards,
    pub transport: Arc<dyn Transport>,
    pub events: Arc<EventBus>,
    /// Session events other members sent, as far as delivered (each once per sender).
    pub inflow: Mutex<Inflow>,
    /// Redis pub/sub: this node's subscribers.
    pub pubsub: PubSub,
    /// The keyspace events this node publishes for the writes it applies.
    pub notify_flags: AtomicU16,
    /// Partitions sweep expired keys (`DEBUG SET-ACTIVE-EXPIRE`).
    pub active_expire: std::sync::atomic::AtomicBool,
    /// Fires when an operator asked this node to drain.
    pub drain_requested: Notify,
    /// The Redis door of each peer, as the transport learned it.
    pub directory: crate::directory::Directory,
    /// Requests sent to another node's primary, and refusals routed again.
    pub forwarded: metrics::Counter,
    pub retried: metrics::Counter,
    /// Reads answered by a request path without a message to their partition's actor.
    pub read_at_once: metrics::Counter,
    /// Requests of this node run by a request path in their partition's state machine, without
    /// a message to its actor.
    pub run_at_once: metrics::Counter,
    /// Peers' messages run by the stream reader that received them in their partition's state
    /// machine, without a message to its actor.
    pub peer_at_once: metrics::Counter,
}

impl Shared {
    pub fn lease(&self) -> Lease {
        *self.lease.lock().expect("lease lock")
    }

    pub fn partition(&self, p: PartitionId) -> Option<ActorRef<PartitionMsg>> {
        self.partitions.read().expect("partition table lock").get(p as usize).cloned()
    }

    /// Events of partition `p` that member `from` sent: those not delivered before, and the
    /// version to acknowledge.
    pub fn inflow(
        &self,
        from: NodeId,
        p: PartitionId,
        events: Vec<SessionEvent>,
    ) -> (Vec<SessionEvent>, u64) {
        self.inflow.lock().expect("event inflow lock").receive(from, p, events)
    }

    pub fn to_partition(&self, p: PartitionId, msg: PartitionMsg) {
        if let Some(actor) = self.partition(p) {
            let _ = actor.cast(msg);
        }
    }

    /// A peer's request, query or replication message for partition `p`: run on the spot when
    /// the partition's actor runs on this thread ([`crate::partition::peer_here`]), else sent
    /// to the actor.
    pub fn peer_to_partition(&self, p: PartitionId, from: NodeId, msg: Msg) {
        match crate::partition::peer_here(p, from, msg) {
            Ok(()) => self.peer_at_once.increment(1),
            Err(msg) => self.to_partition(p, PartitionMsg::Peer { from, msg }),
        }
    }

    /// Delivers `message` to this node's subscribers of `channel` and sends it to every other
    /// member for theirs; answers how many subscriptions of this node it reached.
    pub fn publish(&self, channel: Bytes, message: Bytes) -> usize {
        self.to_members(Msg::Publish { channel: channel.clone(), message: message.clone() });
        self.pubsub.deliver(channel, message)
    }

    /// Sends `msg` to every other member of the topology this node follows.
    pub fn to_members(&self, msg: Msg) {
        // Not sent while holding the view: control must never wait for a send to publish one.
        let topology = self.view.borrow().topology.clone();
        let Some(topology) = topology else { return };
        for &member in topology.members.iter().filter(|m| **m != self.me) {
            self.transport.send(member, msg.clone());
        }
    }

    /// Publishes the keyspace events of a write of `key` that the node's flags ask for.
    pub fn notify(&self, key: &[u8], notices: Notices) {
        let flags = Flags(self.notify_flags.load(Ordering::Relaxed));
        for (_, event) in notices.iter().filter(|(class, _)| flags.wants(*class)) {
            let [keyspace, keyevent] = notify::channels(key, event);
            if flags.keyspace() {
                self.publish(keyspace.0, keyspace.1);
            }
            if flags.keyevent() {
                self.publish(keyevent.0, keyevent.1);
            }
        }
    }

    pub fn to_control(&self, msg: ControlMsg) {
        if let Some(control) = self.control.get() {
            let _ = control.cast(msg);
        }
    }

    /// Runs `work` on its partition's primary, wherever it is, retrying refusals that mean
    /// "not here yet" until `request_timeout_ms` has passed.
    pub async fn exec(&self, work: Work) -> Result<Reply, Refusal> {
        let p = work.partition(self.cfg.partitions);
        // The common case first, with a small future: the primary is here and serves.
        let routing = self.view.borrow().routing.clone();
        let (now, lease) = (self.clock.now(), self.lease());
        if let Route::Local = route(self.me, routing.as_ref(), lease, now.mono, p) {
            if let Some(reply) = self.read_here(p, now, lease, &work) {
                return Ok(reply);
            }
            match self.exec_local(p, work.clone()).await {
                Err(r) if r.is_retryable() => self.retried.increment(1),
                result => return result,
            }
        }
        Box::pin(self.exec_routed(p, work)).await
    }

    /// Runs `works`, all of one partition, in order: as one batch of the partition when its
    /// primary is here and serves (their writes then share one commit), else one by one.
    /// Answers in the order given.
    pub async fn exec_many(&self, works: Vec<Work>) -> Vec<Result<Reply, Refusal>> {
        let mut results = Vec::with_capacity(works.len());
        let Some(p) = works.first().map(|w| w.partition(self.cfg.partitions)) else {
            return results;
        };
        debug_assert!(works.iter().all(|w| w.partition(self.cfg.partitions) == p));
        let routing = self.view.borrow().routing.clone();
        let (now, lease) = (self.clock.now(), self.lease());
        let local = matches!(route(self.me, routing.as_ref(), lease, now.mono, p), Route::Local);
        if local {
            // The reads up to the first operation that must go to the actor, answered here.
            for work in &works {
                match self.read_here(p, now, lease, work) {
                    Some(reply) => results.push(Ok(reply)),
                    None => break,
                }
            }
        }
        // The partition actor died with the batch: what it did not answer may have been applied.
        let mut died = false;
        let rest = &works[results.len()..];
        if local && !rest.is_empty() {
            for answer in self.run_batch(p, rest.to_vec()).unwrap_or_default() {
                match answer.await {
                    // This one and every later one were refused without running.
                    Ok(Err(r)) if r.is_retryable() => break,
                    Ok(result) => results.push(result),
                    Err(_) => {
                        died = true;
                        break;
                    }
                }
            }
        }
        for work in works.into_iter().skip(results.len()) {
            let result = if died && !work.read_only() {
                Err(Refusal::Indeterminate)
            } else {
                self.exec(work).await
            };
            results.push(result);
        }
        results
    }

    /// This node's read answered at once, without a message to its partition's actor, when
    /// that actor runs on this thread and needs to do nothing for it
    /// ([`crate::partition::read_here`]).
    fn read_here(&self, p: PartitionId, now: Now, lease: Lease, work: &Work) -> Option<Reply> {
        let Work::Op { key, op } = work else { return None };
        self.counted(crate::partition::read_here(p, now, lease, key, op))
    }

    /// A peer's read forwarded here under its topology of `epoch`, answered at once like this
    /// node's own ([`Shared::read_here`]); not when the peer is ahead of this node's lease
    /// (its partition actor then asks for that topology).
    pub fn read_forwarded(&self, p: PartitionId, epoch: u64, key: &[u8], op: &Op) -> Option<Reply> {
        let (now, lease) = (self.clock.now(), self.lease());
        if epoch > lease.epoch {
            return None;
        }
        self.counted(crate::partition::read_here(p, now, lease, key, op))
    }

    fn counted(&self, answered: Option<Reply>) -> Option<Reply> {
        if answered.is_some() {
            self.read_at_once.increment(1);
        }
        answered
    }

    fn mono_ms(&self) -> u64 {
        self.clock.now().mono
    }

    async fn exec_routed(&self, p: PartitionId, work: Work) -> Result<Reply, Refusal> {
        let deadline = Instant::now() + Duration::from_millis(self.cfg.request_timeout_ms);
        loop {
            let routing = self.view.borrow().routing.clone();
            let result = match route(self.me, routing.as_ref(), self.lease(), self.mono_ms(), p) {
                Route::Local => self.exec_local(p, work.clone()).await,
                Route::Remote { primary, epoch } => {
                    self.forward(primary, epoch, &work, deadline).await
                }
                Route::Wait(why) => Err(why),
                Route::Refuse(why) => return Err(why),
            };
            match result {
                Err(r) if r.is_retryable() => {
                    self.retried.increment(1);
                    let retry = Duration::from_millis(RETRY_MS);
                    if Instant::now() + retry > deadline {
                        return Err(r);
                    }
                    tokio::time::sleep(retry).await;
                }
                result => return result,
            }
        }
    }

    /// Runs `works` in partition `p` of this node as one batch: on the spot when the
    /// partition's actor runs on this thread ([`crate::partition::run_batch_here`]), else as a
    /// message to the actor. `None`: the actor is gone.
    fn run_batch(&self, p: PartitionId, works: Vec<Work>) -> Option<crate::partition::Answers> {
        let items = match crate::partition::run_batch_here(p, works) {
            Ok(answers) => {
                self.run_at_once.increment(answers.len() as u64);
                return Some(answers);
            }
            Err(works) => works,
        };
        let actor = self.partition(p)?;
        let (items, answers): (Vec<_>, Vec<_>) = items
            .into_iter()
            .map(|work| {
                let (tx, rx) = oneshot::channel();
                ((work, RpcReplyPort::from(tx)), rx)
            })
            .unzip();
        actor.cast(PartitionMsg::LocalBatch(items)).ok()?;
        Some(answers)
    }

    /// Runs `work` in partition `p` of this node: on the spot when the partition's actor runs on
    /// this thread ([`crate::partition::run_here`]), else as a message to the actor.
    async fn exec_local(&self, p: PartitionId, work: Work) -> Result<Reply, Refusal> {
        let read_only = work.read_only();
        let rx = match crate::partition::run_here(p, work) {
            Ok(rx) => {
                self.run_at_once.increment(1);
                rx
            }
            Err(work) => {
                let Some(actor) = self.partition(p) else { return Err(Refusal::NotServing) };
                let (tx, rx) = oneshot::channel();
                if actor.cast(PartitionMsg::Local { work, reply: RpcReplyPort::from(tx) }).is_err()
                {
                    return Err(Refusal::NotServing);
                }
                rx
            }
        };
        match rx.await {
            Ok(result) => result,
            // The actor died with the request (it is restarted from disk): a write may or may
            // not have been applied; a read can go again.
            Err(_) if read_only => Err(Refusal::NotServing),
            Err(_) => Err(Refusal::Indeterminate),
        }
    }

    /// Sends `work` to `primary` and waits for its answer, the request's `deadline`, or the
    /// primary leaving the topology (a read is then routed again; a write is indeterminate).
    async fn forward(
        &self,
        primary: NodeId,
        epoch: u64,
        work: &Work,
        deadline: Instant,
    ) -> Result<Reply, Refusal> {
        self.forwarded.increment(1);
        let (id, rx) = self.forwards.register();
        // The primary drops it once the request's deadline has passed (its client has its answer).
        let left = deadline.saturating_duration_since(Instant::now());
        let expires_at = self.clock.now().wall.saturating_add(left.as_millis() as u64);
        self.transport.send(primary, work.clone().forward(id, epoch, expires_at));
        let mut view = self.view.subscribe();
        let timeout = tokio::time::sleep(left);
        tokio::pin!(timeout, rx);
        // No answer says nothing about a write: the primary may have it queued or applied.
        let unanswered = if work.read_only() { Refusal::Timeout } else { Refusal::Indeterminate };
        let result = loop {
            tokio::select! {
                answer = &mut rx => break answer.unwrap_or(Err(unanswered)),
                _ = &mut timeout => break Err(unanswered),
                changed = view.changed() => {
                    let gone = changed.is_err()
                        || view.borrow().topology.as_ref().is_some_and(|t| !t.is_member(primary));
                    if gone {
                        break Err(if work.read_only() { Refusal::NotPrimary } else { Refusal::Indeterminate });
                    }
                }
            }
        };
        self.forwards.forget(id);
        result
    }
}
