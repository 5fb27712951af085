//! [`Grid`]: the handle every door holds. Routes a key to its partition actor and gathers
//! multi-partition requests.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, RpcReplyPort};
use sessiongrid_model::config::NodeConfig;
use sessiongrid_model::{partition_of, Op, PartitionId, Reply};
use sessiongrid_store::Store;
use tracing::{info, warn};

use sessiongrid_cluster::storage::Counts;
use sessiongrid_cluster::{ClusterConfig, NodeId, Query, Refusal};

use crate::cluster::{ClusterArgs, ClusterNode, ClusterStatus, Inbox, Outlet, Transport};
use crate::error::GridError;
use crate::events::EventBus;
use crate::partition::{PartitionArgs, PartitionMsg};
use crate::supervisor::{PartitionTable, Supervisor, SupervisorArgs, SupervisorMsg};
use sessiongrid_model::KeyFilter;

/// How long a clustered node spends handing its partitions over when it stops.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Cheap to clone; all clones drive the same node.
#[derive(Clone)]
pub struct Grid {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    partitions: u16,
    mode: Mode,
    events: Arc<EventBus>,
}

enum Mode {
    /// One node: a partition actor per partition.
    Local { table: Arc<PartitionTable>, supervisor: ActorRef<SupervisorMsg> },
    /// A member of a cluster: requests go through the protocol node.
    Cluster(ClusterNode),
}

impl Grid {
    /// Opens the store in `config.data_dir` and starts one actor per partition. Serving starts at
    /// once: entries are read from disk on first use, not loaded up front.
    pub async fn start(config: &NodeConfig) -> Result<Grid, GridError> {
        let store = open_store(config)?;
        let partitions = store.partitions();
        let cache_bytes_max = (config.memory_max_bytes / partitions as u64) as usize;
        let events = Arc::new(EventBus::default());
        let args = (0..partitions)
            .map(|id| PartitionArgs {
                id,
                store: store.clone(),
                cache_bytes_max,
                value_bytes_max: config.value_bytes_max,
                sweep_interval: Duration::from_millis(config.expiry_sweep_interval_ms),
                sweep_keys_max: config.expiry_sweep_keys_max,
                events: events.clone(),
            })
            .collect();
        let table = Arc::new(RwLock::new(Vec::new()));
        let sv_args = SupervisorArgs { partitions: args, table: table.clone() };
        let (supervisor, _) = Actor::spawn(None, Supervisor, sv_args)
            .await
            .map_err(|e| GridError::Start(e.to_string()))?;
        info!(partitions, data_dir = %config.data_dir.display(), "grid started");
        let mode = Mode::Local { table, supervisor };
        Ok(Grid { inner: Arc::new(Inner { store, partitions, mode, events }) })
    }

    /// Opens the store and joins (or founds) a cluster: requests are routed to each key's
    /// primary, wherever it runs. `cluster.partitions` is taken from the data directory.
    pub async fn start_clustered(
        config: &NodeConfig,
        id: NodeId,
        mut cluster: ClusterConfig,
        joining: bool,
        transport: Arc<dyn Transport>,
        inbox: (Inbox, Outlet),
    ) -> Result<Grid, GridError> {
        let store = open_store(config)?;
        let partitions = store.partitions();
        cluster.partitions = partitions;
        let events = Arc::new(EventBus::default());
        let args = ClusterArgs {
            store: store.clone(),
            id,
            config: cluster,
            joining,
            transport,
            events: events.clone(),
        };
        let node = ClusterNode::start(args, inbox)?;
        info!(partitions, node = id, data_dir = %config.data_dir.display(), "grid started in cluster mode");
        let mode = Mode::Cluster(node);
        Ok(Grid { inner: Arc::new(Inner { store, partitions, mode, events }) })
    }

    /// This node's view of the cluster; `None` on a single node.
    pub async fn cluster_status(&self) -> Option<ClusterStatus> {
        match &self.inner.mode {
            Mode::Cluster(node) => node.status().await.ok(),
            Mode::Local { .. } => None,
        }
    }

    /// Asks cluster member `node` (this one included) to hand its partitions over and stop.
    pub fn request_drain(&self, node: NodeId) -> Result<(), GridError> {
        match &self.inner.mode {
            Mode::Cluster(n) => n.request_drain(node),
            Mode::Local { .. } => Err(GridError::NotInCluster),
        }
    }

    /// Gives up lost cluster node `node` for good: the partitions only it held start empty.
    pub fn forget(&self, node: NodeId) -> Result<(), GridError> {
        match &self.inner.mode {
            Mode::Cluster(n) => n.forget(node),
            Mode::Local { .. } => Err(GridError::NotInCluster),
        }
    }

    /// Resolves when an operator asked this node to drain (never on a single node).
    pub async fn drain_requested(&self) {
        match &self.inner.mode {
            Mode::Cluster(n) => n.drain_requested().await,
            Mode::Local { .. } => std::future::pending().await,
        }
    }

    /// Session events of the whole grid, as this node sees them.
    pub fn events(&self) -> &Arc<EventBus> {
        &self.inner.events
    }

