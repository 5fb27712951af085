//! A command checked against a user: the command (or `container|subcommand`), the keys it
//! names and the access it needs to them, and the channels it publishes or subscribes to.
//! Session commands name session ids, not keys: the user's session groups govern them.

use bytes::Bytes;
use sessiongrid_model::Reply;

use super::User;
use crate::redis::commands::{Spec, COMMANDS, CONTAINERS};

/// What a user may not do.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// The command, as `name` or `container|sub`.
    Command(String),
    Key(Bytes),
    Channel(Bytes),
}

impl Denied {
    /// `ACL LOG`'s reason and object.
    pub fn reason(&self) -> (&'static str, String) {
        match self {
            Denied::Command(name) => ("command", name.clone()),
            Denied::Key(k) => ("key", String::from_utf8_lossy(k).into_owned()),
            Denied::Channel(c) => ("channel", String::from_utf8_lossy(c).into_owned()),
        }
    }

    pub fn reply(&self) -> Reply {
        Reply::error(match self {
            Denied::Command(name) => {
                format!("NOPERM this user has no permissions to run the '{name}' command")
            }
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .into()
            }
            Denied::Channel(_) => "NOPERM this user has no permissions to access one of the \
                                   channels used as arguments"
                .into(),
        })
    }
}

/// Whether `user` may run command `index` of [`COMMANDS`] with `args` (the name first).
pub fn check(user: &User, index: usize, args: &[Bytes]) -> Result<(), Denied> {
    let spec = &COMMANDS[index];
    let sub = CONTAINERS
        .contains(&spec.name)
        .then(|| args.get(1).map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()))
        .flatten();
    if !user.may_run(index, sub.as_deref()) {
        return Err(Denied::Command(match sub {
            Some(sub) => format!("{}|{sub}", spec.name),
            None => spec.name.to_string(),
        }));
    }
    for (key, access) in keys(spec, args) {
        let read = !matches!(access, Access::Write) && !user.may_access_key(key, false);
        let write = !matches!(access, Access::Read) && !user.may_access_key(key, true);
        if read || write {
            return Err(Denied::Key(key.clone()));
        }
    }
    let (channels, literal) = match spec.name {
        "publish" => (args.get(1..2).unwrap_or_default(), false),
        "subscribe" => (args.get(1..).unwrap_or_default(), false),
        "psubscribe" => (args.get(1..).unwrap_or_default(), true),
        _ => (&[][..], false),
    };
    match channels.iter().find(|c| !user.may_use_channel(c, literal)) {
        Some(c) => Err(Denied::Channel(c.clone())),
        None => Ok(()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

/// The keys a command names, with the access it needs to each.
pub fn keys<'a>(spec: &Spec, args: &'a [Bytes]) -> Vec<(&'a Bytes, Access)> {
    let writes = spec.flags.contains(&"write");
    let whole = if writes { Access::ReadWrite } else { Access::Read };
    let numkeys = |at: usize| -> &'a [Bytes] {
        let n = args.get(at).and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
        args.get(at + 1..).map_or(&[], |rest| &rest[..n.unwrap_or(0).min(rest.len())])
    };
    let with = |keys: &'a [Bytes], access: Access| keys.iter().map(move |k| (k, access));
    match spec.name {
        // Session ids are not keys: the user's session groups govern session commands.
        _ if spec.name.starts_with("session.") => Vec::new(),
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => {
            with(numkeys(2), whole).collect()
        }
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" => {
            with(numkeys(1), Access::Read).collect()
        }
        "lmpop" | "zmpop" => with(numkeys(1), whole).collect(),
        "blmpop" | "bzmpop" => with(numkeys(2), whole).collect(),
        "zunionstore" | "zinterstore" | "zdiffstore" => {
            let dest = args.get(1..2).unwrap_or_default();
            with(dest, Access::Write).chain(with(numkeys(2), Access::Read)).collect()
        }
        "sdiffstore" | "sinterstore" | "sunionstore" => {
            let dest = args.get(1..2).unwrap_or_default();
            with(dest, Access::Write)
                .chain(with(args.get(2..).unwrap_or_default(), Access::Read))
                .collect()
        }
        "copy" | "zrangestore" => {
            let (src, dest) =
                (args.get(1..2).unwrap_or_default(), args.get(2..3).unwrap_or_default());
            let (src, dest) = if spec.name == "copy" { (src, dest) } else { (dest, src) };
            with(src, Access::Read).chain(with(dest, Access::Write)).collect()
        }
        "sort" => {
            // The STORE destination: the last one given, which is the one SORT writes (and
            // where Redis' key spec looks, from the end).
            let store = (2..args.len().saturating_sub(1))
                .rev()
                .find(|&i| args[i].eq_ignore_ascii_case(b"store"))
                .map(|i| &args[i + 1..i + 2]);
            let source = args.get(1..2).unwrap_or_default();
            with(source, Access::Read)
                .chain(with(store.unwrap_or_default(), Access::Write))
                .collect()
        }
        _ => positions(spec, args.len()).map(|i| (&args[i], whole)).collect(),
    }
}

