//! Who is in the cluster, who is alive, and which topology is current.
//!
//! A star of heartbeats: every member pings the coordinator and the coordinator pings every member,
//! each `heartbeat_ms`. The coordinator declares a member dead after `dead_after_ms` of silence and
//! publishes the next epoch; a member that loses the coordinator for as long suspects it, and the
//! lowest member id nobody suspects takes over. A node that joins pings the coordinator it learned
//! from a seed, and the coordinator adds it.
//!
//! **A restarted node rejoins before it acts.** It may have been declared dead and replaced while
//! it was down, so the topology on its disk may be stale. Until a live member sends it a topology
//! at least as new, or every member of its saved topology has answered (a whole-cluster restart;
//! the newest topology among theirs wins), it neither serves, coordinates nor declares anyone
//! dead.
//!
//! **A healed split merges into the bigger side.** Under `when_split = serve` each side of a
//! split elects its own coordinator and serves. A coordinator keeps probing the members it
//! declared dead; a topology whose coordinator this node's cluster removed is the other side's.
//! The side with fewer members (a member both list counts for the coordinator it pings; on a tie,
//! the higher coordinator id loses) merges into the other: its nodes stop serving, push their
//! data to the other side's primaries as merge operations (see `sessiongrid_model::merge`), then
//! join it as new nodes. The side that stays publishes its next epoch past the other's, so
//! nothing of the other side looks newer than it.
//!
//! **Leases fence stale nodes.** A pong echoes the pinger's own send time, so a node may serve only
//! until `sent_at + lease_ms` of a ping its coordinator answered in the current epoch. A node that
//! was paused (SIGSTOP) or cut off finds its lease expired when it wakes, and the coordinator,
//! which waits `dead_after_ms > lease_ms` before declaring it dead, never hands its partitions to
//! someone else while it may still serve them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sessiongrid_model::PartitionId;
use tracing::{debug, info, warn};

use crate::config::{ClusterConfig, SplitPolicy};
use crate::msg::{Intent, MemberMsg};
use crate::placement::NodeId;
use crate::topology::{Epoch, Topology};

pub type Outbox = Vec<(NodeId, MemberMsg)>;

/// Rounds of `Hello` after which a node without a cluster founds one with the seeds that
/// answered, even if some never did.
const FOUND_AFTER_RETRIES: u64 = 20;

/// How far a new coordinator's first epoch jumps ahead of its predecessor's.
const TAKEOVER_EPOCH_GAP: u64 = 1 << 20;

/// How often a coordinator probes the members it declared dead, in join retries.
const PROBE_EVERY_RETRIES: u64 = 4;

/// Declared-dead members remembered for probing.
const DEPARTED_MAX: usize = 64;

/// Rounds of `Hello` after which a restarted node stops waiting for every saved member.
const REJOIN_GIVE_UP_RETRIES: u64 = 120;

pub struct Membership {
    me: NodeId,
    cfg: Arc<ClusterConfig>,
    joining: bool,
    seeds: Vec<NodeId>,
    topology: Option<Arc<Topology>>,
    /// When each node was last heard from, on this node's clock (reset to "now" as a grace
    /// period when this node takes over or wakes from a pause).
    heard: BTreeMap<NodeId, u64>,
    /// When each node really was last heard from (never reset): the evidence `Deny` counts.
    contact: BTreeMap<NodeId, u64>,
    /// When each node last pinged this one as its coordinator: who follows it (a member both
    /// sides of a split list answers both coordinators' pings, but pings only its own).
    pinged: BTreeMap<NodeId, u64>,
    /// Members this node believes dead although the topology still lists them.
    suspects: BTreeSet<NodeId>,
    /// Coordinator: nodes that asked to join since the last publication.
    joiners: BTreeSet<NodeId>,
    /// Coordinator: members that asked to leave, or are lite (kept out of every target).
    leaving: BTreeSet<NodeId>,
    /// Coordinator: the lite ones among them.
    lite: BTreeSet<NodeId>,
    /// Coordinator: lost nodes an operator gave up, taken out at the next publication.
    forgotten: BTreeSet<NodeId>,
    /// This node wants to leave.
    want_leave: bool,
    /// Coordinator: learners reported in sync under the current topology.
    synced: BTreeSet<(PartitionId, NodeId)>,
    /// Since which epoch each learner of the current topology has been one without a break,
    /// as far as this node knows: an acknowledgement it made under an older table may predate
    /// a table that left it out, under which it dropped its copy.
    learning_since: BTreeMap<(PartitionId, NodeId), Epoch>,
    dirty: bool,
    lease_until: u64,
    /// The highest epoch any peer mentioned: a coordinator behind it fetches that topology
    /// before publishing, so epochs never go backwards.
    newest_epoch_seen: u64,
    /// Coordinator: the newest echo each member returned in the current epoch, for the
    /// majority lease of `Deny`.
    echoes: BTreeMap<NodeId, u64>,
    /// Coordinator under `Deny`: members whose ping came while it had no lease to vouch with
    /// (`sent_at`, epoch), answered once it has one.
    ungranted: BTreeMap<NodeId, (u64, Epoch)>,
    last_tick: Option<u64>,
    next_ping: u64,
    next_hello: u64,
    /// Seeds that answered they have no cluster either.
    clusterless: BTreeSet<NodeId>,
    /// Restarted with a saved topology: the saved members that have not answered yet.
    rejoining: Option<BTreeSet<NodeId>>,
    born: u64,
    /// Members declared dead (not ones that left): probed, to find the other side of a split.
    departed: BTreeSet<NodeId>,
    next_probe: u64,
    /// The other side of a healed split, which this node's side lost to: this node serves
    /// nothing until it has pushed its data there, then joins it.
    merging: Option<Arc<Topology>>,
    /// This node's side's last topology while it merges: the other side must publish past its
    /// epoch before this node joins, or this topology could look newer to it.
    left: Option<Arc<Topology>>,
    /// The coordinators of sides this one won against, with the newest epoch of each: that
    /// table, or an older one, sent again (a merging node sends its side's every heartbeat)
    /// merges into this side still, whatever this side's size has become since; and the next
    /// publication goes past every one of them ([`Membership::epoch_floor`]).
    won_against: BTreeMap<NodeId, Epoch>,
    /// When this node last woke from a pause (its process was stopped or starved).
    woke_at: Option<u64>,
    /// Coordinator: members of its table that merge into this side from the other side of a
    /// split (they sent that side's table, which they follow). They serve nothing while they
    /// merge, and may have dropped their copies there, so the next table leaves them out; they
    /// join again once merged.
    merging_in: BTreeSet<NodeId>,
    /// Coordinator: primaries of this table that took over a partition with no copy while
    /// another owner holds one ([`MemberMsg::NoCopy`]): the next table makes them learners.
    no_copy: BTreeSet<(PartitionId, NodeId)>,
    /// Coordinator: nodes that merged in from the other side of a split, with the partitions
    /// whose copies they still hold ([`MemberMsg::Merged`]); the next table makes them owners
    /// of no other.
    merged: BTreeMap<NodeId, BTreeSet<PartitionId>>,
    /// Taking over from a suspected coordinator: since when, and the members that answered this
    /// node's pings as having no other live coordinator. It publishes once all did, or after
    /// `dead_after_ms` without the others, so a node cut off from everyone takes over alone.
    takeover: Option<(u64, BTreeSet<NodeId>)>,
    /// Another member taking over from this node's coordinator that answered this node's ping
    /// as its coordinator, and when it last did: the table it is about to publish counts this
    /// node and its copies.
    taker: Option<(NodeId, u64)>,
}

impl Membership {
    /// A node restarting with the topology it last saw, or `None` for a new node. A new node
    /// that is not `joining` founds a cluster of its own; a joining one waits for its seeds
    /// (given here or later with [`Membership::add_seed`]).
    pub fn new(
        me: NodeId,
        cfg: Arc<ClusterConfig>,
        joining: bool,
        saved: Option<Topology>,
        now: u64,
    ) -> Self {
        let mut m = Membership {
            me,
            cfg,
            joining,
            seeds: Vec::new(),
            topology: saved.map(Arc::new),
            heard: BTreeMap::new(),
            contact: BTreeMap::new(),
            pinged: BTreeMap::new(),
            suspects: BTreeSet::new(),
            joiners: BTreeSet::new(),
            leaving: BTreeSet::new(),
            lite: BTreeSet::new(),
            forgotten: BTreeSet::new(),
            want_leave: false,
            synced: BTreeSet::new(),
            learning_since: BTreeMap::new(),
            dirty: false,
            lease_until: 0,
            newest_epoch_seen: 0,
            echoes: BTreeMap::new(),
            ungranted: BTreeMap::new(),
            last_tick: None,
            next_ping: now,
            next_hello: now,
            clusterless: BTreeSet::new(),
            rejoining: None,
            born: now,
            departed: BTreeSet::new(),
            merging_in: BTreeSet::new(),
            no_copy: BTreeSet::new(),
            merged: BTreeMap::new(),
            next_probe: now,
            merging: None,
            left: None,
            won_against: BTreeMap::new(),
            woke_at: None,
            takeover: None,
            taker: None,
        };
        if let Some(t) = m.topology.clone() {
            // From the saved table's own epoch: what came before it is not known.
            m.learning_since = m.learners_since(&t);
            let others: BTreeSet<NodeId> = t.members.iter().copied().filter(|n| *n != me).collect();
            if !others.is_empty() {
                info!(epoch = t.epoch, "restarted with a saved topology; rejoining");
                m.rejoining = Some(others);
            }
        }
        if m.topology.is_none() && !joining {
            // Founded at once, so it never tells a joiner it has no cluster.
            info!(node = me, "founding a cluster");
            m.topology = Some(Arc::new(Topology::founded_by(me, m.cfg.partitions)));
        }
        m.grace_all(now);
        m
    }

    fn intent(&self) -> Intent {
        match (self.cfg.lite, self.want_leave) {
            (true, _) => Intent::Lite,
            (false, true) => Intent::Leave,
            (false, false) => Intent::Stay,
        }
    }

    /// Gives up lost node `node` for good (an operator's decision): partitions that wait for it
    /// start empty. Sent to the coordinator, which ignores a node that is not lost.
    pub fn forget(&mut self, now: u64, node: NodeId, out: &mut Outbox) {
        self.tell_coordinator(now, MemberMsg::Forget { node }, out);
    }

    /// Sends `msg` to the coordinator, or handles it here if this node is the coordinator.
    fn tell_coordinator(&mut self, now: u64, msg: MemberMsg, out: &mut Outbox) {
        match self.coordinator() {
            Some(c) if c == self.me => {
                self.receive(now, self.me, msg, out);
            }
            Some(c) => out.push((c, msg)),
            None => {}
        }
    }

    /// Hands this node's partitions to the others; see [`Topology::drained`] for when it may stop.
    pub fn leave(&mut self, now: u64, out: &mut Outbox) {
        self.want_leave = true;
        self.ask_to_leave(now, out);
    }

