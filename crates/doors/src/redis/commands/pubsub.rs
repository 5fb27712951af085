//! Session events over Redis pub/sub: SUBSCRIBE, UNSUBSCRIBE and SESSION.SUBSCRIBE.
//!
//! Channel `sessiongrid:events` carries every session event of the grid, and
//! `sessiongrid:events:<group>` those of one group. Each message is one event as JSON. Other
//! channels can be subscribed to, as in Redis, but nothing is published on them.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::Reply;
use tokio::sync::broadcast;

use super::{CmdResult, Ctx};

pub const ALL_EVENTS: &[u8] = b"sessiongrid:events";
const GROUP_PREFIX: &[u8] = b"sessiongrid:events:";

/// A connection's subscriptions and its feed of events.
#[derive(Debug)]
pub struct Subscription {
    pub channels: BTreeSet<Bytes>,
    pub feed: broadcast::Receiver<Arc<SessionEvent>>,
}

impl Subscription {
    /// The pub/sub messages an event makes on this connection: one per subscribed channel it
    /// belongs to.
    pub fn messages(&self, event: &SessionEvent) -> Vec<Reply> {
        let group_channel: Bytes = [GROUP_PREFIX, &event.group].concat().into();
        let wanted = [Bytes::from_static(ALL_EVENTS), group_channel];
        let matching: Vec<&Bytes> = wanted.iter().filter(|c| self.channels.contains(*c)).collect();
        if matching.is_empty() {
            return Vec::new();
        }
        let payload = Bytes::from(crate::json::event(event).to_string());
        matching.into_iter().map(|c| message(c.clone(), payload.clone())).collect()
    }

    /// What a subscriber that fell `missed` events behind is told, on every channel it has.
    pub fn lagged(&self, missed: u64) -> Vec<Reply> {
        let payload = Bytes::from(format!("{{\"event\":\"lagged\",\"missed\":{missed}}}"));
        self.channels.iter().map(|c| message(c.clone(), payload.clone())).collect()
    }
}

fn message(channel: Bytes, payload: Bytes) -> Reply {
    Reply::Push(vec![
        Reply::bulk(Bytes::from_static(b"message")),
        Reply::Bulk(channel),
        Reply::Bulk(payload),
    ])
}

fn confirm(kind: &'static [u8], channel: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk(Bytes::from_static(kind)),
        channel.map_or(Reply::Nil, Reply::Bulk),
        Reply::Int(count as i64),
    ])
}

fn subscribe_to(ctx: &mut Ctx<'_>, channels: Vec<Bytes>) -> CmdResult {
    let events = ctx.shared.grid.events().clone();
    let sub = ctx.client.subscription.get_or_insert_with(|| Subscription {
        channels: BTreeSet::new(),
        feed: events.subscribe(),
    });
    let mut replies = Vec::with_capacity(channels.len());
    for channel in channels {
        sub.channels.insert(channel.clone());
        replies.push(confirm(b"subscribe", Some(channel), sub.channels.len()));
    }
    Ok(Reply::Many(replies))
}

/// `SUBSCRIBE channel [channel ...]`
pub fn subscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    let channels = ctx.args.from(1).to_vec();
    subscribe_to(ctx, channels)
}

/// `SESSION.SUBSCRIBE [GROUP g]`: the events of the grid, or of one group.
pub fn session_subscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    let channel = match ctx.args.len() {
        1 => Bytes::from_static(ALL_EVENTS),
        3 if ctx.args.is(1, "group") => [GROUP_PREFIX, ctx.args.get(2)].concat().into(),
        _ => return Err(super::args::syntax_error()),
    };
    subscribe_to(ctx, vec![channel])
}

/// `UNSUBSCRIBE [channel ...]` (none: all).
pub fn unsubscribe(ctx: &mut Ctx<'_>) -> CmdResult {
    let Some(sub) = ctx.client.subscription.as_mut() else {
        return Ok(confirm(b"unsubscribe", None, 0));
    };
    let channels: Vec<Bytes> = match ctx.args.len() {
        1 => sub.channels.iter().cloned().collect(),
        _ => ctx.args.from(1).to_vec(),
    };
    let mut replies = Vec::with_capacity(channels.len());
    for channel in channels {
        sub.channels.remove(&channel);
        replies.push(confirm(b"unsubscribe", Some(channel), sub.channels.len()));
    }
    if sub.channels.is_empty() {
        ctx.client.subscription = None;
    }
    Ok(Reply::Many(replies))
}
