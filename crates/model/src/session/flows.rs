//! Session operations that span keys, as sequences of single-key operations run by an
//! [`Exec`]: the grid's, or the simulator's clients, which drive these same sequences through
//! simulated faults. Their order keeps the rules true at every step, whatever fails in between:
//!
//! - **Rotate**: copy the session to a fresh id, then end the old id only if it is still at the
//!   version copied (else discard the copy and start over). The old id's tombstone is the
//!   moment of rotation; a failure before it leaves the old session as it was.
//! - **Login**: the user's registry is the one place where a login is decided, so two logins of
//!   one user on two nodes are ordered there. A login the policy lets in whatever the listed
//!   sessions are (no limit, or fewer listed than the limit) is listed at once. Otherwise ids
//!   the registry lists whose sessions have ended or expired are found first (and rotated ones
//!   renamed), so they do not count; a registry is also tidied so every [`TIDY_EVERY`] rows.
//!   The sessions a policy evicts are ended, then unregistered, before the new login is marked
//!   on its session: a session marked with a user is always listed in the user's registry, so
//!   one whose eviction failed half-way is evicted again by the next login.
//! - **By user**: the registry is read and every listed session checked, so an ended or expired
//!   session is never listed even if its registry row is still there; such rows are removed.

use std::future::Future;

use bytes::Bytes;

use crate::config::SessionConfig;
use crate::session::op::SessionOp;
use crate::session::{id, session_key, user_key, EndReason, Login, LoginPolicy, Session};
use crate::{Op, Reply};

/// How many rotations a session id is followed through in a user's registry.
const MOVES_FOLLOWED_MAX: usize = 8;
/// Attempts before giving up on a rotation that keeps racing with writes.
const ROTATE_ATTEMPTS: usize = 5;
/// A login listed at once that brings its user's registry to a multiple of this many rows
/// checks every listed session and removes the rows of those that ended.
pub const TIDY_EVERY: usize = 16;

/// What runs a flow's single-key operations.
pub trait Exec {
    type Error;

    /// Runs `op` on `key` (at its partition's primary): its reply, an error reply included.
    fn exec(&self, key: Bytes, op: Op) -> impl Future<Output = Result<Reply, Self::Error>>;

    /// A session id nobody was ever given.
    fn new_id(&self) -> Bytes;

    /// Now, in unix ms.
    fn now_ms(&self) -> u64;
}

/// Why a session operation failed; `E` is the executor's error.
#[derive(Debug, thiserror::Error)]
pub enum Error<E: std::error::Error> {
    #[error(transparent)]
    Grid(E),
    /// The session is at another version than the write required (`CONFLICT ...`).
    #[error("{0}")]
    Conflict(String),
    /// The login policy refused a login (`LOGINREJECTED ...`).
    #[error("{0}")]
    LoginRejected(String),
    /// A session limit (attributes, sizes) refused the write (`ERR session limit: ...`).
    #[error("{0}")]
    Limit(String),
    /// Worth trying again (`TRYAGAIN ...`).
    #[error("{0}")]
    TryAgain(String),
    /// A write that may or may not have been applied (`INDETERMINATE ...`): read before
    /// sending it again.
    #[error("{0}")]
    Indeterminate(String),
    /// Any other refusal; the text starts with its code (`ERR ...`).
    #[error("{0}")]
    Refused(String),
    /// A bad argument.
    #[error("ERR {0}")]
    Invalid(String),
}

impl<E: std::error::Error> Error<E> {
    /// A partition's error reply, by its code: the first word, as every RESP error carries
    /// it. The one place a refusal's text is read; everything after matches on the variant.
    pub fn from_reply(text: String) -> Self {
        let code = text.split(' ').next().unwrap_or_default();
        match code {
            "CONFLICT" => Error::Conflict(text),
            "LOGINREJECTED" => Error::LoginRejected(text),
            "TRYAGAIN" => Error::TryAgain(text),
            "INDETERMINATE" => Error::Indeterminate(text),
            "ERR" if text.starts_with("ERR session limit") => Error::Limit(text),
            _ => Error::Refused(text),
        }
    }
}

pub type FlowResult<T, X> = Result<T, Error<<X as Exec>::Error>>;

/// How a login went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in; these sessions of the user were ended to make room.
    LoggedIn { evicted: Vec<Bytes> },
    /// The session does not exist (or ended meanwhile).
    NoSession,
}

