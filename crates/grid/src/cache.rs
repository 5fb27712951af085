//! The in-memory tier: each partition's hot entries, within the node's memory budget.
//!
//! Disk holds every entry; the tiers hold the hot ones. An entry is charged its key, its value
//! bytes and a fixed overhead. The budget is the node's ([`Budget`]), not a fixed share of it
//! per partition: a partition holds more than its share while the node has room (one big
//! hash, or a node that holds copies of a few partitions only).
//!
//! Under pressure each tier evicts its own entries not used since its eviction hand last
//! passed them (CLOCK, second chance: an approximation of least recently used in which a hit
//! only sets a bit, instead of relinking a list, which costs a GET several cache misses). A
//! tier that grows past the budget evicts its own; one that had to although it held no more
//! than its share (the budget over the tiers holding anything) records what it gave up, and
//! tiers above their share give that much back at their next tick ([`EntryCache::trim`]), so a
//! partition gone cold cannot keep memory a busy one needs. The node's total stays within the
//! budget, except by an entry that its tier holds alone. An entry that costs more than a
//! quarter of the budget is not cached at all.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashMap;
use sessiongrid_model::Entry;

/// A node's memory budget for entries, shared by its partitions' tiers.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    /// What every tier holds, summed.
    used: AtomicUsize,
    /// Tiers holding anything: the budget's shares.
    tiers: AtomicUsize,
    /// Bytes tiers within their share evicted for want of room; tiers above theirs owe as much.
    wanted: AtomicUsize,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
            tiers: AtomicUsize::new(0),
            wanted: AtomicUsize::new(0),
        })
    }

    /// What the node's tiers hold.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// One tier's fair share: the budget over the tiers holding anything.
    fn share(&self) -> usize {
        self.limit / self.tiers.load(Ordering::Relaxed).max(1)
    }

    /// The most one entry may cost and be cached.
    fn entry_max(&self) -> usize {
        self.limit / 4
    }

    /// True if `extra` more bytes would not fit.
    fn over(&self, extra: usize) -> bool {
        self.used().saturating_add(extra) > self.limit
    }

    fn want(&self, bytes: usize) {
        let _ = self.wanted.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
            Some(w.saturating_add(bytes).min(self.limit))
        });
    }

    /// Bytes owed to tiers within their share, if the node lacks that room; forgets the debt
    /// once it has it.
    fn owed(&self) -> usize {
        let wanted = self.wanted.load(Ordering::Relaxed);
        if wanted > 0 && !self.over(wanted) {
            self.paid(wanted);
            return 0;
        }
        wanted
    }

    fn paid(&self, bytes: usize) {
        let _ = self
            .wanted
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some(w.saturating_sub(bytes)));
    }
}

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
    budget: Arc<Budget>,
}

fn cost(key: &[u8], entry: &Entry) -> usize {
    key.len() + entry.cost_bytes()
}

impl EntryCache {
    pub fn new(budget: Arc<Budget>) -> Self {
        EntryCache {
            slots: HashMap::new(),
            ring: VecDeque::new(),
            next_generation: 0,
            bytes: 0,
            budget,
        }
    }

    /// Sets what this tier holds, and the node's total with it.
    fn set_bytes(&mut self, bytes: usize) {
        let (before, budget) = (self.bytes, &self.budget);
        self.bytes = bytes;
        if bytes >= before {
            budget.used.fetch_add(bytes - before, Ordering::Relaxed);
        } else {
            budget.used.fetch_sub(before - bytes, Ordering::Relaxed);
        }
        match (before == 0, bytes == 0) {
            (true, false) => budget.tiers.fetch_add(1, Ordering::Relaxed),
            (false, true) => budget.tiers.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
    }

    /// Removes and returns the entry, so the caller can modify it and [`insert`](Self::insert)
    /// it back.
    pub fn take(&mut self, key: &[u8]) -> Option<Entry> {
        let slot = self.slots.remove(key)?;
        self.set_bytes(self.bytes - slot.cost);
        Some(slot.entry)
    }

    /// Changes the cached entry in place with `f`, which reports by how much its cost changed
    /// (`None`: it could not change it). Returns how many other entries were evicted for it,
    /// or `None` if the key is not cached, `f` failed or the entry grew too big to be cached:
    /// the caller then drops the entry.
    pub fn patch(
        &mut self,
        key: &[u8],
        f: impl FnOnce(&mut Option<Entry>) -> Option<isize>,
    ) -> Option<usize> {
        let slot = self.slots.get_mut(key)?;
        let mut entry = Some(std::mem::replace(&mut slot.entry, Entry::deleted(0)));
        let change = f(&mut entry);
        let (Some(change), Some(patched)) = (change, entry) else { return None };
        slot.entry = patched;
        slot.used = true;
        slot.cost = slot.cost.saturating_add_signed(change);
        let too_big = slot.cost > self.budget.entry_max();
        self.set_bytes(self.bytes.saturating_add_signed(change));
        if too_big {
            return None;
        }
        Some(self.make_room(0, Some(key)))
    }

    /// The cached entry, now marked used.
    pub fn get(&mut self, key: &[u8]) -> Option<&Entry> {
        let slot = self.slots.get_mut(key)?;
        slot.used = true;
        Some(&slot.entry)
    }

    /// Caches `entry` (marked used if the key was cached already); returns how many entries
    /// were evicted for it, or `None` if it is too big to be cached (and was not). A key new to
    /// the tier is copied into a buffer of its own: a request's key may share one with the
    /// request's other arguments (see the RESP decoder), which the tier must not keep alive.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<usize> {
        let c = cost(key, &entry);
        if c > self.budget.entry_max() {
            self.take(key);
            return None;
        }
        if let Some(slot) = self.slots.get_mut(key) {
            let before = slot.cost;
            slot.cost = c;
            slot.entry = entry;
            slot.used = true;
            self.set_bytes(self.bytes - before + c);
            return Some(self.make_room(0, Some(key)));
        }
        let evicted = self.make_room(c, None);
        let key = Bytes::copy_from_slice(key);
        let generation = self.next_generation;
        self.next_generation += 1;
        self.ring.push_back((key.clone(), generation));
        self.slots.insert(key, Slot { entry, cost: c, used: false, generation });
        self.set_bytes(self.bytes + c);
        self.compact();
        Some(evicted)
    }

