//! The recent writes a replica keeps in memory, so a follower that fell behind is sent what it
//! missed instead of a snapshot.

use std::collections::VecDeque;

use crate::msg::{LogEntry, LogPos};

pub struct RecentLog {
    /// The position just before the first kept entry.
    base: LogPos,
    /// In increasing version order.
    entries: VecDeque<LogEntry>,
    max: usize,
    /// Bytes of keys and values the kept entries hold, and the most they may.
    bytes: usize,
    bytes_max: usize,
}

impl RecentLog {
    /// A log that keeps at most `max` entries and `bytes_max` bytes of them.
    pub fn new(base: LogPos, max: usize, bytes_max: usize) -> Self {
        RecentLog { base, entries: VecDeque::new(), max: max.max(1), bytes: 0, bytes_max }
    }

    /// Forgets everything; the replica is now at `base`.
    pub fn reset(&mut self, base: LogPos) {
        self.base = base;
        self.entries.clear();
        self.bytes = 0;
    }

    pub fn push(&mut self, entry: LogEntry) {
        debug_assert!(
            self.entries.back().map_or(self.base.version, |e| e.pos.version) < entry.pos.version,
            "versions increase along the log"
        );
        self.bytes += entry.cost_bytes();
        self.entries.push_back(entry);
        while self.entries.len() > self.max || self.bytes > self.bytes_max {
            let Some(old) = self.entries.pop_front() else { break };
            self.bytes -= old.cost_bytes();
            self.base = old.pos;
        }
    }

    /// Where entry `pos` is kept, if it is.
    fn index(&self, pos: LogPos) -> Option<usize> {
        let i = self.entries.binary_search_by_key(&pos.version, |e| e.pos.version).ok()?;
        (self.entries[i].pos == pos).then_some(i)
    }

    /// The entries after `pos`, if `pos` is in this log; `None` if it is not (too old, or on
    /// another history).
    pub fn after(&self, pos: LogPos, limit: usize) -> Option<Vec<LogEntry>> {
        let start = if pos == self.base { 0 } else { self.index(pos)? + 1 };
        Some(self.entries.iter().skip(start).take(limit).cloned().collect())
    }

    pub fn contains(&self, pos: LogPos) -> bool {
        pos == self.base || self.index(pos).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Term;
    use bytes::Bytes;
    use sessiongrid_model::Delta;

    fn entry(version: u64) -> LogEntry {
        let pos = LogPos { term: Term { epoch: 1, primary: 7 }, version };
        LogEntry {
            pos,
            key: Bytes::from_static(b"k"),
            delta: Delta::Whole(None),
            events: Vec::new(),
        }
    }

    #[test]
    fn serves_suffixes_it_still_has() {
        let mut log = RecentLog::new(LogPos::ZERO, 3, usize::MAX);
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

    #[test]
    fn keeps_within_its_byte_budget() {
        let big = |version| {
            let mut e = entry(version);
            e.key = Bytes::from(vec![b'k'; 100]);
            e
        };
        let mut log = RecentLog::new(LogPos::ZERO, 1000, 250);
        for v in 1..=5 {
            log.push(big(v));
        }
        assert!(log.contains(big(4).pos) && log.contains(big(5).pos));
        assert!(!log.contains(big(2).pos), "older entries went to stay within 250 bytes");
        assert_eq!(log.after(big(3).pos, 10).unwrap().len(), 2, "the base is entry 3");
    }
}
