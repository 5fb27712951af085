//! Gauges a node refreshes itself: the store's RocksDB figures, and on a single node its live
//! sessions (a cluster member's grid refreshes that gauge from its cluster status). The tasks
//! end with the node, so they do not keep the database open.

use std::time::Duration;

use sessiongrid_grid::Grid;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Refreshes the gauges until `stop` is cancelled.
pub fn spawn(grid: Grid, single_node: bool, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            store_gauges(&grid);
            if single_node {
                // On a single node every session is a primary copy.
                if let Ok(counts) = grid.partition_counts().await {
                    let live: u64 = counts.iter().map(|c| c.sessions).sum();
                    metrics::gauge!("sessiongrid_sessions_live", "copy" => "primary")
                        .set(live as f64);
                }
            }
        }
    })
}

fn store_gauges(grid: &Grid) {
    let gauges = [
        ("sessiongrid_store_sst_bytes", "rocksdb.total-sst-files-size"),
        ("sessiongrid_store_live_data_bytes", "rocksdb.estimate-live-data-size"),
        ("sessiongrid_store_pending_compaction_bytes", "rocksdb.estimate-pending-compaction-bytes"),
        ("sessiongrid_store_write_stopped", "rocksdb.is-write-stopped"),
        ("sessiongrid_store_delayed_write_rate_bytes", "rocksdb.actual-delayed-write-rate"),
    ];
    for (gauge, property) in gauges {
        if let Some(v) = grid.store().property(property) {
            metrics::gauge!(gauge).set(v as f64);
        }
    }
    // What RocksDB holds in memory, beside the entries of `memory_max_bytes`: memtables and
    // the readers of its files (index and filter blocks) are per column family; the block
    // cache is one for all.
    let memory = [
        ("memtables", grid.store().property_of_all("rocksdb.cur-size-all-mem-tables")),
        ("table_readers", grid.store().property_of_all("rocksdb.estimate-table-readers-mem")),
        ("block_cache", grid.store().property("rocksdb.block-cache-usage")),
    ];
    for (part, bytes) in memory {
        if let Some(v) = bytes {
            metrics::gauge!("sessiongrid_store_memory_bytes", "part" => part).set(v as f64);
        }
    }
}
