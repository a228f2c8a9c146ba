//! Music-dance retargeting of real files (paper Sec. 4.4): a dance video and
//! a piece of music become a new video, the dance warped in time so that its
//! visual rhythm meets the music's beats ([`mudar_operators::retarget`]),
//! rendered at the dance's own size and frame rate with the music as its
//! sound.
//!
//! The dance is read twice, front to back each time: once at the analysis
//! rate and size for its motion, once at its own for the frames; a warp never
//! goes backwards, so rendering holds one source frame at a time, and the
//! music is streamed into the output. What grows with the input: the motion
//! track (a HOOF vector per analysed frame), the music decoded whole at the
//! analysis rate for its beats (librosa's beat tracker sees the whole track:
//! about 230 MB an hour at 16 kHz), and DTW's matrices (rhythm points of
//! dance × music: 9 bytes a cell, 0.3 GB for an hour against an hour).

use std::path::PathBuf;
use std::time::Duration;

use mudar_operators::motion::{FlowBackend, HoofParams, MotionTrack, VisualBeatParams};
use mudar_operators::retarget::{Alignment, Pattern, Retarget, Warp, alignment};
use mudar_operators::rhythm::{self, RhythmParams};
use mudar_sinks::{MediaFormat, MediaWriter, VideoParams};
use serde::Serialize;

use crate::clip::ClipRule;
use crate::probe::{ProbeOptions, probe};
use crate::source::{AudioOutput, MediaSource, Packet, Resize, SourceConfig, VideoFrame, VideoOutput, decode_audio};

/// How a video's motion is analysed.
#[derive(Clone, Copy, Debug)]
pub struct MotionAnalysis {
    /// Frame rate and side of the square frames (as the model sees them).
    pub fps: u32,
    pub size: u32,
    pub hoof: HoofParams,
    /// Frame pairs the flow backend takes at once.
    pub batch: usize,
    /// The part of the video analysed.
    pub clip: ClipRule,
}

/// The motion of a video as `analysis` says: its flow track and each entry's media time.
/// `progress` hears of each batch's pairs.
pub fn track_motion(
    input: &str,
    analysis: &MotionAnalysis,
    backend: &FlowBackend,
    mut progress: impl FnMut(u64),
) -> Result<(MotionTrack, Vec<f64>), String> {
    let MotionAnalysis { fps, size, hoof, batch, clip } = *analysis;
    let video = VideoOutput { width: size, height: size, fps, resize: Resize::Stretch };
    let video_only = SourceConfig { audio: None, video: Some(video), ..SourceConfig::default() };
    let source = MediaSource::open(input, &video_only).map_err(|e| e.to_string())?;
    let span = clip.decode_span(source.duration());
    let source = match span {
        Some(_) => MediaSource::open(input, &SourceConfig { span, ..video_only }).map_err(|e| e.to_string())?,
        None => source,
    };
    let mut track = MotionTrack::new(hoof, VisualBeatParams::for_fps(fps as f64));
    let mut times = Vec::new();
    // The frames of the next batch, led by the last frame of the previous one.
    let mut frames: Vec<VideoFrame> = Vec::with_capacity(batch + 1);
    let side = size as usize;
    let mut flush = |frames: &mut Vec<VideoFrame>| {
        let pairs: Vec<(&[u8], &[u8])> = frames.windows(2).map(|w| (&w[0].rgb[..], &w[1].rgb[..])).collect();
        for (flow, frame) in backend.flows(&pairs, side, side).iter().zip(&frames[..]) {
            track.push(flow);
            times.push(frame.pts.as_secs_f64());
        }
        progress(pairs.len() as u64);
        let last = frames.pop();
        frames.clear();
        frames.extend(last);
    };
    for packet in source {
        if let Packet::Video(frame) = packet.map_err(|e| e.to_string())? {
            frames.push(frame);
            if frames.len() == batch.max(1) + 1 {
                flush(&mut frames);
            }
        }
    }
    if frames.len() > 1 {
        flush(&mut frames);
    }
    if track.is_empty() {
        return Err(format!("{input}: fewer than two video frames, no motion to measure"));
    }
    Ok((track, times))
}

