//! Session events, derived from what a write did to a session's entry.
//!
//! Every owner of a partition sees the same writes, so an event is a pure function of a
//! session's state before and after a write: the primary derives it and replicates it with the
//! write, so whichever owner survives a failure can still deliver it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{id_of_key, EndReason};
use crate::entry::{Entry, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Created,
    Expired,
    Invalidated,
    Rotated,
    Evicted,
    /// Ended by a forced logout of its user.
    Kicked,
    Login,
    Logout,
    AttributeChanged,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Expired => "expired",
            EventKind::Invalidated => "invalidated",
            EventKind::Rotated => "rotated",
            EventKind::Evicted => "evicted",
            EventKind::Kicked => "kicked",
            EventKind::Login => "login",
            EventKind::Logout => "logout",
            EventKind::AttributeChanged => "attribute-changed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    pub kind: EventKind,
    pub id: Bytes,
    pub group: Bytes,
    pub principal: Option<Bytes>,
    /// The new id of a rotated session.
    pub moved_to: Option<Bytes>,
    /// When it happened (unix ms, the primary's clock).
    pub at_ms: u64,
    /// The node that published it (its primary); 0 on a single node.
    pub node: u64,
    /// The write that caused it: with `version`, identifies the event, so a subscriber can
    /// drop the duplicates at-least-once delivery may bring.
    pub partition: u16,
    pub version: u64,
    /// The session's own version after the write, 0 if it ended: a copy of the session at
    /// this version or newer already holds the change (a near cache keeps its own writes).
    pub session_version: u64,
}

/// What matters of a session before a write; cheap to take (no attributes are copied).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Before(Option<Summary>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Summary {
    group: Bytes,
    principal: Option<Bytes>,
    version: u64,
    deadline_ms: u64,
}

impl Before {
    /// The live session in `slot`, if any, as a write is about to find it.
    pub fn of(key: &[u8], slot: Option<&Entry>) -> Before {
        if id_of_key(key).is_none() {
            return Before(None);
        }
        Before(slot.and_then(|e| match &e.value {
            Value::Session(s) => Some(Summary {
                group: s.group.clone(),
                principal: s.principal.clone(),
                version: s.version,
                deadline_ms: s.deadline_ms(),
            }),
            _ => None,
        }))
    }
}

