//! Keyspace notifications: which classes of events a node publishes
//! (`notify-keyspace-events`), and the event each write makes, named as Redis names them.
//!
//! A write's events are published on `__keyspace@0__:<key>` (the event name as message) and
//! `__keyevent@0__:<event>` (the key as message) by the node that applied it, to subscribers of
//! every node.

use bytes::Bytes;

use crate::op::{ExpiryChange, Op};
use crate::set::op::SetOp;

/// The classes of events a node publishes, as Redis' `notify-keyspace-events` flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(pub u16);

/// One class of events (a flag of [`Flags`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Generic,
    String,
    List,
    Set,
    Hash,
    Zset,
    Expired,
    Evicted,
    /// A key created (`n`, not part of `A`).
    New,
}

const KEYSPACE: u16 = 1;
const KEYEVENT: u16 = 1 << 1;
const KEY_MISS: u16 = 1 << 11;
const NEW: u16 = 1 << 14;
/// Every class `A` stands for (streams and modules included, which the grid never publishes).
const ALL: u16 = 0b10_0111_1111_1100;
/// The letters of the classes `A` stands for, in Redis' order, with their bits.
const LETTERS: [(char, u16); 10] = [
    ('g', 1 << 2),
    ('$', 1 << 3),
    ('l', 1 << 4),
    ('s', 1 << 5),
    ('h', 1 << 6),
    ('z', 1 << 7),
    ('x', 1 << 8),
    ('e', 1 << 9),
    ('t', 1 << 10),
    ('d', 1 << 13),
];

impl Class {
    fn bit(self) -> u16 {
        match self {
            Class::Generic => 1 << 2,
            Class::String => 1 << 3,
            Class::List => 1 << 4,
            Class::Set => 1 << 5,
            Class::Hash => 1 << 6,
            Class::Zset => 1 << 7,
            Class::Expired => 1 << 8,
            Class::Evicted => 1 << 9,
            Class::New => NEW,
        }
    }
}

impl Flags {
    /// Parses Redis' class letters; `None` if one is not a class.
    pub fn parse(text: &[u8]) -> Option<Flags> {
        let mut bits = 0;
        for &c in text {
            bits |= match c {
                b'A' => ALL,
                b'K' => KEYSPACE,
                b'E' => KEYEVENT,
                b'm' => KEY_MISS,
                b'n' => NEW,
                c => LETTERS.iter().find(|(l, _)| *l == c as char)?.1,
            };
        }
        Some(Flags(bits))
    }

    /// The flags as Redis prints them (`CONFIG GET`).
    pub fn text(self) -> String {
        let mut out = String::new();
        if self.0 & ALL == ALL {
            out.push('A');
        } else {
            out.extend(LETTERS.iter().filter(|(_, b)| self.0 & b != 0).map(|(l, _)| *l));
        }
        if self.0 & NEW != 0 && self.0 & ALL != ALL {
            out.push('n');
        }
        for (bit, letter) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
            if self.0 & bit != 0 {
                out.push(letter);
            }
        }
        out
    }

    /// Whether events of `class` are published at all.
    pub fn wants(self, class: Class) -> bool {
        self.0 & (KEYSPACE | KEYEVENT) != 0 && self.0 & class.bit() != 0
    }

    pub fn keyspace(self) -> bool {
        self.0 & KEYSPACE != 0
    }

    pub fn keyevent(self) -> bool {
        self.0 & KEYEVENT != 0
    }
}

/// One event of a write.
pub type Notice = (Class, &'static str);

/// The events of one write, in Redis' order (at most four: `expired`, `new`, the command's
/// and `expire`, or the command's and `del`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notices([Option<Notice>; 4]);

impl Notices {
    fn push(&mut self, notice: Notice) {
        if let Some(free) = self.0.iter_mut().find(|n| n.is_none()) {
            *free = Some(notice);
        }
    }

    /// A single event.
    pub fn one(class: Class, name: &'static str) -> Notices {
        let mut out = Notices::default();
        out.push((class, name));
        out
    }

    pub fn is_empty(&self) -> bool {
        self.0[0].is_none()
    }

    pub fn iter(&self) -> impl Iterator<Item = Notice> + '_ {
        self.0.iter().flatten().copied()
    }
}

/// What an operation's events will be, taken before it runs (it is consumed by running).
#[derive(Clone, Copy, Debug)]
pub struct Named {
    /// Its events if the key is there after it, and if not.
    if_kept: [Option<Notice>; 2],
    if_gone: [Option<Notice>; 2],
    /// Whether it names a deletion itself (`DEL`, an `EXPIRE` in the past), so an emptied
    /// key needs no extra `del`.
    deletes: bool,
    silent: bool,
}

impl Named {
    pub fn of(op: &Op) -> Named {
        if matches!(op, Op::Session(_) | Op::Merge(_) | Op::Restore { .. } | Op::DelIf { .. }) {
            // Not Redis commands of their own: sessions and merges make no keyspace events,
            // and the door names those of the commands it builds from restores.
            return Named { if_kept: [None; 2], if_gone: [None; 2], deletes: true, silent: true };
        }
        Named {
            if_kept: of_op(op, true),
            if_gone: of_op(op, false),
            deletes: matches!(op, Op::Del | Op::GetDel | Op::Expire { .. }),
            silent: false,
        }
    }

