//! A test component that exercises every host feature the app relies on.
//!
//! Each path is one probe: `/kv/...` key-value, `/atomic/...` wasi:keyvalue
//! atomics, `/var/{name}` variables (`/config/{name}` and `/config-all` the
//! same through `wasi:config/store`), `/outbound?url=` outbound HTTP,
//! `/trap` and `/panic` failures, `/loop` (never answers), anything else echoes the request and its
//! `spin-*` headers as JSON.

use spin_sdk::experimental::wasi::keyvalue::{atomics, store as wkv};
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{EmptyBody, IntoResponse, Request, Response, StatusCode};
use spin_sdk::http_service;
use spin_sdk::key_value::Store;

fn query(req: &Request, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.to_string())
    })
}

fn text(status: u16, body: impl Into<String>) -> Response<String> {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

fn kv_err(e: impl std::fmt::Debug) -> Response<String> {
    text(500, format!("{e:?}"))
}

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let path = req
        .headers()
        .get("spin-path-info")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let store_label = query(&req, "store").unwrap_or_else(|| "default".into());
    let key = query(&req, "key").unwrap_or_default();
    match path.as_str() {
        "/kv/set" => {
            let body = req
                .into_body()
                .bytes()
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            match Store::open(&store_label).await {
                Ok(s) => match s.set(&key, &body).await {
                    Ok(()) => text(200, "ok"),
                    Err(e) => kv_err(e),
                },
                Err(e) => text(403, format!("{e:?}")),
            }
        }
        "/kv/get" => match Store::open(&store_label).await {
            Ok(s) => match s.get(&key).await {
                Ok(Some(v)) => text(200, String::from_utf8_lossy(&v).into_owned()),
                Ok(None) => text(404, "missing"),
                Err(e) => kv_err(e),
            },
            Err(e) => text(403, format!("{e:?}")),
        },
        "/kv/delete" => match Store::open(&store_label).await {
            Ok(s) => match s.delete(&key).await {
                Ok(()) => text(200, "ok"),
                Err(e) => kv_err(e),
            },
            Err(e) => text(403, format!("{e:?}")),
        },
        "/kv/exists" => match Store::open(&store_label).await {
            Ok(s) => match s.exists(&key).await {
                Ok(b) => text(200, b.to_string()),
                Err(e) => kv_err(e),
            },
            Err(e) => text(403, format!("{e:?}")),
        },
        "/kv/keys" => match Store::open(&store_label).await {
            Ok(s) => match s.get_keys().await.collect().await {
                Ok(mut keys) => {
                    keys.sort();
                    text(200, serde_json::to_string(&keys).unwrap_or_default())
                }
                Err(e) => kv_err(e),
            },
            Err(e) => text(403, format!("{e:?}")),
        },
        "/atomic/increment" => {
            let delta: i64 = query(&req, "delta")
                .and_then(|d| d.parse().ok())
                .unwrap_or(1);
            match wkv::open(&store_label) {
                Ok(bucket) => match atomics::increment(&bucket, &key, delta) {
                    Ok(v) => text(200, v.to_string()),
                    Err(e) => kv_err(e),
                },
                Err(e) => text(403, format!("{e:?}")),
            }
        }
        "/atomic/cas-conflict" => {
            // Open a CAS handle, let a second writer change the value, then
            // try to swap: the swap must report the conflict.
            let bucket = match wkv::open(&store_label) {
                Ok(b) => b,
                Err(e) => return text(403, format!("{e:?}")),
            };
            let _ = bucket.set(&key, b"v1");
            let cas = match atomics::Cas::new(&bucket, &key) {
                Ok(c) => c,
                Err(e) => return kv_err(e),
            };
            let seen = cas.current().ok().flatten().unwrap_or_default();
            let _ = bucket.set(&key, b"v2-from-someone-else");
            let outcome = match atomics::swap(cas, b"v3") {
                Ok(()) => "swapped".to_string(),
                Err(atomics::CasError::CasFailed(_)) => "conflict".to_string(),
                Err(atomics::CasError::StoreError(e)) => format!("store-error {e:?}"),
            };
            let now = bucket.get(&key).ok().flatten().unwrap_or_default();
            text(
                200,
                format!(
                    "{outcome} seen={} now={}",
                    String::from_utf8_lossy(&seen),
                    String::from_utf8_lossy(&now)
                ),
            )
        }
        "/atomic/cas-ok" => {
            let bucket = match wkv::open(&store_label) {
                Ok(b) => b,
                Err(e) => return text(403, format!("{e:?}")),
            };
            let cas = match atomics::Cas::new(&bucket, &key) {
                Ok(c) => c,
                Err(e) => return kv_err(e),
            };
            let _ = cas.current();
            match atomics::swap(cas, b"swapped") {
                Ok(()) => text(200, "swapped"),
                Err(e) => kv_err(e),
            }
        }
        p if p.starts_with("/var/") => match spin_sdk::variables::get(&p[5..]).await {
            Ok(v) => text(200, v),
            Err(e) => text(404, format!("{e:?}")),
        },
        p if p.starts_with("/config/") => {
            match spin_sdk::experimental::wasi::config::store::get(&p[8..]) {
                Ok(Some(v)) => text(200, v),
                Ok(None) => text(404, "none"),
                Err(e) => text(500, format!("{e:?}")),
            }
        }
        "/config-all" => match spin_sdk::experimental::wasi::config::store::get_all() {
            Ok(all) => {
                let names: Vec<_> = all.into_iter().map(|(k, _)| k).collect();
                text(200, names.join(","))
            }
            Err(e) => text(500, format!("{e:?}")),
        },
        "/outbound" => {
            let url = query(&req, "url").unwrap_or_default();
            let outgoing = match Request::get(url).body(EmptyBody::new()) {
                Ok(r) => r,
                Err(e) => return text(400, e.to_string()),
            };
            match spin_sdk::http::send(outgoing).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp
                        .into_body()
                        .bytes()
                        .await
                        .map(|b| b.to_vec())
                        .unwrap_or_default();
                    text(200, format!("{status} {}", String::from_utf8_lossy(&body)))
                }
                Err(e) => text(502, format!("denied or failed: {e}")),
            }
        }
        "/trap" => {
            #[allow(unreachable_code)]
            {
                std::process::abort();
            }
        }
        "/panic" => panic!("the kitchen sink panicked on purpose"),
        "/loop" => {
            // A guest that never answers: only the host's CPU limit stops it.
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "/grow" => {
            // Grows this instance's linear memory by about `mib` MiB (a
            // linear memory never shrinks, so the instance keeps it).
            let mib: usize = query(&req, "mib").and_then(|d| d.parse().ok()).unwrap_or(1);
            let block = std::hint::black_box(vec![1u8; mib << 20]);
            text(200, format!("grew {} MiB", block.len() >> 20))
        }
        "/sleep" => {
            let ms: u64 = query(&req, "ms")
                .and_then(|d| d.parse().ok())
                .unwrap_or(100);
            spin_sdk::time::sleep(std::time::Duration::from_millis(ms)).await;
            text(200, "slept")
        }
        _ => {
            let mut headers = serde_json::Map::new();
            for (name, value) in req.headers() {
                if name.as_str().starts_with("spin-") {
                    headers.insert(
                        name.as_str().to_string(),
                        serde_json::Value::String(value.to_str().unwrap_or("").to_string()),
                    );
                }
            }
            let body = serde_json::json!({
                "method": req.method().as_str(),
                "uri": req.uri().to_string(),
                "headers": headers,
            });
            text(200, body.to_string())
        }
    }
}
