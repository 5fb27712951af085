//! `sessiongrid node`: start the grid and its doors; on SIGTERM or SIGINT stop accepting, let
//! connections finish the requests they have read, stop the partitions, sync the log, exit 0.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use sessiongrid_cluster::{ClusterConfig, SplitPolicy};
use sessiongrid_doors::http::HttpContext;
use sessiongrid_doors::redis::{RedisDoor, RedisDoorConfig};
use sessiongrid_grid::{Grid, Sessions};
use sessiongrid_model::config::{NodeConfig, WhenSplit};
use sessiongrid_net::{Net, NetConfig};
use sessiongrid_resp::Limits;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::NodeArgs;
use crate::{secrets, telemetry};

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
    let password = config.requirepass_file.as_deref().map(secrets::read_secret).transpose()?;
    let metrics = telemetry::init_metrics()?;
    telemetry::spawn_upkeep(metrics.clone());
    let grid = match &config.p2p_listen {
        Some(listen) => start_clustered(&config, listen).await?,
        None => Grid::start(&config).await?,
    };
    let door_config = RedisDoorConfig {
        limits: Limits {
            bulk_bytes_max: config.bulk_bytes_max,
            array_len_max: config.array_len_max,
            inline_bytes_max: config.inline_bytes_max,
            request_bytes_max: config.pipeline_bytes_max,
        },
        connections_max: config.connections_max,
        value_bytes_max: config.value_bytes_max,
        pipeline_bytes_max: config.pipeline_bytes_max,
        password: password.map(Bytes::from),
        config_view: config_view(&config),
    };
    telemetry::spawn_store_gauges(grid.store().clone());
    if config.p2p_listen.is_none() {
        telemetry::spawn_single_node_gauges(grid.clone());
    }
    let sessions = Sessions::new(grid.clone(), config.sessions.clone());
    let admin_token = config.admin_token_file.as_deref().map(secrets::read_secret).transpose()?;
    let http_context = HttpContext {
        metrics: Some(metrics),
        sessions: sessions.clone(),
        admin_token: admin_token.map(Into::into),
    };
    let door = RedisDoor::bind(&config.resp_listen, sessions, door_config)
        .await
        .with_context(|| format!("binding the redis door on {}", config.resp_listen))?;
    let http = sessiongrid_doors::http::bind(&config.http_listen)
        .await
        .with_context(|| format!("binding the http door on {}", config.http_listen))?;
    if config.p2p_listen.is_none() && !config.join.is_empty() {
        anyhow::bail!(
            "join needs p2p_listen: a node joins a cluster over its peer-to-peer address"
        );
    }

    let shutdown = CancellationToken::new();
    let http_task =
        tokio::spawn(sessiongrid_doors::http::serve(http, http_context, shutdown.clone()));
    let door_task = tokio::spawn(door.run(shutdown.clone()));
    info!(resp = %config.resp_listen, http = %config.http_listen, "node serving");

    tokio::select! {
        signal = wait_for_signal() => signal?,
        _ = grid.drain_requested() => {}
    }
    info!("shutting down: finishing in-flight requests");
    shutdown.cancel();
    door_task.await.context("redis door task")?;
    http_task.await.context("http door task")??;
    grid.shutdown().await;
    info!("node stopped");
    Ok(())
}

/// Joins (or founds) a cluster over libp2p.
async fn start_clustered(config: &NodeConfig, listen: &str) -> anyhow::Result<Grid> {
    let listen: SocketAddr =
        listen.parse().with_context(|| format!("p2p_listen {listen:?} is not an ip:port"))?;
    let join = config
        .join
        .iter()
        .map(|j| j.parse().with_context(|| format!("join {j:?} is not an ip:port")))
        .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
    let secret = config.cluster_secret_file.as_deref().map(secrets::read_secret).transpose()?;
    if secret.is_none() {
        warn!("no cluster secret: any process that can reach the p2p port can join");
    }
    let keypair = sessiongrid_net::identity::load_or_create(&config.data_dir)?;
    let inbox = sessiongrid_grid::cluster::inbox();
    let net_config = NetConfig {
        keypair,
        listen,
        join: join.clone(),
        secret,
        max_frame_bytes: config.bulk_bytes_max.saturating_mul(2).max(64 << 20),
    };
    let net = Net::start(net_config, inbox.0.clone())?;
    let id = net.id;
    let cluster = ClusterConfig {
        replicas: config.replicas,
        dead_after_ms: config.failure_timeout_ms,
        lease_ms: config.failure_timeout_ms * 7 / 10,
        split: match config.when_split {
            WhenSplit::Serve => SplitPolicy::Serve,
            WhenSplit::Deny => SplitPolicy::Deny,
        },
        ..ClusterConfig::default()
    };
    let joining = !join.is_empty();
    Ok(Grid::start_clustered(config, id, cluster, joining, Arc::new(net), inbox).await?)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// What `CONFIG GET` reports: the settings Redis clients and session stores probe.
fn config_view(config: &NodeConfig) -> Vec<(&'static str, String)> {
    vec![
        ("appendonly", "yes".into()),
        ("databases", "1".into()),
        ("maxclients", config.connections_max.to_string()),
        ("maxmemory", config.memory_max_bytes.to_string()),
        ("maxmemory-policy", "noeviction".into()),
        ("notify-keyspace-events", String::new()),
        ("proto-max-bulk-len", config.bulk_bytes_max.to_string()),
        ("save", String::new()),
        ("timeout", "0".into()),
    ]
}
