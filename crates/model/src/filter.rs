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
}

impl KeyFilter {
    pub fn accepts(&self, key: &[u8], entry: &Entry, now_ms: u64) -> bool {
        !entry.is_expired(now_ms)
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
