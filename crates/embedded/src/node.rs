//! [`Node`]: a grid node started inside a process, with the doors it is asked for.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;
use sessiongrid_cluster::config::Faults;
use sessiongrid_cluster::{ClusterConfig, SplitPolicy};
use sessiongrid_doors::http::HttpContext;
use sessiongrid_doors::redis::acl::Acl;
use sessiongrid_doors::redis::{RedisDoor, RedisDoorConfig};
use sessiongrid_doors::tls::{Tls, TlsFiles};
use sessiongrid_grid::transport::{Inbox, NoPeers};
use sessiongrid_grid::{Grid, Peers, Sessions};
use sessiongrid_model::config::{NodeConfig, WhenSplit};
use sessiongrid_net::{Net, NetConfig};
use sessiongrid_resp::Limits;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{gauges, secrets};

/// Which doors a node opens besides the in-process API.
#[derive(Clone)]
pub struct Doors {
    /// The Redis-protocol door on `resp_listen`.
    pub redis: bool,
    /// The HTTP door (dashboard, API, health, metrics) on `http_listen`.
    pub http: bool,
    /// What `GET /metrics` renders: the process's Prometheus recorder, if it installed one.
    pub metrics: Option<PrometheusHandle>,
}

impl Doors {
    /// Both doors, as the `sessiongrid node` binary opens them.
    pub fn all(metrics: Option<PrometheusHandle>) -> Doors {
        Doors { redis: true, http: true, metrics }
    }

    /// No door: the application reaches the grid only through [`NodeHandle::sessions`]. Its
    /// grid traffic still needs `p2p_listen` in a cluster.
    pub fn none() -> Doors {
        Doors { redis: false, http: false, metrics: None }
    }
}

/// Starts nodes; see [`Node::start`].
pub struct Node;

impl Node {
    /// Starts a node from the configuration the binary reads: a single node, or a cluster
    /// member when `p2p_listen` is set (joining through `join`). Serving starts at once; call
    /// [`NodeHandle::shutdown`] to stop, which hands a member's partitions over first.
    pub async fn start(config: NodeConfig, doors: Doors) -> anyhow::Result<NodeHandle> {
        config.validate()?;
        if config.p2p_listen.is_none() && !config.join.is_empty() {
            anyhow::bail!(
                "join needs p2p_listen: a node joins a cluster over its peer-to-peer address"
            );
        }
        let acl = Arc::new(load_acl(&config)?);
        protected_mode(&config, &doors, &acl)?;
        let grid = match &config.p2p_listen {
            Some(listen) => {
                // Told to peers, for cluster-aware clients of theirs (`CLUSTER SLOTS`).
                let door = Some(config.resp_listen.clone())
                    .filter(|a| doors.redis && !a.is_empty() && !a.ends_with(":0"));
                start_clustered(&config, listen, door).await?
            }
            None => start_single(&config).await?,
        };
        let sessions = Sessions::new(grid.clone(), config.sessions.clone());
        let shutdown = CancellationToken::new();
        let gauges = gauges::spawn(grid.clone(), config.p2p_listen.is_none(), shutdown.clone());
        let mut tasks = Vec::new();
        let mut tls = Vec::new();
        let redis_addrs = [
            Some(config.resp_listen.as_str()).filter(|a| !a.is_empty()),
            config.resp_tls_listen.as_deref(),
        ];
        if doors.redis && redis_addrs.iter().any(Option::is_some) {
            let mut door = RedisDoor::new(sessions.clone(), redis_config(&config, acl.clone()));
            for (addr, secure) in redis_addrs.into_iter().zip([false, true]) {
                let Some(addr) = addr else { continue };
                let settings = secure.then(|| load_tls(&config, &[])).transpose()?;
                tls.extend(settings.clone());
                door.listen(addr, settings)
                    .await
                    .with_context(|| format!("binding the redis door on {addr}"))?;
            }
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                door.run(stop).await;
                Ok(())
            }));
        }
        if doors.http {
            let admin_token =
                config.admin_token_file.as_deref().map(secrets::read_secret).transpose()?;
            let context = HttpContext {
                metrics: doors.metrics.clone(),
                sessions: sessions.clone(),
                admin_token: admin_token.map(Into::into),
                throttle: Default::default(),
                acl: Some(acl.clone()),
            };
            let settings =
                config.http_tls.then(|| load_tls(&config, &[b"http/1.1"])).transpose()?;
            tls.extend(settings.clone());
            let http = sessiongrid_doors::http::bind(&config.http_listen)
                .await
                .with_context(|| format!("binding the http door on {}", config.http_listen))?;
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                sessiongrid_doors::http::serve(http, settings, context, stop)
                    .await
                    .map_err(Into::into)
            }));
        }
        info!(
            resp = doors.redis.then_some(config.resp_listen.as_str()),
            resp_tls = doors.redis.then_some(config.resp_tls_listen.as_deref()).flatten(),
            http = doors.http.then_some(config.http_listen.as_str()),
            https = config.http_tls,
            "node serving"
        );
        Ok(NodeHandle { grid, sessions, shutdown, tasks, gauges, tls })
    }
}

