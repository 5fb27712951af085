//! The recent writes a replica keeps in memory, so a follower that fell behind is sent what it
//! missed instead of a snapshot.

use std::collections::VecDeque;

use crate::msg::{LogEntry, LogPos};

pub struct RecentLog {
    /// The position just before the first kept entry.
    base: LogPos,
    entries: VecDeque<LogEntry>,
    max: usize,
}

impl RecentLog {
    pub fn new(base: LogPos, max: usize) -> Self {
        RecentLog { base, entries: VecDeque::new(), max: max.max(1) }
    }

    /// Forgets everything; the replica is now at `base`.
    pub fn reset(&mut self, base: LogPos) {
        self.base = base;
        self.entries.clear();
    }

    pub fn push(&mut self, entry: LogEntry) {
        if self.entries.len() == self.max {
            if let Some(old) = self.entries.pop_front() {
                self.base = old.pos;
            }
        }
        self.entries.push_back(entry);
    }

    /// The entries after `pos`, if `pos` is in this log; `None` if it is not (too old, or on
    /// another history).
    pub fn after(&self, pos: LogPos, limit: usize) -> Option<Vec<LogEntry>> {
        let start =
            if pos == self.base { 0 } else { self.entries.iter().position(|e| e.pos == pos)? + 1 };
        Some(self.entries.iter().skip(start).take(limit).cloned().collect())
    }

    pub fn contains(&self, pos: LogPos) -> bool {
        pos == self.base || self.entries.iter().any(|e| e.pos == pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Term;
    use bytes::Bytes;

    fn entry(version: u64) -> LogEntry {
        let pos = LogPos { term: Term { epoch: 1, primary: 7 }, version };
        LogEntry { pos, key: Bytes::from_static(b"k"), state: None, events: Vec::new() }
    }

    #[test]
    fn serves_suffixes_it_still_has() {
        let mut log = RecentLog::new(LogPos::ZERO, 3);
        for v in 1..=5 {
            log.push(entry(v));
        }
        assert_eq!(log.after(LogPos::ZERO, 10), None, "trimmed away");
        let after3: Vec<u64> =
            log.after(entry(3).pos, 10).unwrap().iter().map(|e| e.pos.version).collect();
        assert_eq!(after3, vec![4, 5]);
        assert_eq!(log.after(entry(2).pos, 10).unwrap().len(), 3, "the base is a known position");
        let other = LogPos { term: Term { epoch: 1, primary: 8 }, version: 4 };
        assert!(!log.contains(other), "same version, other history");
    }
}
