//! The Redis semantics of [`SetOp`]s. A write reports the members it changed; one that
//! creates or empties the set is made whole by [`crate::apply::apply`].

use bytes::Bytes;

use super::op::SetOp;
use super::{listed, Set};
use crate::delta::Change;
use crate::entry::{Entry, Value};
use crate::glob;
use crate::pick::Picker;
use crate::reply::Reply;

pub fn apply(op: SetOp, slot: &mut Option<Entry>) -> (Reply, Change) {
    let set = match slot {
        None => None,
        Some(Entry { value: Value::Set(s), .. }) => Some(s),
        Some(_) => return (Reply::wrong_type(), Change::Nothing),
    };
    let Some(set) = set else { return absent(op, slot) };
    let reply = match op {
        SetOp::Add { members } => {
            let added: Vec<Bytes> = members.into_iter().filter(|m| set.insert(m.clone())).collect();
            return (Reply::Int(added.len() as i64), fields(added));
        }
        SetOp::Rem { members } => {
            let removed: Vec<Bytes> = members.into_iter().filter(|m| set.swap_remove(m)).collect();
            let reply = Reply::Int(removed.len() as i64);
            if set.is_empty() {
                *slot = None;
            }
            return (reply, fields(removed));
        }
        SetOp::Pop { count, seed } => {
            let popped = pop(set, count, seed);
            if set.is_empty() {
                *slot = None;
            }
            return popped;
        }
        SetOp::Members => Reply::Set(listed(set).into_iter().map(Reply::Bulk).collect()),
        SetOp::IsMember { member } => Reply::Int(set.contains(&member) as i64),
        SetOp::MIsMember { members } => {
            Reply::Array(members.iter().map(|m| Reply::Int(set.contains(m) as i64)).collect())
        }
        SetOp::Card => Reply::Int(set.len() as i64),
        SetOp::RandMember { count, seed } => rand_members(set, count, seed),
        SetOp::Scan { pattern } => {
            let matching = listed(set)
                .into_iter()
                .filter(|m| pattern.as_ref().is_none_or(|p| glob::matches(p, m)))
                .map(Reply::Bulk);
            Reply::Array(vec![Reply::bulk(&b"0"[..]), Reply::Array(matching.collect())])
        }
    };
    (reply, Change::Nothing)
}

/// The change of a write that touched these members: nothing if none.
fn fields(members: Vec<Bytes>) -> Change {
    if members.is_empty() {
        Change::Nothing
    } else {
        Change::Fields(members)
    }
}

/// An operation on a key that holds nothing: an empty set, which `SADD` creates.
fn absent(op: SetOp, slot: &mut Option<Entry>) -> (Reply, Change) {
    let reply = match op {
        SetOp::Add { members } => {
            let set: Set = members.into_iter().collect();
            let reply = Reply::Int(set.len() as i64);
            *slot = Some(Entry::new(Value::Set(set)));
            return (reply, Change::Whole);
        }
        SetOp::Rem { .. } | SetOp::Card | SetOp::IsMember { .. } => Reply::Int(0),
        SetOp::Members => Reply::Set(Vec::new()),
        SetOp::MIsMember { members } => Reply::Array(vec![Reply::Int(0); members.len()]),
        SetOp::Pop { count: None, .. } | SetOp::RandMember { count: None, .. } => Reply::Nil,
        SetOp::Pop { count: Some(_), .. } => Reply::Set(Vec::new()),
        SetOp::RandMember { count: Some(_), .. } => Reply::Array(Vec::new()),
        SetOp::Scan { .. } => Reply::Array(vec![Reply::bulk(&b"0"[..]), Reply::Array(vec![])]),
    };
    (reply, Change::Nothing)
}

/// `SPOP`: removes and returns random members (all of them if `count` reaches the size).
fn pop(set: &mut Set, count: Option<u64>, seed: u64) -> (Reply, Change) {
    let wanted = count.unwrap_or(1).min(set.len() as u64) as usize;
    if wanted == set.len() && count.is_some() {
        let all = listed(set);
        set.clear();
        return (Reply::Set(all.into_iter().map(Reply::Bulk).collect()), Change::Whole);
    }
    let mut picker = Picker::new(seed);
    let mut popped = Vec::with_capacity(wanted);
    for _ in 0..wanted {
        let i = picker.below(set.len());
        popped.extend(set.swap_remove_index(i));
    }
    if popped.is_empty() {
        return (Reply::Set(Vec::new()), Change::Nothing);
    }
    let reply = match count {
        None => popped.first().cloned().map_or(Reply::Nil, Reply::Bulk),
        Some(_) => Reply::Set(popped.iter().cloned().map(Reply::Bulk).collect()),
    };
    (reply, Change::Fields(popped))
}

/// `SRANDMEMBER`: a positive count returns distinct members (all if the set has no more), a
/// negative one exactly that many, possibly repeated.
fn rand_members(set: &Set, count: Option<i64>, seed: u64) -> Reply {
    let mut picker = Picker::new(seed);
    let at = |i: usize| Reply::Bulk(set.get_index(i).cloned().unwrap_or_default());
    match count {
        None => at(picker.below(set.len())),
        Some(n) if n < 0 => Reply::Array(
            picker.repeated(set.len(), n.unsigned_abs() as usize).into_iter().map(at).collect(),
        ),
        Some(n) if n as usize >= set.len() => {
            Reply::Array(listed(set).into_iter().map(Reply::Bulk).collect())
        }
        Some(n) => {
            Reply::Array(picker.distinct(set.len(), n as usize).into_iter().map(at).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::apply as apply_op;
    use crate::Op;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn run(op: SetOp, slot: &mut Option<Entry>) -> (Reply, Change) {
        let out = apply_op(Op::Sets(op), slot, 1);
        (out.reply, out.change)
    }

    #[test]
    fn adds_and_removes_report_their_members_and_the_empty_set_is_gone() {
        let mut slot = None;
        let add = |m: &[&str]| SetOp::Add { members: m.iter().map(|s| b(s)).collect() };
        assert_eq!(run(add(&["a", "b"]), &mut slot), (Reply::Int(2), Change::Whole));
        assert_eq!(run(add(&["b", "c"]), &mut slot), (Reply::Int(1), Change::Fields(vec![b("c")])));
        let rem = SetOp::Rem { members: vec![b("a"), b("zz")] };
        assert_eq!(run(rem, &mut slot), (Reply::Int(1), Change::Fields(vec![b("a")])));
        let rem = SetOp::Rem { members: vec![b("b"), b("c")] };
        assert_eq!(run(rem, &mut slot), (Reply::Int(2), Change::Whole));
        assert_eq!(slot, None);
    }

    #[test]
    fn an_intset_lists_in_numeric_order_and_pop_takes_everything_when_asked_for_more() {
        let mut slot = None;
        let members = ["10", "-3", "2"].map(b).to_vec();
        run(SetOp::Add { members }, &mut slot);
        let sorted = Reply::Set(["-3", "2", "10"].map(|s| Reply::Bulk(b(s))).to_vec());
        assert_eq!(run(SetOp::Members, &mut slot).0, sorted);
        let (reply, change) = run(SetOp::Pop { count: Some(9), seed: 7 }, &mut slot);
        assert_eq!((reply, change), (sorted, Change::Whole));
        assert_eq!(slot, None);
    }

    #[test]
    fn a_string_is_the_wrong_type() {
        let mut slot = Some(Entry::new(Value::Str(b("s"))));
        assert_eq!(run(SetOp::Card, &mut slot).0, Reply::wrong_type());
    }
}
