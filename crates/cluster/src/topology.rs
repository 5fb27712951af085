//! The epoch-numbered partition table, and how the coordinator derives the next one.
//!
//! Each partition has `owners` (nodes holding a complete copy, primary first) and a `target` (where
//! [`balance`] wants it). A target node that is not yet an owner is a *learner*: it receives a
//! snapshot and the live stream from the primary, and becomes an owner in a later epoch, once the
//! primary has reported it in sync. Only then do owners outside the target let go, so a partition
//! never has fewer complete copies than before a move started.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sessiongrid_model::PartitionId;

use crate::placement::{balance, NodeId, Placement};

pub type Epoch = u64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Nodes with a complete copy, primary first.
    pub owners: Vec<NodeId>,
    /// Where the partition is going, primary first.
    pub target: Vec<NodeId>,
    /// The previous primary, when it is still a member: the new primary serves only after that
    /// node released the partition or its lease has run out.
    pub handoff_from: Option<NodeId>,
}

impl Assignment {
    pub fn primary(&self) -> Option<NodeId> {
        self.owners.first().copied()
    }

    /// Target nodes that do not hold a complete copy yet.
    pub fn learners(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.target.iter().copied().filter(|n| !self.owners.contains(n))
    }

    /// Nodes that should hold the partition's data in this epoch.
    pub fn holds(&self, node: NodeId) -> bool {
        self.owners.contains(&node) || self.target.contains(&node)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub epoch: Epoch,
    pub coordinator: NodeId,
    /// Sorted.
    pub members: Vec<NodeId>,
    /// Members handing their partitions over before they stop (sorted); no target includes them.
    pub leaving: Vec<NodeId>,
    /// The members of the last topology in which every member was alive. Under
    /// `when_split = deny` only a side holding a majority of these may change the cluster.
    pub stable: Vec<NodeId>,
    pub partitions: Vec<Assignment>,
    /// The lite members among `leaving` (sorted): they route requests and never own anything.
    pub lite: Vec<NodeId>,
}

impl Topology {
    /// True if it has the shape every node relies on: one assignment per partition, and its
    /// member lists sorted without duplicates. A peer's topology that is not is ignored.
    pub fn well_formed(&self, partitions: u16) -> bool {
        let sorted = |v: &[NodeId]| v.windows(2).all(|w| w[0] < w[1]);
        self.partitions.len() == partitions as usize
            && sorted(&self.members)
            && sorted(&self.leaving)
            && sorted(&self.lite)
    }

    /// A cluster of one, as founded by its first node.
    pub fn founded_by(me: NodeId, partitions: u16) -> Topology {
        let one = Assignment { owners: vec![me], target: vec![me], handoff_from: None };
        Topology {
            epoch: 1,
            coordinator: me,
            members: vec![me],
            leaving: Vec::new(),
            stable: vec![me],
            partitions: vec![one; partitions as usize],
            lite: Vec::new(),
        }
    }

    /// True if `self` supersedes `other`: a higher epoch, or the same epoch published by a lower
    /// coordinator id (two sides of a split may both publish an epoch).
    pub fn supersedes(&self, other: &Topology) -> bool {
        (self.epoch, std::cmp::Reverse(self.coordinator))
            > (other.epoch, std::cmp::Reverse(other.coordinator))
    }

    /// Nodes that are not members but still own partitions: lost with every copy of those
    /// partitions that nobody else holds (sorted).
    pub fn lost(&self) -> Vec<NodeId> {
        let mut lost: Vec<NodeId> = self
            .partitions
            .iter()
            .flat_map(|a| a.owners.iter().copied())
            .filter(|n| !self.is_member(*n))
            .collect();
        lost.sort_unstable();
        lost.dedup();
        lost
    }

    /// Partitions none of whose owners is a member: they wait for one to come back.
    pub fn unowned(&self) -> usize {
        self.partitions.iter().filter(|a| !a.owners.iter().any(|o| self.is_member(*o))).count()
    }

