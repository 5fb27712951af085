//! The audit trail: what was done to other people's sessions and to the node, by whom and from
//! where. Each record is one log line at INFO on the target `sessiongrid::audit` (select it with
//! `RUST_LOG=sessiongrid::audit=info`, or route it apart in a JSON log pipeline), with the fields
//! `action`, `who`, `from`, `target` and `outcome`, and counts in
//! `sessiongrid_audit_events_total{action,outcome}`.
//!
//! Recorded: forced logouts of a user (`SESSION.KICKUSER`, `DELETE /api/v1/users/{p}/sessions`),
//! node drains and forgets, `SHUTDOWN`, `FLUSHALL`/`FLUSHDB`/`SWAPDB`, `CONFIG SET`,
//! `CLIENT KILL`, and every refused credential (`AUTH`/`HELLO AUTH`, an HTTP call without the
//! admin token).

/// Records one audited action.
pub fn record(action: &'static str, who: &str, from: &str, target: &str, outcome: &'static str) {
    tracing::info!(target: "sessiongrid::audit", action, who, from, target, outcome, "audit");
    let labels = [("action", action), ("outcome", outcome)];
    metrics::counter!("sessiongrid_audit_events_total", &labels).increment(1);
}
