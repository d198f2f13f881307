//! A raw HTTP/1 exchange over one socket, for what a client library hides:
//! a `GET` with a body (as the WME SDKs stream), HTTP/1.0 framing, and a
//! response body read as it arrives.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::Host;

/// A response whose head has been read; the body is still on the socket.
pub struct Raw {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The socket, positioned at the first byte of the body.
    pub reader: BufReader<TcpStream>,
}

/// Sends `method path version` with `headers` (and `content-length` for a
/// body) to `host`, and reads the response head. Reads time out after 30 s.
pub fn open(
    host: &Host,
    method: &str,
    path: &str,
    version: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Raw> {
    let addr = host.addr();
    let mut tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} {version}\r\nhost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())?;
    if let Some(body) = body {
        tcp.write_all(body)?;
    }
    let mut reader = BufReader::new(tcp);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .context("status line")?
        .parse()?;
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Ok(Raw {
        status,
        headers,
        reader,
    })
}

impl Raw {
    /// The whole body: chunked, by `content-length`, or to the end of the
    /// connection.
    pub fn body(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let chunked = self
            .headers
            .get("transfer-encoding")
            .is_some_and(|t| t.contains("chunked"));
        if chunked {
            let mut line = String::new();
            loop {
                line.clear();
                if self.reader.read_line(&mut line)? == 0 {
                    break;
                }
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .with_context(|| format!("chunk size line {line:?}"))?;
                if size == 0 {
                    break;
                }
                let mut chunk = vec![0u8; size + 2];
                self.reader.read_exact(&mut chunk)?;
                out.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = self.headers.get("content-length") {
            out = vec![0u8; len.parse()?];
            self.reader.read_exact(&mut out)?;
        } else {
            self.reader.read_to_end(&mut out)?;
        }
        Ok(out)
    }
}