    /// This table with `gone` (nodes that are not members) taken out of every assignment, so a
    /// partition that only they held starts empty in the next table.
    pub fn without(&self, gone: &BTreeSet<NodeId>) -> Topology {
        let mut t = self.clone();
        for a in &mut t.partitions {
            a.owners.retain(|n| !gone.contains(n) || self.is_member(*n));
            a.target.retain(|n| !gone.contains(n) || self.is_member(*n));
        }
        t
    }

    /// This table with each `(partition, node)` of `gone` no longer an owner of the partition
    /// (still in its target, so a learner next), as long as another owner is among `members`.
    pub fn without_owners(
        &self,
        gone: &BTreeSet<(PartitionId, NodeId)>,
        members: &[NodeId],
    ) -> Topology {
        let mut t = self.clone();
        for &(p, n) in gone {
            let Some(a) = t.partitions.get_mut(p as usize) else { continue };
            if a.owners.iter().any(|o| *o != n && members.contains(o)) {
                a.owners.retain(|o| *o != n);
            }
        }
        t
    }

    /// This table with each node of `merged` no longer an owner of the partitions but those it
    /// vouches for (a learner next where it is in the target), where another owner that is a
    /// member is left: otherwise it stays, as it may have served the partition since (what
    /// the nodes still merging in hold reaches it by their push, and an owner holding a copy
    /// that comes back makes it give way, [`crate::replica`]).
    pub fn without_copies(&self, merged: &BTreeMap<NodeId, BTreeSet<PartitionId>>) -> Topology {
        let mut t = self.clone();
        for (p, a) in t.partitions.iter_mut().enumerate() {
            let p = p as PartitionId;
            let holds = |n: &NodeId| merged.get(n).is_none_or(|vouched| vouched.contains(&p));
            if a.owners.iter().any(|n| holds(n) && self.is_member(*n)) {
                a.owners.retain(holds);
            }
        }
        t
    }

    /// True once `node` is leaving and holds no partition any more: it may stop.
    pub fn drained(&self, node: NodeId) -> bool {
        self.leaving.binary_search(&node).is_ok() && self.partitions.iter().all(|a| !a.holds(node))
    }

    pub fn is_member(&self, node: NodeId) -> bool {
        self.members.binary_search(&node).is_ok()
    }

    pub fn assignment(&self, p: PartitionId) -> Option<&Assignment> {
        self.partitions.get(p as usize)
    }

    pub fn primary(&self, p: PartitionId) -> Option<NodeId> {
        self.assignment(p).and_then(Assignment::primary)
    }

    /// Where every partition is going.
    pub fn target_placement(&self) -> Placement {
        Placement { owners: self.partitions.iter().map(|a| a.target.clone()).collect() }
    }

