//! Copies imported articles from the SQLite key-value store into Redis.
//!
//! `wikiedge import` writes only the SQLite store (`spin_key_value(store,
//! key, value)` in `<state>/sqlite_key_value.db`). Scenario (r) serves the
//! same articles from Redis, so the rows whose key starts with one of
//! [`ARTICLE_PREFIXES`] are copied with `SET` over a plain RESP connection,
//! as plain Redis keys with raw byte values: the layout the host's Redis
//! store (like Spin's) reads.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::types::ValueRef;

/// The key prefixes copied: the articles and the title → projects index.
pub const ARTICLE_PREFIXES: [&str; 2] = ["article:", "article-projects:"];

/// Commands written before their replies are read.
const PIPELINE: usize = 128;

/// What was copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Keys set.
    pub keys: usize,
    /// Value bytes written.
    pub bytes: usize,
}

/// One RESP command (an array of bulk strings).
pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply; `Ok(line)` for a simple string, integer or bulk string,
/// an error for a RESP error or a malformed reply.
fn read_reply(r: &mut impl BufRead) -> Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        bail!("redis closed the connection");
    }
    let line = line.trim_end_matches(['\r', '\n']);
    match line.as_bytes().first() {
        Some(b'+' | b':') => Ok(line[1..].to_string()),
        Some(b'-') => bail!("redis error: {}", &line[1..]),
        Some(b'$') => {
            let n: i64 = line[1..].parse().context("bad bulk length")?;
            if n < 0 {
                return Ok(String::new());
            }
            let mut buf = vec![0; n as usize + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(n as usize);
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
        _ => bail!("unexpected redis reply: {line:?}"),
    }
}

/// A minimal blocking RESP connection.
pub struct Resp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Resp {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> Result<Resp> {
        let s = TcpStream::connect(("127.0.0.1", port))
            .with_context(|| format!("connecting to redis on 127.0.0.1:{port}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.set_write_timeout(Some(Duration::from_secs(30)))?;
        s.set_nodelay(true)?;
        Ok(Resp {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// Sends one command and returns its reply.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<String> {
        self.writer.write_all(&resp_command(args))?;
        read_reply(&mut self.reader)
    }

    /// `SET`s every pair, pipelined; fails on the first error reply.
    pub fn set_all(&mut self, pairs: &[(String, Vec<u8>)]) -> Result<Copied> {
        let mut copied = Copied::default();
        for chunk in pairs.chunks(PIPELINE) {
            let mut buf = Vec::new();
            for (k, v) in chunk {
                buf.extend(resp_command(&[b"SET", k.as_bytes(), v]));
            }
            self.writer.write_all(&buf)?;
            for (k, v) in chunk {
                read_reply(&mut self.reader).with_context(|| format!("SET {k}"))?;
                copied.keys += 1;
                copied.bytes += v.len();
            }
        }
        Ok(copied)
    }
}

/// The rows of store `default` whose key starts with an [`ARTICLE_PREFIXES`] entry.
pub fn article_rows(db: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", db.display()))?;
    let mut stmt =
        conn.prepare("SELECT key, value FROM spin_key_value WHERE store = 'default' ORDER BY key")?;
    let rows = stmt.query_map([], |row| {
        // Spin writes BLOBs; take TEXT as its bytes too.
        let value = match row.get_ref(1)? {
            ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
            other => {
                return Err(rusqlite::Error::InvalidColumnType(
                    1,
                    "value".into(),
                    other.data_type(),
                ));
            }
        };
        Ok((row.get::<_, String>(0)?, value))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (k, v) = row?;
        if ARTICLE_PREFIXES.iter().any(|p| k.starts_with(p)) {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// Copies the article rows of `db` into the Redis on `127.0.0.1:port`.
pub fn copy_articles(db: &Path, port: u16) -> Result<Copied> {
    let rows = article_rows(db)?;
    if rows.is_empty() {
        bail!("no article keys in {}", db.display());
    }
    let mut redis = Resp::connect(port)?;
    redis.set_all(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn encodes_commands() {
        assert_eq!(
            resp_command(&[b"SET", b"k", b"a\r\nb"]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n"
        );
        assert_eq!(resp_command(&[b"PING"]), b"*1\r\n$4\r\nPING\r\n");
    }

    #[test]
    fn reads_replies() {
        let mut r = Cursor::new(&b"+OK\r\n:5\r\n$3\r\nhi!\r\n$-1\r\n-ERR nope\r\n"[..]);
        assert_eq!(read_reply(&mut r).expect("ok"), "OK");
        assert_eq!(read_reply(&mut r).expect("int"), "5");
        assert_eq!(read_reply(&mut r).expect("bulk"), "hi!");
        assert_eq!(read_reply(&mut r).expect("nil"), "");
        let e = read_reply(&mut r).expect_err("error reply");
        assert!(e.to_string().contains("ERR nope"), "{e}");
        assert!(read_reply(&mut r).is_err(), "eof");
    }

    #[test]
    fn selects_article_rows_of_the_default_store() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("sqlite_key_value.db");
        {
            let c = rusqlite::Connection::open(&db)?;
            c.execute_batch(
                "CREATE TABLE spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL, \
                 value BLOB NOT NULL, PRIMARY KEY (store, key));
                 INSERT INTO spin_key_value VALUES ('default', 'article:enwiki:A', x'00ff');
                 INSERT INTO spin_key_value VALUES ('default', 'article-projects:A', '[\"enwiki\"]');
                 INSERT INTO spin_key_value VALUES ('default', 'account:bob', 'x');
                 INSERT INTO spin_key_value VALUES ('other', 'article:enwiki:B', 'y');",
            )?;
        }
        let rows = article_rows(&db)?;
        assert_eq!(
            rows,
            vec![
                ("article-projects:A".to_string(), b"[\"enwiki\"]".to_vec()),
                ("article:enwiki:A".to_string(), vec![0, 0xff]),
            ]
        );
        Ok(())
    }
}
