//! [`PubSub`]: Redis channels across the grid.
//!
//! A message published on any node reaches the subscribers of every node: the node it was
//! published on delivers it to its own subscribers and sends it once to each other member
//! ([`Msg::Publish`](sessiongrid_cluster::Msg)), which delivers it to theirs. Delivery between
//! nodes is at most once, as Redis Cluster's is: a message to a member that is unreachable at
//! that moment is lost for its subscribers. Subscription counts (`PUBLISH`'s answer, `PUBSUB`)
//! are this node's, as in Redis Cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sessiongrid_model::glob;
use tokio::sync::broadcast;

/// Messages buffered per subscribing connection; one further behind loses the oldest.
const SUBSCRIBER_BUFFER: usize = 16 * 1024;

/// One published message.
#[derive(Debug)]
pub struct Published {
    pub channel: Bytes,
    pub message: Bytes,
}

/// This node's subscribers: the feed every subscribing connection reads, and how many
/// connections subscribe to each channel and pattern.
pub struct PubSub {
    tx: broadcast::Sender<Arc<Published>>,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    channels: HashMap<Bytes, usize>,
    patterns: HashMap<Bytes, usize>,
}

impl Default for PubSub {
    fn default() -> Self {
        PubSub { tx: broadcast::channel(SUBSCRIBER_BUFFER).0, counts: Mutex::default() }
    }
}

/// Whether a count is of channels or of patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
}

impl PubSub {
    /// The feed of every message delivered on this node; a connection filters it by its
    /// subscriptions.
    pub fn feed(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    /// Counts one more connection subscribed to `name`.
    pub fn add(&self, kind: Kind, name: &Bytes) {
        let mut counts = self.counts.lock().expect("pubsub lock");
        *counts.of(kind).entry(name.clone()).or_default() += 1;
    }

    /// Counts one connection fewer subscribed to `name`.
    pub fn remove(&self, kind: Kind, name: &[u8]) {
        let mut counts = self.counts.lock().expect("pubsub lock");
        let map = counts.of(kind);
        if let Some(n) = map.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                map.remove(name);
            }
        }
    }

    /// Hands a message to this node's subscribers: how many subscriptions (channel and
    /// pattern) it reached, as `PUBLISH` answers.
    pub fn deliver(&self, channel: Bytes, message: Bytes) -> usize {
        let reached = {
            let counts = self.counts.lock().expect("pubsub lock");
            let direct = counts.channels.get(&channel).copied().unwrap_or(0);
            let by_pattern: usize = counts
                .patterns
                .iter()
                .filter(|(p, _)| glob::matches(p, &channel))
                .map(|(_, n)| n)
                .sum();
            direct + by_pattern
        };
        if reached > 0 {
            metrics::counter!("sessiongrid_pubsub_delivered_total").increment(reached as u64);
            // Every receiver may have gone since it was counted: not an error.
            let _ = self.tx.send(Arc::new(Published { channel, message }));
        }
        reached
    }

    /// The channels with a subscriber on this node, matching `pattern` if given.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let counts = self.counts.lock().expect("pubsub lock");
        let mut names: Vec<Bytes> = counts
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c)))
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// How many connections of this node subscribe to `channel`.
    pub fn subscribers(&self, channel: &[u8]) -> usize {
        self.counts.lock().expect("pubsub lock").channels.get(channel).copied().unwrap_or(0)
    }

    /// How many distinct patterns this node's connections subscribe to.
    pub fn patterns(&self) -> usize {
        self.counts.lock().expect("pubsub lock").patterns.len()
    }
}

impl Counts {
    fn of(&mut self, kind: Kind) -> &mut HashMap<Bytes, usize> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn a_message_counts_channel_and_pattern_subscriptions_and_reaches_the_feed() {
        let hub = PubSub::default();
        let mut feed = hub.feed();
        assert_eq!(hub.deliver(b("news"), b("nobody")), 0);
        hub.add(Kind::Channel, &b("news"));
        hub.add(Kind::Channel, &b("news"));
        hub.add(Kind::Pattern, &b("n*"));
        hub.add(Kind::Pattern, &b("x*"));
        assert_eq!(hub.deliver(b("news"), b("hi")), 3);
        assert_eq!(feed.try_recv().unwrap().message, b("hi"));
        assert_eq!(hub.channels(None), vec![b("news")]);
        assert_eq!(hub.channels(Some(b"x*")), Vec::<Bytes>::new());
        assert_eq!((hub.subscribers(b"news"), hub.patterns()), (2, 2));
        hub.remove(Kind::Channel, b"news");
        hub.remove(Kind::Channel, b"news");
        hub.remove(Kind::Pattern, b"x*");
        assert_eq!((hub.subscribers(b"news"), hub.patterns()), (0, 1));
        assert!(hub.channels(None).is_empty());
    }
}
