//! Keyspace commands: DEL UNLINK EXISTS EXPIRE PEXPIRE EXPIREAT PEXPIREAT SCAN KEYS DBSIZE
//! FLUSHDB FLUSHALL TOUCH RENAME RENAMENX COPY OBJECT MEMORY RANDOMKEY (TTL, PTTL, EXPIRETIME,
//! PEXPIRETIME, PERSIST and TYPE are single operations wired in the table).

use bytes::Bytes;
use sessiongrid_grid::KeyFilter;
use sessiongrid_model::key::{db_key, DATABASES};
use sessiongrid_model::notify::{Class, Notices};
use sessiongrid_model::op::ExpireCond;
use sessiongrid_model::{time, Entry, Op, Reply, Value};

use super::args::{expire_deadline, syntax_error};
use super::{CmdResult, Ctx, OneOp, Req};

/// Sums the integer replies of one operation over every key argument.
async fn count(ctx: &Ctx<'_>, op: Op) -> CmdResult {
    let mut total = 0;
    for key in ctx.args.from(1) {
        if let Reply::Int(n) = ctx.exec(key.clone(), op.clone()).await? {
            total += n;
        }
    }
    Ok(Reply::Int(total))
}

pub async fn del(ctx: &mut Ctx<'_>) -> CmdResult {
    count(ctx, Op::Del).await
}

/// The entry under `key`, as `Op::Dump` encodes it; `None` if absent.
pub async fn dump(ctx: &Ctx<'_>, key: &Bytes) -> Result<Option<Entry>, Reply> {
    dump_stored(ctx, &ctx.stored(key.clone())).await
}

/// [`dump`] of a key as stored.
async fn dump_stored(ctx: &Ctx<'_>, stored: &Bytes) -> Result<Option<Entry>, Reply> {
    match ctx.exec_stored(stored.clone(), Op::Dump).await? {
        Reply::Bulk(bytes) => Entry::decode(&bytes)
            .map(Some)
            .map_err(|_| Reply::error("ERR internal: unreadable entry")),
        e @ Reply::Error(_) => Err(e), // a key the grid manages (a session): WRONGTYPE
        _ => Ok(None),
    }
}

/// `RENAME src dst` (`nx` false) and `RENAMENX src dst`. The two keys may live in different
/// partitions: the source is copied, then deleted unless written since, so an interrupted
/// rename leaves both keys, never neither, and a write to the source while it is being renamed
/// stays there (as if made just after the rename).
pub async fn rename(ctx: &mut Ctx<'_>, nx: bool) -> CmdResult {
    let (src, dst) = (ctx.args.get(1).clone(), ctx.args.get(2).clone());
    let Some(entry) = dump(ctx, &src).await? else {
        return Err(Reply::error("ERR no such key"));
    };
    if src == dst {
        return Ok(if nx { Reply::Int(0) } else { Reply::Ok });
    }
    let version = entry.version;
    let restore = Op::Restore { entry: Box::new(entry), replace: !nx };
    match ctx.exec(dst.clone(), restore).await? {
        Reply::Int(1) => {}
        Reply::Int(_) => return Ok(Reply::Int(0)),
        refused => return Err(refused), // the destination is a key the grid manages
    }
    ctx.exec(src.clone(), Op::DelIf { version }).await?;
    ctx.notify(&src, Notices::one(Class::Generic, "rename_from"));
    ctx.notify(&dst, Notices::one(Class::Generic, "rename_to"));
    Ok(if nx { Reply::Int(1) } else { Reply::Ok })
}

/// Replaces whatever `key` holds with `value` (no deadline), or deletes it: where `SUNIONSTORE`
/// and its kind put their result.
/// Its keyspace event is named after the command (`sinterstore`), or `del` if it deleted.
pub async fn overwrite(ctx: &Ctx<'_>, key: Bytes, value: Option<Value>) -> Result<(), Reply> {
    let class = match value {
        Some(Value::Zset(_)) => Class::Zset,
        Some(Value::List(_)) => Class::List,
        _ => Class::Set,
    };
    let stored = value.is_some();
    let op = match value {
        None => Op::Del,
        Some(value) => Op::Restore { entry: Box::new(Entry::new(value)), replace: true },
    };
    let notice = match ctx.exec(key.clone(), op).await? {
        e @ Reply::Error(_) => return Err(e),
        _ if stored => {
            let command = ctx.args.text(0).to_ascii_lowercase();
            let event = STORE_EVENTS.iter().find(|(c, _)| *c == command);
            event.map(|(_, e)| Notices::one(class, e))
        }
        Reply::Int(1) => Some(Notices::one(Class::Generic, "del")),
        _ => None,
    };
    if let Some(notice) = notice {
        ctx.notify(&key, notice);
    }
    Ok(())
}

