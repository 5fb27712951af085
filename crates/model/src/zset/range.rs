//! Score and lexicographic ranges of sorted-set commands, parsed exactly as Redis parses them
//! (`zslParseRange`, `zslParseLexRange`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::num::strtod;

/// `min max` of `ZRANGEBYSCORE` and its kind: each bound inclusive, or exclusive after `(`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct ScoreRange {
    pub min: f64,
    pub min_ex: bool,
    pub max: f64,
    pub max_ex: bool,
}

/// Bounds compare by their bits: a range is data here, not a number.
impl PartialEq for ScoreRange {
    fn eq(&self, other: &Self) -> bool {
        self.min.to_bits() == other.min.to_bits()
            && self.max.to_bits() == other.max.to_bits()
            && self.min_ex == other.min_ex
            && self.max_ex == other.max_ex
    }
}

impl Eq for ScoreRange {}

impl ScoreRange {
    /// Parses `min` and `max`; `None` is Redis' "min or max is not a float".
    pub fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, min_ex) = score_bound(min)?;
        let (max, max_ex) = score_bound(max)?;
        Some(ScoreRange { min, min_ex, max, max_ex })
    }

    /// Whether `score` is at or above (or above, if exclusive) the lower bound.
    pub fn above_min(&self, score: f64) -> bool {
        if self.min_ex {
            score > self.min
        } else {
            score >= self.min
        }
    }

    /// Whether `score` is at or below (or below, if exclusive) the upper bound.
    pub fn below_max(&self, score: f64) -> bool {
        if self.max_ex {
            score < self.max
        } else {
            score <= self.max
        }
    }

    pub fn contains(&self, score: f64) -> bool {
        self.above_min(score) && self.below_max(score)
    }
}

/// One score bound: Redis reads the argument as a C string (up to a NUL byte) with `strtod`,
/// which skips leading spaces and reads an empty string as 0; anything left over, or NaN, is an
/// error.
fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let arg = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
    let (text, exclusive) = match arg.strip_prefix(b"(") {
        Some(rest) => (rest, true),
        None => (arg, false),
    };
    let (value, used, _) = strtod(text);
    (used == text.len() && !value.is_nan()).then_some((value, exclusive))
}

/// One end of a `ZRANGEBYLEX` range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LexBound {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[member`
    Incl(Bytes),
    /// `(member`
    Excl(Bytes),
}

impl LexBound {
    /// Parses `-`, `+`, `[member` or `(member`; `None` is Redis' "min or max not valid string
    /// range item".
    pub fn parse(arg: &[u8]) -> Option<LexBound> {
        // Redis tests `c[1] != '\0'`, so `+` followed by a NUL byte still reads as `+`.
        let alone = arg.get(1).is_none_or(|&b| b == 0);
        match arg.first()? {
            b'+' if alone => Some(LexBound::Max),
            b'-' if alone => Some(LexBound::Min),
            b'(' => Some(LexBound::Excl(Bytes::copy_from_slice(&arg[1..]))),
            b'[' => Some(LexBound::Incl(Bytes::copy_from_slice(&arg[1..]))),
            _ => None,
        }
    }

    /// Whether the bound is exclusive (`-` and `+` are, for Redis).
    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }
}

/// `min max` of `ZRANGEBYLEX` and its kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn parse(min: &[u8], max: &[u8]) -> Option<LexRange> {
        Some(LexRange { min: LexBound::parse(min)?, max: LexBound::parse(max)? })
    }

    /// Whether `member` is at or above the lower bound.
    pub fn above_min(&self, member: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(m) => member >= &m[..],
            LexBound::Excl(m) => member > &m[..],
        }
    }

    /// Whether `member` is at or below the upper bound.
    pub fn below_max(&self, member: &[u8]) -> bool {
        match &self.max {
            LexBound::Max => true,
            LexBound::Min => false,
            LexBound::Incl(m) => member <= &m[..],
            LexBound::Excl(m) => member < &m[..],
        }
    }

    /// True if no string can be inside (`zslIsInLexRange`'s first test): min above max, or
    /// equal with either exclusive.
    pub fn is_empty(&self) -> bool {
        use std::cmp::Ordering::*;
        let order = match (&self.min, &self.max) {
            (LexBound::Min, LexBound::Min) | (LexBound::Max, LexBound::Max) => Equal,
            (LexBound::Min, _) | (_, LexBound::Max) => Less,
            (LexBound::Max, _) | (_, LexBound::Min) => Greater,
            (LexBound::Incl(a) | LexBound::Excl(a), LexBound::Incl(b) | LexBound::Excl(b)) => {
                a.cmp(b)
            }
        };
        order == Greater || (order == Equal && (self.min.exclusive() || self.max.exclusive()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_bounds_read_as_redis_reads_them() {
        let r = ScoreRange::parse(b"(1.5", b"+inf").unwrap();
        assert!(r.min_ex && !r.max_ex && r.min == 1.5 && r.max == f64::INFINITY);
        assert!(!r.contains(1.5) && r.contains(2.0));
        // strtod's leniencies: an empty bound is 0, leading spaces pass, a NUL ends the text.
        assert_eq!(ScoreRange::parse(b"(", b"").map(|r| (r.min, r.max)), Some((0.0, 0.0)));
        assert!(ScoreRange::parse(b" 1", b"2\x00junk").is_some());
        for bad in [&b"x"[..], b"1x", b"nan", b"((1", b"1 "] {
            assert!(ScoreRange::parse(bad, b"1").is_none(), "{bad:?}");
        }
    }

    #[test]
    fn lex_bounds_and_empty_ranges() {
        assert_eq!(LexBound::parse(b"-"), Some(LexBound::Min));
        assert_eq!(LexBound::parse(b"+"), Some(LexBound::Max));
        assert_eq!(LexBound::parse(b"[a"), Some(LexBound::Incl(Bytes::from_static(b"a"))));
        assert_eq!(LexBound::parse(b"("), Some(LexBound::Excl(Bytes::new())));
        for bad in [&b""[..], b"a", b"+a", b"-x"] {
            assert_eq!(LexBound::parse(bad), None, "{bad:?}");
        }
        let range = |a: &[u8], b: &[u8]| LexRange::parse(a, b).unwrap();
        assert!(range(b"-", b"-").is_empty());
        assert!(range(b"+", b"-").is_empty());
        assert!(range(b"(a", b"[a").is_empty());
        assert!(!range(b"[a", b"[a").is_empty());
        assert!(!range(b"-", b"+").is_empty());
        let r = range(b"(a", b"[c");
        assert!(!r.above_min(b"a") && r.above_min(b"b") && r.below_max(b"c"));
    }
}
