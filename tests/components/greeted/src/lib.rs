//! Serves HTTP by calling the greeter dependency.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::{http_service, wit_bindgen};

wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "greeter-user",
    path: "../wit",
    generate_all,
});

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let name = req.uri().query().unwrap_or("world").to_string();
    if req.uri().path().ends_with("/bye") {
        return wikiedge_test::greet::farewell::bye(name).await;
    }
    wikiedge_test::greet::greeter::greet(name).await
}
