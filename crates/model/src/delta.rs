//! What a write changed, in the form the disk stores and followers receive.
//!
//! Hashes, sets, sorted sets, lists and sessions are stored as a header row (the entry with its fields left out: type,
//! deadline, version, a session's times and principal) and one row per field. A write that
//! changes some fields of one reports them ([`Change::Fields`]); its [`Delta`] then carries the
//! new header and only those rows, so writing one attribute of a 50 KB session costs that
//! attribute, on disk and on the wire. Every other write carries the key's whole new entry.

use bytes::Bytes;

use crate::entry::{Entry, Value};
use crate::op::FieldNeeds;
use crate::session::{Attr, Session};
use crate::zset::Zset;

/// What [`crate::apply::apply`] changed in the slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Change {
    #[default]
    Nothing,
    /// Anything, including whether the key exists.
    Whole,
    /// Only the header of the hash or session that was in the slot and still is, and these of
    /// its fields (each now holds the slot's value for it, or is gone). Empty: the header alone.
    Fields(Vec<Bytes>),
}

impl Change {
    pub fn any(&self) -> bool {
        *self != Change::Nothing
    }
}

impl From<bool> for Change {
    fn from(changed: bool) -> Self {
        if changed {
            Change::Whole
        } else {
            Change::Nothing
        }
    }
}

/// A key's change as stored and replicated.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Delta {
    /// The key's whole new entry; `None`: the key is gone.
    Whole(Option<Entry>),
    /// The new header of a hash or session (its value without fields) and the stored rows of
    /// the fields that changed (`None`: removed).
    Fields { header: Entry, rows: Vec<(Bytes, Option<Bytes>)> },
}

impl Delta {
    /// The delta that takes a key to `slot`, which `change` produced (taken, not copied: a
    /// whole write carries the entry itself).
    pub fn of(slot: Option<Entry>, change: &Change) -> Delta {
        match (slot, change) {
            (Some(entry), Change::Fields(names)) if entry.value.has_fields() => Delta::Fields {
                header: entry.header(),
                rows: names.iter().map(|n| (n.clone(), entry.value.field_row(n))).collect(),
            },
            (slot, _) => Delta::Whole(slot),
        }
    }

    /// What the key holds after the change, as far as its header tells: whether it is a key,
    /// a session, and its deadline (for counts and the expiry index).
    pub fn head(&self) -> Option<&Entry> {
        match self {
            Delta::Whole(state) => state.as_ref(),
            Delta::Fields { header, .. } => Some(header),
        }
    }

    /// Bytes it carries beyond the key, about what an entry of that size is charged.
    pub fn cost_bytes(&self) -> usize {
        match self {
            Delta::Whole(state) => state.as_ref().map_or(0, Entry::cost_bytes),
            Delta::Fields { header, rows } => {
                header.cost_bytes()
                    + rows
                        .iter()
                        .map(|(n, v)| n.len() + v.as_ref().map_or(0, Bytes::len))
                        .sum::<usize>()
            }
        }
    }

    /// Applies the change to a copy of the key held in memory. A field delta needs the hash
    /// or session it was made from; if `slot` holds something else, it is left as it was and
    /// `false` returned: the caller drops its copy and reads the key from disk again.
    pub fn apply_to(&self, slot: &mut Option<Entry>) -> bool {
        self.patch(slot).is_some()
    }

    /// Like [`Delta::apply_to`], and reports by how much the copy's cost changed (bytes), in
    /// time proportional to the fields the delta carries, not to the value's size.
    pub fn patch(&self, slot: &mut Option<Entry>) -> Option<isize> {
        let cost = |slot: &Option<Entry>| slot.as_ref().map_or(0, Entry::cost_bytes) as isize;
        match self {
            Delta::Whole(state) => {
                let before = cost(slot);
                slot.clone_from(state);
                Some(cost(slot) - before)
            }
            Delta::Fields { header, rows } => {
                let entry = slot.as_mut()?;
                let fields = |e: &Entry| -> isize {
                    let named: usize = rows.iter().map(|(n, _)| e.value.field_cost(n)).sum();
                    (e.header_cost() + named) as isize
                };
                let before = fields(entry);
                if !entry.set_header(header) {
                    return None;
                }
                for (name, row) in rows {
                    if !entry.value.set_field_row(name, row.as_deref()) {
                        return None;
                    }
                }
                Some(fields(entry) - before)
            }
        }
    }
}

