//! Operations on one set. Commands over several sets (`SINTER`, `SMOVE`, ...) are built by the
//! door from these.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::op::FieldNeeds;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetOp {
    /// `SADD`: how many members were new.
    Add {
        members: Vec<Bytes>,
    },
    /// `SREM`: how many members were there.
    Rem {
        members: Vec<Bytes>,
    },
    /// `SMEMBERS` (also what multi-set commands read): every member, as a set reply.
    Members,
    IsMember {
        member: Bytes,
    },
    MIsMember {
        members: Vec<Bytes>,
    },
    Card,
    /// `SPOP` (`count` `None`: one member as a bulk string) with the members picked by `seed`.
    Pop {
        count: Option<u64>,
        seed: u64,
    },
    /// `SRANDMEMBER`: as `HRANDFIELD`, negative counts may repeat.
    RandMember {
        count: Option<i64>,
        seed: u64,
    },
    /// `SSCAN` from cursor 0: every member matching `pattern`, in one page.
    Scan {
        pattern: Option<Bytes>,
    },
}

impl SetOp {
    pub fn is_write(&self) -> bool {
        matches!(self, SetOp::Add { .. } | SetOp::Rem { .. } | SetOp::Pop { .. })
    }

    /// What of the set an operation on named members needs (see [`crate::Op::fields`]).
    pub fn fields(&self) -> Option<FieldNeeds> {
        match self {
            SetOp::Add { members } | SetOp::MIsMember { members } => {
                Some(FieldNeeds { names: members.clone(), others: false })
            }
            SetOp::Rem { members } => Some(FieldNeeds { names: members.clone(), others: true }),
            SetOp::IsMember { member } => {
                Some(FieldNeeds { names: vec![member.clone()], others: false })
            }
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            SetOp::Add { .. } => "sadd",
            SetOp::Rem { .. } => "srem",
            SetOp::Members => "smembers",
            SetOp::IsMember { .. } => "sismember",
            SetOp::MIsMember { .. } => "smismember",
            SetOp::Card => "scard",
            SetOp::Pop { .. } => "spop",
            SetOp::RandMember { .. } => "srandmember",
            SetOp::Scan { .. } => "sscan",
        }
    }
}
