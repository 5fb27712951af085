//! The Redis semantics of every [`Op`], as a pure function over the key's current entry.
//!
//! [`apply`] mutates the slot in place and reports what changed (see [`Change`]); the caller (the partition
//! actor) persists a change, bumps the version, and undoes the change in memory if the disk
//! refuses it. An entry found expired is treated as absent and removed, which is a change: a read
//! of an expired key deletes it, exactly like Redis' lazy expiry.

use bytes::Bytes;
use indexmap::IndexMap;

use crate::delta::Change;
use crate::entry::{Entry, Value};
use crate::num::{format_f64, parse_f64, parse_i64};
use crate::op::{ExpireCond, ExpiryChange, Op, SetCond};
use crate::pick::Picker;
use crate::reply::{Reply, NAN_OR_INFINITY, NOT_FLOAT, NOT_INTEGER, OVERFLOW};
use crate::{glob, merge, session};

/// Result of applying one operation.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub reply: Reply,
    /// What changed in the slot (an expired entry being removed included).
    pub change: Change,
}

impl Outcome {
    /// True if the slot differs from what it was.
    pub fn changed(&self) -> bool {
        self.change.any()
    }
}

/// Applies `op` to `slot` (the key's entry, `None` if absent) at time `now_ms`.
pub fn apply(op: Op, slot: &mut Option<Entry>, now_ms: u64) -> Outcome {
    let expired = slot.as_ref().is_some_and(|e| e.is_expired(now_ms));
    if expired {
        *slot = None;
    }
    if let Op::Merge(incoming) = op {
        let merged = merge::merge(*incoming, slot, now_ms);
        return Outcome { reply: Reply::Int(merged as i64), change: (merged || expired).into() };
    }
    // A deleted key's tombstone reads as no key, and stays if the operation writes nothing.
    let tombstone = slot.take_if(|e| e.is_deleted());
    let had_fields = slot.as_ref().is_some_and(|e| e.value.has_fields());
    let (reply, mut change) = match op {
        Op::Session(op) => session::apply::apply(op, slot, now_ms),
        op => redis(op, slot, now_ms),
    };
    if !change.any() && slot.is_none() {
        *slot = tombstone;
    }
    // Only a value that had its fields and keeps them changes field by field; a new one, a
    // replaced one or an expired one's leftover rows are written whole.
    let kept_fields = had_fields && slot.as_ref().is_some_and(|e| e.value.has_fields());
    if expired || (matches!(change, Change::Fields(_)) && !kept_fields) {
        change = Change::Whole;
    }
    Outcome { reply, change }
}

/// A Redis command on a key the grid may manage: a tombstone reads as no key (and a write
/// replaces it); a session or registry answers only the commands every type answers.
fn redis(op: Op, slot: &mut Option<Entry>, now_ms: u64) -> (Reply, Change) {
    match slot.as_ref().map(|e| &e.value) {
        Some(Value::Ended(_)) => {
            // Reads see no key; nothing may write over the tombstone (it keeps the id dead).
            let tomb = slot.take();
            let (reply, change) = dispatch(op, slot, now_ms);
            *slot = tomb;
            if change.any() {
                return (Reply::wrong_type(), Change::Nothing);
            }
            (reply, Change::Nothing)
        }
        Some(Value::Session(_) | Value::Logins(_))
            if !matches!(op, Op::Del | Op::Exists | Op::Type | Op::Ttl { .. } | Op::Version) =>
        {
            (Reply::wrong_type(), Change::Nothing)
        }
        _ => dispatch(op, slot, now_ms),
    }
}