/// A user's registry, every session it lists checked: (live sessions of the user, ids that are
/// no longer the user's, rotated ids with their new id).
pub type Checked = (Vec<Session>, Vec<Bytes>, Vec<(Bytes, Bytes)>);

/// Runs a session operation; an error reply becomes its typed error.
pub async fn exec<X: Exec>(x: &X, key: Bytes, op: SessionOp) -> FlowResult<Reply, X>
where
    X::Error: std::error::Error,
{
    match x.exec(key, Op::Session(op)).await.map_err(Error::Grid)? {
        Reply::Error(e) => Err(Error::from_reply(e)),
        reply => Ok(reply),
    }
}

/// Runs a session operation that answers the session (or nil), decoded.
pub async fn exec_session<X: Exec>(
    x: &X,
    id: &[u8],
    op: SessionOp,
) -> FlowResult<Option<Session>, X>
where
    X::Error: std::error::Error,
{
    decode_session(exec(x, session_key(id), op).await?)
}

fn end_op(
    config: &SessionConfig,
    reason: EndReason,
    if_version: Option<u64>,
    moved_to: Option<Bytes>,
) -> SessionOp {
    let retention_ms = config.tombstone_retention_s.saturating_mul(1000);
    SessionOp::End { reason, if_version, moved_to, retention_ms }
}

/// Ends a session and takes it out of its user's registry: the session as it was. An eviction
/// or a forced logout ends the session wherever a rotation moved it: one that raced with the
/// rotation would otherwise end only the old id, and leave the new one live and unlisted.
pub async fn end<X: Exec>(
    x: &X,
    config: &SessionConfig,
    id: &[u8],
    reason: EndReason,
) -> FlowResult<Option<Session>, X>
where
    X::Error: std::error::Error,
{
    if !id::looks_valid(id) {
        return Ok(None);
    }
    let follow = matches!(reason, EndReason::Evicted | EndReason::Kicked);
    let mut id = Bytes::copy_from_slice(id);
    for _ in 0..MOVES_FOLLOWED_MAX {
        if let Some(s) = exec_session(x, &id, end_op(config, reason, None, None)).await? {
            if let Some(p) = &s.principal {
                exec(x, user_key(p), SessionOp::Unregister { ids: vec![id] }).await?;
            }
            return Ok(Some(s));
        }
        if !follow {
            break;
        }
        match exec(x, session_key(&id), SessionOp::Probe).await? {
            Reply::Bulk(next) => id = next,
            _ => break,
        }
    }
    Ok(None)
}

/// Moves the session to a new id and ends the old one: the new id, `None` if there was no
/// session.
pub async fn rotate<X: Exec>(
    x: &X,
    config: &SessionConfig,
    id: &[u8],
) -> FlowResult<Option<Bytes>, X>
where
    X::Error: std::error::Error,
{
    if !id::looks_valid(id) {
        return Ok(None);
    }
    for _ in 0..ROTATE_ATTEMPTS {
        let get = SessionOp::Get { touch: false, attrs: None, names: false };
        let Some(s) = exec_session(x, id, get).await? else {
            return Ok(None);
        };
        let new = x.new_id();
        let copy = Session { id: new.clone(), ..s.clone() };
        let adopt = SessionOp::Adopt { session: Box::new(copy) };
        if exec(x, session_key(&new), adopt).await? != Reply::Int(1) {
            continue;
        }
        let end = end_op(config, EndReason::Rotated, Some(s.version), Some(new.clone()));
        match exec(x, session_key(id), end).await {
            Ok(Reply::Bulk(_)) => {}
            Err(Error::Conflict(_)) => {
                discard_copy(x, &new).await?;
                continue;
            }
            Ok(_) => {
                discard_copy(x, &new).await?;
                return Ok(None);
            }
            Err(e) => {
                // Unclear whether the old id ended (a failover cut the answer): ask it.
                // Dropping the copy of a rotation that happened would lose the session.
                match exec(x, session_key(id), SessionOp::Probe).await {
                    Ok(Reply::Bulk(to)) if to == new => {}
                    Ok(Reply::Int(1)) => {
                        discard_copy(x, &new).await?;
                        return Err(e);
                    }
                    _ => return Err(e),
                }
            }
        }
        if let Some(p) = &s.principal {
            let rename = SessionOp::Rename { from: Bytes::copy_from_slice(id), to: new.clone() };
            exec(x, user_key(p), rename).await?;
        }
        return Ok(Some(new));
    }
    Err(Error::TryAgain("TRYAGAIN the session kept changing while it was being rotated".into()))
}

