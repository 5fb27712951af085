//! List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LRANGE LLEN LINDEX LSET LREM LTRIM
//! LINSERT LPOS LMOVE RPOPLPUSH LMPOP, and the blocking BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP.
//!
//! A command on one list is one operation. `LMOVE` (and `RPOPLPUSH`) between two keys, which
//! may live in different partitions, runs here as Redis orders it: the source's type, then the
//! destination's (WRONGTYPE before anything is popped), the pop, then the push; if the push
//! fails, the element goes back where it came from. So, as `SMOVE`, it is not atomic across
//! partitions: a reader may see the element in neither list, or a write in between may slip in.
//! `LMOVE` of a list onto itself is one operation. `LMPOP` pops from the first of its keys that
//! holds a list, trying them in order.
//!
//! A blocking command first tries as its non-blocking form does; if there was nothing to pop,
//! it tries again with growing pauses (see [`super::blocking`]) until its timeout, and answers a
//! null array then. While it waits, a key of another type among its keys is passed over (Redis
//! wakes a blocked client only for a list), and its client hanging up ends the wait.

use std::time::Duration;

use bytes::Bytes;
use sessiongrid_model::list::op::{End, ListOp};
use sessiongrid_model::num::parse_i64;
use sessiongrid_model::{Op, Reply};

use super::args::{mpop, syntax_error, Args, Mpop};
use super::blocking::{in_turn, timeout_arg};
use super::{CmdResult, Ctx, OneOp, Req};

fn op(key: &Bytes, op: ListOp) -> OneOp {
    Ok((key.clone(), Op::Lists(op)))
}

/// Refuses elements larger than the door accepts as a value.
fn check_sizes(r: &Req<'_>, items: &[Bytes]) -> Result<(), Reply> {
    let max = r.shared.config.value_bytes_max;
    if items.iter().any(|v| v.len() > max) {
        return Err(Reply::error("ERR value is larger than value_bytes_max"));
    }
    Ok(())
}

/// `LPUSH`/`RPUSH key element [element ...]`, and the `X` forms (`only_if_exists`).
pub fn push(r: &Req<'_>, end: End, only_if_exists: bool) -> OneOp {
    let items = r.args.from(2).to_vec();
    check_sizes(r, &items)?;
    op(r.args.get(1), ListOp::Push { items, end, only_if_exists })
}

/// `LPOP`/`RPOP key [count]`
pub fn pop(r: &Req<'_>, end: End) -> OneOp {
    let count = match r.args.len() {
        2 => None,
        3 => Some(
            parse_i64(r.args.get(2))
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| Reply::error("ERR value is out of range, must be positive"))?,
        ),
        _ => return Err(arity_error(r.args)),
    };
    op(r.args.get(1), ListOp::Pop { end, count })
}

/// Redis' wrong-arity error, for the forms its command table lets through.
fn arity_error(args: &Args) -> Reply {
    let name = args.text(0).to_ascii_lowercase();
    Reply::error(format!("ERR wrong number of arguments for '{name}' command"))
}

pub fn llen(r: &Req<'_>) -> OneOp {
    op(r.args.get(1), ListOp::Len)
}

/// `LRANGE key start stop`
pub fn lrange(r: &Req<'_>) -> OneOp {
    let (start, stop) = (r.args.int(2)?, r.args.int(3)?);
    op(r.args.get(1), ListOp::Range { start, stop })
}

/// `LINDEX key index`: a bad index is reported only if the key holds a list.
pub fn lindex(r: &Req<'_>) -> OneOp {
    op(r.args.get(1), ListOp::Index { index: parse_i64(r.args.get(2)) })
}

/// `LSET key index element`: a bad index is reported only if the key holds a list.
pub fn lset(r: &Req<'_>) -> OneOp {
    let item = r.args.get(3).clone();
    check_sizes(r, std::slice::from_ref(&item))?;
    op(r.args.get(1), ListOp::Set { index: parse_i64(r.args.get(2)), item })
}

/// `LREM key count element`
pub fn lrem(r: &Req<'_>) -> OneOp {
    let count = r.args.int(2)?;
    op(r.args.get(1), ListOp::Rem { count, item: r.args.get(3).clone() })
}

/// `LTRIM key start stop`
pub fn ltrim(r: &Req<'_>) -> OneOp {
    let (start, stop) = (r.args.int(2)?, r.args.int(3)?);
    op(r.args.get(1), ListOp::Trim { start, stop })
}

