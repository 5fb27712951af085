//! The HTTP door: the dashboard at `GET /`, `GET /health` (200 once serving), `GET /metrics`
//! (Prometheus text), and under `/api/v1` the session API ([`api`]) and the operators' API
//! ([`admin`]), described in `docs/openapi.yaml`.
//!
//! When an admin token is configured, every `/api/v1` call must carry it as
//! `Authorization: Bearer <token>`; health and metrics stay open to probes and scrapers.

mod admin;
mod api;

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
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::json;

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

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
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
    info!(addr = %listener.local_addr()?, "http door listening");
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
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
