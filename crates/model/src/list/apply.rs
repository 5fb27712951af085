//! The Redis semantics of [`ListOp`]s. A push, pop, `LSET` or `LTRIM` reports the positions it
//! wrote, in the order it wrote them (see [`super::List`]: a copy replays them one by one); an
//! operation that rearranges the middle (`LINSERT`, `LREM`, a rotation) reports
//! [`Change::Whole`]. An emptied list is deleted, as Redis deletes empty keys.

use bytes::Bytes;

use super::op::{End, ListOp};
use super::List;
use crate::delta::Change;
use crate::entry::{Entry, Value};
use crate::reply::{Reply, NOT_INTEGER};

pub fn apply(op: ListOp, slot: &mut Option<Entry>) -> (Reply, Change) {
    let list = match slot {
        None => None,
        Some(Entry { value: Value::List(l), .. }) => Some(l),
        Some(_) => return (Reply::wrong_type(), Change::Nothing),
    };
    let Some(list) = list else { return absent(op, slot) };
    let (reply, change) = match op {
        ListOp::Push { items, end, .. } => {
            let names = items.into_iter().map(|item| push(list, end, item)).collect();
            (Reply::Int(list.len() as i64), Change::Fields(names))
        }
        ListOp::Pop { end, count } => pop(list, end, count),
        ListOp::Range { start, stop } => (range(list, start, stop), Change::Nothing),
        ListOp::Index { index: None } | ListOp::Set { index: None, .. } => {
            (Reply::error(NOT_INTEGER), Change::Nothing)
        }
        ListOp::Index { index: Some(index) } => {
            let item = resolve_index(list.len(), index).and_then(|i| list.get(i));
            (item.map_or(Reply::Nil, |v| Reply::Bulk(v.clone())), Change::Nothing)
        }
        ListOp::Set { index: Some(index), item } => {
            match resolve_index(list.len(), index).and_then(|i| list.set(i, item)) {
                Some(name) => (Reply::Ok, Change::Fields(vec![name])),
                None => (Reply::error("ERR index out of range"), Change::Nothing),
            }
        }
        ListOp::Rem { count, item } => rem(list, count, &item),
        ListOp::Trim { start, stop } => (Reply::Ok, trim(list, start, stop)),
        ListOp::Insert { after, pivot, item } => insert(list, after, &pivot, item),
        ListOp::Pos { item, rank, count, maxlen } => {
            (pos(list, &item, rank, count, maxlen), Change::Nothing)
        }
        ListOp::Rotate { from, to } => match take(list, from) {
            Some((item, _)) => {
                push(list, to, item.clone());
                (Reply::Bulk(item), Change::Whole)
            }
            None => (Reply::Nil, Change::Nothing),
        },
        ListOp::Len => (Reply::Int(list.len() as i64), Change::Nothing),
    };
    if list.is_empty() {
        *slot = None;
    }
    (reply, change)
}

/// An operation on a key that holds nothing: what Redis answers for a missing key, and the new
/// list a plain push creates.
fn absent(op: ListOp, slot: &mut Option<Entry>) -> (Reply, Change) {
    let reply = match op {
        ListOp::Push { items, end, only_if_exists: false } => {
            let mut list = List::default();
            for item in items {
                push(&mut list, end, item);
            }
            let reply = Reply::Int(list.len() as i64);
            *slot = Some(Entry::new(Value::List(list)));
            return (reply, Change::Whole);
        }
        ListOp::Push { only_if_exists: true, .. }
        | ListOp::Rem { .. }
        | ListOp::Insert { .. }
        | ListOp::Len => Reply::Int(0),
        ListOp::Pop { count: None, .. } | ListOp::Index { .. } | ListOp::Rotate { .. } => {
            Reply::Nil
        }
        ListOp::Pop { count: Some(_), .. } => Reply::NilArray,
        ListOp::Range { .. } => Reply::Array(Vec::new()),
        ListOp::Set { .. } => Reply::error("ERR no such key"),
        ListOp::Trim { .. } => Reply::Ok,
        ListOp::Pos { count: Some(_), .. } => Reply::Array(Vec::new()),
        ListOp::Pos { count: None, .. } => Reply::Nil,
    };
    (reply, Change::Nothing)
}

/// Pushes `item` at `end`; returns the field it wrote.
fn push(list: &mut List, end: End, item: Bytes) -> Bytes {
    match end {
        End::Left => list.push_front(item),
        End::Right => list.push_back(item),
    }
}

/// Pops the element at `end`, with the field it removed.
fn take(list: &mut List, end: End) -> Option<(Bytes, Bytes)> {
    match end {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    }
}

