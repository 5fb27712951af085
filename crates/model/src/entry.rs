//! What the grid stores under a key.

use bytes::Bytes;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::list::List;
use crate::session::{Login, Session, Tombstone};
use crate::set::Set;
use crate::zset::Zset;

/// A stored value. Hash fields keep insertion order, as small Redis hashes do. Hashes, sets,
/// sorted sets, lists and sessions are stored field by field (see [`crate::delta`]). Sessions, their
/// tombstones and login registries are managed by the grid (see [`crate::session`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    Str(Bytes),
    Hash(IndexMap<Bytes, Bytes>),
    Session(Box<Session>),
    /// An ended session: its id can never be used again.
    Ended(Box<Tombstone>),
    /// The live logins of one user.
    Logins(Vec<Login>),
    /// A deleted key, kept for [`DELETED_RETENTION_MS`] so that when the two sides of a healed
    /// network split merge, the deletion beats the older copy the other side kept. Commands see
    /// no key here, and any write replaces it.
    Deleted,
    Set(Set),
    Zset(Box<Zset>),
    List(List),
}

/// How long a deleted key's tombstone stays: a split healed later than this may bring the key
/// back.
pub const DELETED_RETENTION_MS: u64 = 60 * 60 * 1000;

/// A value with its expiry deadline and the version of the write that produced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub value: Value,
    /// Unix ms after which the entry no longer exists; `None` lives forever.
    pub expire_at_ms: Option<u64>,
    /// Per-partition sequence number of the last write; orders writes for replication.
    pub version: u64,
}

/// Approximate heap cost of an entry beyond its bytes, used by the memory budget.
const ENTRY_OVERHEAD_BYTES: usize = 96;
/// Approximate cost of one hash field beyond its bytes.
const FIELD_OVERHEAD_BYTES: usize = 48;

impl Value {
    /// What field `name` of a hash or session costs (0 if it has no such field).
    pub fn field_cost(&self, name: &[u8]) -> usize {
        match self {
            Value::Hash(h) => {
                h.get(name).map_or(0, |v| name.len() + v.len() + FIELD_OVERHEAD_BYTES)
            }
            Value::Session(s) => {
                s.attrs.get(name).map_or(0, |a| crate::session::attr_bytes(name, a))
            }
            Value::Set(s) if s.contains(name) => name.len() + FIELD_OVERHEAD_BYTES,
            Value::Zset(z) => z.score(name).map_or(0, |_| name.len() + 8 + FIELD_OVERHEAD_BYTES),
            Value::List(l) => l.row(name).map_or(0, |v| v.len() + 8 + FIELD_OVERHEAD_BYTES),
            _ => 0,
        }
    }

    /// What all its fields cost (0 for a value without fields).
    pub fn fields_cost(&self) -> usize {
        match self {
            Value::Hash(h) => h.iter().map(|(k, v)| k.len() + v.len() + FIELD_OVERHEAD_BYTES).sum(),
            Value::Session(s) => {
                s.attrs.iter().map(|(k, a)| crate::session::attr_bytes(k, a)).sum()
            }
            Value::Set(s) => s.iter().map(|m| m.len() + FIELD_OVERHEAD_BYTES).sum(),
            Value::Zset(z) => z.iter().map(|(m, _)| m.len() + 8 + FIELD_OVERHEAD_BYTES).sum(),
            Value::List(l) => l.iter().map(|v| v.len() + 8 + FIELD_OVERHEAD_BYTES).sum(),
            _ => 0,
        }
    }
}

impl Entry {
    pub fn new(value: Value) -> Self {
        Entry { value, expire_at_ms: None, version: 0 }
    }

    /// The tombstone of a key deleted at `now_ms`.
    pub fn deleted(now_ms: u64) -> Self {
        Entry {
            value: Value::Deleted,
            expire_at_ms: Some(now_ms.saturating_add(DELETED_RETENTION_MS)),
            version: 0,
        }
    }

    /// True once `now_ms` is past the deadline (at the deadline itself the entry still lives,
    /// as in Redis).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|at| at < now_ms)
    }

    /// Bytes this entry is charged against the memory budget (key not included): its header's
    /// cost plus each field's.
    pub fn cost_bytes(&self) -> usize {
        self.header_cost() + self.value.fields_cost()
    }

    /// What the entry costs without the fields of a hash or session.
    pub fn header_cost(&self) -> usize {
        ENTRY_OVERHEAD_BYTES
            + match &self.value {
                Value::Str(s) => s.len(),
                Value::Hash(_) | Value::Set(_) | Value::Zset(_) | Value::List(_) => 0,
                Value::Session(s) => s.header_bytes(),
                Value::Ended(t) => t.group.len() + t.moved_to.as_ref().map_or(0, Bytes::len),
                Value::Logins(l) => {
                    l.iter().map(|l| l.id.len() + l.group.len() + FIELD_OVERHEAD_BYTES).sum()
                }
                Value::Deleted => 0,
            }
    }

    /// True for a live session.
    pub fn is_session(&self) -> bool {
        matches!(self.value, Value::Session(_))
    }

    /// True for a tombstone: Redis commands see no key there.
    pub fn is_ended(&self) -> bool {
        matches!(self.value, Value::Ended(_))
    }

    /// True for a deleted key's tombstone.
    pub fn is_deleted(&self) -> bool {
        matches!(self.value, Value::Deleted)
    }

    /// True unless it is a deleted key's tombstone: what key counts count.
    pub fn is_key(&self) -> bool {
        !self.is_deleted()
    }

    /// Redis' name for the value's type, as `TYPE` answers it.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::Session(_) => "session",
            Value::Ended(_) => "none",
            Value::Logins(_) => "principal",
            Value::Deleted => "none",
            Value::Set(_) => "set",
            Value::Zset(_) => "zset",
            Value::List(_) => "list",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_with_room(self, self.cost_bytes())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// `value` serialised into a vector made with room for `room` bytes (an estimate of its size:
/// a vector grown from empty copies a 50 KB session five times over).
pub(crate) fn encode_with_room<T: serde::Serialize>(value: &T, room: usize) -> Vec<u8> {
    // Serialising owned, finite data into a Vec cannot fail.
    postcard::to_extend(value, Vec::with_capacity(room)).expect("serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let mut h = IndexMap::new();
        h.insert(Bytes::from_static(b"b"), Bytes::from_static(b"2"));
        h.insert(Bytes::from_static(b"a"), Bytes::from_static(b"\x00\r\n"));
        let e = Entry { value: Value::Hash(h), expire_at_ms: Some(17), version: 9 };
        assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn garbage_does_not_decode_as_an_entry() {
        assert!(Entry::decode(&[0xff, 0xff, 0xff]).is_err());
    }
}
