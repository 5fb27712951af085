//! Cluster mode: the protocol's [`Node`] runs on a thread of its own, fed by the doors (client
//! requests), the transport (peer messages) and a 10 ms tick. Its RocksDB writes block only that
//! thread, never the async runtime.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sessiongrid_cluster::{
    ClusterConfig, Msg, Node, NodeId, Now, Output, Query, Refusal, Topology,
};
use sessiongrid_model::{Op, PartitionId, Reply};
use sessiongrid_store::Store;
use tokio::sync::{oneshot, Notify};
use tracing::{info, warn, Instrument};

use crate::disk::DiskNode;
use crate::error::GridError;
use crate::events::EventBus;

const TICK: Duration = Duration::from_millis(10);
/// How long a node that handed everything over keeps answering before it stops.
const LINGER: Duration = Duration::from_millis(500);
/// How often the cluster gauges are refreshed.
const GAUGES: Duration = Duration::from_secs(1);
/// Most commands handled before the node's outputs are flushed.
const BATCH_MAX: usize = 512;

/// How the node reaches its peers; libp2p in the binary.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, to: NodeId, msg: Msg);
}

/// A snapshot of the node's view of the cluster, for `INFO` and the admin API.
#[derive(Clone, Debug, Default)]
pub struct ClusterStatus {
    pub node: NodeId,
    pub epoch: u64,
    pub coordinator: NodeId,
    pub members: Vec<NodeId>,
    /// Partitions this node is primary of / holds a copy of.
    pub primaries: usize,
    pub copies: usize,
    /// Partitions whose target owners are not all in sync yet (cluster-wide).
    pub moving: usize,
    pub lease: bool,
    /// The whole partition table this node follows.
    pub topology: Option<Arc<Topology>>,
    /// Live sessions in the partitions this node is primary of, and in its backup copies.
    pub sessions_primary: u64,
    pub sessions_backup: u64,
    /// The most writes any follower of this node's primaries still lacks.
    pub replication_lag: u64,
    /// Nodes that are gone but still own partitions (see `sessiongrid forget`).
    pub lost: Vec<NodeId>,
    /// Partitions none of whose owners is a member: unavailable until one comes back.
    pub unowned: usize,
}

enum Command {
    Request {
        key: Bytes,
        op: Op,
        reply: oneshot::Sender<Result<Reply, Refusal>>,
    },
    Query {
        partition: PartitionId,
        query: Query,
        reply: oneshot::Sender<Result<Reply, Refusal>>,
    },
    Message {
        from: NodeId,
        msg: Msg,
    },
    Seed(NodeId),
    Status(oneshot::Sender<ClusterStatus>),
    /// Hand every partition over; answered once the node holds none.
    Leave(oneshot::Sender<()>),
    /// Ask a node (this one or another) to drain.
    Drain(NodeId),
    /// Give up a lost node for good.
    Forget(NodeId),
    Stop,
}

/// Where the transport delivers what peers send. Cheap to clone.
#[derive(Clone)]
pub struct Inbox(Sender<Command>);

impl Inbox {
    pub fn message(&self, from: NodeId, msg: Msg) {
        let _ = self.0.send(Command::Message { from, msg });
    }

    /// The transport resolved a `--join` address to this node.
    pub fn seed(&self, node: NodeId) {
        let _ = self.0.send(Command::Seed(node));
    }
}

/// The receiving end of an [`Inbox`], consumed by [`ClusterNode::start`].
pub struct Outlet(Receiver<Command>);

pub fn inbox() -> (Inbox, Outlet) {
    let (tx, rx) = mpsc::channel();
    (Inbox(tx), Outlet(rx))
}

pub struct ClusterNode {
    inbox: Inbox,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Fires when an operator asked this node to drain.
    drain_requested: Arc<Notify>,
}

pub struct ClusterArgs {
    pub store: Store,
    pub id: NodeId,
    pub config: ClusterConfig,
    /// Seeds were given, so the node waits to join rather than founding a cluster.
    pub joining: bool,
    pub transport: Arc<dyn Transport>,
    pub events: Arc<EventBus>,
}

impl ClusterNode {
    pub fn start(args: ClusterArgs, (inbox, outlet): (Inbox, Outlet)) -> Result<Self, GridError> {
        let drain_requested = Arc::new(Notify::new());
        let notify = drain_requested.clone();
        let thread = std::thread::Builder::new()
            .name("grid-node".into())
            .spawn(move || run(args, outlet.0, notify))
            .map_err(|e| GridError::Start(e.to_string()))?;
        Ok(ClusterNode { inbox, thread: Mutex::new(Some(thread)), drain_requested })
    }

