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
    describe_counter!("sessiongrid_p2p_messages_sent_total", "Grid messages sent to peers");
    describe_counter!("sessiongrid_p2p_messages_received_total", "Grid messages received");
    describe_counter!("sessiongrid_p2p_send_failures_total", "Batches a peer did not receive");
    describe_counter!(
        "sessiongrid_p2p_bad_messages_total",
        "Incoming batches that failed to decode"
    );
}
