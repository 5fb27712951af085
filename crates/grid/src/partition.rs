//! The partition actor: the owner of one partition on this node.
//!
//! # Ownership
//! - **Owns** the partition's [`Partition`] state machine (its replica, the topology it follows)
//!   and, through its [`DiskPartition`], the partition's rows and its memory tier of hot entries.
//!   It lends them, locked, to the request paths of its own thread: a read that needs nothing
//!   from it is answered there ([`read_here`]), and a request of this node or a peer's message
//!   is run there as the actor would run it ([`run_here`], [`peer_here`]); everything else
//!   reaches it as a message.
//! - **Started** by the [`supervisor`](crate::supervisor) at node start, and again by it if the
//!   actor fails; a restarted actor starts from disk (every acknowledged write is there) and is
//!   given the topology control follows.
//! - **Messages**: [`PartitionMsg`]: client requests of this node that could not run on the
//!   spot (of another thread, or met a failed state machine), requests, queries and
//!   replication from peers (straight from the stream readers, when they could not run them
//!   on the spot: [`peer_here`]), topologies from control, its own tick. One at a time, so
//!   every operation on a key is atomic and the partition's writes are totally ordered.
//! - **Runs** on its [`shard`](crate::shard)'s thread, as does the thread's committer.
//! - **Sends** peer messages itself through the transport, answers to the waiting request
//!   path, events to the event bus, and learners in sync to control; but nothing a write caused
//!   before the write is committed. A message's writes and outputs go to the thread's
//!   [`Committer`] together, which delivers the outputs once the writes, and all submitted
//!   before them, are on disk. Meanwhile the actor goes on with its next message (its reads see
//!   its own writes in memory; their answers wait behind the writes all the same), so a hot
//!   key's writes share group commits instead of waiting one by one.
//! - **Exits** when the supervisor stops it at shutdown.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sessiongrid_cluster::replica::Origin;
use sessiongrid_cluster::{Lease, NodeStore, Now, StoreError, Topology};
use sessiongrid_cluster::{Msg, NodeId, Partition, PartitionOutput, PartitionStats, Refusal};
use sessiongrid_model::{Op, PartitionId, Reply};
use tracing::debug_span;

use crate::commit::{Committer, Pending};
use crate::control::ControlMsg;
use crate::disk::{DiskNode, DiskPartition};
use crate::engine::{Shared, Work};

/// How soon after a message a partition with work for its tick (retransmissions, snapshots,
/// requests to time out, the expiry sweep) ticks; one without any does not, until a message
/// gives it some (see [`Partition::next_tick`]).
const TICK_MS: u64 = 20;
/// An idle partition still ticks this often, to see settings that reach it without a message
/// (`DEBUG SET-ACTIVE-EXPIRE`).
const IDLE_TICK_MS: u64 = 1000;

pub enum PartitionMsg {
    /// A client request of this node.
    Local {
        work: Work,
        reply: RpcReplyPort<Result<Reply, Refusal>>,
    },
    /// Client requests of this node, run in order, their writes committed together (a
    /// pipeline's operations on this partition). Once one is refused as "not here", the rest
    /// are refused alike without running, so the caller can send them again in order.
    LocalBatch(Vec<(Work, RpcReplyPort<Result<Reply, Refusal>>)>),
    /// A request, query or replication message from a peer.
    Peer {
        from: NodeId,
        msg: Msg,
    },
    /// A topology control adopted.
    Adopt(Arc<Topology>),
    /// The tick asked for at this monotonic time (a later ask may have replaced it).
    Tick(u64),
    Stats(RpcReplyPort<PartitionStats>),
    /// A commit of this partition failed: memory is ahead of disk.
    Failed(String),
}

enum Delivery {
    Send(NodeId, Msg),
    Reply(RpcReplyPort<Result<Reply, Refusal>>, Result<Reply, Refusal>),
    Events(Vec<sessiongrid_model::session::event::SessionEvent>),
    Notify(bytes::Bytes, sessiongrid_model::notify::Notices),
    Report(sessiongrid_cluster::Report),
}

