//! `SORT` and `SORT_RO`: the elements of a list, set or sorted set, ordered by themselves or by
//! weights read from other keys (`BY`), with the values of other keys fetched for each (`GET`),
//! answered or stored as a list (`STORE`).
//!
//! As in Redis 7.0, except in two ways:
//! - the keys it reads may live in any partition, so it reads them one by one and is not atomic
//!   over them (as `MSET` is not); `BY` and `GET` patterns work on a cluster too;
//! - a set "sorted" by a constant (`BY nosort`) comes in byte order, as Redis gives it only in
//!   scripts and with `STORE` (elsewhere in its hash table's order, which nobody can rely on).

use std::cmp::Ordering;

use bytes::Bytes;
use sessiongrid_model::list::List;
use sessiongrid_model::num::strtod;
use sessiongrid_model::{Entry, Op, Reply, Value};

use super::args::syntax_error;
use super::keys::{dump, overwrite};
use super::{CmdResult, Ctx};

/// What the arguments after the key ask for.
#[derive(Debug, Default, PartialEq)]
struct Options {
    /// The weights' pattern (it has a `*`).
    by: Option<Bytes>,
    /// `BY` a pattern without `*`: the elements keep their order.
    keep_order: bool,
    limit: Option<(i64, i64)>,
    gets: Vec<Bytes>,
    desc: bool,
    alpha: bool,
    store: Option<Bytes>,
}

impl Options {
    fn parse(args: &[Bytes], read_only: bool) -> Result<Options, Reply> {
        let is = |i: usize, word: &str| args[i].eq_ignore_ascii_case(word.as_bytes());
        let mut o = Options::default();
        let mut i = 0;
        while i < args.len() {
            let left = args.len() - i - 1;
            if is(i, "asc") {
                o.desc = false;
            } else if is(i, "desc") {
                o.desc = true;
            } else if is(i, "alpha") {
                o.alpha = true;
            } else if is(i, "limit") && left >= 2 {
                o.limit = Some((super::args::int(&args[i + 1])?, super::args::int(&args[i + 2])?));
                i += 2;
            } else if is(i, "store") && left >= 1 && !read_only {
                o.store = Some(args[i + 1].clone());
                i += 1;
            } else if is(i, "by") && left >= 1 {
                let pattern = &args[i + 1];
                o.keep_order = !pattern.contains(&b'*');
                o.by = (!o.keep_order).then(|| pattern.clone());
                i += 1;
            } else if is(i, "get") && left >= 1 {
                o.gets.push(args[i + 1].clone());
                i += 1;
            } else {
                return Err(syntax_error());
            }
            i += 1;
        }
        Ok(o)
    }

    /// True if the options read keys other than the sorted one.
    fn reads_other_keys(&self) -> bool {
        self.by.is_some() || self.gets.iter().any(|g| g.as_ref() != b"#")
    }

    /// The inclusive range of the sorted elements to answer, as Redis clamps `LIMIT`; empty if
    /// the end comes before the start.
    fn range(&self, len: usize) -> std::ops::Range<usize> {
        let (offset, count) = self.limit.unwrap_or((0, -1));
        let start = offset.max(0) as usize;
        if start >= len {
            return 0..0;
        }
        let end = if count < 0 { len } else { start.saturating_add(count as usize).min(len) };
        start..end
    }
}

/// The key `pattern` names for `element` and the hash field it reads, if any (`*` replaced by
/// the element, `->field` after it), or `None` for a pattern without `*`. `#` is the element.
fn lookup_of(pattern: &[u8], element: &[u8]) -> Option<(Bytes, Option<Bytes>)> {
    let star = pattern.iter().position(|b| *b == b'*')?;
    let after = &pattern[star + 1..];
    let arrow = after.windows(2).position(|w| w == b"->").filter(|a| a + 2 < after.len());
    let (postfix, field) = match arrow {
        Some(a) => (&after[..a], Some(Bytes::copy_from_slice(&after[a + 2..]))),
        None => (after, None),
    };
    let key = [&pattern[..star], element, postfix].concat();
    Some((key.into(), field))
}