    fn ask_to_leave(&mut self, now: u64, out: &mut Outbox) {
        let listed = self.topology.as_ref().is_some_and(|t| t.leaving.contains(&self.me));
        if !self.want_leave || listed {
            return;
        }
        self.tell_coordinator(now, MemberMsg::Leave, out);
    }

    /// A node to ask for the cluster (the transport found it at a `--join` address).
    pub fn add_seed(&mut self, seed: NodeId) {
        if seed != self.me && !self.seeds.contains(&seed) {
            self.seeds.push(seed);
        }
    }

    pub fn topology(&self) -> Option<&Arc<Topology>> {
        self.topology.as_ref()
    }

    pub fn epoch(&self) -> u64 {
        self.topology.as_ref().map_or(0, |t| t.epoch)
    }

    /// The coordinator as this node sees it: the topology's, or, if that one is suspected, the
    /// lowest member nobody here suspects.
    pub fn coordinator(&self) -> Option<NodeId> {
        let t = self.topology.as_ref()?;
        if !self.suspects.contains(&t.coordinator) {
            return Some(t.coordinator);
        }
        t.members.iter().copied().find(|m| !self.suspects.contains(m))
    }

    /// The topology of the side this node merges into, while it does.
    pub fn merging(&self) -> Option<&Arc<Topology>> {
        self.merging.as_ref()
    }

    /// While this node merges into the other side: the last table of its own side that counted
    /// it as a member (`None`: there was none).
    pub fn left(&self) -> Option<&Arc<Topology>> {
        self.left.as_ref()
    }

    /// The topology requests are routed by: the side this node merges into, while it does.
    pub fn routing_topology(&self) -> Option<&Arc<Topology>> {
        self.merging.as_ref().or(self.topology.as_ref())
    }

    /// This node has pushed its data to the side it merges into: once that side has published
    /// past this side's epoch, it takes that side's topology and asks to join. Returns the
    /// topology to act on (`None`: still waiting).
    /// `vouched` lists the partitions whose copy this node holds (asked only once it joins).
    pub fn finish_merge(
        &mut self,
        now: u64,
        vouched: impl FnOnce() -> Vec<PartitionId>,
        out: &mut Outbox,
    ) -> Option<Arc<Topology>> {
        let past = self
            .left
            .as_ref()
            .is_none_or(|left| self.merging.as_ref().is_some_and(|t| t.epoch > left.epoch));
        if !past {
            return None;
        }
        let t = self.merging.take()?;
        self.left = None;
        info!(epoch = t.epoch, coordinator = t.coordinator, "merged; joining the other side");
        self.topology = None;
        self.departed.clear();
        self.won_against.clear();
        self.newest_epoch_seen = t.epoch;
        self.set(now, t.clone());
        self.grace_all(now);
        self.next_ping = now + self.cfg.heartbeat_ms;
        // Before the ping that makes it a joiner (a stream keeps the order).
        out.push((t.coordinator, MemberMsg::Merged { vouched: vouched() }));
        out.push((
            t.coordinator,
            MemberMsg::Ping { sent_at: now, epoch: t.epoch, intent: self.intent() },
        ));
        Some(t)
    }

    /// This process runs at `now`. A gap since it last did means it was not running (paused, or
    /// starved): silence it could not hear is not evidence that others died, and what it hears
    /// first on waking (the messages queued meanwhile, handled before its next tick) must be
    /// taken as heard by a node that just woke (sim seed 26402: a coordinator woken from a
    /// pause met its member's takeover as the other side, won, and served alone).
    fn note_running(&mut self, now: u64) {
        if self.last_tick.is_some_and(|t| now.saturating_sub(t) > 3 * self.cfg.heartbeat_ms) {
            warn!(
                gap_ms = now - self.last_tick.unwrap_or(now),
                "node was paused; resetting failure detector"
            );
            self.grace_all(now);
            self.woke_at = Some(now);
        }
        self.last_tick = Some(now);
    }

    /// True while a restarted node is still finding out whether its saved topology is current.
    pub fn is_rejoining(&self) -> bool {
        self.rejoining.is_some()
    }

    pub fn is_coordinator(&self) -> bool {
        self.coordinator() == Some(self.me)
    }

    /// True while this node may serve the partitions its topology gives it.
    pub fn lease_valid(&self, now: u64) -> bool {
        now < self.lease_until()
    }

    /// Until when (monotonic ms) this node may serve the current topology's partitions: what
    /// [`Membership::lease_valid`] compares `now` with (0: not at all; `u64::MAX`: alone).
    pub fn lease_until(&self) -> u64 {
        let Some(t) = &self.topology else { return 0 };
        if self.rejoining.is_some() || self.merging.is_some() || !t.is_member(self.me) {
            return 0;
        }
        if t.members.len() == 1 && t.coordinator == self.me {
            return u64::MAX;
        }
        self.lease_until
    }

    /// Drives timers; returns a topology if this node published or adopted one.
    pub fn tick(&mut self, now: u64, out: &mut Outbox) -> Option<Arc<Topology>> {
        self.note_running(now);
        if let Some(target) = &self.merging {
            // The node driving the merge finishes it; meanwhile it follows the other side's
            // topology, so its merge operations go to the current primaries.
            if now >= self.next_ping {
                self.next_ping = now + self.cfg.heartbeat_ms;
                out.push((target.coordinator, MemberMsg::TopologyPull));
                out.push((target.coordinator, MemberMsg::Hello));
                if let Some(left) = self.left.clone() {
                    out.push((target.coordinator, MemberMsg::TopologyPush(left)));
                }
            }
            return None;
        }
        let Some(t) = self.topology.clone() else {
            return self.seek_cluster(now, out);
        };
        if let Some(waiting) = &self.rejoining {
            if now.saturating_sub(self.born) >= REJOIN_GIVE_UP_RETRIES * self.cfg.join_retry_ms {
                warn!(
                    missing = waiting.len(),
                    "saved members did not all answer; resuming the newest topology heard"
                );
                return self.finish_rejoin(now, out);
            }
            if now >= self.next_hello {
                self.next_hello = now + self.cfg.join_retry_ms;
                for &n in t.members.iter().chain(&self.seeds).filter(|n| **n != self.me) {
                    out.push((n, MemberMsg::Hello));
                }
            }
            return None;
        }
        if self.is_coordinator() {
            let silent: Vec<NodeId> = t
                .members
                .iter()
                .copied()
                .filter(|m| *m != self.me && self.silent_for(*m, now) > self.cfg.dead_after_ms)
                .collect();
            // Under `Deny`, only a side that still hears a majority of the last stable
            // membership may change the cluster (so a minority cannot whittle the others away
            // one publication at a time).
            let in_touch = |m: &NodeId| {
                *m == self.me
                    || self.contact.get(m).is_some_and(|at| now - at <= self.cfg.dead_after_ms)
            };
            let heard = t.stable.iter().filter(|m| t.is_member(**m) && in_touch(m)).count();
            let may_change =
                self.cfg.split == SplitPolicy::Serve || 2 * heard > t.stable.len().max(1);
            let mut answers_awaited = false;
            if may_change {
                for m in silent {
                    if self.suspects.insert(m) {
                        info!(node = m, "member declared dead");
                        metrics::counter!("sessiongrid_cluster_suspicions_total", "of" => "member")
                            .increment(1);
                        self.dirty = true;
                    }
                }
                if t.coordinator != self.me {
                    // Taking over from a dead coordinator: published once the members have
                    // answered (see `take_over`), even if the table is marked for a new epoch
                    // already (a learner reported in sync meanwhile, or a smaller side this
                    // node met as a member long ago, a mark only a coordinator acts on).
                    // Published at once, it listed the members cut off with the old
                    // coordinator; on the heal they merged into this side while still listed
                    // as its owners, and the merge never finished (sim seed 57063 of `serve 2`).
                    let ready = if self.cfg.heals_splits() {
                        self.take_over(now, &t)
                    } else if self.cfg.split == SplitPolicy::Deny {
                        self.take_over_with_majority(now, &t)
                    } else {
                        true
                    };
                    self.dirty |= ready;
                    answers_awaited = !ready;
                }
            }
            // Under `Deny`, a table all members confirmed becomes the stable set (`publish`).
            if self.cfg.split == SplitPolicy::Deny
                && t.coordinator == self.me
                && t.stable != t.members
                && self.confirmed_by_all(&t)
            {
                self.dirty = true;
            }
            // A member that asked its old coordinator to let it leave and then took over
            // from it asks itself.
            self.ask_to_leave(now, out);
            // Under `Deny` a coordinator publishes only while its majority lease holds, so it
            // stops before the others can elect a successor.
            let leased = self.cfg.split == SplitPolicy::Serve
                || t.coordinator != self.me
                || self.lease_valid(now);
            let current = self.newest_epoch_seen <= t.epoch.max(self.epoch_floor()) && leased;
            let published = if self.dirty && may_change && current && !answers_awaited {
                Some(self.publish(now, out))
            } else {
                None
            };
            if self.cfg.heals_splits() && now >= self.next_probe {
                self.next_probe = now + PROBE_EVERY_RETRIES * self.cfg.join_retry_ms;
                for &n in &self.departed {
                    out.push((n, MemberMsg::Hello));
                }
            }
            if now >= self.next_ping {
                self.next_ping = now + self.cfg.heartbeat_ms;
                let t = self.topology.clone()?;
                for &m in t.members.iter().filter(|m| **m != self.me) {
                    out.push((
                        m,
                        MemberMsg::Ping { sent_at: now, epoch: t.epoch, intent: self.intent() },
                    ));
                }
            }
            return published;
        }
        // Not (or no longer) taking over: the coordinator it suspected was heard again.
        self.takeover = None;
        let coordinator = self.coordinator()?;
        if self.silent_for(coordinator, now) > self.cfg.dead_after_ms {
            info!(node = coordinator, "coordinator suspected");
            metrics::counter!("sessiongrid_cluster_suspicions_total", "of" => "coordinator")
                .increment(1);
            self.suspects.insert(coordinator);
            if let Some(next) = self.coordinator() {
                self.heard.insert(next, now);
                if next == self.me {
                    self.grace_all(now);
                }
            }
            return None;
        }
        if now >= self.next_ping {
            self.next_ping = now + self.cfg.heartbeat_ms;
            out.push((
                coordinator,
                MemberMsg::Ping { sent_at: now, epoch: t.epoch, intent: self.intent() },
            ));
            self.ask_to_leave(now, out);
        }
        None
    }

