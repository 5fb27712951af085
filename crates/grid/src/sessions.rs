//! [`Sessions`]: the session operations every door offers, as grid operations.
//!
//! A single-session operation is one [`SessionOp`] on the session's key, run atomically by its
//! partition's primary. Operations that span keys are sequences whose order keeps the rules
//! true at every step, whatever fails in between:
//!
//! - **Rotate**: copy the session to a fresh id, then end the old id only if it is still at the
//!   version copied (else discard the copy and start over). The old id's tombstone is the
//!   moment of rotation; a failure before it leaves the old session as it was.
//! - **Login**: the user's registry is the one place where a login is decided, so two logins of
//!   one user on two nodes are ordered there. Before registering, ids the registry lists whose
//!   sessions have ended or expired are found (and rotated ones renamed), so they do not count.
//!   The sessions a policy evicts are ended after the registry changed.
//! - **By user**: the registry is read and every listed session checked, so an ended or expired
//!   session is never listed even if its registry row is still there; such rows are removed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use rand::RngCore;
use sessiongrid_model::config::SessionConfig;
use sessiongrid_model::session::op::SessionOp;
use sessiongrid_model::session::{
    id, id_of_key, log_key, session_key, user_key, visible_to, EndReason, Login, LoginPolicy,
    Session, Tag, SESSION_PREFIX, USER_PREFIX,
};
use sessiongrid_model::{time, KeyFilter, Op, PartitionId, Reply};
use tracing::{debug, debug_span, info_span, Instrument};

use crate::error::GridError;
use crate::events::EventCounts;
use crate::grid::Grid;

/// How many rotations a session id is followed through in a user's registry.
const MOVES_FOLLOWED_MAX: usize = 8;
/// Attempts before giving up on a rotation that keeps racing with writes.
const ROTATE_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Grid(#[from] GridError),
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

pub type SessionResult<T> = Result<T, SessionError>;

impl SessionError {
    /// A partition's error reply, by its code: the first word, as every RESP error carries
    /// it. The one place a refusal's text is read; everything after matches on the variant.
    fn from_reply(text: String) -> SessionError {
        let code = text.split(' ').next().unwrap_or_default();
        match code {
            "CONFLICT" => SessionError::Conflict(text),
            "LOGINREJECTED" => SessionError::LoginRejected(text),
            "TRYAGAIN" => SessionError::TryAgain(text),
            "INDETERMINATE" => SessionError::Indeterminate(text),
            "ERR" if text.starts_with("ERR session limit") => SessionError::Limit(text),
            _ => SessionError::Refused(text),
        }
    }
}

/// Cheap to clone; all clones share the counter.
#[derive(Clone)]
pub struct Sessions {
    grid: Grid,
    config: Arc<SessionConfig>,
    /// Logins refused by a policy on this node (they change nothing, so they make no event).
    logins_rejected: Arc<AtomicU64>,
}

/// `SESSION.STATS`: live sessions in the grid, and session events by kind, published by this
/// node and seen from the whole cluster since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub live: u64,
    pub events: EventCounts,
    pub logins_rejected: u64,
}

/// What `SESSION.GET` returns.
#[derive(Clone, Debug, Default)]
pub struct GetOptions {
    /// Also show the attributes private to this application.
    pub app: Option<Bytes>,
    /// Only these attributes.
    pub attrs: Option<Vec<Bytes>>,
    /// Leave last access where it is.
    pub no_touch: bool,
    /// Attribute names, tags and versions only: values are left out (empty).
    pub names: bool,
}

/// A write of attributes (`SESSION.SET`).
#[derive(Clone, Debug, Default)]
pub struct Write {
    /// Only if the session is at this version (else `CONFLICT`).
    pub if_version: Option<u64>,
    /// The attributes become exactly `attrs` (the others are removed).
    pub replace: bool,
    /// A new idle timeout.
    pub idle_s: Option<u64>,
    pub attrs: Vec<(Bytes, Tag, Bytes)>,
}

/// How a login went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in; these sessions of the user were ended to make room.
    LoggedIn { evicted: Vec<Bytes> },
    /// The session does not exist (or ended meanwhile).
    NoSession,
}