fn dispatch(op: Op, slot: &mut Option<Entry>, now_ms: u64) -> (Reply, Change) {
    let (reply, changed) = match op {
        Op::Get => (read_str(slot, |s| Reply::Bulk(s.clone())), false),
        Op::Set { value, cond, expiry, get } => set(slot, value, cond, expiry, get),
        Op::SetNx { value } => match slot {
            Some(_) => (Reply::Int(0), false),
            None => {
                *slot = Some(Entry::new(Value::Str(value)));
                (Reply::Int(1), true)
            }
        },
        Op::GetDel => {
            let reply = read_str(slot, |s| Reply::Bulk(s.clone()));
            let delete = matches!(reply, Reply::Bulk(_));
            if delete {
                *slot = None;
            }
            (reply, delete)
        }
        Op::GetEx { expiry } => getex(slot, expiry, now_ms),
        Op::IncrBy { delta } => incr_by(slot, delta),
        Op::IncrByFloat { delta } => incr_by_float(slot, &delta),
        Op::GetRange { start, end } => {
            let reply = match slot {
                None => Reply::Bulk(Bytes::new()),
                _ => read_str(slot, |s| Reply::Bulk(range(s, start, end))),
            };
            (reply, false)
        }
        Op::SetRange { offset, value } => set_range(slot, offset, value),
        Op::SetBit { offset, on } => set_bit(slot, offset, on),
        Op::GetBit { offset } => {
            let bit = |s: &Bytes| {
                let byte = s.get((offset / 8) as usize).copied().unwrap_or(0);
                Reply::Int(i64::from(byte >> (7 - offset % 8) & 1))
            };
            let reply = match slot {
                None => Reply::Int(0),
                _ => read_str(slot, bit),
            };
            (reply, false)
        }
        Op::Append { value } => append(slot, value),
        Op::StrLen => match slot {
            None => (Reply::Int(0), false),
            _ => (read_str(slot, |s| Reply::Int(s.len() as i64)), false),
        },
        Op::Del => {
            let existed = slot.take().is_some();
            (Reply::Int(existed as i64), existed)
        }
        Op::Exists => (Reply::Int(slot.is_some() as i64), false),
        Op::Encoding => (slot.as_ref().map_or(Reply::Nil, encoding), false),
        Op::Usage => {
            (slot.as_ref().map_or(Reply::Nil, |e| Reply::Int(e.cost_bytes() as i64)), false)
        }
        Op::Version => (slot.as_ref().map_or(Reply::Nil, |e| Reply::Int(e.version as i64)), false),
        Op::Dump => match slot {
            None => (Reply::Nil, false),
            Some(e) => (Reply::Bulk(e.encode().into()), false),
        },
        Op::Restore { entry, replace } => {
            if slot.is_some() && !replace {
                return (Reply::Int(0), Change::Nothing);
            }
            let version = slot.as_ref().map_or(0, |e| e.version);
            *slot = Some(Entry { version, ..*entry });
            (Reply::Int(1), true)
        }
        Op::DelIf { version } => match slot {
            Some(e) if e.version == version => {
                *slot = None;
                (Reply::Int(1), true)
            }
            _ => (Reply::Int(0), false),
        },
        Op::Type => (Reply::Status(slot.as_ref().map_or("none", Entry::type_name).into()), false),
        Op::Expire { at_ms, cond } => return header_only(expire(slot, at_ms, cond, now_ms), slot),
        Op::Ttl { millis } => (ttl(slot, millis, now_ms), false),
        Op::ExpireTime { millis } => {
            let reply = match slot {
                None => Reply::Int(-2),
                Some(Entry { expire_at_ms: None, .. }) => Reply::Int(-1),
                Some(Entry { expire_at_ms: Some(at), .. }) if millis => Reply::Int(*at as i64),
                // Rounded to the nearest second, as Redis does.
                Some(Entry { expire_at_ms: Some(at), .. }) => {
                    Reply::Int(at.saturating_add(500) as i64 / 1000)
                }
            };
            (reply, false)
        }
        Op::Persist => {
            let persisted = match slot {
                Some(e) if e.expire_at_ms.is_some() => {
                    e.expire_at_ms = None;
                    (Reply::Int(1), true)
                }
                _ => (Reply::Int(0), false),
            };
            return header_only(persisted, slot);
        }
        Op::HGet { field } => (read_hash(slot, |h| opt_bulk(h.get(&field))), false),
        Op::HMGet { fields } => {
            let reply = match hash_of(slot) {
                Err(e) => e,
                Ok(h) => Reply::Array(
                    fields.iter().map(|f| opt_bulk(h.and_then(|h| h.get(f)))).collect(),
                ),
            };
            (reply, false)
        }
        Op::HGetAll => {
            let reply = read_hash_or_empty(slot, |h| {
                Reply::Map(
                    h.iter()
                        .map(|(k, v)| (Reply::Bulk(k.clone()), Reply::Bulk(v.clone())))
                        .collect(),
                )
            });
            (reply, false)
        }
        Op::HLen => (read_hash_or_empty(slot, |h| Reply::Int(h.len() as i64)), false),
        Op::HExists { field } => {
            (read_hash_or_empty(slot, |h| Reply::Int(h.contains_key(&field) as i64)), false)
        }
        Op::HKeys => (
            read_hash_or_empty(slot, |h| {
                Reply::Array(h.keys().cloned().map(Reply::Bulk).collect())
            }),
            false,
        ),
        Op::HVals => (
            read_hash_or_empty(slot, |h| {
                Reply::Array(h.values().cloned().map(Reply::Bulk).collect())
            }),
            false,
        ),
        Op::HSet { pairs, only_new, reply_ok } => return hset(slot, pairs, only_new, reply_ok),
        Op::HDel { fields } => return hdel(slot, fields),
        Op::HIncrBy { field, delta } => return hincr_by(slot, field, delta),
        Op::HIncrByFloat { field, delta } => return hincr_by_float(slot, field, &delta),
        Op::HScan { pattern } => {
            let scan = |h: &IndexMap<Bytes, Bytes>| {
                let matching = h
                    .iter()
                    .filter(|(f, _)| pattern.as_ref().is_none_or(|p| glob::matches(p, f)))
                    .flat_map(|(f, v)| [Reply::Bulk(f.clone()), Reply::Bulk(v.clone())]);
                Reply::Array(vec![
                    Reply::Bulk(Bytes::from_static(b"0")),
                    Reply::Array(matching.collect()),
                ])
            };
            (read_hash_or_empty(slot, scan), false)
        }
        Op::HRandField { count, values, seed } => {
            (read_hash_or_empty(slot, |h| rand_fields(h, count, values, seed)), false)
        }
        Op::HStrLen { field } => {
            let len =
                |h: &IndexMap<Bytes, Bytes>| Reply::Int(h.get(&field).map_or(0, Bytes::len) as i64);
            (read_hash_or_empty(slot, len), false)
        }
        Op::Session(op) => return session::apply::apply(op, slot, now_ms),
        Op::Sets(op) => return crate::set::apply::apply(op, slot),
        Op::Zsets(op) => return crate::zset::apply::apply(op, slot),
        Op::Lists(op) => return crate::list::apply::apply(op, slot),
        Op::Merge(incoming) => {
            let merged = merge::merge(*incoming, slot, now_ms);
            (Reply::Int(merged as i64), merged)
        }
    };
    (reply, changed.into())
}

