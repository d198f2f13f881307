//! Component dependencies, composed at load time as Spin does
//! (spinframework/spin `crates/compose/src/lib.rs`).
//!
//! `[component.x.dependencies]` maps imports of component `x` (an interface
//! such as `wikiedge:auth/auth@0.1.0`, a whole package such as
//! `wikiedge:auth`, or a plain name) to another component's `.wasm` file;
//! the manifest has already resolved `{ component = "id" }` to that
//! component's source (Spin's normalisation). Each dependency is registered
//! in a `wac-graph` composition under the *package* of its name — so two
//! dependencies on interfaces of one package collide, exactly as in Spin —
//! matched against the imports by Spin's `matches_import`, and plugged into
//! the main component; the composed component's remaining imports are what
//! `x` and its dependencies import, which the host then provides.
//!
//! `dependencies_inherit_configuration = true` gives the dependencies the
//! same key-value stores, variables and outbound hosts as `x`. Spin denies a
//! dependency those capabilities otherwise (its deny-all adapter); wikiedge
//! refuses to load such a dependency when it imports a capability (rather
//! than silently granting it), and says so.

use crate::manifest::{Dependency, Manifest};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use wac_graph::types::{Package, SubtypeChecker};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId};

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
    // Spin's trigger wraps a composition failure in this context.
    compose(manifest, id, main)
        .with_context(|| format!("failed to resolve dependencies for component {id:?}"))
}

struct Prepared<'a> {
    dep: &'a Dependency,
    world: wac_graph::types::WorldId,
    instance: NodeId,
}

fn compose(manifest: &Manifest, id: &str, main: Vec<u8>) -> Result<Vec<u8>> {
    let decl = &manifest.components[id];
    let preparing = "an error occurred when preparing dependencies";
    let mut graph = CompositionGraph::new();
    // Spin registers the main component under its id.
    let main_pkg = Package::from_bytes(id, None, main, graph.types_mut())
        .with_context(|| format!("component `{id}` is not a valid component"))
        .context(preparing)?;
    let main_world = main_pkg.ty();
    let main_pkg = graph.register_package(main_pkg).context(preparing)?;
    let main_inst = graph.instantiate(main_pkg);
    let imports: Vec<String> = graph.types()[main_world].imports.keys().cloned().collect();

    // `prepare_dependencies`: match names to imports, register each
    // dependency (under its package name), detect conflicts.
    let mut mappings: BTreeMap<String, Vec<Prepared<'_>>> = BTreeMap::new();
    for dep in &decl.dependencies {
        let matched: Vec<&String> = imports
            .iter()
            .filter(|i| dep.name.matches_import(i))
            .collect();
        if matched.is_empty() {
            bail!(
                "dependency '{}' doesn't match any imports of component '{id}'",
                dep.name
            );
        }
        let full = manifest.base_dir.join(&dep.path);
        let bytes = std::fs::read(&full)
            .with_context(|| {
                format!(
                    "Failed to load component dependency `{}` for `{id}`: cannot read {}",
                    dep.name,
                    full.display()
                )
            })
            .context(preparing)?;
        let pkg = Package::from_bytes(
            dep.name.registered_package(),
            None,
            bytes,
            graph.types_mut(),
        )
        .with_context(|| {
            format!(
                "dependency \"{}\" of `{id}` is not a valid component",
                dep.name
            )
        })
        .context(preparing)?;
        let world = pkg.ty();
        if !decl.dependencies_inherit_configuration
            && let Some(cap) = graph.types()[world]
                .imports
                .keys()
                .find(|i| CAPABILITY_PREFIXES.iter().any(|p| i.starts_with(p)))
        {
            bail!(
                "dependency \"{}\" of component `{id}` imports `{cap}`; set `dependencies_inherit_configuration = true` on [component.{id}] to give it this component's configuration (wikiedge does not support denying capabilities to dependencies)",
                dep.name
            );
        }
        let pkg = graph
            .register_package(pkg)
            .map_err(anyhow::Error::from)
            .context(preparing)?;
        let instance = graph.instantiate(pkg);
        for import in matched {
            mappings.entry(import.clone()).or_default().push(Prepared {
                dep,
                world,
                instance,
            });
        }
    }
    let conflicts: Vec<String> = mappings
        .iter()
        .filter(|(_, infos)| infos.len() > 1)
        .map(|(import, infos)| {
            let names: Vec<String> = infos.iter().map(|p| p.dep.name.to_string()).collect();
            format!(
                "import '{import}' satisfied by dependencies: '{}'",
                names.join(", ")
            )
        })
        .collect();
    if !conflicts.is_empty() {
        bail!(
            "component '{id}' has dependency conflicts: {}",
            conflicts.join("; ")
        );
    }

    // `build_instantiation_arguments`: the export (named, or the import's
    // own name) must exist and be a subtype of the import.
    let mut cache = Default::default();
    let mut arguments = Vec::new();
    for (import, mut infos) in mappings {
        let Some(info) = infos.pop() else { continue };
        let export = info.dep.export.clone().unwrap_or_else(|| import.clone());
        let Some(export_ty) = graph.types()[info.world].exports.get(&export).copied() else {
            bail!(
                "dependency '{}' doesn't export '{export}' to satisfy import '{import}'",
                info.dep.name
            );
        };
        let import_ty = graph.types()[main_world].imports[&import];
        SubtypeChecker::new(&mut cache)
            .is_subtype(export_ty, graph.types(), import_ty, graph.types())
            .with_context(|| {
                format!(
                    "dependency '{}' exports '{export}' which is not compatible with import '{import}'",
                    info.dep.name
                )
            })
            .context(preparing)?;
        let alias = graph
            .alias_instance_export(info.instance, &export)
            .map_err(anyhow::Error::from)
            .context(preparing)?;
        arguments.push((import, alias));
    }
    for (import, alias) in arguments {
        graph
            .set_instantiation_argument(main_inst, &import, alias)
            .map_err(anyhow::Error::from)
            .context(preparing)?;
    }

    let exports: Vec<String> = graph.types()[main_world].exports.keys().cloned().collect();
    for export in exports {
        let alias = graph.alias_instance_export(main_inst, &export)?;
        graph.export(alias, &export)?;
    }
    graph
        .encode(EncodeOptions::default())
        .map_err(|e| anyhow!("failed to encode composition graph: {e}"))
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
