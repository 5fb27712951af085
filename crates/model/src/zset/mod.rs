//! Sorted sets: members ordered by score, then by their bytes, as Redis orders them.
//!
//! A [`Zset`] keeps each member's score for lookups and the (score, member) order for ranges.
//! On disk and on the wire each member is a field row holding its score ([`Zset::row`]).

pub mod apply;
pub mod op;
pub mod range;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use bytes::Bytes;
use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use range::{LexRange, ScoreRange};

/// A score as the order of a sorted set compares it: never NaN, and -0 equal to 0 (Redis
/// compares scores with `<`).
#[derive(Clone, Copy, Debug)]
pub struct Score(f64);

impl Score {
    pub fn new(score: f64) -> Self {
        debug_assert!(!score.is_nan(), "a sorted set never holds NaN");
        Score(score + 0.0) // -0 + 0 is +0
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set.
#[derive(Clone, Debug, Default)]
pub struct Zset {
    scores: HashMap<Bytes, f64>,
    order: BTreeSet<(Score, Bytes)>,
}

impl Zset {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// The stored member equal to `member`, with its score.
    pub fn member(&self, member: &[u8]) -> Option<(&Bytes, f64)> {
        self.scores.get_key_value(member).map(|(m, s)| (m, *s))
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score; returns its old one. A score of -0 is stored as 0, as Redis'
    /// listpack stores an integral score as an integer (the encoding of every small sorted set).
    pub fn insert(&mut self, member: Bytes, score: f64) -> Option<f64> {
        let score = score + 0.0;
        let old = self.scores.insert(member.clone(), score);
        if let Some(old) = old {
            self.order.remove(&(Score::new(old), member.clone()));
        }
        self.order.insert((Score::new(score), member));
        old
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (member, score) = self.scores.remove_entry(member)?;
        self.order.remove(&(Score::new(score), member));
        Some(score)
    }

    /// Members from the lowest score to the highest, with their scores.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> + '_ {
        self.order.iter().map(|(s, m)| (m, self.scores.get(m).copied().unwrap_or(s.get())))
    }

    /// The 0-based position of `member` from the lowest score.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let key = (Score::new(score), Bytes::copy_from_slice(member));
        Some(self.order.range(..key).count())
    }

    /// Members whose score is within the bounds, lowest first.
    pub fn by_score(
        &self,
        min: Bound<f64>,
        max: Bound<f64>,
    ) -> impl Iterator<Item = (&Bytes, f64)> + '_ {
        let inside = move |s: f64| {
            let above = match min {
                Bound::Included(m) => s >= m,
                Bound::Excluded(m) => s > m,
                Bound::Unbounded => true,
            };
            let below = match max {
                Bound::Included(m) => s <= m,
                Bound::Excluded(m) => s < m,
                Bound::Unbounded => true,
            };
            above && below
        };
        // Start at the first member of the lowest score the range may hold.
        let start = match min {
            Bound::Included(m) | Bound::Excluded(m) if !m.is_nan() => {
                Bound::Included((Score::new(m), Bytes::new()))
            }
            _ => Bound::Unbounded,
        };
        self.order
            .range((start, Bound::Unbounded))
            .skip_while(move |(s, _)| !inside(s.get()))
            .take_while(move |(s, _)| inside(s.get()))
            .map(|(s, m)| (m, self.scores.get(m).copied().unwrap_or(s.get())))
    }

    /// The 0-based position of `member` from the highest score.
    pub fn rev_rank(&self, member: &[u8]) -> Option<usize> {
        self.rank(member).map(|r| self.len() - 1 - r)
    }

    /// The member with the lowest score (`max` false) or the highest.
    pub fn edge(&self, max: bool) -> Option<(Bytes, f64)> {
        let (score, member) = if max { self.order.last()? } else { self.order.first()? };
        Some((member.clone(), self.score(member).unwrap_or(score.get())))
    }

