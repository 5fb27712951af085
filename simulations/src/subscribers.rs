//! What each node's event subscribers saw, and the promises about it:
//! - every session whose creation was acknowledged reaches, at least once, the subscribers of
//!   every node that was up and a member of every topology any node followed from the request
//!   until the end of the run;
//! - every acknowledged attribute change reaches such a node as well if the node's watch of
//!   session events was confirmed before the change was requested (changes are counted per
//!   session: a node must see at least as many distinct changes of it as it was owed).
//!
//! (A node that restarted lost its subscribers; one declared dead, and so dropped from the
//! topology, may miss what was published meanwhile: the documented limit.)

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use sessiongrid_model::session::event::{EventKind, SessionEvent};

/// The write that made an event: its publishing node, partition and version.
type Write = (u64, u16, u64);

pub struct Subscribers {
    /// Per node: the sessions whose creation its subscribers saw, since it last started.
    seen: Vec<BTreeSet<Bytes>>,
    /// Per node: each session's attribute changes its subscribers saw, by the write that made
    /// them (publishing node, partition, version), since it last started.
    changes_seen: Vec<BTreeMap<Bytes, BTreeSet<Write>>>,
    /// Per node: since when it has been up and in every topology (virtual ms).
    steady_since: Vec<u64>,
    /// Per node: since when its watch of session events has been confirmed, in this life.
    watching_since: Vec<Option<u64>>,
    /// Acknowledged creations: (session id, when the request was made).
    created: Vec<(Bytes, u64)>,
    /// Acknowledged attribute changes: (session id, when the request was made).
    changed: Vec<(Bytes, u64)>,
}

impl Subscribers {
    pub fn new(nodes: usize) -> Subscribers {
        Subscribers {
            seen: vec![BTreeSet::new(); nodes],
            changes_seen: vec![BTreeMap::new(); nodes],
            steady_since: vec![0; nodes],
            watching_since: vec![None; nodes],
            created: Vec::new(),
            changed: Vec::new(),
        }
    }

    /// Node `i` started (again): a new process, with new subscribers.
    pub fn started(&mut self, i: usize, now: u64) {
        self.seen[i].clear();
        self.changes_seen[i].clear();
        self.steady_since[i] = now;
        self.watching_since[i] = None;
    }

    /// A topology some node follows leaves node `i` out.
    pub fn excluded(&mut self, i: usize, now: u64) {
        self.steady_since[i] = now;
    }

    /// Node `i`'s watch is confirmed (noted once per life, the first time).
    pub fn watch_confirmed(&mut self, i: usize, now: u64) {
        self.watching_since[i].get_or_insert(now);
    }

    pub fn events(&mut self, i: usize, events: &[SessionEvent]) {
        for e in events {
            match e.kind {
                EventKind::Created => {
                    self.seen[i].insert(e.id.clone());
                }
                EventKind::AttributeChanged => {
                    let write = (e.node, e.partition, e.version);
                    self.changes_seen[i].entry(e.id.clone()).or_default().insert(write);
                }
                _ => {}
            }
        }
    }

    pub fn acknowledged(&mut self, id: Bytes, issued_at: u64) {
        self.created.push((id, issued_at));
    }

    pub fn changed(&mut self, id: Bytes, issued_at: u64) {
        self.changed.push((id, issued_at));
    }

    pub fn created(&self) -> usize {
        self.created.len()
    }

    /// For each node up and watching, the acknowledged attribute changes it must see, per
    /// session.
    fn owed(&self, up: &[bool]) -> Vec<(usize, u64, BTreeMap<&Bytes, usize>)> {
        let mut all = Vec::new();
        for i in (0..up.len()).filter(|i| up[*i]) {
            let Some(watching) = self.watching_since[i] else { continue };
            let since = watching.max(self.steady_since[i]);
            let mut owed: BTreeMap<&Bytes, usize> = BTreeMap::new();
            for (id, _) in self.changed.iter().filter(|(_, at)| *at >= since) {
                *owed.entry(id).or_default() += 1;
            }
            all.push((i, watching, owed));
        }
        all
    }

    /// Acknowledged attribute changes owed to a watching node, over all nodes.
    pub fn changes_owed(&self, up: &[bool]) -> usize {
        self.owed(up).iter().map(|(_, _, owed)| owed.values().sum::<usize>()).sum()
    }

    /// The promises' violations; `up[i]`: node `i` runs now.
    pub fn check(&self, up: &[bool]) -> Vec<String> {
        let mut violations = Vec::new();
        for (id, issued_at) in &self.created {
            for (i, seen) in self.seen.iter().enumerate() {
                if up[i] && self.steady_since[i] <= *issued_at && !seen.contains(id) {
                    violations.push(format!(
                        "session {id:?} created at t={issued_at}ms never reached node {i}'s \
                         subscribers (up and a member since t={}ms)",
                        self.steady_since[i]
                    ));
                }
            }
        }
        for (i, watching, owed) in self.owed(up) {
            for (id, owed) in owed {
                let seen = self.changes_seen[i].get(id).map_or(0, BTreeSet::len);
                if seen < owed {
                    violations.push(format!(
                        "node {i} (watching since t={watching}ms, a member since t={}ms) saw \
                         {seen} attribute changes of session {id:?}, owed {owed}",
                        self.steady_since[i]
                    ));
                }
            }
        }
        violations
    }
}
