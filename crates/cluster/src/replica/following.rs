//! A follower's side of a partition: it applies its primary's appends in order, asks to be
//! synced when one does not continue its log, and installs snapshots chunk by chunk.

use tracing::{debug, warn};

use super::{Base, Effect};
use crate::msg::{Chunk, LogEntry, LogPos, ReplicaMsg};
use crate::placement::NodeId;
use crate::storage::PartitionStore;
use crate::Now;

/// What only a follower keeps.
#[derive(Default)]
pub(super) struct Following {
    /// The primary of the table it follows; messages for followers come from it only.
    primary: Option<NodeId>,
    /// The snapshot being installed, if one is.
    incoming: Option<IncomingSnapshot>,
    /// When it last asked its primary to be synced (monotonic).
    sync_asked_at: Option<u64>,
}

struct IncomingSnapshot {
    id: u64,
    next_seq: u32,
}

impl Following {
    /// Follows `primary` in a new table.
    pub(super) fn follow(&mut self, primary: Option<NodeId>) {
        self.primary = primary;
        self.sync_asked_at = None;
    }

    pub(super) fn follows(&self, from: NodeId) -> bool {
        self.primary == Some(from)
    }

    pub(super) fn on_append<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        from: NodeId,
        prev: LogPos,
        entries: Vec<LogEntry>,
        out: &mut Vec<Effect>,
    ) {
        if self.incoming.is_some() {
            return;
        }
        if b.store.refuses_writes().is_some() {
            // A full disk: nothing is applied or acknowledged, and the primary sends again
            // later. Applied, the write would fail and restart this partition every time.
            return;
        }
        let Some(pos) = b.pos else {
            return self.ask_sync(b, now, from, out);
        };
        tracing::trace!(partition = b.p, node = b.me, ?prev, ?pos, n = entries.len(), "append");
        let start = if prev == pos {
            0
        } else if let Some(i) = entries.iter().position(|e| e.pos == pos) {
            i + 1
        } else if entries.last().is_some_and(|e| b.log.contains(e.pos)) {
            entries.len() // a duplicate of what this replica already has
        } else {
            return self.ask_sync(b, now, from, out);
        };
        for entry in entries.into_iter().skip(start) {
            if b.pos.is_some_and(|p| p.version >= entry.pos.version) {
                // Not a continuation of this log: a confused or lying primary. Checked before
                // the write, which would otherwise overwrite newer state.
                warn!(partition = b.p, from, "an append that does not move forward; ignored");
                break;
            }
            tracing::trace!(partition = b.p, node = b.me, version = entry.pos.version, key = ?entry.key, "replicated");
            if let Err(e) = b.store.append(&entry, None) {
                warn!(partition = b.p, error = %e, "could not apply a replicated write");
                break;
            }
            b.max_version = b.max_version.max(entry.pos.version);
            b.pos = Some(entry.pos);
            b.keep_unconfirmed(&entry.events);
            b.log.push(entry);
        }
        if let Some(pos) = b.pos {
            out.push(Effect::Send(b.p, from, ReplicaMsg::Ack { pos, epoch: b.epoch }));
        }
    }

    fn ask_sync<S: PartitionStore>(
        &mut self,
        b: &Base<S>,
        now: Now,
        from: NodeId,
        out: &mut Vec<Effect>,
    ) {
        let recently = self.sync_asked_at.is_some_and(|at| now.mono < at + b.cfg.retransmit_ms);
        if !recently {
            self.sync_asked_at = Some(now.mono);
            let ask = ReplicaMsg::SyncRequest { pos: b.pos, epoch: b.epoch };
            out.push(Effect::Send(b.p, from, ask));
        }
    }

    pub(super) fn on_chunk<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        from: NodeId,
        chunk: Chunk,
        out: &mut Vec<Effect>,
    ) {
        let Chunk { id, seq, after, through, entries, as_of } = chunk;
        let ack = ReplicaMsg::ChunkAck { id, seq, epoch: b.epoch };
        if b.finished == Some((id, seq)) {
            return out.push(Effect::Send(b.p, from, ack));
        }
        if b.store.refuses_writes().is_some() {
            return; // as for an append: the chunk comes again
        }
        if seq == 0 && self.incoming.as_ref().is_none_or(|s| s.id != id) {
            // A primary numbers its snapshots upwards: chunk 0 of one it began before the
            // newest it sent here is a late or repeated copy, and installing it would undo the
            // writes appended since.
            if b.snapshot_seen.is_some_and(|(primary, newest)| primary == from && id <= newest) {
                debug!(partition = b.p, node = b.me, from, id, "late snapshot chunk ignored");
                return;
            }
            b.snapshot_seen = Some((from, id));
            b.set_position(None);
            self.incoming = Some(IncomingSnapshot { id, next_seq: 0 });
        }
        let Some(incoming) = self.incoming.as_mut().filter(|s| s.id == id) else {
            if self.incoming.is_none() && b.finished.is_none_or(|(done, _)| done != id) {
                // A snapshot this replica dropped midway (left out of the partition for a
                // while): the primary would send this chunk for good.
                self.ask_sync(b, now, from, out);
            }
            return;
        };
        if seq.checked_add(1) == Some(incoming.next_seq) {
            return out.push(Effect::Send(b.p, from, ack));
        }
        if seq != incoming.next_seq {
            return;
        }
        tracing::trace!(partition = b.p, node = b.me, id, seq, n = entries.len(), ?as_of, "chunk");
        if let Err(e) = b.store.replace_range(after.as_deref(), through.as_deref(), &entries) {
            warn!(partition = b.p, error = %e, "could not install a snapshot chunk");
            return;
        }
        incoming.next_seq += 1;
        if through.is_none() {
            self.incoming = None;
            b.finished = Some((id, seq));
            b.set_position(Some(as_of));
            b.log.reset(as_of);
            b.max_version = b.max_version.max(as_of.version);
            debug!(partition = b.p, node = b.me, "snapshot installed");
        }
        out.push(Effect::Send(b.p, from, ack));
    }
}