    /// Handles a membership message; returns a topology if one was adopted.
    pub fn receive(
        &mut self,
        now: u64,
        from: NodeId,
        msg: MemberMsg,
        out: &mut Outbox,
    ) -> Option<Arc<Topology>> {
        self.note_running(now);
        self.heard.insert(from, now);
        self.contact.insert(from, now);
        self.suspects.remove(&from);
        match msg {
            MemberMsg::Hello => {
                let topology = self.topology.clone();
                let settled = self.rejoining.is_none() && self.merging.is_none();
                out.push((from, MemberMsg::Welcome { topology, settled }));
                None
            }
            MemberMsg::Welcome { topology: Some(t), settled } => {
                if self.merging.as_ref().is_some_and(|target| from == target.coordinator) {
                    if !settled {
                        self.abort_mutual_merge(now);
                    }
                    return None;
                }
                if self.is_other_side(&t) {
                    // A restarting node's saved topology is not a live cluster.
                    return if settled { self.adopt(now, from, t, out) } else { None };
                }
                let Some(waiting) = self.rejoining.as_mut() else {
                    return self.adopt(now, from, t, out);
                };
                waiting.remove(&from);
                let current =
                    settled && self.topology.as_ref().is_none_or(|mine| !mine.supersedes(&t));
                let all_answered = waiting.is_empty();
                let adopted = self.adopt(now, from, t, out);
                if current || all_answered {
                    return self.finish_rejoin(now, out).or(adopted);
                }
                adopted
            }
            MemberMsg::Welcome { topology: None, .. } => {
                self.clusterless.insert(from);
                None
            }
            MemberMsg::Ping { sent_at, epoch, intent } => {
                self.pinged.insert(from, now);
                self.newest_epoch_seen = self.newest_epoch_seen.max(epoch);
                let mine = self.epoch();
                let member = self.topology.as_ref().is_some_and(|t| t.is_member(from));
                let mut vouch = member;
                if self.cfg.split == SplitPolicy::Deny && self.is_coordinator() {
                    // A coordinator without its majority lease cannot vouch for anyone; it
                    // answers again once it has one.
                    vouch &= self.lease_valid(now);
                    if member && !vouch && from != self.me {
                        self.ungranted.insert(from, (sent_at, epoch));
                    }
                }
                if self.is_coordinator() && member && from != self.me {
                    let changed = if intent == Intent::Stay {
                        self.leaving.remove(&from)
                    } else {
                        self.leaving.insert(from)
                    };
                    let lite_changed = if intent == Intent::Lite {
                        self.lite.insert(from)
                    } else {
                        self.lite.remove(&from)
                    };
                    self.dirty |= changed | lite_changed;
                }
                out.push((
                    from,
                    MemberMsg::Pong {
                        echo: sent_at,
                        epoch: mine,
                        coordinator: self.coordinator().unwrap_or(0),
                        member: vouch,
                    },
                ));
                if epoch > mine {
                    out.push((from, MemberMsg::TopologyPull));
                } else if self.is_coordinator() {
                    // A node that pings with an older epoch must see this topology first (and
                    // merge, if it served the other side of a split) before it may join: its
                    // ping may be a late one, sent before it was cut off, by a node still
                    // coordinating a side of its own. Taken as a joiner, it was listed by both
                    // sides, which then followed each other's tables (sim seed 3314 of `serve`:
                    // a lossy coordinator's late ping, from a node the taker had not seen
                    // declared dead since it had been leaving).
                    if !member && epoch == mine && self.joiners.insert(from) {
                        info!(node = from, "node joining");
                        self.dirty = true;
                    } else if epoch < mine {
                        self.push_to(from, out);
                    }
                }
                None
            }
            MemberMsg::Pong { echo, epoch, coordinator, member } => {
                self.newest_epoch_seen = self.newest_epoch_seen.max(epoch);
                let behind = epoch <= self.epoch();
                // Under `Deny` only a member that lost the old coordinator itself (and so
                // follows this node) answers a takeover: one that still hears it keeps giving it
                // its lease, and a takeover counted with it would serve beside it (a node that
                // alone stopped hearing the coordinator took over within 0.1 s in a chaos run).
                let follows = coordinator == self.me
                    || (self.cfg.split == SplitPolicy::Serve
                        && self.suspects.contains(&coordinator));
                if let Some((_, answered)) = self.takeover.as_mut() {
                    // A member that follows a coordinator this node does not believe dead
                    // belongs to another cluster (the other side of a split); one with a newer
                    // table knows a successor this node has not heard of.
                    if behind && follows {
                        answered.insert(from);
                    }
                }
                let taking_over = from != self.me
                    && coordinator == from
                    && member
                    && self.topology.as_ref().is_some_and(|t| t.coordinator != from);
                if taking_over && !self.is_coordinator() {
                    self.taker = Some((from, now));
                }
                let mine = self.epoch();
                // A coordinator needs a fresh pong from any member; a member needs its
                // coordinator to count it in, in the same epoch.
                let confirms = self.is_coordinator()
                    || (Some(from) == self.coordinator()
                        && coordinator == from
                        && member
                        && epoch == mine);
                if epoch > mine {
                    out.push((from, MemberMsg::TopologyPull));
                } else if confirms && self.is_coordinator() && self.cfg.split == SplitPolicy::Deny {
                    // Only a member that has this epoch confirms it: a coordinator cut off
                    // right after publishing must not serve (or let anyone serve) a topology
                    // the majority never saw. And only one that follows this node: a member
                    // taking over from a coordinator the others still hear counted their
                    // answers as its lease and served the old table's partitions after that
                    // coordinator had handed them on (sim seed 1226 of `deny 2`, a lossy node).
                    if epoch == mine && coordinator == self.me {
                        let had_lease = self.lease_valid(now);
                        let newest = self.echoes.entry(from).or_insert(0);
                        *newest = (*newest).max(echo);
                        self.lease_until = self.majority_lease();
                        if !had_lease && self.lease_valid(now) {
                            self.grant_waiting(mine, out);
                        }
                    }
                } else if confirms {
                    self.extend_lease(echo);
                }
                None
            }
            MemberMsg::TopologyPull => {
                self.push_to(from, out);
                None
            }
            MemberMsg::TopologyPush(t) => {
                if let Some(target) = &self.merging {
                    // The side this node merges into merged into a third one meanwhile, which
                    // its coordinator joined: that side's table is where this node's data goes
                    // now. Held to the old one, the merge sent to its primaries, merging or gone,
                    // for good (sim seed 1265, a lossy node splitting the cluster three ways).
                    let moved_on = from == target.coordinator
                        && t.coordinator != target.coordinator
                        && t.is_member(from)
                        && t.supersedes(target)
                        && t.well_formed(self.cfg.partitions);
                    if moved_on {
                        info!(
                            coordinator = t.coordinator,
                            epoch = t.epoch,
                            "the side this node merges into merged into another; following it"
                        );
                        self.merging = Some(t);
                        return None;
                    }
                }
                // A member of this table that sends the other side's follows it: listed there,
                // it served that side; left out, it dropped its copies under it, and this table
                // would make it an owner of copies it no longer has (sim seed 9052 with lossy
                // nodes under `serve`: declared dead over there, it merged straight into this
                // side, which then made it the only owner of a partition, empty).
                let merging_in = from != self.me
                    && self.is_coordinator()
                    && self.is_other_side(&t)
                    && self.topology.as_ref().is_some_and(|mine| mine.is_member(from));
                let took_over = from == t.coordinator && self.taken_over_without_me(now, &t);
                let adopted = if took_over {
                    self.meet(now, from, t, out);
                    None
                } else {
                    self.adopt(now, from, t, out)
                };
                if (merging_in || took_over)
                    && self.merging.is_none()
                    && self.merging_in.insert(from)
                {
                    // Kept as an owner, it would hold up the writes of the partitions it
                    // follows, its own merge operations among them, for good (sim seed 11591).
                    info!(node = from, "member merging in from the other side of a split");
                    self.dirty = true;
                }
                adopted
            }
            MemberMsg::Leave => {
                let member = self.topology.as_ref().is_some_and(|t| t.is_member(from));
                if self.is_coordinator() && member && self.leaving.insert(from) {
                    info!(node = from, "member leaving");
                    self.dirty = true;
                }
                None
            }
            MemberMsg::Forget { node } => {
                let lost = self.topology.as_ref().is_some_and(|t| t.lost().contains(&node));
                if self.is_coordinator() && lost && self.forgotten.insert(node) {
                    warn!(node, "lost node forgotten: partitions only it held start empty");
                    self.dirty = true;
                }
                None
            }
            MemberMsg::Synced { partition, node, as_of } => {
                // Only the partition's primary in this table vouches for a learner: a node that
                // was primary in an older table (or under the other side's table, while a split
                // heals) may report a learner in sync with a history that lacks the writes the
                // current primary has acknowledged since.
                // Nor a primary this node's cluster declared dead: cut off from it, it may be
                // on the other side of a split with the learner, which may follow that side's
                // table and have dropped its copy since (sim seed 7227 of `serve`, a lossy
                // coordinator: the learner became the only owner of a copy it no longer had).
                // It reports again once it is a member.
                let learning = self.topology.as_ref().is_some_and(|t| {
                    t.is_member(from)
                        && t.assignment(partition).is_some_and(|a| {
                            a.primary() == Some(from) && a.learners().any(|n| n == node)
                        })
                });
                // And only on an acknowledgement the learner made while learning without a break
                // since: it may have dropped its copy under a table that left it out, one its
                // primary never saw (sim seed 632).
                let since = self.learning_since.get(&(partition, node)).copied();
                let fresh = since.is_some_and(|since| as_of >= since);
                if learning && !fresh {
                    debug!(
                        partition,
                        node,
                        as_of,
                        ?since,
                        "in-sync report older than the learner's copy"
                    );
                    metrics::counter!("sessiongrid_cluster_stale_sync_reports_total").increment(1);
                }
                if self.is_coordinator()
                    && learning
                    && fresh
                    && self.synced.insert((partition, node))
                {
                    debug!(partition, node, primary = from, "learner reported in sync");
                    self.dirty = true;
                }
                None
            }
            MemberMsg::Merged { vouched } => {
                if self.is_coordinator() {
                    info!(
                        node = from,
                        vouched = vouched.len(),
                        "node merged in from the other side"
                    );
                    self.merged.insert(from, vouched.into_iter().collect());
                    self.dirty = true;
                }
                None
            }
            MemberMsg::NoCopy { partition } => {
                // Only the primary of this table, and only while another owner is a member to
                // take its place (a partition whose other owners are all gone waits for them).
                let gives_way = self.topology.as_ref().is_some_and(|t| {
                    t.is_member(from)
                        && t.assignment(partition).is_some_and(|a| {
                            a.primary() == Some(from)
                                && a.owners.iter().skip(1).any(|o| t.is_member(*o))
                        })
                });
                if self.is_coordinator() && gives_way && self.no_copy.insert((partition, from)) {
                    // Nor is any learner it reported in sync holding more than it has.
                    self.synced.retain(|(p, _)| *p != partition);
                    warn!(
                        partition,
                        node = from,
                        "a primary has no copy; another owner takes over"
                    );
                    self.dirty = true;
                }
                None
            }
            // Control handles these itself: they are not evidence of liveness, which the lines
            // above would take them for.
            MemberMsg::Stale { .. }
            | MemberMsg::Drain
            | MemberMsg::Watching { .. }
            | MemberMsg::WatchingSeen { .. } => None,
        }
    }

