//! The appends of one partition queued together for one peer, joined into one.
//!
//! A primary sends each write to its followers as its own [`ReplicaMsg::Append`] the moment it
//! is on disk. Under load a hot partition's writes of one commit group reach the peer's stream
//! together; joined, the follower applies them as one message and acknowledges them once,
//! instead of paying a message, a commit and an acknowledgement for each. A follower treats a
//! joined append as any append of several entries (as catch-up sends them), so the receiver
//! cannot tell the difference.
//!
//! Only what changes nothing else is joined: an append continuing, in the same epoch, the last
//! append of its partition in the batch, with no other message of that partition in between
//! (so each partition's messages keep their order), and nothing but other partitions'
//! replication in between (membership, requests and answers keep their place relative to
//! every append).

use std::collections::HashMap;

use crate::msg::{LogEntry, LogPos, Msg, ReplicaMsg};
use crate::topology::Epoch;
use sessiongrid_model::PartitionId;

/// Most bytes of keys and values one joined append carries (a catch-up message's share).
pub const JOINED_BYTES_MAX: usize = 1 << 20;

/// Joins `msgs` (in the order they are to be sent to one peer) as the module says; returns how
/// many appends were joined into an earlier one.
pub fn coalesce(msgs: &mut Vec<Msg>) -> usize {
    if msgs.len() < 2 {
        return 0;
    }
    let mut out: Vec<Msg> = Vec::with_capacity(msgs.len());
    // The append each partition's next one may join: its index in `out`, and its bytes.
    let mut open: HashMap<PartitionId, (usize, usize)> = HashMap::new();
    let mut joined = 0;
    for msg in msgs.drain(..) {
        let (p, epoch) = match &msg {
            Msg::Replica { partition, epoch, .. } => (*partition, *epoch),
            _ => {
                open.clear();
                out.push(msg);
                continue;
            }
        };
        let Msg::Replica { body: ReplicaMsg::Append { prev, entries, published }, .. } = msg else {
            open.remove(&p);
            out.push(msg);
            continue;
        };
        let bytes: usize = entries.iter().map(|e| e.cost_bytes()).sum();
        let entries = match open.get(&p) {
            Some(&(i, held)) if held + bytes <= JOINED_BYTES_MAX => {
                match join(&mut out[i], epoch, prev, entries, published) {
                    Ok(()) => {
                        open.insert(p, (i, held + bytes));
                        joined += 1;
                        continue;
                    }
                    Err(entries) => entries,
                }
            }
            _ => entries,
        };
        open.insert(p, (out.len(), bytes));
        let body = ReplicaMsg::Append { prev, entries, published };
        out.push(Msg::Replica { partition: p, epoch, body });
    }
    *msgs = out;
    joined
}

/// Adds `entries` (an append of `epoch` from `prev`) to the append `earlier` if they continue
/// it; gives them back if not.
fn join(
    earlier: &mut Msg,
    epoch: Epoch,
    prev: LogPos,
    entries: Vec<LogEntry>,
    published: u64,
) -> Result<(), Vec<LogEntry>> {
    let Msg::Replica {
        epoch: e,
        body: ReplicaMsg::Append { prev: from, entries: had, published: at },
        ..
    } = earlier
    else {
        return Err(entries);
    };
    let end = had.last().map_or(*from, |last| last.pos);
    let continues = *e == epoch
        && end == prev
        && entries.first().is_none_or(|first| first.pos.version > end.version);
    if !continues {
        return Err(entries);
    }
    had.extend(entries);
    *at = (*at).max(published);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{MemberMsg, Term};
    use bytes::Bytes;
    use sessiongrid_model::Delta;

    fn at(version: u64) -> LogPos {
        LogPos { term: Term { epoch: 3, primary: 1 }, version }
    }

    fn entry(version: u64) -> LogEntry {
        LogEntry {
            pos: at(version),
            key: Bytes::from_static(b"k"),
            delta: Delta::Whole(None),
            events: Vec::new(),
        }
    }

    fn append(p: PartitionId, prev: u64, versions: &[u64]) -> Msg {
        let entries = versions.iter().map(|&v| entry(v)).collect();
        let body = ReplicaMsg::Append { prev: at(prev), entries, published: prev };
        Msg::Replica { partition: p, epoch: 3, body }
    }

    fn ack(p: PartitionId) -> Msg {
        Msg::Replica { partition: p, epoch: 3, body: ReplicaMsg::Ack { pos: at(1), epoch: 3 } }
    }

    #[test]
    fn a_partitions_appends_join_across_other_partitions_replication() {
        let mut msgs = vec![append(0, 0, &[1]), append(1, 5, &[6]), append(0, 1, &[2, 3])];
        msgs.extend([ack(2), append(0, 3, &[])]);
        assert_eq!(coalesce(&mut msgs), 2);
        let mut joined = append(0, 0, &[1, 2, 3]);
        if let Msg::Replica { body: ReplicaMsg::Append { published, .. }, .. } = &mut joined {
            *published = 3;
        }
        assert_eq!(msgs, vec![joined, append(1, 5, &[6]), ack(2)]);
    }

    #[test]
    fn nothing_joins_past_a_gap_another_epoch_its_own_partitions_message_or_other_traffic() {
        let gap = vec![append(0, 0, &[1]), append(0, 2, &[3])];
        let mut epoch = vec![append(0, 0, &[1]), append(0, 1, &[2])];
        if let Msg::Replica { epoch: e, .. } = &mut epoch[1] {
            *e = 4;
        }
        let own = vec![append(0, 0, &[1]), ack(0), append(0, 1, &[2])];
        let other =
            vec![append(0, 0, &[1]), Msg::Membership(MemberMsg::TopologyPull), append(0, 1, &[2])];
        for mut msgs in [gap, epoch, own, other] {
            let before = msgs.clone();
            assert_eq!(coalesce(&mut msgs), 0);
            assert_eq!(msgs, before);
        }
    }

    #[test]
    fn a_joined_append_stays_under_its_byte_cap() {
        let big = |prev: u64| {
            let mut m = append(0, prev, &[prev + 1]);
            if let Msg::Replica { body: ReplicaMsg::Append { entries, .. }, .. } = &mut m {
                let value = Bytes::from(vec![0u8; JOINED_BYTES_MAX / 2]);
                entries[0].delta = Delta::Whole(Some(sessiongrid_model::Entry::new(
                    sessiongrid_model::Value::Str(value),
                )));
            }
            m
        };
        let mut msgs = vec![big(0), big(1), big(2)];
        assert_eq!(coalesce(&mut msgs), 0, "each half a cap with its key: no two fit");
        assert_eq!(msgs.len(), 3);
    }
}
