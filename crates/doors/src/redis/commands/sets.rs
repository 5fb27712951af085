//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SSCAN SMOVE
//! SINTER SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF SDIFFSTORE.
//!
//! The commands over several sets read each (as `SMEMBERS`) and combine them here; the sets may
//! live in different partitions, so, as `MSET`, such a command is not atomic: a set written
//! while it runs may be read before or after that write.

use bytes::Bytes;
use sessiongrid_model::set::op::SetOp;
use sessiongrid_model::set::{listed, Set};
use sessiongrid_model::{Op, Reply, Value};

use super::args::syntax_error;
use super::hashes::{member_scan, COUNT_MAX};
use super::keys::overwrite;
use super::{CmdResult, Ctx, OneOp, Req};

fn op(key: &Bytes, op: SetOp) -> OneOp {
    Ok((key.clone(), Op::Sets(op)))
}

pub fn sadd(r: &Req<'_>) -> OneOp {
    let members = r.args.from(2).to_vec();
    let max = r.shared.config.value_bytes_max;
    if members.iter().any(|m| m.len() > max) {
        return Err(Reply::error("ERR value is larger than value_bytes_max"));
    }
    op(r.args.get(1), SetOp::Add { members })
}

pub fn srem(r: &Req<'_>) -> OneOp {
    op(r.args.get(1), SetOp::Rem { members: r.args.from(2).to_vec() })
}

pub fn smembers(r: &Req<'_>) -> OneOp {
    op(r.args.get(1), SetOp::Members)
}

pub fn sismember(r: &Req<'_>) -> OneOp {
    op(r.args.get(1), SetOp::IsMember { member: r.args.get(2).clone() })
}

pub fn smismember(r: &Req<'_>) -> OneOp {
    op(r.args.get(1), SetOp::MIsMember { members: r.args.from(2).to_vec() })
}

pub fn scard(r: &Req<'_>) -> OneOp {
    op(r.args.get(1), SetOp::Card)
}

/// `SPOP key [count]`
pub fn spop(r: &Req<'_>) -> OneOp {
    let count = match r.args.len() {
        2 => None,
        3 => match r.args.int(2) {
            Ok(n) if n >= 0 => Some(n as u64),
            _ => return Err(Reply::error("ERR value is out of range, must be positive")),
        },
        _ => return Err(syntax_error()),
    };
    op(r.args.get(1), SetOp::Pop { count, seed: rand::random() })
}

/// `SRANDMEMBER key [count]`
pub fn srandmember(r: &Req<'_>) -> OneOp {
    let count = match r.args.len() {
        2 => None,
        3 => Some(r.args.int(2)?),
        _ => return Err(syntax_error()),
    };
    if count == Some(i64::MIN) {
        return Err(Reply::error(
            "ERR value is out of range, value must between -9223372036854775807 and \
             9223372036854775807",
        ));
    }
    if count.is_some_and(|c| c.unsigned_abs() > COUNT_MAX) {
        return Err(Reply::error("ERR value is out of range"));
    }
    op(r.args.get(1), SetOp::RandMember { count, seed: rand::random() })
}

pub async fn sscan(ctx: &mut Ctx<'_>) -> CmdResult {
    member_scan(ctx, |pattern| Op::Sets(SetOp::Scan { pattern })).await
}

/// The members of the set at `key` (none if absent), or the WRONGTYPE error.
async fn members(ctx: &Ctx<'_>, key: &Bytes) -> Result<Set, Reply> {
    match ctx.exec(key.clone(), Op::Sets(SetOp::Members)).await? {
        Reply::Set(members) => Ok(members
            .into_iter()
            .filter_map(|m| match m {
                Reply::Bulk(m) => Some(m),
                _ => None,
            })
            .collect()),
        other => Err(other),
    }
}

/// The sets at `keys`, in order; an error if any key holds another type.
async fn all_sets(ctx: &Ctx<'_>, keys: &[Bytes]) -> Result<Vec<Set>, Reply> {
    let mut sets = Vec::with_capacity(keys.len());
    for key in keys {
        sets.push(members(ctx, key).await?);
    }
    Ok(sets)
}

/// The type name of `key`, as `TYPE` answers it.
async fn type_of(ctx: &Ctx<'_>, key: &Bytes) -> Result<String, Reply> {
    match ctx.exec(key.clone(), Op::Type).await? {
        Reply::Status(t) => Ok(t.into_owned()),
        other => Err(other),
    }
}