/// The commands that store a computed set, sorted set or list, with their event's name.
const STORE_EVENTS: [(&str, &str); 8] = [
    ("sinterstore", "sinterstore"),
    ("sunionstore", "sunionstore"),
    ("sdiffstore", "sdiffstore"),
    ("zunionstore", "zunionstore"),
    ("zinterstore", "zinterstore"),
    ("zdiffstore", "zdiffstore"),
    ("zrangestore", "zrangestore"),
    ("sort", "sortstore"),
];

/// `COPY src dst [DB n] [REPLACE]`: 1 if copied, 0 if the source is absent or the destination
/// exists (without REPLACE).
pub async fn copy(ctx: &mut Ctx<'_>) -> CmdResult {
    let (src, dst) = (ctx.args.get(1).clone(), ctx.args.get(2).clone());
    let mut replace = false;
    let mut db = ctx.client.db;
    let mut i = 3;
    while i < ctx.args.len() {
        if ctx.args.is(i, "replace") {
            replace = true;
            i += 1;
        } else if ctx.args.is(i, "db") && i + 1 < ctx.args.len() {
            db = db_index(ctx.args.int(i + 1)?)?;
            i += 2;
        } else {
            return Err(syntax_error());
        }
    }
    if src == dst && db == ctx.client.db {
        return Err(Reply::error("ERR source and destination objects are the same"));
    }
    let Some(entry) = dump(ctx, &src).await? else { return Ok(Reply::Int(0)) };
    let to = db_key(db, dst);
    let copied =
        ctx.exec_stored(to.clone(), Op::Restore { entry: Box::new(entry), replace }).await?;
    if copied == Reply::Int(1) {
        ctx.shared.grid.notify(&to, Notices::one(Class::Generic, "copy_to"));
    }
    Ok(copied)
}

/// A database number as `SELECT`, `MOVE` and `COPY ... DB` take it.
pub fn db_index(n: i64) -> Result<u8, Reply> {
    match u8::try_from(n) {
        Ok(db) if db < DATABASES => Ok(db),
        _ => Err(Reply::error("ERR DB index is out of range")),
    }
}

/// `SWAPDB a b`: the keys of two databases trade places, at once for every client (every
/// partition is held while they move, unless a transaction already holds them). A key's name
/// decides its partition in each database, so its entry moves between partitions: it costs a
/// read, a delete and a write per key, not Redis' pointer swap. Sessions stay in database 0.
pub async fn swapdb(ctx: &mut Ctx<'_>) -> CmdResult {
    let index = |i, which| {
        ctx.args.int(i).map_err(|_| Reply::error(format!("ERR invalid {which} DB index")))
    };
    let (a, b) = (db_index(index(1, "first")?)?, db_index(index(2, "second")?)?);
    if a == b {
        return Ok(Reply::Ok);
    }
    if ctx.client.txn.txn().is_some() {
        swap_dbs(ctx, a, b).await?;
        return Ok(Reply::Ok);
    }
    let every: Vec<_> = (0..ctx.shared.grid.partitions()).collect();
    super::multi::hold(ctx, &every).await?;
    let swapped = swap_dbs(ctx, a, b).await.map(|()| Reply::Ok);
    super::multi::release(ctx, swapped).await
}

/// Moves every key of databases `a` and `b` to its name in the other: all are read, then
/// deleted, then written, so none overwrites another still to move. A key whose new name holds
/// a session goes back where it was.
async fn swap_dbs(ctx: &Ctx<'_>, a: u8, b: u8) -> Result<(), Reply> {
    let mut moving = Vec::new();
    for p in 0..ctx.shared.grid.partitions() {
        for db in [a, b] {
            for key in ctx.keys_of(db, p, KeyFilter::default()).await? {
                let stored = db_key(db, key.clone());
                match dump_stored(ctx, &stored).await {
                    Ok(Some(entry)) => moving.push((db, key, entry)),
                    Ok(None) => {}                    // expired since it was listed
                    Err(e) if e.is_wrong_type() => {} // a session stays
                    Err(e) => return Err(e),
                }
            }
        }
    }
    for (db, key, entry) in &moving {
        ctx.exec_stored(db_key(*db, key.clone()), Op::DelIf { version: entry.version }).await?;
    }
    for (db, key, entry) in moving {
        let restore = |entry| Op::Restore { entry: Box::new(entry), replace: false };
        let to = if db == a { b } else { a };
        if ctx.exec_stored(db_key(to, key.clone()), restore(entry.clone())).await? != Reply::Int(1)
        {
            ctx.exec_stored(db_key(db, key), restore(entry)).await?;
        }
    }
    Ok(())
}

