//! Protocol-neutral replies. The Redis door encodes them as RESP2 or RESP3; other doors as JSON.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// `+OK`
    Ok,
    /// A simple status line such as `+PONG` or `+string`.
    Status(Cow<'static, str>),
    /// A null (RESP2 `$-1`, RESP3 `_`).
    Nil,
    Int(i64),
    Bulk(Bytes),
    Array(Vec<Reply>),
    /// A map: a flat array in RESP2, a `%` map in RESP3.
    Map(Vec<(Reply, Reply)>),
    /// A set: an array in RESP2, a `~` set in RESP3.
    Set(Vec<Reply>),
    /// Human-readable text: a bulk string in RESP2, a `=` verbatim string (`txt`) in RESP3.
    Verbatim(Bytes),
    /// An error line; the text includes its code (`ERR ...`, `WRONGTYPE ...`).
    Error(String),
    /// Out-of-band data such as a pub/sub message: a `>` push in RESP3, an array in RESP2.
    Push(Vec<Reply>),
    /// Several replies to one request, in order (`SUBSCRIBE a b` confirms each channel).
    Many(Vec<Reply>),
    /// A floating-point number (a sorted set's score): a `,` double in RESP3, a bulk string in
    /// RESP2, both written as C's `%.17g` (see [`crate::num::format_g17`]).
    Double(f64),
    /// A null array (RESP2 `*-1`, RESP3 `_`): what a blocking pop answers when it times out.
    NilArray,
    /// Pairs in order, such as members with their scores: one flat array in RESP2, an array of
    /// two-element arrays in RESP3 (Redis' `WITHSCORES` shape; not a map, order matters).
    Pairs(Vec<(Reply, Reply)>),
    /// A boolean: RESP3 `#t`/`#f`, the integer 1 or 0 in RESP2.
    Bool(bool),
    /// An integer of any size, in decimal: RESP3 `(`, a bulk string in RESP2.
    BigNumber(Bytes),
}

impl Reply {
    pub fn error(text: impl Into<String>) -> Self {
        Reply::Error(text.into())
    }

    pub fn bulk(bytes: impl Into<Bytes>) -> Self {
        Reply::Bulk(bytes.into())
    }

    pub fn wrong_type() -> Self {
        Reply::Error(WRONGTYPE.to_string())
    }

    /// The error [`Reply::wrong_type`] makes: the key holds another kind of value.
    pub fn is_wrong_type(&self) -> bool {
        matches!(self, Reply::Error(e) if e == WRONGTYPE)
    }

    pub fn is_error(&self) -> bool {
        match self {
            Reply::Error(_) => true,
            Reply::Many(replies) => replies.iter().any(Reply::is_error),
            _ => false,
        }
    }
}

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
