//! `wikiedge compile-component` (hidden): the process of its own in which
//! `wikiedge up` compiles a component its compile cache lacks
//! (`wikiedge_host::compiled::CompileProcess`), so that cranelift's memory
//! is never the server's. It builds an engine with the server's options,
//! reads the component's bytes from standard input and writes the compiled
//! code to `--out`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use wikiedge_host::compiled::CompileProcess;

/// The subcommand's name.
const SUBCOMMAND: &str = "compile-component";

/// What the child is given: the engine's options and the file to write.
#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// The largest linear memory a guest may grow to, in MiB, as the
    /// server's `--max-instance-memory-mib` (it shapes the compiled code).
    #[arg(long)]
    pub max_instance_memory_mib: u64,
    /// The compiled code file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// Compiles the component on standard input into `args.out`.
pub fn run(args: &CompileArgs) -> Result<()> {
    let engine = wikiedge_host::engine::engine_with(wikiedge_host::engine::EngineOptions {
        max_memory: (args.max_instance_memory_mib as usize) << 20,
    })?;
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("reading the component from standard input")?;
    wikiedge_host::compiled::compile_to_file(&engine, &bytes, &args.out)
}

/// The compile process for a server whose guests may grow to
/// `max_instance_memory_mib`: this very executable, run with
/// [`SUBCOMMAND`]. `None` when the executable cannot be found (the server
/// then compiles in its own process).
pub fn process(max_instance_memory_mib: u64) -> Option<CompileProcess> {
    let program = std::env::current_exe().ok()?;
    Some(CompileProcess {
        program,
        args: vec![
            SUBCOMMAND.to_string(),
            "--max-instance-memory-mib".to_string(),
            max_instance_memory_mib.to_string(),
        ],
    })
}
