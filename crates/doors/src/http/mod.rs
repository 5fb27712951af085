//! The HTTP door: the dashboard at `GET /`, `GET /health` (200 once serving), `GET /metrics`
//! (Prometheus text), and under `/api/v1` the session API ([`api`]) and the operators' API
//! ([`admin`]), described in `docs/openapi.yaml`.
//!
//! When an admin token is configured, every `/api/v1` call must carry it as
//! `Authorization: Bearer <token>`; health and metrics stay open to probes and scrapers.

mod admin;
mod api;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sessiongrid_grid::Sessions;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::json;
use crate::tls::{Stream, Tls};

/// What the HTTP door serves with.
#[derive(Clone)]
pub struct HttpContext {
    pub metrics: Option<PrometheusHandle>,
    pub sessions: Sessions,
    /// Bearer token required by `/api/v1`; `None`: open.
    pub admin_token: Option<Arc<[u8]>>,
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
    let api = api::routes()
        .merge(admin::routes())
        .layer(middleware::from_fn_with_state(context.clone(), require_token));
    let app = Router::new()
        .route("/", get(dashboard))
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(render_metrics))
        .nest("/api/v1", api)
        .with_state(context);
    info!(addr = %listener.local_addr()?, tls = tls.is_some(), "http door listening");
    let stop = shutdown.clone().cancelled_owned();
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(stop).await,
        Some(tls) => {
            let listener = TlsListener::start(listener, tls, shutdown)?;
            axum::serve(listener, app).with_graceful_shutdown(stop).await
        }
    }
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

async fn require_token(
    State(context): State<HttpContext>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &context.admin_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g, token)) {
            metrics::counter!("sessiongrid_http_auth_failures_total").increment(1);
            let body = json::error("unauthorized", "a valid admin token is required");
            return (StatusCode::UNAUTHORIZED, body).into_response();
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first difference, so timing tells nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
