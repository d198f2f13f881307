//! The cost of one token verification and of one password check (login).
//!
//! `cargo bench -p wikiedge-core --bench auth` prints the median time per
//! operation over several rounds (a plain harness: no extra dependencies).
//! Both run natively here; inside a component (wasm32-wasip2 under
//! wasmtime) expect them to be a small constant factor slower.

use std::hint::black_box;
use std::time::{Duration, Instant};
use wikiedge_core::auth::jwt::{self, Claims, TokenType};
use wikiedge_core::auth::{password, signing};

/// Median nanoseconds per call of `f`, over `rounds` rounds of `iters` calls.
fn measure(name: &str, rounds: usize, iters: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..iters.min(10) {
        f();
    }
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed() / iters
        })
        .collect();
    samples.sort();
    let median = samples[samples.len() / 2];
    println!(
        "{name:<40} median {:>10.1} µs/op  (min {:.1}, max {:.1}; {rounds} rounds x {iters})",
        median.as_secs_f64() * 1e6,
        samples[0].as_secs_f64() * 1e6,
        samples[samples.len() - 1].as_secs_f64() * 1e6,
    );
    median
}

fn main() {
    let key = signing::generate([7u8; 32]);
    let public = key.verifying_key();
    let now = 1_790_000_000;
    let claims = Claims {
        iss: "wikiedge".into(),
        aud: "wikiedge-api".into(),
        sub: "alice".into(),
        exp: now + 86_400,
        iat: now,
        nbf: None,
        jti: "0123456789abcdef".into(),
        sid: "fedcba9876543210".into(),
        typ: TokenType::Access,
        role: wikiedge_core::auth::Role::User,
        plan: "free".into(),
    };
    let token = jwt::sign(&claims, &key);
    measure("jwt::sign (EdDSA)", 9, 2000, || {
        black_box(jwt::sign(black_box(&claims), &key));
    });
    let verified = measure("jwt::verify_typed (EdDSA, all checks)", 9, 2000, || {
        let r = jwt::verify_typed(
            black_box(&token),
            &public,
            "wikiedge",
            "wikiedge-api",
            TokenType::Access,
            now,
        );
        assert!(r.is_ok());
    });
    let phc = password::hash("correct horse battery staple", &[1u8; 16]).unwrap_or_default();
    let login = measure("password::verify (Argon2id m=19MiB t=2)", 5, 3, || {
        assert!(password::verify(black_box("correct horse battery staple"), &phc).unwrap_or(false));
    });
    measure("password::verify_dummy (unknown user)", 5, 3, || {
        black_box(password::verify_dummy(black_box("whatever")));
    });
    println!(
        "one login costs about {:.0} token verifications",
        login.as_secs_f64() / verified.as_secs_f64()
    );
}
