//! Decode dance videos into the paper's 8 s clips and summarise each one.
//!
//! ```text
//! {file/URI} ─ MediaSource (GStreamer: RGB 256x256 @ 8 fps, mono f32 @ 16 kHz, seeked to the clip)
//!            ─ ClipAssembler (ClipRule::PAPER) ─ summary line per clip
//! ```
//!
//! Data: any video with sound; with no arguments it renders a synthetic dance
//! first (no downloads).
//!
//! ```text
//! cargo run -p mudar-examples --example ingest -- [VIDEO...]
//! ```

use std::time::Duration;

use anyhow::Context;
use mudar_operators::synth::{Dance, SynthConfig};
use mudar_pipeline::{ClipAssembler, ClipRule, MediaSource, SourceConfig, VideoFrame};
use mudar_sinks::MediaFormat;

fn main() -> anyhow::Result<()> {
    let mut inputs: Vec<String> = std::env::args().skip(1).collect();
    let scratch = tempfile::tempdir()?;
    if inputs.is_empty() {
        let path = scratch.path().join("dance.mp4");
        let dance = Dance::new(SynthConfig { duration_s: 12.0, ..SynthConfig::default() })?;
        mudar_pipeline::synth::write_dance(&dance, &path, MediaFormat::Mp4, |_, _| {})?;
        inputs.push(path.to_string_lossy().into_owned());
    }
    for input in &inputs {
        if let Err(e) = summarise(input) {
            // One bad input does not stop the others.
            eprintln!("{e:#}");
        }
    }
    Ok(())
}

fn summarise(input: &str) -> anyhow::Result<()> {
    // Open once to learn the duration, then decode only the clip.
    let duration = MediaSource::open(input, &SourceConfig::default())?.duration().context("unknown duration")?;
    let rule = ClipRule::PAPER;
    let config = SourceConfig { span: rule.decode_span(Some(duration)), ..SourceConfig::default() };
    let source = MediaSource::open(input, &config)?;
    let mut assembler = ClipAssembler::<VideoFrame>::new(rule.spans(duration), source.has_audio(), source.has_video());
    let mut clips = Vec::new();
    for packet in source {
        clips.extend(assembler.push(&packet?));
    }
    clips.extend(assembler.finish());
    for clip in clips {
        let rms = (clip.audio.iter().map(|x| x * x).sum::<f32>() / clip.audio.len().max(1) as f32).sqrt();
        // Mean absolute change between consecutive frames: a crude motion level.
        let motion: f64 = clip
            .frames
            .windows(2)
            .map(|w| {
                w[0].rgb.iter().zip(&w[1].rgb).map(|(&a, &b)| a.abs_diff(b) as f64).sum::<f64>() / w[0].rgb.len() as f64
            })
            .sum::<f64>()
            / (clip.frames.len().max(2) - 1) as f64;
        println!(
            "{input}: clip {} of {:.2} s: {} frames, {} samples (rms {rms:.3}), motion {motion:.2}",
            clip.span,
            duration.as_secs_f64(),
            clip.frames.len(),
            clip.audio.len(),
        );
        debug_assert!(clip.span.length() <= Duration::from_secs(8));
    }
    Ok(())
}