impl Delta {
    /// Applies the change as the disk does: a field delta over a key that holds no value of
    /// its kind (a follower replaying writes over newer snapshot data) stores its header and
    /// rows all the same; the writes that follow it in the log make the key right again.
    pub fn apply_as_rows(&self, slot: &mut Option<Entry>) {
        if self.apply_to(slot) {
            return;
        }
        if let Delta::Fields { header, rows } = self {
            let mut entry = header.clone();
            for (name, row) in rows {
                entry.value.set_field_row(name, row.as_deref());
            }
            *slot = Some(entry);
        }
    }

    /// Stamps the write's version on the entry or header it carries.
    pub fn set_version(&mut self, version: u64) {
        match self {
            Delta::Whole(Some(e)) | Delta::Fields { header: e, .. } => e.version = version,
            Delta::Whole(None) => {}
        }
    }
}

impl Value {
    /// True for the values an operation reads in part, only the fields it names
    /// ([`Entry::view`]); the others are read whole.
    pub fn is_read_in_part(&self) -> bool {
        matches!(self, Value::Hash(_) | Value::Set(_) | Value::Zset(_))
    }

    /// True for the values stored as a header row plus one row per field.
    pub fn has_fields(&self) -> bool {
        matches!(
            self,
            Value::Hash(_) | Value::Session(_) | Value::Set(_) | Value::Zset(_) | Value::List(_)
        )
    }

    /// The stored form of field `name`, if the value has it.
    pub fn field_row(&self, name: &[u8]) -> Option<Bytes> {
        match self {
            Value::Hash(h) => h.get(name).cloned(),
            Value::Session(s) => s.attrs.get(name).map(encode_attr),
            Value::Set(s) => s.contains(name).then(Bytes::new),
            Value::Zset(z) => z.score(name).map(Zset::row),
            Value::List(l) => l.row(name).cloned(),
            _ => None,
        }
    }

    /// Every field's stored form.
    pub fn field_rows(&self) -> Vec<(Bytes, Bytes)> {
        match self {
            Value::Hash(h) => h.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Value::Session(s) => s.attrs.iter().map(|(k, a)| (k.clone(), encode_attr(a))).collect(),
            Value::Set(s) => s.iter().map(|m| (m.clone(), Bytes::new())).collect(),
            Value::Zset(z) => z.iter().map(|(m, score)| (m.clone(), Zset::row(score))).collect(),
            Value::List(l) => l.rows().map(|(n, v)| (n, v.clone())).collect(),
            _ => Vec::new(),
        }
    }

    /// Sets field `name` from its stored form (`None`: removes it). False if the value has no
    /// fields or the row does not decode.
    pub fn set_field_row(&mut self, name: &Bytes, row: Option<&[u8]>) -> bool {
        match (self, row) {
            (Value::Hash(h), Some(v)) => {
                h.insert(name.clone(), Bytes::copy_from_slice(v));
                true
            }
            (Value::Hash(h), None) => {
                h.shift_remove(name);
                true
            }
            (Value::Session(s), Some(v)) => match postcard::from_bytes::<Attr>(v) {
                Ok(attr) => {
                    s.attrs.insert(name.clone(), attr);
                    true
                }
                Err(_) => false,
            },
            (Value::Session(s), None) => {
                s.attrs.shift_remove(name);
                true
            }
            (Value::Set(s), Some(_)) => {
                s.insert(name.clone());
                true
            }
            (Value::Set(s), None) => {
                s.swap_remove(name);
                true
            }
            (Value::Zset(z), Some(v)) => match Zset::score_of_row(v) {
                Some(score) => {
                    z.insert(name.clone(), score);
                    true
                }
                None => false,
            },
            (Value::Zset(z), None) => {
                z.remove(name);
                true
            }
            (Value::List(l), row) => l.set_row(name, row),
            _ => false,
        }
    }

