//! Host implementations of `spin:key-value@3.0.0`, `wasi:keyvalue@0.2.0-draft2`,
//! `spin:variables@3.0.0` and `wasi:config/store@0.2.0-draft-2024-09-27`
//! over [`crate::kv`] and [`crate::variables`].

use crate::kv::{ComponentStores, KvError, Store};
use crate::variables::{ComponentVariables, GetError};
use std::sync::Arc;
use wasmtime::component::{Accessor, FutureReader, HasData, Resource, ResourceTable, StreamReader};

wasmtime::component::bindgen!({
    path: "wit",
    world: "wikiedge:host/spin-imports",
    imports: {
        "wasi:keyvalue/store": async | trappable,
        "wasi:keyvalue/atomics": async | trappable,
        "wasi:keyvalue/batch": async | trappable,
        default: trappable,
    },
    with: {
        "spin:key-value/key-value.store": KvHandle,
        "wasi:keyvalue/store.bucket": KvHandle,
        "wasi:keyvalue/atomics.cas": CasHandle,
    },
});

/// An open store (both `spin:key-value` stores and `wasi:keyvalue` buckets).
pub struct KvHandle(Arc<dyn Store>);

/// A pending compare-and-swap: the value seen by `current`, if read.
pub struct CasHandle {
    store: Arc<dyn Store>,
    key: String,
    seen: Option<Option<Vec<u8>>>,
}

/// The per-store data these interfaces need.
pub struct SpinCtx {
    /// The stores this component may open.
    pub stores: ComponentStores,
    /// This component's variables.
    pub variables: Arc<ComponentVariables>,
}

/// A borrowed view: the context plus the store's resource table.
pub struct SpinView<'a> {
    /// The context.
    pub ctx: &'a SpinCtx,
    /// The resource table.
    pub table: &'a mut ResourceTable,
}

/// Marker type implementing [`HasData`] for these interfaces.
pub struct Spin;

impl HasData for Spin {
    type Data<'a> = SpinView<'a>;
}

/// Implemented by the host's store data.
pub trait SpinHostView: Send {
    /// Borrow the view.
    fn spin(&mut self) -> SpinView<'_>;
}

/// Add these interfaces to a linker.
pub fn add_to_linker<T: SpinHostView + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    spin::key_value::key_value::add_to_linker::<T, Spin>(linker, T::spin)?;
    spin::variables::variables::add_to_linker::<T, Spin>(linker, T::spin)?;
    wasi::config::store::add_to_linker::<T, Spin>(linker, T::spin)?;
    wasi::keyvalue::store::add_to_linker::<T, Spin>(linker, T::spin)?;
    wasi::keyvalue::atomics::add_to_linker::<T, Spin>(linker, T::spin)?;
    wasi::keyvalue::batch::add_to_linker::<T, Spin>(linker, T::spin)?;
    add_shared_gets(linker)
}

/// The interfaces whose `get` [`add_shared_gets`] replaces, as the
/// generated bindings name them.
const SPIN_KV: &str = "spin:key-value/key-value@3.0.0";
const WASI_KV: &str = "wasi:keyvalue/store@0.2.0-draft2";

/// The trap of a generated `get`: reached only if [`add_shared_gets`] no
/// longer replaces it (say the WIT moved to another version and the
/// override now defines a function nothing imports). Every key-value read
/// then fails loudly, in the first test that reads, instead of silently
/// copying each value again.
fn unshadowed_get(interface: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!(
        "{interface}: the generated `get` ran; the shared `get` of add_shared_gets must replace it"
    ))
}

