//! Node configuration: one struct, read from TOML, overridden by `SESSIONGRID_*` env vars and
//! command-line flags by the binary, or built in code by an embedding application.
//!
//! Every limit has its unit last in its name. Secrets are never stored here, only the paths of
//! the files that hold them.

use std::path::PathBuf;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::session::{LoginPolicy, SessionLimits};

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
    /// Address of the Redis-protocol door (plain TCP); empty: none (TLS only).
    pub resp_listen: String,
    /// Address of the Redis-protocol door over TLS (Redis' `tls-port`); needs `tls_cert_file`
    /// and `tls_key_file`.
    pub resp_tls_listen: Option<String>,
    /// Address of the HTTP door (health, metrics, API).
    pub http_listen: String,
    /// The HTTP door speaks HTTPS only, with `tls_cert_file` and `tls_key_file`.
    pub http_tls: bool,
    /// The doors' TLS certificate chain (PEM, leaf first); re-read on `SIGHUP`.
    pub tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM; not world-readable); re-read on `SIGHUP`.
    pub tls_key_file: Option<PathBuf>,
    /// CA certificates (PEM) that TLS clients' certificates must chain to; given, a client
    /// without such a certificate is refused in the handshake.
    pub tls_ca_file: Option<PathBuf>,
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
    /// A lite member joins the cluster and routes requests but owns no partitions (for an
    /// application process that should hold no state); needs `p2p_listen` and `join`.
    pub lite: bool,
    /// File holding the password clients must `AUTH` with; none means no password.
    pub requirepass_file: Option<PathBuf>,
    /// ACL users file (Redis' `aclfile`: `user <name> <rules...>` lines); `ACL SAVE` writes it.
    /// Without it the only user is `default`, with `requirepass_file`'s password if any.
    pub aclfile: Option<PathBuf>,
    /// File holding the token the HTTP API (`/api/v1`) requires as `Authorization: Bearer`;
    /// none leaves the API open (bind `http_listen` to a private address then).
    pub admin_token_file: Option<PathBuf>,
    /// Refuse to start a door on a non-loopback address without its credentials (the Redis
    /// door without `requirepass_file`, the HTTP door without `admin_token_file`), as Redis'
    /// protected mode does.
    pub protected_mode: bool,

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
    /// Engine threads, each running its share of the partitions and of the client
    /// connections; 0 means one per two cores.
    pub engine_threads: usize,

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

    /// Session rules (`[sessions]`), with per-group overrides (`[sessions.groups.NAME]`).
    pub sessions: SessionConfig,
}

/// The rules of one session group, as [`SessionConfig::group`] resolves them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupRules {
    pub idle_timeout_s: u64,
    /// 0 means none.
    pub absolute_timeout_s: u64,
    pub login_policy: LoginPolicy,
    /// 0 means no limit.
    pub login_max: usize,
}

/// A group that differs from the `[sessions]` defaults; a field left out takes the default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupConfig {
    pub idle_timeout_s: Option<u64>,
    pub absolute_timeout_s: Option<u64>,
    pub login_policy: Option<LoginPolicy>,
    pub login_max: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Idle timeout of a new session.
    pub idle_timeout_s: u64,
    /// Absolute lifetime of a new session; 0 means none.
    pub absolute_timeout_s: u64,
    /// What a login does when the user already has `login_max` live sessions.
    pub login_policy: LoginPolicy,
    /// Live sessions per user in a group that the policy protects; 0 means no limit.
    pub login_max: usize,
    /// Groups that differ from the defaults above.
    pub groups: BTreeMap<String, GroupConfig>,
    /// Most attributes in one session.
    pub attrs_max: usize,
    /// Longest attribute name.
    pub attr_name_bytes_max: usize,
    /// Largest attribute value.
    pub attr_bytes_max: usize,
    /// Largest session, attributes and metadata together.
    pub session_bytes_max: usize,
    /// Longest user name.
    pub principal_bytes_max: usize,
    /// Longest group or application name.
    pub group_bytes_max: usize,
    /// How long an ended session's tombstone is kept. Keep it longer than the longest split the
    /// cluster should heal from.
    pub tombstone_retention_s: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_timeout_s: 30 * 60,
            absolute_timeout_s: 0,
            login_policy: LoginPolicy::Allow,
            login_max: 0,
            groups: BTreeMap::new(),
            attrs_max: 1024,
            attr_name_bytes_max: 256,
            attr_bytes_max: 1024 * 1024,
            session_bytes_max: 4 * 1024 * 1024,
            principal_bytes_max: 256,
            group_bytes_max: 128,
            tombstone_retention_s: 24 * 60 * 60,
        }
    }
}

impl SessionConfig {
    /// The rules of group `name`: its overrides over the defaults.
    pub fn group(&self, name: &[u8]) -> GroupRules {
        let o = std::str::from_utf8(name).ok().and_then(|n| self.groups.get(n));
        let o = o.cloned().unwrap_or_default();
        GroupRules {
            idle_timeout_s: o.idle_timeout_s.unwrap_or(self.idle_timeout_s),
            absolute_timeout_s: o.absolute_timeout_s.unwrap_or(self.absolute_timeout_s),
            login_policy: o.login_policy.unwrap_or(self.login_policy),
            login_max: o.login_max.unwrap_or(self.login_max),
        }
    }

