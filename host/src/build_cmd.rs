//! `wikiedge build`: run each component's `[component.x.build] command`,
//! as `spin build` does (in the manifest's directory, or `workdir`).

use crate::manifest::Manifest;
use anyhow::{Context, Result, bail};
use std::process::Command;

/// Build every component that has a build command (or only `only`).
pub fn build(manifest: &Manifest, only: &[String]) -> Result<()> {
    for (id, decl) in &manifest.components {
        if !only.is_empty() && !only.contains(id) {
            continue;
        }
        let Some(build) = &decl.build else {
            eprintln!("Component {id} has no build command: skipping");
            continue;
        };
        let dir = match &build.workdir {
            Some(w) => manifest.base_dir.join(w),
            None => manifest.base_dir.clone(),
        };
        eprintln!("Building component {id} with `{}`", build.command);
        let status = Command::new("sh")
            .arg("-c")
            .arg(&build.command)
            .current_dir(&dir)
            .status()
            .with_context(|| format!("cannot run the build command of component `{id}`"))?;
        if !status.success() {
            bail!("build command for component `{id}` failed ({status})");
        }
    }
    eprintln!("Finished building all components");
    Ok(())
}
