//! The Redis semantics of [`ZsetOp`]s. A write reports the members it changed; one that
//! creates or empties the sorted set is made whole by [`crate::apply::apply`].

use bytes::Bytes;

use super::op::{AddCmp, AddCond, AddOptions, Float, ZRange, ZsetOp};
use super::Zset;
use crate::delta::Change;
use crate::entry::{Entry, Value};
use crate::glob;
use crate::num::format_d2string;
use crate::pick::Picker;
use crate::reply::Reply;

/// Redis' refusal of an `INCR` that adds `inf` to `-inf`.
pub const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";

pub fn apply(op: ZsetOp, slot: &mut Option<Entry>) -> (Reply, Change) {
    if op == ZsetOp::Scored {
        return (scored(slot), Change::Nothing);
    }
    let zset = match slot {
        None => None,
        Some(Entry { value: Value::Zset(z), .. }) => Some(z),
        Some(_) => return (Reply::wrong_type(), Change::Nothing),
    };
    let Some(z) = zset else { return absent(op, slot) };
    let reply = match op {
        ZsetOp::Add { pairs, options } => {
            let (reply, changed) = add(z, pairs, options);
            if changed.is_empty() {
                return (reply, Change::Nothing);
            }
            return (reply, Change::Fields(changed));
        }
        ZsetOp::Rem { members } => {
            let mut removed: Vec<Bytes> = Vec::new();
            for m in members {
                if z.remove(&m).is_some() {
                    removed.push(m);
                }
            }
            return removed_from(slot, Reply::Int(removed.len() as i64), removed);
        }
        ZsetOp::RemRange { range } => {
            let doomed: Vec<Bytes> =
                select(z, &range, false, None).map(|(m, _)| m.clone()).collect();
            for m in &doomed {
                z.remove(m);
            }
            return removed_from(slot, Reply::Int(doomed.len() as i64), doomed);
        }
        ZsetOp::Pop { max, count } => return pop(slot, max, count),
        ZsetOp::Score { member } => z.score(&member).map_or(Reply::Nil, Reply::Double),
        ZsetOp::MScore { members } => Reply::Array(
            members.iter().map(|m| z.score(m).map_or(Reply::Nil, Reply::Double)).collect(),
        ),
        ZsetOp::Card => Reply::Int(z.len() as i64),
        ZsetOp::Count { range } => Reply::Int(z.in_scores(&range).count() as i64),
        ZsetOp::LexCount { range } => Reply::Int(z.in_lex(&range).count() as i64),
        ZsetOp::Rank { member, rev } => {
            let rank = if rev { z.rev_rank(&member) } else { z.rank(&member) };
            rank.map_or(Reply::Nil, |r| Reply::Int(r as i64))
        }
        ZsetOp::Range { range, rev, limit, scores } => {
            listed(select(z, &range, rev, limit).map(|(m, s)| (m.clone(), s)), scores)
        }
        ZsetOp::RandMember { count, scores, seed } => rand_members(z, count, scores, seed),
        ZsetOp::Scan { pattern } => {
            let mut flat = Vec::new();
            for (m, s) in z.iter() {
                if pattern.as_ref().is_none_or(|p| glob::matches(p, m)) {
                    flat.push(Reply::Bulk(m.clone()));
                    flat.push(Reply::bulk(format_d2string(s)));
                }
            }
            Reply::Array(vec![Reply::bulk(&b"0"[..]), Reply::Array(flat)])
        }
        ZsetOp::Scored => unreachable!("answered above"),
    };
    (reply, Change::Nothing)
}

/// An operation on a key that holds nothing: an empty sorted set, which `ZADD` creates.
fn absent(op: ZsetOp, slot: &mut Option<Entry>) -> (Reply, Change) {
    let reply = match op {
        ZsetOp::Add { pairs, options } => return create(slot, pairs, options),
        ZsetOp::Rem { .. }
        | ZsetOp::RemRange { .. }
        | ZsetOp::Card
        | ZsetOp::Count { .. }
        | ZsetOp::LexCount { .. } => Reply::Int(0),
        ZsetOp::Score { .. } | ZsetOp::Rank { .. } | ZsetOp::RandMember { count: None, .. } => {
            Reply::Nil
        }
        ZsetOp::MScore { members } => Reply::Array(vec![Reply::Nil; members.len()]),
        ZsetOp::Range { .. } | ZsetOp::Pop { .. } | ZsetOp::RandMember { .. } => {
            Reply::Array(Vec::new())
        }
        ZsetOp::Scan { .. } => Reply::Array(vec![Reply::bulk(&b"0"[..]), Reply::Array(vec![])]),
        ZsetOp::Scored => Reply::Pairs(Vec::new()),
    };
    (reply, Change::Nothing)
}

