//! The HTTP door: `GET /health` (200 once serving) and `GET /metrics` (Prometheus text).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

#[derive(Clone)]
struct HttpState {
    metrics: Option<PrometheusHandle>,
}

/// Binds the HTTP door.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    metrics: Option<PrometheusHandle>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(render_metrics))
        .with_state(HttpState { metrics });
    info!(addr = %listener.local_addr()?, "http door listening");
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

async fn render_metrics(State(state): State<HttpState>) -> String {
    state.metrics.as_ref().map(|h| h.render()).unwrap_or_default()
}