    /// The next table, published by `coordinator` for `members` (of which `leaving` are handing
    /// over), given which learners their primaries reported in sync.
    pub fn next(
        &self,
        coordinator: NodeId,
        members: &[NodeId],
        leaving: &BTreeSet<NodeId>,
        synced: &BTreeSet<(PartitionId, NodeId)>,
        replicas: usize,
    ) -> Topology {
        let mut members = members.to_vec();
        members.sort_unstable();
        members.dedup();
        let leaving: Vec<NodeId> =
            members.iter().copied().filter(|m| leaving.contains(m)).collect();
        let mut staying: Vec<NodeId> =
            members.iter().copied().filter(|m| !leaving.contains(m)).collect();
        if staying.is_empty() {
            staying = members.clone(); // the last ones out keep the data
        }
        let count = self.partitions.len() as u16;
        let target = balance(Some(&self.target_placement()), &staying, count, replicas);
        let is_member = |n: &NodeId| members.binary_search(n).is_ok();
        let partitions = self
            .partitions
            .iter()
            .zip(target.owners)
            .enumerate()
            .map(|(p, (old, target))| {
                let mut owners: Vec<NodeId> =
                    old.owners.iter().copied().filter(|n| is_member(n)).collect();
                for n in &target {
                    if !owners.contains(n) && synced.contains(&(p as PartitionId, *n)) {
                        owners.push(*n);
                    }
                }
                if owners.is_empty() && !old.owners.is_empty() {
                    // Every copy is on a node that is gone (more failures than replicas): wait
                    // for one of them to come back rather than serve the partition empty.
                    owners = old.owners.clone();
                } else if owners.is_empty() || target.iter().all(|n| owners.contains(n)) {
                    // A new partition, or a target fully in sync: the move is complete and the
                    // surplus lets go.
                    owners = target.clone();
                }
                let handoff_from = match (old.primary(), owners.first()) {
                    (Some(was), Some(now)) if was != *now && is_member(&was) => Some(was),
                    _ => None,
                };
                Assignment { owners, target, handoff_from }
            })
            .collect();
        let stable = self.stable.clone();
        let epoch = self.epoch.saturating_add(1);
        Topology { epoch, coordinator, members, leaving, stable, partitions, lite: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced_all(t: &Topology) -> BTreeSet<(PartitionId, NodeId)> {
        let mut s = BTreeSet::new();
        for (p, a) in t.partitions.iter().enumerate() {
            for n in a.learners() {
                s.insert((p as PartitionId, n));
            }
        }
        s
    }

    #[test]
    fn a_node_merged_in_owns_only_the_copies_it_vouches_for_where_another_owner_is_left() {
        let mut t = Topology::founded_by(1, 4);
        t.members = vec![1, 2, 3];
        t.partitions[0].owners = vec![3, 4];
        t.partitions[1].owners = vec![3, 1];
        t.partitions[2].owners = vec![3];
        t.partitions[3].owners = vec![3, 4];
        let merged = BTreeMap::from([(3, BTreeSet::from([0]))]);
        let without = t.without_copies(&merged);
        assert_eq!(without.partitions[0].owners, vec![3, 4], "vouched for");
        assert_eq!(without.partitions[1].owners, vec![1], "node 1 holds it");
        assert_eq!(without.partitions[2].owners, vec![3], "the only owner stays");
        assert_eq!(without.partitions[3].owners, vec![3, 4], "node 4 is no member");
        assert_eq!(without.partitions[1].target, t.partitions[1].target, "targets stay");
    }

    #[test]
    fn a_primary_with_no_copy_is_no_owner_next_where_another_member_owns_the_partition() {
        let mut t = Topology::founded_by(1, 2);
        t.members = vec![1, 2];
        t.partitions[0].owners = vec![2, 1];
        t.partitions[1].owners = vec![2, 3];
        let gone = BTreeSet::from([(0, 2), (1, 2)]);
        let without = t.without_owners(&gone, &t.members);
        assert_eq!(without.partitions[0].owners, vec![1]);
        assert_eq!(without.partitions[1].owners, vec![2, 3], "node 3 is no member");
    }

    #[test]
    fn a_joiner_learns_before_it_owns() {
        let t1 = Topology::founded_by(10, 64);
        let t2 = t1.next(10, &[10, 20], &BTreeSet::new(), &BTreeSet::new(), 2);
        assert_eq!(t2.epoch, 2);
        for a in &t2.partitions {
            assert_eq!(a.owners, vec![10], "the joiner holds nothing yet");
            assert!(a.target.contains(&20));
        }
        let t3 = t2.next(10, &[10, 20], &BTreeSet::new(), &synced_all(&t2), 2);
        for a in &t3.partitions {
            assert_eq!(a.owners, a.target);
            assert_eq!(a.owners.len(), 2);
            assert_eq!(a.handoff_from.is_some(), a.owners[0] != 10);
        }
    }

    #[test]
    fn a_dead_primary_is_replaced_by_its_backup_at_once() {
        let t1 = Topology::founded_by(1, 32);
        let t2 = t1.next(1, &[1, 2, 3], &BTreeSet::new(), &BTreeSet::new(), 2);
        let t3 = t2.next(1, &[1, 2, 3], &BTreeSet::new(), &synced_all(&t2), 2);
        let t4 = t3.next(1, &[1, 3], &BTreeSet::new(), &BTreeSet::new(), 2);
        for (old, new) in t3.partitions.iter().zip(&t4.partitions) {
            let survivors: Vec<NodeId> = old.owners.iter().copied().filter(|n| *n != 2).collect();
            assert_eq!(new.owners, survivors, "survivors keep serving, in order");
            assert_eq!(new.handoff_from, None, "a dead primary has no lease to wait for");
        }
    }

    #[test]
    fn a_partition_waits_for_its_lost_owners_until_they_are_forgotten() {
        let (none, unsynced) = (BTreeSet::new(), BTreeSet::new());
        let t1 = Topology::founded_by(1, 8);
        let t2 = t1.next(1, &[1, 2, 3], &none, &unsynced, 2);
        let t3 = t2.next(1, &[1, 2, 3], &none, &synced_all(&t2), 2);
        // 2 and 3 die: partitions they both held wait for them.
        let t4 = t3.next(1, &[1], &none, &unsynced, 2);
        let waiting: Vec<usize> =
            (0..8).filter(|&p| t3.partitions[p].owners.iter().all(|o| *o != 1)).collect();
        assert!(!waiting.is_empty(), "some partition lived on 2 and 3 only: {t3:?}");
        assert_eq!(t4.unowned(), waiting.len());
        assert_eq!(t4.lost(), vec![2, 3]);
        // Forgetting one of them is not enough; forgetting both starts those partitions empty.
        let t5 = t4.without(&BTreeSet::from([2])).next(1, &[1], &none, &unsynced, 2);
        assert_eq!(t5.unowned(), waiting.len());
        let t6 = t5.without(&BTreeSet::from([3])).next(1, &[1], &none, &unsynced, 2);
        assert_eq!(t6.unowned(), 0);
        assert!(t6.lost().is_empty());
        for p in waiting {
            assert_eq!(t6.partitions[p].owners, vec![1]);
        }
        // A member is never taken out.
        assert_eq!(t6.without(&BTreeSet::from([1])), t6);
    }

    #[test]
    fn a_leaving_node_keeps_its_copies_until_others_hold_them() {
        let (none, unsynced) = (BTreeSet::new(), BTreeSet::new());
        let t1 = Topology::founded_by(1, 32);
        let t2 = t1.next(1, &[1, 2, 3], &none, &unsynced, 2);
        let t3 = t2.next(1, &[1, 2, 3], &none, &synced_all(&t2), 2);
        let leaving = BTreeSet::from([2]);
        let t4 = t3.next(1, &[1, 2, 3], &leaving, &unsynced, 2);
        assert_eq!(t4.leaving, vec![2]);
        for (old, new) in t3.partitions.iter().zip(&t4.partitions) {
            assert!(!new.target.contains(&2));
            assert_eq!(new.owners, old.owners, "nothing lets go before the new copies exist");
        }
        assert!(!t4.drained(2));
        let t5 = t4.next(1, &[1, 2, 3], &leaving, &synced_all(&t4), 2);
        assert!(t5.drained(2), "{:?}", t5.partitions);
    }

    #[test]
    fn newer_epochs_supersede_and_lower_coordinators_break_ties() {
        let a = Topology::founded_by(5, 4);
        let mut b = a.clone();
        b.coordinator = 7;
        assert!(a.supersedes(&b));
        assert!(!b.supersedes(&a));
        let c = b.next(7, &[7], &BTreeSet::new(), &BTreeSet::new(), 2);
        assert!(c.supersedes(&a));
    }

    #[test]
    fn a_topology_round_trips_through_postcard() {
        let t = Topology::founded_by(3, 8).next(3, &[3, 9], &BTreeSet::new(), &BTreeSet::new(), 2);
        let bytes = postcard::to_stdvec(&t).unwrap();
        assert_eq!(postcard::from_bytes::<Topology>(&bytes).unwrap(), t);
    }
}
