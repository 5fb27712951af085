//! `LCS`: the longest common subsequence of two strings, and the runs in which they match.
//!
//! The classic dynamic programme: a table of the subsequence's length for every pair of
//! prefixes, walked back from the end. Its size, `(a + 1) * (b + 1)` cells of 4 bytes, is what a
//! caller must bound first ([`table_bytes`]).

/// A run of the subsequence that lies contiguously in both strings: inclusive byte ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub a: (usize, usize),
    pub b: (usize, usize),
}

impl Run {
    /// How many bytes the run spans (in each string).
    pub fn match_len(&self) -> usize {
        self.a.1 - self.a.0 + 1
    }
}

/// The longest common subsequence, and its runs from the strings' ends to their starts (the
/// order Redis lists them in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lcs {
    pub text: Vec<u8>,
    pub runs: Vec<Run>,
}

/// Bytes the table for strings of `a` and `b` bytes takes; `None` past `u64`.
pub fn table_bytes(a: usize, b: usize) -> Option<u64> {
    let side = |n: usize| (n as u64).checked_add(1);
    side(a)?.checked_mul(side(b)?)?.checked_mul(4)
}

/// `table[i][j]`: the length of the longest common subsequence of `a[..i]` and `b[..j]`.
struct Table {
    cells: Vec<u32>,
    width: usize,
}

impl Table {
    fn of(a: &[u8], b: &[u8]) -> Table {
        let width = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            let (above, row) = cells[(i - 1) * width..(i + 1) * width].split_at_mut(width);
            for j in 1..width {
                row[j] =
                    if a[i - 1] == b[j - 1] { above[j - 1] + 1 } else { above[j].max(row[j - 1]) };
            }
        }
        Table { cells, width }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }
}

/// The length of the longest common subsequence of `a` and `b`.
pub fn len(a: &[u8], b: &[u8]) -> usize {
    Table::of(a, b).at(a.len(), b.len()) as usize
}

/// The longest common subsequence of `a` and `b`, and its runs.
pub fn lcs(a: &[u8], b: &[u8]) -> Lcs {
    let table = Table::of(a, b);
    let mut text = Vec::with_capacity(table.at(a.len(), b.len()) as usize);
    let mut runs = Vec::new();
    let mut open: Option<Run> = None;
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            text.push(a[i - 1]);
            match &mut open {
                // The match just before, in both strings: the run grows backwards.
                Some(run) if run.a.0 == i && run.b.0 == j => {
                    run.a.0 -= 1;
                    run.b.0 -= 1;
                }
                _ => {
                    runs.extend(open.take());
                    open = Some(Run { a: (i - 1, i - 1), b: (j - 1, j - 1) });
                }
            }
            i -= 1;
            j -= 1;
        } else {
            runs.extend(open.take());
            if table.at(i - 1, j) > table.at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
        }
    }
    runs.extend(open);
    text.reverse();
    Lcs { text, runs }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(a: (usize, usize), b: (usize, usize)) -> Run {
        Run { a, b }
    }

    #[test]
    fn the_subsequence_and_its_runs_from_the_end() {
        let found = lcs(b"ohmytext", b"mynewtext");
        assert_eq!(found.text, b"mytext");
        assert_eq!(found.runs, [run((4, 7), (5, 8)), run((2, 3), (0, 1))]);
        assert_eq!(found.runs.iter().map(Run::match_len).collect::<Vec<_>>(), [4, 2]);
        assert_eq!(len(b"ohmytext", b"mynewtext"), 6);
    }

    #[test]
    fn empty_and_disjoint_strings_share_nothing() {
        for (a, b) in [(&b""[..], &b"abc"[..]), (b"abc", b""), (b"abc", b"xyz"), (b"", b"")] {
            assert_eq!(lcs(a, b), Lcs { text: Vec::new(), runs: Vec::new() });
            assert_eq!(len(a, b), 0);
        }
    }

    #[test]
    fn equal_strings_are_one_run() {
        let found = lcs(b"session", b"session");
        assert_eq!(found.text, b"session");
        assert_eq!(found.runs, [run((0, 6), (0, 6))]);
    }

    #[test]
    fn every_run_matches_in_both_strings_and_they_spell_the_subsequence() {
        let (a, b) =
            (b"GTTCCACGTGACTAGGATCAAAGCGT".as_slice(), b"GTCAGCAACCTTGAACATTGA".as_slice());
        let found = lcs(a, b);
        assert_eq!(found.text.len(), len(a, b));
        let mut spelled = Vec::new();
        for r in found.runs.iter().rev() {
            assert_eq!(&a[r.a.0..=r.a.1], &b[r.b.0..=r.b.1]);
            spelled.extend_from_slice(&a[r.a.0..=r.a.1]);
        }
        assert_eq!(spelled, found.text);
    }

    #[test]
    fn the_table_size_is_bounded_before_it_is_built() {
        assert_eq!(table_bytes(0, 0), Some(4));
        assert_eq!(table_bytes(9, 99), Some(10 * 100 * 4));
        assert_eq!(table_bytes(usize::MAX, usize::MAX), None);
    }
}