/// `ZADD` on an absent key: creates the sorted set unless nothing is added (`XX`).
fn create(
    slot: &mut Option<Entry>,
    pairs: Vec<(Float, Bytes)>,
    options: AddOptions,
) -> (Reply, Change) {
    let mut z = Zset::default();
    let (reply, _) = add(&mut z, pairs, options);
    if z.is_empty() {
        return (reply, Change::Nothing);
    }
    *slot = Some(Entry::new(Value::Zset(Box::new(z))));
    (reply, Change::Whole)
}

/// `ZADD` / `ZINCRBY` on a sorted set (`zsetAdd` for each pair): the reply and the members added
/// or whose score changed.
fn add(z: &mut Zset, pairs: Vec<(Float, Bytes)>, options: AddOptions) -> (Reply, Vec<Bytes>) {
    let (mut added, mut updated, mut processed) = (0, 0, 0);
    let mut changed: Vec<Bytes> = Vec::new();
    let mut last_score = 0.0;
    for (Float(score), member) in pairs {
        let Some(current) = z.score(&member) else {
            if options.cond != AddCond::IfPresent {
                z.insert(member.clone(), score);
                changed.push(member);
                added += 1;
                processed += 1;
                last_score = score;
            }
            continue;
        };
        if options.cond == AddCond::IfAbsent {
            continue;
        }
        let next = if options.incr { score + current } else { score };
        if next.is_nan() {
            return (Reply::error(NAN_SCORE), changed);
        }
        let refused = match options.cmp {
            AddCmp::Any => false,
            AddCmp::Greater => next <= current,
            AddCmp::Less => next >= current,
        };
        if refused {
            continue;
        }
        processed += 1;
        last_score = next;
        // Redis compares with `!=`, so -0 over 0 (or the reverse) keeps the stored score.
        if next != current {
            z.insert(member.clone(), next);
            if !changed.contains(&member) {
                changed.push(member);
            }
            updated += 1;
        }
    }
    let reply = match options {
        AddOptions { incr: true, .. } if processed > 0 => Reply::Double(last_score),
        AddOptions { incr: true, .. } => Reply::Nil,
        AddOptions { ch: true, .. } => Reply::Int(added + updated),
        _ => Reply::Int(added),
    };
    (reply, changed)
}

/// The change of a write that removed `removed`; a sorted set left empty is deleted.
fn removed_from(slot: &mut Option<Entry>, reply: Reply, removed: Vec<Bytes>) -> (Reply, Change) {
    if matches!(slot, Some(Entry { value: Value::Zset(z), .. }) if z.is_empty()) {
        *slot = None;
    }
    if removed.is_empty() {
        return (reply, Change::Nothing);
    }
    (reply, Change::Fields(removed))
}

