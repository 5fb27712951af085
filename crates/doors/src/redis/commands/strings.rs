//! String commands: GET SET SETEX PSETEX SETNX GETEX GETDEL GETSET MGET MSET MSETNX INCR INCRBY
//! DECR DECRBY INCRBYFLOAT APPEND STRLEN GETRANGE (SUBSTR) SETRANGE SETBIT GETBIT LCS.

use bytes::Bytes;
use sessiongrid_model::lcs;
use sessiongrid_model::num::parse_f64;
use sessiongrid_model::op::ExpiryChange;
use sessiongrid_model::reply::NOT_FLOAT;
use sessiongrid_model::{time, Op, Reply, SetCond};

use super::args::{int, set_deadline, syntax_error, Args};
use super::{CmdResult, Ctx, OneOp, Req};

/// Refuses a value over `value_bytes_max` before it reaches a partition.
fn check_value(r: &Req<'_>, value: &Bytes) -> Result<(), Reply> {
    if value.len() > r.shared.config.value_bytes_max {
        return Err(Reply::error("ERR value is larger than value_bytes_max"));
    }
    Ok(())
}

/// The expiry options of `SET` and `GETEX`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpiryOpt {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// An expiry option with its raw value; as in Redis, the value is validated only after every
/// option parsed (and, for `GETEX`, after the key was looked up).
type ExpiryArg = Option<(ExpiryOpt, Bytes)>;

/// If argument `i` is an expiry option, parses it into `expiry` and returns the position after
/// its value. `blocked` is true when an option that excludes expiries (KEEPTTL, PERSIST) was seen.
fn parse_expiry(
    args: &Args,
    i: usize,
    expiry: &mut ExpiryArg,
    blocked: bool,
) -> Result<Option<usize>, Reply> {
    let Some(opt) = ExpiryOpt::at(args, i) else { return Ok(None) };
    let conflicting = blocked || expiry.as_ref().is_some_and(|(o, _)| *o != opt);
    if conflicting || i + 1 >= args.len() {
        return Err(syntax_error());
    }
    *expiry = Some((opt, args.get(i + 1).clone()));
    Ok(Some(i + 2))
}

impl ExpiryOpt {
    fn at(args: &Args, i: usize) -> Option<ExpiryOpt> {
        [
            ("ex", ExpiryOpt::Ex),
            ("px", ExpiryOpt::Px),
            ("exat", ExpiryOpt::ExAt),
            ("pxat", ExpiryOpt::PxAt),
        ]
        .into_iter()
        .find(|(word, _)| args.is(i, word))
        .map(|(_, opt)| opt)
    }

    /// The deadline for the raw value `when`, or Redis' error naming `command`.
    fn deadline(self, when: &[u8], command: &str) -> Result<u64, Reply> {
        let when = int(when)?;
        let (unit, absolute) = match self {
            ExpiryOpt::Ex => (1000, false),
            ExpiryOpt::Px => (1, false),
            ExpiryOpt::ExAt => (1000, true),
            ExpiryOpt::PxAt => (1, true),
        };
        set_deadline(when, unit, absolute, time::now_ms(), command)
    }
}

/// `SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT n|KEEPTTL]`. As in Redis, repeating an option
/// is allowed (the last value wins) but two different expiry options, or NX with XX, are not.
pub fn set(r: &Req<'_>) -> OneOp {
    let args = r.args;
    let value = args.get(2).clone();
    let mut cond = SetCond::Always;
    let mut get = false;
    let mut keep_ttl = false;
    let mut expiry: ExpiryArg = None;
    let mut i = 3;
    while i < args.len() {
        if let Some(next) = parse_expiry(args, i, &mut expiry, keep_ttl)? {
            i = next;
            continue;
        }
        match () {
            _ if args.is(i, "nx") && cond != SetCond::IfPresent => cond = SetCond::IfAbsent,
            _ if args.is(i, "xx") && cond != SetCond::IfAbsent => cond = SetCond::IfPresent,
            _ if args.is(i, "get") => get = true,
            _ if args.is(i, "keepttl") && expiry.is_none() => keep_ttl = true,
            _ => return Err(syntax_error()),
        }
        i += 1;
    }
    let expiry = match expiry {
        Some((opt, when)) => ExpiryChange::At(opt.deadline(&when, "set")?),
        None if keep_ttl => ExpiryChange::Keep,
        None => ExpiryChange::Clear,
    };
    check_value(r, &value)?;
    Ok((args.get(1).clone(), Op::Set { value, cond, expiry, get }))
}

/// `SETEX key seconds value` (`unit_ms` 1000) and `PSETEX key ms value` (1).
pub fn setex(r: &Req<'_>, unit_ms: i64) -> OneOp {
    let command = if unit_ms == 1 { "psetex" } else { "setex" };
    let when = r.args.int(2)?;
    let at = set_deadline(when, unit_ms, false, time::now_ms(), command)?;
    let value = r.args.get(3).clone();
    check_value(r, &value)?;
    let op = Op::Set { value, cond: SetCond::Always, expiry: ExpiryChange::At(at), get: false };
    Ok((r.args.get(1).clone(), op))
}

