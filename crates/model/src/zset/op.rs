//! Operations on one sorted set. Commands over several (`ZUNIONSTORE`, `ZRANGESTORE`, ...) are
//! built by the door from these.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::range::{LexRange, ScoreRange};
use crate::op::FieldNeeds;

/// A score carried by an operation; compared by its bits (so that `-0` stays `-0`, as Redis
/// keeps it).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Float(pub f64);

impl PartialEq for Float {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Float {}

/// `ZADD`'s `NX` / `XX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddCond {
    Always,
    /// `NX`: only add new members.
    IfAbsent,
    /// `XX`: only update existing members.
    IfPresent,
}

/// `ZADD`'s `GT` / `LT`: an update happens only if it moves the score that way (new members
/// are always added).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddCmp {
    Any,
    Greater,
    Less,
}

/// The options of `ZADD` (and `ZINCRBY`, which is `ZADD INCR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddOptions {
    pub cond: AddCond,
    pub cmp: AddCmp,
    /// `CH`: count updated members as well as added ones.
    pub ch: bool,
    /// `INCR`: add the score to the member's (one pair only); replies the new score.
    pub incr: bool,
}

/// Which members a range command selects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZRange {
    /// Positions, inclusive, negative from the end (`ZRANGE`, `ZREMRANGEBYRANK`).
    Rank {
        start: i64,
        end: i64,
    },
    Score(ScoreRange),
    Lex(LexRange),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZsetOp {
    /// `ZADD` / `ZINCRBY`: (score, member) pairs.
    Add { pairs: Vec<(Float, Bytes)>, options: AddOptions },
    /// `ZREM`: how many of the members were there.
    Rem { members: Vec<Bytes> },
    /// `ZSCORE`
    Score { member: Bytes },
    /// `ZMSCORE`
    MScore { members: Vec<Bytes> },
    /// `ZCARD`
    Card,
    /// `ZCOUNT`
    Count { range: ScoreRange },
    /// `ZLEXCOUNT`
    LexCount { range: LexRange },
    /// `ZRANK` / `ZREVRANK`
    Rank { member: Bytes, rev: bool },
    /// Every `ZRANGE` form: members (with scores if asked) of the range, from the highest if
    /// `rev`, skipping and counting per `LIMIT offset count` (score and lex ranges only).
    Range { range: ZRange, rev: bool, limit: Option<(i64, i64)>, scores: bool },
    /// `ZREMRANGEBYRANK`, `ZREMRANGEBYSCORE`, `ZREMRANGEBYLEX`: how many were removed.
    RemRange { range: ZRange },
    /// `ZPOPMIN` / `ZPOPMAX` (`max`); `count` `None`: one member, as a flat pair.
    Pop { max: bool, count: Option<u64> },
    /// `ZRANDMEMBER`: as `HRANDFIELD`, negative counts may repeat; picks drawn from `seed`.
    RandMember { count: Option<i64>, scores: bool, seed: u64 },
    /// `ZSCAN` from cursor 0: every member matching `pattern` with its score, in one page.
    Scan { pattern: Option<Bytes> },
    /// Every member with its score, lowest first: what the commands over several keys read. A
    /// plain set answers too (each member scoring 1), as `ZUNIONSTORE` accepts sets.
    Scored,
}

impl ZsetOp {
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            ZsetOp::Add { .. } | ZsetOp::Rem { .. } | ZsetOp::RemRange { .. } | ZsetOp::Pop { .. }
        )
    }

    /// What of the sorted set an operation on named members needs (see [`crate::Op::fields`]).
    pub fn fields(&self) -> Option<FieldNeeds> {
        match self {
            ZsetOp::Add { pairs, .. } => Some(FieldNeeds {
                names: pairs.iter().map(|(_, m)| m.clone()).collect(),
                others: false,
            }),
            ZsetOp::MScore { members } => {
                Some(FieldNeeds { names: members.clone(), others: false })
            }
            ZsetOp::Rem { members } => Some(FieldNeeds { names: members.clone(), others: true }),
            ZsetOp::Score { member } => {
                Some(FieldNeeds { names: vec![member.clone()], others: false })
            }
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ZsetOp::Add { options, .. } if options.incr => "zincrby",
            ZsetOp::Add { .. } => "zadd",
            ZsetOp::Rem { .. } => "zrem",
            ZsetOp::Score { .. } => "zscore",
            ZsetOp::MScore { .. } => "zmscore",
            ZsetOp::Card => "zcard",
            ZsetOp::Count { .. } => "zcount",
            ZsetOp::LexCount { .. } => "zlexcount",
            ZsetOp::Rank { .. } => "zrank",
            ZsetOp::Range { .. } => "zrange",
            ZsetOp::RemRange { .. } => "zremrange",
            ZsetOp::Pop { .. } => "zpop",
            ZsetOp::RandMember { .. } => "zrandmember",
            ZsetOp::Scan { .. } => "zscan",
            ZsetOp::Scored => "zscored",
        }
    }

    /// The keyspace event of the write, as Redis names it.
    pub fn event(&self) -> Option<&'static str> {
        Some(match self {
            ZsetOp::Add { options, .. } if options.incr => "zincr",
            ZsetOp::Add { .. } => "zadd",
            ZsetOp::Rem { .. } => "zrem",
            ZsetOp::RemRange { range: ZRange::Rank { .. } } => "zremrangebyrank",
            ZsetOp::RemRange { range: ZRange::Score(_) } => "zremrangebyscore",
            ZsetOp::RemRange { range: ZRange::Lex(_) } => "zremrangebylex",
            ZsetOp::Pop { max: false, .. } => "zpopmin",
            ZsetOp::Pop { max: true, .. } => "zpopmax",
            _ => return None,
        })
    }
}
