//! Session events between nodes, delivered at least once to every live member (attribute
//! changes to every live member that watches them, see [`crate::interest`]).
//!
//! A partition's primary sends the events of its writes to every other member
//! ([`Outboxes`]; the partition picks the members of each) and keeps each member's until that
//! member acknowledges them: one message in flight per member, the events published meanwhile
//! going in the next one once the ack comes, and all of them again if no ack comes within the
//! retransmission interval. A receiver
//! ([`Inflow`]) delivers each event once per sender: a copy sent again (a lost ack, a
//! retransmission crossing its ack) is recognised by its version, as a sender's events of a
//! partition come in version order. A member down for long loses the oldest of what it missed
//! past [`OUTBOX_MAX`]; a restarted receiver (and its reconnecting subscribers) starts afresh.

use std::collections::{BTreeMap, HashMap, VecDeque};

use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::PartitionId;

use crate::placement::NodeId;

/// Events kept per member and partition; past this, the oldest are dropped (and counted).
pub const OUTBOX_MAX: usize = 10_000;
/// Events per message at most (all events of one write go together all the same).
pub const MESSAGE_EVENTS_MAX: usize = 512;

/// The events one member has not acknowledged yet, oldest first.
#[derive(Default)]
struct Outbox {
    events: VecDeque<SessionEvent>,
    /// When the message in flight was sent, if one is.
    in_flight: Option<u64>,
}

/// A message to send: `(member, events)`.
pub type EventsOut = (NodeId, Vec<SessionEvent>);

/// What one partition still has to get to each other member.
#[derive(Default)]
pub struct Outboxes {
    boxes: BTreeMap<NodeId, Outbox>,
}

impl Outboxes {
    /// Queues `events` for each of `members` and sends to those with nothing in flight.
    pub fn publish(
        &mut self,
        now: u64,
        members: impl Iterator<Item = NodeId>,
        events: &[SessionEvent],
        out: &mut Vec<EventsOut>,
    ) {
        for n in members {
            let outbox = self.boxes.entry(n).or_default();
            outbox.events.extend(events.iter().cloned());
            let excess = outbox.events.len().saturating_sub(OUTBOX_MAX);
            if excess > 0 {
                outbox.events.drain(..excess);
                metrics::counter!("sessiongrid_session_events_dropped_total")
                    .increment(excess as u64);
                tracing::warn!(member = n, dropped = excess, "a member is far behind on events");
            }
            if outbox.in_flight.is_none() {
                send(now, n, outbox, out);
            }
        }
    }

    /// `from` has every event up to version `through`: the next ones go now.
    pub fn acked(&mut self, now: u64, from: NodeId, through: u64, out: &mut Vec<EventsOut>) {
        let Some(outbox) = self.boxes.get_mut(&from) else { return };
        while outbox.events.front().is_some_and(|e| e.version <= through) {
            outbox.events.pop_front();
        }
        outbox.in_flight = None;
        send(now, from, outbox, out);
    }

    /// Sends again what waited `retransmit_ms` for its ack.
    pub fn retransmit(&mut self, now: u64, retransmit_ms: u64, out: &mut Vec<EventsOut>) {
        for (&n, outbox) in self.boxes.iter_mut() {
            if outbox.in_flight.is_some_and(|at| now >= at + retransmit_ms) {
                send(now, n, outbox, out);
            }
        }
    }

    /// When [`Outboxes::retransmit`] next has work, if ever.
    pub fn next_retransmit(&self, retransmit_ms: u64) -> Option<u64> {
        self.boxes.values().filter_map(|o| o.in_flight).min().map(|at| at + retransmit_ms)
    }

    /// Every event up to this version is with every member; `None` if none is on its way.
    pub fn delivered_through(&self) -> Option<u64> {
        self.boxes
            .values()
            .filter_map(|o| o.events.front())
            .map(|e| e.version.saturating_sub(1))
            .min()
    }

    /// Forgets nodes that are no longer members.
    pub fn keep_only(&mut self, members: &[NodeId]) {
        self.boxes.retain(|n, _| members.binary_search(n).is_ok());
    }
}

/// Sends the oldest of `outbox`'s events (whole writes, up to [`MESSAGE_EVENTS_MAX`] events).
fn send(now: u64, to: NodeId, outbox: &mut Outbox, out: &mut Vec<EventsOut>) {
    let Some(first) = outbox.events.front() else {
        outbox.in_flight = None;
        return;
    };
    let mut last = first.version;
    let batch: Vec<SessionEvent> = outbox
        .events
        .iter()
        .enumerate()
        .take_while(|(i, e)| {
            let fits = *i < MESSAGE_EVENTS_MAX || e.version == last;
            last = e.version;
            fits
        })
        .map(|(_, e)| e.clone())
        .collect();
    outbox.in_flight = Some(now);
    out.push((to, batch));
}

/// The events a node has delivered, per sender and partition: the newest version.
#[derive(Default)]
pub struct Inflow {
    delivered: HashMap<(NodeId, PartitionId), u64>,
}