    /// Asks `node` (this one included) to hand its partitions over and stop.
    pub fn request_drain(&self, node: NodeId) -> Result<(), GridError> {
        self.send(Command::Drain(node))
    }

    /// Gives up lost node `node` for good: partitions only it held start empty.
    pub fn forget(&self, node: NodeId) -> Result<(), GridError> {
        self.send(Command::Forget(node))
    }

    /// Resolves when an operator asked this node to drain.
    pub async fn drain_requested(&self) {
        self.drain_requested.notified().await
    }

    pub async fn exec(&self, key: Bytes, op: Op) -> Result<Reply, GridError> {
        let span = tracing::debug_span!("grid_op", op = op.name());
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request { key, op, reply })?;
        let answer = rx.instrument(span).await;
        answer.map_err(|_| GridError::Cluster(Refusal::Timeout))?.map_err(GridError::Cluster)
    }

    /// Runs `query` on every partition in `partitions` at once; answers in the same order.
    pub async fn query_all(
        &self,
        partitions: impl IntoIterator<Item = PartitionId>,
        query: Query,
    ) -> Vec<Result<Reply, GridError>> {
        let mut pending = Vec::new();
        for partition in partitions {
            let (reply, rx) = oneshot::channel();
            let sent = self.send(Command::Query { partition, query: query.clone(), reply });
            pending.push(sent.map(|()| rx));
        }
        let mut answers = Vec::with_capacity(pending.len());
        for rx in pending {
            answers.push(match rx {
                Ok(rx) => rx
                    .await
                    .map_err(|_| GridError::Cluster(Refusal::Timeout))
                    .and_then(|r| r.map_err(GridError::Cluster)),
                Err(e) => Err(e),
            });
        }
        answers
    }

    pub async fn status(&self) -> Result<ClusterStatus, GridError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Status(reply))?;
        rx.await.map_err(|_| GridError::Cluster(Refusal::Timeout))
    }

    fn send(&self, command: Command) -> Result<(), GridError> {
        self.inbox.0.send(command).map_err(|_| GridError::Cluster(Refusal::NotServing))
    }

    /// Hands this node's partitions to the others and waits until it holds none (or `limit`
    /// passed). Returns whether the hand-over completed.
    pub async fn drain(&self, limit: Duration) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Leave(reply)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(limit, rx).await, Ok(Ok(())))
    }

    /// Stops the node's thread and waits for it.
    pub fn stop(&self) {
        let _ = self.inbox.0.send(Command::Stop);
        if let Some(thread) = self.thread.lock().expect("thread lock").take() {
            let _ = thread.join();
        }
    }
}

struct Clock {
    started: Instant,
}

impl Clock {
    fn now(&self) -> Now {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Now { mono: self.started.elapsed().as_millis() as u64, wall }
    }
}

