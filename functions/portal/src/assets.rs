//! The compiled-in assets and the paths they answer. (Tested from
//! `tests/e2e/portal.rs`: a cdylib with spin-sdk does not link natively.)

/// One static file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// The app's page.
pub const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("../static/index.html"),
};
/// The app's script.
pub const APP_JS: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("../static/app.js"),
};
/// The app's styles.
pub const APP_CSS: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    body: include_bytes!("../static/app.css"),
};
/// The OpenAPI 3.1 document of the whole API.
pub const OPENAPI: Asset = Asset {
    content_type: "application/json",
    body: include_bytes!("../static/openapi.json"),
};

/// The asset a path names, if any.
pub fn find(path: &str) -> Option<Asset> {
    match path {
        "/portal" | "/portal/" | "/portal/index.html" => Some(INDEX),
        "/portal/app.js" => Some(APP_JS),
        "/portal/app.css" => Some(APP_CSS),
        "/openapi.json" | "/portal/openapi.json" => Some(OPENAPI),
        _ => None,
    }
}
