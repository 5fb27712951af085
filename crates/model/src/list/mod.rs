//! Lists: elements in order, each stored as a field row named by its position.
//!
//! An element keeps its position while the list grows and shrinks at either end: a push at the
//! head takes the position before the first, a push at the tail the one after the last. So a
//! push or a pop writes one row, and the rows of a list, read in byte order, are its elements
//! in order ([`position_name`] keeps numeric order in byte order). An operation in the middle
//! (insert, remove) renumbers the elements after it and writes the list whole.
//!
//! The elements are a persistent vector: a copy of a list shares them with the original, so
//! handing a cached list to an operation costs nothing however long it is, and a push or a pop
//! on the copy copies only the path to the changed end (stored, it is a plain sequence).

pub mod apply;
pub mod op;

use std::sync::Arc;

use bytes::Bytes;
use imbl::Vector;
use serde::{Deserialize, Serialize};

/// A list: `items[i]` is at position `head + i`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct List {
    head: i64,
    items: Vector<Item>,
}

/// One element as the persistent vector holds it: its bytes in their own allocation.
///
/// Not `Bytes` itself. The vector keeps a short list inline, in storage typed without interior
/// mutability, and cloning a `Bytes` may write to the `Bytes` (its first clone turns a unique
/// buffer into a shared one), which is undefined behaviour there: a clone of an element of a
/// one-element list moved out of its entry and dropped was seen pointing at freed memory, and
/// Miri reports the vector's read of such an element. Behind an `Arc`, that write lands in the
/// `Arc`'s allocation, where it is allowed; the vector itself only ever copies a pointer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
struct Item(Arc<Bytes>);

impl Item {
    fn new(bytes: Bytes) -> Item {
        Item(Arc::new(bytes))
    }

    fn bytes(&self) -> &Bytes {
        &self.0
    }

    fn into_bytes(self) -> Bytes {
        Arc::unwrap_or_clone(self.0)
    }
}

/// The field name of position `pos`: big-endian with the sign bit flipped, so byte order is
/// numeric order.
pub fn position_name(pos: i64) -> Bytes {
    Bytes::copy_from_slice(&((pos as u64) ^ (1 << 63)).to_be_bytes())
}

/// The position a field name stands for; `None` if it is not one.
pub fn position_of(name: &[u8]) -> Option<i64> {
    Some((u64::from_be_bytes(name.try_into().ok()?) ^ (1 << 63)) as i64)
}

impl List {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Bytes> {
        self.items.get(index).map(Item::bytes)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Bytes> + ExactSizeIterator + '_ {
        self.items.iter().map(Item::bytes)
    }

    /// The field name of the element at `index`.
    pub fn name_at(&self, index: usize) -> Bytes {
        position_name(self.head + index as i64)
    }

    /// Pushes before the first element; returns the field it wrote.
    pub fn push_front(&mut self, item: Bytes) -> Bytes {
        self.head -= 1;
        self.items.push_front(Item::new(item));
        self.name_at(0)
    }

    /// Pushes after the last element; returns the field it wrote.
    pub fn push_back(&mut self, item: Bytes) -> Bytes {
        self.items.push_back(Item::new(item));
        self.name_at(self.items.len() - 1)
    }

    /// Removes the first element, with the field it removed.
    pub fn pop_front(&mut self) -> Option<(Bytes, Bytes)> {
        let name = self.name_at(0);
        let item = self.items.pop_front()?;
        self.head += 1;
        Some((Item::into_bytes(item), name))
    }

    /// Removes the last element, with the field it removed.
    pub fn pop_back(&mut self) -> Option<(Bytes, Bytes)> {
        let name = self.name_at(self.items.len().checked_sub(1)?);
        Some((Item::into_bytes(self.items.pop_back()?), name))
    }

    /// Replaces the element at `index`; returns the field it wrote, `None` if out of range.
    pub fn set(&mut self, index: usize, item: Bytes) -> Option<Bytes> {
        *self.items.get_mut(index)? = Item::new(item);
        Some(self.name_at(index))
    }

    /// Inserts before the element at `index` (at the end if `index` is the length); the list
    /// is then written whole (its positions are renumbered from the current head).
    pub fn insert(&mut self, index: usize, item: Bytes) {
        self.items.insert(index, Item::new(item));
    }

    /// Keeps the elements `keep` accepts, called on each in order from the head, or from the
    /// tail if `from_tail`. The list is then written whole.
    pub fn retain(&mut self, from_tail: bool, mut keep: impl FnMut(&Bytes) -> bool) {
        let kept: Vector<Item> = if from_tail {
            let mut kept: Vec<Item> =
                self.items.iter().rev().filter(|item| keep(item.bytes())).cloned().collect();
            kept.reverse();
            kept.into_iter().collect()
        } else {
            self.items.iter().filter(|item| keep(item.bytes())).cloned().collect()
        };
        if kept.len() < self.items.len() {
            self.items = kept;
        }
    }

    /// The list without its elements: what its header row holds.
    pub fn header(&self) -> List {
        List { head: self.head, items: Vector::new() }
    }

    /// The element at field `name`.
    pub fn row(&self, name: &[u8]) -> Option<&Bytes> {
        let index = position_of(name)?.checked_sub(self.head)?;
        self.get(usize::try_from(index).ok()?)
    }