/// A running node. Cheap operations go through [`NodeHandle::sessions`] (and
/// [`NodeHandle::grid`] for Redis-style keys); dropping the handle does not stop the node:
/// call [`NodeHandle::shutdown`].
pub struct NodeHandle {
    grid: Grid,
    sessions: Sessions,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    gauges: JoinHandle<()>,
    /// The doors' TLS settings, to reload.
    tls: Vec<Arc<Tls>>,
}

impl NodeHandle {
    /// The session operations (create, get, set, login, rotate, ...) as async calls.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The grid itself: single-key operations, keys, cluster status, events.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// True once this node serves requests: at once on a single node; in a cluster, once it has
    /// joined and holds a lease. A readiness probe for the application's own health check.
    pub async fn serving(&self) -> bool {
        match self.grid.cluster_status().await {
            None => true,
            Some(s) => s.lease && s.topology.is_some(),
        }
    }

    /// Resolves when an operator asked this node to drain (`sessiongrid drain`, the dashboard):
    /// the application should then call [`NodeHandle::shutdown`] and exit.
    pub async fn drain_requested(&self) {
        self.grid.drain_requested().await
    }

    /// Reads the doors' TLS certificate, key and client CA files again (`SIGHUP`): new
    /// connections use them, open ones keep theirs. On an error every door keeps what it had.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        for tls in &self.tls {
            tls.reload()?;
        }
        if !self.tls.is_empty() {
            info!("TLS certificates reloaded");
        }
        Ok(())
    }

    /// Stops the doors after the requests they have read, hands a member's partitions over to
    /// the others, stops the partitions and syncs the log.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        info!("shutting down: finishing in-flight requests");
        self.shutdown.cancel();
        for task in self.tasks {
            task.await.context("door task")??;
        }
        let _ = self.gauges.await;
        drop(self.sessions);
        self.grid.shutdown().await;
        info!("node stopped");
        Ok(())
    }
}

/// The doors' TLS settings from the configured files, offering `alpn` protocols.
fn load_tls(config: &NodeConfig, alpn: &[&[u8]]) -> anyhow::Result<Arc<Tls>> {
    let (Some(cert), Some(key)) = (&config.tls_cert_file, &config.tls_key_file) else {
        anyhow::bail!("TLS needs tls_cert_file and tls_key_file");
    };
    let files =
        TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: config.tls_ca_file.clone() };
    Ok(Tls::load(files, alpn)?)
}

/// The Redis door's users: the ACL file's, or the default user with the configured password.
fn load_acl(config: &NodeConfig) -> anyhow::Result<Acl> {
    let password = config.requirepass_file.as_deref().map(secrets::read_secret).transpose()?;
    Acl::new(password.map(Bytes::from), config.aclfile.clone()).map_err(|e| anyhow::anyhow!(e))
}

fn redis_config(config: &NodeConfig, acl: Arc<Acl>) -> RedisDoorConfig {
    RedisDoorConfig {
        limits: Limits {
            bulk_bytes_max: config.bulk_bytes_max,
            array_len_max: config.array_len_max,
            inline_bytes_max: config.inline_bytes_max,
            request_bytes_max: config.pipeline_bytes_max,
        },
        connections_max: config.connections_max,
        value_bytes_max: config.value_bytes_max,
        pipeline_bytes_max: config.pipeline_bytes_max,
        acl,
        config_view: config_view(config),
    }
}

/// A single node: a cluster of one, with the identity it would have as a member, so a data
/// directory can later found a cluster as the same node.
async fn start_single(config: &NodeConfig) -> anyhow::Result<Grid> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let keypair = sessiongrid_net::identity::load_or_create(&config.data_dir)?;
    let id = sessiongrid_net::identity::node_id(&keypair.public().to_peer_id());
    let peers = Peers { id, transport: Arc::new(NoPeers), inbox: Inbox::new(), joining: false };
    Ok(Grid::start_node(config, cluster_config(config), peers, false).await?)
}

