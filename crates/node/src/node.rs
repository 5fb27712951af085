//! `sessiongrid node`: start the grid and its doors; on SIGTERM or SIGINT stop accepting, let
//! connections finish the requests they have read, stop the partitions, sync the log, exit 0.
//! On SIGHUP re-read the doors' TLS certificate files.

use sessiongrid_embedded::{Doors, Node};
use tokio::signal::unix::{signal, SignalKind};
use tracing::error;

use crate::cli::NodeArgs;
use crate::telemetry;

pub async fn run(args: NodeArgs) -> anyhow::Result<()> {
    telemetry::init_logs(args.log_format);
    let result = serve(args).await;
    if let Err(e) = &result {
        error!(error = format!("{e:#}"), "node failed");
    }
    result
}

async fn serve(args: NodeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let metrics = telemetry::init_metrics()?;
    telemetry::spawn_upkeep(metrics.clone());
    let node = Node::start(config, Doors::all(Some(metrics))).await?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = node.drain_requested() => break,
            _ = hangup.recv() => {
                if let Err(e) = node.reload_tls() {
                    error!(error = format!("{e:#}"), "TLS reload failed; the doors keep their certificates");
                }
            }
        }
    }
    node.shutdown().await
}
