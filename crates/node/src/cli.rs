//! Command-line interface. Every node flag can also be given as `SESSIONGRID_<FLAG>` in the
//! environment or as a key of the `--config` TOML file; a flag beats the environment, which beats
//! the file, which beats the built-in default.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use sessiongrid_model::config::{NodeConfig, WhenSplit};

use crate::admin::Target;

#[derive(Parser, Debug)]
#[command(name = "sessiongrid", version, about = "A peer-to-peer HTTP-session grid")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a grid node.
    Node(Box<NodeArgs>),
    /// Start a local cluster of N nodes on loopback (separate data directories and ports).
    DevCluster(crate::dev_cluster::DevClusterArgs),
    /// Members, partitions and session figures, as a node sees the cluster.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// The live sessions of a user.
    Sessions {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        target: Target,
    },
    /// End every session of a user (forced logout).
    Kick {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        target: Target,
    },
    /// Give up a lost node for good: partitions only it held start empty (their data is lost).
    Forget {
        /// The lost node's id (16 hex digits, as `status` lists it).
        node: String,
        #[command(flatten)]
        target: Target,
    },
    /// Load a grid from many clients over its Redis door; prints a summary table.
    Bench(crate::bench::BenchArgs),
    /// Hand a member's partitions over to the others; it then stops.
    Drain {
        /// The member's id (16 hex digits, as `status` shows it).
        node: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum WhenSplitArg {
    Serve,
    Deny,
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// TOML file with any `NodeConfig` keys (see node-config/single.toml).
    #[arg(long, env = "SESSIONGRID_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for this node's data [default: ./data].
    #[arg(long, env = "SESSIONGRID_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the Redis-protocol door [default: 127.0.0.1:6379]; "" for none (TLS only).
    #[arg(long, env = "SESSIONGRID_RESP_LISTEN")]
    pub resp_listen: Option<String>,
    /// Address of the Redis-protocol door over TLS (needs --tls-cert-file, --tls-key-file).
    #[arg(long, env = "SESSIONGRID_RESP_TLS_LISTEN")]
    pub resp_tls_listen: Option<String>,
    /// The HTTP door speaks HTTPS only (needs --tls-cert-file, --tls-key-file).
    #[arg(long, env = "SESSIONGRID_HTTP_TLS")]
    pub http_tls: bool,
    /// TLS certificate chain of the doors (PEM); re-read on SIGHUP.
    #[arg(long, env = "SESSIONGRID_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// Private key of that certificate (PEM); re-read on SIGHUP.
    #[arg(long, env = "SESSIONGRID_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// CA certificates (PEM) TLS clients must present a certificate of; re-read on SIGHUP.
    #[arg(long, env = "SESSIONGRID_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// Address of the HTTP door (health, metrics, API) [default: 127.0.0.1:7070].
    #[arg(long, env = "SESSIONGRID_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// Address for peer-to-peer traffic (used when the node joins a cluster).
    #[arg(long, env = "SESSIONGRID_P2P_LISTEN")]
    pub p2p_listen: Option<String>,
    /// Address of an existing member to join through; repeat for several.
    #[arg(long, env = "SESSIONGRID_JOIN", value_delimiter = ',')]
    pub join: Vec<String>,
    /// File holding the cluster secret; peers without it cannot connect (not world-readable).
    #[arg(long, env = "SESSIONGRID_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Copies of each partition, primary included [default: 2].
    #[arg(long, env = "SESSIONGRID_REPLICAS")]
    pub replicas: Option<usize>,
    /// Silence after which a member is declared dead, in ms [default: 1000].
    #[arg(long, env = "SESSIONGRID_FAILURE_TIMEOUT_MS")]
    pub failure_timeout_ms: Option<u64>,
    /// What a side of a network split without a majority does: serve, or deny (TRYAGAIN).
    #[arg(long, env = "SESSIONGRID_WHEN_SPLIT", value_enum)]
    pub when_split: Option<WhenSplitArg>,
    /// Join as a lite member: route requests, own no partitions.
    #[arg(long, env = "SESSIONGRID_LITE")]
    pub lite: bool,
    /// File holding the password clients must AUTH with (not world-readable).
    #[arg(long, env = "SESSIONGRID_REQUIREPASS_FILE")]
    pub requirepass_file: Option<PathBuf>,
    /// ACL users file (`user <name> <rules...>` lines, as Redis' aclfile).
    #[arg(long, env = "SESSIONGRID_ACLFILE")]
    pub aclfile: Option<PathBuf>,
    /// File holding the bearer token the HTTP API requires (not world-readable).
    #[arg(long, env = "SESSIONGRID_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// With `yes` (the default) a door on a non-loopback address without its credentials
    /// (--requirepass-file, --admin-token-file) refuses to start.
    #[arg(long, env = "SESSIONGRID_PROTECTED_MODE", value_enum)]
    pub protected_mode: Option<YesNo>,
    /// Log format.
    #[arg(long, env = "SESSIONGRID_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,
}

impl NodeArgs {
    /// The configuration: file, then environment and flags on top; validated.
    pub fn resolve(&self) -> anyhow::Result<NodeConfig> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config {}", path.display()))?
            }
            None => NodeConfig::default(),
        };
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = &self.resp_listen {
            config.resp_listen = v.clone();
        }
        if let Some(v) = &self.http_listen {
            config.http_listen = v.clone();
        }
        if let Some(v) = &self.resp_tls_listen {
            config.resp_tls_listen = Some(v.clone());
        }
        if self.http_tls {
            config.http_tls = true;
        }
        if let Some(v) = &self.tls_cert_file {
            config.tls_cert_file = Some(v.clone());
        }
        if let Some(v) = &self.tls_key_file {
            config.tls_key_file = Some(v.clone());
        }
        if let Some(v) = &self.tls_ca_file {
            config.tls_ca_file = Some(v.clone());
        }
        if let Some(v) = &self.p2p_listen {
            config.p2p_listen = Some(v.clone());
        }
        if !self.join.is_empty() {
            config.join = self.join.clone();
        }
        if let Some(v) = &self.cluster_secret_file {
            config.cluster_secret_file = Some(v.clone());
        }
        if let Some(v) = self.replicas {
            config.replicas = v;
        }
        if let Some(v) = self.failure_timeout_ms {
            config.failure_timeout_ms = v;
        }
        if let Some(v) = self.when_split {
            config.when_split = match v {
                WhenSplitArg::Serve => WhenSplit::Serve,
                WhenSplitArg::Deny => WhenSplit::Deny,
            };
        }
        if let Some(v) = &self.requirepass_file {
            config.requirepass_file = Some(v.clone());
        }
        if let Some(v) = &self.aclfile {
            config.aclfile = Some(v.clone());
        }
        if self.lite {
            config.lite = true;
        }
        if let Some(v) = &self.admin_token_file {
            config.admin_token_file = Some(v.clone());
        }
        if let Some(v) = self.protected_mode {
            config.protected_mode = matches!(v, YesNo::Yes);
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "resp_listen = \"127.0.0.1:1\"\nmemory_max_bytes = 1234\n").unwrap();
        let cli = Cli::parse_from([
            "sessiongrid",
            "node",
            "--config",
            file.to_str().unwrap(),
            "--resp-listen",
            "127.0.0.1:2",
        ]);
        let Command::Node(args) = cli.command else { panic!("node command") };
        let config = args.resolve().unwrap();
        assert_eq!(config.resp_listen, "127.0.0.1:2");
        assert_eq!(config.memory_max_bytes, 1234);
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "memory_max = 5\n").unwrap();
        let cli = Cli::parse_from(["sessiongrid", "node", "--config", file.to_str().unwrap()]);
        let Command::Node(args) = cli.command else { panic!("node command") };
        assert!(args.resolve().is_err());
    }

    #[test]
    fn the_documented_example_config_parses_and_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../node-config/single.toml");
        let cli = Cli::parse_from(["sessiongrid", "node", "--config", path]);
        let Command::Node(args) = cli.command else { panic!("node command") };
        let config = args.resolve().unwrap();
        assert_eq!(
            config,
            NodeConfig { data_dir: config.data_dir.clone(), ..NodeConfig::default() }
        );
    }
}
