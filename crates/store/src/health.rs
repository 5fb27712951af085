//! Whether the disk takes writes. Once a write fails (a full disk, an I/O error), the node
//! refuses writes up front with that error instead of letting each fail on its own, and keeps
//! serving reads; a small probe write, at most once a second, tells when the disk takes writes
//! again (space freed: RocksDB resumes on its own once it sees it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use metrics::Gauge;
use tracing::{info, warn};

use crate::store::StoreError;

/// How often a refusing disk is tried again.
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct WriteHealth {
    /// Set while writes are refused: the fast path reads only this.
    refusing: AtomicBool,
    state: Mutex<Option<Refusing>>,
    /// 1 while writes are refused.
    gauge: Gauge,
}

struct Refusing {
    error: StoreError,
    /// When the disk was last tried (a failed write or a probe).
    tried: Instant,
}

impl WriteHealth {
    pub(crate) fn new() -> WriteHealth {
        let gauge = metrics::gauge!("sessiongrid_store_refusing_writes");
        gauge.set(0.0);
        WriteHealth { refusing: AtomicBool::new(false), state: Mutex::new(None), gauge }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Refusing>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A write failed with `error`: writes are refused from now on.
    pub(crate) fn failed(&self, error: &StoreError) {
        let mut state = self.lock();
        if state.is_none() {
            warn!(error = %error, "the disk refuses writes: writes are refused, reads served");
        }
        *state = Some(Refusing { error: error.clone(), tried: Instant::now() });
        self.refusing.store(true, Ordering::Release);
        self.gauge.set(1.0);
    }

    /// A write succeeded: writes are taken again.
    pub(crate) fn succeeded(&self) {
        if !self.refusing.load(Ordering::Acquire) {
            return;
        }
        if self.lock().take().is_some() {
            info!("the disk takes writes again");
        }
        self.refusing.store(false, Ordering::Release);
        self.gauge.set(0.0);
    }

    /// The error writes are refused with, if they are. Once a second, one caller runs `probe`
    /// first: if it succeeds, writes are taken again.
    pub(crate) fn refusal(
        &self,
        probe: impl FnOnce() -> Result<(), StoreError>,
    ) -> Option<StoreError> {
        if !self.refusing.load(Ordering::Acquire) {
            return None;
        }
        {
            let mut state = self.lock();
            let refusing = state.as_mut()?;
            if refusing.tried.elapsed() < PROBE_EVERY {
                return Some(refusing.error.clone());
            }
            // This caller probes; the others go on refusing meanwhile.
            refusing.tried = Instant::now();
        }
        match probe() {
            Ok(()) => {
                self.succeeded();
                None
            }
            Err(e) => {
                self.failed(&e);
                Some(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_refuses_writes_until_a_probe_succeeds() {
        let health = WriteHealth::new();
        assert!(health.refusal(|| unreachable!("no probe while writes are taken")).is_none());
        health.failed(&StoreError::Cancelled);
        // Within the second after the failure, writes are refused without trying the disk.
        assert!(health.refusal(|| unreachable!("no probe within a second")).is_some());
        health.lock().as_mut().expect("refusing").tried -= PROBE_EVERY;
        assert!(health.refusal(|| Err(StoreError::Cancelled)).is_some(), "the probe failed");
        health.lock().as_mut().expect("refusing").tried -= PROBE_EVERY;
        assert!(health.refusal(|| Ok(())).is_none(), "the probe succeeded");
        assert!(health.refusal(|| unreachable!("taken again")).is_none());
    }

    #[test]
    fn any_successful_write_ends_the_refusal() {
        let health = WriteHealth::new();
        health.failed(&StoreError::Cancelled);
        health.succeeded();
        assert!(health.refusal(|| unreachable!()).is_none());
    }
}