impl Sessions {
    pub fn new(grid: Grid, config: SessionConfig) -> Self {
        Sessions { grid, config: Arc::new(config), logins_rejected: Arc::default() }
    }

    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    async fn exec(&self, key: Bytes, op: SessionOp) -> SessionResult<Reply> {
        let span = debug_span!("session_op", op = op.name(), key = %log_key(&key));
        match self.grid.exec(key, Op::Session(op)).instrument(span).await? {
            Reply::Error(e) => Err(SessionError::from_reply(e)),
            reply => Ok(reply),
        }
    }

    async fn exec_session(&self, id: &[u8], op: SessionOp) -> SessionResult<Option<Session>> {
        decode_session(self.exec(session_key(id), op).await?)
    }

    /// Starts a session in `group`: its new id. Timeouts default to the group's.
    pub async fn create(
        &self,
        group: Bytes,
        idle_s: Option<u64>,
        absolute_s: Option<u64>,
    ) -> SessionResult<Bytes> {
        loop {
            // 160 random bits: a taken id means a broken random source, not bad luck; the
            // retry is there so that even then no session is overwritten.
            let id = new_id();
            if self.create_with_id(group.clone(), id.clone(), idle_s, absolute_s).await? {
                return Ok(id);
            }
        }
    }

    /// Starts a session under an id the caller chose (a session library that makes its own
    /// ids): false if the id is taken, by a live or an ended session.
    pub async fn create_with_id(
        &self,
        group: Bytes,
        id: Bytes,
        idle_s: Option<u64>,
        absolute_s: Option<u64>,
    ) -> SessionResult<bool> {
        if !id::looks_valid(&id) {
            return Err(SessionError::Invalid(
                "an id has 16 to 128 characters of A-Z a-z 0-9 - _".into(),
            ));
        }
        self.check_name("group", &group)?;
        let rules = self.config.group(&group);
        let idle_s = idle_s.unwrap_or(rules.idle_timeout_s);
        if idle_s == 0 {
            return Err(SessionError::Invalid("IDLE must be positive".into()));
        }
        let absolute_s = absolute_s.unwrap_or(rules.absolute_timeout_s);
        let op = SessionOp::Create {
            id: id.clone(),
            group,
            idle_ms: idle_s.saturating_mul(1000),
            absolute_ms: (absolute_s > 0).then(|| absolute_s.saturating_mul(1000)),
        };
        let created =
            self.exec(session_key(&id), op).instrument(info_span!("session_create")).await?;
        Ok(created == Reply::Int(1))
    }

    /// The session with its attributes visible to `opts.app`; `None` if absent, ended or expired.
    pub async fn get(&self, id: &[u8], opts: &GetOptions) -> SessionResult<Option<Session>> {
        if !id::looks_valid(id) {
            return Ok(None);
        }
        let op =
            SessionOp::Get { touch: !opts.no_touch, attrs: opts.attrs.clone(), names: opts.names };
        let Some(mut s) = self.exec_session(id, op).await? else { return Ok(None) };
        s.attrs.retain(|name, _| {
            visible_to(name, opts.app.as_deref())
                && opts.attrs.as_ref().is_none_or(|wanted| wanted.contains(name))
        });
        Ok(Some(s))
    }

    /// The session's metadata (group, user, version, deadlines; no attributes) without touching
    /// it; `None` if absent, ended or expired.
    pub async fn peek(&self, id: &[u8]) -> SessionResult<Option<Session>> {
        let opts = GetOptions { no_touch: true, attrs: Some(Vec::new()), ..GetOptions::default() };
        self.get(id, &opts).await
    }

    /// Writes attributes: the session's new version, `None` if it does not exist.
    pub async fn set(
        &self,
        id: &[u8],
        if_version: Option<u64>,
        attrs: Vec<(Bytes, Tag, Bytes)>,
    ) -> SessionResult<Option<u64>> {
        self.write(id, Write { if_version, attrs, ..Write::default() }).await
    }