pub fn setnx(r: &Req<'_>) -> OneOp {
    let value = r.args.get(2).clone();
    check_value(r, &value)?;
    Ok((r.args.get(1).clone(), Op::SetNx { value }))
}

/// `GETEX key [EX|PX|EXAT|PXAT n|PERSIST]`. As in Redis, the key is looked up before the
/// expiry value is validated: a missing key answers nil even when the value is invalid.
pub async fn getex(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut persist = false;
    let mut expiry: ExpiryArg = None;
    let mut i = 2;
    while i < ctx.args.len() {
        if let Some(next) = parse_expiry(&ctx.args, i, &mut expiry, persist)? {
            i = next;
        } else if ctx.args.is(i, "persist") && expiry.is_none() {
            persist = true;
            i += 1;
        } else {
            return Err(syntax_error());
        }
    }
    let key = ctx.args.get(1).clone();
    let expiry = match expiry {
        None if persist => ExpiryChange::Clear,
        None => ExpiryChange::Keep,
        Some((opt, when)) => match opt.deadline(&when, "getex") {
            Ok(at) => ExpiryChange::At(at),
            Err(invalid) => {
                return match ctx.exec(key, Op::Get).await? {
                    reply @ (Reply::Nil | Reply::Error(_)) => Ok(reply),
                    _ => Err(invalid),
                }
            }
        },
    };
    ctx.exec(key, Op::GetEx { expiry }).await
}

/// `INCR`/`DECR` (fixed `delta`) and `INCRBY` (delta from the arguments).
pub fn incr_by(r: &Req<'_>, delta: Option<i64>) -> OneOp {
    let delta = match delta {
        Some(d) => d,
        None => r.args.int(2)?,
    };
    Ok((r.args.get(1).clone(), Op::IncrBy { delta }))
}

pub fn decr_by(r: &Req<'_>) -> OneOp {
    let delta = r.args.int(2)?;
    let delta = delta.checked_neg().ok_or_else(|| Reply::error("ERR decrement would overflow"))?;
    Ok((r.args.get(1).clone(), Op::IncrBy { delta }))
}

/// `INCRBYFLOAT key increment`
pub fn incr_by_float(r: &Req<'_>) -> OneOp {
    let delta = float_arg(r.args.get(2))?;
    Ok((r.args.get(1).clone(), Op::IncrByFloat { delta }))
}

/// An increment that must read as a finite float (`INCRBYFLOAT`, `HINCRBYFLOAT`).
pub fn float_arg(arg: &Bytes) -> Result<Bytes, Reply> {
    match parse_f64(arg) {
        Some(_) => Ok(arg.clone()),
        None => Err(Reply::error(NOT_FLOAT)),
    }
}

/// `GETSET key value`: `SET key value GET`, which also drops the key's deadline.
pub fn getset(r: &Req<'_>) -> OneOp {
    let value = r.args.get(2).clone();
    check_value(r, &value)?;
    let op = Op::Set { value, cond: SetCond::Always, expiry: ExpiryChange::Clear, get: true };
    Ok((r.args.get(1).clone(), op))
}

/// `GETRANGE key start end` (and its old name `SUBSTR`).
pub fn getrange(r: &Req<'_>) -> OneOp {
    let (start, end) = (r.args.int(2)?, r.args.int(3)?);
    Ok((r.args.get(1).clone(), Op::GetRange { start, end }))
}

/// A bit offset of `SETBIT`/`GETBIT`: below 2^32, as in Redis.
fn bit_offset(r: &Req<'_>) -> Result<u64, Reply> {
    let offset = r.args.int(2).ok().and_then(|o| u64::try_from(o).ok());
    offset
        .filter(|o| *o < 1 << 32)
        .ok_or_else(|| Reply::error("ERR bit offset is not an integer or out of range"))
}

/// `SETBIT key offset 0|1`
pub fn setbit(r: &Req<'_>) -> OneOp {
    let offset = bit_offset(r)?;
    let on = match r.args.get(3).as_ref() {
        b"0" => false,
        b"1" => true,
        _ => return Err(Reply::error("ERR bit is not an integer or out of range")),
    };
    Ok((r.args.get(1).clone(), Op::SetBit { offset, on }))
}

/// `GETBIT key offset`
pub fn getbit(r: &Req<'_>) -> OneOp {
    Ok((r.args.get(1).clone(), Op::GetBit { offset: bit_offset(r)? }))
}

/// `SETRANGE key offset value`
pub fn setrange(r: &Req<'_>) -> OneOp {
    let offset =
        u64::try_from(r.args.int(2)?).map_err(|_| Reply::error("ERR offset is out of range"))?;
    Ok((r.args.get(1).clone(), Op::SetRange { offset, value: r.args.get(3).clone() }))
}

