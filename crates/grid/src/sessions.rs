//! [`Sessions`]: the session operations every door offers, as grid operations.
//!
//! A single-session operation is one [`SessionOp`] on the session's key, run atomically by its
//! partition's primary. Operations that span keys (rotate, login, logout, by user) are the
//! sequences of [`sessiongrid_model::session::flows`], run here on the grid.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use rand::RngCore;
use sessiongrid_model::config::SessionConfig;
pub use sessiongrid_model::session::flows::LoginOutcome;
use sessiongrid_model::session::flows::{self, Exec};
use sessiongrid_model::session::op::SessionOp;
use sessiongrid_model::session::{
    id, id_of_key, log_key, session_key, visible_to, EndReason, Login, LoginPolicy, Session, Tag,
    SESSION_PREFIX, USER_PREFIX,
};
use sessiongrid_model::{time, KeyFilter, Op, PartitionId, Reply};
use tracing::{debug_span, info_span, Instrument};

use crate::error::GridError;
use crate::events::EventCounts;
use crate::grid::Grid;

/// Why a session operation failed.
pub type SessionError = flows::Error<GridError>;

pub type SessionResult<T> = Result<T, SessionError>;

impl From<GridError> for SessionError {
    fn from(e: GridError) -> Self {
        flows::Error::Grid(e)
    }
}

/// The grid as the flows' executor.
struct OnGrid<'a>(&'a Grid);

impl Exec for OnGrid<'_> {
    type Error = GridError;

    async fn exec(&self, key: Bytes, op: Op) -> Result<Reply, GridError> {
        let name = match &op {
            Op::Session(op) => op.name(),
            _ => "key",
        };
        let span = debug_span!("session_op", op = name, key = %log_key(&key));
        self.0.exec(key, op).instrument(span).await
    }

    fn new_id(&self) -> Bytes {
        new_id()
    }

    fn now_ms(&self) -> u64 {
        time::now_ms()
    }
}

/// Cheap to clone; all clones share the counter.
#[derive(Clone)]
pub struct Sessions {
    grid: Grid,
    config: Arc<SessionConfig>,
    /// Logins refused by a policy on this node (they change nothing, so they make no event).
    logins_rejected: Arc<AtomicU64>,
    attribute_writes: metrics::Counter,
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

impl Sessions {
    pub fn new(grid: Grid, config: SessionConfig) -> Self {
        Sessions {
            grid,
            config: Arc::new(config),
            logins_rejected: Arc::default(),
            attribute_writes: metrics::counter!("sessiongrid_sessions_attribute_writes_total"),
        }
    }

    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    async fn exec(&self, key: Bytes, op: SessionOp) -> SessionResult<Reply> {
        flows::exec(&OnGrid(&self.grid), key, op).await
    }

    async fn exec_session(&self, id: &[u8], op: SessionOp) -> SessionResult<Option<Session>> {
        flows::exec_session(&OnGrid(&self.grid), id, op).await
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
                self.attribute_writes.increment(1);
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
        flows::end(&OnGrid(&self.grid), &self.config, id, reason).await
    }

    /// Moves the session to a new id and ends the old one: the new id, `None` if there was no
    /// session.
    pub async fn rotate(&self, id: &[u8]) -> SessionResult<Option<Bytes>> {
        flows::rotate(&OnGrid(&self.grid), &self.config, id).await
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
        let on = OnGrid(&self.grid);
        let login = flows::login(&on, &self.config, id, principal, policy, max);
        match login.instrument(info_span!("session_login")).await {
            Err(SessionError::LoginRejected(e)) => {
                self.logins_rejected.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("sessiongrid_sessions_logins_rejected_total").increment(1);
                Err(SessionError::LoginRejected(e))
            }
            outcome => outcome,
        }
    }

    /// Logs the user out of session `id` (the session stays, anonymous): false if no session
    /// or nobody was logged in.
    pub async fn logout(&self, id: &[u8]) -> SessionResult<bool> {
        flows::logout(&OnGrid(&self.grid), id).await
    }

    /// The live sessions of a user, oldest login first (attributes left out).
    pub async fn by_user(&self, principal: &[u8]) -> SessionResult<Vec<Session>> {
        flows::by_user(&OnGrid(&self.grid), principal).await
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
        let mut kicked = 0;
        for s in self.by_user(principal).await?.into_iter().filter(|s| reaches(&s.group)) {
            kicked += self.end(&s.id, EndReason::Kicked).await?.is_some() as u64;
        }
        Ok(kicked)
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
                let logins: Vec<Login> =
                    flows::decode_registry(self.exec(key.clone(), SessionOp::Logins).await?)?;
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
