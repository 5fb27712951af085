//! Transactions and scripts (`MULTI`/`EXEC`, `EVAL`): a client's commands run as one, atomic and
//! isolated. The door names the partitions of the keys up front; [`Grid::hold`] takes them in
//! partition order (so two transactions never wait for each other in a circle), the commands
//! run within the transaction ([`Grid::exec_in`] and the `_in` forms of the partition-wide
//! queries), and [`Grid::release`] ends it once every owner has its writes. What a hold means
//! to a partition is in `sessiongrid_cluster::hold`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sessiongrid_cluster::{Query, Txn};
use sessiongrid_model::{Op, PartitionId, Reply};
use tracing::Instrument;

use crate::engine::Work;
use crate::error::GridError;
use crate::grid::Grid;

/// Transaction numbers start above any a previous run of this node used (unix ms << 16), so a
/// hold left by a node that restarted is never taken for a new transaction's.
pub(crate) fn first_number() -> AtomicU64 {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    AtomicU64::new(sessiongrid_cluster::dedup::first_forward_id(wall))
}

impl Grid {
    /// True for a member of a cluster with peers; false for a single node, where a transaction
    /// may span partitions.
    pub fn is_clustered(&self) -> bool {
        self.inner.clustered
    }

    /// A name for a new transaction.
    pub fn begin(&self) -> Txn {
        let id = self.inner.txns.fetch_add(1, Ordering::Relaxed);
        Txn { node: self.inner.shared.me, id }
    }

    /// Holds `partitions` (sorted, no repeats) for `txn`, each for at most `ms`, waiting for
    /// other transactions to end. On failure, the ones taken are released.
    pub async fn hold(
        &self,
        txn: Txn,
        partitions: &[PartitionId],
        ms: u64,
    ) -> Result<(), GridError> {
        debug_assert!(partitions.windows(2).all(|w| w[0] < w[1]), "taken in partition order");
        let span = tracing::debug_span!("txn_hold", partitions = partitions.len());
        async {
            for (i, &p) in partitions.iter().enumerate() {
                if let Err(e) = self.query(p, Query::Hold { txn, ms }).await {
                    let _ = self.release(txn, &partitions[..i]).await;
                    return Err(e);
                }
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Ends `txn`'s holds on `partitions`; answers once every owner has its writes. `Ok(false)`
    /// if a hold had run out before (other clients' requests may have run in between).
    pub async fn release(&self, txn: Txn, partitions: &[PartitionId]) -> Result<bool, GridError> {
        let asks = partitions.iter().map(|&p| self.query(p, Query::Release { txn }));
        let mut kept = true;
        for answer in futures::future::join_all(asks).await {
            kept &= answer? == Reply::Int(1);
        }
        Ok(kept)
    }

    /// Executes one operation on one key, within `txn` if there is one; `take`: the
    /// transaction may take the key's partition if it is free (see `Query::Within`).
    pub async fn exec_in(
        &self,
        txn: Option<Txn>,
        take: bool,
        key: Bytes,
        op: Op,
    ) -> Result<Reply, GridError> {
        let Some(txn) = txn else { return self.exec(key, op).await };
        let partition = self.partition_of(&key);
        let query = Query::Within { txn, query: Box::new(Query::Op { key, op }), take };
        let span = tracing::debug_span!("grid_op_in_txn", partition);
        let work = Work::Query { partition, query };
        self.inner.shared.exec(work).instrument(span).await.map_err(GridError::Cluster)
    }
}