/// The members a range selects, in the order asked, with their scores. `LIMIT offset count`
/// applies to score and lex ranges: a negative offset selects nothing, a negative count all.
fn select<'a>(
    z: &'a Zset,
    range: &'a ZRange,
    rev: bool,
    limit: Option<(i64, i64)>,
) -> Box<dyn Iterator<Item = (&'a Bytes, f64)> + 'a> {
    let found: Box<dyn Iterator<Item = (&'a Bytes, f64)> + 'a> = match (range, rev) {
        (ZRange::Rank { start, end }, rev) => {
            let Some((from, n)) = rank_span(z.len(), *start, *end) else {
                return Box::new(std::iter::empty());
            };
            if rev {
                Box::new(z.iter().rev().skip(from).take(n))
            } else {
                Box::new(z.iter().skip(from).take(n))
            }
        }
        (ZRange::Score(r), false) => Box::new(z.in_scores(r)),
        (ZRange::Score(r), true) => Box::new(z.in_scores_rev(r)),
        (ZRange::Lex(r), false) => Box::new(z.in_lex(r)),
        (ZRange::Lex(r), true) => Box::new(z.in_lex_rev(r)),
    };
    match limit {
        None => found,
        Some((offset, _)) if offset < 0 => Box::new(std::iter::empty()),
        Some((offset, count)) => {
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            Box::new(found.skip(offset as usize).take(count))
        }
    }
}

/// The first position and length of ranks `start..=end` (negative: from the end) in a sorted
/// set of `len` members, as Redis clamps them; `None` if empty.
fn rank_span(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    let end = end.min(len - 1);
    Some((start as usize, (end - start + 1) as usize))
}

/// Members as a reply: with their scores (as Redis' `WITHSCORES` shapes them) or alone.
fn listed(members: impl Iterator<Item = (Bytes, f64)>, scores: bool) -> Reply {
    if scores {
        Reply::Pairs(members.map(|(m, s)| (Reply::Bulk(m), Reply::Double(s))).collect())
    } else {
        Reply::Array(members.map(|(m, _)| Reply::Bulk(m)).collect())
    }
}

/// `ZPOPMIN` / `ZPOPMAX`: removes up to `count` members from one end; without a count the one
/// member and its score are a flat array.
fn pop(slot: &mut Option<Entry>, max: bool, count: Option<u64>) -> (Reply, Change) {
    let Some(Entry { value: Value::Zset(z), .. }) = slot else {
        return (Reply::Array(Vec::new()), Change::Nothing);
    };
    let wanted = count.unwrap_or(1).min(z.len() as u64) as usize;
    let mut popped = Vec::with_capacity(wanted);
    for _ in 0..wanted {
        let Some((member, score)) = z.edge(max) else { break };
        z.remove(&member);
        popped.push((member, score));
    }
    let names: Vec<Bytes> = popped.iter().map(|(m, _)| m.clone()).collect();
    let reply = match count {
        None => Reply::Array(
            popped.into_iter().flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)]).collect(),
        ),
        Some(_) => listed(popped.into_iter(), true),
    };
    removed_from(slot, reply, names)
}

/// `ZRANDMEMBER`: a positive count returns distinct members (all of them, highest first, if the set
/// has no more), a negative one exactly that many, possibly repeated.
fn rand_members(z: &Zset, count: Option<i64>, scores: bool, seed: u64) -> Reply {
    let mut picker = Picker::new(seed);
    let members: Vec<(&Bytes, f64)> = z.iter().collect();
    let at = |i: usize| (members[i].0.clone(), members[i].1);
    match count {
        None => Reply::Bulk(at(picker.below(members.len())).0),
        Some(0) => Reply::Array(Vec::new()),
        Some(n) if n < 0 || n == 1 => {
            let picks = picker.repeated(members.len(), n.unsigned_abs() as usize);
            listed(picks.into_iter().map(at), scores)
        }
        // Redis walks the whole sorted set from its highest member.
        Some(n) if n as usize >= members.len() => {
            listed(z.iter().rev().map(|(m, s)| (m.clone(), s)), scores)
        }
        Some(n) => listed(picker.distinct(members.len(), n as usize).into_iter().map(at), scores),
    }
}