/// Drops the copy of a rotation that did not happen; nobody was ever given its id.
async fn discard_copy<X: Exec>(x: &X, new: &[u8]) -> FlowResult<(), X>
where
    X::Error: std::error::Error,
{
    x.exec(session_key(new), Op::Del).await.map_err(Error::Grid)?;
    Ok(())
}

/// Logs `principal` in on session `id` under the login policy (the group's unless given).
pub async fn login<X: Exec>(
    x: &X,
    config: &SessionConfig,
    id: &[u8],
    principal: Bytes,
    policy: Option<LoginPolicy>,
    max: Option<usize>,
) -> FlowResult<LoginOutcome, X>
where
    X::Error: std::error::Error,
{
    if !id::looks_valid(id) {
        return Ok(LoginOutcome::NoSession);
    }
    let Some(s) = exec_session(x, id, without_attrs()).await? else {
        return Ok(LoginOutcome::NoSession);
    };
    if s.principal.as_ref() == Some(&principal) {
        return Ok(LoginOutcome::LoggedIn { evicted: Vec::new() });
    }
    let rules = config.group(&s.group);
    let (policy, max) = (policy.unwrap_or(rules.login_policy), max.unwrap_or(rules.login_max));
    let id = Bytes::copy_from_slice(id);
    let login = Login { id: id.clone(), group: s.group.clone(), at_ms: x.now_ms() };
    let enlist = SessionOp::Enlist { login: login.clone(), policy, max };
    let evicted: Vec<Bytes> = match exec(x, user_key(&principal), enlist).await? {
        Reply::Int(listed) => {
            if (listed as usize).is_multiple_of(TIDY_EVERY) {
                let (_, dead, moved) = check_logins(x, &principal).await?;
                tidy_registry(x, &principal, dead, moved).await?;
            }
            Vec::new()
        }
        Reply::Nil => {
            let (_, dead, moved) = check_logins(x, &principal).await?;
            let register = SessionOp::Register { login, dead, moved, policy, max };
            decode_registry(exec(x, user_key(&principal), register).await?)?
        }
        other => return Err(unexpected(other)),
    };
    // Ended before this login holds, and unregistered only once ended: if this flow stops
    // half-way, the registry still lists them, and the next login evicts them again.
    for old in &evicted {
        end(x, config, old, EndReason::Evicted).await?;
    }
    if !evicted.is_empty() {
        let ids = evicted.clone();
        exec(x, user_key(&principal), SessionOp::Unregister { ids }).await?;
    }
    let set = SessionOp::SetPrincipal { principal: Some(principal.clone()) };
    if exec_session(x, &id, set).await?.is_none() {
        // Ended meanwhile (perhaps evicted by a newer login of the same user).
        let ids = vec![id];
        exec(x, user_key(&principal), SessionOp::Unregister { ids }).await?;
        return Ok(LoginOutcome::NoSession);
    }
    if let Some(previous) = &s.principal {
        // The session was another user's until now: it leaves that user's registry only once
        // it holds this login, so a refused switch leaves it where it was.
        let ids = vec![id.clone()];
        exec(x, user_key(previous), SessionOp::Unregister { ids }).await?;
    }
    Ok(LoginOutcome::LoggedIn { evicted })
}

/// Reads a session as it is, its attributes left out: what a login needs to know of it (a
/// 50 KB session's attributes need not leave its partition).
fn without_attrs() -> SessionOp {
    SessionOp::Get { touch: false, attrs: Some(Vec::new()), names: false }
}

/// Logs the user out of session `id` (the session stays, anonymous): false if no session or
/// nobody was logged in.
pub async fn logout<X: Exec>(x: &X, id: &[u8]) -> FlowResult<bool, X>
where
    X::Error: std::error::Error,
{
    if !id::looks_valid(id) {
        return Ok(false);
    }
    let op = SessionOp::SetPrincipal { principal: None };
    let Some(before) = exec_session(x, id, op).await? else { return Ok(false) };
    let Some(p) = before.principal else { return Ok(false) };
    let ids = vec![Bytes::copy_from_slice(id)];
    exec(x, user_key(&p), SessionOp::Unregister { ids }).await?;
    Ok(true)
}

