//! Exports `wikiedge-test:greet/greeter`: a dependency for the composition test.

use spin_sdk::wit_bindgen;

wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "greeter-provider",
    path: "../wit",
    generate_all,
});

use wasi::keyvalue::{atomics, store};

struct Greeter;

impl exports::wikiedge_test::greet::greeter::Guest for Greeter {
    async fn greet(name: String) -> String {
        // Count greetings in the store the *parent* component declared: this
        // only works when the dependency inherits the parent's configuration.
        let count = store::open("default")
            .and_then(|bucket| atomics::increment(&bucket, "greetings", 1))
            .map(|n| n.to_string())
            .unwrap_or_else(|e| format!("no-store({e:?})"));
        format!("Hello, {name}! (greeting #{count})")
    }
}

impl exports::wikiedge_test::greet::farewell::Guest for Greeter {
    async fn bye(name: String) -> String {
        format!("Goodbye, {name}!")
    }
}

export!(Greeter);