/// How to retarget.
#[derive(Debug)]
pub struct RetargetPlan {
    pub dance: String,
    pub music: String,
    pub out: PathBuf,
    pub format: MediaFormat,
    pub pattern: Pattern,
    /// Frame rate and size the dance's motion is analysed at.
    pub analysis_fps: u32,
    pub analysis_size: u32,
    pub backend: FlowBackend,
    pub rhythm: RhythmParams,
    /// Sample rate of the output's sound.
    pub sample_rate: u32,
    /// σ of the Beat Align Scores, seconds.
    pub sigma_s: f64,
}

/// What [`retarget`] did, and how well it aligns.
#[derive(Clone, Debug, Serialize)]
pub struct RetargetReport {
    pub dance: String,
    pub music: String,
    pub out: PathBuf,
    pub pattern: String,
    pub dance_s: f64,
    pub music_s: f64,
    /// The dance's visual rhythm points (model-free visual beats) and the music's beats, seconds.
    pub visual_points: Vec<f64>,
    pub music_beats: Vec<f64>,
    /// The warp: (output time, dance time) anchors, slope 1 beyond them; where the output
    /// starts in the music, and its length.
    pub anchors: Vec<(f64, f64)>,
    pub music_offset_s: f64,
    pub duration_s: f64,
    /// The dance and music simply put together (both from their starts), and retargeted.
    pub before: Alignment,
    pub after: Alignment,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u64,
}

/// Retargets `plan.dance` onto `plan.music` and writes the result to `plan.out`.
pub fn retarget(plan: &RetargetPlan, mut progress: impl FnMut(&str, u64, u64)) -> Result<RetargetReport, String> {
    let info = probe(&plan.dance, &ProbeOptions::default()).map_err(|e| e.to_string())?;
    let video = info.video.as_ref().ok_or_else(|| format!("{}: no video track to retarget", plan.dance))?;
    let fps = video.fps.unwrap_or(25.0).round().max(1.0) as u32;

    let expected = info.duration_s.map_or(0, |d| (d * plan.analysis_fps as f64).round() as u64);
    let mut analysed = 0;
    let analysis = MotionAnalysis {
        fps: plan.analysis_fps,
        size: plan.analysis_size,
        hoof: HoofParams::default(),
        batch: 8,
        clip: ClipRule::Whole,
    };
    let (track, times) = track_motion(&plan.dance, &analysis, &plan.backend, |n| {
        analysed += n;
        progress("analysing the dance", analysed, expected)
    })?;
    let frame_s = 1.0 / plan.analysis_fps as f64;
    // The video's own length (its last frame's end), not the container's: the sound may run on.
    let dance_s = times.last().copied().unwrap_or(0.0) + 2.0 * frame_s;
    let visual: Vec<f64> = track.finish().beats.iter().map(|&t| times[t]).collect();

    let (samples, _) =
        decode_audio(&plan.music, plan.rhythm.spectrogram.sr, ClipRule::Whole).map_err(|e| e.to_string())?;
    let music_s = samples.len() as f64 / plan.rhythm.spectrogram.sr as f64;
    if music_s <= 0.0 {
        return Err(format!("{}: no audio to retarget onto", plan.music));
    }
    let analysis = rhythm::analyze(&samples, &plan.rhythm).map_err(|e| format!("{}: {e}", plan.music))?;
    let beats: Vec<f64> = analysis.beat_frames.iter().map(|&f| plan.rhythm.spectrogram.frame_time(f)).collect();
    drop(samples);

    let problem = Retarget { visual: &visual, dance_s, music: &beats, music_s, frame_s };
    let warp = Warp::new(plan.pattern, &problem);
    let before = alignment(&Warp::identity(dance_s, music_s), &visual, &beats, plan.sigma_s, frame_s);
    let after = alignment(&warp, &visual, &beats, plan.sigma_s, frame_s);
    let frames = render(plan, &warp, fps, video.width, video.height, &mut progress)?;
    Ok(RetargetReport {
        dance: plan.dance.clone(),
        music: plan.music.clone(),
        out: plan.out.clone(),
        pattern: format!("{:?}", plan.pattern).to_lowercase(),
        dance_s,
        music_s,
        visual_points: visual,
        music_beats: beats,
        anchors: warp.anchors.clone(),
        music_offset_s: warp.music_offset_s,
        duration_s: warp.duration_s,
        before,
        after,
        width: video.width,
        height: video.height,
        fps,
        frames,
    })
}

