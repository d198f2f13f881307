//! The per-instance store data: WASI, WASI HTTP, and the Spin interfaces.

use crate::kv::ComponentStores;
use crate::kv::open::Databases;
use crate::kv_host::{SpinCtx, SpinHostView, SpinView};
use crate::outbound::OutboundPolicy;
use crate::variables::ComponentVariables;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks};

/// What one component instance sees of the host.
pub struct HostState {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: OutboundHooks,
    pub(crate) spin: SpinCtx,
    pub(crate) limits: Limits,
}

impl HostState {
    /// Store data for one instance of a component with this configuration.
    pub fn new(
        component: &str,
        env: &[(String, String)],
        stores: ComponentStores,
        variables: Arc<ComponentVariables>,
        outbound: Arc<OutboundPolicy>,
        databases: Databases,
        max_memory: usize,
    ) -> Self {
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        builder.inherit_stdout().inherit_stderr();
        for (k, v) in env {
            builder.env(k, v);
        }
        HostState {
            table: ResourceTable::new(),
            wasi: builder.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                component: component.to_string(),
                policy: outbound,
                databases,
            },
            spin: SpinCtx { stores, variables },
            limits: Limits {
                bounds: wasmtime::StoreLimitsBuilder::new()
                    .memory_size(max_memory)
                    .instances(64)
                    .build(),
                held: Arc::default(),
            },
        }
    }
}

/// The store's limiter: the bounds on each memory and on instances, and
/// the linear memory the instance's guests hold so far (linear memories
/// only grow: a guest that once needed 20 MiB holds them until the
/// instance is dropped).
pub(crate) struct Limits {
    bounds: StoreLimits,
    held: Arc<AtomicUsize>,
}

impl Limits {
    /// The bytes of linear memory the instance holds, kept up to date as
    /// its memories are created and grow.
    pub(crate) fn held(&self) -> Arc<AtomicUsize> {
        self.held.clone()
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.bounds.memory_growing(current, desired, maximum)?;
        if allowed {
            self.held
                .fetch_add(desired.saturating_sub(current), Ordering::Relaxed);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.bounds.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.bounds.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.bounds.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.bounds.instances()
    }

    fn tables(&self) -> usize {
        self.bounds.tables()
    }

    fn memories(&self) -> usize {
        self.bounds.memories()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl SpinHostView for HostState {
    fn spin(&mut self) -> SpinView<'_> {
        SpinView {
            ctx: &self.spin,
            table: &mut self.table,
        }
    }
}

/// Outbound HTTP: enforces `allowed_outbound_hosts`, commits what the app
/// wrote so far (what the request says may depend on it), then sends.
pub struct OutboundHooks {
    component: String,
    policy: Arc<OutboundPolicy>,
    databases: Databases,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    /// The default set, as the default method's, checked directly: the
    /// default builds an `Arc`'d filter for every header it checks (14
    /// allocations per article request) to answer the same question.
    fn is_forbidden_header(&mut self, name: &http::HeaderName) -> bool {
        wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.contains(name)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_string();
        let host = uri.host().unwrap_or("").to_string();
        let port = uri.port_u16();
        if !self.policy.allows(&scheme, &host, port) {
            tracing::warn!(
                "component `{}`: outbound request to {scheme}://{host}{} denied: not in allowed_outbound_hosts",
                self.component,
                port.map(|p| format!(":{p}")).unwrap_or_default()
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        drop(fut);
        let databases = self.databases.clone();
        let component = self.component.clone();
        Box::new(async move {
            use http_body_util::BodyExt;
            if let Err(e) = databases.settle().await {
                tracing::error!("component `{component}`: outbound request not sent: {e}");
                return Err(wasmtime_wasi_http::Error::InternalError(Some(
                    "key-value storage failed to commit".into(),
                )));
            }
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct check forbids exactly what the default filter forbids,
    /// which is what wasmtime-wasi-http strips elsewhere (trailers).
    #[test]
    fn forbidden_headers_are_the_default_set() -> anyhow::Result<()> {
        let mut hooks = OutboundHooks {
            component: "t".into(),
            policy: Arc::new(OutboundPolicy::parse(&[])?),
            databases: Databases::new(Vec::new()),
        };
        let default = hooks.forbidden_header_filter();
        let mut names: Vec<http::HeaderName> =
            wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.to_vec();
        for other in [
            "authorization",
            "content-type",
            "x-forwarded-host",
            "hosts",
            "te",
        ] {
            names.push(http::HeaderName::from_static(other));
        }
        let mut forbidden = 0;
        for name in &names {
            let direct = hooks.is_forbidden_header(name);
            assert_eq!(direct, default(name), "{name}");
            forbidden += usize::from(direct);
        }
        assert_eq!(
            forbidden,
            wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.len()
        );
        Ok(())
    }
}
