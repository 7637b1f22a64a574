//! The export's part buffers, made once per invocation and handed back when
//! S3 is done with a part, instead of one new buffer per part.
//!
//! A part is `BACKUP_UPLOAD_PART_SIZE` (6 MiB) of memory. Freed and made
//! anew for every part, glibc maps the first such buffer, raises its mmap
//! threshold past that size when it is freed, and serves the next ones from
//! its heaps, which keep what they grew (with 8 MiB parts: 56 MiB peak
//! for a 1 GiB export, 48 with the buffers reused; BENCHMARKS.md). Reused, the buffers stay as
//! many as are ever in flight, and stay mapped until the export ends.

use bytes::Bytes;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// Buffers of one size, lent out as part bodies and coming back.
#[derive(Debug)]
pub struct PartBuffers {
    size: usize,
    made: usize,
    back: UnboundedReceiver<Vec<u8>>,
    home: UnboundedSender<Vec<u8>>,
}

impl PartBuffers {
    /// Buffers of `size` bytes, none made yet.
    pub fn new(size: usize) -> Self {
        let (home, back) = unbounded_channel();
        Self {
            size,
            made: 0,
            back,
            home,
        }
    }

    /// An empty buffer: one that came back, else a new one. Never waits:
    /// the caller bounds how many parts are in flight.
    pub fn take(&mut self) -> Vec<u8> {
        match self.back.try_recv() {
            Ok(mut buffer) => {
                buffer.clear();
                buffer
            }
            Err(_) => {
                self.made += 1;
                Vec::with_capacity(self.size)
            }
        }
    }

    /// Buffers made so far (the most ever in use at once).
    pub fn made(&self) -> usize {
        self.made
    }

    /// `buffer` as a body whose memory comes back here once the last
    /// reference to it (the request and any retry of it) is dropped.
    pub fn lend(&self, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(Lent {
            buffer,
            home: self.home.clone(),
        })
    }
}

struct Lent {
    buffer: Vec<u8>,
    home: UnboundedSender<Vec<u8>>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        // Gone only if the pool is: then the buffer is simply freed.
        let _ = self.home.send(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_when_the_body_is_dropped() {
        let mut pool = PartBuffers::new(16);
        let mut first = pool.take();
        first.extend_from_slice(b"part one");
        let address = first.as_ptr();
        let body = pool.lend(first);
        let clone = body.clone();
        assert_eq!(&body[..], b"part one");
        drop(body);
        // Still referenced (a retry could resend it): not back yet.
        let second = pool.take();
        assert_eq!(pool.made(), 2);
        drop(clone);
        let again = pool.take();
        assert_eq!(again.as_ptr(), address, "the first buffer, reused");
        assert!(again.is_empty() && again.capacity() >= 16);
        assert_eq!(pool.made(), 2);
        drop(second);
    }
}