/// What `pattern` reads for `element`: the element itself for `#`, a string key's value or a
/// hash's field; `None` if the key is missing or of another type.
async fn lookup(ctx: &Ctx<'_>, pattern: &[u8], element: &Bytes) -> Result<Option<Bytes>, Reply> {
    if pattern == b"#" {
        return Ok(Some(element.clone()));
    }
    let Some((key, field)) = lookup_of(pattern, element) else { return Ok(None) };
    let op = match field {
        Some(field) => Op::HGet { field },
        None => Op::Get,
    };
    Ok(match ctx.exec(key, op).await? {
        Reply::Bulk(value) => Some(value),
        _ => None,
    })
}

/// The sorted key's elements in their own order, and whether it is a set; `None` if it holds
/// another type.
fn elements(entry: Option<Entry>) -> Option<(Vec<Bytes>, bool)> {
    Some(match entry.map(|e| e.value) {
        None => (Vec::new(), false),
        Some(Value::List(list)) => (list.iter().cloned().collect(), false),
        Some(Value::Set(set)) => (set.into_iter().collect(), true),
        Some(Value::Zset(zset)) => (zset.iter().map(|(m, _)| m.clone()).collect(), false),
        Some(_) => return None,
    })
}

/// A weight: a number, or (with `ALPHA`) bytes; `None` sorts first.
enum Weight {
    Number(f64),
    Bytes(Option<Bytes>),
}

