//! Test media made at test time with GStreamer encoders, with content we can
//! recognise after decoding.
//!
//! The pattern frame `k` (native size 160×120): a yellow stripe down the left
//! 16 columns, then four quadrants, red | green over blue | grey, where the grey
//! level encodes the frame index: `40 + 10·(k mod 20)`. Audio is a 440 Hz sine.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use mudar_pipeline::{MediaSource, Packet, SourceConfig, VideoFrame};
use mudar_sinks::{MediaFormat, MediaWriter, VideoParams};

pub const WIDTH: u32 = 160;
pub const HEIGHT: u32 = 120;
pub const STRIPE: u32 = 16;
pub const FPS: u32 = 24;
pub const SAMPLE_RATE: u32 = 44_100;
pub const TONE_HZ: f64 = 440.0;

pub const RED: [u8; 3] = [255, 0, 0];
pub const GREEN: [u8; 3] = [0, 255, 0];
pub const BLUE: [u8; 3] = [0, 0, 255];
pub const YELLOW: [u8; 3] = [255, 255, 0];

pub fn grey_of(k: u64) -> u8 {
    40 + 10 * (k % 20) as u8
}

/// The frame index (mod 20) a grey level encodes.
pub fn index_of(grey: u8) -> u64 {
    ((grey as f64 - 40.0) / 10.0).round().clamp(0.0, 19.0) as u64
}

pub fn pattern_pixel(k: u64, x: u32, y: u32) -> [u8; 3] {
    if x < STRIPE {
        return YELLOW;
    }
    match (x < (WIDTH + STRIPE) / 2, y < HEIGHT / 2) {
        (true, true) => RED,
        (false, true) => GREEN,
        (true, false) => BLUE,
        (false, false) => [grey_of(k); 3],
    }
}

pub fn pattern_frame(k: u64) -> Vec<u8> {
    (0..HEIGHT).flat_map(|y| (0..WIDTH).flat_map(move |x| pattern_pixel(k, x, y))).collect()
}

pub fn tone(n: usize, sample_rate: u32) -> Vec<f32> {
    (0..n).map(|i| (0.5 * (std::f64::consts::TAU * TONE_HZ * i as f64 / sample_rate as f64).sin()) as f32).collect()
}

/// Writes `seconds` of the pattern (if the format has video) and the tone.
pub fn write_pattern(dir: &Path, format: MediaFormat, seconds: u32) -> PathBuf {
    let path = dir.join(format!("pattern-{}.{}", format.name(), format.extension()));
    let video = format.has_video().then_some(VideoParams { width: WIDTH, height: HEIGHT, fps: FPS });
    let mut w = MediaWriter::create(&path, format, video, SAMPLE_RATE).unwrap();
    let audio = tone((seconds * SAMPLE_RATE) as usize, SAMPLE_RATE);
    let per_frame = (SAMPLE_RATE / FPS) as usize;
    let frame_time = |k: u64| Duration::from_nanos(k * 1_000_000_000 / FPS as u64);
    for k in 0..(seconds * FPS) as u64 {
        let chunk = &audio[k as usize * per_frame..(k as usize + 1) * per_frame];
        w.push_audio(chunk, frame_time(k)).unwrap();
        if format.has_video() {
            w.push_video(&pattern_frame(k), frame_time(k), frame_time(k + 1) - frame_time(k)).unwrap();
        }
    }
    w.finish().unwrap();
    path
}

/// Writes the pattern as an animated GIF at 25 fps (GIF delays are in
/// hundredths of a second; GStreamer has no GIF encoder, the `gif` crate does).
pub fn write_gif(dir: &Path, seconds: u32) -> PathBuf {
    let path = dir.join("pattern.gif");
    let mut palette = vec![0u8; 0];
    let mut colors: Vec<[u8; 3]> = vec![YELLOW, RED, GREEN, BLUE];
    colors.extend((0..20).map(|k| [grey_of(k); 3]));
    colors.iter().for_each(|c| palette.extend_from_slice(c));
    let file = std::fs::File::create(&path).unwrap();
    let mut encoder = gif::Encoder::new(file, WIDTH as u16, HEIGHT as u16, &palette).unwrap();
    encoder.set_repeat(gif::Repeat::Infinite).unwrap();
    for k in 0..(seconds * 25) as u64 {
        let indices: Vec<u8> =
            pattern_frame(k).chunks_exact(3).map(|p| colors.iter().position(|c| c == p).unwrap() as u8).collect();
        let mut frame = gif::Frame::from_indexed_pixels(WIDTH as u16, HEIGHT as u16, indices, None);
        frame.delay = 4;
        encoder.write_frame(&frame).unwrap();
    }
    path
}

/// Runs a GStreamer launch line to completion (for files our writer does not make).
pub fn gst_launch(description: &str) {
    use gst::prelude::*;
    mudar_pipeline::init().unwrap();
    let pipeline = gst::parse::launch(description).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(120), &[gst::MessageType::Eos, gst::MessageType::Error])
        .expect("pipeline finishes");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{description}: {msg:?}");
}

/// Everything a source delivers, split by kind, or the error it ended with.
#[derive(Debug, Default)]
pub struct Decoded {
    pub audio: Vec<f32>,
    pub audio_start: Option<Duration>,
    pub frames: Vec<VideoFrame>,
    pub error: Option<mudar_pipeline::MediaError>,
}

pub fn decode(input: &str, config: &SourceConfig) -> Result<Decoded, mudar_pipeline::MediaError> {
    let source = MediaSource::open(input, config)?;
    let mut out = Decoded::default();
    for item in source {
        match item {
            Ok(Packet::Audio(a)) => {
                out.audio_start.get_or_insert(a.pts);
                out.audio.extend(a.samples);
            }
            Ok(Packet::Video(v)) => out.frames.push(v),
            Err(e) => out.error = Some(e),
        }
    }
    Ok(out)
}

/// Dominant frequency by counting zero crossings (enough for a pure tone).
pub fn zero_crossing_hz(samples: &[f32], sample_rate: u32) -> f64 {
    let crossings = samples.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
    crossings as f64 / 2.0 / (samples.len() as f64 / sample_rate as f64)
}

pub fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&x| x as f64 * x as f64).sum::<f64>() / samples.len() as f64).sqrt()
}

pub fn close(a: [u8; 3], b: [u8; 3], tolerance: i32) -> bool {
    a.iter().zip(b).all(|(&x, y)| (x as i32 - y as i32).abs() <= tolerance)
}

pub fn python() -> PathBuf {
    std::env::var_os("MUDAR_PYTHON")
        .map_or(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"), Into::into)
}

/// Every table's rows, read by pyarrow (checked against DuckDB and polars).
pub fn read_store(store: &Path) -> serde_json::Value {
    let out = store.with_extension("json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_store.py");
    let run = std::process::Command::new(python()).arg(script).arg(store).arg(&out).output().expect("python runs");
    assert!(run.status.success(), "read_store.py failed: {}", String::from_utf8_lossy(&run.stderr));
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}
