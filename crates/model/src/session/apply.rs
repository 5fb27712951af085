//! The rules of sessions and login registries, as pure functions over one entry.

use std::collections::HashSet;

use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};

use super::op::SessionOp;
use super::{attr_bytes, Attr, EndReason, Login, LoginPolicy, Session, SessionLimits, Tombstone};
use crate::delta::Change;
use crate::entry::{Entry, Value};
use crate::reply::Reply;

/// A read touches the session on disk only if its last access is at least this old (capped at
/// a twentieth of the idle timeout), so a burst of reads is not a burst of writes.
const TOUCH_GRANULARITY_MS: u64 = 1000;

/// Applies `op` to `slot`, which holds no expired entry. Returns the reply and what changed:
/// writes of attributes, touches and logins change the session's header and the attributes
/// they name; creating, replacing or ending one changes it whole.
pub fn apply(op: SessionOp, slot: &mut Option<Entry>, now_ms: u64) -> (Reply, Change) {
    let (reply, changed) = match op {
        SessionOp::Create { id, group, idle_ms, absolute_ms } => {
            if slot.is_some() {
                return (Reply::Int(0), Change::Nothing);
            }
            let session = Session {
                id,
                group,
                created_ms: now_ms,
                last_access_ms: now_ms,
                idle_ms,
                absolute_at_ms: absolute_ms.map(|ms| now_ms.saturating_add(ms)),
                principal: None,
                attrs: IndexMap::new(),
                version: 1,
            };
            put(slot, session);
            (Reply::Int(1), true)
        }
        SessionOp::Adopt { mut session } => {
            if slot.is_some() {
                return (Reply::Int(0), Change::Nothing);
            }
            session.last_access_ms = now_ms;
            put(slot, *session);
            (Reply::Int(1), true)
        }
        SessionOp::Get { touch, attrs, names } => {
            return with_session(slot, |s| {
                let stale = now_ms.saturating_sub(s.last_access_ms)
                    >= TOUCH_GRANULARITY_MS.min(s.idle_ms / 20);
                let change = if touch && stale {
                    s.last_access_ms = now_ms;
                    Change::Fields(Vec::new())
                } else {
                    Change::Nothing
                };
                (Reply::Bulk(shown(s, attrs.as_deref(), names).into()), change)
            })
        }
        SessionOp::Set { if_version, replace, idle_ms, attrs, limits } => {
            return with_session(slot, |s| {
                if let Err(e) = check_version(s, if_version) {
                    return (e, Change::Nothing);
                }
                let version = s.version + 1;
                let written: Vec<(Bytes, Attr)> = attrs
                    .into_iter()
                    .map(|(name, tag, value)| (name, Attr { tag, value, version }))
                    .collect();
                if let Err(e) = check_limits(s, replace, &written, &limits) {
                    return (e, Change::Nothing);
                }
                // What changes is stored and replicated: with `replace`, the attributes
                // dropped and those whose value differs (a store that saves its whole record
                // on every request mostly changes one); an attribute written again unchanged
                // keeps its version.
                let mut changed = IndexSet::new();
                if replace {
                    let kept: HashSet<&Bytes> = written.iter().map(|(name, _)| name).collect();
                    changed.extend(s.attrs.keys().filter(|n| !kept.contains(n)).cloned());
                    s.attrs.retain(|name, _| kept.contains(name));
                }
                for (name, attr) in written {
                    let same = |old: &Attr| old.tag == attr.tag && old.value == attr.value;
                    if !(replace && s.attrs.get(&name).is_some_and(same)) {
                        changed.insert(name.clone());
                        s.attrs.insert(name, attr);
                    }
                }
                s.version = version;
                s.last_access_ms = now_ms;
                if let Some(idle_ms) = idle_ms {
                    s.idle_ms = idle_ms;
                }
                (Reply::Int(version as i64), Change::Fields(changed.into_iter().collect()))
            });
        }
        SessionOp::Del { names } => {
            return with_session(slot, |s| {
                let removed: Vec<Bytes> =
                    names.into_iter().filter(|n| s.attrs.shift_remove(n).is_some()).collect();
                if !removed.is_empty() {
                    s.version += 1;
                }
                s.last_access_ms = now_ms;
                (Reply::Int(removed.len() as i64), Change::Fields(removed))
            })
        }
        SessionOp::Touch { idle_ms } => {
            return with_session(slot, |s| {
                s.last_access_ms = now_ms;
                if let Some(idle_ms) = idle_ms {
                    s.idle_ms = idle_ms;
                }
                let left = s.deadline_ms().saturating_sub(now_ms) as i64;
                (Reply::Int(left), Change::Fields(Vec::new()))
            })
        }
        SessionOp::End { reason, if_version, moved_to, retention_ms } => {
            end(slot, reason, if_version, moved_to, retention_ms, now_ms)
        }
        SessionOp::SetPrincipal { principal } => {
            return with_session(slot, |s| {
                let before = Reply::Bulk(shown(s, Some(&[]), false).into());
                if s.principal == principal {
                    return (before, Change::Nothing);
                }
                s.principal = principal;
                s.version += 1;
                s.last_access_ms = now_ms;
                (before, Change::Fields(Vec::new()))
            })
        }
        SessionOp::Probe => {
            let reply = match slot.as_ref().map(|e| &e.value) {
                None => Reply::Nil,
                Some(Value::Session(_)) => Reply::Int(1),
                Some(Value::Ended(t)) => t.moved_to.clone().map_or(Reply::Int(0), Reply::Bulk),
                Some(_) => Reply::wrong_type(),
            };
            (reply, false)
        }
        SessionOp::Logins => match logins_of(slot) {
            Ok(logins) => (encoded(&logins), false),
            Err(e) => (e, false),
        },
        SessionOp::Register { login, dead, moved, policy, max } => {
            register(slot, login, &dead, &moved, policy, max)
        }
        SessionOp::Enlist { login, policy, max } => with_logins(slot, |logins| {
            let listed = logins.iter().any(|l| l.id == login.id);
            if policy != LoginPolicy::Allow
                && max > 0
                && others_in_group(logins, &login).len() >= max
            {
                return (Reply::Nil, false);
            }
            if !listed {
                logins.push(login);
            }
            (Reply::Int(logins.len() as i64), !listed)
        }),
        SessionOp::Unregister { ids } => with_logins(slot, |logins| {
            let before = logins.len();
            logins.retain(|l| !ids.contains(&l.id));
            let removed = before - logins.len();
            (Reply::Int(removed as i64), removed > 0)
        }),
        SessionOp::Rename { from, to } => {
            with_logins(slot, |logins| match logins.iter_mut().find(|l| l.id == from) {
                Some(l) => {
                    l.id = to;
                    (Reply::Int(1), true)
                }
                None => (Reply::Int(0), false),
            })
        }
    };
    (reply, changed.into())
}