fn cluster_config(config: &NodeConfig) -> ClusterConfig {
    ClusterConfig {
        replicas: config.replicas,
        dead_after_ms: config.failure_timeout_ms,
        lease_ms: config.failure_timeout_ms * 7 / 10,
        split: match config.when_split {
            WhenSplit::Serve => SplitPolicy::Serve,
            WhenSplit::Deny => SplitPolicy::Deny,
        },
        lite: config.lite,
        faults: planted_defects(),
        ..ClusterConfig::default()
    }
}

/// Defects switched on by `SESSIONGRID_PLANT_DEFECT` (`ack-before-backups`), to show that a
/// checker run against real nodes (`tests/chaos/`) finds them. Never set it on a node that
/// holds data anyone needs.
fn planted_defects() -> Faults {
    let planted = std::env::var("SESSIONGRID_PLANT_DEFECT").unwrap_or_default();
    let faults =
        Faults { ack_before_backups: planted == "ack-before-backups", ..Faults::default() };
    if faults.ack_before_backups {
        warn!("SESSIONGRID_PLANT_DEFECT: writes are acknowledged before their backups have them");
    } else if !planted.is_empty() {
        warn!(planted, "SESSIONGRID_PLANT_DEFECT names no known defect; none planted");
    }
    faults
}

/// Joins (or founds) a cluster over libp2p.
async fn start_clustered(
    config: &NodeConfig,
    listen: &str,
    door: Option<String>,
) -> anyhow::Result<Grid> {
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
    let inbox = Inbox::new();
    let net_config = NetConfig {
        keypair,
        listen,
        join: join.clone(),
        secret,
        max_frame_bytes: config.bulk_bytes_max.saturating_mul(2).max(64 << 20),
        door,
    };
    let net = Net::new(net_config, inbox.clone());
    let id = net.id;
    let peers = Peers { id, transport: Arc::new(net), inbox, joining: !join.is_empty() };
    Ok(Grid::start_node(config, cluster_config(config), peers, true).await?)
}

/// What `CONFIG GET` reports: the settings Redis clients and session stores probe.
/// Protected mode: a door reachable from other hosts needs its credentials.
fn protected_mode(config: &NodeConfig, doors: &Doors, acl: &Acl) -> anyhow::Result<()> {
    if !config.protected_mode {
        return Ok(());
    }
    let password = acl.credentials_required();
    let tls_addr = config.resp_tls_listen.clone().unwrap_or_default();
    let open = [
        (
            doors.redis && !password,
            "Redis",
            &config.resp_listen,
            "--requirepass-file (requirepass_file) or an --aclfile whose default user needs a password",
        ),
        (
            doors.redis && !password && config.tls_ca_file.is_none(),
            "Redis TLS",
            &tls_addr,
            "--requirepass-file (requirepass_file) or --tls-ca-file (tls_ca_file)",
        ),
        (
            doors.http && config.admin_token_file.is_none(),
            "HTTP",
            &config.http_listen,
            "--admin-token-file (admin_token_file)",
        ),
    ];
    for (unguarded, door, addr, flag) in open {
        if unguarded && !addr.is_empty() && !loopback_only(addr) {
            anyhow::bail!(
                "protected mode: the {door} door would listen on {addr}, reachable from other \
                 hosts, with no credentials; set {flag}, listen on a loopback address, or \
                 start with --protected-mode no (protected_mode = false)"
            );
        }
    }
    Ok(())
}

/// True if every address `addr` resolves to is a loopback address (127.0.0.0/8, ::1).
fn loopback_only(addr: &str) -> bool {
    use std::net::ToSocketAddrs;
    match addr.to_socket_addrs() {
        Ok(mut addrs) => addrs.all(|a| a.ip().is_loopback()),
        Err(_) => false,
    }
}

fn config_view(config: &NodeConfig) -> Vec<(&'static str, String)> {
    vec![
        ("appendonly", "yes".into()),
        ("databases", sessiongrid_model::key::DATABASES.to_string()),
        ("maxclients", config.connections_max.to_string()),
        ("maxmemory", config.memory_max_bytes.to_string()),
        ("maxmemory-policy", "noeviction".into()),
        ("proto-max-bulk-len", config.bulk_bytes_max.to_string()),
        ("replica-read-only", "yes".into()),
        ("save", String::new()),
        ("timeout", "0".into()),
    ]
}
