//! [`EventBus`]: session events on their way to this node's subscribers, and the counts behind
//! `SESSION.STATS`.
//!
//! On a single node the partitions publish here directly. In a cluster the protocol node does:
//! events of partitions this node is primary of, and events other primaries sent it. Each node
//! thus sees every event of the cluster; it counts those it published itself (`node`) apart
//! from all it saw (`cluster`, since this node started). Delivery is at least once: primaries
//! send events until each member acknowledges them, a member delivers each once per sender
//! (`sessiongrid_cluster::events`), and a failover can repeat an event, which
//! `(partition, version)` identifies.
//!
//! Attribute changes make events that travel only while some member watches
//! (`sessiongrid_cluster::interest`): a subscriber holds an [`EventWatch`], which
//! [`Grid::watch_events`](crate::Grid::watch_events) gives once every member has heard. Until
//! then, and when nobody watches, a primary announces its attribute changes on its own node.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use metrics::Counter;
use sessiongrid_model::session::event::{EventKind, SessionEvent};
use tokio::sync::broadcast;

/// Events buffered per subscriber; a subscriber further behind loses the oldest and is told.
const SUBSCRIBER_BUFFER: usize = 64 * 1024;
/// Groups counted separately; events of further groups are counted under no group only.
const GROUPS_COUNTED_MAX: usize = 1024;

pub const KINDS: [EventKind; 9] = [
    EventKind::Created,
    EventKind::Expired,
    EventKind::Invalidated,
    EventKind::Rotated,
    EventKind::Evicted,
    EventKind::Kicked,
    EventKind::Login,
    EventKind::Logout,
    EventKind::AttributeChanged,
];

fn index(kind: EventKind) -> usize {
    KINDS.iter().position(|k| *k == kind).expect("every kind is listed")
}

/// Events by kind (in [`KINDS`] order): published by this node, and seen from the whole cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub node: [u64; KINDS.len()],
    pub cluster: [u64; KINDS.len()],
}

impl EventCounts {
    pub fn node(&self, kind: EventKind) -> u64 {
        self.node[index(kind)]
    }

    pub fn cluster(&self, kind: EventKind) -> u64 {
        self.cluster[index(kind)]
    }
}

pub struct EventBus {
    tx: broadcast::Sender<Arc<SessionEvent>>,
    me: AtomicU64,
    /// Subscribers of this node that watch session events (each an [`EventWatch`]).
    watchers: AtomicUsize,
    /// Counts of every group together (`None`) and of each group.
    counts: Mutex<HashMap<Option<Bytes>, EventCounts>>,
    /// `sessiongrid_session_events_total` by kind, in [`KINDS`] order.
    published: [Counter; KINDS.len()],
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(SUBSCRIBER_BUFFER).0,
            me: AtomicU64::new(0),
            watchers: AtomicUsize::new(0),
            counts: Mutex::new(HashMap::new()),
            published: KINDS.map(|kind| {
                metrics::counter!("sessiongrid_session_events_total", "event" => kind.name())
            }),
        }
    }
}

impl EventBus {
    /// This node's id, to tell its own events from others'.
    pub fn set_node(&self, me: u64) {
        self.me.store(me, Ordering::Relaxed);
    }

    pub fn node(&self) -> u64 {
        self.me.load(Ordering::Relaxed)
    }

    pub fn publish(&self, events: Vec<SessionEvent>) {
        let me = self.node();
        {
            let mut counts = self.counts.lock().expect("event counts lock");
            for e in &events {
                let i = index(e.kind);
                let mine = e.node == me;
                let count = |c: &mut EventCounts| {
                    c.cluster[i] += 1;
                    c.node[i] += u64::from(mine);
                };
                count(counts.entry(None).or_default());
                let room = counts.len() <= GROUPS_COUNTED_MAX;
                match counts.entry(Some(e.group.clone())) {
                    Entry::Occupied(c) => count(c.into_mut()),
                    Entry::Vacant(c) if room => count(c.insert(EventCounts::default())),
                    Entry::Vacant(_) => {}
                }
                if mine {
                    self.published[i].increment(1);
                }
            }
        }
        for e in events {
            // No subscriber is not an error.
            let _ = self.tx.send(Arc::new(e));
        }
    }

    /// A feed of the events that reach this node. It takes no watch: attribute changes made on
    /// other nodes reach it only while some subscriber holds one ([`Grid::watch_events`]).
    ///
    /// [`Grid::watch_events`]: crate::Grid::watch_events
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SessionEvent>> {
        self.tx.subscribe()
    }

    /// Counts a watcher until the guard is dropped; [`Grid::watch_events`](crate::Grid)
    /// also waits for the cluster to hear.
    pub(crate) fn watch(self: &Arc<Self>) -> EventWatch {
        self.watchers.fetch_add(1, Ordering::SeqCst);
        metrics::gauge!("sessiongrid_session_event_watchers").increment(1);
        EventWatch { bus: self.clone() }
    }

    /// Subscribers of this node watching session events now.
    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::SeqCst)
    }

    pub fn counts(&self, group: Option<&[u8]>) -> EventCounts {
        let counts = self.counts.lock().expect("event counts lock");
        counts.get(&group.map(Bytes::copy_from_slice)).copied().unwrap_or_default()
    }
}

/// A subscriber's watch of session events: while any is held, attribute changes anywhere in
/// the cluster make events that reach this node.
#[must_use = "the watch ends when dropped"]
pub struct EventWatch {
    bus: Arc<EventBus>,
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        self.bus.watchers.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!("sessiongrid_session_event_watchers").decrement(1);
    }
}

impl std::fmt::Debug for EventWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventWatch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, node: u64, group: &'static [u8]) -> SessionEvent {
        SessionEvent {
            kind,
            id: Bytes::from_static(b"id"),
            group: Bytes::from_static(group),
            principal: None,
            moved_to: None,
            at_ms: 1,
            node,
            partition: 0,
            version: 1,
            session_version: 1,
        }
    }

    #[tokio::test]
    async fn counts_own_events_apart_and_delivers_all() {
        let bus = EventBus::default();
        bus.set_node(7);
        let mut rx = bus.subscribe();
        bus.publish(vec![
            event(EventKind::Created, 7, b"a"),
            event(EventKind::Created, 8, b"b"),
            event(EventKind::Expired, 8, b"a"),
        ]);
        let all = bus.counts(None);
        assert_eq!((all.node(EventKind::Created), all.cluster(EventKind::Created)), (1, 2));
        let a = bus.counts(Some(b"a"));
        assert_eq!((a.cluster(EventKind::Created), a.cluster(EventKind::Expired)), (1, 1));
        assert_eq!(rx.recv().await.unwrap().node, 7);
        assert_eq!(rx.recv().await.unwrap().node, 8);
    }
}
