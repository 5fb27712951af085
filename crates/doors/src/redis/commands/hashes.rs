//! Hash commands: HSET HMSET HSETNX HGET HMGET HGETALL HDEL HLEN HEXISTS HKEYS HVALS HINCRBY
//! HINCRBYFLOAT HSTRLEN HSCAN HRANDFIELD.

use bytes::Bytes;
use sessiongrid_model::num::parse_f64;
use sessiongrid_model::{Op, Reply};
use sessiongrid_resp::Protocol;

use super::args::syntax_error;
use super::{CmdResult, Ctx, OneOp, Req};

/// `HSET`, `HMSET` (`reply_ok`) and `HSETNX` (`only_new`).
pub fn hset(r: &Req<'_>, only_new: bool, reply_ok: bool) -> OneOp {
    let rest = r.args.from(2);
    if !rest.len().is_multiple_of(2) {
        let name = r.args.text(0).to_ascii_lowercase();
        return Err(Reply::error(format!("ERR wrong number of arguments for '{name}' command")));
    }
    let max = r.shared.config.value_bytes_max;
    if rest.iter().any(|v| v.len() > max) {
        return Err(Reply::error("ERR value is larger than value_bytes_max"));
    }
    let pairs = rest.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
    Ok((r.args.get(1).clone(), Op::HSet { pairs, only_new, reply_ok }))
}

/// `HINCRBYFLOAT key field increment`
pub fn hincrbyfloat(r: &Req<'_>) -> OneOp {
    let delta = super::strings::float_arg(r.args.get(3))?;
    if parse_f64(&delta).is_some_and(f64::is_infinite) {
        return Err(Reply::error("ERR value is NaN or Infinity"));
    }
    let field = r.args.get(2).clone();
    Ok((r.args.get(1).clone(), Op::HIncrByFloat { field, delta }))
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`: every matching field in one page (see
/// [`member_scan`]).
pub async fn hscan(ctx: &mut Ctx<'_>) -> CmdResult {
    member_scan(ctx, |pattern| Op::HScan { pattern }).await
}

/// `HSCAN`, `SSCAN` and `ZSCAN key cursor [MATCH pattern] [COUNT count]`: every matching field
/// or member in one reply with cursor 0 (as Redis does for a small value); a cursor other than
/// 0 has nothing left.
pub async fn member_scan(ctx: &mut Ctx<'_>, op: impl FnOnce(Option<Bytes>) -> Op) -> CmdResult {
    let cursor: u64 = std::str::from_utf8(ctx.args.get(2))
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Reply::error("ERR invalid cursor"))?;
    let mut pattern = None;
    let mut i = 3;
    while i < ctx.args.len() {
        if i + 1 >= ctx.args.len() {
            return Err(syntax_error());
        }
        if ctx.args.is(i, "match") {
            let p = ctx.args.get(i + 1).clone();
            pattern = (p.as_ref() != b"*").then_some(p);
        } else if ctx.args.is(i, "count") {
            if ctx.args.int(i + 1)? < 1 {
                return Err(syntax_error());
            }
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    let reply = ctx.exec(ctx.args.get(1).clone(), op(pattern)).await?;
    if cursor != 0 && !reply.is_error() {
        let done = vec![Reply::Bulk(Bytes::from_static(b"0")), Reply::Array(Vec::new())];
        return Ok(Reply::Array(done));
    }
    Ok(reply)
}

/// `HRANDFIELD key [count [WITHVALUES]]`; in RESP3 each field and its value are a pair.
pub async fn hrandfield(ctx: &mut Ctx<'_>) -> CmdResult {
    let count = match ctx.args.len() {
        2 => None,
        3 | 4 => Some(ctx.args.int(2)?),
        _ => return Err(syntax_error()),
    };
    let values = ctx.args.len() == 4;
    if values && !ctx.args.is(3, "withvalues") {
        return Err(syntax_error());
    }
    if count.is_some_and(|c| c.unsigned_abs() > COUNT_MAX) {
        return Err(Reply::error("ERR value is out of range"));
    }
    let seed = rand::random();
    let reply = ctx.exec(ctx.args.get(1).clone(), Op::HRandField { count, values, seed }).await?;
    match reply {
        Reply::Array(flat) if values && ctx.client.proto == Protocol::Resp3 => {
            let pairs = flat.chunks(2).map(|pair| Reply::Array(pair.to_vec())).collect();
            Ok(Reply::Array(pairs))
        }
        reply => Ok(reply),
    }
}

/// Most fields `HRANDFIELD` returns at once: a negative count repeats fields, so without a cap
/// one small command could ask for an endless reply.
pub const COUNT_MAX: u64 = 1 << 20;

pub fn hstrlen(r: &Req<'_>) -> OneOp {
    Ok((r.args.get(1).clone(), Op::HStrLen { field: r.args.get(2).clone() }))
}

pub fn hget(r: &Req<'_>) -> OneOp {
    Ok((r.args.get(1).clone(), Op::HGet { field: r.args.get(2).clone() }))
}

pub fn hexists(r: &Req<'_>) -> OneOp {
    Ok((r.args.get(1).clone(), Op::HExists { field: r.args.get(2).clone() }))
}

pub fn hmget(r: &Req<'_>) -> OneOp {
    Ok((r.args.get(1).clone(), Op::HMGet { fields: r.args.from(2).to_vec() }))
}

pub fn hdel(r: &Req<'_>) -> OneOp {
    Ok((r.args.get(1).clone(), Op::HDel { fields: r.args.from(2).to_vec() }))
}

pub fn hincrby(r: &Req<'_>) -> OneOp {
    let delta = r.args.int(3)?;
    Ok((r.args.get(1).clone(), Op::HIncrBy { field: r.args.get(2).clone(), delta }))
}
