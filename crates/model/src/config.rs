//! Node configuration: one struct, read from TOML, overridden by `SESSIONGRID_*` env vars and
//! command-line flags by the binary, or built in code by an embedding application.
//!
//! Every limit has its unit last in its name. Secrets are never stored here, only the paths of
//! the files that hold them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How far an acknowledged write is guaranteed to survive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Write-ahead log written before the ack: survives a crash or kill -9 of the process.
    #[default]
    Process,
    /// Write-ahead log fsynced (group commit) before the ack: also survives power loss.
    Power,
}

/// What nodes cut off from most of the cluster do (see the cluster's `SplitPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenSplit {
    /// Both sides keep serving.
    #[default]
    Serve,
    /// Only a side with a majority of the members serves; the other answers `TRYAGAIN`.
    Deny,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Directory holding this node's RocksDB files and identity.
    pub data_dir: PathBuf,
    /// Address of the Redis-protocol door.
    pub resp_listen: String,
    /// Address of the HTTP door (health, metrics, API).
    pub http_listen: String,
    /// Address for peer-to-peer grid traffic; `None` runs a single node.
    pub p2p_listen: Option<String>,
    /// Addresses of existing members to join through.
    pub join: Vec<String>,
    /// File holding the cluster secret; peers without it cannot connect (not world-readable).
    pub cluster_secret_file: Option<PathBuf>,
    /// Copies of each partition (primary + backups), for the whole cluster.
    pub replicas: usize,
    /// Silence after which a member is declared dead and its partitions fail over.
    pub failure_timeout_ms: u64,
    /// What a side of a network split without a majority does.
    pub when_split: WhenSplit,
    /// File holding the password clients must `AUTH` with; none means no password.
    pub requirepass_file: Option<PathBuf>,

    /// Number of partitions; fixed when the data directory is created.
    pub partitions: u16,
    /// What an acknowledged write survives.
    pub durability: Durability,
    /// Bytes of entries kept in memory; colder entries are read back from disk.
    pub memory_max_bytes: u64,
    /// How often each partition looks for expired keys.
    pub expiry_sweep_interval_ms: u64,
    /// Most expired keys one partition deletes per sweep, to bound the pause.
    pub expiry_sweep_keys_max: usize,

    /// Longest bulk string a client may send.
    pub bulk_bytes_max: usize,
    /// Most elements in one request array.
    pub array_len_max: usize,
    /// Longest inline (telnet-style) request line.
    pub inline_bytes_max: usize,
    /// Most simultaneous client connections; more are refused.
    pub connections_max: usize,
    /// Largest value (string, hash field value) a write may store.
    pub value_bytes_max: usize,
    /// Most bytes of unanswered pipelined requests buffered per connection.
    pub pipeline_bytes_max: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("./data"),
            resp_listen: "127.0.0.1:6379".into(),
            http_listen: "127.0.0.1:7070".into(),
            p2p_listen: None,
            join: Vec::new(),
            cluster_secret_file: None,
            replicas: 2,
            failure_timeout_ms: 1000,
            when_split: WhenSplit::Serve,
            requirepass_file: None,
            partitions: 256,
            durability: Durability::Process,
            memory_max_bytes: 512 * 1024 * 1024,
            expiry_sweep_interval_ms: 100,
            expiry_sweep_keys_max: 200,
            bulk_bytes_max: 64 * 1024 * 1024,
            array_len_max: 1024 * 1024,
            inline_bytes_max: 64 * 1024,
            connections_max: 10_000,
            value_bytes_max: 16 * 1024 * 1024,
            pipeline_bytes_max: 128 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("config: {field} must be {rule}")]
    Invalid { field: &'static str, rule: &'static str },
}

impl NodeConfig {
    /// Checks the values against each other; run before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, field, rule| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid { field, rule })
            }
        };
        check(self.partitions > 0, "partitions", "at least 1")?;
        check(self.replicas > 0, "replicas", "at least 1")?;
        check(self.failure_timeout_ms >= 100, "failure_timeout_ms", "at least 100")?;
        check(self.memory_max_bytes > 0, "memory_max_bytes", "positive")?;
        check(self.expiry_sweep_interval_ms > 0, "expiry_sweep_interval_ms", "positive")?;
        check(self.expiry_sweep_keys_max > 0, "expiry_sweep_keys_max", "positive")?;
        check(self.array_len_max > 0, "array_len_max", "positive")?;
        check(self.connections_max > 0, "connections_max", "positive")?;
        check(self.inline_bytes_max >= 64, "inline_bytes_max", "at least 64")?;
        check(
            self.value_bytes_max <= self.bulk_bytes_max,
            "value_bytes_max",
            "at most bulk_bytes_max",
        )?;
        check(
            self.bulk_bytes_max <= self.pipeline_bytes_max,
            "bulk_bytes_max",
            "at most pipeline_bytes_max",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        NodeConfig::default().validate().unwrap();
    }

    #[test]
    fn inconsistent_limits_are_refused() {
        let c = NodeConfig { value_bytes_max: 10, bulk_bytes_max: 5, ..Default::default() };
        assert!(c.validate().is_err());
    }
}