    /// Writes attributes as `w` says: the session's new version, `None` if it does not exist.
    pub async fn write(&self, id: &[u8], w: Write) -> SessionResult<Option<u64>> {
        if !id::looks_valid(id) {
            return Ok(None);
        }
        if w.idle_s == Some(0) {
            return Err(SessionError::Invalid("IDLE must be positive".into()));
        }
        let op = SessionOp::Set {
            if_version: w.if_version,
            replace: w.replace,
            idle_ms: w.idle_s.map(|s| s.saturating_mul(1000)),
            attrs: w.attrs,
            limits: self.config.limits(),
        };
        match self.exec(session_key(id), op).await? {
            Reply::Int(v) => {
                metrics::counter!("sessiongrid_sessions_attribute_writes_total").increment(1);
                Ok(Some(v as u64))
            }
            _ => Ok(None),
        }
    }

    /// Removes attributes: how many existed, `None` if the session does not exist.
    pub async fn del(&self, id: &[u8], names: Vec<Bytes>) -> SessionResult<Option<u64>> {
        if !id::looks_valid(id) {
            return Ok(None);
        }
        match self.exec(session_key(id), SessionOp::Del { names }).await? {
            Reply::Int(n) => Ok(Some(n as u64)),
            _ => Ok(None),
        }
    }

    /// Marks the session used now, with a new idle timeout if given: the idle ms it has left,
    /// `None` if it does not exist.
    pub async fn touch(&self, id: &[u8], idle_s: Option<u64>) -> SessionResult<Option<u64>> {
        if !id::looks_valid(id) {
            return Ok(None);
        }
        if idle_s == Some(0) {
            return Err(SessionError::Invalid("IDLE must be positive".into()));
        }
        let idle_ms = idle_s.map(|s| s.saturating_mul(1000));
        match self.exec(session_key(id), SessionOp::Touch { idle_ms }).await? {
            Reply::Int(ms) => Ok(Some(ms as u64)),
            _ => Ok(None),
        }
    }

    /// Ends a session for good: false if there was none.
    pub async fn invalidate(&self, id: &[u8]) -> SessionResult<bool> {
        let ended = self.end(id, EndReason::Invalidated).await?;
        Ok(ended.is_some())
    }

    /// Ends a session and takes it out of its user's registry: the session as it was.
    async fn end(&self, id: &[u8], reason: EndReason) -> SessionResult<Option<Session>> {
        if !id::looks_valid(id) {
            return Ok(None);
        }
        let op = self.end_op(reason, None, None);
        let Some(s) = self.exec_session(id, op).await? else { return Ok(None) };
        if let Some(p) = &s.principal {
            let ids = vec![Bytes::copy_from_slice(id)];
            self.exec(user_key(p), SessionOp::Unregister { ids }).await?;
        }
        Ok(Some(s))
    }

    fn end_op(
        &self,
        reason: EndReason,
        if_version: Option<u64>,
        moved_to: Option<Bytes>,
    ) -> SessionOp {
        let retention_ms = self.config.tombstone_retention_s.saturating_mul(1000);
        SessionOp::End { reason, if_version, moved_to, retention_ms }
    }

    /// Moves the session to a new id and ends the old one: the new id, `None` if there was no
    /// session.
    pub async fn rotate(&self, id: &[u8]) -> SessionResult<Option<Bytes>> {
        if !id::looks_valid(id) {
            return Ok(None);
        }
        for _ in 0..ROTATE_ATTEMPTS {
            let Some(s) = self
                .exec_session(id, SessionOp::Get { touch: false, attrs: None, names: false })
                .await?
            else {
                return Ok(None);
            };
            let new = new_id();
            let copy = Session { id: new.clone(), ..s.clone() };
            let adopt = SessionOp::Adopt { session: Box::new(copy) };
            if self.exec(session_key(&new), adopt).await? != Reply::Int(1) {
                continue;
            }
            let end = self.end_op(EndReason::Rotated, Some(s.version), Some(new.clone()));
            match self.exec(session_key(id), end).await {
                Ok(Reply::Bulk(_)) => {}
                Err(SessionError::Conflict(_)) => {
                    self.discard_copy(&new).await?;
                    continue;
                }
                Ok(_) => {
                    self.discard_copy(&new).await?;
                    return Ok(None);
                }
                Err(e) => {
                    // Unclear whether the old id ended (a failover cut the answer): ask it.
                    // Dropping the copy of a rotation that happened would lose the session.
                    match self.exec(session_key(id), SessionOp::Probe).await {
                        Ok(Reply::Bulk(to)) if to == new => {}
                        Ok(Reply::Int(1)) => {
                            self.discard_copy(&new).await?;
                            return Err(e);
                        }
                        _ => return Err(e),
                    }
                }
            }
            if let Some(p) = &s.principal {
                let rename =
                    SessionOp::Rename { from: Bytes::copy_from_slice(id), to: new.clone() };
                self.exec(user_key(p), rename).await?;
            }
            return Ok(Some(new));
        }
        Err(SessionError::TryAgain(
            "TRYAGAIN the session kept changing while it was being rotated".into(),
        ))
    }