/// Orders elements as Redis' `sortCompare`: by number, ties by the elements' bytes; or by the
/// weights' bytes (a missing one first); or by the elements' bytes.
fn compare(a: &(Bytes, Weight), b: &(Bytes, Weight)) -> Ordering {
    match (&a.1, &b.1) {
        (Weight::Number(x), Weight::Number(y)) => {
            x.partial_cmp(y).unwrap_or(Ordering::Equal).then_with(|| a.0.cmp(&b.0))
        }
        (Weight::Bytes(x), Weight::Bytes(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// A number as `SORT` reads one: the whole text through `strtod`, not NaN, no overflow.
fn number(text: &[u8]) -> Option<f64> {
    let (value, used, range_error) = strtod(text);
    (used == text.len() && !range_error && !value.is_nan()).then_some(value)
}

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE
/// destination]`, and `SORT_RO` (no `STORE`).
pub async fn sort(ctx: &mut Ctx<'_>, read_only: bool) -> CmdResult {
    let key = ctx.args.get(1).clone();
    let mut o = Options::parse(ctx.args.from(2), read_only)?;
    if o.reads_other_keys() && !ctx.client.user.may_read_every_key() {
        let option = if o.by.is_some() { "BY" } else { "GET" };
        return Err(Reply::error(format!(
            "ERR {option} option of SORT denied due to insufficient ACL permissions."
        )));
    }
    let Some((mut items, is_set)) = elements(dump(ctx, &key).await?) else {
        return Err(Reply::wrong_type());
    };
    if o.keep_order && is_set {
        // A set has no order of its own to keep: byte order, as Redis gives in scripts.
        (o.keep_order, o.alpha, o.by) = (false, true, None);
    }
    let sorted = if o.keep_order {
        // A list's or sorted set's own order, from its end for DESC.
        if o.desc {
            items.reverse();
        }
        items
    } else {
        let mut weighed = Vec::with_capacity(items.len());
        let mut unreadable = false;
        for item in items {
            let value = match &o.by {
                Some(pattern) => lookup(ctx, pattern, &item).await?,
                None => Some(item.clone()),
            };
            let weight = if o.alpha {
                Weight::Bytes(value)
            } else {
                let n = value.as_deref().map_or(Some(0.0), number);
                unreadable |= n.is_none();
                Weight::Number(n.unwrap_or(0.0))
            };
            weighed.push((item, weight));
        }
        if unreadable {
            return Err(Reply::error("ERR One or more scores can't be converted into double"));
        }
        weighed.sort_by(|a, b| if o.desc { compare(b, a) } else { compare(a, b) });
        weighed.into_iter().map(|(item, _)| item).collect()
    };
    let range = o.range(sorted.len());
    let mut out: Vec<Option<Bytes>> = Vec::new();
    for item in &sorted[range] {
        if o.gets.is_empty() {
            out.push(Some(item.clone()));
        }
        for pattern in &o.gets {
            out.push(lookup(ctx, pattern, item).await?);
        }
    }
    let Some(store) = o.store else {
        let reply = |v: Option<Bytes>| v.map_or(Reply::Nil, Reply::Bulk);
        return Ok(Reply::Array(out.into_iter().map(reply).collect()));
    };
    let stored = out.len();
    let list: List = out.into_iter().map(Option::unwrap_or_default).collect();
    overwrite(ctx, store, (stored > 0).then_some(Value::List(list))).await?;
    Ok(Reply::Int(stored as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    #[test]
    fn options_parse_in_any_order_and_refuse_what_they_do_not_know() {
        let o = Options::parse(&args(&["by", "w_*", "LIMIT", "1", "2", "get", "#", "DESC"]), false);
        let o = o.unwrap();
        assert_eq!(
            (o.by.as_deref(), o.limit, o.desc, o.alpha),
            (Some(&b"w_*"[..]), Some((1, 2)), true, false)
        );
        assert_eq!(o.gets, args(&["#"]));
        assert!(o.reads_other_keys(), "BY w_* reads other keys");
        let keep = Options::parse(&args(&["BY", "nosort", "ALPHA", "ASC"]), false).unwrap();
        assert!(keep.keep_order && keep.by.is_none() && keep.alpha && !keep.desc);
        assert!(!keep.reads_other_keys());
        for bad in [&["LIMIT", "1"][..], &["FOO"], &["STORE"], &["LIMIT", "x", "1"], &["GET"]] {
            assert!(Options::parse(&args(bad), false).is_err(), "{bad:?}");
        }
        assert!(Options::parse(&args(&["STORE", "dst"]), true).is_err(), "not in SORT_RO");
    }

    #[test]
    fn limit_is_clamped_as_redis_clamps_it() {
        let range = |limit| Options { limit, ..Default::default() }.range(5);
        assert_eq!(range(None), 0..5);
        assert_eq!(range(Some((1, 2))), 1..3);
        assert_eq!(range(Some((-3, 2))), 0..2);
        assert_eq!(range(Some((2, -1))), 2..5);
        assert_eq!(range(Some((4, 10))), 4..5);
        assert_eq!(range(Some((5, 1))), 0..0);
        assert_eq!(range(Some((1, 0))), 1..1);
        assert_eq!(Options::default().range(0), 0..0);
    }

    #[test]
    fn patterns_name_a_key_and_maybe_a_field() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        assert_eq!(lookup_of(b"w_*", b"3"), Some((b("w_3"), None)));
        assert_eq!(lookup_of(b"o_*_x->name", b"7"), Some((b("o_7_x"), Some(b("name")))));
        assert_eq!(lookup_of(b"o_*->", b"7"), Some((b("o_7->"), None)), "an empty field is none");
        assert_eq!(lookup_of(b"a->b*", b"7"), Some((b("a->b7"), None)), "the arrow must follow *");
        assert_eq!(lookup_of(b"fixed", b"7"), None);
    }

    #[test]
    fn numbers_tie_by_element_and_alpha_puts_missing_weights_first() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let mut v = [
            (b("b"), Weight::Number(1.0)),
            (b("a"), Weight::Number(1.0)),
            (b("c"), Weight::Number(f64::NEG_INFINITY)),
        ];
        v.sort_by(compare);
        assert_eq!(v.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(), [b("c"), b("a"), b("b")]);
        let mut w = [(b("x"), Weight::Bytes(Some(b("2")))), (b("y"), Weight::Bytes(None))];
        w.sort_by(compare);
        assert_eq!(w[0].0, b("y"));
        assert_eq!(
            (number(b"1.5"), number(b" 2"), number(b"x"), number(b"nan")),
            (Some(1.5), Some(2.0), None, None)
        );
        assert_eq!(number(b""), Some(0.0), "strtod reads nothing and stops at the end");
    }
}