    /// Members within a score range, lowest first.
    pub fn in_scores<'a>(
        &'a self,
        range: &ScoreRange,
    ) -> impl Iterator<Item = (&'a Bytes, f64)> + 'a {
        self.by_score(score_bound(range.min, range.min_ex), score_bound(range.max, range.max_ex))
    }

    /// Members within a score range, highest first: the walk starts after the last member of
    /// the highest score the range may hold.
    pub fn in_scores_rev<'a>(
        &'a self,
        range: &ScoreRange,
    ) -> impl Iterator<Item = (&'a Bytes, f64)> + 'a {
        let range = *range;
        let end = match range.max {
            m if m.is_nan() || m == f64::INFINITY => Bound::Unbounded,
            m => Bound::Excluded((Score::new(m.next_up()), Bytes::new())),
        };
        self.order
            .range((Bound::Unbounded, end))
            .rev()
            .skip_while(move |(s, _)| !range.below_max(s.get()))
            .take_while(move |(s, _)| range.above_min(s.get()))
            .map(|(s, m)| (m, self.scores.get(m).copied().unwrap_or(s.get())))
    }

    /// Members within a lexicographic range, walked as Redis walks a listpack: from the first
    /// member at or above the minimum while at or below the maximum (exact when all scores are
    /// equal, the only case Redis defines).
    pub fn in_lex<'a>(
        &'a self,
        range: &'a LexRange,
    ) -> impl Iterator<Item = (&'a Bytes, f64)> + 'a {
        self.iter()
            .take(if self.may_hold_lex(range) { usize::MAX } else { 0 })
            .skip_while(|(m, _)| !range.above_min(m))
            .take_while(|(m, _)| range.below_max(m))
    }

    /// [`Zset::in_lex`] from the other end: from the last member at or below the maximum while
    /// at or above the minimum.
    pub fn in_lex_rev<'a>(
        &'a self,
        range: &'a LexRange,
    ) -> impl Iterator<Item = (&'a Bytes, f64)> + 'a {
        self.iter()
            .rev()
            .take(if self.may_hold_lex(range) { usize::MAX } else { 0 })
            .skip_while(|(m, _)| !range.below_max(m))
            .take_while(|(m, _)| range.above_min(m))
    }

    /// Redis' quick test before a lexicographic walk (`zzlIsInLexRange`): the range is not
    /// empty, the last member is at or above its minimum and the first at or below its maximum.
    fn may_hold_lex(&self, range: &LexRange) -> bool {
        let (Some((_, first)), Some((_, last))) = (self.order.first(), self.order.last()) else {
            return false;
        };
        !range.is_empty() && range.above_min(last) && range.below_max(first)
    }

    /// The stored form of a member's score (its field row).
    pub fn row(score: f64) -> Bytes {
        Bytes::copy_from_slice(&score.to_bits().to_be_bytes())
    }

    /// A score from its stored form; `None` if the row is not one.
    pub fn score_of_row(row: &[u8]) -> Option<f64> {
        let bits = u64::from_be_bytes(row.try_into().ok()?);
        Some(f64::from_bits(bits)).filter(|s| !s.is_nan())
    }
}

/// A score range's bound as a [`Bound`].
fn score_bound(value: f64, exclusive: bool) -> Bound<f64> {
    if exclusive {
        Bound::Excluded(value)
    } else {
        Bound::Included(value)
    }
}

impl PartialEq for Zset {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .scores
                .iter()
                .all(|(m, s)| other.score(m).is_some_and(|o| o.to_bits() == s.to_bits()))
    }
}

impl Eq for Zset {}

impl FromIterator<(Bytes, f64)> for Zset {
    fn from_iter<I: IntoIterator<Item = (Bytes, f64)>>(iter: I) -> Self {
        let mut z = Zset::default();
        for (m, s) in iter {
            z.insert(m, s);
        }
        z
    }
}