/// `LINSERT key BEFORE|AFTER pivot element`
pub fn linsert(r: &Req<'_>) -> OneOp {
    let after = if r.args.is(2, "after") {
        true
    } else if r.args.is(2, "before") {
        false
    } else {
        return Err(syntax_error());
    };
    let item = r.args.get(4).clone();
    check_sizes(r, std::slice::from_ref(&item))?;
    op(r.args.get(1), ListOp::Insert { after, pivot: r.args.get(3).clone(), item })
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`: options in any order, the
/// last of a repeated one counts.
pub fn lpos(r: &Req<'_>) -> OneOp {
    let args = r.args;
    let (mut rank, mut count, mut maxlen) = (1, None, 0);
    let mut i = 3;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if args.is(i, "rank") && has_value {
            rank = args.int(i + 1)?;
            if rank == 0 {
                return Err(Reply::error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
        } else if args.is(i, "count") && has_value {
            count = Some(non_negative(args.get(i + 1), "ERR COUNT can't be negative")?);
        } else if args.is(i, "maxlen") && has_value {
            maxlen = non_negative(args.get(i + 1), "ERR MAXLEN can't be negative")?;
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    op(args.get(1), ListOp::Pos { item: args.get(2).clone(), rank, count, maxlen })
}

/// An integer that must not be negative; `error` for anything else, as Redis words it.
fn non_negative(arg: &[u8], error: &str) -> Result<i64, Reply> {
    parse_i64(arg).filter(|n| *n >= 0).ok_or_else(|| Reply::error(error))
}

/// `LEFT` or `RIGHT`, else a syntax error.
fn end_arg(args: &Args, i: usize) -> Result<End, Reply> {
    if args.is(i, "left") {
        Ok(End::Left)
    } else if args.is(i, "right") {
        Ok(End::Right)
    } else {
        Err(syntax_error())
    }
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`
pub async fn lmove(ctx: &mut Ctx<'_>) -> CmdResult {
    let (from, to) = (end_arg(&ctx.args, 3)?, end_arg(&ctx.args, 4)?);
    let (src, dst) = (ctx.args.get(1).clone(), ctx.args.get(2).clone());
    Ok(move_once(ctx, &src, &dst, from, to, false).await?.unwrap_or(Reply::Nil))
}

/// `RPOPLPUSH source destination`
pub async fn rpoplpush(ctx: &mut Ctx<'_>) -> CmdResult {
    let (src, dst) = (ctx.args.get(1).clone(), ctx.args.get(2).clone());
    Ok(move_once(ctx, &src, &dst, End::Right, End::Left, false).await?.unwrap_or(Reply::Nil))
}

/// The type name of `key`, as `TYPE` answers it.
async fn type_of(ctx: &Ctx<'_>, key: &Bytes) -> Result<String, Reply> {
    match ctx.exec(key.clone(), Op::Type).await? {
        Reply::Status(t) => Ok(t.into_owned()),
        other => Err(other),
    }
}

/// Moves one element from `src` to `dst`: the element, or `None` if `src` holds no list (or,
/// `waiting`, holds another type: a blocked move keeps waiting then).
async fn move_once(
    ctx: &Ctx<'_>,
    src: &Bytes,
    dst: &Bytes,
    from: End,
    to: End,
    waiting: bool,
) -> Result<Option<Reply>, Reply> {
    if src == dst {
        return match ctx.exec(src.clone(), Op::Lists(ListOp::Rotate { from, to })).await? {
            Reply::Nil => Ok(None),
            e if waiting && e.is_wrong_type() => Ok(None),
            e @ Reply::Error(_) => Err(e),
            item => Ok(Some(item)),
        };
    }
    match type_of(ctx, src).await?.as_str() {
        "none" => return Ok(None),
        "list" => {}
        _ if waiting => return Ok(None),
        _ => return Err(Reply::wrong_type()),
    }
    if !matches!(type_of(ctx, dst).await?.as_str(), "none" | "list") {
        return Err(Reply::wrong_type());
    }
    let item =
        match ctx.exec(src.clone(), Op::Lists(ListOp::Pop { end: from, count: None })).await? {
            Reply::Bulk(item) => item,
            Reply::Nil => return Ok(None),
            e if waiting && e.is_wrong_type() => return Ok(None),
            other => return Err(other),
        };
    let items = vec![item.clone()];
    let push = ListOp::Push { items: items.clone(), end: to, only_if_exists: false };
    let pushed = ctx.exec(dst.clone(), Op::Lists(push)).await;
    if let Err(e) | Ok(e @ Reply::Error(_)) = pushed {
        let back = ListOp::Push { items, end: from, only_if_exists: false };
        ctx.exec(src.clone(), Op::Lists(back)).await?;
        return Err(e);
    }
    Ok(Some(Reply::Bulk(item)))
}

/// `LMPOP`'s arguments from `at`: `numkeys key [key ...] LEFT|RIGHT [COUNT count]`.
fn mpop_args(args: &Args, at: usize) -> Result<Mpop<End>, Reply> {
    mpop(args, at, end_arg)
}

/// Pops from the first of `keys` that holds a list: `[key, element]` for a single pop
/// (`count` `None`), `[key, [element, ...]]` for `[B]LMPOP`. `None` if no key holds one. A
/// key of another type is an error, unless `waiting` (then it is passed over).
async fn pop_first(
    ctx: &Ctx<'_>,
    keys: &[Bytes],
    end: End,
    count: Option<u64>,
    waiting: bool,
) -> Result<Option<Reply>, Reply> {
    for key in keys {
        let popped = ctx.exec(key.clone(), Op::Lists(ListOp::Pop { end, count })).await?;
        match popped {
            Reply::Nil | Reply::NilArray => {}
            e if waiting && e.is_wrong_type() => {}
            e @ Reply::Error(_) => return Err(e),
            popped => return Ok(Some(Reply::Array(vec![Reply::Bulk(key.clone()), popped]))),
        }
    }
    Ok(None)
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`
pub async fn lmpop(ctx: &mut Ctx<'_>) -> CmdResult {
    let request = mpop_args(&ctx.args, 1)?;
    let popped = pop_first(ctx, &request.keys, request.side, Some(request.count), false).await?;
    Ok(popped.unwrap_or(Reply::NilArray))
}

/// `BLPOP`/`BRPOP key [key ...] timeout`
pub async fn bpop(ctx: &mut Ctx<'_>, end: End) -> CmdResult {
    let timeout = timeout_arg(ctx.args.get(ctx.args.len() - 1))?;
    let keys = ctx.args.from(1)[..ctx.args.len() - 2].to_vec();
    blocking_pop(ctx, &keys, end, None, timeout).await
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`: the timeout is checked
/// after the rest, as Redis does.
pub async fn blmpop(ctx: &mut Ctx<'_>) -> CmdResult {
    let request = mpop_args(&ctx.args, 2)?;
    let timeout = timeout_arg(ctx.args.get(1))?;
    blocking_pop(ctx, &request.keys, request.side, Some(request.count), timeout).await
}

/// Pops as soon as a key holds a list, trying again with growing pauses (see [`Waiter`]); a
/// null array once `timeout` (`None`: never) has passed or the client has hung up.
async fn blocking_pop(
    ctx: &Ctx<'_>,
    keys: &[Bytes],
    end: End,
    count: Option<u64>,
    timeout: Option<Duration>,
) -> CmdResult {
    let attempt = |waited| pop_first(ctx, keys, end, count, waited);
    Ok(in_turn(ctx, timeout, keys, attempt).await?.unwrap_or(Reply::NilArray))
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`
pub async fn blmove(ctx: &mut Ctx<'_>) -> CmdResult {
    let (from, to) = (end_arg(&ctx.args, 3)?, end_arg(&ctx.args, 4)?);
    let timeout = timeout_arg(ctx.args.get(5))?;
    blocking_move(ctx, from, to, timeout).await
}

/// `BRPOPLPUSH source destination timeout`
pub async fn brpoplpush(ctx: &mut Ctx<'_>) -> CmdResult {
    let timeout = timeout_arg(ctx.args.get(3))?;
    blocking_move(ctx, End::Right, End::Left, timeout).await
}

/// Moves an element as soon as the source has one. As in Redis, the destination's type is
/// checked only once there is something to move.
async fn blocking_move(
    ctx: &Ctx<'_>,
    from: End,
    to: End,
    timeout: Option<std::time::Duration>,
) -> CmdResult {
    let (src, dst) = (ctx.args.get(1).clone(), ctx.args.get(2).clone());
    let attempt = |waited| move_once(ctx, &src, &dst, from, to, waited);
    let moved = in_turn(ctx, timeout, std::slice::from_ref(&src), attempt).await?;
    // Inside a transaction it does not wait, and answers as LMOVE would.
    let none = if ctx.client.txn.txn().is_some() { Reply::Nil } else { Reply::NilArray };
    Ok(moved.unwrap_or(none))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Args {
        Args::new(words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect())
    }

    #[test]
    fn mpop_arguments_fail_in_redis_order() {
        let err = |words: &[&str]| mpop_args(&args(words), 1).err();
        let numkeys = Some(Reply::error("ERR numkeys should be greater than 0"));
        assert_eq!(err(&["lmpop", "0", "l", "left"]), numkeys);
        assert_eq!(err(&["lmpop", "x", "l", "left"]), numkeys);
        assert_eq!(err(&["lmpop", "2", "l", "left"]), Some(syntax_error()));
        assert_eq!(err(&["lmpop", "9223372036854775807", "l", "left"]), Some(syntax_error()));
        assert_eq!(err(&["lmpop", "1", "l", "mid"]), Some(syntax_error()));
        let count = Some(Reply::error("ERR count should be greater than 0"));
        assert_eq!(err(&["lmpop", "1", "l", "left", "count", "0"]), count);
        assert_eq!(
            err(&["lmpop", "1", "l", "left", "count", "1", "count", "1"]),
            Some(syntax_error())
        );
        let ok = mpop_args(&args(&["lmpop", "2", "a", "b", "RIGHT", "COUNT", "3"]), 1);
        let ok = ok.ok().unwrap_or_else(|| panic!("parses"));
        assert_eq!((ok.keys.len(), ok.side, ok.count), (2, End::Right, 3));
    }
}
