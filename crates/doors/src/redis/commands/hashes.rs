//! Hash commands: HSET HMSET HSETNX HGET HMGET HGETALL HDEL HLEN HEXISTS HKEYS HVALS HINCRBY
//! HINCRBYFLOAT HSTRLEN.

use sessiongrid_model::num::parse_f64;
use sessiongrid_model::{Op, Reply};

use super::{OneOp, Req};

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