    /// Every element with its field name, in order.
    pub fn rows(&self) -> impl Iterator<Item = (Bytes, &Bytes)> + '_ {
        self.iter().enumerate().map(|(i, item)| (self.name_at(i), item))
    }

    /// Applies one stored row: a row just before the first or after the last element (or any
    /// row of an empty list) adds it there, a row inside replaces; a removal of the first or
    /// last element removes it. False for any other row, which this copy cannot place.
    pub fn set_row(&mut self, name: &[u8], row: Option<&[u8]>) -> bool {
        let Some(pos) = position_of(name) else { return false };
        let len = self.items.len() as i64;
        match row {
            Some(item) => {
                let item = Bytes::copy_from_slice(item);
                if self.items.is_empty() {
                    self.head = pos;
                    self.push_back(item);
                } else if pos == self.head - 1 {
                    self.push_front(item);
                } else if pos == self.head + len {
                    self.push_back(item);
                } else if (self.head..self.head + len).contains(&pos) {
                    self.items[(pos - self.head) as usize] = Item::new(item);
                } else {
                    return false;
                }
            }
            None if len > 0 && pos == self.head => {
                self.pop_front();
            }
            None if len > 0 && pos == self.head + len - 1 => {
                self.items.pop_back();
            }
            None => return false,
        }
        true
    }
}

impl FromIterator<Bytes> for List {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> Self {
        List { head: 0, items: iter.into_iter().map(Item::new).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn lists_read_as_written_when_their_elements_were_a_deque() {
        #[derive(Serialize)]
        struct Before {
            head: i64,
            items: std::collections::VecDeque<Bytes>,
        }
        let before = Before { head: -2, items: [b("a"), b("b")].into() };
        let bytes = postcard::to_stdvec(&before).unwrap();
        let list: List = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            (list.head, list.iter().cloned().collect::<Vec<_>>()),
            (-2, vec![b("a"), b("b")])
        );
        assert_eq!(postcard::to_stdvec(&list).unwrap(), bytes);
    }

    #[test]
    fn a_copy_shares_the_elements_and_changes_apart() {
        let mut list: List = (0..10_000).map(|i| Bytes::from(i.to_string())).collect();
        let copy = list.clone();
        list.push_front(b("first"));
        list.pop_back();
        assert_eq!((copy.len(), copy.get(0).cloned()), (10_000, Some(b("0"))));
        assert_eq!((list.len(), list.get(0).cloned()), (10_000, Some(b("first"))));
    }

    #[test]
    fn elements_cloned_out_of_a_short_list_outlive_it() {
        // A list short enough to be kept inline, moved out of its entry, its elements cloned
        // and the list dropped: the clones keep their bytes (run under Miri to see more).
        fn elements(value: crate::entry::Value) -> Vec<Bytes> {
            match value {
                crate::entry::Value::List(list) => list.iter().cloned().collect(),
                _ => Vec::new(),
            }
        }
        for n in 1..4 {
            let written: Vec<Bytes> =
                (0..n).map(|i| Bytes::from(format!("element {i} of {n}").into_bytes())).collect();
            let list: List = written.iter().map(|b| Bytes::copy_from_slice(b)).collect();
            let read = elements(crate::entry::Value::List(list));
            let churn: Vec<Vec<u8>> = (0..64).map(|_| vec![0xa5; 32]).collect();
            assert_eq!(read, written);
            drop(churn);
        }
    }

    #[test]
    fn removing_and_inserting_in_the_middle_keeps_the_order() {
        let mut list: List = ["a", "x", "b", "x", "c"].map(b).into_iter().collect();
        let mut removed = 0;
        list.retain(true, |item| {
            let remove = removed < 1 && item == "x";
            removed += usize::from(remove);
            !remove
        });
        assert_eq!(list.iter().cloned().collect::<Vec<_>>(), ["a", "x", "b", "c"].map(b));
        list.insert(1, b("i"));
        list.insert(5, b("end"));
        assert_eq!(
            list.iter().cloned().collect::<Vec<_>>(),
            ["a", "i", "x", "b", "c", "end"].map(b)
        );
    }

    #[test]
    fn position_names_sort_as_numbers() {
        let mut names: Vec<Bytes> = [5, -1, 0, i64::MIN, i64::MAX, -300].map(position_name).into();
        names.sort();
        let back: Vec<i64> = names.iter().map(|n| position_of(n).unwrap()).collect();
        assert_eq!(back, [i64::MIN, -300, -1, 0, 5, i64::MAX]);
    }

    #[test]
    fn rows_written_by_pushes_and_pops_rebuild_the_list_in_a_copy_and_from_disk_order() {
        let mut list: List = [b("m")].into_iter().collect();
        let mut copy = list.clone();
        // Evaluated in order: each row is written after the one before.
        let rows = vec![
            list.push_front(b("a")),
            list.push_back(b("z")),
            list.pop_back().unwrap().1,
            list.push_back(b("y")),
            list.set(0, b("A")).unwrap(),
        ];
        for name in &rows {
            assert!(copy.set_row(name, list.row(name).map(|v| &v[..])), "{name:?}");
        }
        assert_eq!(copy, list);
        let mut on_disk: Vec<(Bytes, Bytes)> = list.rows().map(|(n, v)| (n, v.clone())).collect();
        on_disk.sort();
        let mut read = list.header();
        for (name, v) in &on_disk {
            assert!(read.set_row(name, Some(v)));
        }
        assert_eq!(read, list);
        assert!(!read.set_row(&position_name(100), None), "a hole cannot be placed");
    }
}