    /// A field not among `names`, with its stored form, if there is one.
    fn first_field_besides(&self, names: &[Bytes]) -> Option<&Bytes> {
        let other = |n: &&Bytes| !names.contains(n);
        match self {
            Value::Hash(h) => h.keys().find(other),
            Value::Set(s) => s.iter().find(other),
            Value::Zset(z) => z.iter().map(|(m, _)| m).find(other),
            _ => None,
        }
    }

    /// Copies field `name`, if this value has it, into `into` (a value of the same kind),
    /// sharing its bytes rather than copying them.
    fn copy_field(&self, name: &[u8], into: &mut Value) {
        match (self, into) {
            (Value::Hash(from), Value::Hash(to)) => {
                if let Some((k, v)) = from.get_key_value(name) {
                    to.insert(k.clone(), v.clone());
                }
            }
            (Value::Set(from), Value::Set(to)) => {
                if let Some(m) = from.get(name) {
                    to.insert(m.clone());
                }
            }
            (Value::Zset(from), Value::Zset(to)) => {
                if let Some((m, score)) = from.member(name) {
                    to.insert(m.clone(), score);
                }
            }
            _ => {}
        }
    }

    /// The value without its fields: what its header row holds.
    fn without_fields(&self) -> Value {
        match self {
            Value::Hash(_) => Value::Hash(Default::default()),
            Value::Session(s) => Value::Session(Box::new(s.clone_header())),
            Value::Set(_) => Value::Set(Default::default()),
            Value::Zset(_) => Value::Zset(Default::default()),
            Value::List(l) => Value::List(l.header()),
            other => other.clone(),
        }
    }
}

impl Entry {
    /// What an operation needs of a hash, set or sorted set: its header, those of the named
    /// fields it has, and, if asked, one other field if there is one (so that removing the
    /// named ones tells whether it is left empty). Any other value is returned whole.
    pub fn view(&self, needs: &FieldNeeds) -> Entry {
        if !self.value.is_read_in_part() {
            return self.clone();
        }
        let mut view = self.header();
        for name in &needs.names {
            self.value.copy_field(name, &mut view.value);
        }
        let other = needs.others.then(|| self.value.first_field_besides(&needs.names)).flatten();
        if let Some(name) = other {
            self.value.copy_field(name, &mut view.value);
        }
        view
    }

    /// The entry as its header row stores it: fields left out.
    pub fn header(&self) -> Entry {
        Entry {
            value: self.value.without_fields(),
            expire_at_ms: self.expire_at_ms,
            version: self.version,
        }
    }

    /// Takes `header`'s deadline, version and header fields, keeping this entry's fields.
    /// False (nothing changed) if the two are not the same kind of value with fields.
    pub fn set_header(&mut self, header: &Entry) -> bool {
        match (&mut self.value, &header.value) {
            (Value::Hash(_), Value::Hash(_))
            | (Value::Set(_), Value::Set(_))
            | (Value::Zset(_), Value::Zset(_))
            // A list's rows move its head themselves (see `List::set_row`).
            | (Value::List(_), Value::List(_)) => {}
            (Value::Session(mine), Value::Session(theirs)) => {
                let attrs = std::mem::take(&mut mine.attrs);
                **mine = Session { attrs, ..(**theirs).clone() };
            }
            _ => return false,
        }
        self.expire_at_ms = header.expire_at_ms;
        self.version = header.version;
        true
    }
}

