//! Random picks for `SPOP`, `SRANDMEMBER`, `HRANDFIELD` and `ZRANDMEMBER`, from a seed the door
//! chose: a primary and a replica replaying its log pick the same members.

/// A xorshift64 generator: enough to pick members, and cheap.
pub struct Picker(u64);

impl Picker {
    pub fn new(seed: u64) -> Self {
        Picker(seed | 1)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    /// `count` distinct positions of `0..n` in random order (all `n` if fewer).
    pub fn distinct(&mut self, n: usize, count: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        let wanted = count.min(n);
        for i in 0..wanted {
            let j = i + self.below(n - i);
            all.swap(i, j);
        }
        all.truncate(wanted);
        all
    }

    /// `count` positions of `0..n`, each drawn anew (none if `n` is 0).
    pub fn repeated(&mut self, n: usize, count: usize) -> Vec<usize> {
        if n == 0 {
            return Vec::new();
        }
        (0..count).map(|_| self.below(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Picker;

    #[test]
    fn distinct_picks_never_repeat_and_stop_at_the_size() {
        let mut p = Picker::new(42);
        let mut picks = p.distinct(10, 20);
        picks.sort();
        assert_eq!(picks, (0..10).collect::<Vec<_>>());
        assert_eq!(p.distinct(10, 3).len(), 3);
        assert!(p.repeated(3, 50).iter().all(|&i| i < 3));
        assert!(p.repeated(0, 5).is_empty());
    }
}
