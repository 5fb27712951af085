//! A node's libp2p identity, kept in its data directory so a restarted node rejoins as itself.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use libp2p::identity::Keypair;
use libp2p::PeerId;
use sessiongrid_cluster::NodeId;

const KEY_FILE: &str = "node.key";

/// Loads the node's key from `data_dir`, creating one on first start.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Keypair> {
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        return Keypair::from_protobuf_encoding(&bytes)
            .with_context(|| format!("{} is not a node key", path.display()));
    }
    fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let key = Keypair::generate_ed25519();
    let bytes = key.to_protobuf_encoding().context("encoding the node key")?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    Ok(key)
}

/// A peer's position in the grid's id space: FNV-1a of its peer id, the same on every node and
/// every build.
pub fn node_id(peer: &PeerId) -> NodeId {
    peer.to_bytes().iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_keeps_its_identity_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        let id = node_id(&a.public().to_peer_id());
        assert_eq!(id, node_id(&b.public().to_peer_id()));
    }
}
