//! Command categories (`+@read`, `ACL CAT`), as Redis 7.0 names them, plus the grid's own
//! `@session`. A command's categories come from its table flags (read, write, admin...) and
//! from the data type it works on; a few subcommands of container commands differ from their
//! container (`ACL WHOAMI` is for everyone, `CLIENT KILL` for administrators).

use crate::redis::commands::Spec;

pub type Cats = u32;

/// Every category with its bit, in `ACL CAT`'s order.
pub const CATEGORIES: &[(&str, Cats)] = &[
    ("keyspace", KEYSPACE),
    ("read", READ),
    ("write", WRITE),
    ("set", SET),
    ("sortedset", SORTEDSET),
    ("list", LIST),
    ("hash", HASH),
    ("string", STRING),
    ("bitmap", BITMAP),
    ("hyperloglog", 1 << 9),
    ("geo", 1 << 10),
    ("stream", 1 << 11),
    ("pubsub", PUBSUB),
    ("admin", ADMIN),
    ("fast", FAST),
    ("slow", SLOW),
    ("blocking", BLOCKING),
    ("dangerous", DANGEROUS),
    ("connection", CONNECTION),
    ("transaction", TRANSACTION),
    ("scripting", SCRIPTING),
    ("session", SESSION),
];

const KEYSPACE: Cats = 1;
const READ: Cats = 1 << 1;
const WRITE: Cats = 1 << 2;
const SET: Cats = 1 << 3;
const SORTEDSET: Cats = 1 << 4;
const LIST: Cats = 1 << 5;
const HASH: Cats = 1 << 6;
const STRING: Cats = 1 << 7;
const BITMAP: Cats = 1 << 8;
const PUBSUB: Cats = 1 << 12;
const ADMIN: Cats = 1 << 13;
const FAST: Cats = 1 << 14;
const SLOW: Cats = 1 << 15;
const BLOCKING: Cats = 1 << 16;
const DANGEROUS: Cats = 1 << 17;
const CONNECTION: Cats = 1 << 18;
const TRANSACTION: Cats = 1 << 19;
const SCRIPTING: Cats = 1 << 20;
const SESSION: Cats = 1 << 21;

/// The bit of category `name` (without the `@`, any case); `all` is every category.
pub fn named(name: &str) -> Option<Cats> {
    let name = name.to_ascii_lowercase();
    if name == "all" {
        return Some(Cats::MAX);
    }
    CATEGORIES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// The categories of a command.
pub fn of(spec: &Spec) -> Cats {
    let flag = |f: &str| spec.flags.contains(&f);
    let mut cats = family(spec.name);
    if flag("write") {
        cats |= WRITE;
    }
    if flag("readonly") {
        cats |= READ;
    }
    if flag("admin") {
        cats |= ADMIN | DANGEROUS;
    }
    if flag("pubsub") {
        cats |= PUBSUB;
    }
    if flag("noscript") && !flag("pubsub") {
        cats |= SCRIPTING;
    }
    if flag("no-auth") {
        cats |= match spec.name {
            "multi" | "exec" | "discard" | "watch" | "unwatch" => TRANSACTION,
            _ => CONNECTION,
        };
    }
    cats |= match spec.name {
        "flushall" | "flushdb" | "keys" | "swapdb" | "info" | "shutdown" | "save" => DANGEROUS,
        _ => 0,
    };
    if spec.name.starts_with('b') && !matches!(spec.name, "bitcount" | "bitpos") {
        cats |= BLOCKING;
    }
    cats | if flag("fast") { FAST } else { SLOW }
}

/// The data type a command works on.
fn family(name: &str) -> Cats {
    if name.starts_with("session.") {
        return SESSION;
    }
    match name {
        "append" | "decr" | "decrby" | "get" | "getdel" | "getex" | "getrange" | "getset"
        | "incr" | "incrby" | "incrbyfloat" | "mget" | "mset" | "msetnx" | "psetex" | "set"
        | "setex" | "setnx" | "setrange" | "strlen" | "substr" => STRING,
        "getbit" | "setbit" => BITMAP,
        "copy" | "del" | "dbsize" | "exists" | "expire" | "expireat" | "expiretime" | "keys"
        | "move" | "object" | "persist" | "pexpire" | "pexpireat" | "pexpiretime" | "pttl"
        | "randomkey" | "rename" | "renamenx" | "scan" | "touch" | "ttl" | "type" | "unlink"
        | "flushall" | "flushdb" | "swapdb" => KEYSPACE,
        "blmove" | "blmpop" | "blpop" | "brpop" | "brpoplpush" | "lindex" | "linsert" | "llen"
        | "lmove" | "lmpop" | "lpop" | "lpos" | "lpush" | "lpushx" | "lrange" | "lrem" | "lset"
        | "ltrim" | "rpop" | "rpoplpush" | "rpush" | "rpushx" => LIST,
        "sadd" | "scard" | "sdiff" | "sdiffstore" | "sinter" | "sintercard" | "sinterstore"
        | "sismember" | "smembers" | "smismember" | "smove" | "spop" | "srandmember" | "srem"
        | "sscan" | "sunion" | "sunionstore" => SET,
        _ if name.starts_with('h') && name != "hello" => HASH,
        _ if name.starts_with('z') || name.starts_with("bz") => SORTEDSET,
        _ => 0,
    }
}

/// Subcommands whose categories differ from their container's, with theirs: `+@all
/// -@dangerous` keeps `CLIENT SETNAME` and drops `CLIENT KILL`.
pub const SUBCOMMANDS: &[(&str, &str, Cats)] = &[
    ("acl", "cat", SLOW),
    ("acl", "genpass", SLOW),
    ("acl", "help", SLOW),
    ("acl", "whoami", SLOW),
    ("client", "kill", ADMIN | DANGEROUS | SLOW | CONNECTION),
    ("client", "list", ADMIN | DANGEROUS | SLOW | CONNECTION),
    ("client", "no-evict", ADMIN | DANGEROUS | SLOW | CONNECTION),
    ("function", "delete", WRITE | SCRIPTING | SLOW),
    ("function", "flush", WRITE | SCRIPTING | SLOW),
    ("function", "load", WRITE | SCRIPTING | SLOW),
    ("function", "restore", WRITE | SCRIPTING | SLOW),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::commands::{lookup, COMMANDS};

    #[test]
    fn every_command_says_what_it_does() {
        let kinds = READ | WRITE | ADMIN | CONNECTION | TRANSACTION | PUBSUB | SCRIPTING;
        for spec in COMMANDS {
            assert_ne!(of(spec) & kinds, 0, "{} has no kind", spec.name);
            assert_ne!(of(spec) & (FAST | SLOW), 0, "{} is neither fast nor slow", spec.name);
        }
    }

    #[test]
    fn data_commands_belong_to_their_type() {
        let cat = |name: &str| of(lookup(name.as_bytes()).unwrap());
        assert_eq!(cat("hset") & (HASH | WRITE), HASH | WRITE);
        assert_eq!(cat("set") & (STRING | SET), STRING, "SET is a string command");
        assert_eq!(cat("blpop") & (LIST | BLOCKING), LIST | BLOCKING);
        assert_eq!(cat("keys") & (KEYSPACE | DANGEROUS), KEYSPACE | DANGEROUS);
        assert_eq!(cat("session.get") & SESSION, SESSION);
        assert_eq!(named("HASH"), Some(HASH));
        assert_eq!(named("nosuch"), None);
    }
}
