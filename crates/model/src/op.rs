//! Single-key operations. A partition executes one at a time, so each is atomic.
//!
//! Times are absolute unix milliseconds, resolved by the door that parsed the command, so an
//! operation means the same thing whenever and wherever it is applied.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::list::op::ListOp;
use crate::session::op::SessionOp;
use crate::set::op::SetOp;
use crate::zset::op::ZsetOp;

/// The precondition of a `SET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetCond {
    Always,
    /// `NX`: only if the key does not exist.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// What a write does to the key's expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpiryChange {
    /// Remove any deadline (`SET` without options, `GETEX PERSIST`).
    Clear,
    /// Keep the current deadline (`SET ... KEEPTTL`, plain `GETEX`).
    Keep,
    /// Set this deadline (unix ms).
    At(u64),
}

/// The condition of `EXPIRE ... NX|XX|GT|LT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpireCond {
    Always,
    IfNoExpiry,
    IfHasExpiry,
    IfGreater,
    IfLess,
    /// `XX LT`: has a deadline and the new one is smaller.
    IfLessExisting,
}

/// What of a hash, set or sorted set an operation on some of its fields needs ([`Op::fields`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldNeeds {
    pub names: Vec<Bytes>,
    /// Whether the hash has fields besides `names`: removing the named ones deletes the key
    /// only if it has none.
    pub others: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Get,
    /// `SET`; with `get` the reply is the old value.
    Set {
        value: Bytes,
        cond: SetCond,
        expiry: ExpiryChange,
        get: bool,
    },
    /// `SETNX`: 1 if set, 0 if the key existed.
    SetNx {
        value: Bytes,
    },
    GetDel,
    GetEx {
        expiry: ExpiryChange,
    },
    IncrBy {
        delta: i64,
    },
    /// `INCRBYFLOAT`; the door has checked that `delta` parses as a finite float.
    IncrByFloat {
        delta: Bytes,
    },
    /// `GETRANGE`: the bytes from `start` to `end` inclusive (negative: from the end).
    GetRange {
        start: i64,
        end: i64,
    },
    /// `SETBIT`: sets bit `offset` (0 is the high bit of the first byte), padding with zero
    /// bytes; replies the bit's old value.
    SetBit {
        offset: u64,
        on: bool,
    },
    GetBit {
        offset: u64,
    },
    /// `SETRANGE`: overwrites from `offset`, padding with zero bytes.
    SetRange {
        offset: u64,
        value: Bytes,
    },
    Append {
        value: Bytes,
    },
    StrLen,
    Del,
    Exists,
    Type,
    /// `EXPIRE` family; a deadline in the past deletes the key.
    Expire {
        at_ms: u64,
        cond: ExpireCond,
    },
    /// `TTL` (`millis = false`) or `PTTL`.
    Ttl {
        millis: bool,
    },
    /// `EXPIRETIME` (`millis = false`) or `PEXPIRETIME`.
    ExpireTime {
        millis: bool,
    },
    Persist,
    /// `HSET`/`HMSET` (`reply_ok`) /`HSETNX` (`only_new`, one pair).
    HSet {
        pairs: Vec<(Bytes, Bytes)>,
        only_new: bool,
        reply_ok: bool,
    },
    HGet {
        field: Bytes,
    },
    HMGet {
        fields: Vec<Bytes>,
    },
    HGetAll,
    HDel {
        fields: Vec<Bytes>,
    },
    HLen,
    HExists {
        field: Bytes,
    },
    HKeys,
    HVals,
    HIncrBy {
        field: Bytes,
        delta: i64,
    },
    /// `HINCRBYFLOAT`; the door has checked that `delta` parses as a finite float.
    HIncrByFloat {
        field: Bytes,
        delta: Bytes,
    },
    HStrLen {
        field: Bytes,
    },
    /// `HSCAN` from cursor 0: every field (and value) matching `pattern`, in one reply with
    /// cursor 0, as Redis answers for a small hash.
    HScan {
        pattern: Option<Bytes>,
    },
    /// `HRANDFIELD`: `count` fields (`None`: one, as a bulk string; negative: may repeat),
    /// chosen by `seed`, with their values if asked.
    HRandField {
        count: Option<i64>,
        values: bool,
        seed: u64,
    },
    /// `OBJECT ENCODING`: the name Redis 7.0 would give the value's encoding; nil if absent.
    Encoding,
    /// `MEMORY USAGE`: the bytes the entry is charged in the memory tier; nil if absent.
    Usage,
    /// The key's entry (postcard-encoded, deadline and version included) for `RENAME` and
    /// `COPY`; nil if absent.
    Dump,
    /// Stores `entry` (from [`Op::Dump`] of another key) unless the key exists and not
    /// `replace`: 1 if stored, 0 if not.
    Restore {
        entry: Box<Entry>,
        replace: bool,
    },
    /// Deletes the key if its last write is still `version` (the source of a `RENAME`, unless
    /// written since it was copied): 1 if deleted.
    DelIf {
        version: u64,
    },
    /// An operation on a session or a user's login registry.
    Session(SessionOp),
    Sets(SetOp),
    Zsets(ZsetOp),
    Lists(ListOp),
    /// The key's entry from the other side of a healed network split, joined with this side's
    /// by [`crate::merge`]; replies 1 if it changed the key.
    Merge(Box<Entry>),
    /// The version of the key's last write (`WATCH`); nil if there is no key.
    Version,
}

