//! Which pages of the span heap are free: one bit per page and arena, searched in address order,
//! and a max-tree over the arenas that says which may hold a run of a given length.
//!
//! This is the shape of Go's page allocator (runtime/mpagealloc.go): a bitmap in which a set bit
//! is a free page, so that freeing is setting bits and coalescing needs no work at all, and an
//! allocation takes the lowest run of free pages that is long enough (address-ordered first fit,
//! Go's policy too: studies of allocators find it fragments about as little as best fit, and the
//! bitmap makes it cheap). Go summarises each bitmap chunk in a radix tree; here a search starts at the lowest
//! word that may hold a free page (`hint`), which covers the common case of a short request in a
//! heap whose low pages are in use, and the arenas keep an upper bound of their longest free run
//! in a max-tree, so that a request skips, in O(log arenas), every arena that cannot hold it
//! (the stack heap of a million coroutines has thousands of arenas, each with a small remnant).

/// One arena's free pages: bit `p % 64` of word `p / 64` is set while page `p` is free. Bits past
/// the arena's last page stay clear.
pub(super) struct FreeMap {
    bits: Box<[u64]>,
    /// Pages whose bit is set.
    free: usize,
    /// Every word below this one is 0: a search starts here.
    hint: usize,
}

impl FreeMap {
    /// A map of `npages` pages, all free.
    pub(super) fn all_free(npages: usize) -> FreeMap {
        let mut bits = vec![u64::MAX; npages.div_ceil(64)].into_boxed_slice();
        if !npages.is_multiple_of(64) {
            bits[npages / 64] = (1u64 << (npages % 64)) - 1;
        }
        FreeMap { bits, free: npages, hint: 0 }
    }

    /// Free pages in the arena.
    pub(super) fn free_pages(&self) -> usize {
        self.free
    }

    /// The first page of the lowest run of `n` free pages (`n > 0`), if there is one.
    #[inline]
    pub(super) fn find(&mut self, n: usize) -> Option<usize> {
        if self.free < n {
            return None;
        }
        let bits = &self.bits;
        let mut word = self.hint;
        while word < bits.len() && bits[word] == 0 {
            word += 1;
        }
        self.hint = word;
        // A run of free pages that reaches the top of the words scanned so far.
        let (mut run_start, mut run_len) = (0, 0);
        while word < bits.len() {
            let w = bits[word];
            if run_len > 0 {
                let low = w.trailing_ones() as usize;
                if run_len + low >= n {
                    return Some(run_start);
                }
                if low == 64 {
                    run_len += 64;
                    word += 1;
                    continue;
                }
            }
            if n <= 64 {
                let starts = run_starts(w, n);
                if starts != 0 {
                    return Some(word * 64 + starts.trailing_zeros() as usize);
                }
            }
            let high = w.leading_ones() as usize;
            (run_start, run_len) = (word * 64 + 64 - high, high);
            word += 1;
        }
        None
    }

    /// Marks pages `[first, first + n)`, all free, as in use.
    #[inline]
    pub(super) fn take(&mut self, first: usize, n: usize) {
        for_each_word(first, n, |word, mask| {
            debug_assert_eq!(self.bits[word] & mask, mask, "span heap: taking a page in use");
            self.bits[word] &= !mask;
        });
        self.free -= n;
    }

    /// The free pages of word `word` (pages `64 * word ..`), all taken: now in use.
    pub(super) fn take_word(&mut self, word: usize) -> u64 {
        let bits = std::mem::take(&mut self.bits[word]);
        self.free -= bits.count_ones() as usize;
        bits
    }

    /// The pages `bits` of word `word`, all in use, free again.
    pub(super) fn give_word(&mut self, word: usize, bits: u64) {
        debug_assert_eq!(self.bits[word] & bits, 0, "span heap: freeing a free page");
        self.bits[word] |= bits;
        self.free += bits.count_ones() as usize;
        self.hint = self.hint.min(word);
    }

    /// Marks pages `[first, first + n)`, all in use, as free again.
    #[inline]
    pub(super) fn give(&mut self, first: usize, n: usize) {
        for_each_word(first, n, |word, mask| {
            debug_assert_eq!(self.bits[word] & mask, 0, "span heap: freeing a free page");
            self.bits[word] |= mask;
        });
        self.free += n;
        self.hint = self.hint.min(first / 64);
    }
}

/// The bits `i` of `w` at which a run of `n` set bits (`1 <= n <= 64`) starts inside `w`.
#[inline(always)]
pub(super) fn run_starts(mut w: u64, n: usize) -> u64 {
    // Invariant: bit i of w is set iff bits i..i + have of the original are all set.
    let mut have = 1;
    while have < n {
        let step = have.min(n - have);
        w &= w >> step;
        have += step;
    }
    w
}

/// Calls `f(word_index, mask)` for the bits of pages `[first, first + n)`, one word at a time.
#[inline(always)]
pub(super) fn for_each_word(first: usize, n: usize, mut f: impl FnMut(usize, u64)) {
    let bit = first % 64;
    if n != 0 && bit + n <= 64 {
        // One word (a small span's case): one mask, no loop.
        return f(first / 64, (u64::MAX >> (64 - n)) << bit);
    }
    let mut page = first;
    let end = first + n;
    while page < end {
        let bit = page % 64;
        let count = (64 - bit).min(end - page);
        let mask = if count == 64 { u64::MAX } else { ((1u64 << count) - 1) << bit };
        f(page / 64, mask);
        page += count;
    }
}

