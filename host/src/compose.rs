//! Component dependencies, composed at load time as Spin does.
//!
//! `[component.x.dependencies]` maps an import of component `x` (an
//! interface such as `wikiedge:api/auth@0.1.0`, or a whole package such as
//! `wikiedge:api`) to another component, given by `path` or by the id of a
//! component of the same application. Before `x` is compiled, each such
//! import is satisfied by instantiating the dependency inside a new composed
//! component (with `wac-graph`), exactly like `spin up` does; the composed
//! component's remaining imports are the union of what `x` and its
//! dependencies import, which the host then provides.
//!
//! `dependencies_inherit_configuration = true` gives the dependencies the
//! same key-value stores, variables and outbound hosts as `x`. Spin denies a
//! dependency those capabilities otherwise; wikiedge refuses to load such a
//! dependency when it imports a capability (rather than silently granting
//! it), and says so.

use crate::manifest::{DependencyDecl, Manifest};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

/// Interfaces that carry configuration a dependency must not get silently.
const CAPABILITY_PREFIXES: &[&str] = &[
    "spin:key-value/",
    "spin:variables/",
    "wasi:keyvalue/",
    "wasi:http/client",
    "wasi:http/outgoing-handler",
    "fermyon:spin/",
    "wasi:config/",
];

/// The bytes of component `id`, with its dependencies composed in.
pub fn composed_bytes(manifest: &Manifest, id: &str) -> Result<Vec<u8>> {
    let decl = manifest
        .components
        .get(id)
        .ok_or_else(|| anyhow!("no component `{id}`"))?;
    let main = read_component(manifest, id)?;
    if decl.dependencies.is_empty() {
        return Ok(main);
    }

    let mut graph = CompositionGraph::new();
    let main_pkg = Package::from_bytes(&format!("root:{id}"), None, main, graph.types_mut())
        .with_context(|| format!("component `{id}` is not a valid component"))?;
    let main_pkg = graph.register_package(main_pkg)?;
    let main_world = graph[main_pkg].ty();
    let main_imports: Vec<String> = graph.types()[main_world].imports.keys().cloned().collect();
    let main_exports: Vec<String> = graph.types()[main_world].exports.keys().cloned().collect();
    let main_inst = graph.instantiate(main_pkg);

    // Register each distinct dependency once.
    let mut instances: BTreeMap<String, wac_graph::NodeId> = BTreeMap::new();
    for (import, dep) in &decl.dependencies {
        let (key, bytes, export) = match dep {
            DependencyDecl::Component { component, export } => (
                format!("component:{component}"),
                read_component(manifest, component)?,
                export,
            ),
            DependencyDecl::Local { path, export } => {
                let full = manifest.base_dir.join(path);
                let bytes = std::fs::read(&full).with_context(|| {
                    format!(
                        "[component.{id}.dependencies] \"{import}\": cannot read {}",
                        full.display()
                    )
                })?;
                (format!("path:{path}"), bytes, export)
            }
            DependencyDecl::Other(_) => bail!("unsupported dependency form for \"{import}\""),
        };
        let dep_inst = match instances.get(&key) {
            Some(inst) => *inst,
            None => {
                let pkg_name = format!("dep:{}", instances.len());
                let pkg = Package::from_bytes(&pkg_name, None, bytes, graph.types_mut())
                    .with_context(|| {
                        format!("dependency \"{import}\" of `{id}` is not a valid component")
                    })?;
                let dep_imports: Vec<String> =
                    graph.types()[pkg.ty()].imports.keys().cloned().collect();
                if !decl.dependencies_inherit_configuration
                    && let Some(cap) = dep_imports
                        .iter()
                        .find(|i| CAPABILITY_PREFIXES.iter().any(|p| i.starts_with(p)))
                {
                    bail!(
                        "dependency \"{import}\" of component `{id}` imports `{cap}`; set `dependencies_inherit_configuration = true` on [component.{id}] to give it this component's configuration (wikiedge does not support denying capabilities to dependencies)"
                    );
                }
                let pkg = graph.register_package(pkg)?;
                let inst = graph.instantiate(pkg);
                instances.insert(key, inst);
                inst
            }
        };

        // Which of the main component's imports this entry satisfies: the
        // exact interface, or every interface of a named package.
        let targets: Vec<&String> = if import.contains('/') {
            main_imports
                .iter()
                .filter(|i| same_interface(i, import))
                .collect()
        } else {
            main_imports
                .iter()
                .filter(|i| {
                    i.split_once('/').is_some_and(|(pkg, _)| {
                        pkg == import || pkg.starts_with(&format!("{import}@"))
                    })
                })
                .collect()
        };
        if targets.is_empty() {
            bail!(
                "[component.{id}.dependencies] \"{import}\": component `{id}` has no such import"
            );
        }
        for target in targets {
            let export_name = match export {
                Some(e) if import.contains('/') => e.clone(),
                _ => target.clone(),
            };
            let alias = graph
                .alias_instance_export(dep_inst, &export_name)
                .map_err(|e| {
                    anyhow!("dependency for \"{import}\" does not export `{export_name}`: {e}")
                })?;
            graph
                .set_instantiation_argument(main_inst, target, alias)
                .map_err(|e| anyhow!("dependency for \"{target}\" does not fit `{id}`: {e}"))?;
        }
    }

    for export in &main_exports {
        let alias = graph.alias_instance_export(main_inst, export)?;
        graph.export(alias, export)?;
    }
    graph
        .encode(EncodeOptions::default())
        .map_err(|e| anyhow!("composing the dependencies of `{id}` failed: {e}"))
}

/// `a:b/c@1.2.3` matches `a:b/c@1.2.3` and `a:b/c` (any version).
fn same_interface(candidate: &str, wanted: &str) -> bool {
    candidate == wanted || candidate.split('@').next() == Some(wanted)
}

/// Read a component's wasm file, with a helpful error when it is missing.
pub fn read_component(manifest: &Manifest, id: &str) -> Result<Vec<u8>> {
    let path = manifest
        .source_path(id)
        .ok_or_else(|| anyhow!("component `{id}` has no local source"))?;
    std::fs::read(&path).map_err(|e| {
        let build = manifest.components[id]
            .build
            .as_ref()
            .map(|b| format!("; build it with `wikiedge build` (runs `{}`)", b.command))
            .unwrap_or_default();
        anyhow!(
            "component `{id}`: cannot read {}: {e}{build}",
            path.display()
        )
    })
}
