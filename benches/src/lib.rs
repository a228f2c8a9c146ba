//! Shared set-up for the benchmarks: synthetic inputs rendered once per run.

use std::path::{Path, PathBuf};

use mudar_operators::synth::{Dance, SynthConfig};
use mudar_sinks::MediaFormat;

/// Renders a synthetic dance of `seconds` into `dir` as `format` (640x360 at 24 fps, like a phone clip).
pub fn synthetic_video(dir: &Path, seconds: f64, format: MediaFormat) -> anyhow::Result<PathBuf> {
    let config = SynthConfig { duration_s: seconds, width: 640, height: 360, ..SynthConfig::default() };
    let path = dir.join(format!("bench.{}", format.extension()));
    mudar_pipeline::synth::write_dance(&Dance::new(config)?, &path, format, |_, _| {})?;
    Ok(path)
}

/// Runs `benches/python/SCRIPT ARGS...` with the project's Python (`.venv`,
/// or `MUDAR_PYTHON`), single-threaded, and parses the JSON it prints;
/// `None` (with its stderr shown) when the peer is not installed or fails.
pub fn python_peer(script: &str, args: &[&std::ffi::OsStr]) -> Option<serde_json::Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var_os("MUDAR_PYTHON").map_or(root.join(".venv/bin/python"), Into::into);
    let output = std::process::Command::new(python)
        .arg(root.join("benches/python").join(script))
        .args(args)
        .envs(["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"].map(|k| (k, "1")))
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!("{script} failed: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

/// The best wall time of `repeats` runs of `f`, in seconds.
pub fn best_of(repeats: usize, mut f: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}