    /// The events of the write that ran: `existed` and `exists` tell whether the key was there
    /// before and after, `expired` whether it was found expired (and so removed first).
    pub fn events(self, existed: bool, exists: bool, expired: bool) -> Notices {
        let mut out = Notices::default();
        if expired {
            out.push((Class::Expired, "expired"));
        }
        if self.silent {
            return out;
        }
        let existed = existed && !expired;
        if !existed && exists {
            out.push((Class::New, "new"));
        }
        let named = if exists { self.if_kept } else { self.if_gone };
        named.into_iter().flatten().for_each(|n| out.push(n));
        // A collection emptied by a removal is deleted, and says so.
        if existed && !exists && !self.deletes {
            out.push((Class::Generic, "del"));
        }
        out
    }
}

/// The events of an entry found past its deadline and deleted.
pub fn expired() -> Notices {
    let mut out = Notices::default();
    out.push((Class::Expired, "expired"));
    out
}

/// The events the operation itself names (`exists`: the key is there after it).
fn of_op(op: &Op, exists: bool) -> [Option<Notice>; 2] {
    let one = |class, name| [Some((class, name)), None];
    match op {
        Op::Set { expiry, .. } => {
            let expire =
                matches!(expiry, ExpiryChange::At(_)).then_some((Class::Generic, "expire"));
            [Some((Class::String, "set")), expire]
        }
        Op::SetNx { .. } => one(Class::String, "set"),
        Op::GetEx { expiry: ExpiryChange::At(_) } => one(Class::Generic, "expire"),
        Op::GetEx { expiry: ExpiryChange::Clear } => one(Class::Generic, "persist"),
        Op::IncrBy { .. } => one(Class::String, "incrby"),
        Op::IncrByFloat { .. } => one(Class::String, "incrbyfloat"),
        Op::Append { .. } => one(Class::String, "append"),
        Op::SetRange { .. } => one(Class::String, "setrange"),
        Op::SetBit { .. } => one(Class::String, "setbit"),
        Op::Del | Op::GetDel => one(Class::Generic, "del"),
        Op::Expire { .. } if exists => one(Class::Generic, "expire"),
        Op::Expire { .. } => one(Class::Generic, "del"),
        Op::Persist => one(Class::Generic, "persist"),
        Op::HSet { .. } => one(Class::Hash, "hset"),
        Op::HDel { .. } => one(Class::Hash, "hdel"),
        Op::HIncrBy { .. } => one(Class::Hash, "hincrby"),
        Op::HIncrByFloat { .. } => one(Class::Hash, "hincrbyfloat"),
        Op::Sets(SetOp::Add { .. }) => one(Class::Set, "sadd"),
        Op::Sets(SetOp::Rem { .. }) => one(Class::Set, "srem"),
        Op::Sets(SetOp::Pop { .. }) => one(Class::Set, "spop"),
        Op::Zsets(op) => op.event().map_or([None, None], |e| one(Class::Zset, e)),
        Op::Lists(op) => op.events().map(|e| e.map(|e| (Class::List, e))),
        // Composed commands (RENAME, COPY, SINTERSTORE...) name their own events in the door;
        // sessions and merges make none.
        _ => [None, None],
    }
}

/// The channel and message of `event` on `key`: (keyspace, keyevent).
pub fn channels(key: &[u8], event: &str) -> [(Bytes, Bytes); 2] {
    let (db, key) = crate::key::split_db(key);
    let keyspace = [format!("__keyspace@{db}__:").as_bytes(), key].concat();
    let keyevent = [format!("__keyevent@{db}__:").as_bytes(), event.as_bytes()].concat();
    [
        (keyspace.into(), Bytes::copy_from_slice(event.as_bytes())),
        (keyevent.into(), Bytes::copy_from_slice(key)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_and_print_as_redis_does() {
        for (given, printed) in
            [("", ""), ("KEA", "AKE"), ("Ex", "xE"), ("Kg$", "g$K"), ("An", "A"), ("nK", "nK")]
        {
            assert_eq!(Flags::parse(given.as_bytes()).unwrap().text(), printed, "{given}");
        }
        assert_eq!(Flags::parse(b"Kq"), None);
        let flags = Flags::parse(b"Eh").unwrap();
        assert!(flags.wants(Class::Hash) && !flags.wants(Class::Set));
        assert!(!Flags::parse(b"A").unwrap().wants(Class::Hash), "needs K or E");
    }

    #[test]
    fn a_write_names_its_events_in_order() {
        let set = Op::Set {
            value: Bytes::new(),
            cond: crate::SetCond::Always,
            expiry: ExpiryChange::At(5),
            get: false,
        };
        let names = |v: Notices| v.iter().map(|(_, n)| n).collect::<Vec<_>>();
        let events =
            |op: &Op, existed, exists, expired| Named::of(op).events(existed, exists, expired);
        assert_eq!(names(events(&set, true, true, true)), ["expired", "new", "set", "expire"]);
        let hdel = Op::HDel { fields: vec![] };
        assert_eq!(names(events(&hdel, true, false, false)), ["hdel", "del"]);
        assert_eq!(names(events(&Op::Del, true, false, false)), ["del"]);
        let past = Op::Expire { at_ms: 0, cond: crate::op::ExpireCond::Always };
        assert_eq!(names(events(&past, true, false, false)), ["del"]);
    }
}
