//! Helpers several e2e modules share.

use anyhow::Result;
use wikiedge_tests::{Host, get};

/// Today's UTC date, `YYYY-MM-DD` (the metering day).
pub fn today() -> Result<String> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let d = wikiedge_core::quota::period::civil_from_days(secs.div_euclid(86_400));
    Ok(format!("{:04}-{:02}-{:02}", d.0, d.1, d.2))
}

/// `(admitted, denied)` for `product` today, from `GET /v1/usage` as `auth`.
pub fn usage_today(host: &Host, auth: &str, product: &str) -> Result<(u64, u64)> {
    let day = today()?;
    let r = get(
        &host.url(&format!("/v1/usage?from={day}&to={day}")),
        &[("authorization", auth)],
    )?;
    anyhow::ensure!(r.status == 200, "usage: {}", r.text());
    let v = r.json()?;
    Ok(v["usage"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r["product"] == product)
                .fold((0, 0), |(a, d), r| {
                    (
                        a + r["admitted"].as_u64().unwrap_or(0),
                        d + r["denied"].as_u64().unwrap_or(0),
                    )
                })
        })
        .unwrap_or((0, 0)))
}

/// `clients` concurrent GETs, spread round-robin over `urls`; their statuses
/// (0 for a transport error).
pub fn race(urls: &[String], clients: usize, auth: &str) -> Vec<u16> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let url = &urls[i % urls.len()];
                s.spawn(move || {
                    get(url, &[("authorization", auth)])
                        .map(|r| r.status)
                        .unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    })
}

/// How many of `statuses` are `code`.
pub fn count(statuses: &[u16], code: u16) -> usize {
    statuses.iter().filter(|s| **s == code).count()
}
