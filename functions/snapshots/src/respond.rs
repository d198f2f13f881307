//! The reply a handler builds: status, headers and a payload, kept as plain
//! data until the very end so that metering sees the size and the quota
//! headers can be added on every path. A download's payload is a list of
//! stored part slices, streamed from key-value only when the response is
//! sent, so a download never sits in memory whole.

use bytes::Bytes;
use futures::SinkExt;
use spin_sdk::http::{BoxBody, box_body};
use wikiedge_core::Error;
use wikiedge_core::snapshot::{PartSlice, part_key};

/// What a reply's body is.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Bytes in memory (JSON, errors).
    Bytes(Vec<u8>),
    /// No body, whatever the headers say (HEAD).
    Empty,
    /// Slices of the stored parts of `identifier` at `version`, in order.
    Parts {
        /// The tar.gz's identifier (snapshot or chunk).
        identifier: String,
        /// Its version.
        version: String,
        /// The slices to send.
        slices: Vec<PartSlice>,
        /// The account's concurrent-download slot, given back when the
        /// body has been sent (or the client went away).
        slot: Option<std::sync::Arc<wikiedge_fn::slots::Slot>>,
    },
}

/// A response under construction, its body a [`Payload`].
pub type Reply = wikiedge_fn::respond::Reply<Payload>;

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload::Bytes(bytes)
    }
}

/// Converts to the HTTP response sent; a `Parts` payload starts a task
/// that reads the parts one by one as the client takes them.
pub fn into_response(mut reply: Reply) -> http::Response<BoxBody> {
    let body = match std::mem::replace(&mut reply.body, Payload::Empty) {
        Payload::Bytes(bytes) => box_body(http_body_util::Full::new(Bytes::from(bytes))),
        Payload::Empty => box_body(http_body_util::Empty::<Bytes>::new()),
        Payload::Parts {
            identifier,
            version,
            slices,
            slot,
        } => stream_parts(identifier, version, slices, slot),
    };
    reply.into_response_with(body, || {
        box_body(http_body_util::Full::new(Bytes::from(
            Error::Internal(String::new()).body_json(),
        )))
    })
}

/// A body fed by a task that reads the parts from key-value in order. A
/// part that is missing (the version was replaced mid-download) or
/// unreadable ends the body with an error, so the client sees a failed
/// transfer rather than wrong bytes.
fn stream_parts(
    identifier: String,
    version: String,
    slices: Vec<PartSlice>,
    slot: Option<std::sync::Arc<wikiedge_fn::slots::Slot>>,
) -> BoxBody {
    // At most `PARTS_AHEAD` parts (1 MiB each) ahead of a slow client.
    let (mut tx, body) = wikiedge_fn::respond::parts_body();
    spin_sdk::wasip3::spawn(async move {
        // Held until this task ends.
        let _slot = slot;
        let store = match crate::store::open_bulk().await {
            Ok(store) => store,
            Err(err) => {
                let _ = tx
                    .send(Err(anyhow::anyhow!("opening the store: {err:?}")))
                    .await;
                return;
            }
        };
        for slice in slices {
            let key = part_key(&identifier, &version, slice.part);
            let item = match store.get(&key).await {
                Ok(Some(bytes)) if bytes.len() >= slice.to && slice.from <= slice.to => {
                    Ok(Bytes::from(bytes).slice(slice.from..slice.to))
                }
                Ok(Some(_)) => Err(anyhow::anyhow!("part {key} is shorter than recorded")),
                Ok(None) => Err(anyhow::anyhow!("part {key} is missing")),
                Err(err) => Err(anyhow::anyhow!("reading {key}: {err:?}")),
            };
            let failed = item.is_err();
            if let Err(err) = &item {
                eprintln!("snapshots: download of {identifier} aborted: {err}");
            }
            if tx.send(item).await.is_err() || failed {
                // The client went away, or the body is broken: stop reading.
                return;
            }
        }
    });
    body
}
