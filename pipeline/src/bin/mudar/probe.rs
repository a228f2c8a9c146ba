//! `mudar probe`: duration and tracks of each input.

use std::process::ExitCode;
use std::time::Duration;

use mudar_pipeline::{MediaError, ProbeOptions};
use mudar_schemas::MediaInfo;
use serde_json::json;

/// Print each input's duration and tracks (or why it cannot be read).
///
/// One line per input; inputs that fail are reported and the rest go on. The
/// exit status is 1 if any input failed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or URIs to probe.
    #[arg(required = true, value_name = "PATH")]
    inputs: Vec<String>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Count video frames by decoding (exact, slower) instead of duration × frame rate.
    #[arg(long)]
    count_frames: bool,
    /// Seconds to wait for an input before calling it stalled.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    timeout: f64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.timeout > 0.0 && args.timeout.is_finite(), "--timeout must be a positive number of seconds");
    let options = ProbeOptions { timeout: Duration::from_secs_f64(args.timeout), count_frames: args.count_frames };
    let mut failed = 0;
    for input in &args.inputs {
        let result = mudar_pipeline::probe(input, &options);
        failed += result.is_err() as usize;
        let line = if args.json { json_line(input, &result) } else { text_line(input, &result) };
        println!("{line}");
    }
    if failed > 0 {
        eprintln!("mudar probe: {failed} of {} input(s) failed", args.inputs.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn json_line(input: &str, result: &Result<MediaInfo, MediaError>) -> String {
    match result {
        Ok(info) => {
            let mut value = serde_json::to_value(info).expect("media info serialises");
            value["path"] = json!(input);
            value["error"] = serde_json::Value::Null;
            value.to_string()
        }
        Err(e) => {
            json!({ "path": input, "error": { "kind": e.kind.code(), "message": e.kind.to_string() } }).to_string()
        }
    }
}

fn text_line(input: &str, result: &Result<MediaInfo, MediaError>) -> String {
    let info = match result {
        Ok(info) => info,
        Err(e) => return format!("{input}\terror ({}): {}", e.kind.code(), e.kind),
    };
    let mut parts = vec![input.to_owned()];
    parts.push(info.duration_s.map_or("duration unknown".into(), |d| format!("{d:.3} s")));
    match &info.video {
        Some(v) => {
            let fps = v.fps.map_or("variable fps".into(), |f| format!("{f:.3} fps"));
            let frames = v
                .frame_count
                .map_or("? frames".into(), |n| format!("{}{n} frames", if v.frame_count_exact { "" } else { "~" }));
            parts.push(format!("video {}x{} {fps} {frames}", v.width, v.height));
        }
        None => parts.push("no video".into()),
    }
    match &info.audio {
        Some(a) => parts.push(format!("audio {} Hz {} ch", a.sample_rate, a.channels)),
        None => parts.push("no audio".into()),
    }
    parts.join("\t")
}
