//! Sets: unordered members, each stored as a field row with no value.

pub mod apply;
pub mod op;

use bytes::Bytes;
use indexmap::IndexSet;

use crate::num::parse_i64;

/// A set; members keep insertion order (Redis promises no order).
pub type Set = IndexSet<Bytes>;

/// Most members a set Redis would keep as an intset has (`set-max-intset-entries`).
pub const INTSET_ENTRIES_MAX: usize = 512;

/// Whether Redis would keep `set` as an intset: then it lists members in numeric order, and so
/// does the grid.
pub fn is_intset(set: &Set) -> bool {
    set.len() <= INTSET_ENTRIES_MAX && set.iter().all(|m| parse_i64(m).is_some())
}

/// The members in the order Redis lists them: numeric for an intset, else as stored.
pub fn listed(set: &Set) -> Vec<Bytes> {
    let mut members: Vec<Bytes> = set.iter().cloned().collect();
    if is_intset(set) {
        members.sort_by_key(|m| parse_i64(m).unwrap_or_default());
    }
    members
}