/// `LPOP`/`RPOP` on a list: one element as a bulk string, or up to `count` in the order popped.
fn pop(list: &mut List, end: End, count: Option<u64>) -> (Reply, Change) {
    let wanted = count.unwrap_or(1).min(list.len() as u64);
    let mut items = Vec::with_capacity(wanted as usize);
    let mut names = Vec::with_capacity(wanted as usize);
    for _ in 0..wanted {
        let Some((item, name)) = take(list, end) else { break };
        items.push(Reply::Bulk(item));
        names.push(name);
    }
    let reply = match count {
        None => items.pop().unwrap_or(Reply::Nil),
        Some(_) => Reply::Array(items),
    };
    let change = if names.is_empty() { Change::Nothing } else { Change::Fields(names) };
    (reply, change)
}

/// The position of `index` (negative: from the end) in a list of `len`, if inside it.
fn resolve_index(len: usize, index: i64) -> Option<usize> {
    let at = if index < 0 { (len as i64).checked_add(index)? } else { index };
    usize::try_from(at).ok().filter(|&i| i < len)
}

/// The first and last positions from `start` to `stop` (negative: from the end) in a list of
/// `len`, clamped as Redis does; `None` if the range holds nothing.
fn resolve_range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

fn range(list: &List, start: i64, stop: i64) -> Reply {
    let Some((first, last)) = resolve_range(list.len(), start, stop) else {
        return Reply::Array(Vec::new());
    };
    let items = list.iter().skip(first).take(last - first + 1);
    Reply::Array(items.cloned().map(Reply::Bulk).collect())
}

/// `LTRIM`: pops what lies before the range, then what lies after it, so the change is rows a
/// copy can replay.
fn trim(list: &mut List, start: i64, stop: i64) -> Change {
    let len = list.len();
    let (before, after) = match resolve_range(len, start, stop) {
        Some((first, last)) => (first, len - 1 - last),
        None => (len, 0),
    };
    let front = (0..before).filter_map(|_| list.pop_front());
    let mut names: Vec<Bytes> = front.map(|(_, name)| name).collect();
    names.extend((0..after).filter_map(|_| list.pop_back()).map(|(_, name)| name));
    if names.is_empty() {
        Change::Nothing
    } else {
        Change::Fields(names)
    }
}

/// `LREM`: removes matching elements from the head (`count` > 0), the tail (< 0) or all (0).
fn rem(list: &mut List, count: i64, item: &[u8]) -> (Reply, Change) {
    let limit = if count == 0 { u64::MAX } else { count.unsigned_abs() };
    let mut removed = 0u64;
    list.retain(count < 0, |candidate| {
        let remove = removed < limit && candidate == item;
        removed += u64::from(remove);
        !remove
    });
    if removed == 0 {
        return (Reply::Int(0), Change::Nothing);
    }
    (Reply::Int(removed as i64), Change::Whole)
}

/// `LINSERT`: the new length, or -1 if no element equals `pivot`.
fn insert(list: &mut List, after: bool, pivot: &[u8], item: Bytes) -> (Reply, Change) {
    let Some(at) = list.iter().position(|v| v == pivot) else {
        return (Reply::Int(-1), Change::Nothing);
    };
    list.insert(at + usize::from(after), item);
    (Reply::Int(list.len() as i64), Change::Whole)
}

