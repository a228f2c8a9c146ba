//! `mudar synth`: render synthetic dances with known beats into real media files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mudar_operators::synth::{Dance, Style, SynthConfig};
use mudar_pipeline::synth::{ground_truth_path, write_dance};
use mudar_sinks::MediaFormat;

use crate::progress;

/// Render synthetic dance videos whose moves land on the beats of a generated
/// music track, with the ground truth beside each file.
///
/// Each file NAME.EXT gets NAME.truth.json: tempo, beat, downbeat, onset and
/// visual-accent times, style. The same options and seed always render the
/// same media. Use it to check an installation, or as test data.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder to write into (created if missing).
    #[arg(long, short)]
    out: PathBuf,
    /// Number of dances; seeds SEED, SEED+1, ….
    #[arg(long, short = 'n', default_value_t = 1)]
    count: u64,
    /// Container and codecs: mp4 (H.264+AAC), mov, mkv (H.264+Opus), avi (MJPEG+MP3),
    /// webm-vp8 (VP8+Vorbis), webm-vp9 (VP9+Opus); audio only: wav, flac, ogg, mp3, m4a.
    #[arg(long, short, default_value = "mp4")]
    format: MediaFormat,
    /// Dance style: hiphop, house, waltz, ballet, breaking. Default: cycle through them by seed.
    #[arg(long)]
    style: Option<Style>,
    /// Tempo in beats (quarter notes) per minute. Default: the style's typical tempo,
    /// moved by the seed to a whole BPM within ±15% of it.
    #[arg(long)]
    tempo: Option<f64>,
    /// Beats per bar. Default: the style's (3 for waltz, else 4).
    #[arg(long)]
    meter: Option<u32>,
    /// Swing: delay of the off-beat eighth as a fraction of an eighth (0 straight, 0.333 triplet).
    #[arg(long, default_value_t = 0.0)]
    swing: f64,
    /// Length of each dance in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 320)]
    width: u32,
    #[arg(long, default_value_t = 240)]
    height: u32,
    /// Frames per second of the rendered video.
    #[arg(long, default_value_t = 24)]
    fps: u32,
    /// Audio sample rate in Hz.
    #[arg(long, default_value_t = 44_100)]
    sample_rate: u32,
    /// Seed of the first dance.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Dance to the music of this seed (what `--seed MUSIC` renders, with the same style and
    /// tempo options): dances of several seeds with one --music are different dancers to one
    /// song, the ground truth of `mudar eval retrieval`. Render the song alone with
    /// `--seed MUSIC --format wav`.
    #[arg(long, value_name = "MUSIC")]
    music: Option<u64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    for seed in args.seed..args.seed + args.count {
        let style = args.style.unwrap_or(Style::ALL[(seed % Style::ALL.len() as u64) as usize]);
        let config = SynthConfig {
            style,
            tempo_bpm: args.tempo,
            meter: args.meter,
            swing: args.swing,
            duration_s: args.duration,
            width: args.width,
            height: args.height,
            fps: args.fps,
            sample_rate: args.sample_rate,
            seed,
            music_seed: args.music,
        };
        let dance = Dance::new(config).context("invalid synth options")?;
        let music = args.music.map_or(String::new(), |m| format!("-m{m:04}"));
        let path = args.out.join(format!("dance-{seed:04}-{style}{music}.{}", args.format.extension()));
        let unit = if args.format.has_video() { "frames" } else { "s" };
        let bar = progress::bar(0, path.display().to_string(), unit);
        let truth = write_dance(&dance, &path, args.format, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
        println!(
            "{}\t{style}\t{:.1} bpm\t{} beats\t{}",
            path.display(),
            truth.tempo_bpm,
            truth.beat_times.len(),
            ground_truth_path(&path).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