fn run(args: ClusterArgs, commands: Receiver<Command>, drain_requested: Arc<Notify>) {
    let clock = Clock { started: Instant::now() };
    let disk = DiskNode::new(args.store, args.id);
    let cfg = Arc::new(args.config);
    let mut node = Node::new(disk, cfg, Vec::new(), args.joining, clock.now());
    let transport = args.transport;
    let events = args.events;
    events.set_node(args.id);
    let mut waiting: HashMap<u64, oneshot::Sender<Result<Reply, Refusal>>> = HashMap::new();
    let mut next_id: u64 = 1;
    let mut leaving: Vec<oneshot::Sender<()>> = Vec::new();
    let mut next_gauges = Instant::now();
    let mut last_epoch = 0;
    let mut drained_at: Option<Instant> = None;
    let mut next_tick = Instant::now();
    info!(node = args.id, "cluster node running");
    'run: loop {
        let first = match commands.recv_timeout(next_tick.saturating_duration_since(Instant::now()))
        {
            Ok(command) => Some(command),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let now = clock.now();
        // Everything already queued is handled before the outputs go out, so they leave in
        // batches under load.
        let queued = first.into_iter().chain(std::iter::from_fn(|| commands.try_recv().ok()));
        for command in queued.take(BATCH_MAX) {
            match command {
                Command::Request { key, op, reply } => {
                    let id = next_id;
                    next_id += 1;
                    waiting.insert(id, reply);
                    node.request(now, id, key, op);
                }
                Command::Query { partition, query, reply } => {
                    let id = next_id;
                    next_id += 1;
                    waiting.insert(id, reply);
                    node.query(now, id, partition, query);
                }
                Command::Message { from, msg } => node.receive(now, from, msg),
                Command::Seed(seed) => node.add_seed(seed),
                Command::Status(reply) => {
                    let _ = reply.send(status(&mut node, now));
                }
                Command::Leave(reply) => {
                    info!("handing partitions over before stopping");
                    node.leave(now);
                    leaving.push(reply);
                }
                Command::Drain(target) if target == args.id => {
                    info!("drain requested by an operator");
                    drain_requested.notify_one();
                }
                Command::Drain(target) => transport.send(target, Msg::Drain),
                Command::Forget(lost) => node.forget(now, lost),
                Command::Stop => break 'run,
            }
        }
        if Instant::now() >= next_tick {
            node.tick(now);
            next_tick = Instant::now() + TICK;
            if Instant::now() >= next_gauges {
                next_gauges = Instant::now() + GAUGES;
                publish_gauges(&status(&mut node, now));
            }
        }
        if !leaving.is_empty() && node.drained() {
            // Stay a moment longer: peers that have not adopted the last topology yet may
            // still forward requests here, and are told to go elsewhere instead of timing out.
            let since = *drained_at.get_or_insert_with(Instant::now);
            if since.elapsed() >= LINGER {
                info!("all partitions handed over");
                for reply in leaving.drain(..) {
                    let _ = reply.send(());
                }
            }
        }
        let epoch = node.topology().map_or(0, |t| t.epoch);
        if epoch != last_epoch {
            metrics::counter!("sessiongrid_cluster_topology_changes_total").increment(1);
            last_epoch = epoch;
        }
        for output in node.take_outputs() {
            match output {
                Output::Send(to, msg) => transport.send(to, msg),
                Output::Reply(id, result) => {
                    if let Some(reply) = waiting.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
                Output::Events(list) => events.publish(list),
                Output::DrainRequested => {
                    info!("drain requested by an operator");
                    drain_requested.notify_one();
                }
            }
        }
    }
    warn!("cluster node stopped");
}

fn publish_gauges(s: &ClusterStatus) {
    metrics::gauge!("sessiongrid_cluster_epoch").set(s.epoch as f64);
    metrics::gauge!("sessiongrid_cluster_members").set(s.members.len() as f64);
    metrics::gauge!("sessiongrid_cluster_primaries").set(s.primaries as f64);
    metrics::gauge!("sessiongrid_cluster_copies").set(s.copies as f64);
    metrics::gauge!("sessiongrid_cluster_moving_partitions").set(s.moving as f64);
    metrics::gauge!("sessiongrid_cluster_unowned_partitions").set(s.unowned as f64);
    metrics::gauge!("sessiongrid_cluster_serving").set(if s.lease { 1.0 } else { 0.0 });
    metrics::gauge!("sessiongrid_sessions_live", "copy" => "primary")
        .set(s.sessions_primary as f64);
    metrics::gauge!("sessiongrid_sessions_live", "copy" => "backup").set(s.sessions_backup as f64);
}

fn status(node: &mut Node<DiskNode>, now: Now) -> ClusterStatus {
    let me = node.id();
    let lease = node.lease_valid(now);
    let Some(t) = node.topology().cloned() else {
        return ClusterStatus { node: me, ..ClusterStatus::default() };
    };
    let (mut sessions_primary, mut sessions_backup, mut replication_lag) = (0, 0, 0);
    for (&p, replica) in node.replicas() {
        replication_lag = replication_lag.max(replica.replication_lag());
        let Some(a) = t.assignment(p) else { continue };
        if !a.owners.contains(&me) {
            continue; // a learner's copy is not complete yet
        }
        let sessions = replica.counts().map_or(0, |c| c.sessions);
        if a.primary() == Some(me) {
            sessions_primary += sessions;
        } else {
            sessions_backup += sessions;
        }
    }
    ClusterStatus {
        sessions_primary,
        sessions_backup,
        replication_lag,
        node: me,
        epoch: t.epoch,
        coordinator: t.coordinator,
        members: t.members.clone(),
        primaries: t.partitions.iter().filter(|a| a.primary() == Some(me)).count(),
        copies: t.partitions.iter().filter(|a| a.owners.contains(&me)).count(),
        moving: t.partitions.iter().filter(|a| a.owners != a.target).count(),
        lost: t.lost(),
        unowned: t.unowned(),
        lease,
        topology: Some(t),
    }
}