/// Everything a partition actor needs to start.
#[derive(Clone)]
pub struct PartitionArgs {
    pub id: PartitionId,
    pub shared: Arc<Shared>,
    pub disk: DiskNode,
}

pub struct PartitionActor;

/// What a partition's actor shares with the request paths of its thread: its state machine, its
/// writes on the way to disk and its book. The actor runs each message with them locked; a
/// request path of the same thread answers a read through them when the read needs nothing from
/// the actor ([`read_here`]), and runs this node's other requests through them as the actor
/// would ([`run_here`]). The locks are never waited for: both sides run on the one thread and
/// hold them only between two awaits.
pub(crate) struct Core {
    partition: Mutex<Partition<DiskPartition>>,
    /// The partition's writes not on disk yet, and the group that writes them.
    pending: Pending,
    /// Who waits for which answer, and the tick asked for: what running a message needs
    /// besides the state machine.
    book: Mutex<Book>,
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, Partition<DiskPartition>> {
        // A panic while locked fails the actor, which is restarted with a new core.
        self.partition.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

thread_local! {
    /// The partitions whose actor runs on this thread, by id (a dead actor's no longer
    /// upgrades).
    static HERE: RefCell<Vec<Weak<Core>>> = const { RefCell::new(Vec::new()) };
}

/// The core of partition `p` if its actor runs on this thread.
fn core_here(p: PartitionId) -> Option<Arc<Core>> {
    HERE.with_borrow(|here| here.get(usize::from(p)).and_then(Weak::upgrade))
}

fn register_here(p: PartitionId, core: &Arc<Core>) {
    HERE.with_borrow_mut(|here| {
        let i = usize::from(p);
        if here.len() <= i {
            here.resize_with(i + 1, Weak::new);
        }
        here[i] = Arc::downgrade(core);
    });
}

/// Answers this node's read of `key` in partition `p` at once, without a message to the
/// partition's actor, when the actor runs on this thread and the answer needs nothing from it:
/// what [`Partition::read_now`] says, once nothing of the partition waits for the disk (a read
/// must not show a write before it is on disk) and no commit of it failed. Only reads and
/// operations that mostly change nothing are tried ([`Op::mostly_reads`]: a session read that
/// touches). `None`: send it as a request.
pub(crate) fn read_here(
    p: PartitionId,
    now: Now,
    lease: Lease,
    key: &[u8],
    op: &Op,
) -> Option<Reply> {
    if !op.mostly_reads() {
        return None; // a write, sent as it is without the lookup (the replica checks again)
    }
    let core = core_here(p)?;
    let mut partition = core.partition.try_lock().ok()?;
    // A failed commit leaves memory ahead of disk until the actor, told by the committer,
    // restarts from disk: nothing is read from memory meanwhile.
    if !core.pending.is_settled() {
        return None;
    }
    partition.read_now(now, lease, key, op)
}

/// Runs this node's request in partition `p` on the spot, as the actor would run it, when the
/// actor runs on this thread: no mailbox, no task switch. Its answer comes the usual way, once
/// its writes are on disk (and on the followers that count). It may pass messages already in
/// the actor's mailbox: they are of requests no less concurrent with it (a connection waits for
/// its answers before its next request), topologies, ticks and peers' messages, any of which
/// could have come after it. `Err`: send it to the actor (another thread's partition, or one
/// that failed and waits for its actor to restart from disk).
#[allow(clippy::result_large_err)] // `Err` hands the request back to be sent, moved not copied
pub(crate) fn run_here(
    p: PartitionId,
    work: Work,
) -> Result<tokio::sync::oneshot::Receiver<Result<Reply, Refusal>>, Work> {
    on_the_spot(p, work, |partition, book, now, lease, work| {
        let (tx, rx) = tokio::sync::oneshot::channel();
        book.local(partition, now, lease, work, RpcReplyPort::from(tx));
        rx
    })
}

/// Answers to come, one per request, in order.
pub(crate) type Answers = Vec<tokio::sync::oneshot::Receiver<Result<Reply, Refusal>>>;

/// Runs this node's requests of one pipeline, all in partition `p`, on the spot as [`run_here`]
/// runs one, and as the actor runs a [`PartitionMsg::LocalBatch`]: in order, their writes in
/// one commit, and once one is refused the rest refused without running. `Err`: send them to
/// the actor.
pub(crate) fn run_batch_here(p: PartitionId, works: Vec<Work>) -> Result<Answers, Vec<Work>> {
    on_the_spot(p, works, |partition, book, now, lease, works| {
        let (items, answers) = works
            .into_iter()
            .map(|work| {
                let (tx, rx) = tokio::sync::oneshot::channel();
                ((work, RpcReplyPort::from(tx)), rx)
            })
            .unzip();
        book.batch(partition, now, lease, items);
        answers
    })
}

/// Runs a peer's message for partition `p` on the spot, as the actor would run it, when the
/// actor runs on this thread (a node of one engine thread, whose stream readers run there too):
/// no mailbox, no task switch. A peer's messages for the partition keep their order: each
/// either runs here or, once the state machine failed, goes to the mailbox of an actor about to
/// fail, whose successor starts from disk. `Err`: send it to the actor.
#[allow(clippy::result_large_err)] // `Err` hands the message back to be sent, moved not copied
pub(crate) fn peer_here(p: PartitionId, from: NodeId, msg: Msg) -> Result<(), Msg> {
    on_the_spot(p, msg, |partition, book, now, lease, msg| {
        book.peer(partition, now, lease, from, msg)
    })
}

/// Runs `run` on partition `p`'s state machine and book, then finishes as the actor finishes a
/// message, when the actor runs on this thread and has not failed; else gives `input` back.
#[allow(clippy::result_large_err)] // `Err` hands the input back, moved not copied
fn on_the_spot<I, R>(
    p: PartitionId,
    input: I,
    run: impl FnOnce(&mut Held<'_>, &mut Book, Now, Lease, I) -> R,
) -> Result<R, I> {
    let Some(core) = core_here(p) else { return Err(input) };
    let (Ok(mut partition), Ok(mut book)) = (core.partition.try_lock(), core.book.try_lock())
    else {
        return Err(input);
    };
    if partition.failure().is_some() || core.pending.failure().is_some() {
        return Err(input); // the actor fails on its next message and restarts from disk
    }
    let (now, lease) = (book.shared.clock.now(), book.shared.lease());
    let ran = run(&mut partition, &mut book, now, lease, input);
    if let Err(e) = book.finish(&mut partition, &core.pending, now) {
        // The actor fails on it and restarts from disk; the answers' ports go with it.
        let _ = book.myself.cast(PartitionMsg::Failed(e.0));
    }
    Ok(ran)
}

/// The actor's state: the core it shares with its thread's request paths.
pub struct PartitionState {
    core: Arc<Core>,
}

/// What running a message needs besides the state machine (see [`Core`]).
struct Book {
    shared: Arc<Shared>,
    committer: Arc<Committer>,
    myself: ActorRef<PartitionMsg>,
    /// Local requests waiting for their answer, by the id the state machine knows them by.
    waiting: HashMap<u64, RpcReplyPort<Result<Reply, Refusal>>>,
    next_id: u64,
    /// The tick asked for, if one is on its way.
    tick_at: Option<u64>,
}

impl Actor for PartitionActor {
    type Msg = PartitionMsg;
    type State = PartitionState;
    type Arguments = PartitionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PartitionMsg>,
        mut args: PartitionArgs,
    ) -> Result<PartitionState, ActorProcessingErr> {
        let shared = args.shared;
        let disk = args.disk.partition(args.id);
        let (pending, committer) = (disk.pending(), disk.committer());
        let now = shared.clock.now();
        let partition = Partition::new(args.id, shared.me, shared.cfg.clone(), disk, now);
        let book =
            Book { shared, committer, myself, waiting: HashMap::new(), next_id: 1, tick_at: None };
        let core = Arc::new(Core { partition: Mutex::new(partition), pending, book: book.into() });
        register_here(args.id, &core);
        core.book().ask_tick(&core.lock(), now.mono);
        Ok(PartitionState { core })
    }

    async fn handle(
        &self,
        _myself: ActorRef<PartitionMsg>,
        msg: PartitionMsg,
        state: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        let core = state.core.clone();
        let mut p = core.lock();
        // Memory is ahead of disk (a commit failed, or a request path of this thread left the
        // state machine failed, see [`run_here`]): the supervisor restarts it from disk.
        let failed = match &msg {
            PartitionMsg::Failed(e) => Some(e.clone()),
            _ => p.failure().map(|e| e.0),
        };
        if let Some(e) = failed {
            return Err(format!("partition {}: {e}", p.id()).into());
        }
        let mut book = core.book();
        let now = book.handle(&mut p, msg);
        book.finish(&mut p, &core.pending, now)
            .map_err(|e| format!("partition {}: {}", p.id(), e.0).into())
    }
}

type Held<'a> = MutexGuard<'a, Partition<DiskPartition>>;

impl Book {
    /// Runs one message; returns the time it ran at.
    fn handle(&mut self, p: &mut Held<'_>, msg: PartitionMsg) -> Now {
        let now = self.shared.clock.now();
        let lease = self.shared.lease();
        match msg {
            PartitionMsg::Local { work, reply } => {
                self.local(p, now, lease, work, reply);
            }
            PartitionMsg::LocalBatch(items) => self.batch(p, now, lease, items),
            PartitionMsg::Peer { from, msg } => self.peer(p, now, lease, from, msg),
            PartitionMsg::Adopt(t) => p.adopt(now, t),
            PartitionMsg::Tick(at) => {
                if self.tick_at == Some(at) {
                    self.tick_at = None;
                    let active_expire = self.shared.active_expire.load(Ordering::Relaxed);
                    p.replica().set_active_expire(active_expire);
                    p.tick(now, lease)
                }
            }
            PartitionMsg::Stats(reply) => {
                let _ = reply.send(p.stats());
            }
            PartitionMsg::Failed(_) => {}
        }
        now
    }

    /// Runs a request, query or replication message from peer `from`.
    fn peer(&mut self, p: &mut Held<'_>, now: Now, lease: Lease, from: NodeId, msg: Msg) {
        match msg {
            Msg::Request { id, epoch, expires_at, key, op } => {
                let _span =
                    debug_span!("partition_op", partition = p.id(), op = op.name(), from).entered();
                let origin = Origin::Remote { node: from, id, expires_at };
                p.request(now, lease, origin, epoch, key, op)
            }
            Msg::Query { id, epoch, expires_at, query, .. } => {
                p.query(now, lease, Origin::Remote { node: from, id, expires_at }, epoch, query)
            }
            Msg::Replica { epoch, body, .. } => p.receive(now, lease, from, epoch, body),
            Msg::EventsAck { through, .. } => p.events_acked(now, from, through),
            Msg::Response { .. }
            | Msg::Events(_)
            | Msg::PartitionEvents { .. }
            | Msg::Publish { .. }
            | Msg::NotifyFlags(_)
            | Msg::Membership(_) => {
                tracing::debug!(from, "not a partition's message")
            }
        }
    }

    /// Runs client requests of this node in order; once one is refused, refuses the rest
    /// without running them (they may depend on it).
    fn batch(
        &mut self,
        p: &mut Held<'_>,
        now: Now,
        lease: Lease,
        items: Vec<(Work, RpcReplyPort<Result<Reply, Refusal>>)>,
    ) {
        let mut refused = None;
        for (work, reply) in items {
            if let Some(r) = &refused {
                let _ = reply.send(Err(Refusal::clone(r)));
                continue;
            }
            let id = self.local(p, now, lease, work, reply);
            refused = p.refused_now(id);
        }
    }

    /// Runs a client request of this node; returns the id the state machine knows it by.
    fn local(
        &mut self,
        p: &mut Held<'_>,
        now: Now,
        lease: Lease,
        work: Work,
        reply: RpcReplyPort<Result<Reply, Refusal>>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.waiting.insert(id, reply);
        let (origin, epoch) = (Origin::Local(id), p.epoch());
        match work {
            Work::Op { key, op } => {
                let _span =
                    debug_span!("partition_op", partition = p.id(), op = op.name()).entered();
                p.request(now, lease, origin, epoch, key, op)
            }
            Work::Query { query, .. } => p.query(now, lease, origin, epoch, query),
        }
        id
    }

    /// What follows a message run at `now`: unless it left the state machine failed (memory
    /// ahead of disk: nothing it caused goes out), asks for the next tick and hands its writes
    /// and outputs to the committer.
    fn finish(&mut self, p: &mut Held<'_>, pending: &Pending, now: Now) -> Result<(), StoreError> {
        if let Some(e) = p.failure() {
            return Err(e);
        }
        self.ask_tick(p, now.mono);
        self.release(p, pending);
        Ok(())
    }

    /// Asks for a tick when the partition next has work for one (at most one on its way: a
    /// sooner ask replaces a later one, which is then ignored).
    fn ask_tick(&mut self, p: &Held<'_>, now: u64) {
        let at = p.next_tick().map_or(now + IDLE_TICK_MS, |at| at.max(now + TICK_MS));
        if self.tick_at.is_some_and(|asked| asked <= at) {
            return;
        }
        self.tick_at = Some(at);
        let after = Duration::from_millis(at - now);
        self.myself.send_after(after, move || PartitionMsg::Tick(at));
    }

    /// Hands this message's writes and outputs to the thread's committer; with no write of its
    /// own and none before it still on the way to disk, delivers the outputs at once.
    fn release(&mut self, p: &mut Held<'_>, pending: &Pending) {
        let outputs = self.outputs(p);
        if pending.is_idle() {
            return deliver(&self.shared, p.id(), outputs);
        }
        if outputs.is_empty() && !pending.has_writes() {
            return;
        }
        let (shared, id, actor) = (self.shared.clone(), p.id(), self.myself.clone());
        self.committer.submit(
            pending,
            Box::new(move |result| match result {
                Ok(()) => deliver(&shared, id, outputs),
                Err(e) => {
                    let _ = actor.cast(PartitionMsg::Failed(e.to_string()));
                }
            }),
        );
    }

    /// What the state machine asked for, with local answers matched to their waiting callers.
    fn outputs(&mut self, p: &mut Held<'_>) -> Vec<Delivery> {
        let mut out = Vec::new();
        for output in p.take_outputs() {
            out.push(match output {
                PartitionOutput::Send(to, msg) => Delivery::Send(to, msg),
                PartitionOutput::Reply(id, result) => match self.waiting.remove(&id) {
                    Some(reply) => Delivery::Reply(reply, result),
                    None => continue,
                },
                PartitionOutput::Events(events) => Delivery::Events(events),
                PartitionOutput::Notify(key, notices) => Delivery::Notify(key, notices),
                PartitionOutput::Report(report) => Delivery::Report(report),
            });
        }
        out
    }
}

fn deliver(shared: &Shared, p: PartitionId, outputs: Vec<Delivery>) {
    for output in outputs {
        match output {
            Delivery::Send(to, msg) => shared.transport.send(to, msg),
            Delivery::Reply(reply, result) => {
                let _ = reply.send(result);
            }
            Delivery::Events(events) => shared.events.publish(events),
            Delivery::Notify(key, notices) => shared.notify(&key, notices),
            Delivery::Report(report) => shared.to_control(ControlMsg::Report(p, report)),
        }
    }
}
