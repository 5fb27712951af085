//! Accept loop of the Redis door.
//!
//! A door listens on one or more addresses, plain or TLS (`tls-port` in Redis' terms), all
//! serving the same clients' registry, scripts and limits. Each accepted socket gets a task on
//! one of the grid's engine threads (they take turns), where the partitions it reaches most
//! cheaply live, which first runs the TLS handshake on a TLS listener; a semaphore caps
//! connections at `connections_max` (one over the cap is told so and closed). Shutdown: stop
//! accepting, tell every connection to finish the requests it has already read, and wait for
//! them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sessiongrid_grid::{Grid, Sessions};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, debug_span, info, warn, Instrument};

use super::acl::Acl;
use super::commands::CommandMetrics;
use super::connection::Connection;
use crate::tls::{Stream, Tls};
use sessiongrid_resp::Limits;

/// What the door needs besides the grid.
#[derive(Clone)]
pub struct RedisDoorConfig {
    pub limits: Limits,
    pub connections_max: usize,
    pub value_bytes_max: usize,
    pub pipeline_bytes_max: usize,
    /// The users clients authenticate as, and what each may do.
    pub acl: Arc<Acl>,
    /// Values `CONFIG GET` reports, as (name, value).
    pub config_view: Vec<(&'static str, String)>,
}

/// State shared by all connections of the door.
pub struct Shared {
    pub grid: Grid,
    pub sessions: Sessions,
    pub config: RedisDoorConfig,
    next_client_id: AtomicU64,
    pub started: std::time::Instant,
    pub connections: AtomicU64,
    pub commands_processed: AtomicU64,
    /// Clients waiting in a blocking command (`INFO`'s `blocked_clients`).
    pub blocked_clients: AtomicU64,
    /// Per-command metric handles, indexed like the command table.
    pub command_metrics: Vec<CommandMetrics>,
    /// Lua scripts and function libraries of this node.
    pub scripts: super::scripting::Scripts,
    /// The open connections.
    pub clients: super::clients::Clients,
    /// Clients blocked on each key, in the order they blocked.
    pub block_lines: super::commands::blocking::Lines,
    /// Error replies by code (`INFO errorstats`).
    pub errors: super::commands::ErrorStats,
    /// Addresses that failed `AUTH`, slowed down.
    pub auth_throttle: crate::throttle::Throttle,
}

impl Shared {
    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

pub struct RedisDoor {
    /// Each address with its TLS settings (`None`: plain TCP).
    listeners: Vec<(TcpListener, Option<Arc<Tls>>)>,
    shared: Arc<Shared>,
}

impl RedisDoor {
    /// A door listening on `addr` (plain TCP); see [`RedisDoor::listen`] for more.
    pub async fn bind(
        addr: &str,
        sessions: Sessions,
        config: RedisDoorConfig,
    ) -> std::io::Result<Self> {
        let mut door = RedisDoor::new(sessions, config);
        door.listen(addr, None).await?;
        Ok(door)
    }

    /// A door that listens nowhere yet.
    pub fn new(sessions: Sessions, config: RedisDoorConfig) -> Self {
        let shared = Arc::new(Shared {
            grid: sessions.grid().clone(),
            sessions,
            config,
            next_client_id: AtomicU64::new(1),
            started: std::time::Instant::now(),
            connections: AtomicU64::new(0),
            commands_processed: AtomicU64::new(0),
            blocked_clients: AtomicU64::new(0),
            command_metrics: CommandMetrics::for_all_commands(),
            scripts: Default::default(),
            clients: Default::default(),
            block_lines: Default::default(),
            errors: Default::default(),
            auth_throttle: Default::default(),
        });
        RedisDoor { listeners: Vec::new(), shared }
    }

    /// Also listens on `addr`, through TLS if `tls` is given.
    pub async fn listen(&mut self, addr: &str, tls: Option<Arc<Tls>>) -> std::io::Result<()> {
        self.listeners.push((TcpListener::bind(addr).await?, tls));
        Ok(())
    }

    /// The address of the first listener.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self.listeners.first() {
            Some((listener, _)) => listener.local_addr(),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no listener")),
        }
    }

    /// Serves until `shutdown` is cancelled, then waits for open connections to finish the
    /// requests they have read.
    pub async fn run(self, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.shared.config.connections_max));
        let tracker = TaskTracker::new();
        let accepting = self.listeners.into_iter().map(|(listener, tls)| {
            let door = Listener { listener, tls, shared: self.shared.clone() };
            door.accept_loop(permits.clone(), tracker.clone(), shutdown.clone())
        });
        futures::future::join_all(accepting).await;
        tracker.close();
        // A client that stops reading could hold its connection open forever; give up on it.
        if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait()).await.is_err() {
            warn!(left = tracker.len(), "connections still open after the drain timeout");
        }
        info!("redis door closed");
    }
}

/// One address of the door.
struct Listener {
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    shared: Arc<Shared>,
}

impl Listener {
    async fn accept_loop(
        self,
        permits: Arc<Semaphore>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) {
        let addr = self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        info!(%addr, tls = self.tls.is_some(), "redis door listening");
        loop {
            let (socket, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                metrics::counter!("sessiongrid_connections_rejected_total").increment(1);
                // A TLS client would not understand a plain-text refusal: it is only closed.
                if self.tls.is_none() {
                    tracker.spawn(refuse(socket));
                }
                continue;
            };
            let _ = socket.set_nodelay(true);
            let laddr = socket.local_addr().unwrap_or(peer);
            // Moved to the engine thread's own reactor there.
            let socket = match socket.into_std() {
                Ok(socket) => socket,
                Err(e) => {
                    warn!(error = %e, "could not hand a connection over");
                    continue;
                }
            };
            let (shared, tls, stop) = (self.shared.clone(), self.tls.clone(), shutdown.clone());
            let id = shared.next_client_id();
            let span = debug_span!("client", id, %peer, tls = tls.is_some());
            let runtime = shared.grid.connection_runtime();
            tracker.spawn_on(
                async move {
                    let Ok(socket) = TcpStream::from_std(socket) else { return };
                    let stream = match tls {
                        None => Stream::Plain(socket),
                        Some(tls) => match tls.accept(socket).await {
                            Ok(stream) => stream,
                            Err(e) => return debug!(error = %e, "TLS handshake failed"),
                        },
                    };
                    shared.connections.fetch_add(1, Ordering::Relaxed);
                    metrics::gauge!("sessiongrid_connections").increment(1);
                    Connection::new(stream, shared.clone(), id, (peer, laddr)).serve(stop).await;
                    metrics::gauge!("sessiongrid_connections").decrement(1);
                    shared.connections.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                }
                .instrument(span),
                &runtime,
            );
        }
    }
}

/// How long shutdown waits for connections to finish the requests they have read.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn refuse(mut socket: TcpStream) {
    let _ = socket.write_all(b"-ERR max number of clients reached\r\n").await;
    let _ = socket.shutdown().await;
}
