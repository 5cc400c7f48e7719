//! `kith-gen`: writes the generated artefacts of the Kith protocol core, deterministically.
//!
//! ```text
//! cargo run -p kith-proto --features gen --bin kith-gen                 # write spec/schemas/*.json and vectors/*.json
//! cargo run -p kith-proto --features gen --bin kith-gen -- --check      # exit 1 and list the files that differ
//! cargo run -p kith-proto --features gen --bin kith-gen -- coverage     # requirement table (add --strict to fail on gaps)
//! ```
//!
//! Every output is a pure function of the kith-proto code and fixed seeds: no clock, no
//! randomness, objects written with sorted keys, 2-space indent and a trailing newline.

mod common;
mod coverage;
mod schemas;
mod vectors;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The repository root: the kith-proto package is the workspace root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every generated file, by path relative to the root, with its exact contents.
fn generate() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for (name, schema) in schemas::all() {
        files.insert(format!("spec/schemas/{name}.json"), common::pretty(&schema));
    }
    for (name, file) in vectors::all() {
        files.insert(format!("vectors/{name}.json"), common::pretty(&file));
    }
    files
}

/// Generated files that would change, plus stale generated-looking files that the generator no
/// longer writes.
fn differing(root: &Path, files: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in files {
        match std::fs::read_to_string(root.join(path)) {
            Ok(old) if old == *text => {}
            _ => out.push(path.clone()),
        }
    }
    for dir in ["spec/schemas", "vectors"] {
        let Ok(read) = std::fs::read_dir(root.join(dir)) else { continue };
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{dir}/{name}");
            if name.ends_with(".json") && !files.contains_key(&path) {
                out.push(format!("{path} (not generated any more)"));
            }
        }
    }
    out.sort();
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = root();
    match args.first().map(String::as_str) {
        None => {
            let files = generate();
            for (path, text) in &files {
                let full = root.join(path);
                if let Some(dir) = full.parent() {
                    if let Err(e) = std::fs::create_dir_all(dir) {
                        eprintln!("kith-gen: cannot create {}: {e}", dir.display());
                        return ExitCode::FAILURE;
                    }
                }
                if let Err(e) = std::fs::write(&full, text) {
                    eprintln!("kith-gen: cannot write {}: {e}", full.display());
                    return ExitCode::FAILURE;
                }
            }
            println!("kith-gen: wrote {} files", files.len());
            ExitCode::SUCCESS
        }
        Some("--check") => {
            let files = generate();
            let diff = differing(&root, &files);
            if diff.is_empty() {
                println!("kith-gen: {} generated files are up to date", files.len());
                ExitCode::SUCCESS
            } else {
                eprintln!("kith-gen: generated files differ from the committed ones; run `cargo run -p kith-proto --features gen --bin kith-gen`:");
                for path in diff {
                    eprintln!("  {path}");
                }
                ExitCode::FAILURE
            }
        }
        Some("coverage") => {
            let strict = args.iter().any(|a| a == "--strict");
            coverage::run(&root, strict)
        }
        Some(other) => {
            eprintln!("kith-gen: unknown argument {other:?}; usage: kith-gen [--check | coverage [--strict]]");
            ExitCode::from(2)
        }
    }
}
