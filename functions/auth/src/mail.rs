//! Delivering codes: a POST of the [`Mail`] JSON to the `mail_webhook_url`
//! (signed with `mail_webhook_secret` in `X-Wikiedge-Signature`), or, when
//! no webhook is configured, an append to the dev outbox the admin reads at
//! `GET /v1/admin/outbox`. See docs/signup.md.
//!
//! Delivery never fails the request: a failure is logged and the caller
//! answers as if it had worked (the user can ask again), so the answer to
//! `forgot-password` cannot tell by a failure that an account exists.

use bytes::Bytes;
use spin_sdk::http::{FullBody, Request};
use wikiedge_core::auth::signup::{Mail, Outbox, webhook_signature};

use crate::kv::{Kv, Update};
use crate::selfserve::Settings;

/// Delivers one message; failures are logged.
pub async fn deliver(kv: &mut Kv, settings: &Settings, mail: &Mail) {
    let result = if settings.webhook_url.is_empty() {
        kv.update(Outbox::KEY, |current| {
            let mut outbox = current
                .as_deref()
                .map(Outbox::from_json)
                .unwrap_or_default();
            outbox.push(mail.clone());
            Ok(Update::Write(outbox.to_json(), ()))
        })
        .map_err(|e| format!("{e:?}"))
    } else {
        post(settings, mail).await
    };
    if let Err(e) = result {
        eprintln!("auth: delivering a {} code: {e}", mail.purpose.as_str());
    }
}

async fn post(settings: &Settings, mail: &Mail) -> Result<(), String> {
    let body = serde_json::to_vec(mail).map_err(|e| e.to_string())?;
    let mut builder = Request::post(&settings.webhook_url)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .header(
            "user-agent",
            concat!("wikiedge/", env!("CARGO_PKG_VERSION")),
        );
    if !settings.webhook_secret.is_empty() {
        builder = builder.header(
            "x-wikiedge-signature",
            webhook_signature(&settings.webhook_secret, &body),
        );
    }
    let request = builder
        .body(FullBody::new(Bytes::from(body)))
        .map_err(|e| format!("invalid mail_webhook_url: {e}"))?;
    let response = spin_sdk::http::send(request)
        .await
        .map_err(|e| format!("webhook request failed: {e:?}"))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("webhook answered {status}"))
    }
}
