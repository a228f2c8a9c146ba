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