/// The session encoded for a reader: all of it, or only some attributes, or their names.
fn shown(s: &Session, only: Option<&[Bytes]>, names: bool) -> Vec<u8> {
    if only.is_none() && !names {
        return s.encode();
    }
    let attrs = s
        .attrs
        .iter()
        .filter(|(name, _)| only.is_none_or(|wanted| wanted.contains(name)))
        .map(|(name, a)| {
            let value = if names { Bytes::new() } else { a.value.clone() };
            (name.clone(), Attr { value, ..a.clone() })
        })
        .collect();
    Session { attrs, ..s.clone_header() }.encode()
}

fn encoded<T: serde::Serialize>(value: &T) -> Reply {
    Reply::Bulk(postcard::to_stdvec(value).expect("serialises").into())
}

/// Stores `session` in the slot, its deadline as the entry's.
fn put(slot: &mut Option<Entry>, session: Session) {
    let version = slot.as_ref().map_or(0, |e| e.version);
    let expire_at_ms = Some(session.deadline_ms());
    *slot = Some(Entry { value: Value::Session(Box::new(session)), expire_at_ms, version });
}

/// Runs `f` on the live session in the slot; nil if there is none (absent or ended). A change
/// moves the entry's deadline with the session's.
fn with_session(
    slot: &mut Option<Entry>,
    f: impl FnOnce(&mut Session) -> (Reply, Change),
) -> (Reply, Change) {
    let Some(entry) = slot.as_mut() else { return (Reply::Nil, Change::Nothing) };
    match &mut entry.value {
        Value::Session(s) => {
            let (reply, change) = f(s);
            if change.any() {
                entry.expire_at_ms = Some(s.deadline_ms());
            }
            (reply, change)
        }
        Value::Ended(_) => (Reply::Nil, Change::Nothing),
        _ => (Reply::wrong_type(), Change::Nothing),
    }
}

