//! [`Grid`]: the handle every door holds. Starts a node's actors and routes each request to its
//! partition's primary, here or on a peer.
//!
//! A single node is a cluster of one: the same actors, the same replicated state machine, a
//! transport with no peers. It founds its cluster alone, so it serves at once.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use sessiongrid_cluster::storage::Counts;
use sessiongrid_cluster::{ClusterConfig, Lease, Msg, NodeId, Query, Refusal, Txn};
use sessiongrid_model::config::NodeConfig;
use sessiongrid_model::key::DATABASES;
use sessiongrid_model::notify::{Flags, Notices};
use sessiongrid_model::{partition_of, KeyFilter, Op, PartitionId, Reply};
use sessiongrid_store::Store;
use tokio::sync::{watch, Notify};
use tracing::{info, warn, Instrument};

use crate::cache::Budget;
use crate::commit::Committer;
use crate::control::{watch_patience, ControlActor, ControlArgs, ControlMsg, ControlStatus};
use crate::directory::SlotMap;
use crate::disk::DiskNode;
use crate::engine::{Clock, Forwards, Shared, View, Work};
use crate::error::GridError;
use crate::events::{EventBus, EventWatch};
use crate::partition::PartitionMsg;
use crate::pubsub::PubSub;
use crate::shard::Shards;
use crate::status::{publish_gauges, ClusterStatus};
use crate::supervisor::{Supervisor, SupervisorArgs, SupervisorMsg};
use crate::transport::{Inbox, NoPeers, Transport};

/// How long a clustered node spends handing its partitions over when it stops.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);
/// How often the cluster gauges are refreshed.
const GAUGES: Duration = Duration::from_secs(1);

/// Cheap to clone; all clones drive the same node.
#[derive(Clone)]
pub struct Grid {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    store: Store,
    pub(crate) shared: Arc<Shared>,
    /// Started as a cluster member (with peers), not as a single node.
    pub(crate) clustered: bool,
    /// The number of this node's last transaction (see [`crate::txn`]).
    pub(crate) txns: std::sync::atomic::AtomicU64,
    control: ActorRef<ControlMsg>,
    supervisor: ActorRef<SupervisorMsg>,
    shards: Arc<Shards>,
    gauges: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// How a node reaches its peers.
pub struct Peers {
    pub id: NodeId,
    pub transport: Arc<dyn Transport>,
    pub inbox: Inbox,
    /// Seeds were given, so the node waits to join rather than founding a cluster.
    pub joining: bool,
}

impl Grid {
    /// A single node in `config.data_dir`. Serving starts at once: entries are read from disk on
    /// first use, not loaded up front.
    pub async fn start(config: &NodeConfig) -> Result<Grid, GridError> {
        let store = open_store(config)?;
        let id = solo_id(&store)?;
        let peers = Peers { id, transport: Arc::new(NoPeers), inbox: Inbox::new(), joining: false };
        Grid::start_on(config, store, ClusterConfig::default(), peers, false).await
    }

    /// A node with identity `peers.id`: a single node when `clustered` is false (its transport
    /// has no peers), or a member that joins (or founds) a cluster. `cluster.partitions` is
    /// taken from the data directory.
    pub async fn start_node(
        config: &NodeConfig,
        cluster: ClusterConfig,
        peers: Peers,
        clustered: bool,
    ) -> Result<Grid, GridError> {
        let store = open_store(config)?;
        Grid::start_on(config, store, cluster, peers, clustered).await
    }