/// A change of deadline: the header alone for a value stored field by field.
fn header_only((reply, changed): (Reply, bool), slot: &Option<Entry>) -> (Reply, Change) {
    let fields = slot.as_ref().is_some_and(|e| e.value.has_fields());
    match changed {
        true if fields => (reply, Change::Fields(Vec::new())),
        changed => (reply, changed.into()),
    }
}

fn opt_bulk(v: Option<&Bytes>) -> Reply {
    v.map_or(Reply::Nil, |b| Reply::Bulk(b.clone()))
}

/// Reads a string value: nil if absent, WRONGTYPE if a hash.
fn read_str(slot: &Option<Entry>, f: impl FnOnce(&Bytes) -> Reply) -> Reply {
    match slot {
        None => Reply::Nil,
        Some(Entry { value: Value::Str(s), .. }) => f(s),
        Some(_) => Reply::wrong_type(),
    }
}

/// The hash at the slot (`None` if absent), or the WRONGTYPE reply.
fn hash_of(slot: &Option<Entry>) -> Result<Option<&IndexMap<Bytes, Bytes>>, Reply> {
    match slot {
        None => Ok(None),
        Some(Entry { value: Value::Hash(h), .. }) => Ok(Some(h)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

fn read_hash(slot: &Option<Entry>, f: impl FnOnce(&IndexMap<Bytes, Bytes>) -> Reply) -> Reply {
    match hash_of(slot) {
        Err(e) => e,
        Ok(None) => Reply::Nil,
        Ok(Some(h)) => f(h),
    }
}

/// Like [`read_hash`], but an absent key reads as an empty hash (`HLEN`, `HGETALL`, ...).
fn read_hash_or_empty(
    slot: &Option<Entry>,
    f: impl FnOnce(&IndexMap<Bytes, Bytes>) -> Reply,
) -> Reply {
    match hash_of(slot) {
        Err(e) => e,
        Ok(None) => f(&IndexMap::new()),
        Ok(Some(h)) => f(h),
    }
}

fn set(
    slot: &mut Option<Entry>,
    value: Bytes,
    cond: SetCond,
    expiry: ExpiryChange,
    get: bool,
) -> (Reply, bool) {
    let old = if get {
        match read_str(slot, |s| Reply::Bulk(s.clone())) {
            e @ Reply::Error(_) => return (e, false),
            old => Some(old),
        }
    } else {
        None
    };
    let allowed = match cond {
        SetCond::Always => true,
        SetCond::IfAbsent => slot.is_none(),
        SetCond::IfPresent => slot.is_some(),
    };
    if !allowed {
        return (old.unwrap_or(Reply::Nil), false);
    }
    let expire_at_ms = match expiry {
        ExpiryChange::Keep => slot.as_ref().and_then(|e| e.expire_at_ms),
        ExpiryChange::Clear => None,
        ExpiryChange::At(at) => Some(at),
    };
    let version = slot.as_ref().map_or(0, |e| e.version);
    *slot = Some(Entry { value: Value::Str(value), expire_at_ms, version });
    (old.unwrap_or(Reply::Ok), true)
}

fn getex(slot: &mut Option<Entry>, expiry: ExpiryChange, now_ms: u64) -> (Reply, bool) {
    let reply = read_str(slot, |s| Reply::Bulk(s.clone()));
    let Some(entry) = slot.as_mut().filter(|_| matches!(reply, Reply::Bulk(_))) else {
        return (reply, false);
    };
    match expiry {
        ExpiryChange::Keep => (reply, false),
        ExpiryChange::Clear => {
            let had = entry.expire_at_ms.take().is_some();
            (reply, had)
        }
        ExpiryChange::At(at) if at <= now_ms => {
            *slot = None;
            (reply, true)
        }
        ExpiryChange::At(at) => {
            entry.expire_at_ms = Some(at);
            (reply, true)
        }
    }
}

fn incr_by(slot: &mut Option<Entry>, delta: i64) -> (Reply, bool) {
    let current = match string_of(slot) {
        Ok(None) => 0,
        Ok(Some(s)) => match parse_i64(s) {
            Some(n) => n,
            None => return (Reply::error(NOT_INTEGER), false),
        },
        Err(e) => return (e, false),
    };
    let Some(next) = current.checked_add(delta) else {
        return (Reply::error(OVERFLOW), false);
    };
    put_str(slot, Bytes::from(next.to_string()));
    (Reply::Int(next), true)
}

fn incr_by_float(slot: &mut Option<Entry>, delta: &[u8]) -> (Reply, bool) {
    let current = match string_of(slot) {
        Ok(None) => 0.0,
        Ok(Some(s)) => match parse_f64(s) {
            Some(f) => f,
            None => return (Reply::error(NOT_FLOAT), false),
        },
        Err(e) => return (e, false),
    };
    let Some(next) = float_sum(current, delta) else {
        return (Reply::error(NAN_OR_INFINITY), false);
    };
    let text = Bytes::from(format_f64(next));
    put_str(slot, text.clone());
    (Reply::Bulk(text), true)
}

/// The string at the slot (`None` if absent), or the WRONGTYPE reply.
fn string_of(slot: &Option<Entry>) -> Result<Option<&Bytes>, Reply> {
    match slot {
        None => Ok(None),
        Some(Entry { value: Value::Str(s), .. }) => Ok(Some(s)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// Stores `value` as the slot's string, keeping the deadline of the value it replaces.
fn put_str(slot: &mut Option<Entry>, value: Bytes) {
    match slot {
        Some(e) => e.value = Value::Str(value),
        None => *slot = Some(Entry::new(Value::Str(value))),
    }
}

/// `current + delta`, if the delta reads and the sum is finite.
fn float_sum(current: f64, delta: &[u8]) -> Option<f64> {
    parse_f64(delta).map(|d| current + d).filter(|f| f.is_finite())
}

/// The bytes of `s` from `start` to `end` inclusive, counted from the end when negative, as
/// `GETRANGE` clamps them.
fn range(s: &Bytes, start: i64, end: i64) -> Bytes {
    let len = s.len() as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return Bytes::new();
    }
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { (len + end).max(0) } else { end.min(len - 1) };
    if start > end {
        return Bytes::new();
    }
    s.slice(start as usize..=end as usize)
}

fn set_bit(slot: &mut Option<Entry>, offset: u64, on: bool) -> (Reply, bool) {
    let mut bytes = match string_of(slot) {
        Ok(s) => s.map_or_else(Vec::new, |s| s.to_vec()),
        Err(e) => return (e, false),
    };
    let (byte, mask) = ((offset / 8) as usize, 1u8 << (7 - offset % 8));
    let grows = bytes.len() <= byte;
    if grows {
        bytes.resize(byte + 1, 0);
    }
    let old = bytes[byte] & mask != 0;
    if old == on && !grows {
        return (Reply::Int(i64::from(old)), false);
    }
    if on {
        bytes[byte] |= mask;
    } else {
        bytes[byte] &= !mask;
    }
    put_str(slot, bytes.into());
    (Reply::Int(i64::from(old)), true)
}

fn set_range(slot: &mut Option<Entry>, offset: u64, value: Bytes) -> (Reply, bool) {
    let mut joined = match string_of(slot) {
        Ok(s) => s.map_or_else(Vec::new, |s| s.to_vec()),
        Err(e) => return (e, false),
    };
    if value.is_empty() {
        // Nothing to write: the length as it is, and no key created.
        return (Reply::Int(joined.len() as i64), false);
    }
    let end = offset as usize + value.len();
    if joined.len() < end {
        joined.resize(end, 0);
    }
    joined[offset as usize..end].copy_from_slice(&value);
    let len = joined.len();
    put_str(slot, joined.into());
    (Reply::Int(len as i64), true)
}

fn append(slot: &mut Option<Entry>, value: Bytes) -> (Reply, bool) {
    let joined = match string_of(slot) {
        Ok(None) => value,
        Ok(Some(s)) => [&s[..], &value[..]].concat().into(),
        Err(e) => return (e, false),
    };
    let len = joined.len();
    put_str(slot, joined);
    (Reply::Int(len as i64), true)
}

fn expire(slot: &mut Option<Entry>, at_ms: u64, cond: ExpireCond, now_ms: u64) -> (Reply, bool) {
    let Some(entry) = slot.as_mut() else { return (Reply::Int(0), false) };
    let current = entry.expire_at_ms;
    let allowed = match cond {
        ExpireCond::Always => true,
        ExpireCond::IfNoExpiry => current.is_none(),
        ExpireCond::IfHasExpiry => current.is_some(),
        // No deadline counts as an infinite one.
        ExpireCond::IfGreater => current.is_some_and(|c| at_ms > c),
        ExpireCond::IfLess => current.is_none_or(|c| at_ms < c),
        ExpireCond::IfLessExisting => current.is_some_and(|c| at_ms < c),
    };
    if !allowed {
        return (Reply::Int(0), false);
    }
    if at_ms <= now_ms {
        *slot = None;
    } else {
        entry.expire_at_ms = Some(at_ms);
    }
    (Reply::Int(1), true)
}

fn ttl(slot: &Option<Entry>, millis: bool, now_ms: u64) -> Reply {
    match slot {
        None => Reply::Int(-2),
        Some(Entry { expire_at_ms: None, .. }) => Reply::Int(-1),
        Some(Entry { expire_at_ms: Some(at), .. }) => {
            let left = at.saturating_sub(now_ms);
            // Redis rounds TTL to the nearest second.
            let n = if millis { left } else { (left + 500) / 1000 };
            Reply::Int(n as i64)
        }
    }
}

/// The hash at the slot, created empty if the key is absent; `None` if the key holds a string.
fn hash_mut(slot: &mut Option<Entry>) -> Option<&mut IndexMap<Bytes, Bytes>> {
    let entry = slot.get_or_insert_with(|| Entry::new(Value::Hash(IndexMap::new())));
    match &mut entry.value {
        Value::Hash(h) => Some(h),
        _ => None,
    }
}

fn hset(
    slot: &mut Option<Entry>,
    pairs: Vec<(Bytes, Bytes)>,
    only_new: bool,
    reply_ok: bool,
) -> (Reply, Change) {
    let Some(h) = hash_mut(slot) else { return (Reply::wrong_type(), Change::Nothing) };
    let mut added = 0;
    let mut written = Vec::with_capacity(pairs.len());
    for (field, value) in pairs {
        if only_new && h.contains_key(&field) {
            continue;
        }
        written.push(field.clone());
        if h.insert(field, value).is_none() {
            added += 1;
        }
    }
    let change = if written.is_empty() {
        if h.is_empty() {
            *slot = None;
        }
        Change::Nothing
    } else {
        Change::Fields(written)
    };
    (if reply_ok { Reply::Ok } else { Reply::Int(added) }, change)
}

fn hdel(slot: &mut Option<Entry>, fields: Vec<Bytes>) -> (Reply, Change) {
    let h = match slot {
        None => return (Reply::Int(0), Change::Nothing),
        Some(Entry { value: Value::Hash(h), .. }) => h,
        Some(_) => return (Reply::wrong_type(), Change::Nothing),
    };
    let removed: Vec<Bytes> = fields.into_iter().filter(|f| h.shift_remove(f).is_some()).collect();
    if h.is_empty() {
        *slot = None;
    }
    let count = removed.len() as i64;
    (Reply::Int(count), if removed.is_empty() { Change::Nothing } else { Change::Fields(removed) })
}

fn hincr_by(slot: &mut Option<Entry>, field: Bytes, delta: i64) -> (Reply, Change) {
    let created = slot.is_none();
    let Some(h) = hash_mut(slot) else { return (Reply::wrong_type(), Change::Nothing) };
    let current = match h.get(&field) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => return undo_create(slot, created, "ERR hash value is not an integer"),
        },
    };
    let Some(next) = current.checked_add(delta) else {
        return undo_create(slot, created, OVERFLOW);
    };
    h.insert(field.clone(), Bytes::from(next.to_string()));
    (Reply::Int(next), Change::Fields(vec![field]))
}

fn hincr_by_float(slot: &mut Option<Entry>, field: Bytes, delta: &[u8]) -> (Reply, Change) {
    let created = slot.is_none();
    let Some(h) = hash_mut(slot) else { return (Reply::wrong_type(), Change::Nothing) };
    let current = match h.get(&field) {
        None => 0.0,
        Some(v) => match parse_f64(v) {
            Some(f) => f,
            None => return undo_create(slot, created, "ERR hash value is not a float"),
        },
    };
    let Some(next) = float_sum(current, delta) else {
        return undo_create(slot, created, NAN_OR_INFINITY);
    };
    let text = Bytes::from(format_f64(next));
    h.insert(field.clone(), text.clone());
    (Reply::Bulk(text), Change::Fields(vec![field]))
}

/// What Redis 7.0 calls the encoding of a value like this one (with the thresholds of its
/// packaged configuration: 512 fields of at most 64 bytes for a listpack hash, 128 members of
/// at most 64 bytes for a listpack sorted set, 512 integers for an intset).
fn encoding(entry: &Entry) -> Reply {
    let name = match &entry.value {
        Value::Str(s) if s.len() <= 20 && parse_i64(s).is_some() => "int",
        Value::Str(s) if s.len() <= 44 => "embstr",
        Value::Hash(h)
            if h.len() <= 512 && h.iter().all(|(k, v)| k.len() <= 64 && v.len() <= 64) =>
        {
            "listpack"
        }
        Value::Hash(_) => "hashtable",
        Value::Set(s) if crate::set::is_intset(s) => "intset",
        Value::Set(_) => "hashtable",
        Value::Zset(z) if z.len() <= 128 && z.iter().all(|(m, _)| m.len() <= 64) => "listpack",
        Value::Zset(_) => "skiplist",
        Value::List(_) => "quicklist",
        _ => "raw",
    };
    Reply::Bulk(Bytes::from_static(name.as_bytes()))
}

/// `HRANDFIELD`: as Redis, a positive count returns distinct fields (all of them if the hash
/// has no more), a negative one exactly that many, possibly repeated; with values, each field
/// is followed by its value.
fn rand_fields(h: &IndexMap<Bytes, Bytes>, count: Option<i64>, values: bool, seed: u64) -> Reply {
    let mut picker = Picker::new(seed);
    let Some(count) = count else {
        return match h.len() {
            0 => Reply::Nil,
            n => Reply::Bulk(
                h.get_index(picker.below(n)).map(|(f, _)| f.clone()).unwrap_or_default(),
            ),
        };
    };
    let picks = if count < 0 {
        picker.repeated(h.len(), count.unsigned_abs() as usize)
    } else {
        picker.distinct(h.len(), count as usize)
    };
    let mut out = Vec::with_capacity(picks.len() * (1 + values as usize));
    for i in picks {
        if let Some((f, v)) = h.get_index(i) {
            out.push(Reply::Bulk(f.clone()));
            if values {
                out.push(Reply::Bulk(v.clone()));
            }
        }
    }
    Reply::Array(out)
}

/// Error exit for a write that created an empty hash it did not fill.
fn undo_create(slot: &mut Option<Entry>, created: bool, error: &str) -> (Reply, Change) {
    if created {
        *slot = None;
    }
    (Reply::error(error), Change::Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Bytes {
        Bytes::copy_from_slice(v.as_bytes())
    }

    fn run(op: Op, slot: &mut Option<Entry>) -> Reply {
        apply(op, slot, 1_000).reply
    }

    #[test]
    fn a_deleted_keys_tombstone_reads_as_no_key_and_any_write_replaces_it() {
        let mut slot = Some(Entry::deleted(0));
        for op in [Op::Get, Op::Exists, Op::Del, Op::Type, Op::Ttl { millis: false }] {
            let out = apply(op.clone(), &mut slot, 1);
            assert!(!out.changed(), "{op:?}");
            assert!(
                matches!(out.reply, Reply::Nil | Reply::Int(0 | -2))
                    || out.reply == Reply::Status("none".into()),
                "{op:?}: {:?}",
                out.reply
            );
        }
        assert!(slot.as_ref().unwrap().is_deleted(), "reads keep the tombstone");
        let set = Op::Set {
            value: s("v"),
            cond: SetCond::IfAbsent,
            expiry: ExpiryChange::Clear,
            get: false,
        };
        assert!(apply(set, &mut slot, 1).changed(), "SET NX sees no key");
        assert_eq!(slot.unwrap().value, Value::Str(s("v")));
    }

    fn set_op(v: &str) -> Op {
        Op::Set { value: s(v), cond: SetCond::Always, expiry: ExpiryChange::Clear, get: false }
    }

    #[test]
    fn expired_entry_reads_as_absent_and_is_removed() {
        let mut slot =
            Some(Entry { value: Value::Str(s("v")), expire_at_ms: Some(999), version: 1 });
        let out = apply(Op::Get, &mut slot, 1_000);
        assert_eq!(out, Outcome { reply: Reply::Nil, change: Change::Whole });
        assert!(slot.is_none());
    }

    #[test]
    fn set_conditions_and_get() {
        let mut slot = None;
        let nx = Op::Set {
            value: s("a"),
            cond: SetCond::IfPresent,
            expiry: ExpiryChange::Clear,
            get: false,
        };
        assert_eq!(run(nx, &mut slot), Reply::Nil);
        assert_eq!(run(set_op("a"), &mut slot), Reply::Ok);
        let get = Op::Set {
            value: s("b"),
            cond: SetCond::IfAbsent,
            expiry: ExpiryChange::Clear,
            get: true,
        };
        assert_eq!(run(get, &mut slot), Reply::Bulk(s("a")));
        assert_eq!(run(Op::Get, &mut slot), Reply::Bulk(s("a")));
    }

    #[test]
    fn keepttl_keeps_and_plain_set_clears_the_deadline() {
        let mut slot = None;
        let ex = Op::Set {
            value: s("a"),
            cond: SetCond::Always,
            expiry: ExpiryChange::At(5_000),
            get: false,
        };
        run(ex, &mut slot);
        let keep = Op::Set {
            value: s("b"),
            cond: SetCond::Always,
            expiry: ExpiryChange::Keep,
            get: false,
        };
        run(keep, &mut slot);
        assert_eq!(run(Op::Ttl { millis: true }, &mut slot), Reply::Int(4_000));
        run(set_op("c"), &mut slot);
        assert_eq!(run(Op::Ttl { millis: true }, &mut slot), Reply::Int(-1));
    }

    #[test]
    fn incr_rules() {
        let mut slot = None;
        assert_eq!(run(Op::IncrBy { delta: 5 }, &mut slot), Reply::Int(5));
        run(set_op("9223372036854775807"), &mut slot);
        assert_eq!(run(Op::IncrBy { delta: 1 }, &mut slot), Reply::error(OVERFLOW));
        run(set_op("abc"), &mut slot);
        assert_eq!(run(Op::IncrBy { delta: 1 }, &mut slot), Reply::error(NOT_INTEGER));
    }

    #[test]
    fn wrong_type_is_reported_and_changes_nothing() {
        let mut slot = None;
        run(
            Op::HSet { pairs: vec![(s("f"), s("v"))], only_new: false, reply_ok: false },
            &mut slot,
        );
        let before = slot.clone();
        let out = apply(Op::Append { value: s("x") }, &mut slot, 0);
        assert_eq!(out, Outcome { reply: Reply::wrong_type(), change: Change::Nothing });
        assert_eq!(slot, before);
    }

    #[test]
    fn hdel_of_last_field_removes_the_key() {
        let mut slot = None;
        run(
            Op::HSet { pairs: vec![(s("f"), s("v"))], only_new: false, reply_ok: false },
            &mut slot,
        );
        assert_eq!(run(Op::HDel { fields: vec![s("f"), s("f")] }, &mut slot), Reply::Int(1));
        assert!(slot.is_none());
    }

    #[test]
    fn failed_hincrby_on_absent_key_leaves_it_absent() {
        let mut slot = None;
        let out = apply(Op::HIncrBy { field: s("f"), delta: i64::MIN }, &mut slot, 0);
        assert_eq!(out.reply, Reply::Int(i64::MIN));
        let out = apply(Op::HIncrBy { field: s("f"), delta: -1 }, &mut slot, 0);
        assert_eq!(out.reply, Reply::error(OVERFLOW));
        let mut absent = None;
        run(
            Op::Set {
                value: s("x"),
                cond: SetCond::Always,
                expiry: ExpiryChange::Clear,
                get: false,
            },
            &mut absent,
        );
        let out = apply(Op::HIncrBy { field: s("f"), delta: 1 }, &mut absent, 0);
        assert_eq!(out.reply, Reply::wrong_type());
    }

    #[test]
    fn expire_conditions() {
        let mut slot = None;
        run(set_op("v"), &mut slot);
        let gt = |at| Op::Expire { at_ms: at, cond: ExpireCond::IfGreater };
        assert_eq!(run(gt(5_000), &mut slot), Reply::Int(0), "GT on no deadline fails");
        let lt = |at| Op::Expire { at_ms: at, cond: ExpireCond::IfLess };
        assert_eq!(run(lt(5_000), &mut slot), Reply::Int(1), "LT on no deadline succeeds");
        assert_eq!(run(gt(6_000), &mut slot), Reply::Int(1));
        assert_eq!(run(lt(500), &mut slot), Reply::Int(1), "a past deadline deletes");
        assert!(slot.is_none());
    }

    #[test]
    fn redis_commands_see_no_tombstone_and_cannot_corrupt_a_session() {
        use crate::session::op::SessionOp;
        use crate::session::EndReason;
        let mut slot = None;
        let create =
            SessionOp::Create { id: s("x"), group: s("g"), idle_ms: 1000, absolute_ms: None };
        apply(Op::Session(create), &mut slot, 0);
        assert_eq!(run(Op::Get, &mut slot), Reply::wrong_type());
        assert_eq!(run(Op::Persist, &mut slot), Reply::wrong_type());
        assert_eq!(run(Op::Type, &mut slot), Reply::Status("session".into()));
        let end = SessionOp::End {
            reason: EndReason::Invalidated,
            if_version: None,
            moved_to: None,
            retention_ms: 1000,
        };
        apply(Op::Session(end), &mut slot, 0);
        assert_eq!(run(Op::Exists, &mut slot), Reply::Int(0));
        assert_eq!(run(Op::Del, &mut slot), Reply::Int(0));
        assert_eq!(run(set_op("x"), &mut slot), Reply::wrong_type());
        assert!(slot.as_ref().unwrap().is_ended(), "nothing replaces the tombstone");
    }

    #[test]
    fn hash_writes_report_the_fields_they_changed_and_new_or_expired_hashes_are_whole() {
        let hset = |f: &str, v: &str| Op::HSet {
            pairs: vec![(s(f), s(v))],
            only_new: false,
            reply_ok: false,
        };
        let mut slot = None;
        assert_eq!(apply(hset("a", "1"), &mut slot, 1).change, Change::Whole, "a new hash");
        assert_eq!(apply(hset("b", "2"), &mut slot, 1).change, Change::Fields(vec![s("b")]));
        let hdel = |fields: &[&str]| Op::HDel { fields: fields.iter().map(|f| s(f)).collect() };
        assert_eq!(apply(hdel(&["a", "zz"]), &mut slot, 1).change, Change::Fields(vec![s("a")]));
        let expire = Op::Expire { at_ms: 50, cond: ExpireCond::Always };
        assert_eq!(apply(expire, &mut slot, 1).change, Change::Fields(vec![]), "the header alone");
        let incr = Op::HIncrBy { field: s("n"), delta: 2 };
        assert_eq!(apply(incr.clone(), &mut slot, 100).change, Change::Whole, "expired: replaced");
        assert_eq!(apply(hdel(&["n"]), &mut slot, 100).change, Change::Whole, "emptied: gone");
        assert_eq!(slot, None);
    }
}
