//! Where a build's bytes go: gzip'd tar written into parts of a fixed size,
//! each stored as it fills up.

use std::io::Write;
use std::sync::mpsc::Sender;

use anyhow::Result;
use flate2::Compression;
use flate2::write::GzEncoder;
use wikiedge_core::snapshot::*;

use super::*;

/// Collects written bytes into parts of `part_size` and hands each, as it
/// fills up, to the one thread that writes the store (`out`), which drains
/// it after every line.
pub(super) struct PartSink {
    pub(super) out: Sender<(String, Vec<u8>)>,
    pub(super) identifier: String,
    pub(super) version: String,
    pub(super) part_size: usize,
    pub(super) buf: Vec<u8>,
    pub(super) parts: u64,
    pub(super) bytes: u64,
}

impl PartSink {
    pub(super) fn new(
        out: Sender<(String, Vec<u8>)>,
        identifier: String,
        version: String,
        part_size: u64,
    ) -> Self {
        let part_size = part_size.max(1) as usize;
        PartSink {
            out,
            identifier,
            version,
            part_size,
            buf: Vec::with_capacity(part_size),
            parts: 0,
            bytes: 0,
        }
    }

    pub(super) fn store_part(&mut self) -> std::io::Result<()> {
        let key = core::part_key(&self.identifier, &self.version, self.parts);
        let part = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
        self.out
            .send((key, part))
            .map_err(|_| std::io::Error::other("the part writer stopped"))?;
        self.parts += 1;
        Ok(())
    }

    /// Stores the last part and says where the bytes are.
    pub(super) fn finish(mut self) -> std::io::Result<Blob> {
        if !self.buf.is_empty() || self.parts == 0 {
            self.store_part()?;
        }
        Ok(Blob {
            bytes: self.bytes,
            part_size: self.part_size as u64,
            parts: self.parts,
        })
    }
}

impl Write for PartSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(self.part_size - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.bytes += n as u64;
        if self.buf.len() == self.part_size {
            self.store_part()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A tar.gz of one NDJSON file being written.
pub(super) struct TarGz {
    pub(super) gz: GzEncoder<PartSink>,
    pub(super) size: u64,
}

impl TarGz {
    pub(super) fn start(sink: PartSink, name: &str, size: u64, mtime: u64) -> Result<Self> {
        let mut gz = GzEncoder::new(sink, Compression::default());
        gz.write_all(&core::tar_header(name, size, mtime))?;
        Ok(TarGz { gz, size })
    }

    pub(super) fn line(&mut self, line: &[u8]) -> Result<()> {
        self.gz.write_all(line)?;
        self.gz.write_all(b"\n")?;
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<Blob> {
        let padding = core::tar_padding(self.size) as usize;
        self.gz.write_all(&TAR_TRAILER[..padding])?;
        self.gz.write_all(&TAR_TRAILER)?;
        Ok(self.gz.finish()?.finish()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sinks_split_at_the_part_size() -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut sink = PartSink::new(tx, "s".into(), "v".into(), 4);
        sink.write_all(b"abcdefghij")?;
        let blob = sink.finish()?;
        assert_eq!((blob.bytes, blob.parts, blob.part_size), (10, 3, 4));
        let parts: Vec<(String, Vec<u8>)> = rx.try_iter().collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts[0],
            ("snapshot-blob:s:v:0".to_string(), b"abcd".to_vec())
        );
        assert_eq!(
            parts[2],
            ("snapshot-blob:s:v:2".to_string(), b"ij".to_vec())
        );
        Ok(())
    }
}