/// For each arena, an upper bound of its longest run of free pages, in a max-tree: the first
/// arena that may hold `n` pages is found in O(log arenas). A bound is lowered when a search of
/// its arena fails, and raised to the arena's free page count when pages are freed there, so it
/// never understates.
#[derive(Default)]
pub(super) struct ArenaFits {
    /// Leaves (a power of two, at least the number of arenas).
    leaves: usize,
    /// `tree[1]` is the root; node `i`'s children are `2i` and `2i + 1`; leaf `a` is
    /// `tree[leaves + a]`. Unused leaves hold 0.
    tree: Vec<usize>,
}

impl ArenaFits {
    /// Adds the bound of arena `index`, the next one.
    pub(super) fn push(&mut self, index: usize, bound: usize) {
        if index >= self.leaves {
            let old: Vec<usize> = (0..self.leaves).map(|a| self.tree[self.leaves + a]).collect();
            self.leaves = (index + 1).next_power_of_two();
            self.tree = vec![0; 2 * self.leaves];
            for (a, bound) in old.into_iter().enumerate() {
                self.set(a, bound);
            }
        }
        self.set(index, bound);
    }

    /// The bound of arena `index`.
    pub(super) fn get(&self, index: usize) -> usize {
        self.tree[self.leaves + index]
    }

    /// Sets the bound of arena `index`.
    pub(super) fn set(&mut self, index: usize, bound: usize) {
        let mut node = self.leaves + index;
        self.tree[node] = bound;
        while node > 1 {
            node /= 2;
            self.tree[node] = self.tree[2 * node].max(self.tree[2 * node + 1]);
        }
    }

    /// The lowest arena whose bound is at least `n`.
    #[inline]
    pub(super) fn first_at_least(&self, n: usize) -> Option<usize> {
        if self.leaves == 0 || self.tree[1] < n {
            return None;
        }
        let mut node = 1;
        while node < self.leaves {
            node = if self.tree[2 * node] >= n { 2 * node } else { 2 * node + 1 };
        }
        Some(node - self.leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lowest run of `n` set bits in `map`, found one page at a time.
    fn naive_find(map: &FreeMap, npages: usize, n: usize) -> Option<usize> {
        let free = |p: usize| map.bits[p / 64] & (1 << (p % 64)) != 0;
        (0..npages.saturating_sub(n - 1)).find(|&start| (start..start + n).all(free))
    }

    #[test]
    fn runs_inside_a_word() {
        assert_eq!(run_starts(0b0111_0110, 1), 0b0111_0110);
        assert_eq!(run_starts(0b0111_0110, 2), 0b0011_0010);
        assert_eq!(run_starts(0b0111_0110, 3), 0b0001_0000);
        assert_eq!(run_starts(0b0111_0110, 4), 0);
        assert_eq!(run_starts(u64::MAX, 64), 1);
        assert_eq!(run_starts(u64::MAX >> 1, 64), 0);
    }

    #[test]
    fn a_fresh_map_has_exactly_its_pages() {
        let mut map = FreeMap::all_free(130);
        assert_eq!(map.free_pages(), 130);
        assert_eq!(map.find(130), Some(0));
        assert_eq!(map.find(131), None);
        map.take(0, 130);
        assert_eq!(map.find(1), None);
        assert_eq!(map.bits.iter().map(|w| w.count_ones()).sum::<u32>(), 0);
    }

    #[test]
    fn first_fit_matches_a_page_by_page_search() {
        // Random takes and gives on a three-word arena (the top word partial), each find compared
        // with the naive search over every length that crosses words.
        let npages = 150;
        let mut map = FreeMap::all_free(npages);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let mut taken: Vec<(usize, usize)> = Vec::new();
        for _ in 0..4000 {
            let long = next(4) == 0;
            let n = 1 + next(if long { 140 } else { 9 });
            let expected = naive_find(&map, npages, n);
            assert_eq!(map.find(n), expected, "n = {n}");
            if let Some(first) = expected.filter(|_| next(3) != 0) {
                map.take(first, n);
                taken.push((first, n));
            } else if !taken.is_empty() {
                let (first, n) = taken.swap_remove(next(taken.len()));
                map.give(first, n);
            }
            let set: u32 = map.bits.iter().map(|w| w.count_ones()).sum();
            assert_eq!(set as usize, map.free_pages());
        }
    }

    #[test]
    fn the_tree_finds_the_lowest_arena_that_may_fit() {
        let mut fits = ArenaFits::default();
        assert_eq!(fits.first_at_least(1), None);
        for (a, bound) in [5, 0, 9, 3, 9].into_iter().enumerate() {
            fits.push(a, bound);
        }
        assert_eq!(fits.first_at_least(1), Some(0));
        assert_eq!(fits.first_at_least(6), Some(2));
        assert_eq!(fits.first_at_least(10), None);
        fits.set(2, 4);
        assert_eq!(fits.first_at_least(6), Some(4));
        assert_eq!(fits.get(4), 9);
        fits.set(0, 0);
        assert_eq!(fits.first_at_least(1), Some(2));
    }
}
