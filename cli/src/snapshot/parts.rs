//! Where a build's bytes go: gzip'd tar written into parts of a fixed size,
//! each stored as it fills up.

use std::io::Write;
use std::rc::Rc;

use anyhow::Result;
use flate2::Compression;
use flate2::write::GzEncoder;
use rusqlite::Connection;
use wikiedge_core::snapshot::*;

use super::*;

/// Where finished parts go.
pub(super) enum PartOut {
    /// Written at once.
    Db(Rc<Connection>),
    /// Handed to the thread that writes (one SQLite writer: two would wait
    /// on each other's locks).
    Channel(std::sync::mpsc::Sender<(String, Vec<u8>)>),
}

/// Collects written bytes into parts of `part_size` and stores each as it
/// fills up.
pub(super) struct PartSink {
    pub(super) out: PartOut,
    pub(super) identifier: String,
    pub(super) version: String,
    pub(super) part_size: usize,
    pub(super) buf: Vec<u8>,
    pub(super) parts: u64,
    pub(super) bytes: u64,
}

impl PartSink {
    pub(super) fn new(out: PartOut, identifier: String, version: String, part_size: u64) -> Self {
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
        match &self.out {
            PartOut::Db(conn) => {
                set(conn, &key, &self.buf).map_err(std::io::Error::other)?;
                self.buf.clear();
            }
            PartOut::Channel(tx) => {
                let part = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
                tx.send((key, part))
                    .map_err(|_| std::io::Error::other("the part writer stopped"))?;
            }
        }
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

pub(super) fn get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    crate::store_file::get(conn, STORE, key)
}

pub(super) fn set(conn: &Connection, key: &str, value: &[u8]) -> Result<()> {
    crate::store_file::set(conn, STORE, key, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sinks_split_at_the_part_size() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let conn = Connection::open(dir.path().join("kv.db"))?;
        conn.execute(wikiedge_host::kv::sqlite::CREATE_TABLE, [])?;
        let conn = Rc::new(conn);
        let mut sink = PartSink::new(PartOut::Db(conn.clone()), "s".into(), "v".into(), 4);
        sink.write_all(b"abcdefghij")?;
        let blob = sink.finish()?;
        assert_eq!((blob.bytes, blob.parts, blob.part_size), (10, 3, 4));
        assert_eq!(get(&conn, "snapshot-blob:s:v:2")?, Some(b"ij".to_vec()));
        Ok(())
    }
}
