//! What a node reports about the cluster: for `INFO`, the operators' API, the dashboard and the
//! cluster gauges.

use std::sync::Arc;

use sessiongrid_cluster::{NodeId, PartitionStats, Topology};

/// A snapshot of the node's view of the cluster.
#[derive(Clone, Debug, Default)]
pub struct ClusterStatus {
    pub node: NodeId,
    pub epoch: u64,
    pub coordinator: NodeId,
    pub members: Vec<NodeId>,
    /// Partitions this node is primary of / holds a copy of.
    pub primaries: usize,
    pub copies: usize,
    /// Partitions whose target owners are not all in sync yet (cluster-wide).
    pub moving: usize,
    pub lease: bool,
    /// The whole partition table this node follows.
    pub topology: Option<Arc<Topology>>,
    /// Live sessions in the partitions this node is primary of, and in its backup copies.
    pub sessions_primary: u64,
    pub sessions_backup: u64,
    /// The most writes any follower of this node's primaries still lacks.
    pub replication_lag: u64,
    /// Nodes that are gone but still own partitions (see `sessiongrid forget`).
    pub lost: Vec<NodeId>,
    /// Partitions none of whose owners is a member: unavailable until one comes back.
    pub unowned: usize,
}

impl ClusterStatus {
    /// From control's topology and lease, and what each partition actor reported.
    pub fn new(
        me: NodeId,
        lease: bool,
        topology: Option<Arc<Topology>>,
        partitions: &[PartitionStats],
    ) -> ClusterStatus {
        let Some(t) = topology else {
            return ClusterStatus { node: me, ..ClusterStatus::default() };
        };
        let (mut sessions_primary, mut sessions_backup, mut replication_lag) = (0, 0, 0);
        for s in partitions {
            replication_lag = replication_lag.max(s.replication_lag);
            if !s.owner {
                continue; // a learner's copy is not complete yet
            }
            if s.primary {
                sessions_primary += s.counts.sessions;
            } else {
                sessions_backup += s.counts.sessions;
            }
        }
        ClusterStatus {
            sessions_primary,
            sessions_backup,
            replication_lag,
            node: me,
            epoch: t.epoch,
            coordinator: t.coordinator,
            members: t.members.clone(),
            primaries: t.partitions.iter().filter(|a| a.primary() == Some(me)).count(),
            copies: t.partitions.iter().filter(|a| a.owners.contains(&me)).count(),
            moving: t.partitions.iter().filter(|a| a.owners != a.target).count(),
            lost: t.lost(),
            unowned: t.unowned(),
            lease,
            topology: Some(t),
        }
    }
}

pub fn publish_gauges(s: &ClusterStatus) {
    metrics::gauge!("sessiongrid_cluster_epoch").set(s.epoch as f64);
    metrics::gauge!("sessiongrid_cluster_members").set(s.members.len() as f64);
    metrics::gauge!("sessiongrid_cluster_primaries").set(s.primaries as f64);
    metrics::gauge!("sessiongrid_cluster_copies").set(s.copies as f64);
    metrics::gauge!("sessiongrid_cluster_moving_partitions").set(s.moving as f64);
    metrics::gauge!("sessiongrid_cluster_unowned_partitions").set(s.unowned as f64);
    metrics::gauge!("sessiongrid_cluster_serving").set(if s.lease { 1.0 } else { 0.0 });
    metrics::gauge!("sessiongrid_sessions_live", "copy" => "primary")
        .set(s.sessions_primary as f64);
    metrics::gauge!("sessiongrid_sessions_live", "copy" => "backup").set(s.sessions_backup as f64);
}
