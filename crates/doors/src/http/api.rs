//! `/api/v1`: sessions and users over HTTP/JSON, with the same rules as the `SESSION.*`
//! commands (both call [`Sessions`](sessiongrid_grid::Sessions)).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use sessiongrid_grid::sessions::{GetOptions, LoginOutcome, SessionError};
use sessiongrid_model::session::{LoginPolicy, Tag};
use tokio::sync::broadcast::error::RecvError;

use super::caller::Caller;
use super::HttpContext;
use crate::json;

pub fn routes() -> Router<HttpContext> {
    Router::new()
        .route("/sessions", get(list).post(create))
        .route("/sessions/{id}", get(read).post(write).delete(invalidate))
        .route("/sessions/{id}/rotate", post(rotate))
        .route("/sessions/{id}/login", post(login))
        .route("/sessions/{id}/logout", post(logout))
        .route("/users", get(top_users))
        .route("/users/{principal}/sessions", get(by_user).delete(kick_user))
        .route("/stats", get(stats))
        .route("/events", get(events))
}

type ApiResult = Result<Response, Response>;

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, json::error("not_found", "no such session")).into_response()
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, json::error("bad_request", message)).into_response()
}

/// The status of a refusal: the grid's error codes map to HTTP ones.
fn failed(e: SessionError) -> Response {
    let text = e.to_string();
    let (status, code) = match &e {
        SessionError::Grid(g) if g.is_transient() => (StatusCode::SERVICE_UNAVAILABLE, "try_again"),
        SessionError::Grid(g) if g.is_writes_refused() => {
            (StatusCode::INSUFFICIENT_STORAGE, "writes_refused")
        }
        SessionError::Grid(g) if g.is_indeterminate() => {
            (StatusCode::GATEWAY_TIMEOUT, "indeterminate")
        }
        SessionError::Indeterminate(_) => (StatusCode::GATEWAY_TIMEOUT, "indeterminate"),
        SessionError::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        SessionError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        SessionError::LoginRejected(_) => (StatusCode::CONFLICT, "login_rejected"),
        SessionError::Limit(_) => (StatusCode::PAYLOAD_TOO_LARGE, "limit"),
        SessionError::TryAgain(_) => (StatusCode::SERVICE_UNAVAILABLE, "try_again"),
        SessionError::Grid(_) | SessionError::Refused(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    };
    let mut response = (status, json::error(code, &text)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

fn ok(value: Value) -> Response {
    Json(value).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    group: String,
    idle_timeout_s: Option<u64>,
    absolute_timeout_s: Option<u64>,
}

async fn create(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<CreateBody>,
) -> ApiResult {
    caller.check_group(body.group.as_bytes())?;
    let group = Bytes::from(body.group);
    let id = cx
        .sessions
        .create(group, body.idle_timeout_s, body.absolute_timeout_s)
        .await
        .map_err(failed)?;
    let id = String::from_utf8_lossy(&id).into_owned();
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    app: Option<String>,
    /// Comma-separated attribute names.
    attrs: Option<String>,
    /// `false` leaves last access where it is.
    touch: Option<bool>,
}

async fn read(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult {
    caller.check_session(&cx.sessions, &id).await?;
    let opts = GetOptions {
        app: q.app.map(Bytes::from),
        attrs: q
            .attrs
            .map(|a| a.split(',').map(|n| Bytes::copy_from_slice(n.as_bytes())).collect()),
        no_touch: q.touch == Some(false),
        ..GetOptions::default()
    };
    match cx.sessions.get(id.as_bytes(), &opts).await.map_err(failed)? {
        Some(s) => Ok(ok(json::session(&s, true))),
        None => Err(not_found()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttrBody {
    tag: String,
    value: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteBody {
    if_version: Option<u64>,
    /// Attributes to set.
    #[serde(default)]
    set: BTreeMap<String, AttrBody>,
    /// Attributes to remove.
    #[serde(default)]
    remove: Vec<String>,
}

/// Sets and removes attributes: `{"set": {name: {tag, value}}, "remove": [names], "if_version"}`.
/// Setting happens first (under `if_version`), then removing.
async fn write(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(body): Json<WriteBody>,
) -> ApiResult {
    caller.check_session(&cx.sessions, &id).await?;
    if body.set.is_empty() && body.remove.is_empty() {
        return Err(bad_request("nothing to set or remove"));
    }
    let mut attrs = Vec::with_capacity(body.set.len());
    for (name, attr) in body.set {
        let tag = Tag::parse(attr.tag.as_bytes())
            .ok_or_else(|| bad_request("tag must be json, utf8, bytes or java"))?;
        let value = json::parse_value(tag, &attr.value).map_err(|e| bad_request(&e))?;
        attrs.push((Bytes::from(name), tag, value));
    }
    let mut version = None;
    if attrs.is_empty() {
        if let Some(expected) = body.if_version {
            // Removing only: check the version here (the grid's removal takes none).
            let s = cx.sessions.peek(id.as_bytes()).await.map_err(failed)?;
            let at = s.ok_or_else(not_found)?.version;
            if at != expected {
                let text = format!("CONFLICT session is at version {at}, not {expected}");
                return Err(failed(SessionError::Conflict(text)));
            }
        }
    } else {
        let v = cx.sessions.set(id.as_bytes(), body.if_version, attrs).await.map_err(failed)?;
        version = Some(v.ok_or_else(not_found)?);
    }
    if !body.remove.is_empty() {
        let names = body.remove.into_iter().map(Bytes::from).collect();
        cx.sessions.del(id.as_bytes(), names).await.map_err(failed)?.ok_or_else(not_found)?;
        let s = cx.sessions.peek(id.as_bytes()).await.map_err(failed)?;
        version = Some(s.ok_or_else(not_found)?.version);
    }
    Ok(ok(json!({ "version": version })))
}

async fn invalidate(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    caller.check_session(&cx.sessions, &id).await?;
    match cx.sessions.invalidate(id.as_bytes()).await.map_err(failed)? {
        true => Ok(StatusCode::NO_CONTENT.into_response()),
        false => Err(not_found()),
    }
}

async fn rotate(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    caller.check_session(&cx.sessions, &id).await?;
    let new = cx.sessions.rotate(id.as_bytes()).await.map_err(failed)?.ok_or_else(not_found)?;
    Ok(ok(json!({ "id": String::from_utf8_lossy(&new) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    principal: String,
    policy: Option<LoginPolicy>,
    max: Option<usize>,
}

async fn login(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(body): Json<LoginBody>,
) -> ApiResult {
    caller.check_session(&cx.sessions, &id).await?;
    let principal = Bytes::from(body.principal);
    let outcome =
        cx.sessions.login(id.as_bytes(), principal, body.policy, body.max).await.map_err(failed)?;
    match outcome {
        LoginOutcome::LoggedIn { evicted } => {
            let evicted: Vec<String> =
                evicted.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect();
            Ok(ok(json!({ "evicted": evicted })))
        }
        LoginOutcome::NoSession => Err(not_found()),
    }
}

async fn logout(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    caller.check_session(&cx.sessions, &id).await?;
    let done = cx.sessions.logout(id.as_bytes()).await.map_err(failed)?;
    Ok(ok(json!({ "logged_out": done })))
}

async fn by_user(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Path(principal): Path<String>,
) -> ApiResult {
    let live = cx.sessions.by_user(principal.as_bytes()).await.map_err(failed)?;
    let visible = live.iter().filter(|s| caller.sees(&s.group));
    Ok(ok(Value::Array(visible.map(|s| json::session(s, false)).collect())))
}

/// Forced logout: ends every session of the user.
async fn kick_user(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Path(principal): Path<String>,
) -> ApiResult {
    let ended = cx.sessions.kick_user_in(principal.as_bytes(), |g| caller.sees(g));
    Ok(ok(json!({ "ended": ended.await.map_err(failed)? })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TopQuery {
    top: Option<usize>,
}

/// The users with the most live sessions.
async fn top_users(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<TopQuery>,
) -> ApiResult {
    caller.check_listing(None)?;
    let n = q.top.unwrap_or(10).min(1000);
    let top = cx.sessions.top_users(n).await.map_err(failed)?;
    let top: Vec<Value> = top
        .iter()
        .map(|(p, n)| json!({ "principal": String::from_utf8_lossy(p), "sessions": n }))
        .collect();
    Ok(ok(Value::Array(top)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    group: Option<String>,
    cursor: Option<u64>,
    count: Option<usize>,
}

async fn list(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    caller.check_listing(q.group.as_deref())?;
    let group = q.group.map(Bytes::from);
    let (next, ids) = cx
        .sessions
        .list(group, q.cursor.unwrap_or(0), q.count.unwrap_or(100))
        .await
        .map_err(failed)?;
    let ids: Vec<String> = ids.iter().map(|i| String::from_utf8_lossy(i).into_owned()).collect();
    Ok(ok(json!({ "cursor": next, "ids": ids })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GroupQuery {
    group: Option<String>,
}

async fn stats(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<GroupQuery>,
) -> ApiResult {
    caller.check_listing(q.group.as_deref())?;
    let stats = cx.sessions.stats(q.group.map(Bytes::from)).await.map_err(failed)?;
    Ok(ok(json::stats(&stats)))
}

/// Server-sent events: one `event: <kind>` with the event as JSON per session event (of one
/// group, if asked); a subscriber that falls behind gets a `lagged` event with the count missed.
async fn events(
    State(cx): State<HttpContext>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<GroupQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Response> {
    caller.check_listing(q.group.as_deref())?;
    let feed = cx.sessions.grid().events().subscribe();
    // Held as long as the stream: attribute changes anywhere reach this node meanwhile.
    let watch = cx.sessions.grid().watch_events().await;
    let group = q.group.map(Bytes::from);
    let state = (feed, group, watch);
    let stream = futures::stream::unfold(state, |(mut feed, group, watch)| async move {
        loop {
            let event = match feed.recv().await {
                Ok(e) if group.as_ref().is_some_and(|g| *g != e.group) => continue,
                Ok(e) => Event::default().event(e.kind.name()).data(json::event(&e).to_string()),
                Err(RecvError::Lagged(missed)) => {
                    Event::default().event("lagged").data(json!({ "missed": missed }).to_string())
                }
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(event), (feed, group, watch)));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
