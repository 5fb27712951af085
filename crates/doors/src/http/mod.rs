//! The HTTP door: the dashboard at `GET /`, `GET /health` (200 once serving), `GET /metrics`
//! (Prometheus text), and under `/api/v1` the session API ([`api`]) and the operators' API
//! ([`admin`]), described in `docs/openapi.yaml`.
//!
//! When an admin token is configured, every `/api/v1` call must carry it as
//! `Authorization: Bearer <token>`; health and metrics stay open to probes and scrapers.

mod admin;
mod api;
pub mod caller;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::IncomingStream;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sessiongrid_grid::Sessions;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::redis::acl::Acl;
use crate::throttle::{same_secret, Throttle};
use crate::tls::{Stream, Tls};
use crate::{audit, json};
use caller::Caller;

/// What the HTTP door serves with.
#[derive(Clone)]
pub struct HttpContext {
    pub metrics: Option<PrometheusHandle>,
    pub sessions: Sessions,
    /// Bearer token required by `/api/v1`; `None`: open.
    pub admin_token: Option<Arc<[u8]>>,
    /// Addresses that sent a wrong token, slowed down.
    pub throttle: Arc<Throttle>,
    /// ACL users, who may call the API with their name and password (`Authorization: Basic`)
    /// within their rules.
    pub acl: Option<Arc<Acl>>,
}

/// Binds the HTTP door.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves (HTTPS if `tls` is given) until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    context: HttpContext,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = app(context);
    info!(addr = %listener.local_addr()?, tls = tls.is_some(), "http door listening");
    let stop = shutdown.clone().cancelled_owned();
    match tls {
        None => {
            let app = app.into_make_service_with_connect_info::<Peer>();
            axum::serve(listener, app).with_graceful_shutdown(stop).await
        }
        Some(tls) => {
            let listener = TlsListener::start(listener, tls, shutdown)?;
            let app = app.into_make_service_with_connect_info::<Peer>();
            axum::serve(listener, app).with_graceful_shutdown(stop).await
        }
    }
}

/// Every route of the door.
pub fn app(context: HttpContext) -> Router {
    let api = api::routes()
        .merge(admin::routes())
        .layer(middleware::from_fn_with_state(context.clone(), audit_calls))
        .layer(middleware::from_fn_with_state(context.clone(), require_token));
    Router::new()
        .route("/", get(dashboard))
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(render_metrics))
        .nest("/api/v1", api)
        .with_state(context)
}

/// The door's listener over TLS: each handshake runs in a task of its own (a slow client
/// holds up no other) and the finished ones are handed to the server.
struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(Stream, SocketAddr)>,
}

impl TlsListener {
    fn start(
        listener: TcpListener,
        tls: Arc<Tls>,
        shutdown: CancellationToken,
    ) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (socket, peer) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tx.closed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            warn!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    match tls.accept(socket).await {
                        Ok(stream) => drop(tx.send((stream, peer)).await),
                        Err(e) => debug!(%peer, error = %e, "TLS handshake failed"),
                    }
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // Accepting stopped (shutdown): the server stops asking first.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The dashboard: one page, its script and styles inside, no other asset. It reads the API
/// (asking for the admin token if the node has one) and `/metrics`.
const DASHBOARD: &str = include_str!("dashboard.html");

async fn dashboard() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], DASHBOARD).into_response()
}

async fn render_metrics(State(context): State<HttpContext>) -> String {
    context.metrics.as_ref().map(|h| h.render()).unwrap_or_default()
}

/// Checks the caller's credentials and puts the [`Caller`] in the request: the admin token
/// (`Bearer`), or an ACL user's name and password (`Basic`) for the calls its rules allow.
/// Without an admin token, a request without credentials may do everything (bind the door to
/// a private address then; protected mode insists).
async fn require_token(
    State(context): State<HttpContext>,
    mut request: Request,
    next: Next,
) -> Response {
    let given = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes().to_vec());
    let basic = given.as_deref().is_some_and(|g| g.starts_with(b"Basic "));
    if context.admin_token.is_none() && !basic {
        request.extensions_mut().insert(Caller::Admin);
        return next.run(request).await;
    }
    let from = peer(&request);
    let ip = from.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |a| a.ip());
    let checked = context.throttle.slot(ip, Instant::now()).wait().await;
    let caller = match (&given, &context.admin_token, &context.acl) {
        _ if !checked => None,
        (Some(g), _, Some(acl)) if basic => caller::basic_user(acl, g).map(Caller::User),
        (Some(g), Some(token), _) => g
            .strip_prefix(b"Bearer ")
            .is_some_and(|g| same_secret(g, token))
            .then_some(Caller::Admin),
        _ => None,
    };
    let call = format!("{} {}", request.method(), request.uri());
    let Some(caller) = caller else {
        metrics::counter!("sessiongrid_http_auth_failures_total").increment(1);
        audit::record("http auth", "unknown", &address(from), &call, "refused");
        let body = json::error("unauthorized", "a valid admin token or user is required");
        return (StatusCode::UNAUTHORIZED, body).into_response();
    };
    context.throttle.succeeded(ip);
    if let Caller::User(user) = &caller {
        if !caller::may_call(user, request.method(), request.uri().path()) {
            audit::record("http call", &user.name, &address(from), &call, "refused");
            return caller::forbidden("this user's rules do not allow this call");
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Records the API calls that act on other people's sessions or on the cluster (see
/// [`crate::audit`]).
async fn audit_calls(State(context): State<HttpContext>, request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let action = match (method.as_str(), parts.as_slice()) {
        ("POST", ["nodes", _, "drain"]) => Some("drain"),
        ("POST", ["nodes", _, "forget"]) => Some("forget"),
        ("DELETE", ["users", _, "sessions"]) => Some("session.kickuser"),
        _ => None,
    };
    let from = address(peer(&request));
    let who = match request.extensions().get::<Caller>() {
        Some(Caller::User(user)) => format!("user {}", user.name),
        _ if context.admin_token.is_some() => "admin token".to_string(),
        _ => "anyone (no token)".to_string(),
    };
    let response = next.run(request).await;
    if let Some(action) = action {
        let outcome = if response.status().is_success() { "ok" } else { "refused" };
        audit::record(action, &who, &from, parts.get(1).unwrap_or(&""), outcome);
    }
    response
}

/// The client's address, as a request carries it.
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

fn peer(request: &Request) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<Peer>>().map(|c| c.0 .0)
}

fn address(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unknown".to_string(), |a| a.to_string())
}