pub fn append(r: &Req<'_>) -> OneOp {
    Ok((r.args.get(1).clone(), Op::Append { value: r.args.get(2).clone() }))
}

pub async fn mget(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut values = Vec::with_capacity(ctx.args.len() - 1);
    for key in ctx.args.from(1) {
        let reply = ctx.exec(key.clone(), Op::Get).await?;
        // MGET answers nil for keys of another type instead of failing.
        values.push(if reply.is_error() { Reply::Nil } else { reply });
    }
    Ok(Reply::Array(values))
}

/// `MSET`: each key is set atomically; the command as a whole is not (keys may live in different
/// partitions).
pub async fn mset(ctx: &mut Ctx<'_>) -> CmdResult {
    set_all(ctx, "mset").await?;
    Ok(Reply::Ok)
}

/// `MSETNX`: 1 and every key set if none existed, else 0 and nothing set. As `MSET`, each key
/// is set atomically but the command is not: a key created by another client between the check
/// and the writes is overwritten.
pub async fn msetnx(ctx: &mut Ctx<'_>) -> CmdResult {
    let pairs = ctx.args.from(1).to_vec();
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(Reply::error("ERR wrong number of arguments for 'msetnx' command"));
    }
    for pair in pairs.chunks(2) {
        if ctx.exec(pair[0].clone(), Op::Exists).await? != Reply::Int(0) {
            return Ok(Reply::Int(0));
        }
    }
    set_all(ctx, "msetnx").await?;
    Ok(Reply::Int(1))
}

/// Sets every `key value` pair of the arguments, in order.
async fn set_all(ctx: &mut Ctx<'_>, command: &str) -> Result<(), Reply> {
    let pairs = ctx.args.from(1);
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(Reply::error(format!("ERR wrong number of arguments for '{command}' command")));
    }
    for pair in pairs.chunks(2) {
        check_value(&Req { shared: ctx.shared, args: &ctx.args }, &pair[1])?;
    }
    for pair in pairs.chunks(2) {
        let op = Op::Set {
            value: pair[1].clone(),
            cond: SetCond::Always,
            expiry: ExpiryChange::Clear,
            get: false,
        };
        ctx.exec(pair[0].clone(), op).await?;
    }
    Ok(())
}

/// `LCS` tables past this size are filled off the connection's thread.
const LCS_INLINE_BYTES: u64 = 4 << 20;

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`: the longest common subsequence of
/// two strings (a missing key is empty), its length, or the runs where the strings match. As in
/// Redis, the table it fills, 4 bytes per pair of positions, may not pass `proto-max-bulk-len`
/// (`bulk_bytes_max`).
pub async fn lcs(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut strings = Vec::with_capacity(2);
    for key in [ctx.args.get(1).clone(), ctx.args.get(2).clone()] {
        match ctx.exec(key, Op::Get).await? {
            Reply::Bulk(b) => strings.push(b),
            Reply::Nil => strings.push(Bytes::new()),
            e if e.is_wrong_type() => {
                return Err(Reply::error("ERR The specified keys must contain string values"))
            }
            other => return Err(other),
        }
    }
    let (mut len, mut idx, mut with_len, mut min_len) = (false, false, false, 0usize);
    let mut i = 3;
    while i < ctx.args.len() {
        if ctx.args.is(i, "len") {
            len = true;
        } else if ctx.args.is(i, "idx") {
            idx = true;
        } else if ctx.args.is(i, "withmatchlen") {
            with_len = true;
        } else if ctx.args.is(i, "minmatchlen") && i + 1 < ctx.args.len() {
            min_len = usize::try_from(ctx.args.int(i + 1)?).unwrap_or(0);
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    if len && idx {
        return Err(Reply::error(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let (a, b) = (strings[0].clone(), strings[1].clone());
    let table = lcs::table_bytes(a.len(), b.len()).unwrap_or(u64::MAX);
    if table > ctx.shared.config.limits.bulk_bytes_max as u64 {
        return Err(Reply::error(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let answer = move || {
        if len {
            return Reply::Int(lcs::len(&a, &b) as i64);
        }
        let found = lcs::lcs(&a, &b);
        if !idx {
            return Reply::Bulk(found.text.into());
        }
        let pos = |(from, to): (usize, usize)| {
            Reply::Array(vec![Reply::Int(from as i64), Reply::Int(to as i64)])
        };
        let runs = found.runs.iter().filter(|r| r.match_len() >= min_len).map(|r| {
            let mut run = vec![pos(r.a), pos(r.b)];
            if with_len {
                run.push(Reply::Int(r.match_len() as i64));
            }
            Reply::Array(run)
        });
        Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(runs.collect())),
            (Reply::bulk("len"), Reply::Int(found.text.len() as i64)),
        ])
    };
    if table <= LCS_INLINE_BYTES {
        return Ok(answer());
    }
    tokio::task::spawn_blocking(answer).await.map_err(|_| Reply::error("ERR LCS failed"))
}