    pub fn limits(&self) -> SessionLimits {
        SessionLimits {
            attrs_max: self.attrs_max,
            attr_name_bytes_max: self.attr_name_bytes_max,
            attr_bytes_max: self.attr_bytes_max,
            session_bytes_max: self.session_bytes_max,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("./data"),
            resp_listen: "127.0.0.1:6379".into(),
            http_listen: "127.0.0.1:7070".into(),
            resp_tls_listen: None,
            http_tls: false,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
            p2p_listen: None,
            join: Vec::new(),
            cluster_secret_file: None,
            replicas: 2,
            failure_timeout_ms: 1000,
            when_split: WhenSplit::Serve,
            lite: false,
            requirepass_file: None,
            aclfile: None,
            admin_token_file: None,
            protected_mode: true,
            partitions: 256,
            durability: Durability::Process,
            memory_max_bytes: 512 * 1024 * 1024,
            expiry_sweep_interval_ms: 100,
            expiry_sweep_keys_max: 200,
            engine_threads: 0,
            bulk_bytes_max: 64 * 1024 * 1024,
            array_len_max: 1024 * 1024,
            inline_bytes_max: 64 * 1024,
            connections_max: 10_000,
            value_bytes_max: 16 * 1024 * 1024,
            pipeline_bytes_max: 128 * 1024 * 1024,
            sessions: SessionConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("config: {field} must be {rule}")]
    Invalid { field: &'static str, rule: &'static str },
}

impl NodeConfig {
    /// How many engine threads to run: `engine_threads`, or one per two cores (the other
    /// half serve the kernel's network stack, RocksDB's flushes and compactions, and, on a
    /// node of several engine threads, peers).
    pub fn engine_threads(&self) -> usize {
        match self.engine_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            n => n,
        }
    }

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
        check(
            !self.lite || (self.p2p_listen.is_some() && !self.join.is_empty()),
            "lite",
            "used with p2p_listen and join (a lite member joins an existing grid)",
        )?;
        check(self.replicas > 0, "replicas", "at least 1")?;
        check(
            self.tls_cert_file.is_some() == self.tls_key_file.is_some(),
            "tls_cert_file",
            "given with tls_key_file (a certificate and its key)",
        )?;
        check(
            self.tls_cert_file.is_some() || !(self.resp_tls_listen.is_some() || self.http_tls),
            "resp_tls_listen",
            "used with tls_cert_file and tls_key_file (as is http_tls)",
        )?;
        check(
            self.tls_ca_file.is_none() || self.tls_cert_file.is_some(),
            "tls_ca_file",
            "used with tls_cert_file and tls_key_file",
        )?;
        check(self.failure_timeout_ms >= 100, "failure_timeout_ms", "at least 100")?;
        check(self.memory_max_bytes > 0, "memory_max_bytes", "positive")?;
        check(self.expiry_sweep_interval_ms > 0, "expiry_sweep_interval_ms", "positive")?;
        check(self.expiry_sweep_keys_max > 0, "expiry_sweep_keys_max", "positive")?;
        check(
            self.engine_threads <= 1024,
            "engine_threads",
            "at most 1024 (0: one per two cores)",
        )?;
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
        )?;
        let s = &self.sessions;
        let idle = std::iter::once(s.idle_timeout_s)
            .chain(s.groups.values().filter_map(|g| g.idle_timeout_s));
        for idle in idle {
            check(idle > 0, "sessions.idle_timeout_s", "positive")?;
        }
        check(s.attrs_max > 0, "sessions.attrs_max", "positive")?;
        check(
            s.attr_bytes_max <= s.session_bytes_max,
            "sessions.attr_bytes_max",
            "at most sessions.session_bytes_max",
        )?;
        check(s.principal_bytes_max > 0, "sessions.principal_bytes_max", "positive")?;
        check(s.group_bytes_max > 0, "sessions.group_bytes_max", "positive")?;
        check(s.tombstone_retention_s > 0, "sessions.tombstone_retention_s", "positive")
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
    fn groups_override_the_session_defaults() {
        let c: NodeConfig = toml::from_str(
            "[sessions]\nidle_timeout_s = 60\n[sessions.groups.shop]\nlogin_max = 1\nlogin_policy = \"evict-oldest\"\n",
        )
        .unwrap();
        assert_eq!(c.sessions.group(b"other").idle_timeout_s, 60);
        let shop = c.sessions.group(b"shop");
        assert_eq!((shop.login_max, shop.login_policy), (1, LoginPolicy::EvictOldest));
        assert_eq!(shop.idle_timeout_s, 60, "a group field left out takes the default");
        c.validate().unwrap();
    }

    #[test]
    fn tls_needs_a_certificate_and_its_key() {
        let tls =
            NodeConfig { resp_tls_listen: Some("127.0.0.1:6380".into()), ..Default::default() };
        assert!(tls.validate().is_err());
        let with_cert = NodeConfig { tls_cert_file: Some("c.pem".into()), ..tls.clone() };
        assert!(with_cert.validate().is_err(), "a certificate without its key");
        let pair = NodeConfig { tls_key_file: Some("k.pem".into()), ..with_cert };
        pair.validate().unwrap();
        let https = NodeConfig { http_tls: true, resp_tls_listen: None, ..Default::default() };
        assert!(https.validate().is_err());
        let ca_only = NodeConfig { tls_ca_file: Some("ca.pem".into()), ..Default::default() };
        assert!(ca_only.validate().is_err());
    }

    #[test]
    fn inconsistent_limits_are_refused() {
        let c = NodeConfig { value_bytes_max: 10, bulk_bytes_max: 5, ..Default::default() };
        assert!(c.validate().is_err());
    }

    #[test]
    fn engine_threads_default_to_one_per_two_cores_and_are_bounded() {
        assert!(NodeConfig::default().engine_threads() >= 1);
        assert_eq!(NodeConfig { engine_threads: 3, ..Default::default() }.engine_threads(), 3);
        assert!(NodeConfig { engine_threads: 5000, ..Default::default() }.validate().is_err());
    }
}
