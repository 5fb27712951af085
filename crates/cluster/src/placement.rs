//! Partition placement: which nodes own each partition, primary first.
//!
//! Each partition has a point in the 64-bit id space; its *preference order* is the members sorted
//! by XOR distance from that point (Kademlia's metric), so every node computes the same order
//! without talking. [`balance`] turns preference into a table where every node owns close to the
//! same number of partition copies, and, given the previous table, moves as few copies as it can:
//!
//! 1. keep every previous owner that is still a member;
//! 2. shed copies from nodes above capacity, starting with the partitions for which the node is
//!    least preferred;
//! 3. fill empty slots from preference order, skipping nodes at capacity;
//! 4. a node far below the mean (a joiner) takes copies from the most loaded nodes, up to the mean;
//! 5. primaries are balanced by reordering owners (no data moves).
//!
//! With `x` copies per node on average, capacity is `max(ceil(x), floor(1.05 x))` and "far below"
//! is under `min(floor(x), ceil(0.95 x))`: max/mean stays within 1.05 once `x >= 20`, and a join
//! or a leave moves about the share of the node that came or went, and no more.
//! The result depends only on the inputs (not on member order), so the one coordinator that runs it
//! and every node that checks it agree.

use std::collections::HashMap;

use sessiongrid_model::PartitionId;

/// A member's position in the id space (a hash of its peer id).
pub type NodeId = u64;

/// Owners of every partition, primary first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub owners: Vec<Vec<NodeId>>,
}

