//! `mudar motion`: the dance motion of a video.

use std::process::ExitCode;

use mudar_operators::motion::{FlowBackend, HoofParams};
use mudar_pipeline::retarget::{MotionAnalysis, track_motion};
use mudar_pipeline::{ClipRule, MediaSource, Resize, SourceConfig, VideoOutput};
use serde_json::json;

use crate::flow::BackendArgs;
use crate::progress;

/// Per-frame motion of each input's video track: optical flow between
/// consecutive frames, its HOOF (paper Eq. 3-4), motion energy, and the
/// model-free visual beats (the directogram's impact envelope and its peaks).
///
/// Frames are decoded at --fps and --size x --size, as the model sees them.
/// Entry t of every per-frame list belongs to frame t (stamped with its time):
/// the motion out of it (the flow to frame t+1) and the visual impact at it,
/// the deceleration from the motion into frame t to the motion out of it. The
/// last frame has no entry. Inputs that fail are reported and
/// the rest go on; the exit status is 1 if any failed.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true, value_name = "VIDEO")]
    inputs: Vec<String>,
    /// One JSON object per input and line: times, hoof, motion_energy,
    /// impact_envelope, visual_beat_frames, visual_beat_times.
    #[arg(long)]
    json: bool,
    /// Part of the input to analyse: whole, paper (8 s around the middle), centered:SECONDS.
    #[arg(long, default_value = "whole")]
    clip: ClipRule,
    /// Frame rate the video is decoded at.
    #[arg(long, default_value_t = 8)]
    fps: u32,
    /// Side of the square frames the video is decoded at.
    #[arg(long, default_value_t = 256)]
    size: u32,
    /// HOOF orientation bins (B).
    #[arg(long, default_value_t = HoofParams::default().bins)]
    bins: usize,
    /// HOOF with Chaudhry's horizontal symmetry (left and right motion alike).
    #[arg(long)]
    symmetric: bool,
    /// Frame pairs per flow batch (what PWC-Net runs at once).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[command(flatten)]
    backend: BackendArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.fps > 0 && args.size >= 8, "--fps must be positive and --size at least 8");
    anyhow::ensure!(args.bins > 0 && args.batch > 0, "--bins and --batch must be positive");
    let backend = args.backend.backend()?;
    let mut failed = 0;
    for input in &args.inputs {
        match analyze(input, &args, &backend) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                failed += 1;
                eprintln!("mudar motion: {e:#}");
            }
        }
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn analyze(input: &str, args: &Args, backend: &FlowBackend) -> anyhow::Result<String> {
    let expected = MediaSource::open(
        input,
        &SourceConfig {
            audio: None,
            video: Some(VideoOutput { width: 8, height: 8, fps: args.fps, resize: Resize::Stretch }),
            ..SourceConfig::default()
        },
    )?
    .duration();
    let span = args.clip.decode_span(expected).map(|s| s.end - s.start).or(expected).unwrap_or_default();
    let bar = progress::bar((span.as_secs_f64() * args.fps as f64).round() as u64, input.to_owned(), "frames");
    let analysis = MotionAnalysis {
        fps: args.fps,
        size: args.size,
        hoof: HoofParams { bins: args.bins, symmetric: args.symmetric, ..Default::default() },
        batch: args.batch,
        clip: args.clip,
    };
    let (track, times) = track_motion(input, &analysis, backend, |n| bar.inc(n)).map_err(anyhow::Error::msg)?;
    bar.finish_and_clear();

    let rhythm = track.finish();
    let beat_times: Vec<f64> = rhythm.beats.iter().map(|&t| times[t]).collect();
    if args.json {
        return Ok(json!({
            "path": input,
            "backend": backend.name(),
            "fps": args.fps,
            "width": args.size,
            "height": args.size,
            "n_frames": track.len() + 1,
            "hoof_bins": args.bins,
            "hoof_symmetric": args.symmetric,
            "times": times,
            "hoof": track.hoof,
            "motion_energy": track.motion_energy,
            "impact_envelope": rhythm.impact_envelope,
            "visual_beat_frames": rhythm.beats,
            "visual_beat_times": beat_times,
        })
        .to_string());
    }
    let mean_energy = track.motion_energy.iter().sum::<f32>() / track.len() as f32;
    let list = beat_times.iter().map(|t| format!("{t:.3}")).collect::<Vec<_>>().join(" ");
    Ok(format!(
        "{input}\t{} frames to {:.2} s\t{} flow\tmean motion {mean_energy:.2} px/frame\t{} visual beats: {list}",
        track.len() + 1,
        times.last().copied().unwrap_or_default(),
        backend.name(),
        beat_times.len(),
    ))
}
