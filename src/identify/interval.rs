//! Sorted, disjoint, inclusive address ranges, each with a small value,
//! searched through an index of the address's top 16 bits.
//!
//! Both address tables on the request path are of this shape: the network
//! table (400,000 ranges, each with its AS number) and the operators'
//! published crawler ranges (a few thousand, each with the set of sources
//! that list it). A plain binary search over all ranges costs a dozen
//! dependent, unpredictable comparisons per lookup (wide ones for IPv6); the
//! block index narrows it to the ranges starting in the address's block and
//! the one before, for 256 KiB per family.

/// An address as a sortable integer, and its block (top 16 bits).
pub(crate) trait Addr: Ord + Copy {
    /// The highest address of the family.
    const MAX: Self;
    fn block(self) -> usize;
    fn block_start(block: usize) -> Self;
    /// The next address, if any.
    fn succ(self) -> Option<Self>;
    /// The address before (`self` itself for 0).
    fn pred(self) -> Self;
}

macro_rules! addr {
    ($t:ty) => {
        impl Addr for $t {
            const MAX: Self = <$t>::MAX;
            fn block(self) -> usize {
                (self >> (<$t>::BITS - 16)) as usize
            }
            fn block_start(block: usize) -> Self {
                (block as $t) << (<$t>::BITS - 16)
            }
            fn succ(self) -> Option<Self> {
                self.checked_add(1)
            }
            fn pred(self) -> Self {
                self.saturating_sub(1)
            }
        }
    };
}
addr!(u32);
addr!(u64);
addr!(u128);

const BLOCKS: usize = 1 << 16;

/// The ranges of one address family as parallel vectors (no padding: 12
/// bytes a range for IPv4 with a `u32` value), pushed in order, then indexed.
#[derive(Debug, Clone)]
pub(crate) struct Ranges<A, V> {
    starts: Vec<A>,
    ends: Vec<A>,
    values: Vec<V>,
    /// `blocks[b]`: how many ranges start before block `b` (65,537 entries
    /// once [`Ranges::index`] has run; empty before, and then a lookup
    /// searches every range).
    blocks: Vec<u32>,
}

impl<A, V> Default for Ranges<A, V> {
    fn default() -> Self {
        Self {
            starts: Vec::new(),
            ends: Vec::new(),
            values: Vec::new(),
            blocks: Vec::new(),
        }
    }
}

impl<A: Addr, V: Copy> Ranges<A, V> {
    /// The value of the range holding `addr`.
    pub(crate) fn find(&self, addr: A) -> Option<V> {
        let b = addr.block();
        // The range that holds the address starts in its block or is the
        // last one before.
        let (lo, hi) = match (self.blocks.get(b), self.blocks.get(b + 1)) {
            (Some(&lo), Some(&hi)) => (lo as usize, hi as usize),
            _ => (0, self.starts.len()),
        };
        let within = self.starts.get(lo..hi)?.partition_point(|s| *s <= addr);
        let i = (lo + within).checked_sub(1)?;
        (addr <= *self.ends.get(i)?)
            .then(|| self.values.get(i).copied())
            .flatten()
    }

    /// Adds a range after the last one (the caller keeps them sorted and
    /// disjoint).
    pub(crate) fn push(&mut self, start: A, end: A, value: V) {
        self.starts.push(start);
        self.ends.push(end);
        self.values.push(value);
    }

    /// The last range's end and value, to check or merge the next one.
    pub(crate) fn last(&self) -> Option<(A, V)> {
        Some((*self.ends.last()?, *self.values.last()?))
    }

    /// Moves the last range's end (to merge a contiguous range into it).
    pub(crate) fn extend_last(&mut self, end: A) {
        if let Some(last) = self.ends.last_mut() {
            *last = end;
        }
    }

    /// Gives back the vectors' spare room (after the last push).
    pub(crate) fn shrink(&mut self) {
        self.starts.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.values.shrink_to_fit();
    }

    /// Builds the block index (after the last push), and gives back the
    /// vectors' spare room. A few hundred ranges need no index (256 KiB):
    /// a search of them all is as short.
    pub(crate) fn index(&mut self) {
        self.shrink();
        let mut blocks = Vec::with_capacity(BLOCKS + 1);
        let mut i = 0;
        for b in 0..BLOCKS {
            let first = A::block_start(b);
            i += self
                .starts
                .get(i..)
                .map_or(0, |s| s.partition_point(|s| *s < first));
            blocks.push(i as u32);
        }
        blocks.push(self.starts.len() as u32);
        self.blocks = blocks;
    }

    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// Heap bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.starts.capacity() * std::mem::size_of::<A>() * 2
            + self.values.capacity() * std::mem::size_of::<V>()
            + self.blocks.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_index_answers_as_a_search_of_every_range() {
        // Ranges that span blocks, fill one exactly, sit at either end of the
        // space, and blocks with none at all.
        let rows: &[(u32, u32, u32)] = &[
            (0, 0xff, 1),
            (0x0100_ff00, 0x0101_00ff, 2),
            (0x0102_0000, 0x0102_ffff, 3),
            (0x0a00_0000, 0x0aff_ffff, 4),
            (0x0b00_0001, 0x0b00_0001, 5),
            (0x0b00_0002, 0x0b00_0010, 6),
            (0xffff_ff00, 0xffff_ffff, 7),
        ];
        let mut r = Ranges::<u32, u32>::default();
        for &(a, b, asn) in rows {
            r.push(a, b, asn);
        }
        r.index();
        let slow = |a: u32| {
            rows.iter()
                .find(|(s, e, _)| *s <= a && a <= *e)
                .map(|x| x.2)
        };
        let mut probes: Vec<u32> = rows
            .iter()
            .flat_map(|&(a, b, _)| [a.wrapping_sub(1), a, b, b.wrapping_add(1)])
            .collect();
        probes.extend((0..=u16::MAX).flat_map(|b| {
            let start = u32::from(b) << 16;
            [start, start | 0xffff, start | 0x8000]
        }));
        for a in probes {
            assert_eq!(r.find(a), slow(a), "{a:#010x}");
        }
        // Unindexed (an empty block list): the same answers.
        r.blocks.clear();
        assert_eq!(r.find(0x0a12_3456), Some(4));
        assert_eq!(r.find(0x0b00_0000), None);
    }

    #[test]
    fn ipv6_blocks_are_the_top_16_bits() {
        let a: u128 = 0x2001_0db8 << 96;
        assert_eq!(a.block(), 0x2001);
        assert_eq!(u128::block_start(0x2001), 0x2001 << 112);
        assert_eq!(0x0a01_0203u32.block(), 0x0a01);
        assert_eq!(u32::MAX.succ(), None);
        assert_eq!(0u32.pred(), 0);
    }
}