    async fn start_on(
        config: &NodeConfig,
        store: Store,
        mut cluster: ClusterConfig,
        peers: Peers,
        clustered: bool,
    ) -> Result<Grid, GridError> {
        let partitions = store.partitions();
        cluster.partitions = partitions;
        cluster.value_bytes_max = config.value_bytes_max;
        cluster.sweep_interval_ms = config.expiry_sweep_interval_ms;
        cluster.sweep_keys_max = config.expiry_sweep_keys_max;
        cluster.validate().map_err(|e| GridError::Start(e.to_string()))?;
        let budget = Budget::new(usize::try_from(config.memory_max_bytes).unwrap_or(usize::MAX));
        let committers: Vec<_> =
            (0..config.engine_threads()).map(|_| Arc::new(Committer::new(store.clone()))).collect();
        let shards = Shards::start(&committers).map_err(|e| GridError::Start(e.to_string()))?;
        let shards = Arc::new(shards);
        // On a node of one engine thread the transport runs there too: a replicated write then
        // never changes threads. A node of several keeps it on the process's runtime, whose
        // workers spread it over the cores.
        {
            let _on_engine = (shards.count() == 1).then(|| shards.of_partition(0).enter());
            peers.transport.start().map_err(GridError::Start)?;
        }
        let disk = DiskNode::new(store.clone(), peers.id, budget, committers);
        let events = Arc::new(EventBus::default());
        events.set_node(peers.id);
        let shared = Arc::new(Shared {
            me: peers.id,
            cfg: Arc::new(cluster),
            clock: Clock::new(),
            view: watch::Sender::new(View::default()),
            lease: Mutex::new(Lease::NONE),
            partitions: RwLock::new(Vec::new()),
            control: OnceLock::new(),
            forwards: Forwards::default(),
            transport: peers.transport,
            events,
            pubsub: PubSub::default(),
            notify_flags: AtomicU16::new(0),
            active_expire: std::sync::atomic::AtomicBool::new(true),
            drain_requested: Notify::new(),
            directory: Default::default(),
            inflow: Mutex::default(),
            forwarded: metrics::counter!("sessiongrid_requests_forwarded_total"),
            retried: metrics::counter!("sessiongrid_requests_retried_total"),
            read_at_once: metrics::counter!("sessiongrid_requests_read_at_once_total"),
            run_at_once: metrics::counter!("sessiongrid_requests_run_at_once_total"),
            peer_at_once: metrics::counter!("sessiongrid_p2p_messages_run_at_once_total"),
        });
        let sv_args =
            SupervisorArgs { shared: shared.clone(), disk: disk.clone(), shards: shards.clone() };
        let (supervisor, _) = Actor::spawn(None, Supervisor, sv_args)
            .await
            .map_err(|e| GridError::Start(e.to_string()))?;
        let args = ControlArgs { shared: shared.clone(), disk, joining: peers.joining };
        let (control, _) = Actor::spawn(None, ControlActor, args)
            .await
            .map_err(|e| GridError::Start(e.to_string()))?;
        let _ = shared.control.set(control.clone());
        peers.inbox.attach(shared.clone());
        info!(partitions, node = peers.id, clustered, data_dir = %config.data_dir.display(), "grid started");
        let gauges = Mutex::new(None);
        let txns = crate::txn::first_number();
        let inner = Inner { store, shared, clustered, txns, control, supervisor, shards, gauges };
        let grid = Grid { inner: Arc::new(inner) };
        if clustered {
            let task = tokio::spawn(refresh_gauges(Arc::downgrade(&grid.inner)));
            *grid.inner.gauges.lock().expect("gauges lock") = Some(task);
        }
        Ok(grid)
    }

    /// This node's view of the cluster; `None` on a single node.
    pub async fn cluster_status(&self) -> Option<ClusterStatus> {
        if !self.inner.clustered {
            return None;
        }
        status(&self.inner).await
    }

    /// Asks cluster member `node` (this one included) to hand its partitions over and stop.
    pub fn request_drain(&self, node: NodeId) -> Result<(), GridError> {
        self.cluster_only()?;
        self.to_control(ControlMsg::Drain(node))
    }

    /// Gives up lost cluster node `node` for good: the partitions only it held start empty.
    pub fn forget(&self, node: NodeId) -> Result<(), GridError> {
        self.cluster_only()?;
        self.to_control(ControlMsg::Forget(node))
    }

    /// Watches session events for a subscriber of this node, until the watch is dropped: once
    /// this returns, every write's attribute changes make events that reach this node, wherever
    /// the write's primary is. Waits for every member to hear; past twice `dead_after_ms` (a
    /// member that does not answer) the watch holds all the same, and a primary that has not
    /// heard announces its attribute changes on its own node only until it does.
    pub async fn watch_events(&self) -> EventWatch {
        let watch = self.inner.shared.events.watch();
        // Control answers within its patience; the margin only covers a control that stopped.
        let patience = watch_patience(&self.inner.shared.cfg) + Duration::from_secs(1);
        let heard = self.inner.control.call(ControlMsg::Watch, Some(patience)).await;
        if !matches!(heard, Ok(CallResult::Success(true))) {
            warn!("not every member confirmed the watch of session events in time");
            metrics::counter!("sessiongrid_session_event_watches_unconfirmed_total").increment(1);
        }
        watch
    }

