//! Records what clients did and what they were told, and checks it against the grid's promises.
//!
//! Each key is written by one client, one operation at a time, so a key's writes form a
//! sequence. A read may return the value of the last *acknowledged* write before it, or of a
//! later write that failed (it may have been applied), but never anything older: that would be a
//! lost acknowledged write (property 1), a read that misses the client's own write (property 3), or
//! a deleted value that came back (property 4).
//!
//! A network split under `when_split = serve` is the one exception the grid allows: both sides
//! serve, so from the split until the healed sides have merged ("the window") reads are not
//! checked, and a key written through both sides in the window may end with any value written
//! there (the merge keeps one by version). A key written through one side only must end with
//! that side's writes, as anywhere else. The fields of a hash are followed as values of their
//! own, but the merge keeps a key whole: a field written through one side may still end with
//! its value from before the split if another field was written through the other.

use std::collections::BTreeMap;

use bytes::Bytes;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteStatus {
    Acked,
    /// Failed or timed out: it may or may not have been applied.
    Indeterminate,
    /// Refused as not carried out (what `TRYAGAIN` promises): it must never be read.
    Refused,
    /// Sent through a node that crashed before answering: it may land at any time, even after
    /// the client's next writes (the node may have forwarded it before dying, and the message
    /// is still delivered, as a dead process's socket still sends what it was given).
    Orphaned,
}

#[derive(Clone, Debug)]
struct Write {
    /// `None` for a delete.
    value: Option<Bytes>,
    status: WriteStatus,
}

/// Which side of a split a write went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Through a node on the side that kept the most nodes.
    Majority,
    /// Through a node of the cut-off minority.
    Minority,
    /// Either: after the cut healed and before the sides merged, or issued before the cut.
    Healing,
}

#[derive(Default)]
struct KeyHistory {
    /// Index 0 is the key's initial state (absent), always "acknowledged".
    writes: Vec<Write>,
    /// Writes of the last split window: the index of the first, how many, and the sides of
    /// them and of its siblings' (see [`Checker::sibling_written`]).
    window: Option<(usize, usize, Vec<Side>)>,
    /// Values of writes refused as not carried out.
    refused: Vec<Bytes>,
}

impl KeyHistory {
    /// The index of the last acknowledged write among the first `end`.
    fn last_acked_before(&self, end: usize) -> usize {
        self.writes[..end].iter().rposition(|w| w.status == WriteStatus::Acked).unwrap_or(0)
    }

    /// The index of the earliest write a read may return: the last acknowledged one, or, if
    /// the key was written through both sides of a split since, the last acknowledged before it.
    fn oldest_allowed(&self) -> usize {
        let last_acked = self.last_acked_before(self.writes.len());
        let Some((first, count, sides)) = &self.window else { return last_acked };
        let one_side = sides.iter().all(|s| *s == sides[0]) && sides[0] != Side::Healing;
        if sides.len() < 2 || one_side || last_acked >= first + count {
            return last_acked;
        }
        self.last_acked_before(*first)
    }
}

#[derive(Default)]
pub struct Checker {
    keys: BTreeMap<Bytes, KeyHistory>,
    pub violations: Vec<String>,
    pub acked_writes: u64,
    pub failed_writes: u64,
    pub refused_writes: u64,
    pub reads: u64,
    pub failed_reads: u64,
    /// A split window is open: reads are not checked.
    splitting: bool,
    /// Reads made in split windows.
    pub unchecked_reads: u64,
    /// Reads of an orphaned write that landed after a later acknowledged one.
    pub late_orphans: u64,
}

impl Checker {
    fn history(&mut self, key: &Bytes) -> &mut KeyHistory {
        self.keys.entry(key.clone()).or_insert_with(|| KeyHistory {
            writes: vec![Write { value: None, status: WriteStatus::Acked }],
            window: None,
            refused: Vec::new(),
        })
    }

    /// A split window opens: a key's window starts afresh unless the last one still excuses it
    /// or a write of it issued in that window is still unanswered (`pending`: it may land on
    /// either side, and is counted in the old window when it is answered).
    pub fn split_started(&mut self, pending: &[Bytes]) {
        self.splitting = true;
        for (key, h) in self.keys.iter_mut() {
            if h.oldest_allowed() == h.last_acked_before(h.writes.len()) && !pending.contains(key) {
                h.window = None;
            }
        }
    }

    /// The sides of the split have merged: reads are checked again.
    pub fn split_merged(&mut self) {
        self.splitting = false;
    }

    /// A write completed; `side` is where it went if it was issued in a split window.
    pub fn write(
        &mut self,
        key: &Bytes,
        value: Option<Bytes>,
        status: WriteStatus,
        side: Option<Side>,
    ) {
        match status {
            WriteStatus::Acked => self.acked_writes += 1,
            WriteStatus::Indeterminate | WriteStatus::Orphaned => self.failed_writes += 1,
            WriteStatus::Refused => {
                // A refused delete leaves nothing to look for; a refused value must never show.
                self.refused_writes += 1;
                if let Some(v) = value {
                    self.history(key).refused.push(v);
                }
                return;
            }
        }
        let h = self.history(key);
        h.writes.push(Write { value, status });
        if let Some(side) = side {
            let index = h.writes.len() - 1;
            let window = h.window.get_or_insert_with(|| (index, 0, Vec::new()));
            window.1 = index + 1 - window.0;
            window.2.push(side);
        }
    }

    /// A value stored in the same key as `key` (another field of its hash) was written
    /// through `side` in a split window. The merge after the split keeps one side's copy of a
    /// key whole, so a key written through both sides may end with either side's fields.
    pub fn sibling_written(&mut self, key: &Bytes, side: Side) {
        let h = self.history(key);
        let next = h.writes.len();
        h.window.get_or_insert_with(|| (next, 0, Vec::new())).2.push(side);
    }

