//! What the blocking commands share: their timeout argument, and the wait between two tries.
//!
//! A blocked command does not sleep until woken by a write (the keys it waits on may live in
//! other partitions, on other nodes): it tries again after a pause that grows from
//! [`PAUSE_MIN`] to [`PAUSE_MAX`], until its timeout passes or its client hangs up. While it
//! waits, it counts in `INFO`'s `blocked_clients`, as in Redis.
//!
//! Clients blocked on a key through one node are served in the order they blocked: each waits
//! in that key's line ([`Lines`]) and tries only when it is first in the line of every key it
//! waits on (the client that blocked earliest always is, so lines never wait on each other),
//! and a newcomer queues behind clients already waiting. Clients blocked through different
//! nodes are not ordered among themselves.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use sessiongrid_model::num::strtod;
use sessiongrid_model::{time, Reply};
use tokio_util::sync::CancellationToken;

use super::Ctx;

/// Shortest and longest pause between two tries.
pub const PAUSE_MIN: Duration = Duration::from_millis(2);
pub const PAUSE_MAX: Duration = Duration::from_millis(50);

/// A blocking command's timeout in seconds, as Redis reads it (`getTimeoutFromObjectOrReply`):
/// a float, truncated to whole milliseconds; 0 waits forever (`None`).
pub fn timeout_arg(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let not_float = || Reply::error("ERR timeout is not a float or out of range");
    if arg.first().is_none_or(|b| b.is_ascii_whitespace()) {
        return Err(not_float());
    }
    let (seconds, used, _) = strtod(arg);
    if used != arg.len() || seconds.is_nan() {
        return Err(not_float());
    }
    let ms = seconds * 1000.0;
    // C's conversion of an out-of-range value gives i64::MIN on x86: "negative".
    let ms =
        if ms.is_finite() && ms.abs() < 9_223_372_036_854_775_808.0 { ms as i64 } else { i64::MIN };
    if ms < 0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    // Redis 7.0 adds the clock without checking: a deadline past i64::MAX wraps below zero,
    // which it never reaches, so the command waits forever.
    if ms == 0 || ms > i64::MAX - time::now_ms() as i64 {
        return Ok(None);
    }
    Ok(Some(Duration::from_millis(ms as u64)))
}

/// Runs `attempt` (told whether the command has waited before) until it answers, in turn with
/// the clients that blocked on the same `keys` before, pausing in between; `None` once
/// `timeout` has passed or the client has hung up (at once inside a transaction).
pub async fn in_turn<F, Fut>(
    ctx: &Ctx<'_>,
    timeout: Option<Duration>,
    keys: &[Bytes],
    mut attempt: F,
) -> Result<Option<Reply>, Reply>
where
    F: FnMut(bool) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Reply>, Reply>>,
{
    let mut waiter = Waiter::new(ctx, timeout, keys);
    let mut waited = false;
    loop {
        if waiter.my_turn() {
            if let Some(reply) = attempt(waited).await? {
                return Ok(Some(reply));
            }
        }
        if !waiter.pause().await {
            return Ok(None);
        }
        waited = true;
    }
}

/// The door's lines of blocked clients, per key (as stored), in the order they blocked.
#[derive(Default)]
pub struct Lines {
    inner: Mutex<LinesInner>,
}

#[derive(Default)]
struct LinesInner {
    next_ticket: u64,
    lines: HashMap<Bytes, VecDeque<u64>>,
}

impl Lines {
    /// Queues a client at the end of the line of each of `keys`; its ticket.
    fn join(&self, keys: &[Bytes]) -> u64 {
        let mut inner = self.inner.lock().expect("lines lock");
        inner.next_ticket += 1;
        let ticket = inner.next_ticket;
        for key in keys {
            inner.lines.entry(key.clone()).or_default().push_back(ticket);
        }
        ticket
    }