    fn cluster_only(&self) -> Result<(), GridError> {
        if self.inner.clustered {
            Ok(())
        } else {
            Err(GridError::NotInCluster)
        }
    }

    fn to_control(&self, msg: ControlMsg) -> Result<(), GridError> {
        self.inner.control.cast(msg).map_err(|_| GridError::Cluster(Refusal::NotServing))
    }

    /// How many other owners of partition `p` hold every write it acknowledged (as its
    /// primary counts them).
    pub async fn in_sync_owners(&self, p: PartitionId) -> Result<u64, GridError> {
        match self.query(p, Query::InSync).await? {
            Reply::Int(n) => Ok(n.max(0) as u64),
            _ => Err(GridError::Cluster(Refusal::Timeout)),
        }
    }

    /// Asks this node to stop, as a signal would (`SHUTDOWN`): a member hands its partitions
    /// over first. The process running the node acts on it (see [`Grid::drain_requested`]).
    pub fn request_stop(&self) {
        self.inner.shared.drain_requested.notify_one();
    }

    /// Resolves when an operator asked this node to drain or stop.
    pub async fn drain_requested(&self) {
        self.inner.shared.drain_requested.notified().await
    }

    /// Session events of the whole grid, as this node sees them.
    pub fn events(&self) -> &Arc<EventBus> {
        &self.inner.shared.events
    }

    /// This node's pub/sub subscribers.
    pub fn pubsub(&self) -> &PubSub {
        &self.inner.shared.pubsub
    }

    /// `PUBLISH`: delivers `message` to this node's subscribers of `channel` and sends it to
    /// every other member for theirs. Answers how many subscriptions of this node it reached.
    pub fn publish(&self, channel: Bytes, message: Bytes) -> usize {
        self.inner.shared.publish(channel, message)
    }

    /// Sets which keyspace events the grid publishes (`CONFIG SET notify-keyspace-events`),
    /// on this node and every current member. A node that joins later starts with none.
    pub fn set_notify_flags(&self, flags: Flags) {
        let shared = &self.inner.shared;
        shared.notify_flags.store(flags.0, Ordering::Relaxed);
        shared.to_members(Msg::NotifyFlags(flags.0));
    }

    /// The keyspace events this node publishes.
    /// Turns this node's sweep of expired keys on or off (`DEBUG SET-ACTIVE-EXPIRE`); reads
    /// still treat an expired key as absent.
    pub fn set_active_expire(&self, on: bool) {
        self.inner.shared.active_expire.store(on, Ordering::Relaxed);
    }

    pub fn notify_flags(&self) -> Flags {
        Flags(self.inner.shared.notify_flags.load(Ordering::Relaxed))
    }

    /// Publishes keyspace events of a command the door built from several operations
    /// (`RENAME`, `SINTERSTORE`...).
    pub fn notify(&self, key: &[u8], notices: Notices) {
        self.inner.shared.notify(key, notices)
    }

    pub fn partitions(&self) -> u16 {
        self.inner.shared.cfg.partitions
    }

    /// Where each partition's copies are and how a client reaches their nodes, as this node
    /// routes requests now.
    pub fn slot_map(&self) -> SlotMap {
        let shared = &self.inner.shared;
        let routing = shared.view.borrow().routing.clone();
        SlotMap::new(shared.me, self.partitions(), routing.as_deref(), &shared.directory)
    }

    pub fn partition_of(&self, key: &[u8]) -> PartitionId {
        partition_of(key, self.partitions())
    }

    /// Executes one operation on one key.
    pub async fn exec(&self, key: Bytes, op: Op) -> Result<Reply, GridError> {
        let span = tracing::debug_span!("grid_op", op = op.name());
        let answer = self.inner.shared.exec(Work::Op { key, op }).instrument(span).await;
        answer.map_err(GridError::Cluster)
    }

