//! Spin manifests written by tests: an application's HTTP routes and its
//! components, as the text `spin_manifest_version = 2` reads.

use std::fmt::Write;

/// A component: its id, its `source` and its `build` command.
pub struct Component<'a> {
    pub id: &'a str,
    pub source: &'a str,
    pub build: &'a str,
}

/// The manifest of the application `name`: one `[[trigger.http]]` a
/// `(route, component id)`, then each component's table.
pub fn spin_manifest(name: &str, routes: &[(&str, &str)], components: &[Component]) -> String {
    let mut out = format!(
        "spin_manifest_version = 2\n[application]\nname = {}\n",
        quoted(name)
    );
    for (route, component) in routes {
        let (route, component) = (quoted(route), quoted(component));
        let _ = writeln!(
            out,
            "[[trigger.http]]\nroute = {route}\ncomponent = {component}"
        );
    }
    for c in components {
        let id = c.id;
        let (source, build) = (quoted(c.source), quoted(c.build));
        let _ = writeln!(
            out,
            "[component.{id}]\nsource = {source}\n[component.{id}.build]\ncommand = {build}"
        );
    }
    out
}

/// A TOML basic string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_names_its_routes_and_components() {
        let text = spin_manifest(
            "app",
            &[("/a/...", "c"), ("/b", "c")],
            &[Component {
                id: "c",
                source: "c.wasm",
                build: "echo \"hi\"",
            }],
        );
        assert_eq!(
            text,
            "spin_manifest_version = 2\n[application]\nname = \"app\"\n\
             [[trigger.http]]\nroute = \"/a/...\"\ncomponent = \"c\"\n\
             [[trigger.http]]\nroute = \"/b\"\ncomponent = \"c\"\n\
             [component.c]\nsource = \"c.wasm\"\n\
             [component.c.build]\ncommand = \"echo \\\"hi\\\"\"\n"
        );
    }
}