    /// Drops the copy of a rotation that did not happen; nobody was ever given its id.
    async fn discard_copy(&self, new: &[u8]) -> SessionResult<()> {
        self.grid.exec(session_key(new), Op::Del).await?;
        Ok(())
    }

    /// Logs `principal` in on session `id` under the login policy (the group's unless given).
    pub async fn login(
        &self,
        id: &[u8],
        principal: Bytes,
        policy: Option<LoginPolicy>,
        max: Option<usize>,
    ) -> SessionResult<LoginOutcome> {
        self.check_name("principal", &principal)?;
        if !id::looks_valid(id) {
            return Ok(LoginOutcome::NoSession);
        }
        let span = info_span!("session_login");
        async {
            let get = SessionOp::Get { touch: false, attrs: None, names: false };
            let Some(s) = self.exec_session(id, get).await? else {
                return Ok(LoginOutcome::NoSession);
            };
            if s.principal.as_ref() == Some(&principal) {
                return Ok(LoginOutcome::LoggedIn { evicted: Vec::new() });
            }
            let rules = self.config.group(&s.group);
            let (_, dead, moved) = self.check_logins(&principal).await?;
            let id = Bytes::copy_from_slice(id);
            let login = Login { id: id.clone(), group: s.group.clone(), at_ms: time::now_ms() };
            let register = SessionOp::Register {
                login,
                dead,
                moved,
                policy: policy.unwrap_or(rules.login_policy),
                max: max.unwrap_or(rules.login_max),
            };
            let evicted: Vec<Bytes> = match self.exec(user_key(&principal), register).await {
                Ok(reply) => decode(reply)?,
                Err(SessionError::LoginRejected(e)) => {
                    self.logins_rejected.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("sessiongrid_sessions_logins_rejected_total").increment(1);
                    return Err(SessionError::LoginRejected(e));
                }
                Err(e) => return Err(e),
            };
            // The registry no longer lists them, so they end whatever happens to this login.
            for old in &evicted {
                self.end(old, EndReason::Evicted).await?;
            }
            let set = SessionOp::SetPrincipal { principal: Some(principal.clone()) };
            if self.exec_session(&id, set).await?.is_none() {
                // Ended meanwhile (perhaps evicted by a newer login of the same user).
                let ids = vec![id];
                self.exec(user_key(&principal), SessionOp::Unregister { ids }).await?;
                return Ok(LoginOutcome::NoSession);
            }
            if let Some(previous) = &s.principal {
                // The session was another user's until now: it leaves that user's registry
                // only once it holds this login, so a refused switch leaves it where it was.
                let ids = vec![id.clone()];
                self.exec(user_key(previous), SessionOp::Unregister { ids }).await?;
            }
            Ok(LoginOutcome::LoggedIn { evicted })
        }
        .instrument(span)
        .await
    }

    /// Logs the user out of session `id` (the session stays, anonymous): false if no session
    /// or nobody was logged in.
    pub async fn logout(&self, id: &[u8]) -> SessionResult<bool> {
        if !id::looks_valid(id) {
            return Ok(false);
        }
        let op = SessionOp::SetPrincipal { principal: None };
        let Some(before) = self.exec_session(id, op).await? else { return Ok(false) };
        let Some(p) = before.principal else { return Ok(false) };
        let ids = vec![Bytes::copy_from_slice(id)];
        self.exec(user_key(&p), SessionOp::Unregister { ids }).await?;
        Ok(true)
    }

    /// The live sessions of a user, oldest login first (attributes left out).
    pub async fn by_user(&self, principal: &[u8]) -> SessionResult<Vec<Session>> {
        let (live, dead, moved) = self.check_logins(principal).await?;
        self.tidy_registry(principal, dead, moved).await?;
        Ok(live)
    }

