//! Running the Python references the parity tests compare against.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The project's Python (`.venv`, set up by `scripts/test.sh`), or `MUDAR_PYTHON`.
pub fn python() -> PathBuf {
    std::env::var_os("MUDAR_PYTHON")
        .map_or(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"), Into::into)
}

/// Runs `tests/SCRIPT DIR` with [`python`]; panics with its stderr if it fails.
pub fn run_reference(script: &str, dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(script);
    let output = std::process::Command::new(python()).arg(&script).arg(dir).output().unwrap_or_else(|e| {
        panic!("cannot run {} ({e}): run scripts/test.sh, which sets up .venv with the references", python().display())
    });
    assert!(output.status.success(), "{} failed:\n{}", script.display(), String::from_utf8_lossy(&output.stderr));
}

/// A raw little-endian f32 array.
pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}
