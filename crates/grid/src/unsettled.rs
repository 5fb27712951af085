//! The writes of one partition that may not be on disk yet, by key, so that a read of a key
//! the memory tier does not hold can go to disk without first writing its thread's whole
//! commit group (settling, which would cut every group short to one write).
//!
//! The disk is right for a key with no write recorded here. For a key whose every recorded
//! write changed only some fields of a hash, set or sorted set (one field of a hash far larger
//! than the tier, say), the latest header and rows are kept and read over the disk. Anything
//! else (a whole value replaced or deleted, a range of keys deleted, more keys written than
//! are tracked) makes the reader settle first. The record is dropped whenever nothing of the
//! partition is waiting to be written.

use bytes::Bytes;
use hashbrown::HashMap;
use sessiongrid_model::{Delta, Entry};

/// Most keys tracked between two moments with nothing pending; past it, every read from disk
/// settles until then.
const KEYS_MAX: usize = 4096;
/// Room for keys kept across a clear; a map grown past it is given back.
const KEYS_KEPT_ROOM: usize = 64;

#[derive(Default)]
pub struct Unsettled {
    keys: HashMap<Bytes, Written>,
    /// A write not tracked by key may not be on disk: every read from disk settles first.
    untracked: bool,
}

/// What was written to a key since the disk was last known to hold all of it.
pub enum Written {
    /// Something a read of the disk cannot be corrected for.
    Whole,
    /// Only field changes: the latest header and the latest row of each field changed
    /// (`None`: removed).
    Fields { header: Entry, rows: HashMap<Bytes, Option<Bytes>> },
}

impl Unsettled {
    /// Everything written is on disk. (Called at most once per write: the map keeps its
    /// room unless it grew large, so a write at a time does not allocate each time.)
    pub fn clear(&mut self) {
        self.untracked = false;
        if self.keys.capacity() > KEYS_KEPT_ROOM {
            self.keys = HashMap::new();
        } else {
            self.keys.clear();
        }
    }

    pub fn record(&mut self, key: &Bytes, delta: &Delta) {
        if self.untracked {
            return;
        }
        if self.keys.len() >= KEYS_MAX && !self.keys.contains_key(key) {
            self.record_untracked();
            return;
        }
        match (self.keys.get_mut(key), delta) {
            (Some(Written::Whole), _) => {}
            (Some(Written::Fields { header: h, rows: r }), Delta::Fields { header, rows }) => {
                *h = header.clone();
                r.extend(rows.iter().cloned());
            }
            (None, Delta::Fields { header, rows }) if header.value.is_read_in_part() => {
                let rows = rows.iter().cloned().collect();
                self.keys.insert(key.clone(), Written::Fields { header: header.clone(), rows });
            }
            (Some(written), _) => *written = Written::Whole,
            (None, _) => {
                self.keys.insert(key.clone(), Written::Whole);
            }
        }
    }

    /// A write that is not one key's (a range deletion, a cleared partition).
    pub fn record_untracked(&mut self) {
        self.keys = HashMap::new();
        self.untracked = true;
    }

    /// What a read of `key` from disk must take into account; `None`: nothing.
    pub fn of(&self, key: &[u8]) -> Option<&Written> {
        self.keys.get(key)
    }

    pub fn untracked(&self) -> bool {
        self.untracked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiongrid_model::Value;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn fields(version: u64, rows: &[(&str, Option<&str>)]) -> Delta {
        let header = Entry { value: Value::Hash(Default::default()), expire_at_ms: None, version };
        Delta::Fields { header, rows: rows.iter().map(|(n, v)| (b(n), v.map(b))).collect() }
    }

    #[test]
    fn field_writes_keep_the_latest_header_and_rows() {
        let mut u = Unsettled::default();
        u.record(&b("h"), &fields(1, &[("a", Some("1")), ("b", Some("2"))]));
        u.record(&b("h"), &fields(2, &[("a", None)]));
        let Some(Written::Fields { header, rows }) = u.of(b"h") else { panic!("fields kept") };
        assert_eq!(header.version, 2);
        assert_eq!(rows.get(&b("a")), Some(&None));
        assert_eq!(rows.get(&b("b")), Some(&Some(b("2"))));
        assert!(u.of(b"other").is_none());
    }

    #[test]
    fn a_whole_write_before_or_after_field_writes_cannot_be_read_over() {
        let mut u = Unsettled::default();
        u.record(&b("h"), &Delta::Whole(None));
        u.record(&b("h"), &fields(2, &[("a", Some("1"))]));
        assert!(matches!(u.of(b"h"), Some(Written::Whole)), "the deletion's rows are not on disk");
        u.record(&b("g"), &fields(1, &[("a", Some("1"))]));
        u.record(&b("g"), &Delta::Whole(None));
        assert!(matches!(u.of(b"g"), Some(Written::Whole)));
        u.clear();
        assert!(u.of(b"h").is_none() && u.of(b"g").is_none());
    }

    #[test]
    fn past_the_tracked_keys_or_after_a_range_every_read_settles_until_cleared() {
        let mut u = Unsettled::default();
        for i in 0..KEYS_MAX {
            u.record(&Bytes::from(i.to_string()), &Delta::Whole(None));
        }
        assert!(!u.untracked());
        u.record(&b("one more"), &Delta::Whole(None));
        assert!(u.untracked() && u.of(b"1").is_none());
        u.clear();
        assert!(!u.untracked());
        u.record_untracked();
        assert!(u.untracked());
    }
}