fn encode_attr(attr: &Attr) -> Bytes {
    // Serialising owned, finite data into a Vec cannot fail.
    postcard::to_stdvec(attr).expect("attribute serialises").into()
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;

    use super::*;
    use crate::session::Tag;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn session(attrs: &[(&str, &str)]) -> Entry {
        let attrs = attrs
            .iter()
            .map(|(k, v)| (b(k), Attr { tag: Tag::Utf8, value: b(v), version: 1 }))
            .collect();
        let s = Session {
            id: b("id"),
            group: b("g"),
            created_ms: 1,
            last_access_ms: 2,
            idle_ms: 1000,
            absolute_at_ms: None,
            principal: None,
            attrs,
            version: 1,
        };
        Entry { value: Value::Session(Box::new(s)), expire_at_ms: Some(1002), version: 7 }
    }

    #[test]
    fn a_field_delta_carries_the_header_and_the_changed_fields_only() {
        let mut slot = Some(session(&[("a", "1"), ("big", &"x".repeat(50_000))]));
        let before = slot.clone();
        let Some(Entry { value: Value::Session(s), expire_at_ms, version }) = slot.as_mut() else {
            unreachable!()
        };
        s.attrs.insert(b("a"), Attr { tag: Tag::Utf8, value: b("2"), version: 2 });
        s.attrs.shift_remove(&b("gone"));
        s.last_access_ms = 900;
        (*expire_at_ms, *version) = (Some(1900), 8);
        let delta = Delta::of(slot.clone(), &Change::Fields(vec![b("a"), b("gone")]));
        assert!(delta.cost_bytes() < 1_000, "the big attribute stays home");
        let Delta::Fields { header, rows } = &delta else { panic!("{delta:?}") };
        assert_eq!(header.value.field_rows(), vec![]);
        assert_eq!(rows[1], (b("gone"), None));
        let mut copy = before;
        let was = copy.as_ref().unwrap().cost_bytes() as isize;
        let change = delta.patch(&mut copy).unwrap();
        assert_eq!(copy, slot);
        assert_eq!(was + change, slot.as_ref().unwrap().cost_bytes() as isize, "cost kept exactly");
        let postcard = postcard::to_stdvec(&delta).unwrap();
        assert_eq!(postcard::from_bytes::<Delta>(&postcard).unwrap(), delta);
    }

    #[test]
    fn a_field_delta_does_not_apply_to_another_kind_of_value() {
        let mut h = IndexMap::new();
        h.insert(b("f"), b("v"));
        let hash = Some(Entry { value: Value::Hash(h), expire_at_ms: None, version: 3 });
        let delta = Delta::of(hash.clone(), &Change::Fields(vec![b("f")]));
        let mut string = Some(Entry::new(Value::Str(b("s"))));
        assert!(!delta.apply_to(&mut string));
        let mut absent = None;
        assert!(!delta.apply_to(&mut absent));
        let mut older =
            Some(Entry { value: Value::Hash(IndexMap::new()), ..hash.clone().unwrap() });
        assert!(delta.apply_to(&mut older));
        assert_eq!(older, hash);
    }

    #[test]
    fn an_hdel_on_a_view_deletes_the_hash_only_when_it_held_nothing_else() {
        let mut h = IndexMap::new();
        h.insert(b("a"), b("1"));
        h.insert(b("b"), b("2"));
        let full = Entry { value: Value::Hash(h), expire_at_ms: None, version: 3 };
        let hdel =
            |names: &[&str]| crate::Op::HDel { fields: names.iter().map(|n| b(n)).collect() };
        let one = hdel(&["a", "zz"]);
        let mut slot = Some(full.view(&one.fields().unwrap()));
        let out = crate::apply::apply(one, &mut slot, 1);
        assert_eq!(out.change, Change::Fields(vec![b("a")]));
        assert!(slot.is_some(), "b is still there");
        let both = hdel(&["a", "b"]);
        let mut slot = Some(full.view(&both.fields().unwrap()));
        assert_eq!(crate::apply::apply(both, &mut slot, 1).change, Change::Whole);
        assert_eq!(slot, None);
    }

    #[test]
    fn a_whole_change_or_a_value_without_fields_carries_the_entry() {
        let s = Some(Entry::new(Value::Str(b("v"))));
        assert_eq!(Delta::of(s.clone(), &Change::Fields(vec![])), Delta::Whole(s));
        assert_eq!(Delta::of(None, &Change::Whole), Delta::Whole(None));
    }
}