fn check_version(s: &Session, if_version: Option<u64>) -> Result<(), Reply> {
    match if_version {
        Some(v) if v != s.version => {
            Err(Reply::error(format!("CONFLICT session is at version {}, not {v}", s.version)))
        }
        _ => Ok(()),
    }
}

/// Checks a write of `written` (replacing every attribute if `replace`) against the limits: the
/// written attributes' names and values, and the session's attribute count and size after the
/// write (worked out from the session as it is, not from a copy of it).
fn check_limits(
    s: &Session,
    replace: bool,
    written: &[(Bytes, Attr)],
    limits: &SessionLimits,
) -> Result<(), Reply> {
    let fail = |what: &str| Err(Reply::error(format!("ERR session limit: {what}")));
    let (mut count, mut bytes) =
        if replace { (0, s.header_bytes()) } else { (s.attrs.len(), s.bytes()) };
    // The last value written under a name is the one kept: looked at from the end, once each
    // (a set, so a write of many attributes stays linear).
    let mut seen = std::collections::HashSet::with_capacity(written.len());
    for (name, attr) in written.iter().rev() {
        if !seen.insert(name) {
            continue;
        }
        match s.attrs.get(name).filter(|_| !replace) {
            Some(old) => bytes -= attr_bytes(name, old),
            None => count += 1,
        }
        bytes += attr_bytes(name, attr);
    }
    if count > limits.attrs_max {
        return fail(&format!("more than {} attributes (attrs_max)", limits.attrs_max));
    }
    for (name, attr) in written {
        if name.is_empty() || name.len() > limits.attr_name_bytes_max {
            return fail(&format!(
                "attribute names must have 1 to {} bytes (attr_name_bytes_max)",
                limits.attr_name_bytes_max
            ));
        }
        if attr.value.len() > limits.attr_bytes_max {
            return fail(&format!(
                "attribute value over {} bytes (attr_bytes_max)",
                limits.attr_bytes_max
            ));
        }
    }
    if bytes > limits.session_bytes_max {
        return fail(&format!(
            "session over {} bytes (session_bytes_max)",
            limits.session_bytes_max
        ));
    }
    Ok(())
}

fn end(
    slot: &mut Option<Entry>,
    reason: EndReason,
    if_version: Option<u64>,
    moved_to: Option<Bytes>,
    retention_ms: u64,
    now_ms: u64,
) -> (Reply, bool) {
    let Some(entry) = slot.as_mut() else { return (Reply::Nil, false) };
    let session = match &entry.value {
        Value::Session(s) => s,
        Value::Ended(_) => return (Reply::Nil, false),
        _ => return (Reply::wrong_type(), false),
    };
    if let Err(e) = check_version(session, if_version) {
        return (e, false);
    }
    let before = Reply::Bulk(session.encode().into());
    let tomb = Tombstone {
        reason,
        at_ms: now_ms,
        group: session.group.clone(),
        principal: session.principal.clone(),
        moved_to,
    };
    entry.value = Value::Ended(Box::new(tomb));
    entry.expire_at_ms = Some(now_ms.saturating_add(retention_ms));
    (before, true)
}