    /// Executes operations on keys of one partition in the order given, their writes committed
    /// together when the partition's primary is this node.
    pub async fn exec_many(&self, ops: Vec<(Bytes, Op)>) -> Vec<Result<Reply, GridError>> {
        let span = tracing::debug_span!("grid_ops", ops = ops.len());
        let works = ops.into_iter().map(|(key, op)| Work::Op { key, op }).collect();
        let answers = self.inner.shared.exec_many(works).instrument(span).await;
        answers.into_iter().map(|a| a.map_err(GridError::Cluster)).collect()
    }

    pub(crate) async fn query(
        &self,
        partition: PartitionId,
        query: Query,
    ) -> Result<Reply, GridError> {
        let work = Work::Query { partition, query };
        self.inner.shared.exec(work).await.map_err(GridError::Cluster)
    }

    /// Runs `query` (within `txn`, if given) on every partition at once; answers in partition
    /// order.
    async fn query_all(&self, txn: In, query: Query) -> Vec<Result<Reply, GridError>> {
        let asks = (0..self.partitions()).map(|p| self.query(p, within(txn, query.clone())));
        futures::future::join_all(asks).await
    }

    /// Keys of partition `p` that pass `filter`.
    pub async fn keys(&self, p: PartitionId, filter: KeyFilter) -> Result<Vec<Bytes>, GridError> {
        self.keys_in(None, p, filter).await
    }

    /// [`Grid::keys`] within transaction `txn`.
    pub async fn keys_in(
        &self,
        txn: In,
        p: PartitionId,
        filter: KeyFilter,
    ) -> Result<Vec<Bytes>, GridError> {
        match self.query(p, within(txn, Query::Keys(filter))).await? {
            Reply::Array(keys) => Ok(keys
                .into_iter()
                .filter_map(|k| if let Reply::Bulk(k) = k { Some(k) } else { None })
                .collect()),
            _ => Err(GridError::Cluster(Refusal::Timeout)),
        }
    }

    /// Number of keys in the grid (expired, not yet swept keys included, as in Redis).
    pub async fn dbsize(&self) -> Result<u64, GridError> {
        Ok(self.partition_counts().await?.iter().map(|c| c.keys).sum())
    }

    /// (keys, keys with a deadline) of each logical database, summed over the grid (within
    /// transaction `txn`, if given). Reads the keys of databases 1..15 (see `Query::DbCounts`).
    pub async fn db_counts_in(&self, txn: In) -> Result<Vec<(u64, u64)>, GridError> {
        let mut dbs = vec![(0, 0); usize::from(DATABASES)];
        for answer in self.query_all(txn, Query::DbCounts).await {
            let Reply::Array(counts) = answer? else {
                return Err(GridError::Cluster(Refusal::Timeout));
            };
            let n = |r: &Reply| if let Reply::Int(n) = r { *n as u64 } else { 0 };
            for (db, pair) in dbs.iter_mut().zip(counts.chunks(2)) {
                db.0 += pair.first().map_or(0, n);
                db.1 += pair.get(1).map_or(0, n);
            }
        }
        Ok(dbs)
    }

    /// The counts of every partition, indexed by partition, from each partition's primary.
    pub async fn partition_counts(&self) -> Result<Vec<Counts>, GridError> {
        self.partition_counts_in(None).await
    }

    async fn partition_counts_in(&self, txn: In) -> Result<Vec<Counts>, GridError> {
        let mut all = Vec::with_capacity(self.partitions() as usize);
        for answer in self.query_all(txn, Query::Count).await {
            let counts = match answer? {
                Reply::Array(c) => c,
                _ => return Err(GridError::Cluster(Refusal::Timeout)),
            };
            let n = |i: usize| match counts.get(i) {
                Some(Reply::Int(n)) => *n as u64,
                _ => 0,
            };
            all.push(Counts { keys: n(0), expiring: n(1), sessions: n(2) });
        }
        Ok(all)
    }

    /// Deletes every key of every partition.
    pub async fn flush_all(&self) -> Result<(), GridError> {
        self.flush_all_in(None).await
    }

    /// Deletes every key of logical database `db` (within transaction `txn`, if given).
    pub async fn flush_db_in(&self, txn: In, db: u8) -> Result<(), GridError> {
        for answer in self.query_all(txn, Query::FlushDb(db)).await {
            answer?;
        }
        Ok(())
    }

    /// [`Grid::flush_all`] within transaction `txn`.
    pub async fn flush_all_in(&self, txn: In) -> Result<(), GridError> {
        for answer in self.query_all(txn, Query::Flush).await {
            answer?;
        }
        Ok(())
    }