    /// Ends every session of a user: how many were live.
    pub async fn kick_user(&self, principal: &[u8]) -> SessionResult<u64> {
        self.kick_user_in(principal, |_| true).await
    }

    /// Ends the sessions of a user in the groups `reaches` accepts (those a caller limited to
    /// some groups may end): how many were live.
    pub async fn kick_user_in(
        &self,
        principal: &[u8],
        reaches: impl Fn(&[u8]) -> bool,
    ) -> SessionResult<u64> {
        let (live, dead, moved) = self.check_logins(principal).await?;
        self.tidy_registry(principal, dead, moved).await?;
        let mut kicked = 0;
        for s in live.into_iter().filter(|s| reaches(&s.group)) {
            kicked += self.end(&s.id, EndReason::Kicked).await?.is_some() as u64;
        }
        Ok(kicked)
    }

    /// Reads a user's registry and checks every session it lists: (live sessions of the user,
    /// ids that are no longer the user's, rotated ids with their new id). A listed session not
    /// yet marked with any user is a login in progress and is neither live nor dead.
    async fn check_logins(
        &self,
        principal: &[u8],
    ) -> SessionResult<(Vec<Session>, Vec<Bytes>, Vec<(Bytes, Bytes)>)> {
        let logins: Vec<Login> = decode(self.exec(user_key(principal), SessionOp::Logins).await?)?;
        let (mut live, mut dead, mut moved) = (Vec::new(), Vec::new(), Vec::new());
        for login in logins {
            let mut id = login.id.clone();
            let mut found = None;
            for _ in 0..MOVES_FOLLOWED_MAX {
                let get = SessionOp::Get { touch: false, attrs: None, names: false };
                if let Some(s) = self.exec_session(&id, get).await? {
                    found = Some(s);
                    break;
                }
                match self.exec(session_key(&id), SessionOp::Probe).await? {
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
                // marked with the user it is switching from): it counts against the user's
                // limit but is not listed until it completes. A switch away from this user
                // removes the row itself once it holds.
                _ => {}
            }
        }
        Ok((live, dead, moved))
    }

    async fn tidy_registry(
        &self,
        principal: &[u8],
        dead: Vec<Bytes>,
        moved: Vec<(Bytes, Bytes)>,
    ) -> SessionResult<()> {
        if !dead.is_empty() {
            debug!(removed = dead.len(), "ended sessions left a user's registry");
            self.exec(user_key(principal), SessionOp::Unregister { ids: dead }).await?;
        }
        for (from, to) in moved {
            self.exec(user_key(principal), SessionOp::Rename { from, to }).await?;
        }
        Ok(())
    }

    /// Session ids of the grid (of one group), a few partitions at a time: the ids found from
    /// partition `cursor` on, and the cursor to continue from (0 when done). Every session live
    /// during the whole listing is listed exactly once.
    pub async fn list(
        &self,
        group: Option<Bytes>,
        cursor: u64,
        count: usize,
    ) -> SessionResult<(u64, Vec<Bytes>)> {
        let partitions = self.grid.partitions() as u64;
        let filter = session_filter(group);
        let mut ids = Vec::new();
        let mut p = cursor;
        while p < partitions && ids.len() < count.max(1) {
            let keys = self.grid.keys(p as PartitionId, filter.clone()).await?;
            ids.extend(keys.iter().filter_map(|k| id_of_key(k)).map(Bytes::copy_from_slice));
            p += 1;
        }
        Ok((if p >= partitions { 0 } else { p }, ids))
    }

    /// The `n` users with the most live sessions: (user, live sessions), most first. Reads every
    /// user's registry, then checks the leaders' sessions, so it costs a read per user: meant for
    /// a dashboard refreshed every few seconds, not for a hot path.
    pub async fn top_users(&self, n: usize) -> SessionResult<Vec<(Bytes, u64)>> {
        let mut pattern = USER_PREFIX.to_vec();
        pattern.push(b'*');
        let filter = KeyFilter {
            pattern: Some(pattern.into()),
            type_name: Some("principal".into()),
            group: None,
            db: None,
        };
        let mut listed = Vec::new();
        for p in 0..self.grid.partitions() {
            for key in self.grid.keys(p, filter.clone()).await? {
                let logins: Vec<Login> = decode(self.exec(key.clone(), SessionOp::Logins).await?)?;
                let principal = key.slice(USER_PREFIX.len()..);
                listed.push((principal, logins.len() as u64));
            }
        }
        // Registries may still list sessions that ended: check the leaders, and a few more in
        // case some of them drop.
        listed.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut top = Vec::new();
        for (principal, _) in listed.into_iter().take(n.saturating_mul(2)) {
            let live = self.by_user(&principal).await?.len() as u64;
            if live > 0 {
                top.push((principal, live));
            }
        }
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(n);
        Ok(top)
    }

    /// The live sessions in the grid and the event counts (of one group).
    pub async fn stats(&self, group: Option<Bytes>) -> SessionResult<Stats> {
        let events = self.grid.events().counts(group.as_deref());
        let live = match group {
            // Every partition counts its sessions; only a group needs a look at each one.
            None => self.grid.partition_counts().await?.iter().map(|c| c.sessions).sum(),
            Some(g) => {
                let filter = session_filter(Some(g));
                let mut live = 0;
                for p in 0..self.grid.partitions() {
                    live += self.grid.keys(p, filter.clone()).await?.len() as u64;
                }
                live
            }
        };
        let logins_rejected = self.logins_rejected.load(Ordering::Relaxed);
        Ok(Stats { live, events, logins_rejected })
    }

    fn check_name(&self, what: &str, name: &[u8]) -> SessionResult<()> {
        let max = match what {
            "principal" => self.config.principal_bytes_max,
            _ => self.config.group_bytes_max,
        };
        if name.is_empty() || name.len() > max {
            return Err(SessionError::Invalid(format!("{what} must have 1 to {max} bytes")));
        }
        Ok(())
    }
}

fn session_filter(group: Option<Bytes>) -> KeyFilter {
    let mut pattern = SESSION_PREFIX.to_vec();
    pattern.push(b'*');
    KeyFilter { pattern: Some(pattern.into()), type_name: Some("session".into()), group, db: None }
}

/// A fresh session id: 160 bits from the operating system's CSPRNG (through `rand`'s
/// thread-local generator, which it seeds).
fn new_id() -> Bytes {
    let mut random = [0u8; id::RANDOM_BYTES];
    rand::rng().fill_bytes(&mut random);
    Bytes::from(id::encode(&random))
}

fn decode_session(reply: Reply) -> SessionResult<Option<Session>> {
    match reply {
        Reply::Nil => Ok(None),
        Reply::Bulk(b) => Session::decode(&b)
            .map(Some)
            .map_err(|e| SessionError::Refused(format!("ERR corrupt session: {e}"))),
        other => Err(unexpected(other)),
    }
}

fn decode<T: serde::de::DeserializeOwned>(reply: Reply) -> SessionResult<T> {
    match reply {
        Reply::Bulk(b) => postcard::from_bytes(&b)
            .map_err(|e| SessionError::Refused(format!("ERR corrupt registry: {e}"))),
        other => Err(unexpected(other)),
    }
}

fn unexpected(reply: Reply) -> SessionError {
    SessionError::Refused(format!("ERR unexpected reply from the grid: {reply:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_typed_by_its_code() {
        let typed = |text: &str| SessionError::from_reply(text.to_string());
        assert!(matches!(
            typed("CONFLICT session is at version 3, not 2"),
            SessionError::Conflict(_)
        ));
        assert!(matches!(
            typed("LOGINREJECTED user has 1 live session(s)"),
            SessionError::LoginRejected(_)
        ));
        assert!(matches!(typed("ERR session limit: too many attributes"), SessionError::Limit(_)));
        assert!(matches!(typed("TRYAGAIN not serving"), SessionError::TryAgain(_)));
        assert!(matches!(typed("INDETERMINATE not confirmed"), SessionError::Indeterminate(_)));
        let other = typed("ERR corrupt session");
        assert!(matches!(&other, SessionError::Refused(_)));
        assert_eq!(other.to_string(), "ERR corrupt session", "the reply's text is kept as is");
        assert!(matches!(typed("CONFLICTING"), SessionError::Refused(_)), "a code is a whole word");
    }
}
