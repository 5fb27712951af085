//! Who watches attribute changes, so a write that only changes attributes makes an event worth
//! replicating, and sends it to a member, only while someone, and that member, does.
//!
//! A session's lifecycle events (created, expired, login...) are few and always go everywhere
//! (see [`crate::events`]). An attribute change is most writes: its event costs a row on every
//! owner, a message to each member it goes to and an acknowledgement back. So each node says
//! whether it has a subscriber to session events ([`MemberMsg::Watching`]); a primary makes an
//! attribute-changed event only while some member of its topology watches or has not said
//! lately (a node just started or just joined counts as watching until it says otherwise), and
//! sends it only to those members ([`Watchers`]). Otherwise the event is announced on the
//! primary's node alone, which counts it.
//!
//! A node that starts watching waits for every member to confirm it heard
//! ([`MemberMsg::WatchingSeen`]) before its subscription counts as made: every write begun
//! after that makes the event on whichever member is its primary, and that primary sends it to
//! the node. A write begun before may not (it was concurrent with the subscription).
//!
//! A node tells each member its state until the member confirms the current one, and every
//! member again every [`REFRESH_HEARTBEATS`] heartbeats. What a node heard is forgotten (so
//! counts as watching) once not repeated for [`STALE_HEARTBEATS`], or while the node is out of
//! its own topology: a member that restarted, or was dropped from a topology and came back,
//! never acts on a state the sender has since changed without telling it. States are numbered
//! from the wall clock, so a node's numbers increase across its restarts and a late message
//! never undoes a newer one; a receiver that holds a higher number than the sender's (its clock
//! went back) answers with it, and the sender numbers on above it.

use std::collections::HashMap;

use crate::msg::MemberMsg;
use crate::placement::NodeId;

/// Every this many heartbeats a node tells every member its state, confirmed or not.
pub const REFRESH_HEARTBEATS: u64 = 10;
/// What a node heard and was not told again for this many heartbeats is forgotten.
pub const STALE_HEARTBEATS: u64 = 3 * REFRESH_HEARTBEATS;

/// What a node said: its state's number, whether it watches, and when (monotonic ms) it said it.
#[derive(Clone, Copy, Debug)]
struct Said {
    seq: u64,
    on: bool,
    at: u64,
}

/// The members of a topology that watch attribute changes (or have not said lately), by their
/// place in its sorted member list. A topology of more than 64 members counts all as watching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watchers(u64);

impl Watchers {
    pub const ALL: Watchers = Watchers(u64::MAX);
    pub const NONE: Watchers = Watchers(0);

    /// The members among `members` (a topology's, sorted) for which `watches` holds.
    pub fn of(members: &[NodeId], watches: impl Fn(NodeId) -> bool) -> Watchers {
        if members.len() > 64 {
            return Watchers::ALL;
        }
        let bits = members.iter().enumerate().filter(|(_, m)| watches(**m));
        Watchers(bits.fold(0, |acc, (i, _)| acc | 1 << i))
    }

    /// True if some member watches.
    pub fn any(self) -> bool {
        self.0 != 0
    }

    /// True if the member at place `index` of the topology's member list watches.
    pub fn at(self, index: usize) -> bool {
        index >= 64 || self.0 & (1 << index) != 0
    }

    /// How many of `members` (the topology's) watch.
    pub fn count(self, members: usize) -> usize {
        (0..members).filter(|i| self.at(*i)).count()
    }
}

pub struct Interest {
    me: NodeId,
    /// This node has a subscriber to session events.
    on: bool,
    /// Names `on`: higher than every number this node used before, in this life or earlier.
    seq: u64,
    /// What each other node last said.
    heard: HashMap<NodeId, Said>,
    /// The highest of this node's numbers each other node confirmed.
    seen: HashMap<NodeId, u64>,
    /// When (monotonic ms) this node last told each member, and last told every member.
    told_at: HashMap<NodeId, u64>,
    refreshed_at: u64,
}

impl Interest {
    /// A node that watches nothing yet; `wall`: unix ms now, where its numbers start.
    pub fn new(me: NodeId, wall: u64) -> Self {
        Interest {
            me,
            on: false,
            seq: wall,
            heard: HashMap::new(),
            seen: HashMap::new(),
            told_at: HashMap::new(),
            refreshed_at: 0,
        }
    }

