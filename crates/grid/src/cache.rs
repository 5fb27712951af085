//! The in-memory tier of one partition: the hot entries within a byte budget.
//!
//! Disk holds every entry; the cache holds the hot ones. An entry is charged its key, its value
//! bytes and a fixed overhead; inserting past the budget evicts entries not used since the
//! eviction hand last passed them (CLOCK, second chance: an approximation of least recently
//! used in which a hit only sets a bit, instead of relinking a list, which costs a GET several
//! cache misses). An entry larger than the whole budget is not cached at all.

use std::collections::VecDeque;

use bytes::Bytes;
use hashbrown::HashMap;
use sessiongrid_model::Entry;

struct Slot {
    entry: Entry,
    /// What the entry is charged, kept so that nothing walks a big value to recount it.
    cost: usize,
    /// Used since the hand last passed it.
    used: bool,
    /// Which insertion of the key this is; ring positions of earlier ones are stale.
    generation: u64,
}

pub struct EntryCache {
    slots: HashMap<Bytes, Slot>,
    /// Keys in the order the hand visits them, with the generation each was queued for; may
    /// hold keys taken since (skipped when the hand reaches them).
    ring: VecDeque<(Bytes, u64)>,
    next_generation: u64,
    bytes: usize,
    budget_bytes: usize,
}

fn cost(key: &Bytes, entry: &Entry) -> usize {
    key.len() + entry.cost_bytes()
}

impl EntryCache {
    pub fn new(budget_bytes: usize) -> Self {
        EntryCache {
            slots: HashMap::new(),
            ring: VecDeque::new(),
            next_generation: 0,
            bytes: 0,
            budget_bytes,
        }
    }

    /// Removes and returns the entry, so the caller can modify it and [`insert`](Self::insert)
    /// it back.
    pub fn take(&mut self, key: &[u8]) -> Option<Entry> {
        let slot = self.slots.remove(key)?;
        self.bytes -= slot.cost;
        Some(slot.entry)
    }

    /// Changes the cached entry in place with `f`, which reports by how much its cost changed
    /// (`None`: it could not change it). False if the key is not cached or `f` failed; the
    /// caller then drops the entry. A patch that grows the entry past the budget evicts others.
    pub fn patch(
        &mut self,
        key: &[u8],
        f: impl FnOnce(&mut Option<Entry>) -> Option<isize>,
    ) -> bool {
        let Some(slot) = self.slots.get_mut(key) else { return false };
        let mut entry = Some(std::mem::replace(&mut slot.entry, Entry::deleted(0)));
        let change = f(&mut entry);
        let (Some(change), Some(patched)) = (change, entry) else { return false };
        slot.entry = patched;
        slot.used = true;
        slot.cost = slot.cost.saturating_add_signed(change);
        self.bytes = self.bytes.saturating_add_signed(change);
        if slot.cost > self.budget_bytes {
            return false; // grown past the whole budget: the caller drops it
        }
        if self.bytes > self.budget_bytes {
            self.evict_over_budget(Some(&Bytes::copy_from_slice(key)));
        }
        true
    }

    /// The cached entry, now marked used.
    pub fn get(&mut self, key: &[u8]) -> Option<&Entry> {
        let slot = self.slots.get_mut(key)?;
        slot.used = true;
        Some(&slot.entry)
    }

    /// Caches `entry` (marked used if the key was cached already); returns how many entries
    /// were evicted for it, or `None` if it is larger than the whole budget and was not cached.
    pub fn insert(&mut self, key: Bytes, entry: Entry) -> Option<usize> {
        let c = cost(&key, &entry);
        if c > self.budget_bytes {
            self.take(&key);
            return None;
        }
        if let Some(slot) = self.slots.get_mut(&key) {
            self.bytes = self.bytes - slot.cost + c;
            slot.cost = c;
            slot.entry = entry;
            slot.used = true;
            return Some(self.evict_over_budget(Some(&key)));
        }
        let budget = self.budget_bytes;
        let evicted = self.evict_while(|bytes| bytes + c > budget, None);
        let generation = self.next_generation;
        self.next_generation += 1;
        self.ring.push_back((key.clone(), generation));
        self.slots.insert(key, Slot { entry, cost: c, used: false, generation });
        self.bytes += c;
        self.compact();
        Some(evicted)
    }

    /// Evicts until the cached bytes are within budget again, sparing `keep`.
    fn evict_over_budget(&mut self, keep: Option<&Bytes>) -> usize {
        let budget = self.budget_bytes;
        self.evict_while(|bytes| bytes > budget, keep)
    }

