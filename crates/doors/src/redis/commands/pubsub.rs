//! Pub/sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB, and the grid's
//! SESSION.SUBSCRIBE.
//!
//! A message published on any node reaches the subscribers of every node (see
//! [`sessiongrid_grid::pubsub`]). Channel `sessiongrid:events` carries every session event of
//! the grid, and `sessiongrid:events:<group>` those of one group; each message is one event as
//! JSON. A subscription to either is confirmed once every member knows this node watches
//! events (see [`Grid::watch_events`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use sessiongrid_grid::events::EventWatch;
use sessiongrid_grid::pubsub::{Kind, Published};
use sessiongrid_grid::Grid;
use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::{glob, Reply};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::{CmdResult, Ctx};

pub const ALL_EVENTS: &[u8] = b"sessiongrid:events";
const GROUP_PREFIX: &[u8] = b"sessiongrid:events:";

/// A connection's subscriptions with its feeds of session events and published messages. It
/// counts itself in the node's subscriber counts until dropped.
pub struct Subscription {
    pub channels: BTreeSet<Bytes>,
    pub patterns: BTreeSet<Bytes>,
    pub feed: broadcast::Receiver<Arc<SessionEvent>>,
    pub messages: broadcast::Receiver<Arc<Published>>,
    /// Held while the connection subscribes to a channel of session events.
    watch: Option<EventWatch>,
    grid: Grid,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("channels", &self.channels)
            .field("patterns", &self.patterns)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    fn new(grid: &Grid) -> Self {
        Subscription {
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            feed: grid.events().subscribe(),
            messages: grid.pubsub().feed(),
            watch: None,
            grid: grid.clone(),
        }
    }

    /// True if it subscribes to a channel of session events.
    fn wants_events(&self) -> bool {
        self.channels.iter().any(|c| c == ALL_EVENTS || c.starts_with(GROUP_PREFIX))
    }

    /// Channels and patterns together, as Redis counts a client's subscriptions.
    fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// The pub/sub messages an event makes on this connection: one per subscribed channel it
    /// belongs to.
    fn messages(&self, event: &SessionEvent) -> Vec<Reply> {
        let group_channel: Bytes = [GROUP_PREFIX, &event.group].concat().into();
        let wanted = [Bytes::from_static(ALL_EVENTS), group_channel];
        let matching: Vec<&Bytes> = wanted.iter().filter(|c| self.channels.contains(*c)).collect();
        if matching.is_empty() {
            return Vec::new();
        }
        let payload = Bytes::from(crate::json::event(event).to_string());
        matching.into_iter().map(|c| message(c.clone(), payload.clone())).collect()
    }

    /// What a published message makes on this connection: a `message` if it subscribes to the
    /// channel, a `pmessage` for each pattern of its that matches.
    fn published(&self, published: &Published) -> Vec<Reply> {
        let Published { channel, message: payload } = published;
        let mut out = Vec::new();
        if self.channels.contains(channel) {
            out.push(message(channel.clone(), payload.clone()));
        }
        for pattern in self.patterns.iter().filter(|p| glob::matches(p, channel)) {
            out.push(Reply::Push(vec![
                Reply::bulk(Bytes::from_static(b"pmessage")),
                Reply::Bulk(pattern.clone()),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(payload.clone()),
            ]));
        }
        out
    }

    /// The messages of what the session-event feed delivered: an event, or how many this
    /// subscriber missed by falling behind.
    pub fn on_event(&self, event: Result<Arc<SessionEvent>, RecvError>) -> Vec<Reply> {
        match event {
            Ok(e) => self.messages(&e),
            Err(RecvError::Lagged(missed)) => {
                metrics::counter!("sessiongrid_session_events_lagged_total").increment(missed);
                self.lagged(missed)
            }
            Err(RecvError::Closed) => Vec::new(),
        }
    }

    /// The messages of what the published-message feed delivered (a subscriber that fell
    /// behind loses the oldest, as a Redis client past its output buffer limit would).
    pub fn on_published(&self, published: Result<Arc<Published>, RecvError>) -> Vec<Reply> {
        match published {
            Ok(p) => self.published(&p),
            Err(RecvError::Lagged(missed)) => {
                metrics::counter!("sessiongrid_pubsub_lagged_total").increment(missed);
                Vec::new()
            }
            Err(RecvError::Closed) => Vec::new(),
        }
    }

    /// What a subscriber that fell `missed` events behind is told, on every channel it has.
    fn lagged(&self, missed: u64) -> Vec<Reply> {
        let payload = Bytes::from(format!("{{\"event\":\"lagged\",\"missed\":{missed}}}"));
        self.channels.iter().map(|c| message(c.clone(), payload.clone())).collect()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let hub = self.grid.pubsub();
        for c in &self.channels {
            hub.remove(Kind::Channel, c);
        }
        for p in &self.patterns {
            hub.remove(Kind::Pattern, p);
        }
    }
}

fn message(channel: Bytes, payload: Bytes) -> Reply {
    Reply::Push(vec![
        Reply::bulk(Bytes::from_static(b"message")),
        Reply::Bulk(channel),
        Reply::Bulk(payload),
    ])
}

fn confirm(kind: &'static [u8], name: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk(Bytes::from_static(kind)),
        name.map_or(Reply::Nil, Reply::Bulk),
        Reply::Int(count as i64),
    ])
}

