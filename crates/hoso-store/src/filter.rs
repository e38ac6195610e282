//! Bloom filters of every stored event id and stream id, so that the writer looks one up in
//! the index only when it may be stored already: fresh event ids (almost all of them) and new
//! streams skip the lookup on the acknowledgement path.

use uuid::Uuid;

/// Bits per id and probes per lookup: about 1% false positives.
const BITS_PER_ID: u64 = 10;
const PROBES: u64 = 7;
/// Keys the first filter of the store-wide filters is sized for (1.25 MiB); each further
/// one is twice as large as the last. A lookup costs one memory access per filter in the
/// series, so it starts large: a province's year of event ids takes three.
const FIRST_CAPACITY: u64 = 1 << 20;

/// A growing Bloom filter: a series of filters, each sized for twice the keys of the previous.
pub(crate) struct KeyFilter {
    filters: Vec<Filter>,
}

struct Filter {
    bits: Vec<u64>,
    /// Number of blocks minus one (a power of two).
    block_mask: u64,
    ids: u64,
    capacity: u64,
}

/// A key's probes all fall in one block of 512 bits (one cache line): a lookup costs one
/// memory access per filter instead of one per probe, for a slightly higher false-positive rate.
const BLOCK_BITS: u64 = 512;
const BLOCK_WORDS: u64 = BLOCK_BITS / 64;

impl Filter {
    fn new(capacity: u64) -> Self {
        let n_bits = (capacity * BITS_PER_ID).next_power_of_two().max(BLOCK_BITS);
        Filter {
            bits: vec![0; (n_bits / 64) as usize],
            block_mask: n_bits / BLOCK_BITS - 1,
            ids: 0,
            capacity,
        }
    }

    /// The words and bits of a key's probes: the block from the first hash, the bits in it
    /// from nine bits each of the second.
    fn probes(&self, (h1, h2): (u64, u64)) -> impl Iterator<Item = (usize, u64)> + use<> {
        let block = (h1 & self.block_mask) * BLOCK_WORDS;
        (0..PROBES).map(move |i| {
            let bit = (h2 >> (1 + 9 * i)) & (BLOCK_BITS - 1);
            ((block + bit / 64) as usize, 1 << (bit % 64))
        })
    }
}

/// Two hashes of a key: the first picks the block, the second the bits in it.
pub(crate) trait FilterKey {
    fn hashes(&self) -> (u64, u64);
}

impl FilterKey for Uuid {
    fn hashes(&self) -> (u64, u64) {
        let bytes = self.as_bytes();
        let h1 = mix(u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")));
        let h2 = mix(u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes")) ^ h1) | 1;
        (h1, h2)
    }
}

impl FilterKey for str {
    fn hashes(&self) -> (u64, u64) {
        // FNV-1a, then mixed: fixed, so the filter does not depend on a random seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in self.as_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let h1 = mix(h);
        (h1, mix(h1 ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }
}

/// splitmix64's finalizer: spreads ids that differ in few bits (time-ordered ones) apart.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl KeyFilter {
    /// A filter for the store's stream ids or event ids, which keep growing.
    pub(crate) fn new() -> Self {
        Self::with_capacity(FIRST_CAPACITY)
    }

    /// A filter whose first part is sized for `capacity` keys (it still grows past them).
    pub(crate) fn with_capacity(capacity: u64) -> Self {
        KeyFilter {
            filters: vec![Filter::new(capacity.max(1))],
        }
    }

    pub(crate) fn insert<Key: FilterKey + ?Sized>(&mut self, key: &Key) {
        let hashes = key.hashes();
        let last = self.filters.last().expect("one filter at least");
        if last.ids >= last.capacity {
            let capacity = last.capacity * 2;
            self.filters.push(Filter::new(capacity));
        }
        let filter = self.filters.last_mut().expect("one filter at least");
        for (word, bit) in filter.probes(hashes) {
            filter.bits[word] |= bit;
        }
        filter.ids += 1;
    }

    /// False if the key was certainly never inserted.
    pub(crate) fn may_contain<Key: FilterKey + ?Sized>(&self, key: &Key) -> bool {
        let hashes = key.hashes();
        self.filters
            .iter()
            .any(|filter| filter.probes(hashes).all(|(word, bit)| filter.bits[word] & bit != 0))
    }
}

#[cfg(test)]
mod tests;
