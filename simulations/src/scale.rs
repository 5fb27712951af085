//! Scale scenarios: a cluster of many simulated nodes forms, takes one more node, loses one,
//! and reports what the design promises to bound: partitions moved against the ideal share,
//! balance, convergence time and heartbeat traffic.

use std::collections::HashMap;

use sessiongrid_cluster::placement::{NodeId, Placement};
use sessiongrid_cluster::{ClusterConfig, Topology};

use crate::world::{SimConfig, World};

#[derive(Debug)]
pub struct ScaleReport {
    pub nodes: usize,
    pub partitions: u16,
    pub replicas: usize,
    /// Virtual ms from all nodes starting to a settled cluster.
    pub form_ms: u64,
    /// Copies moved when one node joined, and the joiner's ideal share.
    pub join_moves: usize,
    pub join_ideal: f64,
    pub join_ms: u64,
    /// Copies moved when one node died, and the ideal (the copies it held).
    pub leave_moves: usize,
    pub leave_ideal: f64,
    pub leave_ms: u64,
    /// Max/mean copies and primaries per node, settled.
    pub copies_balance: f64,
    pub primaries_balance: f64,
    /// Messages per node per second in a settled, idle cluster (heartbeats).
    pub idle_msgs_per_node_per_s: f64,
}

fn placement(t: &Topology) -> Placement {
    Placement { owners: t.partitions.iter().map(|a| a.owners.clone()).collect() }
}

fn max_over_mean(counts: &HashMap<NodeId, usize>, members: usize) -> f64 {
    let total: usize = counts.values().sum();
    let max = counts.values().copied().max().unwrap_or(0);
    max as f64 / (total as f64 / members as f64)
}

/// Forms a cluster of `nodes` (the last one joins afterwards), then kills one.
pub fn run(nodes: usize, partitions: u16, seed: u64) -> Option<ScaleReport> {
    let mut cfg = SimConfig::new(seed);
    cfg.nodes = nodes;
    cfg.clients = 0;
    cfg.faults = false;
    cfg.drop = 0.0;
    cfg.duplicate = 0.0;
    cfg.cluster = ClusterConfig { partitions, ..ClusterConfig::default() };
    let replicas = cfg.cluster.replicas;
    let limit = 600_000;
    let mut world = World::new(cfg);

    let first = nodes - 1;
    for i in 0..first {
        world.boot(i);
    }
    let form_ms = world.run_until_settled(first, limit)?;

    let before = world.messages();
    world.advance(10_000);
    let idle = (world.messages() - before) as f64 / first as f64 / 10.0;

    let settled = placement(world.topology()?.as_ref());
    world.boot(first);
    let join_ms = world.run_until_settled(nodes, limit)?;
    let joined = placement(world.topology()?.as_ref());
    let join_moves = settled.moves_to(&joined);
    let join_ideal = (partitions as usize * replicas) as f64 / nodes as f64;

    let t = world.topology()?;
    let copies = joined.loads();
    let mut primaries: HashMap<NodeId, usize> = HashMap::new();
    for a in &t.partitions {
        if let Some(p) = a.primary() {
            *primaries.entry(p).or_insert(0) += 1;
        }
    }
    let copies_balance = max_over_mean(&copies, nodes);
    let primaries_balance = max_over_mean(&primaries, nodes);

    // The joiner dies: the rest (nodes 0..first) must take over what it held.
    let leave_ideal = copies.get(&world.node_id(first)).copied().unwrap_or(0) as f64;
    world.kill(first);
    let leave_ms = world.run_until_settled(first, limit)?;
    let left = placement(world.topology()?.as_ref());
    let leave_moves = joined.moves_to(&left);
    Some(ScaleReport {
        nodes,
        partitions,
        replicas,
        form_ms,
        join_moves,
        join_ideal,
        join_ms,
        leave_moves,
        leave_ideal,
        leave_ms,
        copies_balance,
        primaries_balance,
        idle_msgs_per_node_per_s: idle,
    })
}