/// `LPOS`, including what Redis does with `RANK -9223372036854775808` (negating it leaves it
/// negative, so every match counts) by using the same wrapping arithmetic.
fn pos(list: &List, item: &[u8], rank: i64, count: Option<i64>, maxlen: i64) -> Reply {
    let from_tail = rank < 0;
    let rank = if from_tail { rank.wrapping_neg() } else { rank };
    let len = list.len() as i64;
    let ordered: Box<dyn Iterator<Item = &Bytes>> =
        if from_tail { Box::new(list.iter().rev()) } else { Box::new(list.iter()) };
    let mut matches: i64 = 0;
    let mut found = Vec::new();
    for (index, candidate) in (0i64..).zip(ordered) {
        if maxlen != 0 && index >= maxlen {
            break;
        }
        if candidate != item {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        found.push(if from_tail { len - index - 1 } else { index });
        let enough = match count {
            None => true,
            Some(count) => count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count,
        };
        if enough {
            break;
        }
    }
    match count {
        Some(_) => Reply::Array(found.into_iter().map(Reply::Int).collect()),
        None => found.first().map_or(Reply::Nil, |&i| Reply::Int(i)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::apply as apply_op;
    use crate::delta::Delta;
    use crate::Op;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn bulks(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(|s| Reply::Bulk(b(s))).collect())
    }

    fn run(op: ListOp, slot: &mut Option<Entry>) -> (Reply, Change) {
        let out = apply_op(Op::Lists(op), slot, 1);
        (out.reply, out.change)
    }

    fn rpush(items: &[&str]) -> ListOp {
        ListOp::Push {
            items: items.iter().map(|s| b(s)).collect(),
            end: End::Right,
            only_if_exists: false,
        }
    }

    fn all(slot: &mut Option<Entry>) -> Reply {
        run(ListOp::Range { start: 0, stop: -1 }, slot).0
    }

    /// Runs `op` on `slot` and replays its change onto `copy` as a follower would; both must
    /// then hold the same list.
    fn run_replayed(op: ListOp, slot: &mut Option<Entry>, copy: &mut Option<Entry>) -> Change {
        let (_, change) = run(op, slot);
        let delta = Delta::of(slot.clone(), &change);
        assert!(delta.patch(copy).is_some(), "{change:?} replays");
        assert_eq!(copy, slot, "after {change:?}");
        change
    }

    #[test]
    fn pushes_reply_the_length_and_lpush_reverses_its_arguments() {
        let mut slot = None;
        assert_eq!(run(rpush(&["a", "b"]), &mut slot), (Reply::Int(2), Change::Whole));
        let lpush =
            ListOp::Push { items: vec![b("x"), b("y")], end: End::Left, only_if_exists: false };
        assert_eq!(run(lpush, &mut slot).0, Reply::Int(4));
        assert_eq!(all(&mut slot), bulks(&["y", "x", "a", "b"]));
        let mut none = None;
        let pushx = ListOp::Push { items: vec![b("x")], end: End::Left, only_if_exists: true };
        assert_eq!(run(pushx, &mut none), (Reply::Int(0), Change::Nothing));
        assert_eq!(none, None);
    }

    #[test]
    fn pops_answer_like_redis_for_counts_and_missing_keys() {
        let mut none = None;
        let pop = |count| ListOp::Pop { end: End::Right, count };
        assert_eq!(run(pop(None), &mut none).0, Reply::Nil);
        assert_eq!(run(pop(Some(0)), &mut none).0, Reply::NilArray);
        let mut slot = None;
        run(rpush(&["a", "b", "c"]), &mut slot);
        assert_eq!(run(pop(Some(0)), &mut slot), (Reply::Array(vec![]), Change::Nothing));
        assert_eq!(run(pop(Some(2)), &mut slot).0, bulks(&["c", "b"]));
        assert_eq!(run(pop(None), &mut slot), (Reply::Bulk(b("a")), Change::Whole));
        assert_eq!(slot, None, "an emptied list is deleted");
    }

    #[test]
    fn index_set_range_and_their_errors() {
        let mut slot = None;
        run(rpush(&["a", "b", "c"]), &mut slot);
        assert_eq!(run(ListOp::Index { index: Some(-1) }, &mut slot).0, Reply::Bulk(b("c")));
        assert_eq!(run(ListOp::Index { index: Some(3) }, &mut slot).0, Reply::Nil);
        assert_eq!(run(ListOp::Index { index: Some(i64::MIN) }, &mut slot).0, Reply::Nil);
        assert_eq!(run(ListOp::Index { index: None }, &mut slot).0, Reply::error(NOT_INTEGER));
        let set = |index, item: &str| ListOp::Set { index, item: b(item) };
        assert_eq!(run(set(Some(5), "x"), &mut slot).0, Reply::error("ERR index out of range"));
        assert_eq!(run(set(None, "x"), &mut None).0, Reply::error("ERR no such key"));
        assert_eq!(run(set(Some(-3), "A"), &mut slot).0, Reply::Ok);
        assert_eq!(
            run(ListOp::Range { start: -100, stop: 100 }, &mut slot).0,
            bulks(&["A", "b", "c"])
        );
        assert_eq!(run(ListOp::Range { start: 2, stop: 1 }, &mut slot).0, bulks(&[]));
        assert_eq!(
            run(ListOp::Range { start: i64::MIN, stop: i64::MAX }, &mut slot).0.clone(),
            bulks(&["A", "b", "c"])
        );
    }

    #[test]
    fn rem_insert_and_trim() {
        let mut slot = None;
        run(rpush(&["a", "x", "b", "x", "c", "x"]), &mut slot);
        let rem = |count, item: &str| ListOp::Rem { count, item: b(item) };
        assert_eq!(run(rem(-2, "x"), &mut slot), (Reply::Int(2), Change::Whole));
        assert_eq!(all(&mut slot), bulks(&["a", "x", "b", "c"]));
        assert_eq!(run(rem(0, "zz"), &mut slot), (Reply::Int(0), Change::Nothing));
        let insert = |after, pivot: &str| ListOp::Insert { after, pivot: b(pivot), item: b("N") };
        assert_eq!(run(insert(true, "c"), &mut slot).0, Reply::Int(5));
        assert_eq!(run(insert(false, "a"), &mut slot).0, Reply::Int(6));
        assert_eq!(run(insert(false, "none"), &mut slot), (Reply::Int(-1), Change::Nothing));
        assert_eq!(run(insert(false, "a"), &mut None).0, Reply::Int(0));
        assert_eq!(all(&mut slot), bulks(&["N", "a", "x", "b", "c", "N"]));
        assert_eq!(run(ListOp::Trim { start: 1, stop: -2 }, &mut slot).0, Reply::Ok);
        assert_eq!(all(&mut slot), bulks(&["a", "x", "b", "c"]));
        assert_eq!(run(ListOp::Trim { start: 5, stop: 9 }, &mut slot), (Reply::Ok, Change::Whole));
        assert_eq!(slot, None);
    }

    #[test]
    fn lpos_ranks_counts_and_maxlen() {
        let mut slot = None;
        run(rpush(&["a", "b", "c", "1", "2", "3", "c", "c"]), &mut slot);
        let lpos = |rank, count, maxlen| ListOp::Pos { item: b("c"), rank, count, maxlen };
        let ints = |v: &[i64]| Reply::Array(v.iter().map(|&i| Reply::Int(i)).collect());
        assert_eq!(run(lpos(1, None, 0), &mut slot).0, Reply::Int(2));
        assert_eq!(run(lpos(2, None, 0), &mut slot).0, Reply::Int(6));
        assert_eq!(run(lpos(-1, None, 0), &mut slot).0, Reply::Int(7));
        assert_eq!(run(lpos(1, Some(0), 0), &mut slot).0, ints(&[2, 6, 7]));
        assert_eq!(run(lpos(2, Some(1), 0), &mut slot).0, ints(&[6]));
        assert_eq!(run(lpos(-2, Some(0), 0), &mut slot).0, ints(&[6, 2]));
        assert_eq!(run(lpos(1, Some(0), 7), &mut slot).0, ints(&[2, 6]));
        assert_eq!(run(lpos(9, None, 0), &mut slot).0, Reply::Nil);
        assert_eq!(run(lpos(i64::MIN, Some(2), 0), &mut slot).0, ints(&[7, 6, 2]));
        assert_eq!(run(lpos(1, Some(1), 0), &mut None).0, ints(&[]));
    }

    #[test]
    fn rotation_moves_an_element_within_one_list() {
        let mut slot = None;
        run(rpush(&["a", "b", "c"]), &mut slot);
        let rotate = ListOp::Rotate { from: End::Right, to: End::Left };
        assert_eq!(run(rotate.clone(), &mut slot), (Reply::Bulk(b("c")), Change::Whole));
        assert_eq!(all(&mut slot), bulks(&["c", "a", "b"]));
        assert_eq!(run(rotate, &mut None).0, Reply::Nil);
    }

    #[test]
    fn a_string_is_the_wrong_type() {
        let mut slot = Some(Entry::new(Value::Str(b("s"))));
        assert_eq!(run(ListOp::Len, &mut slot).0, Reply::wrong_type());
        assert_eq!(run(rpush(&["x"]), &mut slot).0, Reply::wrong_type());
    }

    #[test]
    fn the_rows_of_every_field_write_replay_onto_a_copy() {
        let mut slot = None;
        run(rpush(&["m", "n"]), &mut slot);
        let mut copy = slot.clone();
        let lpush = ListOp::Push {
            items: vec![b("a"), b("b"), b("c")],
            end: End::Left,
            only_if_exists: false,
        };
        assert!(
            matches!(run_replayed(lpush, &mut slot, &mut copy), Change::Fields(n) if n.len() == 3)
        );
        run_replayed(rpush(&["y", "z"]), &mut slot, &mut copy);
        run_replayed(ListOp::Pop { end: End::Left, count: Some(2) }, &mut slot, &mut copy);
        run_replayed(ListOp::Pop { end: End::Right, count: None }, &mut slot, &mut copy);
        run_replayed(ListOp::Set { index: Some(1), item: b("N") }, &mut slot, &mut copy);
        run_replayed(ListOp::Set { index: Some(-1), item: b("Y") }, &mut slot, &mut copy);
        run_replayed(rpush(&["1", "2", "3", "4"]), &mut slot, &mut copy);
        let trim = run_replayed(ListOp::Trim { start: 1, stop: -3 }, &mut slot, &mut copy);
        assert!(matches!(trim, Change::Fields(n) if n.len() == 3));
        assert_eq!(all(&mut slot), bulks(&["N", "n", "Y", "1", "2"]));
        let rotate = ListOp::Rotate { from: End::Left, to: End::Right };
        assert_eq!(run_replayed(rotate, &mut slot, &mut copy), Change::Whole);
        run_replayed(ListOp::Pop { end: End::Left, count: Some(1) }, &mut slot, &mut copy);
        assert_eq!(all(&mut copy), bulks(&["Y", "1", "2", "N"]));
    }
}
