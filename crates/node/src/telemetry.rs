//! Logs and metrics setup.

use std::io::IsTerminal;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the log subscriber; `RUST_LOG` overrides the default `info` filter.
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Installs the Prometheus recorder and describes the node's series.
pub fn init_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 1.0,
        ])?
        .install_recorder()?;
    describe();
    Ok(handle)
}

/// Histograms keep their samples until drained: drain them every few seconds even when nobody
/// scrapes, so memory stays flat.
pub fn spawn_upkeep(handle: PrometheusHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("sessiongrid_commands_total", "Redis-door commands by command and result");
    describe_histogram!(
        "sessiongrid_command_duration_seconds",
        Unit::Seconds,
        "Time to execute a Redis-door command"
    );
    describe_gauge!("sessiongrid_connections", "Open Redis-door client connections");
    describe_counter!(
        "sessiongrid_connections_rejected_total",
        "Connections refused because connections_max was reached"
    );
    describe_counter!(
        "sessiongrid_protocol_errors_total",
        "Connections closed for protocol errors"
    );
    describe_counter!("sessiongrid_auth_failures_total", "Failed AUTH attempts");
    describe_gauge!(
        "sessiongrid_memory_entries_bytes",
        Unit::Bytes,
        "Bytes of entries held in memory"
    );
    describe_gauge!("sessiongrid_memory_entries", "Entries held in memory");
    describe_counter!(
        "sessiongrid_memory_evictions_total",
        "Entries dropped from memory to stay in budget (still on disk)"
    );
    describe_counter!("sessiongrid_expired_keys_total", "Keys deleted because their TTL passed");
    describe_counter!(
        "sessiongrid_store_entry_reads_total",
        "Entry reads that missed memory and went to disk"
    );
    describe_histogram!("sessiongrid_store_read_seconds", Unit::Seconds, "RocksDB point reads");
    describe_histogram!("sessiongrid_store_write_seconds", Unit::Seconds, "RocksDB batch writes");
    describe_counter!("sessiongrid_store_write_errors_total", "RocksDB writes that failed");
    describe_counter!(
        "sessiongrid_partition_restarts_total",
        "Partition actors restarted after a failure"
    );
    describe_gauge!("sessiongrid_cluster_epoch", "Epoch of this node's topology");
    describe_gauge!("sessiongrid_cluster_members", "Members in this node's topology");
    describe_gauge!("sessiongrid_cluster_primaries", "Partitions this node is primary of");
    describe_gauge!("sessiongrid_cluster_copies", "Partitions this node holds a complete copy of");
    describe_gauge!(
        "sessiongrid_cluster_moving_partitions",
        "Partitions whose target owners are not all in sync yet"
    );
    describe_gauge!("sessiongrid_cluster_serving", "1 while this node's lease lets it serve");
    describe_counter!("sessiongrid_p2p_connections_total", "Peer connections established");
    describe_counter!(
        "sessiongrid_p2p_handshake_failures_total",
        "Incoming peer connections refused (wrong or missing cluster secret, or not a peer)"
    );
    describe_counter!(
        "sessiongrid_p2p_messages_sent_total",
        "Grid messages sent to peers, by kind (request, response, append, ack, probe...)"
    );
    describe_counter!(
        "sessiongrid_p2p_writes_total",
        "Writes to peers' streams, each carrying every message queued for that peer"
    );
    describe_counter!("sessiongrid_p2p_messages_received_total", "Grid messages received");
    describe_counter!(
        "sessiongrid_p2p_messages_run_at_once_total",
        "Peer messages run by the stream reader in their partition, without its actor's mailbox"
    );
    describe_counter!("sessiongrid_p2p_send_failures_total", "Batches a peer did not receive");
    describe_counter!(
        "sessiongrid_p2p_bad_messages_total",
        "Incoming batches that failed to decode"
    );
    describe_counter!(
        "sessiongrid_cluster_topology_changes_total",
        "Topologies (epochs) this node adopted: joins, deaths, leaves and completed moves"
    );
    describe_counter!(
        "sessiongrid_session_events_total",
        "Session events this node published as the session's primary, by event"
    );
    describe_counter!("sessiongrid_session_events_lagged_total", "Events a slow subscriber missed");
    describe_gauge!(
        "sessiongrid_session_events_watched",
        "1 while some member watches attribute changes: this node's primaries make events of them"
    );
    describe_gauge!(
        "sessiongrid_session_events_watching_members",
        "Members (this node included) this node's primaries send attribute changes to"
    );
    describe_counter!(
        "sessiongrid_sessions_attribute_writes_total",
        "SESSION.SET calls that wrote attributes, through this node"
    );
    describe_counter!(
        "sessiongrid_sessions_logins_rejected_total",
        "Logins refused by the reject policy, through this node"
    );
    describe_counter!(
        "sessiongrid_http_auth_failures_total",
        "HTTP API calls refused for a missing or wrong admin token"
    );
    describe_counter!(
        "sessiongrid_cluster_suspicions_total",
        "Members declared dead, and coordinators suspected, by this node's failure detector"
    );
    describe_counter!(
        "sessiongrid_cluster_stale_sync_reports_total",
        "Reports of a learner in sync that the coordinator refused: made on an acknowledgement \
         from before the learner was left out of its partition and taken back"
    );
    describe_counter!(
        "sessiongrid_replication_copies_gone_back_total",
        "Followers whose copy went back under a newer table (let go while left out of the \
         partition): counted afresh and synced again"
    );
    describe_counter!(
        "sessiongrid_transfer_snapshots_total",
        "Partition copies this node started sending to a new or lagging owner"
    );
    describe_counter!(
        "sessiongrid_transfer_bytes_total",
        Unit::Bytes,
        "Bytes of entries sent to bring a new or lagging owner up to date: snapshot chunks and \
         catch-up writes (retransmissions included)"
    );
    describe_counter!(
        "sessiongrid_transfer_chunks_total",
        "Snapshot chunks sent (retransmissions included)"
    );
    describe_gauge!(
        "sessiongrid_replication_lag_writes",
        "The most writes any follower of this node's primary partitions still lacks"
    );
    describe_gauge!(
        "sessiongrid_sessions_live",
        "Live sessions this node holds, as primary copies and as backup copies"
    );
    describe_gauge!("sessiongrid_store_sst_bytes", Unit::Bytes, "Bytes of RocksDB table files");
    describe_gauge!(
        "sessiongrid_store_live_data_bytes",
        Unit::Bytes,
        "RocksDB's estimate of live entry bytes on disk"
    );
    describe_gauge!(
        "sessiongrid_store_pending_compaction_bytes",
        Unit::Bytes,
        "Bytes RocksDB estimates compaction still has to rewrite"
    );
    describe_gauge!(
        "sessiongrid_store_write_stopped",
        "1 while RocksDB stops writes (too many files awaiting compaction)"
    );
    describe_gauge!(
        "sessiongrid_store_memory_bytes",
        Unit::Bytes,
        "Memory RocksDB holds, by part: memtables, block_cache, table_readers (index and filter \
         blocks of its files)"
    );
    describe_gauge!(
        "sessiongrid_store_delayed_write_rate_bytes",
        Unit::Bytes,
        "Write rate RocksDB throttles to while stalling writes (0: no stall)"
    );
}
