//! An axum shop (login, a cart, a counter, logout) using tower-sessions with its sessions in
//! Sessiongrid. Each process can embed a grid member (`--p2p-listen`, `--join`): then the
//! application's own processes are the grid. Or it can use remote grid nodes (`--grid`), or,
//! for comparison, tower-sessions' in-memory store (`--memory`) or a plain Redis-backed store
//! on `redis-server` (`--redis`).
//!
//! ```sh
//! axum-shop --listen 127.0.0.1:3000 --data-dir data/a --p2p-listen 127.0.0.1:7300
//! axum-shop --listen 127.0.0.1:3001 --data-dir data/b --p2p-listen 127.0.0.1:7301 --join 127.0.0.1:7300
//! ```

mod redis_store;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use clap::Parser;
use serde::Deserialize;
use sessiongrid_embedded::{Doors, Node, NodeConfig, NodeHandle};
use sessiongrid_tower_sessions::{GridStore, Remote};
use tokio::signal::unix::{signal, SignalKind};
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer};

#[derive(Parser, Debug)]
struct Args {
    /// Address of the shop's HTTP server.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: String,
    /// Data directory of the embedded grid member.
    #[arg(long, default_value = "./data/axum-shop")]
    data_dir: PathBuf,
    /// Peer-to-peer address of the embedded member; without it the app embeds a single node.
    #[arg(long)]
    p2p_listen: Option<String>,
    /// A member to join through (repeat for several).
    #[arg(long)]
    join: Vec<String>,
    /// File with the cluster secret.
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// Join as a lite member: route to the grid, hold no sessions in this process.
    #[arg(long)]
    lite: bool,
    /// Use remote grid nodes' Redis doors (comma-separated host:port) instead of embedding one.
    #[arg(long, value_delimiter = ',')]
    grid: Vec<String>,
    /// Use a plain Redis-backed store on this redis-server (the benchmark's baseline).
    #[arg(long)]
    redis: Option<String>,
    /// Use tower-sessions' in-memory store (sessions die with the process).
    #[arg(long)]
    memory: bool,
}

#[derive(Deserialize)]
struct Item {
    item: String,
}

#[derive(Deserialize)]
struct User {
    user: String,
}

async fn counter(session: Session) -> String {
    let n: u64 = session.get("counter").await.ok().flatten().unwrap_or(0) + 1;
    match session.insert("counter", n).await {
        Ok(()) => format!("counter={n}"),
        Err(e) => format!("error={e}"),
    }
}

async fn add_to_cart(session: Session, Query(q): Query<Item>) -> String {
    let mut cart: Vec<String> = session.get("cart").await.ok().flatten().unwrap_or_default();
    cart.push(q.item);
    match session.insert("cart", &cart).await {
        Ok(()) => format!("cart={}", cart.join(",")),
        Err(e) => format!("error={e}"),
    }
}

async fn cart(session: Session) -> String {
    let cart: Vec<String> = session.get("cart").await.ok().flatten().unwrap_or_default();
    format!("cart={}", cart.join(","))
}

async fn login(session: Session, Query(q): Query<User>) -> String {
    // A new id at login: a session id seen before it cannot be used after it.
    if let Err(e) = session.cycle_id().await {
        return format!("error={e}");
    }
    match session.insert("user", &q.user).await {
        Ok(()) => format!("logged in as {}", q.user),
        Err(e) => format!("error={e}"),
    }
}

async fn whoami(session: Session) -> String {
    let user: Option<String> = session.get("user").await.ok().flatten();
    format!("user={}", user.unwrap_or_default())
}

async fn logout(session: Session) -> String {
    match session.flush().await {
        Ok(()) => "logged out".into(),
        Err(e) => format!("error={e}"),
    }
}

/// The shop's routes; `/health` answers 200 once `ready` says the session store can serve.
fn routes(ready: Ready) -> Router {
    Router::new()
        .route(
            "/health",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready().await {
                        (axum::http::StatusCode::OK, "ok")
                    } else {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "joining the grid")
                    }
                }
            }),
        )
        .route("/counter", get(counter))
        .route("/cart/add", get(add_to_cart))
        .route("/cart", get(cart))
        .route("/login", get(login))
        .route("/whoami", get(whoami))
        .route("/logout", get(logout))
}

async fn stop_signal() {
    let (Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Whether the session store can serve yet (the embedded member has joined).
type Ready = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

fn always_ready() -> Ready {
    Arc::new(|| Box::pin(async { true }))
}

async fn serve<S: tower_sessions::SessionStore + Clone>(
    listen: &str,
    store: S,
    ready: Ready,
) -> anyhow::Result<()> {
    let layer = SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::minutes(30)));
    let app = routes(ready).layer(layer);
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    tracing::info!(%listen, "shop serving");
    axum::serve(listener, app).with_graceful_shutdown(stop_signal()).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    if args.memory {
        return serve(&args.listen, MemoryStore::default(), always_ready()).await;
    }
    if let Some(address) = &args.redis {
        let store = redis_store::RedisStore::connect(address).await?;
        return serve(&args.listen, store, always_ready()).await;
    }
    if !args.grid.is_empty() {
        let store = GridStore::remote(Remote::new(args.grid.clone(), None), "shop");
        return serve(&args.listen, store, always_ready()).await;
    }
    let config = NodeConfig {
        data_dir: args.data_dir.clone(),
        p2p_listen: args.p2p_listen.clone(),
        join: args.join.clone(),
        cluster_secret_file: args.cluster_secret_file.clone(),
        lite: args.lite,
        ..NodeConfig::default()
    };
    let node = Arc::new(Node::start(config, Doors::none()).await?);
    let store = GridStore::embedded(node.sessions().clone(), "shop");
    let probe = node.clone();
    let ready: Ready = Arc::new(move || {
        let node = probe.clone();
        Box::pin(async move { node.serving().await })
    });
    let served = serve(&args.listen, store, ready).await;
    let node: NodeHandle = Arc::try_unwrap(node)
        .map_err(|_| anyhow::anyhow!("the grid node is still in use at exit"))?;
    // Hands this member's partitions to the other processes before exiting.
    node.shutdown().await?;
    served
}