/// The live sessions of a user, oldest login first (attributes left out); the registry rows
/// of sessions that ended go, those of rotated ones follow them.
pub async fn by_user<X: Exec>(x: &X, principal: &[u8]) -> FlowResult<Vec<Session>, X>
where
    X::Error: std::error::Error,
{
    let (live, dead, moved) = check_logins(x, principal).await?;
    tidy_registry(x, principal, dead, moved).await?;
    Ok(live)
}

/// Reads a user's registry and checks every session it lists. A listed session not yet marked
/// with any user is a login in progress and is neither live nor dead.
pub async fn check_logins<X: Exec>(x: &X, principal: &[u8]) -> FlowResult<Checked, X>
where
    X::Error: std::error::Error,
{
    let logins: Vec<Login> =
        decode_registry(exec(x, user_key(principal), SessionOp::Logins).await?)?;
    let (mut live, mut dead, mut moved) = (Vec::new(), Vec::new(), Vec::new());
    for login in logins {
        let mut id = login.id.clone();
        let mut found = None;
        for _ in 0..MOVES_FOLLOWED_MAX {
            if let Some(s) = exec_session(x, &id, without_attrs()).await? {
                found = Some(s);
                break;
            }
            match exec(x, session_key(&id), SessionOp::Probe).await? {
                Reply::Bulk(next) => id = next,
                _ => break,
            }
        }
        let Some(mut s) = found else {
            dead.push(login.id);
            continue;
        };
        if s.id != login.id {
            moved.push((login.id.clone(), s.id.clone()));
        }
        match s.principal.as_deref() {
            Some(p) if p == principal => {
                s.attrs.clear();
                live.push(s);
            }
            // A login still in progress (registered, the session not yet marked, or still
            // marked with the user it is switching from): it counts against the user's limit
            // but is not listed until it completes. A switch away from this user removes the
            // row itself once it holds.
            _ => {}
        }
    }
    Ok((live, dead, moved))
}

/// Removes the registry rows of ended sessions and renames those of rotated ones.
pub async fn tidy_registry<X: Exec>(
    x: &X,
    principal: &[u8],
    dead: Vec<Bytes>,
    moved: Vec<(Bytes, Bytes)>,
) -> FlowResult<(), X>
where
    X::Error: std::error::Error,
{
    if !dead.is_empty() {
        exec(x, user_key(principal), SessionOp::Unregister { ids: dead }).await?;
    }
    for (from, to) in moved {
        exec(x, user_key(principal), SessionOp::Rename { from, to }).await?;
    }
    Ok(())
}

/// A session read's reply: the session, or `None` if absent, ended or expired.
pub fn decode_session<E: std::error::Error>(reply: Reply) -> Result<Option<Session>, Error<E>> {
    match reply {
        Reply::Nil => Ok(None),
        Reply::Bulk(b) => Session::decode(&b)
            .map(Some)
            .map_err(|e| Error::Refused(format!("ERR corrupt session: {e}"))),
        other => Err(unexpected(other)),
    }
}

/// A registry read's reply ([`SessionOp::Logins`], [`SessionOp::Register`]), decoded.
pub fn decode_registry<T: serde::de::DeserializeOwned, E: std::error::Error>(
    reply: Reply,
) -> Result<T, Error<E>> {
    match reply {
        Reply::Bulk(b) => postcard::from_bytes(&b)
            .map_err(|e| Error::Refused(format!("ERR corrupt registry: {e}"))),
        other => Err(unexpected(other)),
    }
}