/// `SMOVE src dst member`: as Redis, 0 if the source is absent (whatever the destination
/// holds), WRONGTYPE if either is not a set. The member is removed from the source, then added
/// to the destination; if that fails it goes back.
pub async fn smove(ctx: &mut Ctx<'_>) -> CmdResult {
    let (src, dst, member) =
        (ctx.args.get(1).clone(), ctx.args.get(2).clone(), ctx.args.get(3).clone());
    match type_of(ctx, &src).await?.as_str() {
        "none" => return Ok(Reply::Int(0)),
        "set" => {}
        _ => return Err(Reply::wrong_type()),
    }
    if !matches!(type_of(ctx, &dst).await?.as_str(), "none" | "set") {
        return Err(Reply::wrong_type());
    }
    if src == dst {
        return ctx.exec(src, Op::Sets(SetOp::IsMember { member })).await;
    }
    let members = vec![member];
    let removed = ctx.exec(src.clone(), Op::Sets(SetOp::Rem { members: members.clone() })).await?;
    if removed != Reply::Int(1) {
        return Ok(Reply::Int(0));
    }
    let added = ctx.exec(dst, Op::Sets(SetOp::Add { members: members.clone() })).await;
    if let Err(e) | Ok(e @ Reply::Error(_)) = added {
        ctx.exec(src, Op::Sets(SetOp::Add { members })).await?;
        return Err(e);
    }
    Ok(Reply::Int(1))
}

/// The three ways of combining sets.
#[derive(Clone, Copy)]
pub enum Combine {
    Inter,
    Union,
    Diff,
}

/// Combines `sets` in order: members of every set (taken in the order of the smallest, as
/// Redis iterates it), of any, or of the first and none of the others. At most `limit` members
/// for an intersection (0: all).
fn combine(sets: Vec<Set>, how: Combine, limit: usize) -> Vec<Bytes> {
    match how {
        Combine::Inter => {
            if sets.iter().any(Set::is_empty) {
                return Vec::new();
            }
            let Some(smallest) = sets.iter().min_by_key(|s| s.len()) else { return Vec::new() };
            let inside = |m: &Bytes| sets.iter().all(|s| s.contains(m));
            let found = listed(smallest).into_iter().filter(|m| inside(m));
            match limit {
                0 => found.collect(),
                n => found.take(n).collect(),
            }
        }
        Combine::Union => {
            let all: Set = sets.into_iter().flatten().collect();
            listed(&all)
        }
        Combine::Diff => {
            let mut sets = sets.into_iter();
            let Some(mut first) = sets.next() else { return Vec::new() };
            for other in sets {
                first.retain(|m| !other.contains(m));
            }
            listed(&first)
        }
    }
}

/// `SINTER`, `SUNION`, `SDIFF key [key ...]`
pub async fn read_combined(ctx: &mut Ctx<'_>, how: Combine) -> CmdResult {
    let sets = all_sets(ctx, ctx.args.from(1)).await?;
    Ok(Reply::Set(combine(sets, how, 0).into_iter().map(Reply::Bulk).collect()))
}

/// `SINTERSTORE`, `SUNIONSTORE`, `SDIFFSTORE dst key [key ...]`: the result replaces whatever
/// `dst` held (an empty one deletes it); replies its size.
pub async fn store_combined(ctx: &mut Ctx<'_>, how: Combine) -> CmdResult {
    let sets = all_sets(ctx, ctx.args.from(2)).await?;
    let result: Set = combine(sets, how, 0).into_iter().collect();
    let size = result.len() as i64;
    let value = (!result.is_empty()).then_some(Value::Set(result));
    overwrite(ctx, ctx.args.get(1).clone(), value).await?;
    Ok(Reply::Int(size))
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`
pub async fn sintercard(ctx: &mut Ctx<'_>) -> CmdResult {
    let numkeys = ctx.args.int(1).unwrap_or(0);
    if numkeys <= 0 {
        return Err(Reply::error("ERR numkeys should be greater than 0"));
    }
    let numkeys = numkeys as usize;
    if numkeys > ctx.args.len() - 2 {
        return Err(Reply::error("ERR Number of keys can't be greater than number of args"));
    }
    let mut limit = 0;
    let mut i = 2 + numkeys;
    while i < ctx.args.len() {
        if ctx.args.is(i, "limit") && i + 1 < ctx.args.len() {
            let n = ctx.args.int(i + 1).map_err(|_| Reply::error("ERR LIMIT can't be negative"))?;
            if n < 0 {
                return Err(Reply::error("ERR LIMIT can't be negative"));
            }
            limit = n as usize;
            i += 2;
        } else {
            return Err(syntax_error());
        }
    }
    let keys = ctx.args.from(2)[..numkeys].to_vec();
    let sets = all_sets(ctx, &keys).await?;
    Ok(Reply::Int(combine(sets, Combine::Inter, limit).len() as i64))
}
