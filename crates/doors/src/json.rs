//! JSON shapes of sessions and events, shared by the HTTP API and pub/sub messages.
//!
//! Attribute values are shown by their tag: `json` as the JSON value itself, `utf8` as a string,
//! `bytes` and `java` as base64 (standard alphabet, padded). The grid stores them as given.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use sessiongrid_grid::events::{EventCounts, KINDS};
use sessiongrid_grid::sessions::Stats;
use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::session::{Session, Tag};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn event(e: &SessionEvent) -> Value {
    json!({
        "event": e.kind.name(),
        "id": text(&e.id),
        "group": text(&e.group),
        "principal": e.principal.as_deref().map(text),
        "moved_to": e.moved_to.as_deref().map(text),
        "at": e.at_ms,
        "node": format!("{:016x}", e.node),
        "partition": e.partition,
        "version": e.version,
        "session_version": e.session_version,
    })
}

/// A session's metadata, and its attributes if `attrs`.
pub fn session(s: &Session, attrs: bool) -> Value {
    let mut v = json!({
        "id": text(&s.id),
        "group": text(&s.group),
        "created": s.created_ms,
        "last_access": s.last_access_ms,
        "idle_timeout_s": s.idle_ms / 1000,
        "absolute_deadline": s.absolute_at_ms,
        "expires_at": s.deadline_ms(),
        "principal": s.principal.as_deref().map(text),
        "version": s.version,
    });
    if attrs {
        let attributes: serde_json::Map<String, Value> = s
            .attrs
            .iter()
            .map(|(name, a)| {
                let value = json!({
                    "tag": a.tag.name(),
                    "value": show(a.tag, &a.value),
                    "version": a.version,
                });
                (text(name), value)
            })
            .collect();
        v["attributes"] = Value::Object(attributes);
    }
    v
}

fn show(tag: Tag, bytes: &[u8]) -> Value {
    match tag {
        // Written through RESP, a json attribute may not be valid JSON: show it as text then.
        Tag::Json => serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(text(bytes))),
        Tag::Utf8 => Value::String(text(bytes)),
        Tag::Bytes | Tag::Java => Value::String(BASE64.encode(bytes)),
    }
}

/// The bytes to store for a value given in JSON under `tag`.
pub fn parse_value(tag: Tag, value: &Value) -> Result<Bytes, String> {
    match (tag, value) {
        (Tag::Json, v) => Ok(Bytes::from(v.to_string())),
        (Tag::Utf8, Value::String(s)) => Ok(Bytes::copy_from_slice(s.as_bytes())),
        (Tag::Bytes | Tag::Java, Value::String(s)) => BASE64
            .decode(s)
            .map(Bytes::from)
            .map_err(|e| format!("a {} value must be base64: {e}", tag.name())),
        (tag, _) => Err(format!("a {} value must be a string", tag.name())),
    }
}

fn counts(count: impl Fn(usize) -> u64) -> Value {
    Value::Object(
        KINDS.iter().enumerate().map(|(i, k)| (k.name().into(), count(i).into())).collect(),
    )
}

pub fn stats(s: &Stats) -> Value {
    let EventCounts { node, cluster } = s.events;
    json!({
        "live": s.live,
        "logins_rejected": s.logins_rejected,
        "node": counts(|i| node[i]),
        "cluster": counts(|i| cluster[i]),
    })
}

pub fn error(code: &str, message: &str) -> axum::Json<Value> {
    axum::Json(json!({ "error": code, "message": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_their_json_form() {
        for (tag, bytes) in [
            (Tag::Json, &b"{\"a\":[1,2]}"[..]),
            (Tag::Utf8, "Zoë".as_bytes()),
            (Tag::Bytes, &[0u8, 255, 10][..]),
            (Tag::Java, &[0xac, 0xed, 0, 5][..]),
        ] {
            assert_eq!(parse_value(tag, &show(tag, bytes)).unwrap(), bytes, "{tag:?}");
        }
        assert!(parse_value(Tag::Bytes, &json!("not base64!")).is_err());
        assert!(parse_value(Tag::Utf8, &json!(5)).is_err());
    }
}