    /// Back in the cluster: act on the newest topology heard.
    fn finish_rejoin(&mut self, now: u64, out: &mut Outbox) -> Option<Arc<Topology>> {
        self.rejoining = None;
        self.grace_all(now);
        let t = self.topology.clone()?;
        info!(epoch = t.epoch, "rejoined");
        if t.coordinator != self.me {
            out.push((
                t.coordinator,
                MemberMsg::Ping { sent_at: now, epoch: t.epoch, intent: self.intent() },
            ));
        }
        Some(t)
    }

    /// Under `Deny`: the lease a coordinator holds while a majority of the members (itself
    /// included) answered its pings recently.
    fn majority_lease(&self) -> u64 {
        let Some(t) = &self.topology else { return 0 };
        let me_counts = usize::from(t.stable.contains(&self.me));
        // Members of the stable set needed besides this node for a strict majority.
        let needed = (t.stable.len() / 2 + 1).saturating_sub(me_counts);
        if needed == 0 {
            return u64::MAX;
        }
        let mut echoes: Vec<u64> = t
            .stable
            .iter()
            .filter(|m| **m != self.me && t.is_member(**m))
            .map(|m| self.echoes.get(m).copied().unwrap_or(0))
            .collect();
        echoes.sort_unstable_by(|a, b| b.cmp(a));
        echoes.get(needed - 1).map_or(0, |e| e.saturating_add(self.cfg.lease_ms))
    }

    /// Under `Deny`: every member of `t`, this coordinator's current table, answered its pings
    /// in `t`'s epoch (so every one of them follows `t`).
    fn confirmed_by_all(&self, t: &Topology) -> bool {
        t.members.iter().all(|m| *m == self.me || self.echoes.contains_key(m))
    }

    /// Answers the pings that came while this coordinator had no lease to vouch with.
    fn grant_waiting(&mut self, epoch: Epoch, out: &mut Outbox) {
        for (m, (sent_at, their_epoch)) in std::mem::take(&mut self.ungranted) {
            let member = self.topology.as_ref().is_some_and(|t| t.is_member(m));
            if member && their_epoch == epoch {
                let pong =
                    MemberMsg::Pong { echo: sent_at, epoch, coordinator: self.me, member: true };
                out.push((m, pong));
            }
        }
    }

    fn extend_lease(&mut self, echo: u64) {
        // `echo` comes back from a peer: a lying one must not overflow it.
        self.lease_until = self.lease_until.max(echo.saturating_add(self.cfg.lease_ms));
    }

    fn silent_for(&self, node: NodeId, now: u64) -> u64 {
        now.saturating_sub(self.heard.get(&node).copied().unwrap_or(now))
    }

    fn grace_all(&mut self, now: u64) {
        if let Some(t) = &self.topology {
            for &m in &t.members {
                self.heard.insert(m, now);
            }
        }
    }

    fn push_to(&self, to: NodeId, out: &mut Outbox) {
        if let Some(t) = &self.topology {
            out.push((to, MemberMsg::TopologyPush(t.clone())));
        }
    }

    /// A node without a cluster asks its seeds for one. It founds one itself if it has no seeds,
    /// or if it has the lowest id among seeds that all answered they have none either (or, after
    /// [`FOUND_AFTER_RETRIES`] rounds, among those that answered).
    fn seek_cluster(&mut self, now: u64, out: &mut Outbox) -> Option<Arc<Topology>> {
        let waited = now.saturating_sub(self.born) >= FOUND_AFTER_RETRIES * self.cfg.join_retry_ms;
        let all_answered = self.seeds.iter().all(|s| self.clusterless.contains(s));
        let lowest = self.clusterless.first().is_some_and(|low| self.me < *low);
        if !self.joining || (lowest && (all_answered || waited)) {
            info!(node = self.me, "founding a cluster");
            let t = Arc::new(Topology::founded_by(self.me, self.cfg.partitions));
            return self.adopt(now, self.me, t, out);
        }
        if now >= self.next_hello {
            self.next_hello = now + self.cfg.join_retry_ms;
            for &s in &self.seeds {
                out.push((s, MemberMsg::Hello));
            }
        }
        None
    }

    fn publish(&mut self, now: u64, out: &mut Outbox) -> Arc<Topology> {
        let t = self.topology.clone().expect("a coordinator has a topology");
        let members: Vec<NodeId> = t
            .members
            .iter()
            .copied()
            .filter(|m| !self.suspects.contains(m) && !self.merging_in.contains(m))
            .chain(self.joiners.iter().copied())
            .collect();
        // Who is leaving comes from the pings (and `Leave`), so a node that restarted is not.
        self.leaving.retain(|n| members.contains(n));
        self.lite.retain(|n| self.leaving.contains(n));
        if !self.want_leave {
            self.leaving.remove(&self.me);
        }
        if self.cfg.lite {
            self.lite.insert(self.me);
        }
        // Only nodes still lost may go: one that came back meanwhile is a member (or joining).
        let lost = t.lost();
        self.forgotten.retain(|n| lost.contains(n) && !self.joiners.contains(n));
        let base = if self.forgotten.is_empty() {
            t.clone()
        } else {
            Arc::new(t.without(&self.forgotten))
        };
        let base = if self.no_copy.is_empty() {
            base
        } else {
            Arc::new(base.without_owners(&self.no_copy, &members))
        };
        // A node merged in from the other side is listed here, member or not, as the owner of
        // partitions whose copies it may have let go over there (sim seed 34468 of `serve 2`:
        // declared dead there, it came back first and served a partition empty; seed 6941: a
        // coordinator that gave up its own merge served its old table, which still counted it
        // as a member and primary). It owns only what it vouches for.
        let base = if self.merged.is_empty() {
            base
        } else {
            // What such a node reported in sync, as primary of a partition it holds no copy
            // of, is a copy of nothing (sim seed 6013: a learner it snapshotted empty became the
            // partition's only owner and served it without the writes a merging node held).
            let merged = std::mem::take(&mut self.merged);
            self.synced.retain(|(p, _)| {
                t.primary(*p)
                    .and_then(|primary| merged.get(&primary))
                    .is_none_or(|vouched| vouched.contains(p))
            });
            Arc::new(base.without_copies(&merged))
        };
        let mut next = base.next(self.me, &members, &self.leaving, &self.synced, self.cfg.replicas);
        next.lite = self.lite.iter().copied().filter(|n| next.leaving.contains(n)).collect();
        if t.coordinator != self.me {
            // Taking over: jump past any epoch the predecessor may still publish before its
            // lease runs out (at most one per tick), so on a heal the successor's line wins.
            next.epoch = t.epoch.max(self.newest_epoch_seen).saturating_add(TAKEOVER_EPOCH_GAP);
        }
        next.epoch = next.epoch.max(self.epoch_floor().saturating_add(1));
        match self.cfg.split {
            SplitPolicy::Serve => {
                let all_alive = next.members.iter().all(|m| {
                    *m == self.me
                        || self
                            .contact
                            .get(m)
                            .is_some_and(|at| now - at <= self.cfg.heartbeat_ms * 3)
                });
                if all_alive {
                    next.stable = next.members.clone();
                }
            }
            // Under `Deny` the majorities of two stable sets need not overlap ({0,1,2} of five
            // and {3,4} of {2,3,4}), so the set a lease counts changes only to the members of a
            // table every one of them confirmed: until then, a majority of the old set is still
            // needed, which a side cut off right after publishing does not have (sim seed 8465
            // of `deny 2`: coordinator 3, cut off with node 4 just after hearing node 2,
            // published {2,3,4} as stable and leased it with 4 while 0, 1, 2 took over).
            SplitPolicy::Deny => {
                if self.confirmed_by_all(&t) {
                    next.stable = t.members.clone();
                }
            }
        }
        let next = Arc::new(next);
        info!(epoch = next.epoch, members = next.members.len(), "publishing topology");
        self.joiners.clear();
        self.forgotten.clear();
        self.merging_in.clear();
        self.dirty = false;
        self.set(now, next.clone());
        if self.cfg.split == SplitPolicy::Deny {
            // The new epoch counts once a majority has it (their pongs in it).
            self.echoes.clear();
            self.ungranted.clear();
            self.lease_until = self.majority_lease();
        }
        for &m in next.members.iter().filter(|m| **m != self.me) {
            out.push((m, MemberMsg::TopologyPush(next.clone())));
        }
        self.next_ping = now;
        next
    }

    /// Takes topology `t`, which node `from` sent (this node, for one it made).
    fn adopt(
        &mut self,
        now: u64,
        from: NodeId,
        t: Arc<Topology>,
        out: &mut Outbox,
    ) -> Option<Arc<Topology>> {
        if !t.well_formed(self.cfg.partitions) {
            warn!(epoch = t.epoch, "ignored a malformed topology from a peer");
            return None;
        }
        if let Some(target) = &self.merging {
            // Only the side this node merges into matters now.
            let same_side = t.coordinator == target.coordinator || target.is_member(t.coordinator);
            if same_side && t.supersedes(target) {
                self.merging = Some(t);
            }
            return None;
        }
        if self.is_other_side(&t) {
            self.meet(now, from, t, out);
            return None;
        }
        if from != t.coordinator && self.taken_over_without_me(now, &t) {
            // Relayed, or pulled from a member: this side's pings say nothing sure of who
            // follows whom, so it does not compete; it merges into the taker's side, its
            // copies going there first, instead of letting them go (sim seed 979 with lossy
            // nodes under `serve`: writes acknowledged by the lossy coordinator, as a
            // partition's only owner after the takeover, were lost when it adopted the table).
            if let Some(mine) = self.topology.clone() {
                warn!(
                    their_coordinator = t.coordinator,
                    "a member took over without this coordinator; merging into its side"
                );
                self.merge_into(now, mine, t, out);
            }
            return None;
        }
        if self.counted_by_taker(now, &t) {
            debug!(epoch = t.epoch, "not adopted: the other side's table, made without this node");
            return None;
        }
        if self.topology.as_ref().is_some_and(|cur| !t.supersedes(cur)) {
            return None;
        }
        debug!(epoch = t.epoch, coordinator = t.coordinator, from, "adopting topology");
        if self.cfg.split == SplitPolicy::Deny && self.epoch() != t.epoch {
            // Serve this epoch only once its coordinator, holding a majority that has it,
            // vouches for this node in it.
            self.lease_until = 0;
            self.echoes.clear();
            self.ungranted.clear();
        }
        self.set(now, t.clone());
        if self.rejoining.is_some() {
            return None; // acted on once the rejoin is over
        }
        if t.coordinator != self.me {
            // Ask for a lease in the new epoch at once rather than at the next heartbeat.
            self.next_ping = now + self.cfg.heartbeat_ms;
            out.push((
                t.coordinator,
                MemberMsg::Ping { sent_at: now, epoch: t.epoch, intent: self.intent() },
            ));
        }
        Some(t)
    }

