//! A fake upstream on loopback: one thread per connection, one request per
//! connection (`connection: close`), the answer chosen by a function of the
//! request. The tests' stand-in for a wiki, a model server or a webhook.

use anyhow::Result;
use std::io::{Read, Write};
use std::net::TcpListener;

/// One request as the fake upstream received it.
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// The body, read to its `content-length`, or decoded from its chunks
    /// (`transfer-encoding: chunked`).
    pub body: Vec<u8>,
}

/// An answer: status code and a JSON body.
pub type Answer = (u16, String);

/// Starts a fake upstream answering every request with `answer`; returns
/// its base URL (`http://127.0.0.1:PORT`). It serves until the test process
/// ends.
pub fn serve(answer: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let Some(request) = read_request(&mut stream) else {
                    return;
                };
                let (status, body) = answer(&request);
                let reason = match status {
                    200 => "OK",
                    404 => "Not Found",
                    500 => "Internal Server Error",
                    _ => "Status",
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    Ok(url)
}

/// Reads a request head and its whole body (to `content-length`, or to the
/// last chunk of a chunked body), so that closing the connection never
/// resets it under the client: a server that closes with request bytes
/// still unread makes the kernel answer with a reset, which can reach the
/// client before the response does.
fn read_request(stream: &mut impl Read) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if data.len() > 64 * 1024 {
            return None;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut words = head.split_whitespace();
    let method = words.next()?.to_string();
    let path = words.next()?.to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let rest = data.split_off(head_end);
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        read_chunks(stream, rest)?
    } else {
        let length = header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = rest;
        while body.len() < length {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
            }
        }
        body
    };
    Some(Request { method, path, body })
}

/// Decodes a chunked body whose first bytes are `pending`, reading the
/// rest from `stream` up to the last (empty) chunk and its final line.
/// `None` if the stream ends first or the framing is broken.
fn read_chunks(stream: &mut impl Read, mut pending: Vec<u8>) -> Option<Vec<u8>> {
    let mut buf = [0u8; 8192];
    let mut body = Vec::new();
    // Bytes of `pending` consumed so far.
    let mut at = 0;
    // Makes `pending` hold at least `n` bytes past `at`.
    let mut fill = |pending: &mut Vec<u8>, at: usize, n: usize| -> Option<()> {
        while pending.len() < at + n {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(k) => pending.extend_from_slice(&buf[..k]),
            }
        }
        Some(())
    };
    loop {
        // The size line: hex digits, maybe `;extensions`, CRLF.
        let line_end = loop {
            if let Some(i) = pending[at..].windows(2).position(|w| w == b"\r\n") {
                break at + i;
            }
            if pending.len() - at > 1024 {
                return None;
            }
            let have = pending.len() - at;
            fill(&mut pending, at, have + 1)?;
        };
        let line = std::str::from_utf8(&pending[at..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // No trailers from our clients: the final CRLF ends the body.
            fill(&mut pending, at, 2)?;
            return (&pending[at..at + 2] == b"\r\n").then_some(body);
        }
        fill(&mut pending, at, size + 2)?;
        body.extend_from_slice(&pending[at..at + size]);
        if &pending[at + size..at + size + 2] != b"\r\n" {
            return None;
        }
        at += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_read_with_its_whole_body() {
        let raw = b"POST /x?y=1 HTTP/1.1\r\ncontent-length: 5\r\nHost: a\r\n\r\nhello";
        let r = read_request(&mut &raw[..]).expect("a request");
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/x?y=1"));
        assert_eq!(r.body, b"hello");
        assert!(read_request(&mut &b"GET / HTTP/1.1\r\n"[..]).is_none());
    }

    /// Yields its bytes a few at a time, as a socket may under load.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_chunked_body_is_read_to_its_last_chunk_however_it_arrives() {
        let raw = b"POST /m HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n\
                    5\r\nhello\r\n7;x=1\r\n, world\r\n0\r\n\r\n";
        for step in [1, 2, 3, 7, 64, raw.len()] {
            let mut stream = Trickle(raw, step);
            let r = read_request(&mut stream).expect("a request");
            assert_eq!(r.body, b"hello, world", "read {step} bytes at a time");
            // Everything was read: closing now resets nothing.
            assert!(stream.0.is_empty(), "read {step} bytes at a time");
        }
        // A stream that ends inside a chunk, or a chunk without its CRLF,
        // is no request.
        let cut = &raw[..raw.len() - 12];
        assert!(read_request(&mut Trickle(cut, 5)).is_none());
        let bad = b"POST /m HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n";
        assert!(read_request(&mut Trickle(bad, 4)).is_none());
    }
}
