//! HTTP sessions as the grid stores them, and the per-user login registry.
//!
//! A session lives under [`session_key`]`(id)`, the logins of a user under
//! [`user_key`]`(principal)`. Both are ordinary entries, so they are partitioned, replicated,
//! persisted and expired like any key; [`op`] holds what can be done to them and [`apply`] the
//! rules, as pure functions over one entry.
//!
//! A session that ends (invalidated, rotated, evicted by a login policy) is replaced by a
//! [`Tombstone`] that stays for the configured retention, so the id can never be read or written
//! again. Expiry deletes the entry: ids are random and never reissued, so nothing can bring an
//! expired one back.

pub mod apply;
pub mod event;
pub mod flows;
pub mod op;

use bytes::Bytes;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// Prefix of every key the grid manages itself; Redis clients see these keys with
/// `TYPE` `session` or `principal`, and cannot read them with string or hash commands.
pub const SESSION_PREFIX: &[u8] = b"sg:session:";
pub const USER_PREFIX: &[u8] = b"sg:user:";

pub fn session_key(id: &[u8]) -> Bytes {
    [SESSION_PREFIX, id].concat().into()
}

pub fn user_key(principal: &[u8]) -> Bytes {
    [USER_PREFIX, principal].concat().into()
}

/// The session id of a session key, if it is one.
pub fn id_of_key(key: &[u8]) -> Option<&[u8]> {
    key.strip_prefix(SESSION_PREFIX)
}

/// How a grid key appears in logs: a session id or a principal is replaced by a short hash
/// (`sg:session:#1f2e3d4c5b6a`), so logs can follow one session without holding an id that
/// would let a reader take it over, or a user's name.
pub fn log_key(key: &[u8]) -> String {
    let (prefix, secret) = match (key.strip_prefix(SESSION_PREFIX), key.strip_prefix(USER_PREFIX)) {
        (Some(id), _) => ("sg:session:", id),
        (_, Some(principal)) => ("sg:user:", principal),
        _ => ("", key),
    };
    // FNV-1a: not for secrecy of a guessable name, only to keep ids and names out of logs.
    let hash = secret.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{prefix}#{:012x}", hash >> 16)
}

/// How an attribute's bytes are encoded. The grid never decodes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tag {
    Json,
    Utf8,
    Bytes,
    /// Java serialization, written by the servlet connector.
    Java,
}

impl Tag {
    pub fn parse(s: &[u8]) -> Option<Tag> {
        Some(match s.to_ascii_lowercase().as_slice() {
            b"json" => Tag::Json,
            b"utf8" => Tag::Utf8,
            b"bytes" => Tag::Bytes,
            b"java" => Tag::Java,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Tag::Json => "json",
            Tag::Utf8 => "utf8",
            Tag::Bytes => "bytes",
            Tag::Java => "java",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    pub tag: Tag,
    pub value: Bytes,
    /// The session version that last wrote it.
    pub version: u64,
}

/// Prefix of an attribute private to one application: `app:<name>/<attr>`.
pub const APP_SCOPE: &[u8] = b"app:";

/// The application an attribute name is private to, or `None` if the group shares it.
pub fn app_of(name: &[u8]) -> Option<&[u8]> {
    let rest = name.strip_prefix(APP_SCOPE)?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    Some(&rest[..slash])
}

/// True if an attribute called `name` is visible to `app` (`None`: shared attributes only).
pub fn visible_to(name: &[u8], app: Option<&[u8]>) -> bool {
    match app_of(name) {
        None => true,
        Some(owner) => app == Some(owner),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: Bytes,
    /// Applications configured with the same group share the session.
    pub group: Bytes,
    pub created_ms: u64,
    pub last_access_ms: u64,
    /// Idle timeout: the session ends this long after its last access.
    pub idle_ms: u64,
    /// Absolute deadline (unix ms) that touching never moves.
    pub absolute_at_ms: Option<u64>,
    /// The user logged in on this session.
    pub principal: Option<Bytes>,
    pub attrs: IndexMap<Bytes, Attr>,
    /// Bumped by every change of attributes or principal; `IFVERSION` compares it.
    pub version: u64,
}

/// Cost of a session beyond its attribute bytes, for limits and the memory budget.
const SESSION_OVERHEAD_BYTES: usize = 128;
const ATTR_OVERHEAD_BYTES: usize = 32;

impl Session {
    /// When the session ends unless touched: the earlier of idle expiry and the absolute deadline.
    pub fn deadline_ms(&self) -> u64 {
        let idle = self.last_access_ms.saturating_add(self.idle_ms);
        self.absolute_at_ms.map_or(idle, |at| at.min(idle))
    }

    pub fn bytes(&self) -> usize {
        self.header_bytes() + self.attrs.iter().map(|(k, a)| attr_bytes(k, a)).sum::<usize>()
    }

    /// The session without its attributes.
    pub fn clone_header(&self) -> Session {
        Session {
            id: self.id.clone(),
            group: self.group.clone(),
            created_ms: self.created_ms,
            last_access_ms: self.last_access_ms,
            idle_ms: self.idle_ms,
            absolute_at_ms: self.absolute_at_ms,
            principal: self.principal.clone(),
            attrs: IndexMap::new(),
            version: self.version,
        }
    }

    /// What the session costs without its attributes.
    pub fn header_bytes(&self) -> usize {
        SESSION_OVERHEAD_BYTES
            + self.id.len()
            + self.group.len()
            + self.principal.as_ref().map_or(0, Bytes::len)
    }

    pub fn encode(&self) -> Vec<u8> {
        crate::entry::encode_with_room(self, self.bytes())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// What one attribute costs, for limits and the memory budget.
pub fn attr_bytes(name: &[u8], attr: &Attr) -> usize {
    name.len() + attr.value.len() + ATTR_OVERHEAD_BYTES
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndReason {
    Invalidated,
    /// Its attributes moved to a new id (`SESSION.ROTATE`).
    Rotated,
    /// A login policy made room for a newer login of the same user.
    Evicted,
    /// Forced logout of its user.
    Kicked,
}

impl EndReason {
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Invalidated => "invalidated",
            EndReason::Rotated => "rotated",
            EndReason::Evicted => "evicted",
            EndReason::Kicked => "kicked",
        }
    }
}

/// What remains of an ended session: its id can never come back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub reason: EndReason,
    pub at_ms: u64,
    pub group: Bytes,
    pub principal: Option<Bytes>,
    /// The new id of a rotated session.
    pub moved_to: Option<Bytes>,
}

/// One session of a user, as the user's registry lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub id: Bytes,
    pub group: Bytes,
    pub at_ms: u64,
}

/// What a login does when the user already has `max` live sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginPolicy {
    /// Let it in anyway.
    #[default]
    Allow,
    /// Refuse the new login.
    Reject,
    /// End the user's oldest sessions to make room.
    EvictOldest,
}

impl LoginPolicy {
    pub fn parse(s: &[u8]) -> Option<LoginPolicy> {
        Some(match s.to_ascii_lowercase().as_slice() {
            b"allow" => LoginPolicy::Allow,
            b"reject" => LoginPolicy::Reject,
            b"evict-oldest" => LoginPolicy::EvictOldest,
            _ => return None,
        })
    }
}

/// Limits a session write must keep; over them it changes nothing and fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLimits {
    pub attrs_max: usize,
    pub attr_name_bytes_max: usize,
    pub attr_bytes_max: usize,
    pub session_bytes_max: usize,
}

/// Random, URL-safe session ids.
pub mod id {
    /// Bytes of randomness in an id: 160 bits.
    pub const RANDOM_BYTES: usize = 20;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /// Base64url without padding: 27 characters for 20 bytes.
    pub fn encode(random: &[u8; RANDOM_BYTES]) -> String {
        let mut out = String::with_capacity(27);
        let mut acc: u32 = 0;
        let mut bits = 0;
        for &b in random {
            acc = (acc << 8) | b as u32;
            bits += 8;
            while bits >= 6 {
                bits -= 6;
                out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
            }
        }
        if bits > 0 {
            out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
        }
        out
    }