    /// Taking over from a dead coordinator: true once this node may publish, with every member
    /// that did not answer as one of its own declared dead.
    fn take_over(&mut self, now: u64, t: &Topology) -> bool {
        let Some((since, answered)) = &self.takeover else {
            self.takeover = Some((now, BTreeSet::new()));
            self.next_ping = now;
            return false;
        };
        let silent: Vec<NodeId> = t
            .members
            .iter()
            .copied()
            .filter(|m| *m != self.me && !self.suspects.contains(m) && !answered.contains(m))
            .collect();
        if !silent.is_empty() && now.saturating_sub(*since) <= self.cfg.dead_after_ms {
            return false;
        }
        for m in silent {
            info!(node = m, "member did not answer the new coordinator; declared dead");
            self.suspects.insert(m);
        }
        true
    }

    /// Under `Deny`, taking over from a dead coordinator: true once a majority of the stable
    /// set (this node included) answered this node's pings with no newer table. Evidence of
    /// earlier contact is not enough: a node cut off with a minority, which heard the others
    /// until just before the cut, took over, and its table (numbered past every table of the
    /// old line) was adopted on the heal by the majority, which had moved on without it; the
    /// acknowledged writes of that majority's tables were then read back older (sim seed 6088
    /// of `deny 2`). Without a majority it never publishes; it follows whichever table reaches
    /// it next.
    fn take_over_with_majority(&mut self, now: u64, t: &Topology) -> bool {
        let Some((_, answered)) = &self.takeover else {
            self.takeover = Some((now, BTreeSet::new()));
            self.next_ping = now;
            return false;
        };
        let count = t.stable.iter().filter(|m| **m == self.me || answered.contains(m)).count();
        2 * count > t.stable.len()
    }

    /// True if `t` is another cluster's: its coordinator is one this node's cluster removed (the
    /// two sides of a split, each with its own coordinator).
    fn is_other_side(&self, t: &Topology) -> bool {
        let Some(mine) = self.topology.as_ref().filter(|_| self.cfg.heals_splits()) else {
            return false;
        };
        t.coordinator != mine.coordinator && !mine.is_member(t.coordinator)
    }

    /// True if `t` is the table of a member of this node's table as coordinator of a side that
    /// leaves this node, that table's coordinator, out: the member took over without it, and
    /// the two tables list each other's coordinator, so neither is [`Self::is_other_side`]'s.
    /// Sent by the taker itself (it met this side, to merge into it or as the winner), the two
    /// sides meet: adopted, the table of a taker merging into this side made this side follow
    /// the loser's, and neither ever finished (sim seed 267 of `serve`, a lossy coordinator).
    /// Relayed, this node merges into the taker's side (see `adopt`). Only while this node went
    /// on coordinating, so its side may have served writes the taker's lacks: one that woke from
    /// a pause or restarted within `dead_after_ms` served nothing since, and just takes the
    /// table (sim seed 26402: woken, a coordinator met its member's takeover, won on its stale
    /// count of followers and acknowledged a deletion alone, which the merge undid).
    fn taken_over_without_me(&self, now: u64, t: &Topology) -> bool {
        let Some(mine) = self.topology.as_ref().filter(|_| self.cfg.heals_splits()) else {
            return false;
        };
        let woke_lately =
            self.woke_at.is_some_and(|w| now.saturating_sub(w) <= self.cfg.dead_after_ms);
        t.coordinator != self.me
            && mine.coordinator == self.me
            && mine.is_member(t.coordinator)
            && !t.is_member(self.me)
            && t.supersedes(mine)
            && self.merging.is_none()
            && self.rejoining.is_none()
            && !woke_lately
    }

    /// The newest epoch of a side this one won against: the next publication goes past it.
    fn epoch_floor(&self) -> Epoch {
        self.won_against.values().copied().max().unwrap_or(0)
    }

    /// Notes that this side won against `coordinator`'s table of `epoch` (see `won_against`).
    fn note_won(&mut self, coordinator: NodeId, epoch: Epoch) {
        if self.won_against.len() >= DEPARTED_MAX && !self.won_against.contains_key(&coordinator) {
            // The oldest goes: the floor stays the newest.
            let oldest = self.won_against.iter().min_by_key(|(_, e)| **e).map(|(c, _)| *c);
            if let Some(c) = oldest {
                self.won_against.remove(&c);
            }
        }
        let newest = self.won_against.entry(coordinator).or_insert(0);
        *newest = (*newest).max(epoch);
    }

    /// True if `t` is a table of this node's coordinator that leaves this node out, come while
    /// another member that counts this node in takes over from that coordinator: the two sides
    /// of a split. Adopted, `t` would make this node drop its copies, which the taker's table is
    /// about to count as complete (that table made the node primary of an emptied copy, which
    /// then overwrote the other owner's, sim seed 57403 of `serve 2`); once it is published, `t`
    /// is the other side's and the two merge. A taker not heard as such for `dead_after_ms` has
    /// given up (or died), and `t` is followed.
    fn counted_by_taker(&self, now: u64, t: &Topology) -> bool {
        let (Some((taker, at)), Some(mine)) = (self.taker, &self.topology) else { return false };
        self.cfg.heals_splits()
            && t.coordinator == mine.coordinator
            && taker != t.coordinator
            && !t.is_member(self.me)
            && now.saturating_sub(at) <= self.cfg.dead_after_ms
    }

    /// This node meets `theirs`, the other side of a healed split: the side with more members
    /// (on a tie, the lower coordinator id) stays, the other merges into it. A member both list
    /// counts for the side whose coordinator it pings: a stale topology (of a node that was
    /// paused or cut off) still lists nodes that have long followed another coordinator.
    fn meet(&mut self, now: u64, from: NodeId, theirs: Arc<Topology>, out: &mut Outbox) {
        let Some(mine) = self.topology.clone() else { return };
        let coordinator = self.is_coordinator();
        // Only a member both tables list is in doubt. A coordinator that took over a moment ago
        // has not been pinged yet by the members that answered its takeover (they pinged their
        // old coordinator until its table came), and must not count them out: it would lose to
        // a side it outnumbers while that side, counting right, merges into it, and neither
        // would ever publish again.
        let ours: BTreeSet<NodeId> = mine
            .members
            .iter()
            .copied()
            .filter(|m| {
                *m == self.me
                    || !coordinator
                    || !theirs.is_member(*m)
                    || self.pinged.get(m).is_some_and(|at| now - at <= self.cfg.dead_after_ms)
            })
            .collect();
        let their_own = theirs.members.iter().filter(|m| !ours.contains(m)).count();
        let rank_ours = (ours.len(), std::cmp::Reverse(mine.coordinator));
        let rank_theirs = (their_own, std::cmp::Reverse(theirs.coordinator));
        // This side's coordinator has gone over to the other side already (which left this
        // node out), as it says by sending that side's table. Another node's copy may be from
        // before that side declared this coordinator dead, delivered late: believed, it sent
        // this node to merge into a side that was itself merging into this one (sim seed 1265,
        // a lossy node).
        let deserted = from == mine.coordinator
            && mine.coordinator != self.me
            && theirs.is_member(mine.coordinator)
            && !theirs.is_member(self.me);
        // Once this side won against that table it keeps winning: the members merging in from
        // there are no longer this side's, and counted afresh this side could lose to the table
        // of a side that is itself merging into it (sim seed 6770 with lossy nodes under
        // `serve`: each merged into the other, for good).
        let won_before =
            self.won_against.get(&theirs.coordinator).is_some_and(|e| *e >= theirs.epoch);
        if (rank_ours > rank_theirs || won_before) && !deserted {
            if self.epoch_floor() < theirs.epoch {
                info!(
                    their_coordinator = theirs.coordinator,
                    their_members = theirs.members.len(),
                    "met the other side of a split; it merges into this one"
                );
                self.dirty = true;
            }
            self.note_won(theirs.coordinator, theirs.epoch);
            out.push((theirs.coordinator, MemberMsg::TopologyPush(mine)));
            return;
        }
        warn!(
            their_coordinator = theirs.coordinator,
            their_members = theirs.members.len(),
            our_members = mine.members.len(),
            "met the other side of a split; merging into it"
        );
        self.merge_into(now, mine, theirs, out);
    }

    /// The side this node merges into is itself merging (its coordinator answers `Hello` as
    /// unsettled), maybe into this one: neither could ever finish, as each refuses the other's
    /// data while it merges (sim seed 11784). Of two such sides, the one with the higher
    /// coordinator id gives up its merge and serves its table again, publishing past the other's
    /// epoch; the other goes on. (One merging into a third side is given up on the same rule;
    /// the two meet again once that side has settled.)
    fn abort_mutual_merge(&mut self, now: u64) {
        let (Some(target), Some(left)) = (self.merging.clone(), self.left.clone()) else {
            return;
        };
        if left.coordinator < target.coordinator {
            return;
        }
        warn!(
            their_coordinator = target.coordinator,
            "the side this node merges into is merging too; serving this side again"
        );
        self.merging = None;
        self.left = None;
        self.note_won(target.coordinator, target.epoch);
        self.dirty = true;
        self.grace_all(now);
    }

    /// Stops serving `mine` and merges this node's data into `theirs`, the other side's table.
    fn merge_into(
        &mut self,
        now: u64,
        mine: Arc<Topology>,
        theirs: Arc<Topology>,
        out: &mut Outbox,
    ) {
        metrics::counter!("sessiongrid_cluster_merges_total").increment(1);
        for &m in mine.members.iter().filter(|m| **m != self.me) {
            out.push((m, MemberMsg::TopologyPush(theirs.clone())));
        }
        // So the other side learns this side's epoch and publishes past it (sent again at every
        // heartbeat until it has). Not by a node other than this side's coordinator when the
        // other side lists that coordinator as a member: the other side's coordinator would take
        // it for its member's takeover relayed by one of its own, and may only meet it when that
        // member sends it itself (adopting it made the winner follow the loser's table, sim seed
        // 4144 with lossy nodes under `serve`; meeting any such table made a paused
        // coordinator merge its copies on every heal, and lose writes).
        if mine.coordinator == self.me || !theirs.is_member(mine.coordinator) {
            out.push((theirs.coordinator, MemberMsg::TopologyPush(mine.clone())));
        }
        // A node its side did not count in served nothing there: it need not wait.
        self.left = mine.is_member(self.me).then_some(mine);
        self.rejoining = None;
        self.lease_until = 0;
        self.grace_all(now);
        self.merging = Some(theirs);
    }

    /// Since when each learner of `t` has been one: for one that was a learner of the same
    /// partition in the table `t` directly follows (the next epoch of one coordinator), as long
    /// as it was there; otherwise from `t`.
    fn learners_since(&self, t: &Topology) -> BTreeMap<(PartitionId, NodeId), Epoch> {
        let before = self.topology.as_ref().filter(|old| {
            old.coordinator == t.coordinator && old.epoch.checked_add(1) == Some(t.epoch)
        });
        let mut since = BTreeMap::new();
        for (p, a) in t.partitions.iter().enumerate() {
            let p = p as PartitionId;
            for n in a.learners() {
                let kept = before
                    .filter(|old| old.assignment(p).is_some_and(|o| o.learners().any(|l| l == n)))
                    .and_then(|_| self.learning_since.get(&(p, n)).copied());
                since.insert((p, n), kept.unwrap_or(t.epoch));
            }
        }
        since
    }