/// `MOVE key db`: 1 if the key moved to database `db`, 0 if it is absent here or exists
/// there. As `RENAME`: copied, then deleted here unless written since.
pub async fn move_key(ctx: &mut Ctx<'_>) -> CmdResult {
    let key = ctx.args.get(1).clone();
    let db = db_index(ctx.args.int(2)?)?;
    if db == ctx.client.db {
        return Err(Reply::error("ERR source and destination objects are the same"));
    }
    let Some(entry) = dump(ctx, &key).await? else { return Ok(Reply::Int(0)) };
    let version = entry.version;
    let restore = Op::Restore { entry: Box::new(entry), replace: false };
    match ctx.exec_stored(db_key(db, key.clone()), restore).await? {
        Reply::Int(1) => {}
        Reply::Int(_) => return Ok(Reply::Int(0)),
        refused => return Err(refused),
    }
    ctx.exec(key, Op::DelIf { version }).await?;
    Ok(Reply::Int(1))
}

/// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key` and `OBJECT HELP`. The grid keeps no access
/// times or counts: IDLETIME is 0 and FREQ answers as Redis does without an LFU policy.
pub async fn object(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = ctx.args.text(1).to_ascii_lowercase();
    if sub == "help" {
        let lines = [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Print this help.",
        ];
        return Ok(Reply::Array(lines.iter().map(|l| Reply::Status((*l).into())).collect()));
    }
    if !["encoding", "freq", "idletime", "refcount"].contains(&sub.as_str()) {
        let name = ctx.args.text(1);
        return Err(Reply::error(format!("ERR unknown subcommand '{name}'. Try OBJECT HELP.")));
    }
    if ctx.args.len() != 3 {
        let message = format!("ERR wrong number of arguments for 'object|{sub}' command");
        return Err(Reply::error(message));
    }
    let reply = ctx.exec(ctx.args.get(2).clone(), Op::Encoding).await?;
    match (sub.as_str(), reply) {
        (_, e @ Reply::Error(_)) => Err(e),
        (_, Reply::Nil) => Ok(Reply::Nil),
        ("encoding", found) => Ok(found),
        ("freq", _) => Err(Reply::error(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please \
             note that when switching between policies at runtime LRU and LFU data will take \
             some time to adjust.",
        )),
        ("idletime", _) => Ok(Reply::Int(0)),
        _ => Ok(Reply::Int(1)),
    }
}

/// `MEMORY USAGE key [SAMPLES n]`: what the key is charged against the memory budget (its
/// bytes and a fixed overhead), or nil.
pub async fn memory(ctx: &mut Ctx<'_>) -> CmdResult {
    if !ctx.args.is(1, "usage") {
        let sub = ctx.args.text(1);
        return Err(Reply::error(format!("ERR unknown subcommand '{sub}'. Try MEMORY HELP.")));
    }
    match ctx.args.len() {
        3 => {}
        5 if ctx.args.is(3, "samples") => {
            ctx.args.int(4)?;
        }
        _ => return Err(syntax_error()),
    }
    let key = ctx.args.get(2).clone();
    match ctx.exec(key.clone(), Op::Usage).await? {
        Reply::Int(n) => Ok(Reply::Int(n + key.len() as i64)),
        other => Ok(other),
    }
}

pub async fn exists(ctx: &mut Ctx<'_>) -> CmdResult {
    count(ctx, Op::Exists).await
}