    fn leave(&self, ticket: u64, keys: &[Bytes]) {
        let mut inner = self.inner.lock().expect("lines lock");
        for key in keys {
            if let Some(line) = inner.lines.get_mut(key) {
                line.retain(|t| *t != ticket);
                if line.is_empty() {
                    inner.lines.remove(key);
                }
            }
        }
    }

    /// True if `ticket` (`None`: a client not queued yet) is first in every line of `keys`.
    fn first(&self, ticket: Option<u64>, keys: &[Bytes]) -> bool {
        let inner = self.inner.lock().expect("lines lock");
        keys.iter().all(|key| match inner.lines.get(key).and_then(|line| line.front()) {
            None => true,
            Some(front) => Some(*front) == ticket,
        })
    }
}

/// The waits of one blocked command.
pub struct Waiter<'a> {
    deadline: Option<Instant>,
    pause: Duration,
    hangup: CancellationToken,
    blocked_clients: &'a AtomicU64,
    counted: bool,
    lines: &'a Lines,
    /// The keys waited on, as stored, and the place in their lines once queued.
    keys: Vec<Bytes>,
    ticket: Option<u64>,
    /// Inside a transaction or script: tries once, waits in no line.
    at_once: bool,
}

impl<'a> Waiter<'a> {
    /// Starts the clock of a command that waits at most `timeout` (`None`: forever) for one of
    /// `keys` (as the client names them).
    pub fn new(ctx: &Ctx<'a>, timeout: Option<Duration>, keys: &[Bytes]) -> Self {
        // Inside a transaction a blocking command does not wait, as in Redis.
        let at_once = ctx.client.txn.txn().is_some();
        let timeout = if at_once { Some(Duration::ZERO) } else { timeout };
        Waiter {
            deadline: timeout.map(|t| Instant::now() + t),
            pause: PAUSE_MIN,
            hangup: ctx.client.hangup.clone(),
            blocked_clients: &ctx.shared.blocked_clients,
            counted: false,
            lines: &ctx.shared.block_lines,
            keys: keys.iter().map(|k| ctx.stored(k.clone())).collect(),
            ticket: None,
            at_once,
        }
    }

    /// True if this command may try now: no client that blocked earlier on its keys (through
    /// this node) still waits.
    pub fn my_turn(&self) -> bool {
        self.at_once || self.lines.first(self.ticket, &self.keys)
    }

    /// Waits before the next try. False once the timeout has passed or the client has hung up
    /// (or the door is stopping): the command then answers a timeout.
    pub async fn pause(&mut self) -> bool {
        let wait = match self.deadline {
            None => self.pause,
            Some(at) => match at.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(self.pause),
                _ => return false,
            },
        };
        if !self.counted {
            self.blocked_clients.fetch_add(1, Ordering::Relaxed);
            self.counted = true;
        }
        if self.ticket.is_none() {
            self.ticket = Some(self.lines.join(&self.keys));
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.hangup.cancelled() => return false,
        }
        self.pause = (self.pause * 2).min(PAUSE_MAX);
        true
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(ticket) = self.ticket {
            self.lines.leave(ticket, &self.keys);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_redis_reads_them() {
        assert_eq!(timeout_arg(b"0"), Ok(None));
        assert_eq!(timeout_arg(b"0.0001"), Ok(None), "under a millisecond waits forever");
        assert_eq!(timeout_arg(b"1.5"), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(timeout_arg(b"0x1"), Ok(Some(Duration::from_secs(1))));
        let negative = Err(Reply::error("ERR timeout is negative"));
        for arg in [&b"-1"[..], b"inf", b"-inf", b"1e30"] {
            assert_eq!(timeout_arg(arg), negative, "{arg:?}");
        }
        let not_float = Err(Reply::error("ERR timeout is not a float or out of range"));
        for arg in [&b"abc"[..], b" 1", b"nan", b"", b"1x"] {
            assert_eq!(timeout_arg(arg), not_float, "{arg:?}");
        }
        assert_eq!(timeout_arg(b"9223371000000000"), Ok(None), "a deadline past i64::MAX");
    }
}