    /// Moves the hand while `over(cached bytes)` holds: an entry used since its last visit
    /// gets a second chance, one not used is evicted.
    fn evict_while(&mut self, over: impl Fn(usize) -> bool, keep: Option<&Bytes>) -> usize {
        let mut evicted = 0;
        while over(self.bytes) {
            let Some((key, generation)) = self.ring.pop_front() else { break };
            let Some(slot) = self.slots.get_mut(&key).filter(|s| s.generation == generation) else {
                continue; // taken since it was queued
            };
            if slot.used || keep == Some(&key) {
                slot.used = false;
                self.ring.push_back((key, generation));
                if keep == Some(&self.ring[0].0) && self.slots.len() == 1 {
                    break; // only the spared entry is left
                }
                continue;
            }
            let slot = self.slots.remove(&key).expect("present");
            self.bytes -= slot.cost;
            evicted += 1;
        }
        evicted
    }

    /// Drops the stale ring positions once they outnumber the live ones.
    fn compact(&mut self) {
        if self.ring.len() > 2 * self.slots.len() + 1024 {
            let slots = &self.slots;
            self.ring.retain(|(k, g)| slots.get(k).is_some_and(|s| s.generation == *g));
        }
    }

    pub fn clear(&mut self) {
        self.slots.clear();
        self.ring.clear();
        self.bytes = 0;
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiongrid_model::Value;

    fn entry(len: usize) -> Entry {
        Entry::new(Value::Str(Bytes::from(vec![b'x'; len])))
    }

    #[test]
    fn stays_within_budget_evicting_least_recent() {
        let one = cost(&Bytes::from_static(b"k0"), &entry(100));
        let mut cache = EntryCache::new(one * 3);
        for i in 0..3 {
            cache.insert(Bytes::from(format!("k{i}")), entry(100));
        }
        assert!(cache.get(b"k0").is_some());
        assert_eq!(cache.insert(Bytes::from_static(b"k3"), entry(100)), Some(1));
        assert!(cache.bytes() <= one * 3);
        assert!(cache.take(b"k1").is_none(), "the oldest entry not used since went first");
        assert!(cache.take(b"k0").is_some(), "a used entry got a second chance");
    }

    #[test]
    fn a_patch_keeps_the_charged_bytes_exact_and_the_budget() {
        let one = cost(&Bytes::from_static(b"k0"), &entry(100));
        let budget = one * 3 + 20;
        let mut cache = EntryCache::new(budget);
        for i in 0..3 {
            cache.insert(Bytes::from(format!("k{i}")), entry(100));
        }
        let grow = |by: usize| {
            move |slot: &mut Option<Entry>| {
                let e = slot.as_mut()?;
                let Value::Str(s) = &e.value else { return None };
                e.value = Value::Str(Bytes::from(vec![b'x'; s.len() + by]));
                Some(by as isize)
            }
        };
        assert!(cache.patch(b"k1", grow(10)));
        assert_eq!(cache.bytes(), 3 * one + 10, "within budget: nothing evicted");
        assert!(cache.patch(b"k1", grow(one)), "grown past the rest: others go");
        assert!(cache.get(b"k1").is_some() && cache.bytes() <= budget);
        assert!(!cache.patch(b"k1", grow(3 * one)), "past the whole budget: refused");
        assert!(!cache.patch(b"absent", grow(1)));
        assert!(!cache.patch(b"k1", |_| None), "a patch that fails is refused");
    }

    #[test]
    fn a_rewritten_entry_keeps_its_place_and_the_budget_holds() {
        let one = cost(&Bytes::from_static(b"k0"), &entry(100));
        let mut cache = EntryCache::new(one * 3);
        for i in 0..3 {
            cache.insert(Bytes::from(format!("k{i}")), entry(100));
        }
        assert_eq!(cache.insert(Bytes::from_static(b"k1"), entry(100)), Some(0));
        assert_eq!(cache.len(), 3);
        // Growing an entry past the budget evicts others, never the entry itself.
        let evicted = cache.insert(Bytes::from_static(b"k1"), entry(250));
        assert!(evicted.is_some_and(|n| n >= 1), "{evicted:?}");
        assert!(cache.get(b"k1").is_some());
        assert!(cache.bytes() <= one * 3);
    }

    #[test]
    fn taken_keys_do_not_pile_up_in_the_ring() {
        let mut cache = EntryCache::new(1 << 20);
        for i in 0..10_000 {
            let key = Bytes::from(format!("k{i}"));
            cache.insert(key.clone(), entry(10));
            cache.take(&key);
        }
        assert!(cache.is_empty());
        assert!(cache.ring.len() <= 1024 + 1);
    }

    #[test]
    fn oversized_entry_is_not_cached() {
        let mut cache = EntryCache::new(50);
        cache.insert(Bytes::from_static(b"big"), entry(1000));
        assert!(cache.is_empty());
        assert_eq!(cache.bytes(), 0);
    }
}