    /// Evicts this tier's entries, sparing `keep`, until the node has room for `extra` more
    /// bytes; returns how many went. What a tier within its share gives up, or cannot find,
    /// is owed to it by the tiers above theirs.
    fn make_room(&mut self, extra: usize, keep: Option<&[u8]>) -> usize {
        if !self.budget.over(extra) {
            return 0;
        }
        let budget = self.budget.clone();
        let modest = self.bytes + extra <= budget.share();
        let before = self.bytes;
        let evicted = self.evict_while(|_| budget.over(extra), keep);
        let short = (budget.used() + extra).saturating_sub(budget.limit);
        let given = if modest { before - self.bytes } else { 0 };
        budget.want(given + short);
        evicted
    }

    /// Gives back what tiers within their share are owed, if this one holds more than its
    /// share (at the partition's tick); returns how many entries went.
    pub fn trim(&mut self) -> usize {
        let share = self.budget.share();
        if self.bytes <= share {
            return 0;
        }
        let owed = self.budget.owed();
        if owed == 0 {
            return 0;
        }
        let goal = self.bytes - (self.bytes - share).min(owed);
        let before = self.bytes;
        let evicted = self.evict_while(|bytes| bytes > goal, None);
        self.budget.paid(before - self.bytes);
        evicted
    }

