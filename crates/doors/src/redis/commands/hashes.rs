//! Hash commands: HSET HMSET HSETNX HGET HMGET HGETALL HDEL HLEN HEXISTS HKEYS HVALS HINCRBY.

use sessiongrid_model::{Op, Reply};

use super::{CmdResult, Ctx};

/// `HSET`, `HMSET` (`reply_ok`) and `HSETNX` (`only_new`).
pub async fn hset(ctx: &mut Ctx<'_>, only_new: bool, reply_ok: bool) -> CmdResult {
    let rest = ctx.args.from(2);
    if !rest.len().is_multiple_of(2) {
        let name = ctx.args.text(0).to_ascii_lowercase();
        return Err(Reply::error(format!("ERR wrong number of arguments for '{name}' command")));
    }
    let max = ctx.shared.config.value_bytes_max;
    if rest.iter().any(|v| v.len() > max) {
        return Err(Reply::error("ERR value is larger than value_bytes_max"));
    }
    let pairs = rest.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
    ctx.exec(ctx.args.get(1).clone(), Op::HSet { pairs, only_new, reply_ok }).await
}

pub async fn hget(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.exec(ctx.args.get(1).clone(), Op::HGet { field: ctx.args.get(2).clone() }).await
}

pub async fn hexists(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.exec(ctx.args.get(1).clone(), Op::HExists { field: ctx.args.get(2).clone() }).await
}

pub async fn hmget(ctx: &mut Ctx<'_>) -> CmdResult {
    let fields = ctx.args.from(2).to_vec();
    ctx.exec(ctx.args.get(1).clone(), Op::HMGet { fields }).await
}

pub async fn hdel(ctx: &mut Ctx<'_>) -> CmdResult {
    let fields = ctx.args.from(2).to_vec();
    ctx.exec(ctx.args.get(1).clone(), Op::HDel { fields }).await
}

pub async fn hincrby(ctx: &mut Ctx<'_>) -> CmdResult {
    let delta = ctx.args.int(3)?;
    let field = ctx.args.get(2).clone();
    ctx.exec(ctx.args.get(1).clone(), Op::HIncrBy { field, delta }).await
}

/// Commands that are one operation on the key with no arguments.
pub async fn simple(ctx: &mut Ctx<'_>, op: Op) -> CmdResult {
    ctx.exec(ctx.args.get(1).clone(), op).await
}