/// Subscribes the connection to channels or patterns, confirming each (those of session
/// events once the cluster knows this node watches them).
async fn subscribe_to(ctx: &mut Ctx<'_>, kind: Kind, names: Vec<Bytes>) -> CmdResult {
    let grid = &ctx.shared.grid;
    let sub = ctx.client.subscription.get_or_insert_with(|| Subscription::new(grid));
    let mut replies = Vec::with_capacity(names.len());
    for name in names {
        let (set, word): (_, &'static [u8]) = match kind {
            Kind::Channel => (&mut sub.channels, b"subscribe"),
            Kind::Pattern => (&mut sub.patterns, b"psubscribe"),
        };
        if set.insert(name.clone()) {
            grid.pubsub().add(kind, &name);
        }
        replies.push(confirm(word, Some(name), sub.count()));
    }
    if sub.watch.is_none() && sub.wants_events() {
        sub.watch = Some(grid.watch_events().await);
    }
    Ok(Reply::Many(replies))
}

/// Unsubscribes from the named channels or patterns (none named: all of that kind).
fn unsubscribe_from(ctx: &mut Ctx<'_>, kind: Kind) -> CmdResult {
    let word: &'static [u8] = match kind {
        Kind::Channel => b"unsubscribe",
        Kind::Pattern => b"punsubscribe",
    };
    let Some(sub) = ctx.client.subscription.as_mut() else {
        if ctx.args.len() == 1 {
            return Ok(confirm(word, None, 0));
        }
        let names = ctx.args.from(1).iter().map(|n| confirm(word, Some(n.clone()), 0));
        return Ok(Reply::Many(names.collect()));
    };
    let names: Vec<Bytes> = match (ctx.args.len(), kind) {
        (1, Kind::Channel) => sub.channels.iter().cloned().collect(),
        (1, Kind::Pattern) => sub.patterns.iter().cloned().collect(),
        _ => ctx.args.from(1).to_vec(),
    };
    if names.is_empty() {
        return Ok(confirm(word, None, sub.count()));
    }
    let mut replies = Vec::with_capacity(names.len());
    for name in names {
        let set = match kind {
            Kind::Channel => &mut sub.channels,
            Kind::Pattern => &mut sub.patterns,
        };
        if set.remove(&name) {
            ctx.shared.grid.pubsub().remove(kind, &name);
        }
        replies.push(confirm(word, Some(name), sub.count()));
    }
    if !sub.wants_events() {
        sub.watch = None;
    }
    if sub.count() == 0 {
        ctx.client.subscription = None;
    }
    Ok(Reply::Many(replies))
}

/// `SUBSCRIBE channel [channel ...]`
pub async fn subscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    let channels = ctx.args.from(1).to_vec();
    subscribe_to(ctx, Kind::Channel, channels).await
}

/// `PSUBSCRIBE pattern [pattern ...]`
pub async fn psubscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    let patterns = ctx.args.from(1).to_vec();
    subscribe_to(ctx, Kind::Pattern, patterns).await
}

/// `SESSION.SUBSCRIBE [GROUP g]`: the events of the grid, or of one group.
pub async fn session_subscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    let channel = match ctx.args.len() {
        1 if ctx.client.user.all_groups() => Bytes::from_static(ALL_EVENTS),
        1 => {
            return Err(Reply::error(
                "NOPERM this user is limited to some session groups: name one with GROUP",
            ))
        }
        3 if ctx.args.is(1, "group") => {
            super::sessions::check_group(ctx, ctx.args.get(2))?;
            [GROUP_PREFIX, ctx.args.get(2)].concat().into()
        }
        _ => return Err(super::args::syntax_error()),
    };
    subscribe_to(ctx, Kind::Channel, vec![channel]).await
}

/// `UNSUBSCRIBE [channel ...]` (none: all).
pub fn unsubscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    unsubscribe_from(ctx, Kind::Channel)
}

/// `PUNSUBSCRIBE [pattern ...]` (none: all).
pub fn punsubscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    unsubscribe_from(ctx, Kind::Pattern)
}

/// `PUBLISH channel message`: the number of this node's subscriptions it reached (other nodes'
/// subscribers get it too, uncounted, as in Redis Cluster).
pub fn publish(ctx: &mut Ctx<'_>) -> CmdResult {
    let (channel, message) = (ctx.args.get(1).clone(), ctx.args.get(2).clone());
    Ok(Reply::Int(ctx.shared.grid.publish(channel, message) as i64))
}

/// `PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | HELP`, over this node's
/// subscribers (as Redis Cluster answers).
pub fn pubsub(ctx: &mut Ctx<'_>) -> CmdResult {
    let hub = ctx.shared.grid.pubsub();
    let sub = ctx.args.text(1).to_ascii_lowercase();
    match (sub.as_str(), ctx.args.len()) {
        ("channels", 2 | 3) => {
            let pattern = (ctx.args.len() == 3).then(|| ctx.args.get(2).as_ref());
            Ok(Reply::Array(hub.channels(pattern).into_iter().map(Reply::Bulk).collect()))
        }
        ("numsub", _) => {
            let counts = ctx
                .args
                .from(2)
                .iter()
                .flat_map(|c| [Reply::Bulk(c.clone()), Reply::Int(hub.subscribers(c) as i64)]);
            Ok(Reply::Array(counts.collect()))
        }
        ("numpat", 2) => Ok(Reply::Int(hub.patterns() as i64)),
        ("help", 2) => {
            let lines = [
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "HELP",
                "    Print this help.",
            ];
            Ok(Reply::Array(lines.iter().map(|l| Reply::Status((*l).into())).collect()))
        }
        ("numpat" | "help", _) => {
            Err(Reply::error(format!("ERR wrong number of arguments for 'pubsub|{sub}' command")))
        }
        ("channels", _) => {
            let name = ctx.args.text(1);
            Err(Reply::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{name}'. Try PUBSUB HELP."
            )))
        }
        _ => {
            let name = ctx.args.text(1);
            Err(Reply::error(format!("ERR unknown subcommand '{name}'. Try PUBSUB HELP.")))
        }
    }
}