/// [`ZsetOp::Scored`]: a sorted set's members and scores, a set's members scoring 1, nothing
/// for an absent key, WRONGTYPE for anything else.
fn scored(slot: &Option<Entry>) -> Reply {
    let pair = |m: &Bytes, s: f64| (Reply::Bulk(m.clone()), Reply::Double(s));
    match slot.as_ref().map(|e| &e.value) {
        None => Reply::Pairs(Vec::new()),
        Some(Value::Zset(z)) => Reply::Pairs(z.iter().map(|(m, s)| pair(m, s)).collect()),
        Some(Value::Set(s)) => Reply::Pairs(s.iter().map(|m| pair(m, 1.0)).collect()),
        Some(_) => Reply::wrong_type(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::apply as apply_op;
    use crate::zset::range::{LexRange, ScoreRange};
    use crate::Op;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn run(op: ZsetOp, slot: &mut Option<Entry>) -> (Reply, Change) {
        let out = apply_op(Op::Zsets(op), slot, 1);
        (out.reply, out.change)
    }

    const PLAIN: AddOptions =
        AddOptions { cond: AddCond::Always, cmp: AddCmp::Any, ch: false, incr: false };

    fn add(pairs: &[(f64, &str)], options: AddOptions) -> ZsetOp {
        ZsetOp::Add { pairs: pairs.iter().map(|(s, m)| (Float(*s), b(m))).collect(), options }
    }

    fn range(spec: ZRange, rev: bool, scores: bool) -> ZsetOp {
        ZsetOp::Range { range: spec, rev, limit: None, scores }
    }

    fn bulks(names: &[&str]) -> Reply {
        Reply::Array(names.iter().map(|n| Reply::Bulk(b(n))).collect())
    }

    #[test]
    fn zadd_options_and_the_change_they_report() {
        let mut slot = None;
        assert_eq!(
            run(add(&[(1.0, "a")], AddOptions { cond: AddCond::IfPresent, ..PLAIN }), &mut slot),
            (Reply::Int(0), Change::Nothing)
        );
        assert_eq!(slot, None);
        assert_eq!(
            run(add(&[(1.0, "a"), (2.0, "b")], PLAIN), &mut slot),
            (Reply::Int(2), Change::Whole)
        );
        // CH counts the update; the unchanged member is not reported.
        let ch = AddOptions { ch: true, ..PLAIN };
        assert_eq!(
            run(add(&[(5.0, "a"), (2.0, "b")], ch), &mut slot),
            (Reply::Int(1), Change::Fields(vec![b("a")]))
        );
        // GT refuses a lower score, LT a higher one; new members are added either way.
        let gt = AddOptions { cmp: AddCmp::Greater, ch: true, ..PLAIN };
        assert_eq!(run(add(&[(4.0, "a"), (3.0, "c")], gt), &mut slot).0, Reply::Int(1));
        let lt = AddOptions { cmp: AddCmp::Less, ..PLAIN };
        assert_eq!(run(add(&[(9.0, "b")], lt), &mut slot), (Reply::Int(0), Change::Nothing));
        let nx = AddOptions { cond: AddCond::IfAbsent, ..PLAIN };
        assert_eq!(run(add(&[(0.0, "a"), (7.0, "d")], nx), &mut slot).0, Reply::Int(1));
        assert_eq!(run(ZsetOp::Score { member: b("a") }, &mut slot).0, Reply::Double(5.0));
        // INCR replies the new score, nil when an option refuses it, and never makes NaN.
        let incr = AddOptions { incr: true, ..PLAIN };
        assert_eq!(run(add(&[(1.5, "a")], incr), &mut slot).0, Reply::Double(6.5));
        let incr_nx = AddOptions { cond: AddCond::IfAbsent, ..incr };
        assert_eq!(run(add(&[(1.0, "a")], incr_nx), &mut slot).0, Reply::Nil);
        run(add(&[(f64::INFINITY, "inf")], PLAIN), &mut slot);
        let nan = run(add(&[(f64::NEG_INFINITY, "inf")], incr), &mut slot);
        assert_eq!(nan, (Reply::error(NAN_SCORE), Change::Nothing));
        assert_eq!(
            run(ZsetOp::Score { member: b("inf") }, &mut slot).0,
            Reply::Double(f64::INFINITY)
        );
    }

    #[test]
    fn ranges_by_rank_score_and_lex() {
        let mut slot = None;
        run(add(&[(1.0, "a"), (2.0, "b"), (3.0, "c"), (4.0, "d")], PLAIN), &mut slot);
        let rank = |start, end| ZRange::Rank { start, end };
        assert_eq!(
            run(range(rank(0, -1), false, false), &mut slot).0,
            bulks(&["a", "b", "c", "d"])
        );
        assert_eq!(run(range(rank(-2, 100), true, false), &mut slot).0, bulks(&["b", "a"]));
        assert_eq!(run(range(rank(3, 1), false, false), &mut slot).0, bulks(&[]));
        let scores = ScoreRange::parse(b"(1", b"3").unwrap();
        let with = run(range(ZRange::Score(scores), true, true), &mut slot).0;
        let pair = |m: &str, s: f64| (Reply::Bulk(b(m)), Reply::Double(s));
        assert_eq!(with, Reply::Pairs(vec![pair("c", 3.0), pair("b", 2.0)]));
        let all = ScoreRange::parse(b"-inf", b"+inf").unwrap();
        let limited = |offset, count| ZsetOp::Range {
            range: ZRange::Score(all),
            rev: false,
            limit: Some((offset, count)),
            scores: false,
        };
        assert_eq!(run(limited(1, 2), &mut slot).0, bulks(&["b", "c"]));
        assert_eq!(run(limited(1, -1), &mut slot).0, bulks(&["b", "c", "d"]));
        assert_eq!(run(limited(-1, 2), &mut slot).0, bulks(&[]));
        let lex = LexRange::parse(b"[b", b"(d").unwrap();
        assert_eq!(run(ZsetOp::LexCount { range: lex.clone() }, &mut slot).0, Reply::Int(2));
        let mut same = None;
        run(add(&[(0.0, "a"), (0.0, "b"), (0.0, "c"), (0.0, "d")], PLAIN), &mut same);
        assert_eq!(run(ZsetOp::LexCount { range: lex.clone() }, &mut same).0, Reply::Int(2));
        assert_eq!(run(range(ZRange::Lex(lex), true, false), &mut same).0, bulks(&["c", "b"]));
        assert_eq!(run(ZsetOp::Rank { member: b("c"), rev: true }, &mut same).0, Reply::Int(1));
    }

    #[test]
    fn removing_and_popping_everything_deletes_the_key() {
        let mut slot = None;
        run(add(&[(1.0, "a"), (2.0, "b"), (3.0, "c")], PLAIN), &mut slot);
        let rem = ZsetOp::Rem { members: vec![b("a"), b("zz")] };
        assert_eq!(run(rem, &mut slot), (Reply::Int(1), Change::Fields(vec![b("a")])));
        let pop = ZsetOp::Pop { max: true, count: None };
        let flat = Reply::Array(vec![Reply::Bulk(b("c")), Reply::Double(3.0)]);
        assert_eq!(run(pop, &mut slot), (flat, Change::Fields(vec![b("c")])));
        let pop = ZsetOp::Pop { max: false, count: Some(5) };
        let pairs = Reply::Pairs(vec![(Reply::Bulk(b("b")), Reply::Double(2.0))]);
        assert_eq!(run(pop, &mut slot), (pairs, Change::Whole));
        assert_eq!(slot, None);
        run(add(&[(1.0, "a"), (2.0, "b")], PLAIN), &mut slot);
        let by_score = ZRange::Score(ScoreRange::parse(b"-inf", b"(2").unwrap());
        assert_eq!(
            run(ZsetOp::RemRange { range: by_score }, &mut slot),
            (Reply::Int(1), Change::Fields(vec![b("a")]))
        );
        let by_rank = ZRange::Rank { start: 0, end: -1 };
        assert_eq!(
            run(ZsetOp::RemRange { range: by_rank }, &mut slot),
            (Reply::Int(1), Change::Whole)
        );
        assert_eq!(slot, None);
    }

    #[test]
    fn random_members_and_what_an_absent_key_or_a_set_answers() {
        let mut slot = None;
        run(add(&[(1.0, "a"), (2.0, "b")], PLAIN), &mut slot);
        let rand = |count, scores| ZsetOp::RandMember { count, scores, seed: 3 };
        assert_eq!(run(rand(Some(5), false), &mut slot).0, bulks(&["b", "a"]));
        let Reply::Pairs(repeated) = run(rand(Some(-5), true), &mut slot).0 else { panic!() };
        assert_eq!(repeated.len(), 5);
        let mut none = None;
        assert_eq!(run(rand(None, false), &mut none).0, Reply::Nil);
        assert_eq!(run(ZsetOp::Pop { max: false, count: None }, &mut none).0, Reply::Array(vec![]));
        let mut set = Some(Entry::new(Value::Set([b("x")].into_iter().collect())));
        let one = Reply::Pairs(vec![(Reply::Bulk(b("x")), Reply::Double(1.0))]);
        assert_eq!(run(ZsetOp::Scored, &mut set).0, one);
        assert_eq!(run(ZsetOp::Card, &mut set).0, Reply::wrong_type());
    }

    #[test]
    fn rank_spans_clamp_as_redis() {
        assert_eq!(rank_span(4, 0, -1), Some((0, 4)));
        assert_eq!(rank_span(4, -100, 1), Some((0, 2)));
        assert_eq!(rank_span(4, 2, 1), None);
        assert_eq!(rank_span(4, 4, 10), None);
        assert_eq!(rank_span(0, 0, -1), None);
        assert_eq!(rank_span(4, i64::MIN, i64::MAX), Some((0, 4)));
    }
}
