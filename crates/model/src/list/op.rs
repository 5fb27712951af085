//! Operations on one list. Commands over two lists (`LMOVE` between keys, `LMPOP`) and the
//! blocking ones are built by the door from these.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// An end of a list: `LEFT` is the head (index 0), `RIGHT` the tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum End {
    Left,
    Right,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListOp {
    /// `LPUSH`/`RPUSH` (`only_if_exists`: `LPUSHX`/`RPUSHX`): pushes each item in turn at
    /// `end`; replies the new length (0 for an `X` push on no key).
    Push { items: Vec<Bytes>, end: End, only_if_exists: bool },
    /// `LPOP`/`RPOP`: `count` `None` pops one element as a bulk string (nil if no key);
    /// `Some(n)` pops up to `n` as an array (a null array if no key, an empty one for 0).
    Pop { end: End, count: Option<u64> },
    /// `LRANGE`: the elements from `start` to `stop` inclusive (negative: from the end).
    Range { start: i64, stop: i64 },
    /// `LINDEX`; `index` `None` if the argument is not an integer, which Redis reports only
    /// once it has found a list at the key.
    Index { index: Option<i64> },
    /// `LSET`; `index` as for [`ListOp::Index`].
    Set { index: Option<i64>, item: Bytes },
    /// `LREM`: removes up to `count` elements equal to `item` from the head (negative: from
    /// the tail; 0: all of them); replies how many.
    Rem { count: i64, item: Bytes },
    /// `LTRIM`: keeps the elements from `start` to `stop` inclusive.
    Trim { start: i64, stop: i64 },
    /// `LINSERT`: inserts `item` before (or `after`) the first element equal to `pivot`;
    /// replies the new length, -1 if there is no pivot, 0 if no key.
    Insert { after: bool, pivot: Bytes, item: Bytes },
    /// `LPOS`: the indexes of elements equal to `item`. `rank` as given (never 0; negative
    /// searches from the tail), `count` `None` when not given (one index or nil), `maxlen` 0
    /// for no limit.
    Pos { item: Bytes, rank: i64, count: Option<i64>, maxlen: i64 },
    /// `LMOVE key key from to` (and `RPOPLPUSH key key`): pops at `from` and pushes the element
    /// back at `to` of the same list; replies it, nil if no key.
    Rotate { from: End, to: End },
    /// `LLEN`
    Len,
}

impl ListOp {
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            ListOp::Len | ListOp::Range { .. } | ListOp::Index { .. } | ListOp::Pos { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            ListOp::Push { end: End::Left, .. } => "lpush",
            ListOp::Push { end: End::Right, .. } => "rpush",
            ListOp::Pop { end: End::Left, .. } => "lpop",
            ListOp::Pop { end: End::Right, .. } => "rpop",
            ListOp::Range { .. } => "lrange",
            ListOp::Index { .. } => "lindex",
            ListOp::Set { .. } => "lset",
            ListOp::Rem { .. } => "lrem",
            ListOp::Trim { .. } => "ltrim",
            ListOp::Insert { .. } => "linsert",
            ListOp::Pos { .. } => "lpos",
            ListOp::Rotate { .. } => "lmove",
            ListOp::Len => "llen",
        }
    }

    /// The keyspace events of the write, as Redis names them (`LMOVE` of a list onto itself
    /// pops, then pushes).
    pub fn events(&self) -> [Option<&'static str>; 2] {
        match self {
            ListOp::Push { .. }
            | ListOp::Pop { .. }
            | ListOp::Set { .. }
            | ListOp::Rem { .. }
            | ListOp::Trim { .. }
            | ListOp::Insert { .. } => [Some(self.name()), None],
            ListOp::Rotate { from, to } => {
                let pop = ListOp::Pop { end: *from, count: None }.name();
                let push = ListOp::Push { items: Vec::new(), end: *to, only_if_exists: false };
                [Some(pop), Some(push.name())]
            }
            _ => [None, None],
        }
    }
}