    /// True if `s` could be an id: the alphabet above, of a sane length. Keeps garbage out of
    /// keys and logs.
    pub fn looks_valid(s: &[u8]) -> bool {
        (16..=128).contains(&s.len()) && s.iter().all(|b| ALPHABET.contains(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_name_sessions_and_users_by_a_hash() {
        let id = b"Qm9vbGVhbnMgYXJlIG5vdCBpZHM";
        let logged = log_key(&session_key(id));
        assert!(logged.starts_with("sg:session:#") && logged.len() == "sg:session:#".len() + 12);
        assert!(!logged.contains("Qm9v"));
        assert_eq!(logged, log_key(&session_key(id)), "stable, so a session can be followed");
        assert_ne!(logged, log_key(&session_key(b"another")));
        assert!(log_key(&user_key(b"alice")).starts_with("sg:user:#"));
        assert!(!log_key(&user_key(b"alice")).contains("alice"));
    }

    #[test]
    fn ids_are_27_url_safe_characters() {
        let a = id::encode(&[0u8; 20]);
        let b = id::encode(&[255u8; 20]);
        assert_eq!(a.len(), 27);
        assert_eq!(b, "_".repeat(26) + "8");
        assert!(id::looks_valid(a.as_bytes()));
        assert!(!id::looks_valid(b"short"));
        assert!(!id::looks_valid(b"has space in it, quite long"));
    }

    #[test]
    fn app_scoped_attributes_are_private() {
        assert_eq!(app_of(b"app:shop/cart"), Some(&b"shop"[..]));
        assert_eq!(app_of(b"cart"), None);
        assert!(visible_to(b"cart", None));
        assert!(!visible_to(b"app:shop/cart", None));
        assert!(visible_to(b"app:shop/cart", Some(b"shop")));
        assert!(!visible_to(b"app:shop/cart", Some(b"blog")));
    }

    #[test]
    fn deadline_is_the_earlier_of_idle_and_absolute() {
        let mut s = Session {
            id: Bytes::from_static(b"x"),
            group: Bytes::from_static(b"g"),
            created_ms: 0,
            last_access_ms: 1000,
            idle_ms: 500,
            absolute_at_ms: None,
            principal: None,
            attrs: IndexMap::new(),
            version: 1,
        };
        assert_eq!(s.deadline_ms(), 1500);
        s.absolute_at_ms = Some(1200);
        assert_eq!(s.deadline_ms(), 1200);
    }
}