/// The events of a write that turned `before` into `after` at `now_ms` (partition, version and
/// node are stamped by whoever commits it).
pub fn derive(
    key: &[u8],
    before: &Before,
    after: Option<&Entry>,
    now_ms: u64,
) -> Vec<SessionEvent> {
    let Some(id) = id_of_key(key) else { return Vec::new() };
    let after = after.map(|e| &e.value);
    let session_version = match after {
        Some(Value::Session(s)) => s.version,
        _ => 0,
    };
    let event = |kind, group: &Bytes, principal: &Option<Bytes>| SessionEvent {
        kind,
        id: Bytes::copy_from_slice(id),
        group: group.clone(),
        principal: principal.clone(),
        moved_to: None,
        at_ms: now_ms,
        node: 0,
        partition: 0,
        version: 0,
        session_version,
    };
    match (&before.0, after) {
        (Some(b), None) => {
            let kind =
                if b.deadline_ms < now_ms { EventKind::Expired } else { EventKind::Invalidated };
            vec![event(kind, &b.group, &b.principal)]
        }
        (Some(b), Some(Value::Ended(t))) => {
            let kind = match t.reason {
                EndReason::Invalidated => EventKind::Invalidated,
                EndReason::Rotated => EventKind::Rotated,
                EndReason::Evicted => EventKind::Evicted,
                EndReason::Kicked => EventKind::Kicked,
            };
            let mut e = event(kind, &b.group, &b.principal);
            e.moved_to = t.moved_to.clone();
            vec![e]
        }
        // A copy made by a rotation was created long before: its creation is the old id's.
        (None, Some(Value::Session(s))) if s.created_ms == s.last_access_ms => {
            vec![event(EventKind::Created, &s.group, &s.principal)]
        }
        (Some(b), Some(Value::Session(s))) => {
            let mut events = Vec::new();
            if b.principal != s.principal {
                if b.principal.is_some() {
                    events.push(event(EventKind::Logout, &s.group, &b.principal));
                }
                if s.principal.is_some() {
                    events.push(event(EventKind::Login, &s.group, &s.principal));
                }
            } else if b.version != s.version {
                events.push(event(EventKind::AttributeChanged, &s.group, &s.principal));
            }
            events
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::apply;
    use crate::session::op::SessionOp;
    use crate::session::{session_key, Tag};
    use crate::Op;

    fn run(key: &Bytes, slot: &mut Option<Entry>, op: SessionOp, now: u64) -> Vec<EventKind> {
        let before = Before::of(key, slot.as_ref());
        apply(Op::Session(op), slot, now);
        derive(key, &before, slot.as_ref(), now).iter().map(|e| e.kind).collect()
    }

    #[test]
    fn a_session_lifecycle_yields_its_events() {
        let key = session_key(b"abc");
        let mut slot = None;
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let create =
            SessionOp::Create { id: b("abc"), group: b("g"), idle_ms: 1000, absolute_ms: None };
        assert_eq!(run(&key, &mut slot, create, 0), [EventKind::Created]);
        let limits = crate::session::SessionLimits {
            attrs_max: 9,
            attr_name_bytes_max: 9,
            attr_bytes_max: 9,
            session_bytes_max: 999,
        };
        let set = SessionOp::Set {
            if_version: None,
            replace: false,
            idle_ms: None,
            attrs: vec![(b("a"), Tag::Utf8, b("1"))],
            limits,
        };
        assert_eq!(run(&key, &mut slot, set, 1), [EventKind::AttributeChanged]);
        assert!(run(&key, &mut slot, SessionOp::Touch { idle_ms: None }, 2).is_empty());
        let login = SessionOp::SetPrincipal { principal: Some(b("u")) };
        assert_eq!(run(&key, &mut slot, login, 3), [EventKind::Login]);
        let other = SessionOp::SetPrincipal { principal: Some(b("v")) };
        assert_eq!(run(&key, &mut slot, other, 4), [EventKind::Logout, EventKind::Login]);
        let before = Before::of(&key, slot.as_ref());
        let events = derive(&key, &before, None, 5000);
        assert_eq!(events[0].kind, EventKind::Expired);
        assert_eq!(events[0].principal, Some(b("v")));
        assert!(derive(b"plain", &before, None, 5000).is_empty(), "only session keys");
    }

    #[test]
    fn an_event_carries_the_session_version_its_write_left() {
        let key = session_key(b"abc");
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let mut slot = None;
        let create =
            SessionOp::Create { id: b("abc"), group: b("g"), idle_ms: 1000, absolute_ms: None };
        apply(Op::Session(create), &mut slot, 0);
        let limits = crate::session::SessionLimits {
            attrs_max: 9,
            attr_name_bytes_max: 9,
            attr_bytes_max: 9,
            session_bytes_max: 999,
        };
        let attrs = vec![(b("a"), Tag::Utf8, b("1"))];
        let set = SessionOp::Set { if_version: None, replace: false, idle_ms: None, attrs, limits };
        let before = Before::of(&key, slot.as_ref());
        let reply = apply(Op::Session(set), &mut slot, 1).reply;
        let events = derive(&key, &before, slot.as_ref(), 1);
        assert_eq!(events[0].kind, EventKind::AttributeChanged);
        assert_eq!(crate::reply::Reply::Int(events[0].session_version as i64), reply);
        assert!(events[0].session_version > 1, "past the created version");
        let before = Before::of(&key, slot.as_ref());
        let events = derive(&key, &before, None, 2);
        assert_eq!((events[0].kind, events[0].session_version), (EventKind::Invalidated, 0));
    }
}
