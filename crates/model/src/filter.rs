//! Which keys a `KEYS` or `SCAN` wants.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Value};
use crate::glob;

/// An optional glob pattern, type name and session group; expired entries and tombstones never
/// pass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFilter {
    pub pattern: Option<Bytes>,
    pub type_name: Option<String>,
    /// Only sessions of this group.
    pub group: Option<Bytes>,
    /// Only keys of this logical database (see [`crate::key::db_key`]); the pattern is
    /// matched against the key as its clients name it.
    pub db: Option<u8>,
}

impl KeyFilter {
    pub fn accepts(&self, key: &[u8], entry: &Entry, now_ms: u64) -> bool {
        let (db, key) = match self.db {
            Some(_) => crate::key::split_db(key),
            None => (0, key),
        };
        self.db.is_none_or(|want| want == db)
            && !entry.is_expired(now_ms)
            && !entry.is_ended()
            && !entry.is_deleted()
            && self.pattern.as_ref().is_none_or(|p| glob::matches(p, key))
            && self.type_name.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(entry.type_name()))
            && self
                .group
                .as_ref()
                .is_none_or(|g| matches!(&entry.value, Value::Session(s) if s.group == *g))
    }
}
