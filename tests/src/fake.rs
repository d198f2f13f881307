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
    /// The body, read to its `content-length`.
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

/// Reads a request head and its body (to `content-length`), so that closing
/// the connection never resets it under the client.
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
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = data.split_off(head_end);
    while body.len() < length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    Some(Request { method, path, body })
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
}
