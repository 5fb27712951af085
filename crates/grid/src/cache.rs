//! The in-memory tier of one partition: least-recently-used entries within a byte budget.
//!
//! Disk holds every entry; the cache holds the hot ones. An entry is charged its key, its value
//! bytes and a fixed overhead; inserting past the budget evicts the least recently used entries.
//! An entry larger than the whole budget is not cached at all.

use bytes::Bytes;
use lru::LruCache;
use sessiongrid_model::Entry;

pub struct EntryCache {
    lru: LruCache<Bytes, Entry>,
    bytes: usize,
    budget_bytes: usize,
}

fn cost(key: &Bytes, entry: &Entry) -> usize {
    key.len() + entry.cost_bytes()
}

impl EntryCache {
    pub fn new(budget_bytes: usize) -> Self {
        EntryCache { lru: LruCache::unbounded(), bytes: 0, budget_bytes }
    }

    /// Removes and returns the entry, so the caller can modify it and [`insert`](Self::insert)
    /// it back.
    pub fn take(&mut self, key: &[u8]) -> Option<Entry> {
        let entry = self.lru.pop(key)?;
        self.bytes -= key.len() + entry.cost_bytes();
        Some(entry)
    }

    /// The cached entry, now the most recently used.
    pub fn get(&mut self, key: &[u8]) -> Option<&Entry> {
        self.lru.get(key)
    }

    /// Caches `entry` as the most recently used; returns how many entries were evicted for it,
    /// or `None` if it is larger than the whole budget and was not cached.
    pub fn insert(&mut self, key: Bytes, entry: Entry) -> Option<usize> {
        self.take(&key);
        let c = cost(&key, &entry);
        if c > self.budget_bytes {
            return None;
        }
        let mut evicted = 0;
        while self.bytes + c > self.budget_bytes {
            let Some((k, e)) = self.lru.pop_lru() else { break };
            self.bytes -= cost(&k, &e);
            evicted += 1;
        }
        self.bytes += c;
        self.lru.put(key, entry);
        Some(evicted)
    }

    pub fn clear(&mut self) {
        self.lru.clear();
        self.bytes = 0;
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.lru.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lru.is_empty()
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
        let touched = cache.take(b"k0").unwrap();
        cache.insert(Bytes::from_static(b"k0"), touched);
        assert_eq!(cache.insert(Bytes::from_static(b"k3"), entry(100)), Some(1));
        assert!(cache.bytes() <= one * 3);
        assert!(cache.take(b"k1").is_none(), "least recently used went first");
        assert!(cache.take(b"k0").is_some());
    }

    #[test]
    fn oversized_entry_is_not_cached() {
        let mut cache = EntryCache::new(50);
        cache.insert(Bytes::from_static(b"big"), entry(1000));
        assert!(cache.is_empty());
        assert_eq!(cache.bytes(), 0);
    }
}