    pub fn partitions(&self) -> u16 {
        self.inner.partitions
    }

    pub fn partition_of(&self, key: &[u8]) -> PartitionId {
        partition_of(key, self.inner.partitions)
    }

    fn actor(&self, p: PartitionId) -> Result<ActorRef<PartitionMsg>, GridError> {
        match &self.inner.mode {
            Mode::Local { table, .. } => {
                Ok(table.read().expect("partition table lock")[p as usize].clone())
            }
            Mode::Cluster(_) => Err(GridError::NotInCluster),
        }
    }

    /// Sends a request to partition `p` and waits for its answer.
    async fn call<T: Send + 'static>(
        &self,
        p: PartitionId,
        msg: impl FnOnce(RpcReplyPort<T>) -> PartitionMsg,
    ) -> Result<T, GridError> {
        match self.actor(p)?.call(msg, None).await {
            Ok(CallResult::Success(v)) => Ok(v),
            _ => Err(GridError::Unavailable { partition: p }),
        }
    }

    /// Executes one operation on one key.
    pub async fn exec(&self, key: Bytes, op: Op) -> Result<Reply, GridError> {
        if let Mode::Cluster(node) = &self.inner.mode {
            return node.exec(key, op).await;
        }
        let p = self.partition_of(&key);
        Ok(self.call(p, |reply| PartitionMsg::Exec { key, op, reply }).await??)
    }

    /// Keys of partition `p` that pass `filter`.
    pub async fn keys(&self, p: PartitionId, filter: KeyFilter) -> Result<Vec<Bytes>, GridError> {
        if let Mode::Cluster(node) = &self.inner.mode {
            let answer = node.query_all([p], Query::Keys(filter)).await.pop();
            return match answer {
                Some(Ok(Reply::Array(keys))) => Ok(keys
                    .into_iter()
                    .filter_map(|k| if let Reply::Bulk(k) = k { Some(k) } else { None })
                    .collect()),
                Some(Err(e)) => Err(e),
                _ => Err(GridError::Cluster(Refusal::Timeout)),
            };
        }
        Ok(self.call(p, |reply| PartitionMsg::Keys { filter, reply }).await??)
    }

    /// Number of keys on this node (expired, not yet swept keys included, as in Redis).
    pub async fn dbsize(&self) -> Result<u64, GridError> {
        Ok(self.keyspace().await?.0)
    }

    /// (keys, keys with a deadline) of the whole grid.
    pub async fn keyspace(&self) -> Result<(u64, u64), GridError> {
        let counts = self.partition_counts().await?;
        Ok((counts.iter().map(|c| c.keys).sum(), counts.iter().map(|c| c.expiring).sum()))
    }

    /// The counts of every partition, indexed by partition, from each partition's primary.
    pub async fn partition_counts(&self) -> Result<Vec<Counts>, GridError> {
        let mut all = Vec::with_capacity(self.inner.partitions as usize);
        if let Mode::Cluster(node) = &self.inner.mode {
            for answer in node.query_all(0..self.inner.partitions, Query::Count).await {
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
            return Ok(all);
        }
        for p in 0..self.inner.partitions {
            let m = self.call(p, |reply| PartitionMsg::Count { reply }).await?;
            all.push(Counts { keys: m.keys, expiring: m.expiring, sessions: m.sessions });
        }
        Ok(all)
    }

    /// Deletes every key of every partition.
    pub async fn flush_all(&self) -> Result<(), GridError> {
        if let Mode::Cluster(node) = &self.inner.mode {
            for answer in node.query_all(0..self.inner.partitions, Query::Flush).await {
                answer?;
            }
            return Ok(());
        }
        for p in 0..self.inner.partitions {
            self.call(p, |reply| PartitionMsg::Flush { reply }).await??;
        }
        Ok(())
    }

    /// Stops every partition, then syncs the log to disk. Callers stop sending requests first
    /// (the doors drain their connections); the database closes when the last clone of this
    /// handle is dropped. A clustered node first hands its partitions over to the others.
    pub async fn shutdown(self) {
        match &self.inner.mode {
            Mode::Local { supervisor, .. } => {
                let timeout = Some(Duration::from_secs(30));
                let _ = supervisor.call(SupervisorMsg::ShuttingDown, timeout).await;
                supervisor.stop_children_and_wait(None, timeout).await;
                supervisor.stop_and_wait(None, timeout).await.ok();
            }
            Mode::Cluster(node) => {
                if !node.drain(DRAIN_LIMIT).await {
                    warn!(
                        "partitions not all handed over in time; the cluster will fail them over"
                    );
                }
                node.stop();
            }
        }
        if let Err(e) = self.inner.store.sync() {
            warn!(error = %e, "final log sync failed");
        }
        info!("grid stopped");
    }

    /// The actor currently serving partition `p`; for supervision tests and diagnostics.
    #[doc(hidden)]
    pub fn partition_cell(&self, p: PartitionId) -> Option<ractor::ActorCell> {
        self.actor(p).ok().map(|a| a.get_cell())
    }

    /// The store, for diagnostics (`INFO`, metrics).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
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