impl Inflow {
    /// Events `from` sent of partition `p`: returns those not delivered before, and the
    /// version to acknowledge (every event up to it is delivered).
    pub fn receive(
        &mut self,
        from: NodeId,
        p: PartitionId,
        events: Vec<SessionEvent>,
    ) -> (Vec<SessionEvent>, u64) {
        let seen = self.delivered.entry((from, p)).or_default();
        let before = *seen;
        let fresh: Vec<SessionEvent> = events.into_iter().filter(|e| e.version > before).collect();
        // A sender's events come in version order; a peer that sends them otherwise loses
        // nothing here but its own later copies.
        if let Some(newest) = fresh.iter().map(|e| e.version).max() {
            *seen = newest;
        }
        (fresh, *seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sessiongrid_model::session::event::EventKind;

    fn event(version: u64) -> SessionEvent {
        SessionEvent {
            kind: EventKind::Created,
            id: Bytes::from(format!("s{version}")),
            group: Bytes::new(),
            principal: None,
            moved_to: None,
            at_ms: 1,
            node: 1,
            partition: 0,
            version,
            session_version: version,
        }
    }

    fn versions(events: &[SessionEvent]) -> Vec<u64> {
        events.iter().map(|e| e.version).collect()
    }

    #[test]
    fn one_message_in_flight_per_member_and_the_rest_after_its_ack() {
        let (mut boxes, mut out) = (Outboxes::default(), Vec::new());
        boxes.publish(0, [2, 3].into_iter(), &[event(1)], &mut out);
        assert_eq!(out.len(), 2, "one message per member");
        out.clear();
        boxes.publish(1, [2, 3].into_iter(), &[event(2), event(2)], &mut out);
        assert!(out.is_empty(), "waits for the ack of the first");
        boxes.acked(2, 2, 1, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].0, versions(&out[0].1)), (2, vec![2, 2]));
        out.clear();
        boxes.acked(3, 2, 2, &mut out);
        assert!(out.is_empty(), "nothing left for member 2");
        assert_eq!(boxes.next_retransmit(100), Some(100), "member 3 never acknowledged");
    }

    #[test]
    fn a_lost_message_is_sent_again_with_all_that_followed() {
        let (mut boxes, mut out) = (Outboxes::default(), Vec::new());
        boxes.publish(0, [2].into_iter(), &[event(1)], &mut out);
        boxes.publish(10, [2].into_iter(), &[event(2)], &mut out);
        out.clear(); // Lost on the way.
        boxes.retransmit(99, 100, &mut out);
        assert!(out.is_empty(), "not yet");
        boxes.retransmit(100, 100, &mut out);
        assert_eq!(versions(&out[0].1), vec![1, 2]);
    }

    #[test]
    fn a_message_splits_only_between_writes() {
        let (mut boxes, mut out) = (Outboxes::default(), Vec::new());
        let mut events: Vec<SessionEvent> = (1..=MESSAGE_EVENTS_MAX as u64).map(event).collect();
        events.push(event(MESSAGE_EVENTS_MAX as u64)); // Two events of the last write.
        events.push(event(MESSAGE_EVENTS_MAX as u64 + 1));
        boxes.publish(0, [2].into_iter(), &events, &mut out);
        assert_eq!(out[0].1.len(), MESSAGE_EVENTS_MAX + 1);
        out.clear();
        boxes.acked(1, 2, MESSAGE_EVENTS_MAX as u64, &mut out);
        assert_eq!(versions(&out[0].1), vec![MESSAGE_EVENTS_MAX as u64 + 1]);
    }

    #[test]
    fn a_member_far_behind_loses_the_oldest() {
        let (mut boxes, mut out) = (Outboxes::default(), Vec::new());
        let events: Vec<SessionEvent> = (1..=OUTBOX_MAX as u64 + 5).map(event).collect();
        boxes.publish(0, [2].into_iter(), &events, &mut out);
        assert_eq!(out[0].1[0].version, 6);
    }

    #[test]
    fn a_receiver_delivers_each_event_once_per_sender() {
        let mut inflow = Inflow::default();
        let (fresh, ack) = inflow.receive(1, 0, vec![event(1), event(2)]);
        assert_eq!((versions(&fresh), ack), (vec![1, 2], 2));
        // A retransmission crossing the ack, with a new event.
        let (fresh, ack) = inflow.receive(1, 0, vec![event(1), event(2), event(3)]);
        assert_eq!((versions(&fresh), ack), (vec![3], 3));
        // A stale copy changes nothing, and acknowledges what was delivered.
        let (fresh, ack) = inflow.receive(1, 0, vec![event(2)]);
        assert_eq!((versions(&fresh), ack), (vec![], 3));
        // Another sender (a new primary publishing again what it cannot know was delivered).
        let (fresh, _) = inflow.receive(4, 0, vec![event(3)]);
        assert_eq!(versions(&fresh), vec![3]);
    }
}
