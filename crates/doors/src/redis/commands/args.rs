//! Argument access and the parsing rules Redis applies to them.

use bytes::Bytes;
use sessiongrid_model::num::parse_i64;
use sessiongrid_model::reply::{NOT_INTEGER, SYNTAX};
use sessiongrid_model::Reply;

/// A request's arguments; index 0 is the command name. Arity was checked before a command runs,
/// so commands index the positions their arity guarantees.
#[derive(Debug)]
pub struct Args(Vec<Bytes>);

impl Args {
    pub fn new(args: Vec<Bytes>) -> Self {
        Args(args)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true for a request that reached a command (it has at least its name).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, i: usize) -> &Bytes {
        &self.0[i]
    }

    pub fn from(&self, i: usize) -> &[Bytes] {
        &self.0[i.min(self.0.len())..]
    }

    /// True if argument `i` equals `word` ignoring ASCII case.
    pub fn is(&self, i: usize, word: &str) -> bool {
        self.0.get(i).is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// Argument `i` as an integer, with Redis' error when it is not one.
    pub fn int(&self, i: usize) -> Result<i64, Reply> {
        int(&self.0[i])
    }

    /// Argument `i` as text, for names and options.
    pub fn text(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.0[i]).into_owned()
    }
}

pub fn int(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(|| Reply::error(NOT_INTEGER))
}

/// The arguments of `LMPOP`/`ZMPOP` and their blocking forms: the keys, which side to pop
/// from, and how many (1 if not given).
pub struct Mpop<S> {
    pub keys: Vec<Bytes>,
    pub side: S,
    pub count: u64,
}

/// Parses `numkeys key [key ...] SIDE [COUNT count]` from argument `at` (`side` reads SIDE),
/// with Redis' errors in Redis' order.
pub fn mpop<S>(
    args: &Args,
    at: usize,
    side: impl FnOnce(&Args, usize) -> Result<S, Reply>,
) -> Result<Mpop<S>, Reply> {
    let numkeys = parse_i64(args.get(at))
        .filter(|&n| n >= 1)
        .ok_or_else(|| Reply::error("ERR numkeys should be greater than 0"))?;
    let side_at = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(at + 1))
        .filter(|&i| i < args.len())
        .ok_or_else(syntax_error)?;
    let side = side(args, side_at)?;
    let mut count = None;
    let mut i = side_at + 1;
    while i < args.len() {
        if count.is_none() && args.is(i, "count") && i + 1 < args.len() {
            let n = parse_i64(args.get(i + 1))
                .filter(|&n| n >= 1)
                .ok_or_else(|| Reply::error("ERR count should be greater than 0"))?;
            count = Some(n as u64);
            i += 2;
        } else {
            return Err(syntax_error());
        }
    }
    let keys = args.from(at + 1)[..side_at - at - 1].to_vec();
    Ok(Mpop { keys, side, count: count.unwrap_or(1) })
}

pub fn syntax_error() -> Reply {
    Reply::error(SYNTAX)
}

fn invalid_expire(command: &str) -> Reply {
    Reply::error(format!("ERR invalid expire time in '{command}' command"))
}

/// `when` in `unit_ms` as a unix-ms deadline (`absolute`, or relative to `now_ms`), refusing
/// overflow with Redis' error naming `command`.
fn deadline(
    when: i64,
    unit_ms: i64,
    absolute: bool,
    now_ms: u64,
    command: &str,
) -> Result<i64, Reply> {
    let ms = when.checked_mul(unit_ms).ok_or_else(|| invalid_expire(command))?;
    if absolute {
        return Ok(ms);
    }
    ms.checked_add(now_ms as i64).ok_or_else(|| invalid_expire(command))
}

/// Deadline (unix ms) of a `SET`-style expiry option (`EX`, `PX`, `EXAT`, `PXAT`, `SETEX`):
/// `when` must be positive.
pub fn set_deadline(
    when: i64,
    unit_ms: i64,
    absolute: bool,
    now_ms: u64,
    command: &str,
) -> Result<u64, Reply> {
    if when <= 0 {
        return Err(invalid_expire(command));
    }
    Ok(deadline(when, unit_ms, absolute, now_ms, command)? as u64)
}

/// Deadline (unix ms) of an `EXPIRE`-family argument; any value is valid (a past one deletes), only
/// overflow is refused. Negative deadlines become 0, which is in the past.
pub fn expire_deadline(
    when: i64,
    unit_ms: i64,
    absolute: bool,
    now_ms: u64,
    command: &str,
) -> Result<u64, Reply> {
    Ok(deadline(when, unit_ms, absolute, now_ms, command)?.max(0) as u64)
}
