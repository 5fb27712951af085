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

use crate::error::GridError;
use crate::partition::{KeyFilter, PartitionArgs, PartitionMsg};
use crate::supervisor::{PartitionTable, Supervisor, SupervisorArgs, SupervisorMsg};

/// Cheap to clone; all clones drive the same node.
#[derive(Clone)]
pub struct Grid {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    partitions: u16,
    table: Arc<PartitionTable>,
    supervisor: ActorRef<SupervisorMsg>,
}

impl Grid {
    /// Opens the store in `config.data_dir` and starts one actor per partition. Serving starts at
    /// once: entries are read from disk on first use, not loaded up front.
    pub async fn start(config: &NodeConfig) -> Result<Grid, GridError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| GridError::Start(format!("{}: {e}", config.data_dir.display())))?;
        let store = Store::open(&config.data_dir, config.partitions, config.durability)?;
        let partitions = store.partitions();
        if partitions != config.partitions {
            warn!(
                configured = config.partitions,
                stored = partitions,
                "partition count is fixed per data directory; using the stored one"
            );
        }
        let cache_bytes_max = (config.memory_max_bytes / partitions as u64) as usize;
        let args = (0..partitions)
            .map(|id| PartitionArgs {
                id,
                store: store.clone(),
                cache_bytes_max,
                value_bytes_max: config.value_bytes_max,
                sweep_interval: Duration::from_millis(config.expiry_sweep_interval_ms),
                sweep_keys_max: config.expiry_sweep_keys_max,
            })
            .collect();
        let table = Arc::new(RwLock::new(Vec::new()));
        let sv_args = SupervisorArgs { partitions: args, table: table.clone() };
        let (supervisor, _) = Actor::spawn(None, Supervisor, sv_args)
            .await
            .map_err(|e| GridError::Start(e.to_string()))?;
        info!(partitions, data_dir = %config.data_dir.display(), "grid started");
        Ok(Grid { inner: Arc::new(Inner { store, partitions, table, supervisor }) })
    }

    pub fn partitions(&self) -> u16 {
        self.inner.partitions
    }

    pub fn partition_of(&self, key: &[u8]) -> PartitionId {
        partition_of(key, self.inner.partitions)
    }

    fn actor(&self, p: PartitionId) -> ActorRef<PartitionMsg> {
        self.inner.table.read().expect("partition table lock")[p as usize].clone()
    }

    /// Sends a request to partition `p` and waits for its answer.
    async fn call<T: Send + 'static>(
        &self,
        p: PartitionId,
        msg: impl FnOnce(RpcReplyPort<T>) -> PartitionMsg,
    ) -> Result<T, GridError> {
        match self.actor(p).call(msg, None).await {
            Ok(CallResult::Success(v)) => Ok(v),
            _ => Err(GridError::Unavailable { partition: p }),
        }
    }

    /// Executes one operation on one key.
    pub async fn exec(&self, key: Bytes, op: Op) -> Result<Reply, GridError> {
        let p = self.partition_of(&key);
        Ok(self.call(p, |reply| PartitionMsg::Exec { key, op, reply }).await??)
    }

    /// Keys of partition `p` that pass `filter`.
    pub async fn keys(&self, p: PartitionId, filter: KeyFilter) -> Result<Vec<Bytes>, GridError> {
        Ok(self.call(p, |reply| PartitionMsg::Keys { filter, reply }).await??)
    }

    /// Number of keys on this node (expired, not yet swept keys included, as in Redis).
    pub async fn dbsize(&self) -> Result<u64, GridError> {
        Ok(self.keyspace().await?.0)
    }

    /// (keys, keys with a deadline) on this node.
    pub async fn keyspace(&self) -> Result<(u64, u64), GridError> {
        let (mut keys, mut expiring) = (0, 0);
        for p in 0..self.inner.partitions {
            let meta = self.call(p, |reply| PartitionMsg::Count { reply }).await?;
            keys += meta.keys;
            expiring += meta.expiring;
        }
        Ok((keys, expiring))
    }

    /// Deletes every key of every partition.
    pub async fn flush_all(&self) -> Result<(), GridError> {
        for p in 0..self.inner.partitions {
            self.call(p, |reply| PartitionMsg::Flush { reply }).await??;
        }
        Ok(())
    }

    /// Stops every partition, then syncs the log to disk. Callers stop sending requests first
    /// (the doors drain their connections); the database closes when the last clone of this
    /// handle is dropped.
    pub async fn shutdown(self) {
        let timeout = Some(Duration::from_secs(30));
        let _ = self.inner.supervisor.call(SupervisorMsg::ShuttingDown, timeout).await;
        self.inner.supervisor.stop_children_and_wait(None, timeout).await;
        self.inner.supervisor.stop_and_wait(None, timeout).await.ok();
        if let Err(e) = self.inner.store.sync() {
            warn!(error = %e, "final log sync failed");
        }
        info!("grid stopped");
    }

    /// The actor currently serving partition `p`; for supervision tests and diagnostics.
    #[doc(hidden)]
    pub fn partition_cell(&self, p: PartitionId) -> ractor::ActorCell {
        self.actor(p).get_cell()
    }

    /// The store, for diagnostics (`INFO`, metrics).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
}
