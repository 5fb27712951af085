//! Records what clients did and what they were told, and checks it against the grid's promises.
//!
//! Each key is written by one client, one operation at a time, so a key's writes form a
//! sequence. A read may return the value of the last *acknowledged* write before it, or of a
//! later write that failed (it may have been applied), but never anything older: that would be a
//! lost acknowledged write (property 1), a read that misses the client's own write (property 3), or
//! a deleted value that came back (property 4).

use std::collections::BTreeMap;

use bytes::Bytes;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteStatus {
    Acked,
    /// Failed or timed out: it may or may not have been applied.
    Indeterminate,
}

#[derive(Clone, Debug)]
struct Write {
    /// `None` for a delete.
    value: Option<Bytes>,
    status: WriteStatus,
}

#[derive(Default)]
struct KeyHistory {
    /// Index 0 is the key's initial state (absent), always "acknowledged".
    writes: Vec<Write>,
}

#[derive(Default)]
pub struct Checker {
    keys: BTreeMap<Bytes, KeyHistory>,
    pub violations: Vec<String>,
    pub acked_writes: u64,
    pub failed_writes: u64,
    pub reads: u64,
    pub failed_reads: u64,
}

impl Checker {
    fn history(&mut self, key: &Bytes) -> &mut KeyHistory {
        self.keys.entry(key.clone()).or_insert_with(|| KeyHistory {
            writes: vec![Write { value: None, status: WriteStatus::Acked }],
        })
    }

    pub fn write(&mut self, key: &Bytes, value: Option<Bytes>, status: WriteStatus) {
        match status {
            WriteStatus::Acked => self.acked_writes += 1,
            WriteStatus::Indeterminate => self.failed_writes += 1,
        }
        self.history(key).writes.push(Write { value, status });
    }

    pub fn failed_read(&mut self) {
        self.failed_reads += 1;
    }

    /// A read of `key` at time `at` returned `value`.
    pub fn read(&mut self, at: u64, key: &Bytes, value: Option<Bytes>) {
        self.reads += 1;
        let h = self.history(key);
        let last_acked = h.writes.iter().rposition(|w| w.status == WriteStatus::Acked).unwrap_or(0);
        let allowed = h.writes[last_acked..].iter().any(|w| w.value == value);
        if !allowed {
            let older = h.writes[..last_acked].iter().rposition(|w| w.value == value);
            let what = match older {
                Some(i) => format!("write #{i}, older than the last acknowledged #{last_acked}"),
                None => "a value never written".to_string(),
            };
            let expected = h.writes[last_acked].value.clone();
            self.violations.push(format!(
                "t={at}ms key {key:?}: read {value:?} ({what}); expected {expected:?} or a later failed write"
            ));
        }
    }

    /// Every key ever written, with the value a final read must be allowed to return.
    pub fn keys(&self) -> impl Iterator<Item = &Bytes> {
        self.keys.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn accepts_the_last_acknowledged_or_a_later_failed_write() {
        let k = Bytes::from_static(b"k");
        let mut c = Checker::default();
        c.write(&k, b("1"), WriteStatus::Acked);
        c.write(&k, b("2"), WriteStatus::Indeterminate);
        c.read(1, &k, b("1"));
        c.read(2, &k, b("2"));
        assert!(c.violations.is_empty(), "{:?}", c.violations);
    }

    #[test]
    fn flags_a_lost_write_and_a_resurrected_delete() {
        let k = Bytes::from_static(b"k");
        let mut c = Checker::default();
        c.write(&k, b("1"), WriteStatus::Acked);
        c.write(&k, b("2"), WriteStatus::Acked);
        c.read(1, &k, b("1"));
        c.write(&k, None, WriteStatus::Acked);
        c.read(2, &k, b("2"));
        c.read(3, &k, b("9"));
        assert_eq!(c.violations.len(), 3, "{:?}", c.violations);
    }
}