/// Writes the warped dance with the music's stretch under it: frame n (at the dance's own rate)
/// shows the source frame nearest `warp.source_time(n / fps)`. Returns the frames written.
fn render(
    plan: &RetargetPlan,
    warp: &Warp,
    fps: u32,
    width: u32,
    height: u32,
    progress: &mut impl FnMut(&str, u64, u64),
) -> Result<u64, String> {
    let output = VideoOutput { width, height, fps, resize: Resize::Stretch };
    let config = SourceConfig { audio: None, video: Some(output), ..SourceConfig::default() };
    let mut source = MediaSource::open(&plan.dance, &config).map_err(|e| e.to_string())?;
    let sr = plan.sample_rate;
    let mut music = MusicStream::open(&plan.music, sr, warp.music_offset_s, warp.duration_s)?;
    let video = VideoParams { width, height, fps };
    let mut writer = MediaWriter::create(&plan.out, plan.format, Some(video), sr).map_err(|e| e.to_string())?;
    let frames = (warp.duration_s * fps as f64).floor().max(1.0) as u64;
    let at = |n: u64| Duration::from_nanos(n * 1_000_000_000 / fps as u64);
    let mut current: Option<VideoFrame> = None;
    let mut ended = false;
    for n in 0..frames {
        // The source frame whose time is nearest the warped time: read up to it.
        let want = warp.source_time(n as f64 / fps as f64);
        while !ended && current.as_ref().is_none_or(|f| f.pts.as_secs_f64() + 0.5 / fps as f64 <= want) {
            match source.next() {
                Some(Ok(Packet::Video(frame))) => current = Some(frame),
                Some(Ok(Packet::Audio(_))) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => ended = true,
            }
        }
        let Some(frame) = current.as_ref() else {
            return Err(format!("{}: no video frames", plan.dance));
        };
        // The sound up to the end of this frame first: muxers wait for the lagging track.
        music.write_until(&mut writer, ((n + 1) * sr as u64).div_ceil(fps as u64))?;
        writer.push_video(&frame.rgb, at(n), at(n + 1) - at(n)).map_err(|e| e.to_string())?;
        progress("rendering", n + 1, frames);
    }
    music.write_until(&mut writer, u64::MAX)?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(frames)
}

/// The music's stretch under the output, decoded as it is written.
struct MusicStream {
    source: MediaSource,
    input: String,
    /// Samples of the music to skip before the output's start, and the output's length.
    skip: u64,
    length: u64,
    /// Decoded samples not written yet, and how many went out.
    pending: Vec<f32>,
    written: u64,
    sample_rate: u32,
}

impl MusicStream {
    fn open(input: &str, sample_rate: u32, offset_s: f64, duration_s: f64) -> Result<MusicStream, String> {
        let config = SourceConfig { audio: Some(AudioOutput { sample_rate }), video: None, ..SourceConfig::default() };
        Ok(MusicStream {
            source: MediaSource::open(input, &config).map_err(|e| e.to_string())?,
            input: input.to_owned(),
            skip: (offset_s * sample_rate as f64).round() as u64,
            length: (duration_s * sample_rate as f64).round() as u64,
            pending: Vec::new(),
            written: 0,
            sample_rate,
        })
    }

    /// Writes the output's sound up to sample `end` (or its end, or the music's).
    fn write_until(&mut self, writer: &mut MediaWriter, end: u64) -> Result<(), String> {
        let end = end.min(self.length);
        while self.written + (self.pending.len() as u64) < end {
            match self.source.next() {
                Some(Ok(Packet::Audio(chunk))) => {
                    let drop = self.skip.min(chunk.samples.len() as u64) as usize;
                    self.skip -= drop as u64;
                    self.pending.extend_from_slice(&chunk.samples[drop..]);
                }
                Some(Ok(Packet::Video(_))) => {}
                Some(Err(e)) => return Err(format!("{}: {e}", self.input)),
                None => break,
            }
        }
        let take = (end.saturating_sub(self.written) as usize).min(self.pending.len());
        if take > 0 {
            let pts = Duration::from_secs_f64(self.written as f64 / self.sample_rate as f64);
            writer.push_audio(&self.pending[..take], pts).map_err(|e| e.to_string())?;
            self.pending.drain(..take);
            self.written += take as u64;
        }
        Ok(())
    }
}
