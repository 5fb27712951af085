//! Operations on one session or one user's registry. Like every [`Op`](crate::Op) they run on
//! the key's primary, one at a time, so each is atomic. Their replies are internal: sessions
//! travel postcard-encoded in a bulk string and the grid's session service turns them into what
//! a door answers.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{EndReason, Login, LoginPolicy, Session, SessionLimits, Tag};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionOp {
    /// Starts a session with no attributes, created now. `1` if stored, `0` if the id is taken
    /// (by a live or an ended session).
    Create { id: Bytes, group: Bytes, idle_ms: u64, absolute_ms: Option<u64> },
    /// Stores `session` (which carries this key's id) as it is, last accessed now. `1` if stored,
    /// `0` if the id is taken.
    Adopt { session: Box<Session> },
    /// The session (encoded), or nil. With `touch`, last access moves to now. With `attrs`,
    /// only those attributes; with `names`, attributes without their values: a reader of one
    /// attribute of a big session is sent that attribute.
    Get { touch: bool, attrs: Option<Vec<Bytes>>, names: bool },
    /// Writes attributes (with `replace`, they become all the session's attributes; with
    /// `idle_ms`, the idle timeout changes too): the new version, nil if absent, `CONFLICT` if
    /// `if_version` differs.
    Set {
        if_version: Option<u64>,
        replace: bool,
        idle_ms: Option<u64>,
        attrs: Vec<(Bytes, Tag, Bytes)>,
        limits: SessionLimits,
    },
    /// Removes attributes: how many existed; nil if the session is absent.
    Del { names: Vec<Bytes> },
    /// Moves last access to now, and sets a new idle timeout if given: the idle ms left, nil if
    /// absent.
    Touch { idle_ms: Option<u64> },
    /// Ends the session, leaving a tombstone kept `retention_ms`: the session as it was, nil if
    /// absent; `CONFLICT` if `if_version` differs.
    End { reason: EndReason, if_version: Option<u64>, moved_to: Option<Bytes>, retention_ms: u64 },
    /// Sets or clears the logged-in user: the session as it was, its attributes left out (a
    /// login or logout needs only who was logged in), nil if absent.
    SetPrincipal { principal: Option<Bytes> },
    /// Live (`1`), absent or expired (nil), ended (`0`) or rotated (the new id).
    Probe,
    /// The user's registry (encoded `Vec<Login>`), oldest login first.
    Logins,
    /// Adds a login to the user's registry after dropping `dead` ids and renaming `moved` ones;
    /// with `max` other logins of the session's group there, applies `policy`. The ids to evict
    /// (encoded `Vec<Bytes>`), which stay listed until they are unregistered once ended (so one
    /// whose end failed is evicted again), or `LOGINREJECTED`. A login already listed (tried
    /// again) is not rejected.
    Register {
        login: Login,
        dead: Vec<Bytes>,
        moved: Vec<(Bytes, Bytes)>,
        policy: LoginPolicy,
        max: usize,
    },
    /// Adds a login to the user's registry if `policy` lets it in whichever of the listed
    /// sessions still live: the policy allows, `max` is 0 or fewer than `max` others of the
    /// session's group are listed. How many logins are listed then; nil, nothing changed, if
    /// the listed sessions must be checked first (then [`SessionOp::Register`] decides).
    Enlist { login: Login, policy: LoginPolicy, max: usize },
    /// Drops ids from the user's registry: how many were there.
    Unregister { ids: Vec<Bytes> },
    /// Renames an id in the user's registry (after a rotation): 1 if it was there.
    Rename { from: Bytes, to: Bytes },
}

impl SessionOp {
    pub fn is_write(&self) -> bool {
        !matches!(self, SessionOp::Get { touch: false, .. } | SessionOp::Probe | SessionOp::Logins)
    }

    pub fn name(&self) -> &'static str {
        match self {
            SessionOp::Create { .. } => "session.create",
            SessionOp::Adopt { .. } => "session.adopt",
            SessionOp::Get { .. } => "session.get",
            SessionOp::Set { .. } => "session.set",
            SessionOp::Del { .. } => "session.del",
            SessionOp::Touch { .. } => "session.touch",
            SessionOp::End { .. } => "session.end",
            SessionOp::SetPrincipal { .. } => "session.principal",
            SessionOp::Probe => "session.probe",
            SessionOp::Logins => "user.logins",
            SessionOp::Register { .. } => "user.register",
            SessionOp::Enlist { .. } => "user.enlist",
            SessionOp::Unregister { .. } => "user.unregister",
            SessionOp::Rename { .. } => "user.rename",
        }
    }
}
