//! `sessiongrid dev-cluster`: N nodes on loopback in one command, for trying the cluster out.
//! Each node is a child process with its own data directory and ports; Ctrl-C (or SIGTERM)
//! stops them all.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Args, Debug)]
pub struct DevClusterArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u16,
    /// Parent of the nodes' data directories.
    #[arg(long, default_value = "./data/dev-cluster")]
    pub data_dir: PathBuf,
    /// Node i listens for Redis clients on `resp_base + i`.
    #[arg(long, default_value_t = 6380)]
    pub resp_base: u16,
    /// Node i serves HTTP on `http_base + i`.
    #[arg(long, default_value_t = 7080)]
    pub http_base: u16,
    /// Node i talks to its peers on `p2p_base + i`.
    #[arg(long, default_value_t = 7180)]
    pub p2p_base: u16,
    /// Copies of each partition.
    #[arg(long, default_value_t = 2)]
    pub replicas: usize,
}

/// The cluster secret of this dev cluster, created once (mode 0600).
fn secret_file(dir: &Path) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("cluster-secret");
    if !path.exists() {
        let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(secret.as_bytes())?;
    }
    Ok(path)
}

pub async fn run(args: DevClusterArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let secret = secret_file(&args.data_dir)?;
    let exe = std::env::current_exe().context("locating the sessiongrid binary")?;
    let seed = format!("127.0.0.1:{}", args.p2p_base);
    let mut children: Vec<Child> = Vec::new();
    println!("{:<6} {:<18} {:<18} {:<18} data", "node", "redis", "http", "p2p");
    for i in 0..args.nodes {
        let (resp, http, p2p) = (
            format!("127.0.0.1:{}", args.resp_base + i),
            format!("127.0.0.1:{}", args.http_base + i),
            format!("127.0.0.1:{}", args.p2p_base + i),
        );
        let data = args.data_dir.join(format!("node{i}"));
        let mut cmd = Command::new(&exe);
        cmd.arg("node")
            .args(["--data-dir", &data.to_string_lossy()])
            .args(["--resp-listen", &resp, "--http-listen", &http, "--p2p-listen", &p2p])
            .args(["--replicas", &args.replicas.to_string()])
            .args(["--cluster-secret-file", &secret.to_string_lossy()]);
        if i > 0 {
            cmd.args(["--join", &seed]);
        }
        children.push(cmd.spawn().with_context(|| format!("starting node {i}"))?);
        println!("{i:<6} {resp:<18} {http:<18} {p2p:<18} {}", data.display());
    }
    println!("redis-cli -p {} reaches the whole cluster; Ctrl-C stops it", args.resp_base);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    for child in &children {
        // SIGTERM: each node drains and syncs its log before exiting.
        let _ = Command::new("kill").arg(child.id().to_string()).status();
    }
    for mut child in children {
        let _ = child.wait();
    }
    Ok(())
}