/// The positions of the keys a command's (first, last, step) names.
fn positions(spec: &Spec, argc: usize) -> impl Iterator<Item = usize> {
    let (first, last, step) = spec.keys;
    let last = if last < 0 { argc as i32 + last } else { last };
    let (first, step) = (first.max(1) as usize, step.max(1) as usize);
    let range = if spec.keys.0 == 0 { 0..0 } else { first..(last + 1).max(0) as usize };
    range.step_by(step).filter(move |&i| i < argc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::commands::{lookup, position};

    fn args(line: &str) -> Vec<Bytes> {
        line.split_whitespace().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    fn names(line: &str) -> Vec<(String, Access)> {
        let a = args(line);
        let spec = lookup(&a[0]).unwrap();
        keys(spec, &a).into_iter().map(|(k, x)| (String::from_utf8_lossy(k).into(), x)).collect()
    }

    #[test]
    fn the_keys_of_a_command_are_found() {
        use Access::*;
        assert_eq!(names("get k"), vec![("k".into(), Read)]);
        assert_eq!(names("mset a 1 b 2"), vec![("a".into(), ReadWrite), ("b".into(), ReadWrite)]);
        assert_eq!(names("blpop a b 0"), vec![("a".into(), ReadWrite), ("b".into(), ReadWrite)]);
        assert_eq!(names("eval s 1 k arg"), vec![("k".into(), Read)]);
        assert_eq!(
            names("zunionstore d 2 a b w"),
            vec![("d".into(), Write), ("a".into(), Read), ("b".into(), Read)]
        );
        assert_eq!(names("copy s d"), vec![("s".into(), Read), ("d".into(), Write)]);
        assert_eq!(
            names("sort s limit 0 1 STORE d"),
            vec![("s".into(), Read), ("d".into(), Write)]
        );
        assert_eq!(names("sort s by w_*"), vec![("s".into(), Read)]);
        assert_eq!(
            names("sort s store a store b STORE d"),
            vec![("s".into(), Read), ("d".into(), Write)]
        );
        assert_eq!(names("sort_ro s"), vec![("s".into(), Read)]);
        assert_eq!(names("eval s 99 k"), vec![("k".into(), Read)], "numkeys past the end");
        assert_eq!(names("ping"), vec![]);
        assert_eq!(names("session.get id"), vec![]);
    }

    #[test]
    fn a_user_is_held_to_its_rules() {
        let mut u = User::new("shop");
        for rule in ["on", "~shop:*", "&shop:*", "+@all", "-flushall"] {
            u.apply(rule.as_bytes()).unwrap();
        }
        let run = |line: &str| {
            let a = args(line);
            check(&u, position(&a[0]).unwrap(), &a)
        };
        assert_eq!(run("set shop:1 v"), Ok(()));
        assert_eq!(run("set bank:1 v"), Err(Denied::Key(Bytes::from_static(b"bank:1"))));
        assert_eq!(
            run("sort shop:l store bank:l"),
            Err(Denied::Key(Bytes::from_static(b"bank:l")))
        );
        assert!(!u.may_read_every_key(), "so SORT's BY and GET patterns are refused");
        assert_eq!(run("flushall"), Err(Denied::Command("flushall".into())));
        assert_eq!(run("publish bank:x m"), Err(Denied::Channel(Bytes::from_static(b"bank:x"))));
        assert_eq!(run("subscribe shop:orders"), Ok(()));
        assert!(run("psubscribe shop:o*").is_err(), "a pattern must be one of the user's");
        assert_eq!(run("psubscribe shop:*"), Ok(()));
        assert_eq!(
            Denied::Command("config|get".into()).reply(),
            Reply::error("NOPERM this user has no permissions to run the 'config|get' command")
        );
    }
}
