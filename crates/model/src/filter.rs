//! Which keys a `KEYS` or `SCAN` wants.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::glob;

/// An optional glob pattern and type name; expired entries never pass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFilter {
    pub pattern: Option<Bytes>,
    pub type_name: Option<String>,
}

impl KeyFilter {
    pub fn accepts(&self, key: &[u8], entry: &Entry, now_ms: u64) -> bool {
        !entry.is_expired(now_ms)
            && self.pattern.as_ref().is_none_or(|p| glob::matches(p, key))
            && self.type_name.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(entry.type_name()))
    }
}