impl Op {
    /// True if the operation may change the entry; reads never write to disk.
    pub fn is_write(&self) -> bool {
        match self {
            Op::Session(op) => return op.is_write(),
            Op::Sets(op) => return op.is_write(),
            Op::Zsets(op) => return op.is_write(),
            Op::Lists(op) => return op.is_write(),
            _ => {}
        }
        !matches!(
            self,
            Op::Get
                | Op::StrLen
                | Op::Exists
                | Op::Type
                | Op::Ttl { .. }
                | Op::ExpireTime { .. }
                | Op::GetRange { .. }
                | Op::GetBit { .. }
                | Op::HStrLen { .. }
                | Op::HScan { .. }
                | Op::Dump
                | Op::Version
                | Op::Encoding
                | Op::Usage
                | Op::HRandField { .. }
                | Op::HGet { .. }
                | Op::HMGet { .. }
                | Op::HGetAll
                | Op::HLen
                | Op::HExists { .. }
                | Op::HKeys
                | Op::HVals
        )
    }

    /// True for a read, and for an operation that mostly changes nothing: a session read that
    /// touches the session, which writes at most once a granule. Such an operation may be
    /// answered on the spot when it turns out to change nothing (the grid's reads on the spot);
    /// any other write is sent to be run.
    pub fn mostly_reads(&self) -> bool {
        !self.is_write() || matches!(self, Op::Session(SessionOp::Get { touch: true, .. }))
    }

    /// What a command that reads or writes only named fields needs of a hash, set or sorted
    /// set: the partition then reads those fields, not all of it.
    pub fn fields(&self) -> Option<FieldNeeds> {
        let names = match self {
            Op::Sets(op) => return op.fields(),
            Op::Zsets(op) => return op.fields(),
            Op::HGet { field }
            | Op::HExists { field }
            | Op::HStrLen { field }
            | Op::HIncrBy { field, .. }
            | Op::HIncrByFloat { field, .. } => vec![field.clone()],
            Op::HMGet { fields } | Op::HDel { fields } => fields.clone(),
            Op::Version => Vec::new(),
            Op::HSet { pairs, .. } => pairs.iter().map(|(f, _)| f.clone()).collect(),
            _ => return None,
        };
        Some(FieldNeeds { names, others: matches!(self, Op::HDel { .. }) })
    }

    /// Low-cardinality name for metrics and spans.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set { .. } => "set",
            Op::SetNx { .. } => "setnx",
            Op::GetDel => "getdel",
            Op::GetEx { .. } => "getex",
            Op::IncrBy { .. } => "incrby",
            Op::IncrByFloat { .. } => "incrbyfloat",
            Op::GetRange { .. } => "getrange",
            Op::SetRange { .. } => "setrange",
            Op::SetBit { .. } => "setbit",
            Op::GetBit { .. } => "getbit",
            Op::Append { .. } => "append",
            Op::StrLen => "strlen",
            Op::Del => "del",
            Op::Exists => "exists",
            Op::Type => "type",
            Op::Expire { .. } => "expire",
            Op::Ttl { .. } => "ttl",
            Op::ExpireTime { .. } => "expiretime",
            Op::Persist => "persist",
            Op::HSet { .. } => "hset",
            Op::HGet { .. } => "hget",
            Op::HMGet { .. } => "hmget",
            Op::HGetAll => "hgetall",
            Op::HDel { .. } => "hdel",
            Op::HLen => "hlen",
            Op::HExists { .. } => "hexists",
            Op::HKeys => "hkeys",
            Op::HVals => "hvals",
            Op::HIncrBy { .. } => "hincrby",
            Op::HIncrByFloat { .. } => "hincrbyfloat",
            Op::HStrLen { .. } => "hstrlen",
            Op::HScan { .. } => "hscan",
            Op::Dump => "dump",
            Op::Version => "version",
            Op::Encoding => "encoding",
            Op::Usage => "usage",
            Op::Restore { .. } => "restore",
            Op::DelIf { .. } => "delif",
            Op::HRandField { .. } => "hrandfield",
            Op::Session(op) => op.name(),
            Op::Sets(op) => op.name(),
            Op::Zsets(op) => op.name(),
            Op::Lists(op) => op.name(),
            Op::Merge(_) => "merge",
        }
    }
}
