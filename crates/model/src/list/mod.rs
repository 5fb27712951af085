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

use bytes::Bytes;
use imbl::Vector;
use serde::{Deserialize, Serialize};

/// A list: `items[i]` is at position `head + i`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct List {
    head: i64,
    items: Vector<Bytes>,
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
        self.items.get(index)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Bytes> + ExactSizeIterator + '_ {
        self.items.iter()
    }

    /// The field name of the element at `index`.
    pub fn name_at(&self, index: usize) -> Bytes {
        position_name(self.head + index as i64)
    }

    /// Pushes before the first element; returns the field it wrote.
    pub fn push_front(&mut self, item: Bytes) -> Bytes {
        self.head -= 1;
        self.items.push_front(item);
        self.name_at(0)
    }

    /// Pushes after the last element; returns the field it wrote.
    pub fn push_back(&mut self, item: Bytes) -> Bytes {
        self.items.push_back(item);
        self.name_at(self.items.len() - 1)
    }

    /// Removes the first element, with the field it removed.
    pub fn pop_front(&mut self) -> Option<(Bytes, Bytes)> {
        let name = self.name_at(0);
        let item = self.items.pop_front()?;
        self.head += 1;
        Some((item, name))
    }

    /// Removes the last element, with the field it removed.
    pub fn pop_back(&mut self) -> Option<(Bytes, Bytes)> {
        let name = self.name_at(self.items.len().checked_sub(1)?);
        Some((self.items.pop_back()?, name))
    }

    /// Replaces the element at `index`; returns the field it wrote, `None` if out of range.
    pub fn set(&mut self, index: usize, item: Bytes) -> Option<Bytes> {
        *self.items.get_mut(index)? = item;
        Some(self.name_at(index))
    }

    /// The elements, to rearrange freely; the list is then written whole (its positions are
    /// renumbered from the current head).
    pub fn items_mut(&mut self) -> &mut Vector<Bytes> {
        &mut self.items
    }

    /// The list without its elements: what its header row holds.
    pub fn header(&self) -> List {
        List { head: self.head, items: Vector::new() }
    }

    /// The element at field `name`.
    pub fn row(&self, name: &[u8]) -> Option<&Bytes> {
        let index = position_of(name)?.checked_sub(self.head)?;
        self.items.get(usize::try_from(index).ok()?)
    }

    /// Every element with its field name, in order.
    pub fn rows(&self) -> impl Iterator<Item = (Bytes, &Bytes)> + '_ {
        self.items.iter().enumerate().map(|(i, item)| (self.name_at(i), item))
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
                    self.items.push_back(item);
                } else if pos == self.head - 1 {
                    self.push_front(item);
                } else if pos == self.head + len {
                    self.items.push_back(item);
                } else if (self.head..self.head + len).contains(&pos) {
                    self.items[(pos - self.head) as usize] = item;
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
        List { head: 0, items: iter.into_iter().collect() }
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