fn unexpected<E: std::error::Error>(reply: Reply) -> Error<E> {
    Error::Refused(format!("ERR unexpected reply from the grid: {reply:?}"))
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::Entry;

    #[derive(Debug, thiserror::Error)]
    #[error("unreachable")]
    struct Unreachable;

    /// Every key in one map, every operation applied at once.
    #[derive(Default)]
    struct OneMap {
        entries: RefCell<BTreeMap<Bytes, Entry>>,
        ids: Cell<u64>,
        /// Bytes of every bulk reply so far: what left the partitions.
        replied: Cell<usize>,
        /// The operations run, by name.
        counts: RefCell<BTreeMap<&'static str, usize>>,
    }

    impl Exec for OneMap {
        type Error = Unreachable;

        async fn exec(&self, key: Bytes, op: Op) -> Result<Reply, Unreachable> {
            if let Op::Session(op) = &op {
                *self.counts.borrow_mut().entry(op.name()).or_default() += 1;
            }
            let mut entries = self.entries.borrow_mut();
            let mut slot = entries.remove(&key);
            let reply = crate::apply::apply(op, &mut slot, 1_000).reply;
            entries.extend(slot.map(|e| (key, e)));
            if let Reply::Bulk(b) = &reply {
                self.replied.set(self.replied.get() + b.len());
            }
            Ok(reply)
        }

        fn new_id(&self) -> Bytes {
            self.ids.set(self.ids.get() + 1);
            Bytes::from(format!("session-number-{:04}", self.ids.get()))
        }

        fn now_ms(&self) -> u64 {
            1_000
        }
    }

    /// Runs a flow whose every step is answered at once.
    fn run<T>(flow: impl Future<Output = T>) -> T {
        let mut flow = std::pin::pin!(flow);
        match flow.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("a step of OneMap never waits"),
        }
    }

    /// The id of a new session (60 s idle timeout, no attributes).
    fn created(x: &OneMap) -> Bytes {
        let id = x.new_id();
        let create = SessionOp::Create {
            id: id.clone(),
            group: Bytes::new(),
            idle_ms: 60_000,
            absolute_ms: None,
        };
        run(exec(x, session_key(&id), create)).unwrap();
        id
    }

    fn live(x: &OneMap, id: &Bytes) -> Option<Session> {
        let get = SessionOp::Get { touch: false, attrs: None, names: false };
        run(exec_session(x, id, get)).unwrap()
    }

    #[test]
    fn an_eviction_or_kick_follows_a_rotation_an_invalidation_does_not() {
        let config = SessionConfig::default();
        for (reason, follows) in
            [(EndReason::Evicted, true), (EndReason::Kicked, true), (EndReason::Invalidated, false)]
        {
            let x = OneMap::default();
            let a = created(&x);
            // A rotation of `a` (which an eviction raced: it read the registry before) ended it.
            let moved = x.new_id();
            let copy = Session { id: moved.clone(), ..live(&x, &a).unwrap() };
            let adopt = SessionOp::Adopt { session: Box::new(copy) };
            run(exec(&x, session_key(&moved), adopt)).unwrap();
            let end_a = end_op(&config, EndReason::Rotated, None, Some(moved.clone()));
            run(exec(&x, session_key(&a), end_a)).unwrap();
            let ended = run(end(&x, &config, &a, reason)).unwrap();
            assert_eq!(ended.map(|s| s.id), follows.then(|| moved.clone()), "{reason:?}");
            assert_eq!(live(&x, &moved).is_none(), follows, "{reason:?}");
        }
    }

    #[test]
    fn a_login_reads_no_attribute_of_the_session_or_of_the_users_others() {
        let config = SessionConfig::default();
        let x = OneMap::default();
        let big = Bytes::from(vec![b'x'; 50_000]);
        let sessions: Vec<Bytes> = (0..3)
            .map(|_| {
                let id = created(&x);
                let set = SessionOp::Set {
                    if_version: None,
                    replace: false,
                    idle_ms: None,
                    attrs: vec![(
                        Bytes::from_static(b"cart"),
                        crate::session::Tag::Utf8,
                        big.clone(),
                    )],
                    limits: config.limits(),
                };
                run(exec(&x, session_key(&id), set)).unwrap();
                id
            })
            .collect();
        let before = x.replied.get();
        for id in &sessions {
            let login = login(&x, &config, id, Bytes::from_static(b"u"), None, None);
            assert!(matches!(run(login).unwrap(), LoginOutcome::LoggedIn { .. }));
        }
        // Three logins read their session and, the last, two others of the user.
        let read = x.replied.get() - before;
        assert!(read < 5_000, "{read} bytes left the partitions for three logins");
    }

    /// Ends a session as its expiry would: its row in its user's registry stays.
    fn end_behind_the_registry(x: &OneMap, config: &SessionConfig, id: &Bytes) {
        let op = end_op(config, EndReason::Invalidated, None, None);
        run(exec(x, session_key(id), op)).unwrap();
    }

    /// Counts the operations run, by name.
    fn counted<T>(x: &OneMap, flow: impl Future<Output = T>) -> (T, BTreeMap<&'static str, usize>) {
        x.counts.borrow_mut().clear();
        let out = run(flow);
        (out, x.counts.borrow().clone())
    }

    #[test]
    fn a_login_no_policy_can_refuse_reads_no_other_session_until_its_registry_needs_tidying() {
        let config = SessionConfig::default();
        let x = OneMap::default();
        let user = Bytes::from_static(b"u");
        let ended: Vec<Bytes> = (1..TIDY_EVERY)
            .map(|_| {
                let id = created(&x);
                run(login(&x, &config, &id, user.clone(), None, None)).unwrap();
                end_behind_the_registry(&x, &config, &id);
                id
            })
            .collect();
        let id = created(&x);
        let (outcome, ops) = counted(&x, login(&x, &config, &id, user.clone(), None, None));
        assert!(matches!(outcome.unwrap(), LoginOutcome::LoggedIn { .. }));
        // Its session read, the registry's row written and the session marked: the registry now
        // has TIDY_EVERY rows, so the others are read and the rows of the ended ones removed.
        assert_eq!(ops.get("session.principal"), Some(&1));
        assert_eq!(ops.get("user.enlist"), Some(&1));
        assert_eq!(ops.get("session.get"), Some(&(1 + TIDY_EVERY)), "{ops:?}");
        assert_eq!(ops.get("user.unregister"), Some(&1), "{ops:?}");
        let (checked, _) = counted(&x, check_logins(&x, &user));
        let (live, dead, _) = checked.unwrap();
        assert_eq!((live.len(), dead.len()), (1, 0), "{} ended ones were tidied", ended.len());
        let next = created(&x);
        let (_, ops) = counted(&x, login(&x, &config, &next, user.clone(), None, None));
        let ops: Vec<_> = ops.into_iter().collect();
        assert_eq!(
            ops,
            [("session.get", 1), ("session.principal", 1), ("user.enlist", 1)],
            "a login that need not tidy"
        );
    }

    #[test]
    fn a_limited_login_checks_the_listed_sessions_only_once_the_limit_is_reached() {
        let config = SessionConfig {
            login_policy: LoginPolicy::EvictOldest,
            login_max: 2,
            ..SessionConfig::default()
        };
        let x = OneMap::default();
        let user = Bytes::from_static(b"u");
        let ids: Vec<Bytes> = (0..4).map(|_| created(&x)).collect();
        for id in &ids[..2] {
            let (_, ops) = counted(&x, login(&x, &config, id, user.clone(), None, None));
            assert_eq!(ops.get("user.logins"), None, "room left: nothing checked");
        }
        let (outcome, ops) = counted(&x, login(&x, &config, &ids[2], user.clone(), None, None));
        assert_eq!(ops.get("user.logins"), Some(&1));
        match outcome.unwrap() {
            LoginOutcome::LoggedIn { evicted } => assert_eq!(evicted, [ids[0].clone()]),
            other => panic!("{other:?}"),
        }
        assert!(live(&x, &ids[0]).is_none());
        // A listed session that ended makes room, once the registry is checked.
        end_behind_the_registry(&x, &config, &ids[1]);
        match run(login(&x, &config, &ids[3], user.clone(), None, None)).unwrap() {
            LoginOutcome::LoggedIn { evicted } => assert!(evicted.is_empty(), "{evicted:?}"),
            other => panic!("{other:?}"),
        }
        let (live_now, _, _) = run(check_logins(&x, &user)).unwrap();
        let live_ids: Vec<Bytes> = live_now.into_iter().map(|s| s.id).collect();
        assert_eq!(live_ids, [ids[2].clone(), ids[3].clone()]);
    }

    #[test]
    fn a_refusal_is_typed_by_its_code() {
        let typed = |text: &str| Error::<Unreachable>::from_reply(text.to_string());
        assert!(matches!(typed("CONFLICT session is at version 3, not 2"), Error::Conflict(_)));
        assert!(matches!(
            typed("LOGINREJECTED user has 1 live session(s)"),
            Error::LoginRejected(_)
        ));
        assert!(matches!(typed("ERR session limit: too many attributes"), Error::Limit(_)));
        assert!(matches!(typed("TRYAGAIN not serving"), Error::TryAgain(_)));
        assert!(matches!(typed("INDETERMINATE not confirmed"), Error::Indeterminate(_)));
        let other = typed("ERR corrupt session");
        assert!(matches!(&other, Error::Refused(_)));
        assert_eq!(other.to_string(), "ERR corrupt session", "the reply's text is kept as is");
        assert!(matches!(typed("CONFLICTING"), Error::Refused(_)), "a code is a whole word");
    }
}
