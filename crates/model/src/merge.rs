//! How an entry written on the other side of a healed network split joins this side's.
//!
//! Both sides numbered their writes on from the same history, so an entry neither side changed
//! during the split has the same version on both, and one that only one side changed is higher
//! there. The higher version wins, with two exceptions: an ended session is final (its id must
//! never come back), and two login registries are unioned (a user logged in on both sides has
//! both sessions). A deleted key is a [`Value::Deleted`] tombstone with its own version, so a
//! deletion beats the older copy the other side kept.

use crate::entry::{Entry, Value};
use crate::session::Login;

/// Joins `incoming` into `slot` at `now_ms`; returns true if the slot changed.
pub fn merge(incoming: Entry, slot: &mut Option<Entry>, now_ms: u64) -> bool {
    if incoming.is_expired(now_ms) {
        return false;
    }
    let Some(current) = slot.as_mut() else {
        *slot = Some(incoming);
        return true;
    };
    match (&mut current.value, incoming.value) {
        (Value::Ended(_), _) => false,
        (_, value @ Value::Ended(_)) => {
            *current = Entry { value, ..incoming };
            true
        }
        (Value::Logins(mine), Value::Logins(theirs)) => {
            let added = union(mine, theirs);
            if added {
                current.expire_at_ms = current.expire_at_ms.max(incoming.expire_at_ms);
            }
            added
        }
        (_, value) if incoming.version > current.version => {
            *current = Entry { value, ..incoming };
            true
        }
        _ => false,
    }
}

/// Adds the logins of `theirs` that `mine` lacks; returns true if it added any.
fn union(mine: &mut Vec<Login>, theirs: Vec<Login>) -> bool {
    let before = mine.len();
    for login in theirs {
        if !mine.iter().any(|l| l.id == login.id) {
            mine.push(login);
        }
    }
    mine.sort_by_key(|l| l.at_ms);
    mine.len() > before
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::session::{EndReason, Tombstone};

    fn s(v: &str, version: u64) -> Entry {
        Entry {
            value: Value::Str(Bytes::copy_from_slice(v.as_bytes())),
            expire_at_ms: None,
            version,
        }
    }

    fn ended(version: u64) -> Entry {
        let t = Tombstone {
            reason: EndReason::Invalidated,
            at_ms: 1,
            group: Bytes::new(),
            principal: None,
            moved_to: None,
        };
        Entry { value: Value::Ended(Box::new(t)), expire_at_ms: Some(1_000), version }
    }

    fn login(id: &str, at_ms: u64) -> Login {
        Login { id: Bytes::copy_from_slice(id.as_bytes()), group: Bytes::new(), at_ms }
    }

    #[test]
    fn the_side_that_changed_a_key_wins_and_an_unchanged_key_stays() {
        let mut slot = Some(s("old", 5));
        assert!(merge(s("theirs", 9), &mut slot, 0), "changed over there only");
        assert_eq!(slot, Some(s("theirs", 9)));
        assert!(!merge(s("older", 7), &mut slot, 0), "an older copy never wins");
        assert!(!merge(s("theirs", 9), &mut slot, 0), "merging twice changes nothing");
        let mut absent = None;
        assert!(merge(s("new", 3), &mut absent, 0), "created over there");
    }

    #[test]
    fn a_deletion_beats_an_older_copy_and_loses_to_a_newer_one() {
        let deleted = |version| Entry { version, ..Entry::deleted(0) };
        let mut slot = Some(deleted(8));
        assert!(!merge(s("kept over there", 5), &mut slot, 0));
        assert!(slot.as_ref().unwrap().is_deleted());
        let mut slot = Some(s("here", 5));
        assert!(merge(deleted(8), &mut slot, 0));
        assert!(slot.as_ref().unwrap().is_deleted());
        assert!(merge(s("written again later", 9), &mut slot, 0));
    }

    #[test]
    fn an_ended_session_is_final() {
        let mut slot = Some(ended(2));
        assert!(!merge(s("much newer", 50), &mut slot, 0));
        let mut slot = Some(s("live", 50));
        assert!(merge(ended(2), &mut slot, 0), "even over a newer live copy");
        assert!(slot.unwrap().is_ended());
    }

    #[test]
    fn login_registries_are_unioned() {
        let reg = |logins: Vec<Login>, version| Entry {
            value: Value::Logins(logins),
            expire_at_ms: None,
            version,
        };
        let mut slot = Some(reg(vec![login("a", 1), login("b", 3)], 9));
        assert!(merge(reg(vec![login("c", 2), login("a", 1)], 4), &mut slot, 0));
        let Some(Entry { value: Value::Logins(l), .. }) = slot.as_ref() else { panic!() };
        let ids: Vec<&[u8]> = l.iter().map(|l| l.id.as_ref()).collect();
        assert_eq!(ids, vec![&b"a"[..], b"c", b"b"]);
        assert!(!merge(reg(vec![login("b", 3)], 20), &mut slot, 0), "nothing new");
    }

    #[test]
    fn an_expired_entry_from_over_there_is_nothing() {
        let mut slot = None;
        let gone = Entry { expire_at_ms: Some(10), ..s("x", 9) };
        assert!(!merge(gone, &mut slot, 11));
        assert_eq!(slot, None);
    }
}