    /// Moves the hand while `over(this tier's bytes)` holds: an entry used since its last
    /// visit gets a second chance, one not used is evicted.
    fn evict_while(&mut self, over: impl Fn(usize) -> bool, keep: Option<&[u8]>) -> usize {
        let mut evicted = 0;
        while over(self.bytes) {
            let Some((key, generation)) = self.ring.pop_front() else { break };
            let Some(slot) = self.slots.get_mut(&key).filter(|s| s.generation == generation) else {
                continue; // taken since it was queued
            };
            if slot.used || keep == Some(&key[..]) {
                slot.used = false;
                self.ring.push_back((key, generation));
                if keep == Some(&self.ring[0].0[..]) && self.slots.len() == 1 {
                    break; // only the spared entry is left
                }
                continue;
            }
            let slot = self.slots.remove(&key).expect("present");
            self.set_bytes(self.bytes - slot.cost);
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
        self.set_bytes(0);
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

impl Drop for EntryCache {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiongrid_model::Value;

    fn entry(len: usize) -> Entry {
        Entry::new(Value::Str(Bytes::from(vec![b'x'; len])))
    }

    /// What a key of `fill` with `entry(len)` costs.
    fn one(len: usize) -> usize {
        cost(b"k0000", &entry(len))
    }

    fn fill(cache: &mut EntryCache, from: usize, n: usize, len: usize) {
        for i in from..from + n {
            cache.insert(format!("k{i:04}").as_bytes(), entry(len));
        }
    }

    #[test]
    fn a_key_new_to_the_tier_is_kept_in_a_buffer_of_its_own() {
        let mut cache = EntryCache::new(Budget::new(one(100) * 4));
        // A request's arguments in one piece: the key must not keep the value alive.
        let request =
            Bytes::from(b"SETk0001".iter().chain(&[b'v'; 4000]).copied().collect::<Vec<_>>());
        let key = request.slice(3..8);
        assert_eq!(cache.insert(&key, entry(100)), Some(0));
        let (kept, _) = cache.slots.get_key_value(&key[..]).expect("cached");
        assert_eq!(kept, &key);
        assert!(!std::ptr::eq(kept.as_ptr(), key.as_ptr()), "a copy, not a slice of the request");
        assert_eq!(kept.len(), 5);
    }

    #[test]
    fn stays_within_budget_evicting_least_recent() {
        let mut cache = EntryCache::new(Budget::new(one(100) * 4));
        fill(&mut cache, 0, 4, 100);
        assert!(cache.get(b"k0000").is_some());
        assert_eq!(cache.insert(b"k0004", entry(100)), Some(1));
        assert!(cache.budget.used() <= one(100) * 4);
        assert!(cache.take(b"k0001").is_none(), "the oldest entry not used since went first");
        assert!(cache.take(b"k0000").is_some(), "a used entry got a second chance");
    }

    #[test]
    fn a_patch_keeps_the_charged_bytes_exact_and_the_budget() {
        let budget = one(100) * 12 + 20;
        let mut cache = EntryCache::new(Budget::new(budget));
        fill(&mut cache, 0, 12, 100);
        let grow = |by: usize| {
            move |slot: &mut Option<Entry>| {
                let e = slot.as_mut()?;
                let Value::Str(s) = &e.value else { return None };
                e.value = Value::Str(Bytes::from(vec![b'x'; s.len() + by]));
                Some(by as isize)
            }
        };
        assert_eq!(cache.patch(b"k0001", grow(10)), Some(0));
        assert_eq!(cache.bytes(), 12 * one(100) + 10, "within budget: nothing evicted");
        assert_eq!(cache.patch(b"k0001", grow(one(100))), Some(1), "grown past the rest: one goes");
        assert!(cache.get(b"k0001").is_some() && cache.budget.used() <= budget);
        assert_eq!(cache.patch(b"k0001", grow(budget)), None, "past a quarter of the budget");
        assert_eq!(cache.patch(b"absent", grow(1)), None);
        assert_eq!(cache.patch(b"k0002", |_| None), None, "a patch that fails is refused");
    }

    #[test]
    fn a_rewritten_entry_keeps_its_place_and_the_budget_holds() {
        let mut cache = EntryCache::new(Budget::new(one(100) * 8));
        fill(&mut cache, 0, 8, 100);
        assert_eq!(cache.insert(b"k0001", entry(100)), Some(0));
        assert_eq!(cache.len(), 8);
        // Growing an entry past the budget evicts others, never the entry itself.
        let evicted = cache.insert(b"k0001", entry(250));
        assert!(evicted.is_some_and(|n| n >= 1), "{evicted:?}");
        assert!(cache.get(b"k0001").is_some());
        assert!(cache.budget.used() <= one(100) * 8);
    }

    #[test]
    fn taken_keys_do_not_pile_up_in_the_ring() {
        let mut cache = EntryCache::new(Budget::new(1 << 20));
        for i in 0..10_000 {
            let key = Bytes::from(format!("k{i}"));
            cache.insert(&key, entry(10));
            cache.take(&key);
        }
        assert!(cache.is_empty());
        assert!(cache.ring.len() <= 1024 + 1);
    }

    #[test]
    fn an_entry_past_a_quarter_of_the_budget_is_not_cached() {
        let mut cache = EntryCache::new(Budget::new(4000));
        assert_eq!(cache.insert(b"big", entry(1000)), None);
        assert!(cache.is_empty());
        assert_eq!(cache.budget.used(), 0);
    }

    #[test]
    fn one_tier_uses_the_budget_the_others_leave() {
        let budget = Budget::new(one(100) * 100);
        let mut busy = EntryCache::new(budget.clone());
        let idle = EntryCache::new(budget.clone());
        fill(&mut busy, 0, 100, 100);
        assert_eq!((busy.len(), idle.len()), (100, 0), "the whole budget, with nobody else");
        drop(idle);
        drop(busy);
        assert_eq!((budget.used(), budget.tiers.load(Ordering::Relaxed)), (0, 0), "given back");
    }

    #[test]
    fn a_tier_gone_cold_gives_back_what_a_busy_one_within_its_share_needs() {
        let budget = Budget::new(one(100) * 100);
        let mut cold = EntryCache::new(budget.clone());
        let mut busy = EntryCache::new(budget.clone());
        fill(&mut cold, 0, 90, 100);
        // The busy tier, within its share (half the budget), evicts its own meanwhile.
        fill(&mut busy, 1000, 40, 100);
        assert!(budget.used() <= one(100) * 100);
        assert!(busy.len() < 40, "room was short: {}", busy.len());
        assert_eq!(busy.trim(), 0, "within its share: owes nothing");
        assert!(cold.trim() > 0, "above its share: gives back what the busy one lost");
        assert!(cold.bytes() >= one(100) * 50, "not below its share");
        let room = (one(100) * 100 - budget.used()) / one(100);
        fill(&mut busy, 2000, room, 100);
        assert_eq!(busy.len(), 40, "the busy tier grew back into the room given");
        assert_eq!(budget.used(), one(100) * 100);
        assert_eq!(cold.trim(), 0, "the debt is paid");
    }
}