    pub fn failed_read(&mut self) {
        self.failed_reads += 1;
    }

    /// A read of `key` at time `at` returned `value`.
    pub fn read(&mut self, at: u64, key: &Bytes, value: Option<Bytes>) {
        self.reads += 1;
        if value.as_ref().is_some_and(|v| self.history(key).refused.contains(v)) {
            self.violations.push(format!(
                "t={at}ms key {key:?}: read {value:?}, a write refused as not carried out"
            ));
            return;
        }
        if self.splitting {
            self.unchecked_reads += 1;
            return;
        }
        let h = self.history(key);
        let oldest = h.oldest_allowed();
        let allowed = h.writes[oldest..].iter().any(|w| w.value == value);
        let orphan = |w: &Write| w.status == WriteStatus::Orphaned && w.value == value;
        if !allowed && h.writes[..oldest].iter().any(orphan) {
            self.late_orphans += 1;
            return;
        }
        if !allowed {
            let older = h.writes[..oldest].iter().rposition(|w| w.value == value);
            let what = match older {
                Some(i) => format!("write #{i}, older than the last acknowledged #{oldest}"),
                None => "a value never written".to_string(),
            };
            let expected = h.writes[oldest].value.clone();
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
        c.write(&k, b("1"), WriteStatus::Acked, None);
        c.write(&k, b("2"), WriteStatus::Indeterminate, None);
        c.read(1, &k, b("1"));
        c.read(2, &k, b("2"));
        assert!(c.violations.is_empty(), "{:?}", c.violations);
    }

    #[test]
    fn flags_a_refused_write_that_was_carried_out() {
        let k = Bytes::from_static(b"k");
        let mut c = Checker::default();
        c.write(&k, b("1"), WriteStatus::Acked, None);
        c.write(&k, b("2"), WriteStatus::Refused, None);
        c.read(1, &k, b("1"));
        assert!(c.violations.is_empty(), "{:?}", c.violations);
        c.read(2, &k, b("2"));
        assert_eq!(c.violations.len(), 1, "{:?}", c.violations);
    }

    #[test]
    fn flags_a_lost_write_and_a_resurrected_delete() {
        let k = Bytes::from_static(b"k");
        let mut c = Checker::default();
        c.write(&k, b("1"), WriteStatus::Acked, None);
        c.write(&k, b("2"), WriteStatus::Acked, None);
        c.read(1, &k, b("1"));
        c.write(&k, None, WriteStatus::Acked, None);
        c.read(2, &k, b("2"));
        c.read(3, &k, b("9"));
        assert_eq!(c.violations.len(), 3, "{:?}", c.violations);
    }

    #[test]
    fn an_orphaned_write_may_land_after_later_ones_but_an_acknowledged_one_may_not() {
        let mut c = Checker::default();
        let k = Bytes::from_static(b"k");
        c.write(&k, b("1"), WriteStatus::Acked, None);
        c.write(&k, b("2"), WriteStatus::Orphaned, None);
        c.write(&k, b("3"), WriteStatus::Acked, None);
        c.read(0, &k, b("2"));
        assert!(c.violations.is_empty() && c.late_orphans == 1);
        c.read(1, &k, b("1"));
        assert_eq!(c.violations.len(), 1, "an older acknowledged value is still a violation");
    }

    #[test]
    fn a_split_excuses_only_keys_written_through_both_sides() {
        let (both, one) = (Bytes::from_static(b"both"), Bytes::from_static(b"one"));
        let mut c = Checker::default();
        c.write(&both, b("0"), WriteStatus::Acked, None);
        c.write(&one, b("0"), WriteStatus::Acked, None);
        c.split_started(&[]);
        c.write(&both, b("maj"), WriteStatus::Acked, Some(Side::Majority));
        c.write(&both, b("min"), WriteStatus::Acked, Some(Side::Minority));
        c.write(&one, b("min1"), WriteStatus::Acked, Some(Side::Minority));
        c.write(&one, b("min2"), WriteStatus::Acked, Some(Side::Minority));
        c.read(1, &one, b("0"));
        assert!(c.violations.is_empty(), "reads in the window are not checked");
        c.split_merged();
        c.read(2, &both, b("maj"));
        assert!(c.violations.is_empty(), "{:?}", c.violations);
        c.read(3, &one, b("min1"));
        assert_eq!(c.violations.len(), 1, "one side's last acknowledged write must survive");
        c.write(&both, b("after"), WriteStatus::Acked, None);
        c.read(4, &both, b("maj"));
        assert_eq!(c.violations.len(), 2, "a write after the merge is strict again");
    }

    #[test]
    fn a_write_of_a_sibling_still_unanswered_when_the_next_split_starts_keeps_the_window() {
        let (f1, f2) = (Bytes::from_static(b"h/f1"), Bytes::from_static(b"h/f2"));
        let run = |pending: &[Bytes]| {
            let mut c = Checker::default();
            c.write(&f1, b("old"), WriteStatus::Acked, None);
            c.split_started(&[]);
            c.write(&f1, b("min"), WriteStatus::Acked, Some(Side::Minority));
            c.split_merged();
            // The next split starts while a write of f2 issued through the majority of the
            // first is unanswered; it is answered in the second, counted as either side.
            c.split_started(pending);
            c.write(&f2, b("maj"), WriteStatus::Indeterminate, Some(Side::Healing));
            c.sibling_written(&f1, Side::Healing);
            c.split_merged();
            c.read(1, &f1, b("old"));
            c.violations.len()
        };
        assert_eq!(run(&[f1.clone(), f2.clone()]), 0, "the merge may keep the majority's copy");
        assert_eq!(run(&[]), 1, "without the pending write, the minority's field must survive");
    }
}
