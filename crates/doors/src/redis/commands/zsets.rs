//! Sorted-set commands: ZADD ZINCRBY ZREM ZSCORE ZMSCORE ZCARD ZCOUNT ZLEXCOUNT ZRANK ZREVRANK
//! ZRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZREVRANGE ZRANGESTORE
//! ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREMRANGEBYLEX ZPOPMIN ZPOPMAX ZMPOP BZPOPMIN BZPOPMAX BZMPOP
//! ZRANDMEMBER ZSCAN ZUNION ZINTER ZDIFF ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZINTERCARD.
//!
//! The commands over several keys (`ZUNIONSTORE` and its kind, `ZRANGESTORE`, `ZMPOP`) read
//! each key (as [`ZsetOp::Scored`] or a range) and combine or store here; the keys may live in
//! different partitions, so, as `SUNIONSTORE`, such a command is not atomic: a key written while
//! it runs may be read before or after that write. The blocking pops retry their pop with
//! growing pauses (see [`super::blocking`]) until a member comes or the timeout passes.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use sessiongrid_model::num::parse_f64;
use sessiongrid_model::reply::NOT_FLOAT;
use sessiongrid_model::zset::op::{AddCmp, AddCond, AddOptions, Float, ZRange, ZsetOp};
use sessiongrid_model::zset::range::{LexRange, ScoreRange};
use sessiongrid_model::zset::Zset;
use sessiongrid_model::{Op, Reply, Value};

use super::args::{int, mpop, syntax_error, Args, Mpop};
use super::blocking::{in_turn, timeout_arg};
use super::hashes::{member_scan, COUNT_MAX};
use super::keys::overwrite;
use super::{CmdResult, Ctx, OneOp, Req};

const NOT_A_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_A_LEX_RANGE: &str = "ERR min or max not valid string range item";

fn op(key: &Bytes, op: ZsetOp) -> OneOp {
    Ok((key.clone(), Op::Zsets(op)))
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]` and `ZINCRBY key
/// increment member` (`incr`), parsed as Redis parses both: options first, then pairs, then
/// every score before anything is written.
pub fn zadd(r: &Req<'_>, incr: bool) -> OneOp {
    let mut options = AddOptions { cond: AddCond::Always, cmp: AddCmp::Any, ch: false, incr };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    let mut at = 2;
    while at < r.args.len() {
        match r.args.get(at).to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"ch" => options.ch = true,
            b"incr" => options.incr = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => break,
        }
        at += 1;
    }
    let rest = r.args.from(at);
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(syntax_error());
    }
    if nx && xx {
        return Err(Reply::error("ERR XX and NX options at the same time are not compatible"));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(Reply::error(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if options.incr && rest.len() > 2 {
        return Err(Reply::error("ERR INCR option supports a single increment-element pair"));
    }
    options.cond = match (nx, xx) {
        (true, _) => AddCond::IfAbsent,
        (_, true) => AddCond::IfPresent,
        _ => AddCond::Always,
    };
    options.cmp = match (gt, lt) {
        (true, _) => AddCmp::Greater,
        (_, true) => AddCmp::Less,
        _ => AddCmp::Any,
    };
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks(2) {
        let score = parse_f64(&pair[0]).ok_or_else(|| Reply::error(NOT_FLOAT))?;
        pairs.push((Float(score), pair[1].clone()));
    }
    let max = r.shared.config.value_bytes_max;
    if pairs.iter().any(|(_, m)| m.len() > max) {
        return Err(Reply::error("ERR value is larger than value_bytes_max"));
    }
    op(r.args.get(1), ZsetOp::Add { pairs, options })
}

pub fn zrem(r: &Req<'_>) -> OneOp {
    op(r.args.get(1), ZsetOp::Rem { members: r.args.from(2).to_vec() })
}

pub fn zscore(r: &Req<'_>) -> OneOp {
    op(r.args.get(1), ZsetOp::Score { member: r.args.get(2).clone() })
}

pub fn zmscore(r: &Req<'_>) -> OneOp {
    op(r.args.get(1), ZsetOp::MScore { members: r.args.from(2).to_vec() })
}

pub fn zcard(r: &Req<'_>) -> OneOp {
    op(r.args.get(1), ZsetOp::Card)
}

/// `ZCOUNT key min max`
pub fn zcount(r: &Req<'_>) -> OneOp {
    let range = score_range(r.args.get(2), r.args.get(3))?;
    op(r.args.get(1), ZsetOp::Count { range })
}

/// `ZLEXCOUNT key min max`
pub fn zlexcount(r: &Req<'_>) -> OneOp {
    let range = lex_range(r.args.get(2), r.args.get(3))?;
    op(r.args.get(1), ZsetOp::LexCount { range })
}

/// `ZRANK` / `ZREVRANK key member`
pub fn zrank(r: &Req<'_>, rev: bool) -> OneOp {
    op(r.args.get(1), ZsetOp::Rank { member: r.args.get(2).clone(), rev })
}

fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
    ScoreRange::parse(min, max).ok_or_else(|| Reply::error(NOT_A_FLOAT_RANGE))
}

fn lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, Reply> {
    LexRange::parse(min, max).ok_or_else(|| Reply::error(NOT_A_LEX_RANGE))
}

/// The kind of range a `ZRANGE`-family command reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rank,
    Score,
    Lex,
}

