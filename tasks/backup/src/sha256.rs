//! A SHA-256 whose state can be carried to the next invocation, so an
//! export streamed across several invocations still gets one digest of the
//! whole stream. `sha2`'s hasher cannot be serialised; its block function
//! can, and the state between whole blocks is eight words and a length.

use sha2::digest::generic_array::GenericArray;

const INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Blocks hashed per call of the block function (2 KiB on the stack).
const BATCH_BLOCKS: usize = 32;

/// SHA-256 over a stream that may be split across invocations.
#[derive(Debug, Clone)]
pub struct Resumable {
    state: [u32; 8],
    /// Bytes hashed (whole blocks plus `pending`).
    length: u64,
    /// Bytes after the last whole block (< 64).
    pending: Vec<u8>,
}

impl Default for Resumable {
    fn default() -> Self {
        Self {
            state: INITIAL,
            length: 0,
            pending: Vec::with_capacity(64),
        }
    }
}

impl Resumable {
    /// Continues from [`Resumable::state`] after `length` bytes (a
    /// multiple of 64); `None` if the state is not 64 hex digits.
    pub fn from_state(hex_state: &str, length: u64) -> Option<Self> {
        if !length.is_multiple_of(64) {
            return None;
        }
        let bytes = hex::decode(hex_state).ok()?;
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        Some(Self {
            state: words.try_into().ok()?,
            length,
            pending: Vec::with_capacity(64),
        })
    }

    /// The state to carry, or `None` between blocks (only a multiple of 64
    /// bytes hashed can be resumed).
    pub fn state(&self) -> Option<String> {
        self.pending.is_empty().then(|| {
            self.state
                .iter()
                .flat_map(|w| w.to_be_bytes())
                .map(|b| format!("{b:02x}"))
                .collect()
        })
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Whether nothing was hashed.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Hashes `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.length += data.len() as u64;
        if !self.pending.is_empty() {
            let take = (64 - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < 64 {
                return;
            }
            let block = std::mem::take(&mut self.pending);
            sha2::compress256(&mut self.state, &[*GenericArray::from_slice(&block)]);
            self.pending = block;
            self.pending.clear();
        }
        let whole = data.len() - data.len() % 64;
        // A few blocks at a time through a small array: copying a whole
        // part into blocks first cost one more part of memory per part.
        let mut batch = [GenericArray::default(); BATCH_BLOCKS];
        for run in data[..whole].chunks(64 * BATCH_BLOCKS) {
            let blocks = run.len() / 64;
            for (slot, block) in batch.iter_mut().zip(run.chunks_exact(64)) {
                slot.copy_from_slice(block);
            }
            sha2::compress256(&mut self.state, &batch[..blocks]);
        }
        self.pending.extend_from_slice(&data[whole..]);
    }

    /// The digest, hex.
    pub fn finish(mut self) -> String {
        let bits = self.length.wrapping_mul(8);
        let mut tail = std::mem::take(&mut self.pending);
        tail.push(0x80);
        while tail.len() % 64 != 56 {
            tail.push(0);
        }
        tail.extend_from_slice(&bits.to_be_bytes());
        let blocks: Vec<_> = tail
            .chunks_exact(64)
            .map(|b| *GenericArray::from_slice(b))
            .collect();
        sha2::compress256(&mut self.state, &blocks);
        self.state
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn reference(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[test]
    fn matches_sha2_for_every_length_and_split() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 128, 200, 300] {
            let data = &data[..len];
            for split in [0, 1, 13, 64, len / 2, len] {
                let split = split.min(len);
                let mut h = Resumable::default();
                h.update(&data[..split]);
                h.update(&data[split..]);
                assert_eq!(h.finish(), reference(data), "len {len} split {split}");
            }
        }
    }

    #[test]
    fn resumes_from_a_carried_state() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut first = Resumable::default();
        first.update(&data[..6400]);
        let state = first
            .state()
            .unwrap_or_else(|| panic!("at a block boundary"));
        let mut second = Resumable::from_state(&state, 6400).unwrap_or_else(|| panic!("parses"));
        second.update(&data[6400..]);
        assert_eq!(second.len(), 10_000);
        assert_eq!(second.finish(), reference(&data));

        let mut mid_block = Resumable::default();
        mid_block.update(&data[..100]);
        assert_eq!(mid_block.state(), None);
        assert!(Resumable::from_state("zz", 0).is_none());
        assert!(Resumable::from_state(&state, 6401).is_none());
    }
}
