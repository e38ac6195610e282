//! A Bloom filter of every stored event id, so that the writer looks an id up in the index
//! only when it may be stored already (a retry, or a reuse to refuse): fresh ids, almost all
//! of them, skip the lookup on the acknowledgement path.

use uuid::Uuid;

/// Bits per id and probes per lookup: about 1% false positives.
const BITS_PER_ID: u64 = 10;
const PROBES: u64 = 7;
/// Ids the first filter is sized for; each further one is twice as large as the last.
const FIRST_CAPACITY: u64 = 1 << 16;

/// A growing Bloom filter: a series of filters, each sized for twice the ids of the previous.
pub(crate) struct IdFilter {
    filters: Vec<Filter>,
}

struct Filter {
    bits: Vec<u64>,
    /// Number of bits minus one (a power of two).
    mask: u64,
    ids: u64,
    capacity: u64,
}

impl Filter {
    fn new(capacity: u64) -> Self {
        let n_bits = (capacity * BITS_PER_ID).next_power_of_two();
        Filter {
            bits: vec![0; (n_bits / 64) as usize],
            mask: n_bits - 1,
            ids: 0,
            capacity,
        }
    }

    fn probes(&self, event_id: Uuid) -> impl Iterator<Item = u64> + '_ {
        let bytes = event_id.as_bytes();
        let h1 = mix(u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")));
        let h2 = mix(u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes")) ^ h1) | 1;
        (0..PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & self.mask)
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

impl IdFilter {
    pub(crate) fn new() -> Self {
        IdFilter {
            filters: vec![Filter::new(FIRST_CAPACITY)],
        }
    }

    pub(crate) fn insert(&mut self, event_id: Uuid) {
        let last = self.filters.last().expect("one filter at least");
        if last.ids >= last.capacity {
            let capacity = last.capacity * 2;
            self.filters.push(Filter::new(capacity));
        }
        let filter = self.filters.last_mut().expect("one filter at least");
        let probes: Vec<u64> = filter.probes(event_id).collect();
        for bit in probes {
            filter.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        filter.ids += 1;
    }

    /// False if the id was certainly never inserted.
    pub(crate) fn may_contain(&self, event_id: Uuid) -> bool {
        self.filters.iter().any(|filter| {
            filter
                .probes(event_id)
                .all(|bit| filter.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
        })
    }
}

#[cfg(test)]
mod tests;