/// Both interfaces' `get`, registered again over the generated ones: the
/// generated signature answers a `Vec<u8>` of its own, so a cached value
/// (an article is 100-200 KB) was copied once on the host before being
/// copied into guest memory. These lower the store's shared buffer
/// ([`Store::get_shared`]) straight into the guest. The generated ones
/// trap ([`unshadowed_get`]).
fn add_shared_gets<T: SpinHostView + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    type Shared = Option<Arc<Vec<u8>>>;
    linker.allow_shadowing(true);
    linker.instance(SPIN_KV)?.func_wrap_concurrent(
        "[method]store.get",
        |accessor: &Accessor<T>, (this, key): (Resource<KvHandle>, String)| {
            Box::pin(async move {
                let store = store_of(&accessor.with_getter::<Spin>(T::spin), &this)?;
                let value: Result<Shared, skv::Error> =
                    store.get_shared(key).await.map_err(skv_err);
                Ok((value,))
            })
        },
    )?;
    linker.instance(WASI_KV)?.func_wrap_async(
        "[method]bucket.get",
        |mut store: wasmtime::StoreContextMut<'_, T>, (this, key): (Resource<KvHandle>, String)| {
            Box::new(async move {
                let bucket = store.data_mut().spin().bucket(&this)?;
                let value: Result<Shared, wst::Error> =
                    bucket.get_shared(key).await.map_err(wkv_err);
                Ok((value,))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

use spin::key_value::key_value as skv;
use wasi::keyvalue::{atomics as wat, batch as wba, store as wst};

fn skv_err(e: KvError) -> skv::Error {
    match e {
        KvError::NoSuchStore => skv::Error::NoSuchStore,
        KvError::AccessDenied => skv::Error::AccessDenied,
        KvError::Other(m) => skv::Error::Other(m),
    }
}

fn wkv_err(e: KvError) -> wst::Error {
    match e {
        KvError::NoSuchStore => wst::Error::NoSuchStore,
        KvError::AccessDenied => wst::Error::AccessDenied,
        KvError::Other(m) => wst::Error::Other(m),
    }
}

/// Look up the store behind a resource handle.
fn store_of<T>(
    accessor: &Accessor<T, Spin>,
    handle: &Resource<KvHandle>,
) -> wasmtime::Result<Arc<dyn Store>> {
    accessor.with(|mut access| access.get().bucket(handle))
}

impl<T> skv::HostStoreWithStore<T> for Spin {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<KvHandle>, skv::Error>> {
        accessor.with(|mut access| {
            let view = access.get();
            match view.ctx.stores.open(&label) {
                Ok(store) => Ok(Ok(view.table.push(KvHandle(store))?)),
                Err(e) => Ok(Err(skv_err(e))),
            }
        })
    }

    /// Required by the generated trait; the linker runs the hand-registered
    /// `get` of [`add_shared_gets`] instead, and this traps if it ever runs.
    async fn get(
        _: &Accessor<T, Self>,
        _: Resource<KvHandle>,
        _: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, skv::Error>> {
        Err(unshadowed_get(SPIN_KV))
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        this: Resource<KvHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), skv::Error>> {
        let store = store_of(accessor, &this)?;
        Ok(store.set(key, value).await.map_err(skv_err))
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        this: Resource<KvHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), skv::Error>> {
        let store = store_of(accessor, &this)?;
        Ok(store.delete(key).await.map_err(skv_err))
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        this: Resource<KvHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, skv::Error>> {
        let store = store_of(accessor, &this)?;
        Ok(store.exists(key).await.map_err(skv_err))
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        this: Resource<KvHandle>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), skv::Error>>)> {
        let store = store_of(accessor, &this)?;
        let (keys, result) = match store.get_keys().await {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(skv_err(e))),
        };
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, keys)?;
            let future =
                FutureReader::new(&mut access, async move { wasmtime::error::Ok(result) })?;
            Ok((stream, future))
        })
    }
}

