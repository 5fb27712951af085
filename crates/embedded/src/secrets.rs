//! Secrets come from files that only their owner may read; they never enter the config struct.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context};

/// Reads a secret file, refusing one that others can read. Trailing newlines are dropped.
pub fn read_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("secret {}", path.display()))?;
    if meta.permissions().mode() & 0o004 != 0 {
        bail!("secret {} is world-readable; chmod 600 it", path.display());
    }
    let mut bytes = std::fs::read(path).with_context(|| format!("secret {}", path.display()))?;
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    if bytes.is_empty() {
        bail!("secret {} is empty", path.display());
    }
    Ok(bytes)
}
