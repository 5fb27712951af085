//! `/api/v1` for operators: the cluster as this node sees it, the partition table, draining a
//! node, and forgetting a lost one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sessiongrid_grid::GridError;

use super::HttpContext;
use crate::json;

pub fn routes() -> Router<HttpContext> {
    Router::new()
        .route("/cluster", get(cluster))
        .route("/partitions", get(partitions))
        .route("/nodes/{id}/drain", post(drain))
        .route("/nodes/{id}/forget", post(forget))
}

fn hex(id: u64) -> String {
    format!("{id:016x}")
}

/// Members with their partitions; on a single node, one member that holds everything.
async fn cluster(State(cx): State<HttpContext>) -> Response {
    let grid = cx.sessions.grid();
    let partitions = grid.partitions() as usize;
    let Some(status) = grid.cluster_status().await else {
        let live: u64 =
            grid.partition_counts().await.unwrap_or_default().iter().map(|c| c.sessions).sum();
        return Json(json!({
            "clustered": false,
            "node": hex(0),
            "epoch": 0,
            "coordinator": hex(0),
            "serving": true,
            "moving_partitions": 0,
            "unowned_partitions": 0,
            "lost": [],
            "partitions": partitions,
            "members": [{"id": hex(0), "primaries": partitions, "copies": partitions,
                         "sessions_primary": live, "sessions_backup": 0,
                         "leaving": false, "lite": false, "coordinator": true, "self": true}],
        }))
        .into_response();
    };
    // Sessions per partition, from each partition's primary; a member's backup copies hold what
    // their primaries hold.
    // Unknown (null) rather than zero when a partition did not answer.
    let counts = grid.partition_counts().await.ok();
    let sessions_in = |p: usize| counts.as_ref().map(|c| c.get(p).map_or(0, |c| c.sessions));
    let members: Vec<Value> = status
        .members
        .iter()
        .map(|&m| {
            let (mut primaries, mut copies) = (0, 0);
            let (mut on_primary, mut on_backup) = (Some(0u64), Some(0u64));
            let add = |total: &mut Option<u64>, n: Option<u64>| {
                *total = total.zip(n).map(|(a, b)| a + b);
            };
            for (p, a) in status.topology.iter().flat_map(|t| t.partitions.iter().enumerate()) {
                if a.primary() == Some(m) {
                    primaries += 1;
                    add(&mut on_primary, sessions_in(p));
                } else if a.owners.contains(&m) {
                    add(&mut on_backup, sessions_in(p));
                }
                copies += a.owners.contains(&m) as usize;
            }
            let t = status.topology.as_ref();
            let lite = t.is_some_and(|t| t.lite.contains(&m));
            let leaving = !lite && t.is_some_and(|t| t.leaving.contains(&m));
            json!({
                "id": hex(m),
                "primaries": primaries,
                "copies": copies,
                "sessions_primary": on_primary,
                "sessions_backup": on_backup,
                "leaving": leaving,
                "lite": lite,
                "coordinator": m == status.coordinator,
                "self": m == status.node,
            })
        })
        .collect();
    Json(json!({
        "clustered": true,
        "node": hex(status.node),
        "epoch": status.epoch,
        "coordinator": hex(status.coordinator),
        "serving": status.lease,
        "moving_partitions": status.moving,
        "unowned_partitions": status.unowned,
        "lost": status.lost.iter().map(|n| hex(*n)).collect::<Vec<_>>(),
        "partitions": partitions,
        "members": members,
    }))
    .into_response()
}

/// The partition table: owners (complete copies, primary first) and target of each partition.
async fn partitions(State(cx): State<HttpContext>) -> Response {
    let grid = cx.sessions.grid();
    let table: Vec<Value> = match grid.cluster_status().await.and_then(|s| s.topology) {
        Some(t) => t
            .partitions
            .iter()
            .enumerate()
            .map(|(p, a)| {
                json!({
                    "partition": p,
                    "primary": a.primary().map(hex),
                    "owners": a.owners.iter().copied().map(hex).collect::<Vec<_>>(),
                    "target": a.target.iter().copied().map(hex).collect::<Vec<_>>(),
                })
            })
            .collect(),
        None => (0..grid.partitions())
            .map(|p| json!({"partition": p, "primary": hex(0), "owners": [hex(0)], "target": [hex(0)]}))
            .collect(),
    };
    Json(Value::Array(table)).into_response()
}

fn fail(status: StatusCode, code: &str, message: &str) -> Response {
    (status, json::error(code, message)).into_response()
}

/// A node id as `status` and the cluster view print it (16 hex digits).
fn node_id(id: &str) -> Option<u64> {
    u64::from_str_radix(id.trim_start_matches("0x"), 16).ok()
}

fn bad_node_id() -> Response {
    fail(StatusCode::BAD_REQUEST, "bad_request", "a node id is 16 hex digits")
}

/// 202 with `{field: node}` once the grid took the request.
fn accepted(field: &str, node: u64, sent: Result<(), GridError>) -> Response {
    match sent {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ field: hex(node) }))).into_response(),
        Err(e) => fail(StatusCode::SERVICE_UNAVAILABLE, "try_again", &e.to_string()),
    }
}

/// Asks a member to hand its partitions over and stop, as SIGTERM would.
async fn drain(State(cx): State<HttpContext>, Path(id): Path<String>) -> Response {
    let grid = cx.sessions.grid();
    let Some(node) = node_id(&id) else { return bad_node_id() };
    let Some(status) = grid.cluster_status().await else {
        let message = "a single node is stopped with SIGTERM, not drained";
        return fail(StatusCode::BAD_REQUEST, "bad_request", message);
    };
    if !status.members.contains(&node) {
        return fail(StatusCode::NOT_FOUND, "not_found", "no such member");
    }
    accepted("draining", node, grid.request_drain(node))
}

/// Gives up a lost node for good: the partitions only it held start empty (their data is gone).
async fn forget(State(cx): State<HttpContext>, Path(id): Path<String>) -> Response {
    let grid = cx.sessions.grid();
    let Some(node) = node_id(&id) else { return bad_node_id() };
    let Some(status) = grid.cluster_status().await else {
        let message = "a single node has no other node to forget";
        return fail(StatusCode::BAD_REQUEST, "bad_request", message);
    };
    if status.members.contains(&node) {
        return fail(StatusCode::CONFLICT, "conflict", "a live member is drained, not forgotten");
    }
    if !status.lost.contains(&node) {
        let message = "no lost node with that id owns a partition";
        return fail(StatusCode::NOT_FOUND, "not_found", message);
    }
    accepted("forgotten", node, grid.forget(node))
}
