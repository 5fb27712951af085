//! What each node's event subscribers saw, and the promise about it: every session whose
//! creation was acknowledged reaches, at least once, the subscribers of every node that was up
//! and a member of every topology any node followed from the request until the end of the run.
//! (A node that restarted lost its subscribers; one declared dead, and so dropped from the
//! topology, may miss what was published meanwhile: the documented limit.)

use std::collections::BTreeSet;

use bytes::Bytes;
use sessiongrid_model::session::event::{EventKind, SessionEvent};

pub struct Subscribers {
    /// Per node: the sessions whose creation its subscribers saw, since it last started.
    seen: Vec<BTreeSet<Bytes>>,
    /// Per node: since when it has been up and in every topology (virtual ms).
    steady_since: Vec<u64>,
    /// Acknowledged creations: (session id, when the request was made).
    created: Vec<(Bytes, u64)>,
}

impl Subscribers {
    pub fn new(nodes: usize) -> Subscribers {
        Subscribers {
            seen: vec![BTreeSet::new(); nodes],
            steady_since: vec![0; nodes],
            created: Vec::new(),
        }
    }

    /// Node `i` started (again): a new process, with new subscribers.
    pub fn started(&mut self, i: usize, now: u64) {
        self.seen[i].clear();
        self.steady_since[i] = now;
    }

    /// A topology some node follows leaves node `i` out.
    pub fn excluded(&mut self, i: usize, now: u64) {
        self.steady_since[i] = now;
    }

    pub fn events(&mut self, i: usize, events: &[SessionEvent]) {
        for e in events.iter().filter(|e| e.kind == EventKind::Created) {
            self.seen[i].insert(e.id.clone());
        }
    }

    pub fn acknowledged(&mut self, id: Bytes, issued_at: u64) {
        self.created.push((id, issued_at));
    }

    pub fn created(&self) -> usize {
        self.created.len()
    }

    /// The promise's violations; `up[i]`: node `i` runs now.
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
        violations
    }
}