/// Serialised as its (member, score) pairs in order.
impl Serialize for Zset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for (m, s) in self.iter() {
            seq.serialize_element(&(m, s))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Zset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Zset;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of (member, score)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Zset, A::Error> {
                let mut z = Zset::default();
                while let Some((m, s)) = seq.next_element::<(Bytes, f64)>()? {
                    if s.is_nan() {
                        return Err(serde::de::Error::custom("NaN score"));
                    }
                    z.insert(m, s);
                }
                Ok(z)
            }
        }
        deserializer.deserialize_seq(Pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn orders_by_score_then_member_and_ranks() {
        let z: Zset = [(b("b"), 1.0), (b("a"), 1.0), (b("c"), -2.5), (b("d"), f64::INFINITY)]
            .into_iter()
            .collect();
        let names: Vec<&Bytes> = z.iter().map(|(m, _)| m).collect();
        assert_eq!(names, [&b("c"), &b("a"), &b("b"), &b("d")]);
        assert_eq!(z.rank(b"b"), Some(2));
        assert_eq!(z.rank(b"x"), None);
        let mid: Vec<f64> =
            z.by_score(Bound::Excluded(-2.5), Bound::Included(1.0)).map(|(_, s)| s).collect();
        assert_eq!(mid, [1.0, 1.0]);
        let mut z2 = z.clone();
        assert_eq!(z2.insert(b("c"), 5.0), Some(-2.5));
        assert_eq!(z2.rank(b"c"), Some(2));
        assert_eq!(z2.remove(b"c"), Some(5.0));
        assert_eq!(z2.len(), 3);
    }

    #[test]
    fn score_ranges_walk_both_ways() {
        let z: Zset =
            [(b("a"), 1.0), (b("b"), 2.0), (b("c"), 2.0), (b("d"), 3.0)].into_iter().collect();
        let names =
            |it: Vec<(&Bytes, f64)>| it.into_iter().map(|(m, _)| m.clone()).collect::<Vec<_>>();
        let r = ScoreRange { min: 1.0, min_ex: true, max: 3.0, max_ex: false };
        assert_eq!(names(z.in_scores(&r).collect()), [b("b"), b("c"), b("d")]);
        assert_eq!(names(z.in_scores_rev(&r).collect()), [b("d"), b("c"), b("b")]);
        let r = ScoreRange { min: 2.0, min_ex: false, max: 2.0, max_ex: false };
        assert_eq!(names(z.in_scores_rev(&r).collect()), [b("c"), b("b")]);
        let r =
            ScoreRange { min: f64::NEG_INFINITY, min_ex: false, max: f64::INFINITY, max_ex: true };
        assert_eq!(z.in_scores_rev(&r).count(), 4);
        assert_eq!(z.edge(true), Some((b("d"), 3.0)));
        assert_eq!(z.rev_rank(b"a"), Some(3));
    }

    #[test]
    fn lex_ranges_walk_both_ways() {
        let z: Zset = ["a", "b", "c", "d"].into_iter().map(|m| (b(m), 0.0)).collect();
        let names =
            |it: Vec<(&Bytes, f64)>| it.into_iter().map(|(m, _)| m.clone()).collect::<Vec<_>>();
        let r = LexRange::parse(b"(a", b"[c").unwrap();
        assert_eq!(names(z.in_lex(&r).collect()), [b("b"), b("c")]);
        assert_eq!(names(z.in_lex_rev(&r).collect()), [b("c"), b("b")]);
        let all = LexRange::parse(b"-", b"+").unwrap();
        assert_eq!(z.in_lex(&all).count(), 4);
        assert_eq!(z.in_lex(&LexRange::parse(b"+", b"-").unwrap()).count(), 0);
        assert_eq!(z.in_lex(&LexRange::parse(b"[e", b"+").unwrap()).count(), 0);
    }

    #[test]
    fn round_trips_through_postcard_and_rows() {
        let z: Zset = [(b("x"), 0.5), (b("y"), -0.0)].into_iter().collect();
        let bytes = postcard::to_stdvec(&z).unwrap();
        assert_eq!(postcard::from_bytes::<Zset>(&bytes).unwrap(), z);
        assert_eq!(Zset::score_of_row(&Zset::row(-7.25)), Some(-7.25));
        assert_eq!(Zset::score_of_row(b"short"), None);
    }
}