    fn set(&mut self, now: u64, t: Arc<Topology>) {
        if let Some(old) = &self.topology {
            let dead = old.members.iter().filter(|m| {
                **m != self.me && !t.is_member(**m) && old.leaving.binary_search(m).is_err()
            });
            self.departed.extend(dead);
        }
        for m in &t.members {
            self.departed.remove(m);
        }
        while self.departed.len() > DEPARTED_MAX {
            self.departed.pop_first();
        }
        self.takeover = None;
        self.taker = None;
        self.suspects.clear();
        // A learner is reported in sync under one table. Kept through other coordinators' tables
        // (this node merged into another side, say, then took over there), the report could make
        // a node that has dropped its copy since an owner, even the primary.
        self.synced.clear();
        self.no_copy.clear();
        // A list heard under another table says nothing about this one's owners.
        self.merged.clear();
        self.learning_since = self.learners_since(&t);
        self.heard.insert(t.coordinator, now);
        for &m in &t.members {
            self.heard.entry(m).or_insert(now);
        }
        self.topology = Some(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_topology_from_a_peer_is_ignored() {
        let cfg = Arc::new(ClusterConfig { partitions: 4, ..ClusterConfig::default() });
        let mut m = Membership::new(1, cfg, true, None, 0);
        let mut out = Outbox::new();
        let mut unsorted = Topology::founded_by(9, 4);
        unsorted.members = vec![9, 3];
        m.receive(1, 9, MemberMsg::TopologyPush(Arc::new(unsorted)), &mut out);
        let mut short = Topology::founded_by(9, 3);
        short.members = vec![9];
        m.receive(2, 9, MemberMsg::TopologyPush(Arc::new(short)), &mut out);
        assert!(m.topology().is_none(), "neither is adopted");
        m.receive(3, 9, MemberMsg::TopologyPush(Arc::new(Topology::founded_by(9, 4))), &mut out);
        assert_eq!(m.epoch(), 1, "a well-formed one is");
    }

    /// Node 1 founded a one-partition cluster that node 2 joined (at time 1) as its learner.
    fn founder_with_learner_2() -> (Membership, Outbox) {
        let cfg =
            Arc::new(ClusterConfig { partitions: 1, replicas: 2, ..ClusterConfig::default() });
        let mut m = Membership::new(1, cfg, false, None, 0);
        let mut out = Outbox::new();
        m.tick(0, &mut out);
        m.receive(1, 2, MemberMsg::Ping { sent_at: 1, epoch: 1, intent: Intent::Stay }, &mut out);
        m.tick(10, &mut out);
        (m, out)
    }

    #[test]
    fn a_node_pinging_with_an_older_epoch_is_sent_the_table_before_it_may_join() {
        let (mut m, mut out) = founder_with_learner_2();
        let epoch = m.epoch();
        out.clear();
        // Node 3 was never declared dead here: a late ping of an old table is still no join.
        let old = MemberMsg::Ping { sent_at: 20, epoch: epoch - 1, intent: Intent::Stay };
        m.receive(20, 3, old, &mut out);
        let pushed = out.iter().any(|(to, msg)| {
            *to == 3 && matches!(msg, MemberMsg::TopologyPush(t) if t.epoch == epoch)
        });
        assert!(pushed, "node 3 is sent the current table");
        m.tick(30, &mut out);
        assert_eq!(m.epoch(), epoch, "node 3 is not a joiner yet");
        let current = MemberMsg::Ping { sent_at: 40, epoch, intent: Intent::Stay };
        m.receive(40, 3, current, &mut out);
        m.tick(50, &mut out);
        assert!(m.topology().unwrap().is_member(3), "with the current table it joins");
    }

    #[test]
    fn only_the_primary_reports_a_learner_in_sync() {
        let (mut m, mut out) = founder_with_learner_2();
        let epoch = m.epoch();
        let learners: Vec<NodeId> = m.topology().unwrap().partitions[0].learners().collect();
        assert_eq!(learners, vec![2]);
        // Node 3 was primary under a table that is not this one: its word is not the primary's.
        let synced = MemberMsg::Synced { partition: 0, node: 2, as_of: epoch };
        m.receive(20, 3, synced.clone(), &mut out);
        m.tick(30, &mut out);
        assert_eq!(m.epoch(), epoch, "nothing to publish");
        m.receive(40, 1, synced, &mut out);
        m.tick(50, &mut out);
        assert!(m.topology().unwrap().partitions[0].owners.contains(&2));
    }

    #[test]
    fn a_learner_left_out_and_back_counts_only_as_in_sync_under_a_table_since() {
        let (mut m, mut out) = founder_with_learner_2();
        let first = m.epoch();
        // Node 2 falls silent and is declared dead; it comes back and learns again.
        for now in (100..=1200).step_by(100) {
            m.tick(now, &mut out);
        }
        assert!(!m.topology().unwrap().is_member(2));
        let without = m.epoch();
        let ping = |epoch| MemberMsg::Ping { sent_at: 1300, epoch, intent: Intent::Stay };
        m.receive(1300, 2, ping(without), &mut out);
        m.tick(1310, &mut out);
        let back = m.epoch();
        assert!(m.topology().unwrap().partitions[0].learners().any(|n| n == 2));
        // Its primary, which never saw the table without it, reports it in sync on what it
        // acknowledged before: it has dropped that copy since.
        m.receive(1320, 1, MemberMsg::Synced { partition: 0, node: 2, as_of: first }, &mut out);
        m.tick(1330, &mut out);
        assert_eq!(m.epoch(), back, "nothing to publish");
        // Acknowledged under the table that took it back, it counts, in that table's
        // successors too (node 3 joins meanwhile).
        m.receive(
            1340,
            3,
            MemberMsg::Ping { sent_at: 1340, epoch: back, intent: Intent::Stay },
            &mut out,
        );
        m.tick(1345, &mut out);
        assert_eq!(m.epoch(), back + 1);
        assert!(m.topology().unwrap().partitions[0].learners().any(|n| n == 2));
        m.receive(1350, 1, MemberMsg::Synced { partition: 0, node: 2, as_of: back }, &mut out);
        m.tick(1360, &mut out);
        assert!(m.topology().unwrap().partitions[0].owners.contains(&2));
    }

    #[test]
    fn a_learner_reported_in_sync_under_one_table_is_forgotten_with_it() {
        let (mut m, mut out) = founder_with_learner_2();
        let as_of = m.epoch();
        m.receive(20, 1, MemberMsg::Synced { partition: 0, node: 2, as_of }, &mut out);
        assert!(m.synced.contains(&(0, 2)));
        // Before it publishes, node 2 takes over (node 1 was paused, say) and node 1 follows
        // its table. Should node 1 take over again later, its report says nothing by then: 2
        // may have dropped its copy under 2's tables.
        let mut theirs = Topology::founded_by(2, 1);
        theirs.members = vec![1, 2];
        theirs.epoch = m.epoch() + TAKEOVER_EPOCH_GAP;
        m.receive(30, 2, MemberMsg::TopologyPush(Arc::new(theirs)), &mut out);
        assert_eq!(m.coordinator(), Some(2));
        assert!(m.synced.is_empty(), "{:?}", m.synced);
    }

    #[test]
    fn a_new_coordinator_counts_the_members_only_its_table_lists() {
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let mut m = Membership::new(4, cfg, true, None, 0);
        let mut out = Outbox::new();
        // Node 4 just published its first table; nodes 1 and 2 have not pinged it yet.
        let mut mine = Topology::founded_by(4, 1);
        mine.members = vec![1, 2, 4];
        mine.epoch = TAKEOVER_EPOCH_GAP + 5;
        m.receive(1, 1, MemberMsg::TopologyPush(Arc::new(mine)), &mut out);
        // Its old coordinator, 3, cut off and healed, published a table of its own alone.
        let mut theirs = Topology::founded_by(3, 1);
        theirs.epoch = 12;
        m.receive(2, 1, MemberMsg::TopologyPush(Arc::new(theirs)), &mut out);
        assert!(m.merging().is_none(), "three members do not merge into one");
        assert_eq!(m.epoch_floor(), 12, "the other side merges into this one");
    }

    /// Coordinator 1 of members 1-4 (four partitions), at time 10.
    fn coordinator_of_four() -> (Membership, Outbox) {
        let cfg = Arc::new(ClusterConfig { partitions: 4, ..ClusterConfig::default() });
        let mut m = Membership::new(1, cfg, false, None, 0);
        let mut out = Outbox::new();
        m.tick(0, &mut out);
        for n in [2, 3, 4] {
            m.receive(
                1,
                n,
                MemberMsg::Ping { sent_at: 1, epoch: 1, intent: Intent::Stay },
                &mut out,
            );
        }
        m.tick(10, &mut out);
        assert_eq!(m.topology().unwrap().members, vec![1, 2, 3, 4]);
        (m, out)
    }

    #[test]
    fn a_member_merging_in_from_the_other_side_is_left_out_until_it_joins_again() {
        let (mut m, mut out) = coordinator_of_four();
        // Node 3 served the other side of a split (coordinator 9's, which lists it) and merges
        // into this one, which still counts it: it pushes its side's table here.
        m.receive(20, 3, MemberMsg::TopologyPush(table_of(4, 9, vec![3, 9], 7)), &mut out);
        assert!(m.merging().is_none(), "this side stays");
        m.tick(30, &mut out);
        let t = m.topology().unwrap().clone();
        assert_eq!(t.members, vec![1, 2, 4], "it serves nothing while it merges");
        assert!(t.epoch > 7);
        // Merged, it pings with this side's table and joins again.
        m.receive(
            40,
            3,
            MemberMsg::Ping { sent_at: 40, epoch: t.epoch, intent: Intent::Stay },
            &mut out,
        );
        m.tick(50, &mut out);
        assert_eq!(m.topology().unwrap().members, vec![1, 2, 3, 4]);
    }

    /// The coordinator of four with every learner reported in sync: each partition has two
    /// owners.
    fn coordinator_of_four_in_sync() -> (Membership, Outbox) {
        let (mut m, mut out) = coordinator_of_four();
        let t = m.topology().unwrap().clone();
        for (p, a) in t.partitions.iter().enumerate() {
            for node in a.learners() {
                let synced =
                    MemberMsg::Synced { partition: p as PartitionId, node, as_of: t.epoch };
                m.receive(11, a.primary().unwrap(), synced, &mut out);
            }
        }
        m.tick(12, &mut out);
        let t = m.topology().unwrap();
        assert!(t.partitions.iter().all(|a| a.owners.len() == 2), "{t:?}");
        (m, out)
    }

    #[test]
    fn a_node_merged_in_owns_only_the_copies_it_vouches_for_member_or_not() {
        let (mut m, mut out) = coordinator_of_four_in_sync();
        let ours = m.topology().unwrap().clone();
        let of = |n: NodeId| -> Vec<PartitionId> {
            (0..4).filter(|p| ours.partitions[*p as usize].owners.contains(&n)).collect()
        };
        let (with_3, with_4) = (of(3), of(4));
        assert!(with_3.len() >= 2 && !with_4.is_empty(), "{ours:?}");
        // Node 3, still a member here, followed the other side of a split, let all but one
        // of its copies go there and merged back; node 4, left out meanwhile, kept none.
        m.receive(20, 3, MemberMsg::Merged { vouched: vec![with_3[0]] }, &mut out);
        m.receive(20, 4, MemberMsg::Merged { vouched: Vec::new() }, &mut out);
        m.tick(30, &mut out);
        let t = m.topology().unwrap().clone();
        assert!(t.epoch > ours.epoch);
        let kept = with_3[0];
        for p in with_3 {
            let owners = &t.partitions[p as usize].owners;
            assert_eq!(owners.contains(&3), p == kept || owners == &vec![3], "{p}: {t:?}");
        }
        for p in with_4 {
            let owners = &t.partitions[p as usize].owners;
            assert!(!owners.contains(&4) || owners == &vec![4], "{p}: {t:?}");
        }
        assert!(m.merged.is_empty(), "applied once");
    }

    #[test]
    fn a_learner_reported_in_sync_by_a_primary_merged_in_without_that_copy_owns_nothing() {
        let (mut m, mut out) = coordinator_of_four();
        let t = m.topology().unwrap().clone();
        let (p, a) = t
            .partitions
            .iter()
            .enumerate()
            .find(|(_, a)| a.learners().next().is_some())
            .expect("a partition with a learner");
        let (p, primary, learner) =
            (p as PartitionId, a.primary().unwrap(), a.learners().next().unwrap());
        m.receive(
            11,
            primary,
            MemberMsg::Synced { partition: p, node: learner, as_of: t.epoch },
            &mut out,
        );
        // The primary merged in from the other side of a split, without a copy of `p`: what
        // it snapshotted to the learner was nothing.
        m.receive(12, primary, MemberMsg::Merged { vouched: Vec::new() }, &mut out);
        m.tick(20, &mut out);
        let next = m.topology().unwrap().clone();
        assert!(next.epoch > t.epoch);
        assert!(!next.partitions[p as usize].owners.contains(&learner), "{next:?}");
    }

    #[test]
    fn a_primary_with_no_copy_becomes_a_learner_where_another_member_owns_the_partition() {
        let (mut m, mut out) = coordinator_of_four_in_sync();
        let ours = m.topology().unwrap().clone();
        let a = ours.partitions[0].clone();
        let (primary, other) = (a.owners[0], a.owners[1]);
        // Only the partition's primary is heard.
        m.receive(20, other, MemberMsg::NoCopy { partition: 0 }, &mut out);
        m.tick(30, &mut out);
        assert_eq!(m.topology().unwrap().epoch, ours.epoch, "nothing to publish");
        m.receive(40, primary, MemberMsg::NoCopy { partition: 0 }, &mut out);
        m.tick(50, &mut out);
        let t = m.topology().unwrap().clone();
        assert_eq!(t.partitions[0].owners, vec![other]);
        assert!(t.partitions[0].target.contains(&primary), "a learner next: {t:?}");
    }

    #[test]
    fn a_member_following_the_other_sides_table_that_left_it_out_is_no_owner_here() {
        let (mut m, mut out) = coordinator_of_four();
        // Cut off from this side, node 3 followed coordinator 9's side, which declared it dead
        // (so it dropped its copies), and merges into this one, which still counts it.
        m.receive(20, 3, MemberMsg::TopologyPush(table_of(4, 9, vec![8, 9], 7)), &mut out);
        m.tick(30, &mut out);
        let t = m.topology().unwrap().clone();
        assert_eq!(t.members, vec![1, 2, 4], "it owns no copy here until it learns again");
    }

    #[test]
    fn a_member_merges_away_when_its_coordinator_says_so_and_follows_where_that_side_goes() {
        let (mut m, _) = member_of_1(2, vec![1, 2, 3]);
        let mut out = Outbox::new();
        // The other side's table lists coordinator 1 but not node 2, as it did before it
        // declared node 1 dead: a late copy from one of its nodes says nothing of node 1.
        let theirs = table(9, vec![1, 9], 3);
        m.receive(10, 9, MemberMsg::TopologyPush(theirs.clone()), &mut out);
        assert!(m.merging().is_none(), "this side counts three to their one");
        // Node 1 itself sends it: it has gone over, and node 2 merges into that side.
        m.receive(20, 1, MemberMsg::TopologyPush(theirs), &mut out);
        assert_eq!(m.merging().map(|t| t.coordinator), Some(9));
        // That side merges into coordinator 7's meanwhile, which node 9 joins: the data goes
        // there now. Another node's word for it is not enough.
        let third = table(7, vec![1, 7, 9], 40);
        m.receive(30, 1, MemberMsg::TopologyPush(third.clone()), &mut out);
        assert_eq!(m.merging().map(|t| t.coordinator), Some(9));
        m.receive(40, 9, MemberMsg::TopologyPush(third), &mut out);
        assert_eq!(m.merging().map(|t| t.coordinator), Some(7));
    }

    #[test]
    fn a_coordinator_meets_the_table_of_a_member_that_took_over_without_it() {
        let (mut m, _) = member_of_1(1, vec![1, 2, 3]);
        let mut out = Outbox::new();
        m.receive(10, 3, MemberMsg::Ping { sent_at: 10, epoch: 5, intent: Intent::Stay }, &mut out);
        // Node 2 took over alone (a lossy link), jumping the epoch, and sends its table.
        let theirs = table(2, vec![2], 5 + TAKEOVER_EPOCH_GAP);
        m.receive(30, 2, MemberMsg::TopologyPush(theirs.clone()), &mut out);
        assert_eq!(m.topology().unwrap().coordinator, 1, "not adopted: the other side's");
        assert!(m.merging().is_none(), "this side counts two to its one");
        m.tick(40, &mut out);
        assert!(m.epoch() > theirs.epoch, "published past it, for node 2 to merge into");
        assert!(m.is_coordinator());
    }

    #[test]
    fn a_coordinator_woken_from_a_pause_takes_its_members_takeover_heard_before_its_next_tick() {
        let (mut m, _) = member_of_1(1, vec![1, 2, 3]);
        let mut out = Outbox::new();
        m.tick(10, &mut out);
        m.receive(20, 3, MemberMsg::Ping { sent_at: 20, epoch: 5, intent: Intent::Stay }, &mut out);
        // Paused from 20 to 2000: node 2 took over meanwhile, with node 3. Its table is the
        // first thing node 1 handles on waking, before any tick: it served nothing since, so
        // it takes the table rather than meet it as the other side (and win on a stale count).
        let theirs = table(2, vec![2, 3], 5 + TAKEOVER_EPOCH_GAP);
        m.receive(2000, 2, MemberMsg::TopologyPush(theirs), &mut out);
        assert!(m.merging().is_none());
        assert_eq!(m.topology().unwrap().coordinator, 2);
        assert!(!m.is_coordinator());
    }

    #[test]
    fn a_side_that_won_against_a_table_keeps_winning_against_it() {
        let (mut m, _) = member_of_1(1, vec![1, 2, 3]);
        let mut out = Outbox::new();
        let ping = |at| MemberMsg::Ping { sent_at: at, epoch: 5, intent: Intent::Stay };
        m.receive(10, 2, ping(10), &mut out);
        m.receive(10, 3, ping(10), &mut out);
        // The other side's table still lists nodes 2 and 3, which ping node 1: it merges here.
        let theirs = table(9, vec![2, 3, 9], 3);
        m.receive(20, 9, MemberMsg::TopologyPush(theirs.clone()), &mut out);
        assert!(m.merging().is_none());
        // Sent again by a node merging from there, long after nodes 2 and 3 last pinged node 1
        // (they merge in, say): counted afresh, node 1's side would be the smaller one now.
        m.receive(5000, 9, MemberMsg::TopologyPush(theirs), &mut out);
        assert!(m.merging().is_none(), "still the winner");
    }

    #[test]
    fn a_coordinator_merges_into_a_takeover_relayed_to_it_unless_it_was_paused() {
        let taker = |epoch| table(2, vec![2, 3], epoch);
        // Node 3 relays the table of node 2, which took over without node 1: node 1's side may
        // have served writes meanwhile, so it merges into node 2's side rather than drop them.
        let (mut m, _) = member_of_1(1, vec![1, 2, 3]);
        let mut out = Outbox::new();
        m.tick(10, &mut out);
        m.receive(20, 3, MemberMsg::TopologyPush(taker(5 + TAKEOVER_EPOCH_GAP)), &mut out);
        assert_eq!(m.merging().map(|t| t.coordinator), Some(2));
        // Woken from a pause, it served nothing since: it takes the table.
        let (mut m, _) = member_of_1(1, vec![1, 2, 3]);
        m.tick(10, &mut out);
        m.tick(2000, &mut out);
        m.receive(2010, 3, MemberMsg::TopologyPush(taker(5 + TAKEOVER_EPOCH_GAP)), &mut out);
        assert!(m.merging().is_none());
        assert_eq!(m.topology().unwrap().coordinator, 2);
    }

    #[test]
    fn of_two_sides_merging_into_each_other_the_higher_coordinator_gives_up() {
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let mut m = Membership::new(5, cfg, true, None, 0);
        let mut out = Outbox::new();
        m.receive(0, 5, MemberMsg::TopologyPush(table(5, vec![3, 4, 5], 5)), &mut out);
        m.tick(10, &mut out);
        let theirs = table(3, vec![3, 4], 5 + TAKEOVER_EPOCH_GAP);
        m.receive(20, 4, MemberMsg::TopologyPush(theirs.clone()), &mut out);
        assert_eq!(m.merging().map(|t| t.coordinator), Some(3));
        // Node 3's side is merging too (into this one): node 5, the higher id, stops.
        let welcome = MemberMsg::Welcome { topology: Some(theirs.clone()), settled: false };
        m.receive(30, 3, welcome, &mut out);
        assert!(m.merging().is_none(), "merge given up");
        m.tick(40, &mut out);
        assert!(m.is_coordinator());
        assert!(m.epoch() > theirs.epoch, "published past the other side's table");
    }

    #[test]
    fn a_member_merging_away_leaves_its_coordinators_table_for_its_coordinator_to_send() {
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let mut m = Membership::new(3, cfg, true, None, 0);
        let mut out = Outbox::new();
        // Node 3 follows node 2, which took over without node 1; node 1's table still lists 2.
        let ours = table(2, vec![2, 3], 5 + TAKEOVER_EPOCH_GAP);
        m.receive(0, 2, MemberMsg::TopologyPush(ours.clone()), &mut out);
        out.clear();
        m.receive(10, 1, MemberMsg::TopologyPush(table(1, vec![1, 2, 4, 5], 9)), &mut out);
        assert_eq!(m.merging().map(|t| t.coordinator), Some(1), "three to two: it merges");
        // Node 1 would adopt node 2's table from node 3 (node 2 is its member): only node 2
        // sends it, which node 1 meets as the other side's.
        let relayed = out.iter().any(|(to, msg)| {
            *to == 1 && matches!(msg, MemberMsg::TopologyPush(t) if t.coordinator == 2)
        });
        assert!(!relayed, "{out:?}");
    }

    /// A one-partition table of `coordinator` with `members`, numbered `epoch`.
    fn table(coordinator: NodeId, members: Vec<NodeId>, epoch: Epoch) -> Arc<Topology> {
        table_of(1, coordinator, members, epoch)
    }

    /// A table of `partitions` partitions of `coordinator` with `members`, numbered `epoch`.
    fn table_of(
        partitions: u16,
        coordinator: NodeId,
        members: Vec<NodeId>,
        epoch: Epoch,
    ) -> Arc<Topology> {
        let mut t = Topology::founded_by(coordinator, partitions);
        t.members = members;
        t.epoch = epoch;
        Arc::new(t)
    }

    /// Node `me`, a member of coordinator 1's table of `members` (one partition), as adopted at
    /// time 0.
    fn member_of_1(me: NodeId, members: Vec<NodeId>) -> (Membership, Arc<Topology>) {
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let mut m = Membership::new(me, cfg, true, None, 0);
        let t = table(1, members, 5);
        m.receive(0, 1, MemberMsg::TopologyPush(t.clone()), &mut Outbox::new());
        assert_eq!(m.epoch(), 5);
        (m, t)
    }

    #[test]
    fn a_takeover_waits_for_answers_even_if_the_table_is_dirty_already() {
        let (mut m, _) = member_of_1(2, vec![1, 2, 3]);
        let mut out = Outbox::new();
        // Long ago, as a member, node 2 met a smaller other side, which merges into this one:
        // that marks the table for a new epoch, which only a coordinator publishes.
        let mut theirs = Topology::founded_by(9, 1);
        theirs.epoch = 7;
        m.receive(10, 9, MemberMsg::TopologyPush(Arc::new(theirs)), &mut out);
        assert!(m.merging().is_none() && m.dirty);
        // Coordinator 1 falls silent with node 3; node 2, the lowest left, takes over.
        for now in (20..=1030).step_by(10) {
            m.tick(now, &mut out);
        }
        assert!(m.is_coordinator());
        assert_eq!(m.epoch(), 5, "nothing published before node 3 answered");
        assert!(out.iter().any(|(to, msg)| *to == 3 && matches!(msg, MemberMsg::Ping { .. })));
        let pong = MemberMsg::Pong { echo: 1040, epoch: 5, coordinator: 2, member: true };
        m.receive(1045, 3, pong, &mut out);
        m.tick(1050, &mut out);
        let t = m.topology().unwrap();
        assert!(t.epoch > 5 && t.coordinator == 2);
        assert_eq!(t.members, vec![2, 3], "node 3 answered, the old coordinator did not");
    }

    #[test]
    fn a_member_a_takeover_counts_keeps_out_of_its_old_coordinators_table_without_it() {
        // Node 3 lost coordinator 1 and follows node 2, which takes over and answers as its
        // coordinator: its table will count node 3 and its copies.
        let (mut m, mine) = member_of_1(3, vec![1, 2, 3]);
        let mut out = Outbox::new();
        for now in (10..=1020).step_by(10) {
            m.tick(now, &mut out);
        }
        assert_eq!(m.coordinator(), Some(2));
        let pong = MemberMsg::Pong { echo: 1020, epoch: 5, coordinator: 2, member: true };
        m.receive(1025, 2, pong, &mut out);
        // Coordinator 1, cut off with node 4, declared nodes 2 and 3 dead meanwhile. Its table
        // would make node 3 drop its copies: it is the other side of a split.
        let mut without = Topology::clone(&mine);
        without.members = vec![1, 4];
        without.epoch = 9;
        let without = Arc::new(without);
        m.receive(1030, 4, MemberMsg::TopologyPush(without.clone()), &mut out);
        assert_eq!(m.epoch(), 5, "not adopted while the takeover counts node 3");
        // The takeover's table comes; the other side's is then met as such.
        let mut taken = Topology::clone(&mine);
        taken.coordinator = 2;
        taken.members = vec![2, 3];
        taken.epoch = 5 + TAKEOVER_EPOCH_GAP;
        m.receive(1040, 2, MemberMsg::TopologyPush(Arc::new(taken)), &mut out);
        assert_eq!(m.epoch(), 5 + TAKEOVER_EPOCH_GAP);
        // A taker that falls silent has given up (or died): the table is followed then.
        let (mut m, _) = member_of_1(3, vec![1, 2, 3]);
        for now in (10..=1020).step_by(10) {
            m.tick(now, &mut out);
        }
        let pong = MemberMsg::Pong { echo: 1020, epoch: 5, coordinator: 2, member: true };
        m.receive(1025, 2, pong, &mut out);
        m.receive(1025 + 1001, 4, MemberMsg::TopologyPush(without), &mut out);
        assert_eq!(m.epoch(), 9);
    }

    fn deny(partitions: u16) -> Arc<ClusterConfig> {
        Arc::new(ClusterConfig { partitions, split: SplitPolicy::Deny, ..ClusterConfig::default() })
    }

    fn pong(echo: u64, epoch: Epoch, coordinator: NodeId) -> MemberMsg {
        MemberMsg::Pong { echo, epoch, coordinator, member: true }
    }

    #[test]
    fn under_deny_a_table_becomes_the_stable_set_once_every_member_confirmed_it() {
        let mut m = Membership::new(1, deny(1), false, None, 0);
        let mut out = Outbox::new();
        m.tick(0, &mut out);
        for n in [2, 3] {
            m.receive(
                1,
                n,
                MemberMsg::Ping { sent_at: 1, epoch: 1, intent: Intent::Stay },
                &mut out,
            );
        }
        m.tick(10, &mut out);
        let joined = m.topology().unwrap().clone();
        assert_eq!((joined.members.clone(), joined.stable.clone()), (vec![1, 2, 3], vec![1]));
        m.receive(15, 2, pong(10, joined.epoch, 1), &mut out);
        m.tick(20, &mut out);
        assert_eq!(m.epoch(), joined.epoch, "node 3 has not confirmed it yet");
        m.receive(25, 3, pong(20, joined.epoch, 1), &mut out);
        m.tick(30, &mut out);
        let stable = m.topology().unwrap().clone();
        assert_eq!(stable.stable, vec![1, 2, 3]);
        // Node 3 falls silent; node 2 keeps answering.
        let mut now = 30;
        while m.topology().unwrap().members.len() == 3 {
            now += 10;
            m.receive(now, 2, pong(now, m.epoch(), 1), &mut out);
            m.tick(now, &mut out);
            assert!(now < 2000, "node 3 is declared dead");
        }
        let shrunk = m.topology().unwrap().clone();
        assert_eq!((shrunk.members.clone(), shrunk.stable.clone()), (vec![1, 2], vec![1, 2, 3]));
        assert!(!m.lease_valid(now), "a majority of {{1, 2, 3}} has not confirmed {{1, 2}} yet");
        m.receive(now + 5, 2, pong(now, shrunk.epoch, 1), &mut out);
        assert!(m.lease_valid(now + 5));
        m.tick(now + 10, &mut out);
        assert_eq!(m.topology().unwrap().stable, vec![1, 2], "confirmed by all");
    }

    /// Node 2, a member of coordinator 1's stable table of five under `Deny` (epoch 5).
    fn member_2_of_five_under_deny() -> (Membership, Outbox) {
        let mut m = Membership::new(2, deny(1), true, None, 0);
        let mut out = Outbox::new();
        let mut t = Topology::founded_by(1, 1);
        t.members = vec![1, 2, 3, 4, 5];
        t.stable = t.members.clone();
        t.epoch = 5;
        m.receive(0, 1, MemberMsg::TopologyPush(Arc::new(t)), &mut out);
        (m, out)
    }

    #[test]
    fn under_deny_a_takeover_publishes_only_once_a_majority_answered_it() {
        let (mut m, mut out) = member_2_of_five_under_deny();
        // Nodes 3, 4 and 5 were heard just before node 2 was cut off with coordinator 1 gone:
        // earlier contact with a majority, and nobody answering now.
        for now in (10..=980).step_by(10) {
            m.tick(now, &mut out);
        }
        for n in [3, 4, 5] {
            m.receive(990, n, pong(980, 5, 1), &mut out);
        }
        for now in (990..=1900).step_by(10) {
            m.tick(now, &mut out);
        }
        assert!(m.is_coordinator(), "node 2 takes over");
        assert_eq!(m.epoch(), 5, "but publishes nothing without a majority answering");
        m.receive(1905, 3, pong(1900, 5, 2), &mut out);
        m.receive(1905, 4, pong(1900, 5, 1), &mut out);
        m.tick(1910, &mut out);
        assert_eq!(m.epoch(), 5, "node 4 still follows node 1: two of five follow node 2");
        m.receive(1915, 5, pong(1910, 5, 2), &mut out);
        m.tick(1920, &mut out);
        let taken = m.topology().unwrap();
        assert!(taken.epoch > 5 && taken.coordinator == 2, "three of five answered");
    }

    #[test]
    fn under_deny_a_member_taking_over_counts_no_lease_from_members_that_follow_another() {
        let (mut m, mut out) = member_2_of_five_under_deny();
        // Node 2 stops hearing coordinator 1 (a lossy link) and takes over; the others still
        // hear node 1 and answer node 2's pings as its members.
        for now in (10..=1900).step_by(10) {
            m.tick(now, &mut out);
        }
        assert!(m.is_coordinator(), "node 2 takes over");
        for n in [3, 4, 5] {
            m.receive(1905, n, pong(1900, 5, 1), &mut out);
        }
        assert!(!m.lease_valid(1910), "their answers are node 1's lease, not node 2's");
        for n in [3, 4] {
            m.receive(1915, n, pong(1910, 5, 2), &mut out);
        }
        assert!(m.lease_valid(1920), "two of five follow node 2: with it, a majority");
    }

    #[test]
    fn a_lying_peer_cannot_overflow_leases_or_epochs() {
        let cfg = Arc::new(ClusterConfig::default());
        for split in [SplitPolicy::Serve, SplitPolicy::Deny] {
            let cfg = Arc::new(ClusterConfig { split, ..(*cfg).clone() });
            let mut m = Membership::new(1, cfg, false, None, 0);
            let mut out = Outbox::new();
            let max = u64::MAX;
            m.receive(
                5,
                2,
                MemberMsg::Ping { sent_at: max, epoch: max, intent: Intent::Stay },
                &mut out,
            );
            m.receive(
                6,
                2,
                MemberMsg::Pong { echo: max, epoch: 1, coordinator: 1, member: true },
                &mut out,
            );
            let mut huge = Topology::founded_by(1, 4);
            huge.epoch = max;
            m.receive(7, 2, MemberMsg::TopologyPush(Arc::new(huge)), &mut out);
            for now in (10..3000).step_by(10) {
                m.tick(now, &mut out);
            }
            assert!(m.epoch() >= 1);
        }
    }
}