impl skv::HostStore for SpinView<'_> {
    fn drop(&mut self, rep: Resource<KvHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl skv::Host for SpinView<'_> {}

impl<T> spin::variables::variables::HostWithStore<T> for Spin {
    async fn get(
        accessor: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, spin::variables::variables::Error>> {
        use spin::variables::variables::Error as VErr;
        Ok(accessor.with(|mut access| {
            access.get().ctx.variables.get(&name).map_err(|e| match e {
                GetError::InvalidName(m) => VErr::InvalidName(m),
                GetError::Undefined(m) => VErr::Undefined(m),
            })
        }))
    }
}

impl spin::variables::variables::Host for SpinView<'_> {}

/// The same variables through the synchronous `wasi:config/store`, as
/// Spin maps them (spinframework/spin `crates/factor-variables/src/host.rs`):
/// a value is `some`, an undefined or invalid name `none`. Our variables are
/// resolved when the component is loaded, so neither call can fail.
impl wasi::config::store::Host for SpinView<'_> {
    fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, wasi::config::store::Error>> {
        Ok(Ok(self.ctx.variables.get(&key).ok()))
    }

    fn get_all(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<(String, String)>, wasi::config::store::Error>> {
        Ok(Ok(self.ctx.variables.all()))
    }
}

impl SpinView<'_> {
    fn bucket(&self, handle: &Resource<KvHandle>) -> wasmtime::Result<Arc<dyn Store>> {
        Ok(self.table.get(handle)?.0.clone())
    }
}

impl wst::HostBucket for SpinView<'_> {
    /// Required by the generated trait; the linker runs the hand-registered
    /// `get` of [`add_shared_gets`] instead, and this traps if it ever runs.
    async fn get(
        &mut self,
        _: Resource<KvHandle>,
        _: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wst::Error>> {
        Err(unshadowed_get(WASI_KV))
    }

    async fn set(
        &mut self,
        this: Resource<KvHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wst::Error>> {
        let store = self.bucket(&this)?;
        Ok(store.set(key, value).await.map_err(wkv_err))
    }

    async fn delete(
        &mut self,
        this: Resource<KvHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), wst::Error>> {
        let store = self.bucket(&this)?;
        Ok(store.delete(key).await.map_err(wkv_err))
    }

    async fn exists(
        &mut self,
        this: Resource<KvHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wst::Error>> {
        let store = self.bucket(&this)?;
        Ok(store.exists(key).await.map_err(wkv_err))
    }

    async fn list_keys(
        &mut self,
        this: Resource<KvHandle>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<wst::KeyResponse, wst::Error>> {
        let store = self.bucket(&this)?;
        // All keys in one page: the cursor is the last key already seen.
        Ok(store.get_keys().await.map_err(wkv_err).map(|mut keys| {
            keys.sort();
            if let Some(after) = cursor {
                keys.retain(|k| *k > after);
            }
            wst::KeyResponse { keys, cursor: None }
        }))
    }

    async fn drop(&mut self, rep: Resource<KvHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl wst::Host for SpinView<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<KvHandle>, wst::Error>> {
        match self.ctx.stores.open(&identifier) {
            Ok(store) => Ok(Ok(self.table.push(KvHandle(store))?)),
            Err(e) => Ok(Err(wkv_err(e))),
        }
    }
}

impl wat::HostCas for SpinView<'_> {
    async fn new(
        &mut self,
        bucket: Resource<KvHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, wst::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(Ok(self.table.push(CasHandle {
            store,
            key,
            seen: None,
        })?))
    }

    async fn current(
        &mut self,
        this: Resource<CasHandle>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wst::Error>> {
        let (store, key) = {
            let cas = self.table.get(&this)?;
            (cas.store.clone(), cas.key.clone())
        };
        match store.get(key).await {
            Ok(value) => {
                self.table.get_mut(&this)?.seen = Some(value.clone());
                Ok(Ok(value))
            }
            Err(e) => Ok(Err(wkv_err(e))),
        }
    }

    async fn drop(&mut self, rep: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl wat::Host for SpinView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<KvHandle>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wst::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store.increment(key, delta).await.map_err(wkv_err))
    }

    async fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wat::CasError>> {
        let CasHandle { store, key, seen } = self.table.delete(cas)?;
        // Like Spin: without a prior `current`, read the value now; the swap
        // then only succeeds if nothing changed since that read.
        let expected = match seen {
            Some(v) => v,
            None => match store.get(key.clone()).await {
                Ok(v) => v,
                Err(e) => return Ok(Err(wat::CasError::StoreError(wkv_err(e)))),
            },
        };
        match store.compare_and_swap(key.clone(), expected, value).await {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                let fresh = self.table.push(CasHandle {
                    store,
                    key,
                    seen: None,
                })?;
                Ok(Err(wat::CasError::CasFailed(fresh)))
            }
            Err(e) => Ok(Err(wat::CasError::StoreError(wkv_err(e)))),
        }
    }
}

impl wba::Host for SpinView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<KvHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, wst::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store.get_many(keys).await.map_err(wkv_err))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<KvHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), wst::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store.set_many(key_values).await.map_err(wkv_err))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<KvHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), wst::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store.delete_many(keys).await.map_err(wkv_err))
    }
}
