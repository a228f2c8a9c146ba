//! `mudar retarget`: a dance put to other music (paper Sec. 4.4).

use std::path::PathBuf;
use std::process::ExitCode;

use mudar_operators::retarget::{Alignment, Pattern};
use mudar_operators::rhythm::{RhythmParams, SpectrogramParams};
use mudar_pipeline::retarget::{RetargetPlan, retarget};
use mudar_sinks::MediaFormat;

use crate::flow::BackendArgs;
use crate::progress;

/// Puts a dance to other music: the dance is warped in time so that its visual rhythm meets
/// the music's beats, and rendered at its own size and frame rate with the music as its sound.
///
/// The dance's rhythm points are its model-free visual beats (the directogram's impacts, at
/// --fps); the music's are its beats (librosa's beat_track). --mode picks the paper's pattern:
/// `shift` slides a window as long as the shorter over the longer, keeps the crop with the
/// nearest number of rhythm points and aligns their first points (the speed never changes);
/// `accelerate` puts the k-th visual point on the k-th beat, stretching or squeezing each
/// interval; `dtw` (default) lets dynamic time warping on the rhythm points (Eq. 22-23) pick
/// which points meet. The alignment before (dance and music simply from their starts) and
/// after is printed: both Beat Align Scores, the share of beats with a visual rhythm point
/// within a frame, and the slowest and fastest playback of the dance.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dance video.
    dance: String,
    /// The music (any file with an audio track).
    music: String,
    /// The video to write; its extension picks the format (mp4, mov, mkv, webm, avi).
    #[arg(long, short)]
    out: PathBuf,
    /// Retargeting pattern: shift, accelerate or dtw.
    #[arg(long, default_value = "dtw", value_parser = ["shift", "accelerate", "dtw"])]
    mode: String,
    /// Frame rate the dance's motion is analysed at (its visual beats' resolution).
    #[arg(long, default_value_t = 24)]
    fps: u32,
    /// Side of the square frames the motion is analysed on.
    #[arg(long, default_value_t = 256)]
    size: u32,
    /// Sample rate of the output's sound, Hz.
    #[arg(long, default_value_t = 48_000)]
    sample_rate: u32,
    /// σ of the Beat Align Scores, seconds.
    #[arg(long, default_value_t = 0.05)]
    beat_align_sigma: f64,
    /// The report as JSON on stdout (the warp's anchors and both rhythms included).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

fn format_of(out: &std::path::Path) -> anyhow::Result<MediaFormat> {
    let extension = out.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let format = match extension.as_str() {
        "mp4" | "m4v" => MediaFormat::Mp4,
        "mov" => MediaFormat::Mov,
        "mkv" => MediaFormat::Mkv,
        "webm" => MediaFormat::WebmVp9,
        "avi" => MediaFormat::Avi,
        other => anyhow::bail!("{}: cannot write .{other} video: use .mp4, .mov, .mkv, .webm or .avi", out.display()),
    };
    Ok(format)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.fps > 0 && args.size >= 8, "--fps must be positive and --size at least 8");
    anyhow::ensure!(args.beat_align_sigma > 0.0, "--beat-align-sigma must be positive");
    let pattern = match args.mode.as_str() {
        "shift" => Pattern::Shift,
        "accelerate" => Pattern::Accelerate,
        _ => Pattern::Dtw,
    };
    let plan = RetargetPlan {
        dance: args.dance.clone(),
        music: args.music.clone(),
        out: args.out.clone(),
        format: format_of(&args.out)?,
        pattern,
        analysis_fps: args.fps,
        analysis_size: args.size,
        backend: args.backend.backend()?,
        rhythm: RhythmParams { spectrogram: SpectrogramParams::default(), ..RhythmParams::default() },
        sample_rate: args.sample_rate,
        sigma_s: args.beat_align_sigma,
    };
    let bar = progress::bar(0, args.dance.clone(), "frames");
    let report = retarget(&plan, |stage, done, total| {
        bar.set_message(format!("{}: {stage}", args.dance));
        bar.set_length(total);
        bar.set_position(done);
    })
    .map_err(anyhow::Error::msg)?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} onto {} by {} — {:.1} s, {}x{} at {} fps, {} frames",
        report.out.display(),
        report.dance,
        report.music,
        report.pattern,
        report.duration_s,
        report.width,
        report.height,
        report.fps,
        report.frames
    );
    println!(
        "{} visual rhythm points in {:.1} s of dance, {} beats in {:.1} s of music; {} anchors",
        report.visual_points.len(),
        report.dance_s,
        report.music_beats.len(),
        report.music_s,
        report.anchors.len()
    );
    println!(
        "{:<8} {:>14} {:>14} {:>11} {:>9} {:>9}",
        "", "BAS music→mot", "BAS mot→music", "beats hit", "slowest", "fastest"
    );
    let row = |name: &str, a: &Alignment| {
        let score = |s: Option<f64>| s.map_or("-".to_owned(), |s| format!("{s:.3}"));
        println!(
            "{name:<8} {:>14} {:>14} {:>11} {:>8.2}x {:>8.2}x",
            score(a.beat_align_music_to_motion),
            score(a.beat_align_motion_to_music),
            score(a.beats_hit),
            a.slowest,
            a.fastest
        )
    };
    row("before", &report.before);
    row("after", &report.after);
    Ok(ExitCode::SUCCESS)
}