/// The registry in the slot (empty if absent), or the WRONGTYPE reply.
fn logins_of(slot: &Option<Entry>) -> Result<Vec<Login>, Reply> {
    match slot.as_ref().map(|e| &e.value) {
        None => Ok(Vec::new()),
        Some(Value::Logins(l)) => Ok(l.clone()),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// Runs `f` on the registry in the slot, created empty if absent; an empty registry is removed.
fn with_logins(
    slot: &mut Option<Entry>,
    f: impl FnOnce(&mut Vec<Login>) -> (Reply, bool),
) -> (Reply, bool) {
    let mut logins = match logins_of(slot) {
        Ok(l) => l,
        Err(e) => return (e, false),
    };
    let (reply, changed) = f(&mut logins);
    if changed {
        if logins.is_empty() {
            *slot = None;
        } else {
            let version = slot.as_ref().map_or(0, |e| e.version);
            *slot = Some(Entry { value: Value::Logins(logins), expire_at_ms: None, version });
        }
    }
    (reply, changed)
}

/// The ids of the user's other logins that count against `login`'s limit: a group's limit
/// counts the user's sessions of that group only.
fn others_in_group(logins: &[Login], login: &Login) -> Vec<Bytes> {
    logins
        .iter()
        .filter(|l| l.id != login.id && l.group == login.group)
        .map(|l| l.id.clone())
        .collect()
}

fn register(
    slot: &mut Option<Entry>,
    login: Login,
    dead: &[Bytes],
    moved: &[(Bytes, Bytes)],
    policy: LoginPolicy,
    max: usize,
) -> (Reply, bool) {
    with_logins(slot, |logins| {
        let before = logins.clone();
        logins.retain(|l| !dead.contains(&l.id));
        for l in logins.iter_mut() {
            if let Some((_, to)) = moved.iter().find(|(from, _)| *from == l.id) {
                l.id = to.clone();
            }
        }
        // Registered already: a login tried again after a failure, admitted the first time.
        let again = logins.iter().any(|l| l.id == login.id);
        let others = others_in_group(logins, &login);
        let mut evicted = Vec::new();
        if max > 0 && others.len() >= max {
            match policy {
                LoginPolicy::Allow => {}
                LoginPolicy::Reject if !again => {
                    let n = others.len();
                    *logins = before;
                    return (
                        Reply::error(format!(
                            "LOGINREJECTED user has {n} live session(s), at most {max} allowed"
                        )),
                        false,
                    );
                }
                LoginPolicy::Reject => {}
                // Their rows stay until they are known to have ended: a session evicted that
                // did not end (its login failed half-way) is evicted again by the next login.
                LoginPolicy::EvictOldest => evicted = others[..others.len() + 1 - max].to_vec(),
            }
        }
        if !again {
            logins.push(login);
        }
        let changed = *logins != before;
        (encoded(&evicted), changed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Session, Tag};

    const LIMITS: SessionLimits = SessionLimits {
        attrs_max: 4,
        attr_name_bytes_max: 16,
        attr_bytes_max: 64,
        session_bytes_max: 1024,
    };

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn create(slot: &mut Option<Entry>, now: u64) {
        let op =
            SessionOp::Create { id: b("x"), group: b("g"), idle_ms: 1000, absolute_ms: Some(5000) };
        assert_eq!(apply(op, slot, now), (Reply::Int(1), Change::Whole));
    }

    fn session(slot: &Option<Entry>) -> Session {
        match &slot.as_ref().unwrap().value {
            Value::Session(s) => (**s).clone(),
            other => panic!("not a session: {other:?}"),
        }
    }

    fn set(attr: &str, value: &str, if_version: Option<u64>) -> SessionOp {
        set_with(if_version, false, &[(attr, value)], LIMITS)
    }

    /// `SESSION.SET` of `attrs` (every other attribute dropped if `replace`) under `limits`.
    fn set_with(
        if_version: Option<u64>,
        replace: bool,
        attrs: &[(&str, &str)],
        limits: SessionLimits,
    ) -> SessionOp {
        SessionOp::Set {
            if_version,
            replace,
            idle_ms: None,
            attrs: attrs.iter().map(|(n, v)| (b(n), Tag::Utf8, b(v))).collect(),
            limits,
        }
    }

    #[test]
    fn touching_moves_idle_expiry_but_never_the_absolute_deadline() {
        let mut slot = None;
        create(&mut slot, 0);
        assert_eq!(slot.as_ref().unwrap().expire_at_ms, Some(1000));
        for now in [900, 1800, 2700, 3600, 4500] {
            apply(SessionOp::Touch { idle_ms: None }, &mut slot, now);
        }
        assert_eq!(slot.as_ref().unwrap().expire_at_ms, Some(5000), "capped by the deadline");
        let reply = apply(SessionOp::Touch { idle_ms: None }, &mut slot, 4900).0;
        assert_eq!(reply, Reply::Int(100));
    }

    #[test]
    fn reads_touch_at_most_once_per_granule() {
        let mut slot = None;
        create(&mut slot, 0);
        assert!(
            !apply(SessionOp::Get { touch: true, attrs: None, names: false }, &mut slot, 10)
                .1
                .any(),
            "just accessed"
        );
        assert_eq!(
            apply(SessionOp::Get { touch: true, attrs: None, names: false }, &mut slot, 60).1,
            Change::Fields(vec![]),
            "idle / 20 = 50 ms: the header alone"
        );
        assert!(!apply(SessionOp::Get { touch: false, attrs: None, names: false }, &mut slot, 900)
            .1
            .any());
    }

    #[test]
    fn ifversion_is_a_compare_and_set() {
        let mut slot = None;
        create(&mut slot, 0);
        assert_eq!(apply(set("a", "1", Some(1)), &mut slot, 1).0, Reply::Int(2));
        let (reply, changed) = apply(set("a", "2", Some(1)), &mut slot, 2);
        assert!(matches!(reply, Reply::Error(e) if e.starts_with("CONFLICT")));
        assert!(!changed.any());
        assert_eq!(session(&slot).attrs[&b("a")].value, b("1"));
        assert_eq!(apply(set("a", "3", None), &mut slot, 3).0, Reply::Int(3));
    }

    #[test]
    fn limits_count_what_the_session_holds_after_the_write() {
        let mut slot = None;
        create(&mut slot, 0);
        let full = [("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")];
        assert_eq!(apply(set_with(None, false, &full, LIMITS), &mut slot, 1).0, Reply::Int(2));
        // Four of four: a value written again, or twice in one write, adds no attribute.
        let twice = set_with(None, false, &[("a", "2"), ("a", "3")], LIMITS);
        assert_eq!(apply(twice, &mut slot, 2).0, Reply::Int(3));
        assert_eq!(session(&slot).attrs[&b("a")].value, b("3"));
        assert!(apply(set("e", "1", None), &mut slot, 3).0.is_error(), "a fifth");
        // Replacing counts only what is written.
        assert_eq!(
            apply(set_with(None, true, &[("e", "1")], LIMITS), &mut slot, 4).0,
            Reply::Int(4)
        );
        assert_eq!(session(&slot).attrs.len(), 1);
        // Size: the session after the write, the old value of a name written again left out.
        let tight = SessionLimits { session_bytes_max: session(&slot).bytes() + 10, ..LIMITS };
        let grow = |value: &str| set_with(None, false, &[("e", value)], tight);
        assert!(!apply(grow(&"y".repeat(11)), &mut slot, 5).0.is_error(), "at the limit");
        assert!(!apply(grow(&"z".repeat(11)), &mut slot, 6).0.is_error(), "the same size again");
        assert!(apply(grow(&"y".repeat(12)), &mut slot, 7).0.is_error(), "one byte past");
        assert_eq!(session(&slot).attrs[&b("e")].value, b(&"z".repeat(11)));
    }

    #[test]
    fn a_replace_stores_only_what_it_changes() {
        let mut slot = None;
        create(&mut slot, 0);
        let all = [("a", "1"), ("b", "1"), ("c", "1")];
        apply(set_with(None, false, &all, LIMITS), &mut slot, 1);
        // The whole record again, with one value changed and one attribute left out.
        let again = set_with(None, true, &[("a", "1"), ("b", "2")], LIMITS);
        let (reply, change) = apply(again, &mut slot, 2);
        assert_eq!(reply, Reply::Int(3));
        assert_eq!(change, Change::Fields(vec![b("c"), b("b")]));
        let s = session(&slot);
        assert_eq!(s.attrs.keys().cloned().collect::<Vec<_>>(), vec![b("a"), b("b")]);
        assert_eq!((s.attrs[&b("a")].version, s.attrs[&b("b")].version), (2, 3));
        // Nothing changed: the header alone (the session was used).
        let same = set_with(None, true, &[("a", "1"), ("b", "2")], LIMITS);
        assert_eq!(apply(same, &mut slot, 3).1, Change::Fields(vec![]));
        // A name given twice is one row.
        let twice = set_with(None, true, &[("a", "1"), ("b", "4"), ("b", "5")], LIMITS);
        assert_eq!(apply(twice, &mut slot, 4).1, Change::Fields(vec![b("b")]));
        assert_eq!(session(&slot).attrs[&b("b")].value, b("5"));
    }

    #[test]
    fn over_limit_writes_change_nothing() {
        let mut slot = None;
        create(&mut slot, 0);
        let big = "x".repeat(65);
        assert!(apply(set("a", &big, None), &mut slot, 1).0.is_error());
        let many = SessionOp::Set {
            if_version: None,
            replace: false,
            idle_ms: None,
            attrs: (0..5).map(|i| (b(&format!("a{i}")), Tag::Json, b("1"))).collect(),
            limits: LIMITS,
        };
        assert!(apply(many, &mut slot, 1).0.is_error());
        assert!(apply(set("", "x", None), &mut slot, 1).0.is_error());
        assert_eq!(session(&slot).version, 1);
    }

    #[test]
    fn an_ended_session_never_comes_back() {
        let mut slot = None;
        create(&mut slot, 0);
        let end = |moved_to| SessionOp::End {
            reason: EndReason::Rotated,
            if_version: None,
            moved_to,
            retention_ms: 10_000,
        };
        assert!(matches!(apply(end(Some(b("new"))), &mut slot, 5).0, Reply::Bulk(_)));
        assert_eq!(slot.as_ref().unwrap().expire_at_ms, Some(10_005));
        assert_eq!(
            apply(SessionOp::Get { touch: true, attrs: None, names: false }, &mut slot, 6),
            (Reply::Nil, Change::Nothing)
        );
        assert_eq!(apply(set("a", "1", None), &mut slot, 6), (Reply::Nil, Change::Nothing));
        assert_eq!(apply(end(None), &mut slot, 6), (Reply::Nil, Change::Nothing));
        let again =
            SessionOp::Create { id: b("x"), group: b("g"), idle_ms: 1000, absolute_ms: None };
        assert_eq!(
            apply(again, &mut slot, 7),
            (Reply::Int(0), Change::Nothing),
            "the id stays taken"
        );
        assert_eq!(apply(SessionOp::Probe, &mut slot, 7).0, Reply::Bulk(b("new")));
    }

    fn register(slot: &mut Option<Entry>, id: &str, dead: &[&str], policy: LoginPolicy) -> Reply {
        let login = Login { id: b(id), group: b("g"), at_ms: 0 };
        let dead = dead.iter().map(|d| b(d)).collect();
        let op = SessionOp::Register { login, dead, moved: Vec::new(), policy, max: 2 };
        apply(op, slot, 0).0
    }

    fn evicted(reply: Reply) -> Vec<Bytes> {
        match reply {
            Reply::Bulk(b) => postcard::from_bytes(&b).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_login_is_enlisted_at_once_only_where_no_listed_session_could_change_the_outcome() {
        let enlist = |slot: &mut Option<Entry>, id: &str, policy, max| {
            let login = Login { id: b(id), group: b("g"), at_ms: 0 };
            apply(SessionOp::Enlist { login, policy, max }, slot, 0)
        };
        let mut slot = None;
        let listed = Change::Whole;
        assert_eq!(enlist(&mut slot, "a", LoginPolicy::Reject, 2).0, Reply::Int(1));
        assert_eq!(enlist(&mut slot, "b", LoginPolicy::EvictOldest, 2).0, Reply::Int(2));
        let before = slot.clone();
        for policy in [LoginPolicy::Reject, LoginPolicy::EvictOldest] {
            // Two others listed: whether they still live decides.
            assert_eq!(enlist(&mut slot, "c", policy, 2), (Reply::Nil, Change::Nothing));
            assert_eq!(enlist(&mut slot, "a", policy, 1), (Reply::Nil, Change::Nothing), "again");
        }
        assert_eq!(slot, before, "a login that must be checked first changes nothing");
        assert_eq!(
            enlist(&mut slot, "a", LoginPolicy::Reject, 2),
            (Reply::Int(2), Change::Nothing)
        );
        assert_eq!(enlist(&mut slot, "c", LoginPolicy::Allow, 2).0, Reply::Int(3));
        assert_eq!(enlist(&mut slot, "d", LoginPolicy::Reject, 0), (Reply::Int(4), listed));
    }

    #[test]
    fn a_groups_limit_counts_the_users_sessions_of_that_group_only() {
        let login = |id: &str, group: &str| Login { id: b(id), group: b(group), at_ms: 0 };
        let mut slot = None;
        for (id, group) in [("shop-1", "shop"), ("bank-1", "bank"), ("shop-2", "shop")] {
            let op =
                SessionOp::Enlist { login: login(id, group), policy: LoginPolicy::Allow, max: 0 };
            apply(op, &mut slot, 0);
        }
        let evict = LoginPolicy::EvictOldest;
        let enlist = SessionOp::Enlist { login: login("bank-2", "bank"), policy: evict, max: 2 };
        assert_eq!(apply(enlist, &mut slot.clone(), 0).0, Reply::Int(4), "one bank session");
        let enlist = SessionOp::Enlist { login: login("bank-2", "bank"), policy: evict, max: 1 };
        assert_eq!(apply(enlist, &mut slot.clone(), 0).0, Reply::Nil);
        let register = |id: &str, group: &str, max| SessionOp::Register {
            login: login(id, group),
            dead: Vec::new(),
            moved: Vec::new(),
            policy: evict,
            max,
        };
        assert_eq!(evicted(apply(register("bank-2", "bank", 1), &mut slot, 0).0), [b("bank-1")]);
        let reply = apply(register("shop-3", "shop", 2), &mut slot, 0).0;
        assert_eq!(evicted(reply), [b("shop-1")], "the oldest of the group's, not bank-1");
    }

    #[test]
    fn login_policies_hold_at_most_max_logins() {
        let mut slot = None;
        let ids = |slot: &mut Option<Entry>| -> Vec<Bytes> {
            match apply(SessionOp::Logins, slot, 0).0 {
                Reply::Bulk(b) => postcard::from_bytes::<Vec<Login>>(&b)
                    .unwrap()
                    .into_iter()
                    .map(|l| l.id)
                    .collect(),
                Reply::Nil => Vec::new(),
                other => panic!("{other:?}"),
            }
        };
        assert!(evicted(register(&mut slot, "a", &[], LoginPolicy::Reject)).is_empty());
        assert!(evicted(register(&mut slot, "b", &[], LoginPolicy::Reject)).is_empty());
        let reply = register(&mut slot, "c", &[], LoginPolicy::Reject);
        assert!(matches!(reply, Reply::Error(e) if e.starts_with("LOGINREJECTED")));
        assert!(evicted(register(&mut slot, "c", &["a"], LoginPolicy::Reject)).is_empty());
        assert!(evicted(register(&mut slot, "c", &[], LoginPolicy::Reject)).is_empty(), "again");
        assert_eq!(evicted(register(&mut slot, "d", &[], LoginPolicy::EvictOldest)), [b("b")]);
        assert_eq!(ids(&mut slot), [b("b"), b("c"), b("d")], "b is listed until it has ended");
        // Its end failed: the login tried again evicts it again.
        assert_eq!(evicted(register(&mut slot, "d", &[], LoginPolicy::EvictOldest)), [b("b")]);
        assert!(evicted(register(&mut slot, "d", &["b"], LoginPolicy::EvictOldest)).is_empty());
        assert!(evicted(register(&mut slot, "e", &[], LoginPolicy::Allow)).is_empty());
        assert_eq!(ids(&mut slot), [b("c"), b("d"), b("e")]);
        let all = vec![b("c"), b("d"), b("e")];
        assert_eq!(apply(SessionOp::Unregister { ids: all }, &mut slot, 0).0, Reply::Int(3));
        assert!(slot.is_none(), "an empty registry is removed");
    }
}