/// A parsed `ZRANGE`-family request: the source key and its operation.
struct RangeQuery {
    key: Bytes,
    op: ZsetOp,
}

/// Parses `<src> <min> <max> [BYSCORE|BYLEX] [REV] [WITHSCORES] [LIMIT offset count]` from
/// argument `src` on, as Redis' `zrangeGenericCommand`: the legacy commands fix the kind and
/// direction (`None` lets the options choose, each once), a store takes no WITHSCORES and always reads
/// scores.
fn range_query(
    args: &Args,
    src: usize,
    store: bool,
    kind: Option<Kind>,
    rev: Option<bool>,
) -> Result<RangeQuery, Reply> {
    let (mut kind_set, mut rev_set) = (kind, rev);
    let mut scores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut at = src + 3;
    while at < args.len() {
        let left = args.len() - at - 1;
        if !store && args.is(at, "withscores") {
            scores = true;
        } else if args.is(at, "limit") && left >= 2 {
            limit = Some((args.int(at + 1)?, args.int(at + 2)?));
            at += 2;
        } else if rev_set.is_none() && args.is(at, "rev") {
            rev_set = Some(true);
        } else if kind_set.is_none() && args.is(at, "bylex") {
            kind_set = Some(Kind::Lex);
        } else if kind_set.is_none() && args.is(at, "byscore") {
            kind_set = Some(Kind::Score);
        } else {
            return Err(syntax_error());
        }
        at += 1;
    }
    let rev = rev_set.unwrap_or(false);
    let kind = kind_set.unwrap_or(Kind::Rank);
    // Redis only notices a LIMIT whose count is not -1 (its "no limit").
    if kind == Kind::Rank && limit.is_some_and(|(_, count)| count != -1) {
        return Err(Reply::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if scores && kind == Kind::Lex {
        return Err(Reply::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut min, mut max) = (args.get(src + 1), args.get(src + 2));
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let range = match kind {
        Kind::Rank => {
            limit = None;
            ZRange::Rank { start: int(min)?, end: int(max)? }
        }
        Kind::Score => ZRange::Score(score_range(min, max)?),
        Kind::Lex => ZRange::Lex(lex_range(min, max)?),
    };
    let op = ZsetOp::Range { range, rev, limit, scores: scores || store };
    Ok(RangeQuery { key: args.get(src).clone(), op })
}

/// `ZRANGE` and the legacy `ZREVRANGE`, `Z[REV]RANGEBYSCORE`, `Z[REV]RANGEBYLEX` (their kind
/// and direction fixed).
pub fn zrange(r: &Req<'_>, kind: Option<Kind>, rev: Option<bool>) -> OneOp {
    let query = range_query(r.args, 1, false, kind, rev)?;
    Ok((query.key, Op::Zsets(query.op)))
}

/// `ZREMRANGEBYRANK`, `ZREMRANGEBYSCORE`, `ZREMRANGEBYLEX key min max`
pub fn zremrange(r: &Req<'_>, kind: Kind) -> OneOp {
    let (min, max) = (r.args.get(2), r.args.get(3));
    let range = match kind {
        Kind::Rank => ZRange::Rank { start: int(min)?, end: int(max)? },
        Kind::Score => ZRange::Score(score_range(min, max)?),
        Kind::Lex => ZRange::Lex(lex_range(min, max)?),
    };
    op(r.args.get(1), ZsetOp::RemRange { range })
}

/// `ZPOPMIN` / `ZPOPMAX key [count]`
pub fn zpop(r: &Req<'_>, max: bool) -> OneOp {
    let count = match r.args.len() {
        2 => None,
        3 => match r.args.int(2) {
            Ok(n) if n >= 0 => Some(n as u64),
            _ => return Err(Reply::error("ERR value is out of range, must be positive")),
        },
        _ => return Err(syntax_error()),
    };
    op(r.args.get(1), ZsetOp::Pop { max, count })
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`
pub fn zrandmember(r: &Req<'_>) -> OneOp {
    let count = match r.args.len() {
        2 => None,
        _ => {
            let n = r.args.int(2)?;
            if n == i64::MIN {
                return Err(Reply::error(format!(
                    "ERR value is out of range, value must between {} and {}",
                    -i64::MAX,
                    i64::MAX
                )));
            }
            Some(n)
        }
    };
    let scores = r.args.len() == 4;
    if r.args.len() > 4 || (scores && !r.args.is(3, "withscores")) {
        return Err(syntax_error());
    }
    let out_of_range = |n: i64| {
        (scores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&n)) || n.unsigned_abs() > COUNT_MAX
    };
    if count.is_some_and(out_of_range) {
        return Err(Reply::error("ERR value is out of range"));
    }
    op(r.args.get(1), ZsetOp::RandMember { count, scores, seed: rand::random() })
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: every matching member and its score in
/// one page (see [`member_scan`]).
pub async fn zscan(ctx: &mut Ctx<'_>) -> CmdResult {
    member_scan(ctx, |pattern| Op::Zsets(ZsetOp::Scan { pattern })).await
}

/// Members and scores out of a [`Reply::Pairs`] of bulk strings and doubles.
fn pairs_of(reply: Reply) -> Result<Vec<(Bytes, f64)>, Reply> {
    match reply {
        Reply::Pairs(pairs) => Ok(pairs
            .into_iter()
            .filter_map(|pair| match pair {
                (Reply::Bulk(m), Reply::Double(s)) => Some((m, s)),
                _ => None,
            })
            .collect()),
        Reply::Array(empty) if empty.is_empty() => Ok(Vec::new()),
        other => Err(other),
    }
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`: the range replaces
/// whatever `dst` held (an empty one deletes it); replies its size.
pub async fn zrangestore(ctx: &mut Ctx<'_>) -> CmdResult {
    let query = range_query(&ctx.args, 2, true, None, None)?;
    let found = pairs_of(ctx.exec(query.key, Op::Zsets(query.op)).await?)?;
    store(ctx, found.into_iter().collect()).await
}

/// Puts `result` under the destination key (argument 1), replacing it; replies its size.
async fn store(ctx: &Ctx<'_>, result: Zset) -> CmdResult {
    let size = result.len() as i64;
    let value = (!result.is_empty()).then(|| Value::Zset(Box::new(result)));
    overwrite(ctx, ctx.args.get(1).clone(), value).await?;
    Ok(Reply::Int(size))
}

/// The three ways of combining sorted sets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Algebra {
    Union,
    Inter,
    Diff,
}

/// What the algebra commands produce.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `ZUNION`, `ZINTER`, `ZDIFF`: the members (with scores if asked).
    Reply,
    /// `ZUNIONSTORE`, ...: stored under argument 1.
    Store,
    /// `ZINTERCARD`: only how many.
    Card,
}

/// How `AGGREGATE` joins the scores of a member found in several inputs.
#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// `zunionInterAggregate`: a sum of `inf` and `-inf` is 0; a NaN never wins min or max.
    fn join(self, acc: f64, value: f64) -> f64 {
        match self {
            Aggregate::Sum => Some(acc + value).filter(|s| !s.is_nan()).unwrap_or(0.0),
            Aggregate::Min if value < acc => value,
            Aggregate::Max if value > acc => value,
            _ => acc,
        }
    }
}

/// One input of an algebra command: its members in order, a lookup, and its weight.
struct Input {
    members: Vec<(Bytes, f64)>,
    scores: HashMap<Bytes, f64>,
    weight: f64,
}

impl Input {
    fn new(members: Vec<(Bytes, f64)>) -> Self {
        let scores = members.iter().cloned().collect();
        Input { members, scores, weight: 1.0 }
    }

    /// A member's score times the weight; NaN (0 times infinity) counts as 0.
    fn weighted(&self, score: f64) -> f64 {
        Some(self.weight * score).filter(|s| !s.is_nan()).unwrap_or(0.0)
    }
}

/// `ZUNION`/`ZINTER`/`ZDIFF numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]
/// [WITHSCORES]`, their `*STORE dst` forms and `ZINTERCARD numkeys key [key ...] [LIMIT n]`,
/// checked in Redis' order: the key count, then the keys' types, then the options.
pub async fn algebra(ctx: &mut Ctx<'_>, name: &str, how: Algebra, output: Output) -> CmdResult {
    let numkeys_at = if output == Output::Store { 2 } else { 1 };
    let numkeys = ctx.args.int(numkeys_at)?;
    if numkeys < 1 {
        return Err(Reply::error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    let first_key = numkeys_at + 1;
    if numkeys as u64 > (ctx.args.len() - first_key) as u64 {
        return Err(syntax_error());
    }
    let numkeys = numkeys as usize;
    let keys = ctx.args.from(first_key)[..numkeys].to_vec();
    let mut inputs = Vec::with_capacity(numkeys);
    for key in keys {
        let found = ctx.exec(key, Op::Zsets(ZsetOp::Scored)).await?;
        inputs.push(Input::new(pairs_of(found)?));
    }
    let options = algebra_options(&ctx.args, first_key + numkeys, &mut inputs, how, output)?;
    let result = combine(inputs, how, options.aggregate, options.limit);
    match output {
        Output::Card => Ok(Reply::Int(result.len() as i64)),
        Output::Store => store(ctx, result.into_iter().collect()).await,
        Output::Reply => {
            // Sorted here, not through a `Zset`, which would store -0 as 0: Redis replies from
            // the skiplist it built, which keeps -0.
            let mut members: Vec<(Bytes, f64)> = result.into_iter().collect();
            members.sort_by(|(m1, s1), (m2, s2)| {
                s1.partial_cmp(s2).unwrap_or(std::cmp::Ordering::Equal).then_with(|| m1.cmp(m2))
            });
            let members = members.into_iter();
            Ok(if options.scores {
                Reply::Pairs(members.map(|(m, s)| (Reply::Bulk(m), Reply::Double(s))).collect())
            } else {
                Reply::Array(members.map(|(m, _)| Reply::Bulk(m)).collect())
            })
        }
    }
}

/// The options after the keys of an algebra command.
struct AlgebraOptions {
    aggregate: Aggregate,
    scores: bool,
    /// `ZINTERCARD`'s `LIMIT` (0: none).
    limit: usize,
}

/// Parses `WEIGHTS` (into `inputs`), `AGGREGATE`, `WITHSCORES` and `LIMIT` from argument `at`
/// on, each only where Redis accepts it.
fn algebra_options(
    args: &Args,
    mut at: usize,
    inputs: &mut [Input],
    how: Algebra,
    output: Output,
) -> Result<AlgebraOptions, Reply> {
    let mut options = AlgebraOptions { aggregate: Aggregate::Sum, scores: false, limit: 0 };
    let weighable = how != Algebra::Diff && output != Output::Card;
    while at < args.len() {
        let remaining = args.len() - at;
        if weighable && remaining > inputs.len() && args.is(at, "weights") {
            for (i, input) in inputs.iter_mut().enumerate() {
                input.weight = parse_f64(args.get(at + 1 + i))
                    .ok_or_else(|| Reply::error("ERR weight value is not a float"))?;
            }
            at += 1 + inputs.len();
        } else if weighable && remaining >= 2 && args.is(at, "aggregate") {
            options.aggregate = match args.get(at + 1).to_ascii_lowercase().as_slice() {
                b"sum" => Aggregate::Sum,
                b"min" => Aggregate::Min,
                b"max" => Aggregate::Max,
                _ => return Err(syntax_error()),
            };
            at += 2;
        } else if output == Output::Reply && args.is(at, "withscores") {
            options.scores = true;
            at += 1;
        } else if output == Output::Card && remaining >= 2 && args.is(at, "limit") {
            let negative = || Reply::error("ERR LIMIT can't be negative");
            let limit = int(args.get(at + 1)).map_err(|_| negative())?;
            options.limit = usize::try_from(limit).map_err(|_| negative())?;
            at += 2;
        } else {
            return Err(syntax_error());
        }
    }
    Ok(options)
}

/// Combines the inputs as Redis does: union and intersection go from the smallest input to the
/// largest (which orders the sums), an intersection walks the smallest; a difference keeps the
/// first input's members (and scores, unweighted) found in no other. At most `limit` members
/// of an intersection (0: all).
fn combine(
    mut inputs: Vec<Input>,
    how: Algebra,
    aggregate: Aggregate,
    limit: usize,
) -> HashMap<Bytes, f64> {
    let mut result: HashMap<Bytes, f64> = HashMap::new();
    if how != Algebra::Diff {
        inputs.sort_by_key(|input| input.members.len());
    }
    let Some((first, others)) = inputs.split_first() else { return result };
    match how {
        Algebra::Inter => {
            for (member, score) in &first.members {
                let mut total = first.weighted(*score);
                let everywhere = others.iter().all(|other| match other.scores.get(member) {
                    Some(s) => {
                        total = aggregate.join(total, other.weight * s);
                        true
                    }
                    None => false,
                });
                if everywhere {
                    result.insert(member.clone(), total);
                    if limit > 0 && result.len() >= limit {
                        break;
                    }
                }
            }
        }
        Algebra::Union => {
            for input in &inputs {
                for (member, score) in &input.members {
                    let value = input.weighted(*score);
                    match result.get_mut(member) {
                        Some(total) => *total = aggregate.join(*total, value),
                        None => {
                            result.insert(member.clone(), value);
                        }
                    }
                }
            }
        }
        Algebra::Diff => {
            for (member, score) in &first.members {
                if !others.iter().any(|other| other.scores.contains_key(member)) {
                    result.insert(member.clone(), *score);
                }
            }
        }
    }
    result
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`
pub async fn zmpop(ctx: &mut Ctx<'_>) -> CmdResult {
    let request = mpop_args(&ctx.args, 1)?;
    Ok(pop_first(ctx, &request.keys, request.side, Some(request.count), true)
        .await?
        .unwrap_or(Reply::NilArray))
}

/// `ZMPOP`'s arguments from `at`: `numkeys key [key ...] MIN|MAX [COUNT count]` (the side:
/// true for MAX).
fn mpop_args(args: &Args, at: usize) -> Result<Mpop<bool>, Reply> {
    mpop(args, at, |args, i| match args.get(i).to_ascii_lowercase().as_slice() {
        b"min" => Ok(false),
        b"max" => Ok(true),
        _ => Err(syntax_error()),
    })
}

/// Pops from the first of `keys` that holds members: `[key, member, score]` for a single pop
/// (`count` `None`), `[key, [[member, score], ...]]` for `[B]ZMPOP`. `None` if every key is
/// empty. A key of another type is an error if `fail_on_wrong_type`, else skipped (a blocked
/// pop keeps waiting, as Redis does, when a key it waits on becomes something else).
async fn pop_first(
    ctx: &Ctx<'_>,
    keys: &[Bytes],
    max: bool,
    count: Option<u64>,
    fail_on_wrong_type: bool,
) -> Result<Option<Reply>, Reply> {
    for key in keys {
        let popped = match ctx.exec(key.clone(), Op::Zsets(ZsetOp::Pop { max, count })).await {
            Ok(e) | Err(e) if !fail_on_wrong_type && e.is_wrong_type() => continue,
            Ok(reply) => reply,
            Err(e) => return Err(e),
        };
        let key = Reply::Bulk(key.clone());
        match popped {
            e @ Reply::Error(_) => return Err(e),
            Reply::Array(flat) if !flat.is_empty() => {
                return Ok(Some(Reply::Array([vec![key], flat].concat())));
            }
            Reply::Pairs(pairs) if !pairs.is_empty() => {
                let nested = pairs.into_iter().map(|(m, s)| Reply::Array(vec![m, s])).collect();
                return Ok(Some(Reply::Array(vec![key, Reply::Array(nested)])));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// `BZPOPMIN` / `BZPOPMAX key [key ...] timeout`
pub async fn bzpop(ctx: &mut Ctx<'_>, max: bool) -> CmdResult {
    let timeout = timeout_arg(ctx.args.get(ctx.args.len() - 1))?;
    let keys = ctx.args.from(1)[..ctx.args.len() - 2].to_vec();
    blocking_pop(ctx, &keys, max, None, timeout).await
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`: the timeout is checked after
/// the rest, as Redis does.
pub async fn bzmpop(ctx: &mut Ctx<'_>) -> CmdResult {
    let request = mpop_args(&ctx.args, 2)?;
    let timeout = timeout_arg(ctx.args.get(1))?;
    blocking_pop(ctx, &request.keys, request.side, Some(request.count), timeout).await
}

/// Pops as soon as a key has members, trying again with growing pauses (see [`Waiter`]); a
/// null array once `timeout` (`None`: never) has passed or the client has hung up.
async fn blocking_pop(
    ctx: &Ctx<'_>,
    keys: &[Bytes],
    max: bool,
    count: Option<u64>,
    timeout: Option<Duration>,
) -> CmdResult {
    let attempt = |waited: bool| pop_first(ctx, keys, max, count, !waited);
    Ok(in_turn(ctx, timeout, keys, attempt).await?.unwrap_or(Reply::NilArray))
}
