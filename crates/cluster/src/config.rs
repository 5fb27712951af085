//! Timings and sizes of the cluster protocol, with the defaults the properties are stated for.

/// Protocol settings; every node of a cluster should use the same values.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Partitions of the cluster (fixed when it is born).
    pub partitions: u16,
    /// Owners per partition (primary + backups).
    pub replicas: usize,
    /// How often members and the coordinator ping each other.
    pub heartbeat_ms: u64,
    /// Silence after which the coordinator declares a member dead (and members the coordinator).
    pub dead_after_ms: u64,
    /// How long a pong keeps a node allowed to serve. Must be below `dead_after_ms`, so a node
    /// cut off stops serving before the others give its partitions away.
    pub lease_ms: u64,
    /// How often a node without a cluster asks its seeds for one.
    pub join_retry_ms: u64,
    /// A forwarded request without an answer after this long fails with `TRYAGAIN`.
    pub request_timeout_ms: u64,
    /// A follower that has not acknowledged for this long is sent its missing entries again.
    pub retransmit_ms: u64,
    /// Recent log entries each replica keeps to catch a follower up without a snapshot.
    pub log_entries_max: usize,
    /// Bytes of keys and values that recent log may hold, per replica.
    pub log_bytes_max: usize,
    /// How often a primary deletes entries past their deadline, and how many at most per pass.
    pub sweep_interval_ms: u64,
    pub sweep_keys_max: usize,
    /// Entries per snapshot chunk.
    pub snapshot_chunk_entries: usize,
    /// The longest string `APPEND` may make.
    pub value_bytes_max: usize,
    /// What a side of a network split without a majority of the members does.
    pub split: SplitPolicy,
    /// Heal a split by merging the smaller side into the bigger (see `membership`): deleted keys
    /// leave tombstones, coordinators probe the members they declared dead, a coordinator taking
    /// over waits for the members' answers. Off only to compare with the behaviour before it.
    pub heal_splits: bool,
    /// A lite member: it joins, learns the topology and routes requests in one hop, but the
    /// coordinator gives it no partition (it is kept out of every target, as a leaving member).
    pub lite: bool,
    /// Deliberate defects, so tests can prove the checker catches them. All off in production.
    pub faults: Faults,
}

/// What the nodes cut off from most of the cluster do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitPolicy {
    /// Keep serving; a side without the coordinator elects its own.
    #[default]
    Serve,
    /// Serve only with a majority of the members: a coordinator needs fresh pongs from a majority
    /// to keep its lease (and so to give members theirs) and to declare anyone dead, so the
    /// minority side refuses reads and writes (`TRYAGAIN`) until the split heals.
    Deny,
}

/// Defects that can be switched on to show that the simulator's checker finds them.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Acknowledge a write as soon as the primary has it, before its backups do.
    pub ack_before_backups: bool,
    /// Send session events to each member once, never again when no acknowledgement comes.
    pub events_sent_once: bool,
    /// Make no attribute change travel, whoever watches.
    pub watches_ignored: bool,
    /// Send attribute changes to the members that do not watch them, not to those that do.
    pub watchers_reversed: bool,
}

/// A setting that cannot work, found when a node starts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("lease_ms ({lease_ms}) must be below dead_after_ms ({dead_after_ms}): a cut-off node must stop serving before the others take its partitions")]
    LeaseTooLong { lease_ms: u64, dead_after_ms: u64 },
    #[error("{name} must be at least 1")]
    Zero { name: &'static str },
}

impl ClusterConfig {
    /// Checks the settings the protocol's guarantees rest on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_ms >= self.dead_after_ms {
            let (lease_ms, dead_after_ms) = (self.lease_ms, self.dead_after_ms);
            return Err(ConfigError::LeaseTooLong { lease_ms, dead_after_ms });
        }
        let positive = [
            ("partitions", self.partitions as u64),
            ("replicas", self.replicas as u64),
            ("heartbeat_ms", self.heartbeat_ms),
            ("log_entries_max", self.log_entries_max as u64),
            ("snapshot_chunk_entries", self.snapshot_chunk_entries as u64),
            ("sweep_interval_ms", self.sweep_interval_ms),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(ConfigError::Zero { name }),
            None => Ok(()),
        }
    }

    /// True if splits are healed by merging: only under `Serve` (under `Deny` a cut-off side
    /// never publishes a table of its own, so there is nothing to merge).
    pub fn heals_splits(&self) -> bool {
        self.heal_splits && self.split == SplitPolicy::Serve
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            partitions: 256,
            replicas: 2,
            heartbeat_ms: 100,
            dead_after_ms: 1000,
            lease_ms: 700,
            join_retry_ms: 250,
            request_timeout_ms: 2000,
            retransmit_ms: 200,
            log_entries_max: 1024,
            log_bytes_max: 64 * 1024,
            snapshot_chunk_entries: 256,
            value_bytes_max: 512 * 1024 * 1024,
            sweep_interval_ms: 100,
            sweep_keys_max: 200,
            split: SplitPolicy::default(),
            heal_splits: true,
            lite: false,
            faults: Faults::default(),
        }
    }
}
