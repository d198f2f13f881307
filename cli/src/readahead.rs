//! Reading ahead on a thread of its own, so that decompressing a dump
//! (bzip2 decodes at a few tens of MB/s) overlaps parsing, transforming and
//! writing it instead of taking turns with them.
//!
//! Memory is bounded: at most `depth` chunks of `chunk` bytes wait in the
//! channel, plus the one being read and the one being filled.

use std::io::Read;
use std::sync::mpsc::{Receiver, sync_channel};

/// A [`Read`] fed by a thread that reads `inner` ahead.
pub struct ReadAhead {
    rx: Receiver<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    /// Start reading `inner` on a new thread, `chunk` bytes at a time, at
    /// most `depth` chunks ahead of the reader.
    pub fn spawn<R: Read + Send + 'static>(
        mut inner: R,
        chunk: usize,
        depth: usize,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(depth.max(1));
        let chunk = chunk.max(1);
        std::thread::Builder::new()
            .name("wikiedge-read-ahead".into())
            .spawn(move || {
                loop {
                    let mut buf = vec![0u8; chunk];
                    let mut filled = 0;
                    let result = loop {
                        match inner.read(&mut buf[filled..]) {
                            Ok(0) => break Ok(()),
                            Ok(n) => {
                                filled += n;
                                if filled == buf.len() {
                                    break Ok(());
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => break Err(e),
                        }
                    };
                    buf.truncate(filled);
                    let end = filled < chunk;
                    // A send fails only when the reader is gone: stop.
                    if filled > 0 && tx.send(Ok(buf)).is_err() {
                        return;
                    }
                    if let Err(e) = result {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    if end {
                        return;
                    }
                }
            })?;
        Ok(ReadAhead {
            rx,
            buf: Vec::new(),
            pos: 0,
            done: false,
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(buf)) => {
                    self.buf = buf;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The thread ended after the last chunk.
                Err(_) => self.done = true,
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time, then fails if asked to.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        fail_at_end: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.at == self.data.len() {
                if self.fail_at_end {
                    return Err(std::io::Error::other("broken dump"));
                }
                return Ok(0);
            }
            let n = out.len().min(7).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn data() -> Vec<u8> {
        (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn reads_the_same_bytes_in_order() {
        for chunk in [1, 64, 4096, 10_000, 20_000] {
            let inner = Trickle {
                data: data(),
                at: 0,
                fail_at_end: false,
            };
            let mut out = Vec::new();
            ReadAhead::spawn(inner, chunk, 2)
                .expect("thread")
                .read_to_end(&mut out)
                .expect("read");
            assert_eq!(out, data(), "chunk {chunk}");
        }
    }

    #[test]
    fn an_error_of_the_input_reaches_the_reader_after_the_bytes_before_it() {
        let inner = Trickle {
            data: data(),
            at: 0,
            fail_at_end: true,
        };
        let mut reader = ReadAhead::spawn(inner, 4096, 2).expect("thread");
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).expect_err("the input fails");
        assert_eq!(err.to_string(), "broken dump");
        assert_eq!(out, data());
    }
}