/// The point of partition `p` in the id space: a fixed mix of its index.
pub fn partition_point(p: PartitionId) -> u64 {
    // splitmix64 finaliser: consecutive partitions land far apart.
    let mut z = (p as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `members` sorted by XOR distance from partition `p`'s point, nearest first.
pub fn preference(p: PartitionId, members: &[NodeId]) -> Vec<NodeId> {
    let point = partition_point(p);
    let mut order = members.to_vec();
    order.sort_by_key(|m| m ^ point);
    order
}

/// A balanced placement of `partitions` partitions with `replicas` copies each over `members`,
/// moving as little as possible from `previous`.
pub fn balance(
    previous: Option<&Placement>,
    members: &[NodeId],
    partitions: u16,
    replicas: usize,
) -> Placement {
    let mut members = members.to_vec();
    members.sort_unstable();
    members.dedup();
    let copies = replicas.min(members.len());
    if copies == 0 {
        return Placement { owners: vec![Vec::new(); partitions as usize] };
    }
    let mean = (partitions as usize * copies) as f64 / members.len() as f64;
    // Loads may sit anywhere in [low, capacity]: tight enough for max/mean <= 1.05 once there
    // are 20+ copies per node, loose enough that a join or a leave moves only what it must.
    let capacity = (mean.ceil() as usize).max((mean * 1.05).floor() as usize);
    let low = (mean.floor() as usize).min((mean * 0.95).ceil() as usize);
    let prefs: Vec<Vec<NodeId>> = (0..partitions).map(|p| preference(p, &members)).collect();
    let mut owners = keep_members(previous, &members, partitions, copies);
    shed_overload(&mut owners, &prefs, capacity);
    fill(&mut owners, &prefs, mean.floor() as usize, capacity, copies);
    steal(&mut owners, &prefs, &members, low, mean.floor() as usize);
    let primaries = partitions as f64 / members.len() as f64;
    let primary_capacity = (primaries.ceil() as usize).max((primaries * 1.05).floor() as usize);
    balance_primaries(&mut owners, previous, primary_capacity);
    Placement { owners }
}

/// Step 4: every member below `low` takes copies, one at a time, from the most loaded member
/// holding a partition it does not, preferring partitions it ranks high for, until it has `goal`.
fn steal(
    owners: &mut [Vec<NodeId>],
    prefs: &[Vec<NodeId>],
    members: &[NodeId],
    low: usize,
    goal: usize,
) {
    let mut load: HashMap<NodeId, usize> = members.iter().map(|m| (*m, 0)).collect();
    for n in owners.iter().flatten() {
        *load.entry(*n).or_insert(0) += 1;
    }
    let mut takers: Vec<NodeId> = members.iter().copied().filter(|m| load[m] < low).collect();
    takers.sort_by_key(|m| (load[m], *m));
    for taker in takers {
        while load[&taker] < goal {
            let rank = |p: usize| prefs[p].iter().position(|n| *n == taker).unwrap_or(usize::MAX);
            let pick = (0..owners.len())
                .filter(|&p| !owners[p].contains(&taker))
                .filter_map(|p| {
                    // Backup copies only: taking a primary's copy would move its primary too.
                    let donor = *owners[p].iter().skip(1).max_by_key(|n| (load[*n], **n))?;
                    (load[&donor] > load[&taker] + 1).then_some((p, donor))
                })
                .max_by_key(|&(p, donor)| {
                    (load[&donor], std::cmp::Reverse(rank(p)), std::cmp::Reverse(p))
                });
            let Some((p, donor)) = pick else { break };
            let slot = owners[p].iter().position(|n| *n == donor).expect("donor owns p");
            owners[p][slot] = taker;
            *load.get_mut(&donor).expect("donor is a member") -= 1;
            *load.get_mut(&taker).expect("taker is a member") += 1;
        }
    }
}

/// Step 5: primaries serve every read and order every write, so they are balanced too, by
/// reordering owners (no data moves). A partition keeps its previous primary while that node has
/// fewer than `capacity` primaries; then a survivor that was first in line; the rest go to their
/// owner with the fewest. Finally, while some node is above capacity, one of its partitions is
/// handed to a co-owner with at least two fewer.
fn balance_primaries(owners: &mut [Vec<NodeId>], previous: Option<&Placement>, capacity: usize) {
    let was_primary = |p: usize, n: NodeId| {
        previous.and_then(|prev| prev.owners.get(p)).and_then(|o| o.first()) == Some(&n)
    };
    let mut count: HashMap<NodeId, usize> = HashMap::new();
    let mut decided = vec![false; owners.len()];
    for keep_previous_only in [true, false] {
        for (p, o) in owners.iter().enumerate() {
            let Some(&first) = o.first() else { continue };
            let eligible = !keep_previous_only || was_primary(p, first);
            if !decided[p] && eligible && count.get(&first).copied().unwrap_or(0) < capacity {
                *count.entry(first).or_insert(0) += 1;
                decided[p] = true;
            }
        }
    }
    for (p, o) in owners.iter_mut().enumerate() {
        if decided[p] || o.is_empty() {
            continue;
        }
        let best = (0..o.len())
            .min_by_key(|&i| (count.get(&o[i]).copied().unwrap_or(0), i))
            .expect("owners is not empty");
        o.swap(0, best);
        *count.entry(o[0]).or_insert(0) += 1;
    }
    // Local improvement; each move lowers the sum of squared counts, so it ends.
    loop {
        let mut moved = false;
        for o in owners.iter_mut() {
            let Some(&first) = o.first() else { continue };
            let load = count[&first];
            if load <= capacity {
                continue;
            }
            let lighter = (1..o.len())
                .filter(|&i| count.get(&o[i]).copied().unwrap_or(0) + 1 < load)
                .min_by_key(|&i| (count.get(&o[i]).copied().unwrap_or(0), i));
            if let Some(i) = lighter {
                o.swap(0, i);
                *count.entry(first).or_insert(0) -= 1;
                *count.entry(o[0]).or_insert(0) += 1;
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
}

/// Step 1: previous owners that are still members, in their previous order (primary stays first).
fn keep_members(
    previous: Option<&Placement>,
    members: &[NodeId],
    partitions: u16,
    copies: usize,
) -> Vec<Vec<NodeId>> {
    (0..partitions as usize)
        .map(|p| {
            let old = previous.and_then(|prev| prev.owners.get(p));
            let mut kept: Vec<NodeId> = Vec::with_capacity(copies);
            for &n in old.into_iter().flatten() {
                let member = members.binary_search(&n).is_ok();
                if member && !kept.contains(&n) && kept.len() < copies {
                    kept.push(n);
                }
            }
            kept
        })
        .collect()
}

fn loads(owners: &[Vec<NodeId>]) -> HashMap<NodeId, usize> {
    let mut load = HashMap::new();
    for node in owners.iter().flatten() {
        *load.entry(*node).or_insert(0) += 1;
    }
    load
}

/// Step 2: a node above capacity gives up the copies it is least preferred for.
fn shed_overload(owners: &mut [Vec<NodeId>], prefs: &[Vec<NodeId>], capacity: usize) {
    let load = loads(owners);
    let mut over: Vec<(NodeId, usize)> =
        load.into_iter().filter(|(_, l)| *l > capacity).map(|(n, l)| (n, l - capacity)).collect();
    over.sort_unstable();
    for (node, excess) in over {
        let rank = |p: usize| prefs[p].iter().position(|n| *n == node).unwrap_or(usize::MAX);
        let mut held: Vec<usize> =
            (0..owners.len()).filter(|&p| owners[p].contains(&node)).collect();
        // Worst rank first; ties broken by partition index for determinism.
        held.sort_by_key(|&p| (std::cmp::Reverse(rank(p)), p));
        for p in held.into_iter().take(excess) {
            owners[p].retain(|n| *n != node);
        }
    }
}

/// Step 3: fill each partition up to `copies` owners from its preference order.
fn fill(
    owners: &mut [Vec<NodeId>],
    prefs: &[Vec<NodeId>],
    goal: usize,
    capacity: usize,
    copies: usize,
) {
    let mut load = loads(owners);
    for (p, pref) in prefs.iter().enumerate() {
        while owners[p].len() < copies {
            let load_of = |n: &NodeId| load.get(n).copied().unwrap_or(0);
            let free = |n: &&NodeId| !owners[p].contains(n);
            // Nodes below the mean first, then any with room, in preference order; if every node
            // with room already owns this partition, the least loaded one.
            let candidate = pref
                .iter()
                .filter(free)
                .find(|n| load_of(n) < goal)
                .or_else(|| pref.iter().filter(free).find(|n| load_of(n) < capacity))
                .or_else(|| pref.iter().filter(free).min_by_key(|n| (load_of(n), **n)));
            let Some(&node) = candidate else { break };
            owners[p].push(node);
            *load.entry(node).or_insert(0) += 1;
        }
    }
}

impl Placement {
    /// Partition copies per node.
    pub fn loads(&self) -> HashMap<NodeId, usize> {
        loads(&self.owners)
    }

    /// Copies that `next` places on a node that did not hold them here (data that must move).
    pub fn moves_to(&self, next: &Placement) -> usize {
        next.owners
            .iter()
            .enumerate()
            .map(|(p, new)| {
                let old = self.owners.get(p);
                new.iter().filter(|n| old.is_none_or(|o| !o.contains(n))).count()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize, seed: u64) -> Vec<NodeId> {
        (0..n as u64)
            .map(|i| partition_point(i as u16 ^ 0x5a5a).wrapping_add(seed.wrapping_mul(i + 1)))
            .collect()
    }

    fn max_over_mean(t: &Placement, members: usize) -> f64 {
        let load = t.loads();
        let total: usize = load.values().sum();
        *load.values().max().unwrap() as f64 / (total as f64 / members as f64)
    }

    fn assert_valid(t: &Placement, copies: usize) {
        for owners in &t.owners {
            assert_eq!(owners.len(), copies);
            let mut d = owners.clone();
            d.sort_unstable();
            d.dedup();
            assert_eq!(d.len(), copies, "owners of a partition are distinct");
        }
    }

    #[test]
    fn balanced_when_partitions_are_plentiful() {
        for members in [2, 3, 5, 8, 13, 32] {
            let nodes = ids(members, 7);
            let partitions = (32 * members).min(u16::MAX as usize) as u16;
            let t = balance(None, &nodes, partitions, 2);
            assert_valid(&t, 2);
            let r = max_over_mean(&t, members);
            assert!(r <= 1.05, "{members} members: max/mean {r}");
        }
    }

    #[test]
    fn primaries_are_balanced_after_joins() {
        let mut members = ids(1, 5);
        let mut t = balance(None, &members, 256, 2);
        for n in ids(4, 6).into_iter().skip(1) {
            members.push(n);
            t = balance(Some(&t), &members, 256, 2);
        }
        let mut primaries: HashMap<NodeId, usize> = HashMap::new();
        for o in &t.owners {
            *primaries.entry(o[0]).or_insert(0) += 1;
        }
        let max = *primaries.values().max().unwrap() as f64;
        assert!(max / (256.0 / members.len() as f64) <= 1.05, "{primaries:?}");
        assert_eq!(primaries.len(), members.len());
    }

    #[test]
    fn joins_and_leaves_move_about_the_ideal_share() {
        let partitions = 1024;
        let mut nodes = ids(8, 3);
        let mut table = balance(None, &nodes, partitions, 2);
        for step in 0..6 {
            let joiner = ids(1, 1000 + step)[0] ^ 0xdead_beef;
            nodes.push(joiner);
            let next = balance(Some(&table), &nodes, partitions, 2);
            assert_valid(&next, 2);
            let ideal = (partitions as f64 * 2.0) / nodes.len() as f64;
            let moved = table.moves_to(&next) as f64;
            assert!(moved <= 1.1 * ideal, "join {step}: moved {moved}, ideal {ideal}");
            assert!(max_over_mean(&next, nodes.len()) <= 1.05);
            table = next;
        }
        let leaver = nodes.remove(3);
        let held = table.loads()[&leaver] as f64;
        let next = balance(Some(&table), &nodes, partitions, 2);
        assert_valid(&next, 2);
        let moved = table.moves_to(&next) as f64;
        assert!(moved <= 1.1 * held, "leave: moved {moved}, ideal {held}");
    }

    #[test]
    fn surviving_primary_stays_primary() {
        let nodes = ids(4, 11);
        let t = balance(None, &nodes, 64, 2);
        let survivors: Vec<NodeId> = nodes[..3].to_vec();
        let next = balance(Some(&t), &survivors, 64, 2);
        for (old, new) in t.owners.iter().zip(&next.owners) {
            if survivors.contains(&old[0]) {
                assert_eq!(new[0], old[0]);
            }
        }
    }

    #[test]
    fn result_does_not_depend_on_member_order() {
        let mut nodes = ids(6, 5);
        let a = balance(None, &nodes, 256, 3);
        nodes.reverse();
        assert_eq!(a, balance(None, &nodes, 256, 3));
    }

    #[test]
    fn a_malformed_previous_table_still_gives_distinct_owners() {
        let nodes = ids(3, 2);
        let bad = Placement { owners: vec![vec![nodes[0], nodes[0]]; 8] };
        assert_valid(&balance(Some(&bad), &nodes, 8, 2), 2);
    }

    #[test]
    fn fewer_members_than_replicas_places_every_member() {
        let t = balance(None, &ids(1, 9), 16, 2);
        assert_valid(&t, 1);
        assert!(balance(None, &[], 16, 2).owners.iter().all(Vec::is_empty));
    }
}
