//! `mudar music`: the music rhythm of a file, as librosa computes it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use mudar_operators::rhythm::{
    self, Aggregate, BeatParams, DbParams, OnsetParams, PeakPickParams, RhythmParams, SpectrogramParams, TempoParams,
};
use mudar_pipeline::ClipRule;
use serde_json::json;

/// Onset envelope, onsets, tempo and beats of each input's audio track,
/// numerically as librosa 0.11's onset_strength, onset_detect and beat_track
/// give them. Options carry librosa's names and defaults.
///
/// Any file with an audio track works (audio-only or video). Inputs that fail
/// are reported and the rest go on; the exit status is 1 if any failed.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true, value_name = "FILE")]
    inputs: Vec<String>,
    /// One JSON object per input and line: sr, hop_length, n_frames, onset_envelope,
    /// onset_frames, onset_times, tempo, beat_frames, beat_times.
    #[arg(long)]
    json: bool,
    /// Part of the input to analyse: whole, paper (8 s around the middle), centered:SECONDS.
    #[arg(long, default_value = "whole")]
    clip: ClipRule,
    /// Sample rate the audio is decoded at.
    #[arg(long, default_value_t = 16_000)]
    sr: u32,
    #[arg(long, default_value_t = 2048)]
    n_fft: usize,
    #[arg(long, default_value_t = 512)]
    hop_length: usize,
    #[arg(long, default_value_t = 128)]
    n_mels: usize,
    #[arg(long, default_value_t = 0.0)]
    fmin: f64,
    /// Default: sr / 2.
    #[arg(long)]
    fmax: Option<f64>,
    /// power_to_db's top_db; a negative value disables the clamp.
    #[arg(long, default_value_t = 80.0, allow_negative_numbers = true)]
    top_db: f32,
    /// onset_strength: frames between compared spectra.
    #[arg(long, default_value_t = 1)]
    lag: usize,
    /// onset_strength: SuperFlux maximum filter width over mel bands.
    #[arg(long, default_value_t = 1)]
    max_size: usize,
    #[arg(long)]
    detrend: bool,
    /// onset_strength with center=False.
    #[arg(long)]
    no_center: bool,
    /// onset_strength aggregation for the reported envelope and onsets: mean or median.
    #[arg(long, default_value = "mean", value_parser = ["mean", "median"])]
    aggregate: String,
    /// peak_pick parameters (frames); default: onset_detect's for the frame rate.
    #[arg(long)]
    pre_max: Option<usize>,
    #[arg(long)]
    post_max: Option<usize>,
    #[arg(long)]
    pre_avg: Option<usize>,
    #[arg(long)]
    post_avg: Option<usize>,
    #[arg(long)]
    delta: Option<f32>,
    #[arg(long)]
    wait: Option<usize>,
    /// onset_detect(backtrack=True).
    #[arg(long)]
    backtrack: bool,
    #[arg(long, default_value_t = 120.0)]
    start_bpm: f64,
    #[arg(long, default_value_t = 1.0)]
    std_bpm: f64,
    #[arg(long, default_value_t = 8.0)]
    ac_size: f64,
    #[arg(long, default_value_t = 320.0)]
    max_tempo: f64,
    #[arg(long, default_value_t = 100.0)]
    tightness: f64,
    /// beat_track(trim=False).
    #[arg(long)]
    no_trim: bool,
}

impl Args {
    fn params(&self) -> RhythmParams {
        let spectrogram = SpectrogramParams {
            sr: self.sr,
            n_fft: self.n_fft,
            hop_length: self.hop_length,
            n_mels: self.n_mels,
            fmin: self.fmin,
            fmax: self.fmax,
        };
        let defaults = PeakPickParams::onset_detect_defaults(self.sr, self.hop_length);
        RhythmParams {
            spectrogram,
            db: DbParams { top_db: (self.top_db >= 0.0).then_some(self.top_db), ..Default::default() },
            onset: OnsetParams {
                lag: self.lag,
                max_size: self.max_size,
                detrend: self.detrend,
                center: !self.no_center,
                aggregate: if self.aggregate == "median" { Aggregate::Median } else { Aggregate::Mean },
            },
            peaks: Some(PeakPickParams {
                pre_max: self.pre_max.unwrap_or(defaults.pre_max),
                post_max: self.post_max.unwrap_or(defaults.post_max),
                pre_avg: self.pre_avg.unwrap_or(defaults.pre_avg),
                post_avg: self.post_avg.unwrap_or(defaults.post_avg),
                delta: self.delta.unwrap_or(defaults.delta),
                wait: self.wait.unwrap_or(defaults.wait),
            }),
            backtrack: self.backtrack,
            tempo: TempoParams {
                start_bpm: self.start_bpm,
                std_bpm: self.std_bpm,
                ac_size: self.ac_size,
                max_tempo: Some(self.max_tempo),
            },
            beat: BeatParams { tightness: self.tightness, trim: !self.no_trim },
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let params = args.params();
    params.spectrogram.validate()?;
    let mut failed = 0;
    for input in &args.inputs {
        match analyze(input, &args, &params) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                failed += 1;
                eprintln!("mudar music: {e:#}");
            }
        }
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Decodes the input's audio (the clip's span of it) at `sr`.
pub fn decode_audio(input: &str, sr: u32, clip: ClipRule) -> anyhow::Result<(Vec<f32>, Duration)> {
    Ok(mudar_pipeline::source::decode_audio(input, sr, clip)?)
}

fn analyze(input: &str, args: &Args, params: &RhythmParams) -> anyhow::Result<String> {
    let (samples, start) = decode_audio(input, args.sr, args.clip)?;
    let rhythm = rhythm::analyze(&samples, params).with_context(|| format!("{input}: cannot analyse its audio"))?;
    let spec = &params.spectrogram;
    // Times are media time: the clip's start plus the frame's centre.
    let times =
        |frames: &[usize]| -> Vec<f64> { frames.iter().map(|&f| start.as_secs_f64() + spec.frame_time(f)).collect() };
    if args.json {
        return Ok(json!({
            "path": input,
            "sr": spec.sr,
            "hop_length": spec.hop_length,
            "start_s": start.as_secs_f64(),
            "n_frames": rhythm.onset_envelope.len(),
            "onset_envelope": rhythm.onset_envelope,
            "onset_frames": rhythm.onset_frames,
            "onset_times": times(&rhythm.onset_frames),
            "tempo": rhythm.tempo,
            "beat_frames": rhythm.beat_frames,
            "beat_times": times(&rhythm.beat_frames),
        })
        .to_string());
    }
    let list = |t: Vec<f64>| t.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(" ");
    Ok(format!(
        "{input}\t{:.2} s\ttempo {:.2} bpm\t{} onsets\t{} beats: {}",
        samples.len() as f64 / spec.sr as f64,
        rhythm.tempo,
        rhythm.onset_frames.len(),
        rhythm.beat_frames.len(),
        list(times(&rhythm.beat_frames))
    ))
}
