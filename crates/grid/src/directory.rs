//! Where each member's Redis door answers, as its peers learned it from the transport, and the
//! map a cluster-aware client routes by ([`SlotMap`]): a client that knows each partition's
//! primary sends a key straight to it instead of through a node that forwards it.

use std::collections::HashMap;
use std::sync::RwLock;

use sessiongrid_cluster::{NodeId, Topology};
use sessiongrid_model::PartitionId;

/// The Redis door address each peer announced.
#[derive(Default)]
pub struct Directory {
    doors: RwLock<HashMap<NodeId, String>>,
}

impl Directory {
    /// Peer `node`'s Redis door answers at `addr` (`host:port`).
    pub fn set(&self, node: NodeId, addr: String) {
        self.doors.write().expect("directory lock").insert(node, addr);
    }

    pub fn get(&self, node: NodeId) -> Option<String> {
        self.doors.read().expect("directory lock").get(&node).cloned()
    }
}

/// Where each partition's copies are, for a cluster-aware client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMap {
    pub me: NodeId,
    pub epoch: u64,
    /// Each partition's owners, primary first; empty for a partition with none.
    pub owners: Vec<Vec<NodeId>>,
    /// The members, sorted.
    pub members: Vec<NodeId>,
    /// The Redis door of each other member whose address is known. A client reaches this node
    /// at the address it used.
    pub doors: HashMap<NodeId, String>,
}

impl SlotMap {
    /// From the topology requests are routed by (`None`: this node alone holds everything).
    pub fn new(
        me: NodeId,
        partitions: u16,
        routing: Option<&Topology>,
        directory: &Directory,
    ) -> SlotMap {
        let Some(t) = routing else {
            return SlotMap {
                me,
                epoch: 0,
                owners: vec![vec![me]; usize::from(partitions)],
                members: vec![me],
                doors: HashMap::new(),
            };
        };
        let doors = t
            .members
            .iter()
            .filter(|n| **n != me)
            .filter_map(|n| directory.get(*n).map(|addr| (*n, addr)))
            .collect();
        SlotMap {
            me,
            epoch: t.epoch,
            owners: t.partitions.iter().map(|a| a.owners.clone()).collect(),
            members: t.members.clone(),
            doors,
        }
    }

    /// Partition `p`'s owners a client can reach, primary first: this node stands in for a
    /// primary whose door is unknown (it forwards), and an unreachable follower is left out.
    pub fn reachable(&self, p: PartitionId) -> Vec<NodeId> {
        let owners = self.owners.get(usize::from(p)).map_or(&[][..], Vec::as_slice);
        let known = |n: &NodeId| *n == self.me || self.doors.contains_key(n);
        let primary = owners.first().copied().filter(known).unwrap_or(self.me);
        let followers = owners.iter().skip(1).copied().filter(|n| known(n) && *n != primary);
        std::iter::once(primary).chain(followers).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_sent_to_primaries_it_can_reach_and_to_this_node_for_the_others() {
        let mut t = Topology::founded_by(1, 4);
        t.members = vec![1, 2, 3];
        t.partitions[0].owners = vec![2, 1];
        t.partitions[1].owners = vec![3, 2];
        t.partitions[2].owners = vec![];
        t.partitions[3].owners = vec![1, 3];
        let directory = Directory::default();
        directory.set(2, "10.0.0.2:6379".into());
        let map = SlotMap::new(1, 4, Some(&t), &directory);
        assert_eq!(map.reachable(0), vec![2, 1]);
        assert_eq!(map.reachable(1), vec![1, 2], "3's door is unknown: this node forwards");
        assert_eq!(map.reachable(2), vec![1], "no owner: this node answers");
        assert_eq!(map.reachable(3), vec![1]);
        assert_eq!(map.doors.len(), 1);
        let alone = SlotMap::new(7, 4, None, &directory);
        assert!((0..4).all(|p| alone.reachable(p) == vec![7]));
    }
}