    /// Hands this node's partitions to the others (a member), stops every actor, then syncs the
    /// log to disk. Callers stop sending requests first (the doors drain their connections);
    /// the database closes when the last clone of this handle is dropped.
    pub async fn shutdown(self) {
        let inner = &self.inner;
        let leave = inner.control.call(ControlMsg::Leave, Some(DRAIN_LIMIT)).await;
        if !matches!(leave, Ok(CallResult::Success(()))) {
            warn!("partitions not all handed over in time; the cluster will fail them over");
        }
        if let Some(task) = inner.gauges.lock().expect("gauges lock").take() {
            task.abort();
        }
        let timeout = Some(Duration::from_secs(30));
        inner.control.stop_and_wait(None, timeout).await.ok();
        let _ = inner.supervisor.call(SupervisorMsg::ShuttingDown, timeout).await;
        inner.supervisor.stop_children_and_wait(None, timeout).await;
        inner.supervisor.stop_and_wait(None, timeout).await.ok();
        let shards = inner.shards.clone();
        let _ = tokio::task::spawn_blocking(move || shards.stop()).await;
        if let Err(e) = inner.store.sync() {
            warn!(error = %e, "final log sync failed");
        }
        info!("grid stopped");
    }

    /// The actor currently serving partition `p`; for supervision tests and diagnostics.
    #[doc(hidden)]
    pub fn partition_cell(&self, p: PartitionId) -> Option<ractor::ActorCell> {
        self.inner.shared.partition(p).map(|a| a.get_cell())
    }

    /// The engine thread a new client connection should run on (they take turns), so its
    /// requests to the partitions there never leave the thread.
    pub fn connection_runtime(&self) -> tokio::runtime::Handle {
        self.inner.shards.next().clone()
    }

    /// The store, for diagnostics (`INFO`, metrics).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// The transaction a partition-wide query runs within, if any, and whether it may take a free
/// partition (see `Query::Within`).
pub type In = Option<(Txn, bool)>;

/// `query` as part of a transaction, if there is one.
fn within(txn: In, query: Query) -> Query {
    match txn {
        Some((txn, take)) => Query::Within { txn, query: Box::new(query), take },
        None => query,
    }
}

async fn status(inner: &Inner) -> Option<ClusterStatus> {
    let control = inner.control.call(ControlMsg::Status, Some(Duration::from_secs(5))).await;
    let ControlStatus { lease, topology } = match control {
        Ok(CallResult::Success(s)) => s,
        _ => return None,
    };
    let actors = inner.shared.partitions.read().expect("partition table lock").clone();
    let mut stats = Vec::with_capacity(actors.len());
    for actor in actors {
        let answer = actor.call(PartitionMsg::Stats, Some(Duration::from_secs(5))).await;
        if let Ok(CallResult::Success(s)) = answer {
            stats.push(s);
        }
    }
    Some(ClusterStatus::new(inner.shared.me, lease, topology, &stats))
}

async fn refresh_gauges(inner: std::sync::Weak<Inner>) {
    let mut tick = tokio::time::interval(GAUGES);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if let Some(s) = status(&inner).await {
            publish_gauges(&s);
        }
    }
}

/// A single node's id, kept in its store so it stays the same across restarts.
fn solo_id(store: &Store) -> Result<NodeId, GridError> {
    const ROW: &[u8] = b"solo-node-id";
    if let Some(bytes) = store.get_extra(ROW)? {
        if let Ok(id) = <[u8; 8]>::try_from(bytes.as_slice()) {
            return Ok(NodeId::from_be_bytes(id));
        }
    }
    let id: NodeId = rand::random::<NodeId>().max(1);
    let mut batch = store.batch(0);
    batch.put_extra(ROW, &id.to_be_bytes());
    store.commit(batch)?;
    Ok(id)
}

fn open_store(config: &NodeConfig) -> Result<Store, GridError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| GridError::Start(format!("{}: {e}", config.data_dir.display())))?;
    let store = Store::open(&config.data_dir, config.partitions, config.durability)?;
    if store.partitions() != config.partitions {
        warn!(
            configured = config.partitions,
            stored = store.partitions(),
            "partition count is fixed per data directory; using the stored one"
        );
    }
    Ok(store)
}
