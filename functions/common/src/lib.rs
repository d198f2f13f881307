//! Glue shared by the wikiedge Spin components, so that each component
//! crate holds only its own routes and policy.
//!
//! Layout:
//! - [`bindings`]: the imports of the `data-function` world (auth, quota,
//!   metering), generated once for every data function.
//! - [`gate`]: auth, quota and metering over those imports.
//! - [`incoming`]: the request without the `spin-*` headers a component
//!   does not read.
//! - [`respond`]: the [`respond::Reply`] type and WME error bodies.
//! - [`config`]: variables, upstream overrides and the project registry.
//! - [`upstream`]: fetching one article from its MediaWiki.
//! - [`bytes`]: byte checks eight bytes at a time (the bearer token).
//! - [`kept`]: response bodies an instance keeps to send again.
//! - [`kv`]: key-value helpers with storage failures mapped to 503.
//! - [`opened`]: stores opened once per instance.
//! - [`pool`]: the components' allocator, free lists of small blocks in
//!   front of wasi-libc's.
//! - [`web`]: HTTP helpers of the account-side components (quota, metering).
//! - [`caller`]: local bearer verification for quota and metering.
//! - [`now`], [`now_ms`]: the wall clock, the one every component reads.
//!
//! Log lines and a few messages name the component that uses this crate:
//! each component calls [`init`] at its entry points.

#![deny(missing_docs)]

use std::sync::OnceLock;

pub mod bytes;
pub mod caller;
pub mod config;
pub mod gate;
pub mod incoming;
pub mod kept;
pub mod kv;
pub mod opened;
pub mod pool;
pub mod respond;
pub mod slots;
pub mod upstream;
pub mod web;

/// Small blocks come from free lists ([`pool`]); only a wasm32 component
/// runs one thread, which the lists need.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: pool::Pool<std::alloc::System> = pool::Pool::new(std::alloc::System);

/// The bindings of the `data-function` world: auth, quota and metering.
/// Imports only, so every data function links the same code; generated glue
/// needs `unsafe`, nothing handwritten does.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    spin_sdk::wit_bindgen::generate!({
        runtime_path: "::spin_sdk::wit_bindgen::rt",
        world: "data-function",
        path: "../../wit",
        generate_all,
    });
}

/// What the shared code says about the component it runs in.
#[derive(Debug)]
pub struct Component {
    /// The prefix of its log lines (`articles`, `wikiedge-quota`, ...).
    pub name: &'static str,
    /// The message of the 503 for a storage failure.
    pub storage_unavailable: &'static str,
}

impl Component {
    /// A component named `name`, with the default storage message.
    pub const fn new(name: &'static str) -> Self {
        Component {
            name,
            storage_unavailable: "Storage is unavailable",
        }
    }

    /// The same component with another storage-failure message.
    pub const fn storage_unavailable(self, message: &'static str) -> Self {
        Component {
            storage_unavailable: message,
            ..self
        }
    }
}

static COMPONENT: OnceLock<&'static Component> = OnceLock::new();

/// Names the running component; call at every entry point (later calls
/// are ignored).
pub fn init(component: &'static Component) {
    let _ = COMPONENT.get_or_init(|| component);
}

/// The running component, as given to [`init`].
pub fn component() -> &'static Component {
    static UNNAMED: Component = Component::new("wikiedge");
    COMPONENT.get().copied().unwrap_or(&UNNAMED)
}

/// The prefix of the running component's log lines.
pub(crate) fn name() -> &'static str {
    component().name
}

/// The current unix time in seconds: the components' one clock, read
/// through [`now_ms`].
pub fn now() -> i64 {
    now_ms().div_euclid(1000)
}

/// The current unix time in milliseconds (0 before 1970): the one place a
/// component reads the wall clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