    /// Whether this node has a subscriber now.
    pub fn set(&mut self, on: bool, wall: u64) {
        if on != self.on {
            self.on = on;
            self.renumber(wall);
            tracing::info!(node = self.me, watching = on, seq = self.seq, "session event watch");
        }
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    /// A new number for this node's state, above `floor` and every earlier one: every member
    /// must hear it again.
    fn renumber(&mut self, floor: u64) {
        self.seq = (self.seq + 1).max(floor);
        self.told_at.clear();
    }

    /// The members of `members` (a topology's, sorted) a primary here sends attribute-changed
    /// events to: this node if it watches, others that watch or have not said lately.
    pub fn watchers(&self, members: &[NodeId]) -> Watchers {
        Watchers::of(members, |m| match m == self.me {
            true => self.on,
            false => self.heard.get(&m).is_none_or(|said| said.on),
        })
    }

    /// True if this node watches, is a member, and every other member confirmed hearing it.
    pub fn confirmed(&self, members: &[NodeId]) -> bool {
        self.on
            && members.contains(&self.me)
            && members
                .iter()
                .all(|m| *m == self.me || self.seen.get(m).is_some_and(|s| *s >= self.seq))
    }

    /// Tells the members that have not confirmed this node's state (again after a heartbeat
    /// without an answer), and every member each [`REFRESH_HEARTBEATS`] heartbeats. Forgets
    /// nodes that are no longer members, what was not said again lately, and everything heard
    /// while this node is not a member itself.
    pub fn tick(
        &mut self,
        now: u64,
        heartbeat_ms: u64,
        members: &[NodeId],
        out: &mut Vec<(NodeId, MemberMsg)>,
    ) {
        let stale = STALE_HEARTBEATS * heartbeat_ms;
        let member = members.contains(&self.me);
        self.heard.retain(|n, said| member && members.contains(n) && now < said.at + stale);
        self.seen.retain(|n, _| members.contains(n));
        self.told_at.retain(|n, _| members.contains(n));
        let refresh = now >= self.refreshed_at + REFRESH_HEARTBEATS * heartbeat_ms;
        if refresh {
            self.refreshed_at = now;
        }
        let said = MemberMsg::Watching { seq: self.seq, on: self.on };
        for &m in members.iter().filter(|m| **m != self.me) {
            let confirmed = self.seen.get(&m).is_some_and(|s| *s >= self.seq);
            let due = self.told_at.get(&m).is_none_or(|at| now >= at + heartbeat_ms);
            if refresh || (!confirmed && due) {
                self.told_at.insert(m, now);
                out.push((m, said.clone()));
            }
        }
    }

    /// `from` says whether it watches; the answer confirms the number this node now holds for
    /// it (higher than `seq` if `seq` came late, or from a clock that went back).
    pub fn on_watching(&mut self, now: u64, from: NodeId, seq: u64, on: bool) -> MemberMsg {
        let said = self.heard.entry(from).or_insert(Said { seq, on, at: now });
        if seq >= said.seq {
            *said = Said { seq, on, at: now };
        }
        MemberMsg::WatchingSeen { seq: said.seq }
    }

    /// `from` holds this node's state numbered `seq`. A number above this node's own is of an
    /// earlier life whose clock ran ahead: this node numbers on above it.
    pub fn on_seen(&mut self, wall: u64, from: NodeId, seq: u64) {
        if seq > self.seq {
            self.renumber(seq.saturating_add(1).max(wall));
            return;
        }
        let s = self.seen.entry(from).or_default();
        *s = (*s).max(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HB: u64 = 100;

    /// Every node ticks at `now`; each message is delivered, and its answer back.
    fn exchange(nodes: &mut [Interest], now: u64, members: &[NodeId]) {
        for i in 0..nodes.len() {
            let mut out = Vec::new();
            nodes[i].tick(now, HB, members, &mut out);
            let from = nodes[i].me;
            for (to, msg) in out {
                let MemberMsg::Watching { seq, on } = msg else { unreachable!() };
                let j = nodes.iter().position(|n| n.me == to).unwrap();
                let MemberMsg::WatchingSeen { seq } = nodes[j].on_watching(now, from, seq, on)
                else {
                    unreachable!()
                };
                nodes[i].on_seen(now, to, seq);
            }
        }
    }

    #[test]
    fn changes_are_watched_until_every_member_says_it_does_not_watch() {
        let members = [1, 2, 3];
        let mut nodes: Vec<Interest> = members.iter().map(|&n| Interest::new(n, 1000)).collect();
        assert!(
            nodes.iter().all(|n| n.watchers(&members).any()),
            "members that said nothing watch"
        );
        assert_eq!(nodes[0].watchers(&members), Watchers::of(&members, |n| n != 1));
        exchange(&mut nodes, 0, &members);
        assert!(nodes.iter().all(|n| !n.watchers(&members).any()));
        // Node 3 subscribes: confirmed once both others heard; from then all watch.
        nodes[2].set(true, 1000);
        assert!(!nodes[2].confirmed(&members));
        exchange(&mut nodes, 10, &members);
        assert!(nodes[2].confirmed(&members));
        assert!(!nodes[2].confirmed(&[1, 2]), "not while out of its own topology");
        assert!(nodes.iter().all(|n| n.watchers(&members).any()));
        let only_3 = Watchers::of(&members, |n| n == 3);
        assert!(nodes.iter().all(|n| n.watchers(&members) == only_3), "sent to node 3 alone");
        // It stops, and the others hear it.
        nodes[2].set(false, 1000);
        exchange(&mut nodes, 20, &members);
        assert!(nodes.iter().all(|n| !n.watchers(&members).any()));
    }

    #[test]
    fn a_topology_of_more_than_64_members_counts_all_as_watching() {
        let members: Vec<NodeId> = (1..=65).collect();
        assert_eq!(Watchers::of(&members, |_| false), Watchers::ALL);
        assert_eq!(Watchers::of(&members[..64], |n| n == 64).count(64), 1);
        assert!(Watchers::of(&members[..64], |n| n == 64).at(63));
    }

    #[test]
    fn a_late_message_never_undoes_a_newer_state() {
        let mut a = Interest::new(1, 5000);
        a.set(true, 5000);
        let on = a.seq;
        a.set(false, 5000);
        let off = a.seq;
        assert!(off > on);
        let mut b = Interest::new(2, 5000);
        b.on_watching(0, 1, off, false);
        let answer = b.on_watching(0, 1, on, true);
        assert!(!b.watchers(&[1, 2]).any(), "the older 'on' came late");
        assert_eq!(answer, MemberMsg::WatchingSeen { seq: off }, "and is answered with the newer");
    }

    #[test]
    fn a_node_whose_clock_went_back_numbers_on_above_what_members_hold() {
        let mut b = Interest::new(2, 0);
        // An earlier life of node 1, with a clock ahead, said 'off' as 9000.
        b.on_watching(0, 1, 9000, false);
        // Restarted with its clock at 5000, it starts watching.
        let mut a = Interest::new(1, 5000);
        a.set(true, 5000);
        let mut nodes = vec![a, b];
        exchange(&mut nodes, 10, &[1, 2]);
        assert!(!nodes[0].confirmed(&[1, 2]), "2 kept 9000: not confirmed");
        assert!(nodes[0].seq > 9000);
        exchange(&mut nodes, 20, &[1, 2]);
        assert!(nodes[0].confirmed(&[1, 2]) && nodes[1].watchers(&[1, 2]).any());
    }

    #[test]
    fn what_is_not_said_again_or_heard_while_out_of_the_topology_is_forgotten() {
        let members = [1, 2];
        let mut b = Interest::new(2, 0);
        b.on_watching(0, 1, 10, false);
        let tick =
            |b: &mut Interest, now, members: &[NodeId]| b.tick(now, HB, members, &mut vec![]);
        tick(&mut b, STALE_HEARTBEATS * HB - 1, &members);
        assert!(!b.watchers(&members).any());
        tick(&mut b, STALE_HEARTBEATS * HB, &members);
        assert!(b.watchers(&members).any(), "not said again: counts as watching");
        b.on_watching(0, 1, 11, false);
        tick(&mut b, 1, &[1]);
        tick(&mut b, 2, &members);
        assert!(b.watchers(&members).any(), "heard before it was dropped from the topology");
    }

    #[test]
    fn unconfirmed_members_are_told_each_heartbeat_and_every_member_on_refresh() {
        let mut a = Interest::new(1, 0);
        let members = [1, 2, 3];
        let told = |a: &mut Interest, now| {
            let mut out = Vec::new();
            a.tick(now, HB, &members, &mut out);
            out.into_iter().map(|(to, _)| to).collect::<Vec<_>>()
        };
        assert_eq!(told(&mut a, 0), [2, 3]);
        assert!(told(&mut a, 50).is_empty(), "not again within a heartbeat");
        a.on_seen(0, 2, a.seq);
        assert_eq!(told(&mut a, 100), [3]);
        a.on_seen(0, 3, a.seq);
        assert!(told(&mut a, 200).is_empty());
        assert_eq!(told(&mut a, REFRESH_HEARTBEATS * HB), [2, 3], "a restarted member hears");
        // A node that leaves the topology is forgotten.
        let mut out = Vec::new();
        a.tick(REFRESH_HEARTBEATS * HB + 1, HB, &[1, 2], &mut out);
        assert!(!a.seen.contains_key(&3) && !a.heard.contains_key(&3));
    }
}