/// `EXPIRE`/`PEXPIRE` (`absolute` false) and `EXPIREAT`/`PEXPIREAT`; `unit_ms` 1000 for seconds.
pub fn expire(r: &Req<'_>, unit_ms: i64, absolute: bool) -> OneOp {
    let args = r.args;
    let command = match (unit_ms, absolute) {
        (1000, false) => "expire",
        (1000, true) => "expireat",
        (_, false) => "pexpire",
        (_, true) => "pexpireat",
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for i in 3..args.len() {
        match () {
            _ if args.is(i, "nx") => nx = true,
            _ if args.is(i, "xx") => xx = true,
            _ if args.is(i, "gt") => gt = true,
            _ if args.is(i, "lt") => lt = true,
            _ => {
                let opt = args.text(i);
                return Err(Reply::error(format!("ERR Unsupported option {opt}")));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Reply::error("ERR GT and LT options at the same time are not compatible"));
    }
    let cond = match (nx, xx, gt, lt) {
        (true, ..) => ExpireCond::IfNoExpiry,
        (_, _, true, _) => ExpireCond::IfGreater,
        (_, _, _, true) => ExpireCond::IfLess,
        (_, true, ..) => ExpireCond::IfHasExpiry,
        _ => ExpireCond::Always,
    };
    let when = args.int(2)?;
    let at_ms = expire_deadline(when, unit_ms, absolute, time::now_ms(), command)?;
    // XX combined with GT/LT needs both: an existing deadline, and the comparison.
    let cond = if xx && cond != ExpireCond::IfHasExpiry { both_xx(cond) } else { cond };
    Ok((args.get(1).clone(), Op::Expire { at_ms, cond }))
}

/// XX+GT is GT (GT already requires a deadline); XX+LT requires a deadline and a smaller value,
/// which [`ExpireCond::IfLess`] alone would grant to keys without one.
fn both_xx(cond: ExpireCond) -> ExpireCond {
    match cond {
        ExpireCond::IfLess => ExpireCond::IfLessExisting,
        other => other,
    }
}

pub async fn dbsize(ctx: &mut Ctx<'_>) -> CmdResult {
    let n = ctx.dbsize().await?;
    Ok(Reply::Int(n as i64))
}

pub async fn flush(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.args.len() > 2
        || (ctx.args.len() == 2 && !ctx.args.is(1, "sync") && !ctx.args.is(1, "async"))
    {
        return Err(syntax_error());
    }
    ctx.flush(ctx.args.is(0, "flushall")).await?;
    Ok(Reply::Ok)
}

/// Longest glob pattern accepted; matching costs pattern length times key length per key.
const PATTERN_BYTES_MAX: usize = 4096;

fn check_pattern(pattern: &[u8]) -> Result<(), Reply> {
    if pattern.len() > PATTERN_BYTES_MAX {
        return Err(Reply::error("ERR pattern longer than 4096 bytes"));
    }
    Ok(())
}

/// `RANDOMKEY`: a key of the first partition holding any, from a random one on; nil if the
/// grid holds none.
pub async fn randomkey(ctx: &mut Ctx<'_>) -> CmdResult {
    let partitions = ctx.shared.grid.partitions();
    let start = rand::random_range(0..partitions);
    for i in 0..partitions {
        let p = (start + i) % partitions;
        let found = ctx.keys(p, KeyFilter::default()).await?;
        if !found.is_empty() {
            let pick = rand::random_range(0..found.len());
            return Ok(Reply::Bulk(found[pick].clone()));
        }
    }
    Ok(Reply::Nil)
}

pub async fn keys(ctx: &mut Ctx<'_>) -> CmdResult {
    let pattern = ctx.args.get(1).clone();
    check_pattern(&pattern)?;
    let all = pattern.as_ref() == b"*";
    let filter = KeyFilter { pattern: (!all).then_some(pattern), ..KeyFilter::default() };
    let mut keys = Vec::new();
    for p in 0..ctx.shared.grid.partitions() {
        let found = ctx.keys(p, filter.clone()).await?;
        keys.extend(found.into_iter().map(Reply::Bulk));
    }
    Ok(Reply::Array(keys))
}

/// `SCAN cursor [MATCH p] [COUNT n] [TYPE t]`. The cursor is the next partition to visit; a call
/// returns whole partitions until it has at least COUNT keys, so every key present for the whole
/// iteration is returned exactly once.
pub async fn scan(ctx: &mut Ctx<'_>) -> CmdResult {
    let cursor: u64 = std::str::from_utf8(ctx.args.get(1))
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Reply::error("ERR invalid cursor"))?;
    let mut filter = KeyFilter::default();
    let mut count = 10;
    let mut i = 2;
    while i < ctx.args.len() {
        if i + 1 >= ctx.args.len() {
            return Err(syntax_error());
        }
        match () {
            _ if ctx.args.is(i, "match") => {
                let p = ctx.args.get(i + 1).clone();
                check_pattern(&p)?;
                filter.pattern = (p.as_ref() != b"*").then_some(p);
            }
            _ if ctx.args.is(i, "count") => {
                count = ctx.args.int(i + 1)?;
                if count < 1 {
                    return Err(syntax_error());
                }
            }
            _ if ctx.args.is(i, "type") => filter.type_name = Some(ctx.args.text(i + 1)),
            _ => return Err(syntax_error()),
        }
        i += 2;
    }
    let partitions = ctx.shared.grid.partitions() as u64;
    let mut next = cursor;
    let mut keys = Vec::new();
    while next < partitions && (keys.len() as i64) < count {
        let found = ctx.keys(next as u16, filter.clone()).await?;
        keys.extend(found.into_iter().map(Reply::Bulk));
        next += 1;
    }
    let next = if next >= partitions { 0 } else { next };
    Ok(Reply::Array(vec![Reply::Bulk(Bytes::from(next.to_string())), Reply::Array(keys)]))
}
