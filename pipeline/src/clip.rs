//! Which parts of an input become clips, and assembling them from a stream.

use std::collections::VecDeque;
use std::time::Duration;

use crate::source::{AudioChunk, Packet, VideoFrame, samples_before, samples_to_duration};

/// A half-open interval `[start, end)` of media time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: Duration,
    pub end: Duration,
}

impl Span {
    pub fn new(start: Duration, end: Duration) -> Span {
        assert!(start <= end, "span starts after it ends: {start:?} > {end:?}");
        Span { start, end }
    }

    pub fn contains(&self, t: Duration) -> bool {
        self.start <= t && t < self.end
    }

    pub fn length(&self) -> Duration {
        self.end - self.start
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{:.3} s, {:.3} s)", self.start.as_secs_f64(), self.end.as_secs_f64())
    }
}

/// How an input is cut into clips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClipRule {
    /// The whole input is one clip.
    Whole,
    /// Windows of `length` every `stride`, from the start; only windows that
    /// fit entirely inside the input (a shorter input gives none).
    Windows { length: Duration, stride: Duration },
    /// The paper's rule (Sec. 4.1): `length` (8 s) centred on the middle of
    /// the video, dropping its beginning and end. An input shorter than
    /// `length` is taken whole.
    Centered { length: Duration },
}

impl ClipRule {
    /// The paper's 8 s centred clip.
    pub const PAPER: ClipRule = ClipRule::Centered { length: Duration::from_secs(8) };

    /// The clips of an input of `duration`, in order.
    pub fn spans(&self, duration: Duration) -> Vec<Span> {
        match *self {
            ClipRule::Whole => vec![Span::new(Duration::ZERO, duration)],
            ClipRule::Windows { length, stride } => {
                assert!(!length.is_zero() && !stride.is_zero(), "windows need a positive length and stride");
                (0u32..)
                    .map(|k| stride * k)
                    .take_while(|&start| start + length <= duration)
                    .map(|start| Span::new(start, start + length))
                    .collect()
            }
            ClipRule::Centered { length } => {
                if duration <= length {
                    return vec![Span::new(Duration::ZERO, duration)];
                }
                let start = (duration - length) / 2;
                vec![Span::new(start, start + length)]
            }
        }
    }

    /// `(length, stride)` of the clips of an input without end (a live feed): back-to-back
    /// clips of the rule's length (`windows` keeps its stride). `whole` has no length for a
    /// feed that never ends: the paper's 8 s.
    pub fn endless(&self) -> (Duration, Duration) {
        match *self {
            ClipRule::Windows { length, stride } => (length, stride),
            ClipRule::Centered { length } => (length, length),
            ClipRule::Whole => (Duration::from_secs(8), Duration::from_secs(8)),
        }
    }

    /// The part of the input that must be decoded for these clips (`None`: all of it).
    pub fn decode_span(&self, duration: Option<Duration>) -> Option<Span> {
        match (self, duration) {
            (ClipRule::Centered { .. }, Some(d)) => self.spans(d).into_iter().next(),
            _ => None,
        }
    }
}

impl std::str::FromStr for ClipRule {
    type Err = String;
    /// `whole`, `paper`, `centered:SECONDS` or `windows:LENGTH:STRIDE` (seconds).
    fn from_str(s: &str) -> Result<Self, String> {
        let seconds = |v: &str| -> Result<Duration, String> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{v:?} is not a positive number of seconds"))
        };
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["whole"] => Ok(ClipRule::Whole),
            ["paper"] => Ok(ClipRule::PAPER),
            ["centered", length] => Ok(ClipRule::Centered { length: seconds(length)? }),
            ["windows", length, stride] => Ok(ClipRule::Windows { length: seconds(length)?, stride: seconds(stride)? }),
            _ => Err(format!(
                "unknown clip rule {s:?} (expected whole, paper, centered:SECONDS or windows:LENGTH:STRIDE)"
            )),
        }
    }
}

/// One clip's media: audio samples and the video items (decoded frames, or
/// anything computed per frame) whose time lies in `span`.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip<V = VideoFrame> {
    pub span: Span,
    /// Media time of `audio[0]`.
    pub audio_start: Duration,
    pub sample_rate: u32,
    pub audio: Vec<f32>,
    pub frames: Vec<V>,
}

/// Cuts a stream of packets into clips, emitting each as soon as the stream
/// has passed its end. Memory holds only the clips still open.
#[derive(Debug)]
pub struct ClipAssembler<V = VideoFrame> {
    spans: VecDeque<Span>,
    /// `(length, stride)` of clips cut without end (a live feed's), from `next_start` on.
    endless: Option<(Duration, Duration)>,
    /// Where the next endless clip starts: the stream's first packet, then every stride.
    next_start: Option<Duration>,
    open: VecDeque<Clip<V>>,
    audio_time: Duration,
    video_time: Duration,
    has_audio: bool,
    has_video: bool,
}

impl ClipAssembler<VideoFrame> {
    /// Adds a packet; returns the clips it completed.
    pub fn push(&mut self, packet: &Packet) -> Vec<Clip> {
        match packet {
            Packet::Audio(chunk) => self.push_audio(chunk),
            Packet::Video(frame) => self.push_video(frame.pts, frame.duration, frame.clone()),
        }
    }
}

impl<V: Clone> ClipAssembler<V> {
    /// Clips at `spans` (in order) from a stream carrying the given tracks.
    pub fn new(spans: Vec<Span>, has_audio: bool, has_video: bool) -> ClipAssembler<V> {
        ClipAssembler {
            spans: spans.into(),
            endless: None,
            next_start: None,
            open: VecDeque::new(),
            audio_time: Duration::ZERO,
            video_time: Duration::ZERO,
            has_audio,
            has_video,
        }
    }

    /// Clips of `length` every `stride` without end, the first starting at the stream's first
    /// packet: how a live feed, whose length nobody knows, is cut.
    pub fn endless(length: Duration, stride: Duration, has_audio: bool, has_video: bool) -> ClipAssembler<V> {
        assert!(!length.is_zero() && !stride.is_zero(), "endless clips need a positive length and stride");
        ClipAssembler { endless: Some((length, stride)), ..ClipAssembler::new(Vec::new(), has_audio, has_video) }
    }

    /// Adds audio; returns the clips it completed.
    pub fn push_audio(&mut self, chunk: &AudioChunk) -> Vec<Clip<V>> {
        self.next_start.get_or_insert(chunk.pts);
        self.open_until(chunk.end());
        self.open.iter_mut().for_each(|clip| take_samples(clip, chunk));
        self.audio_time = self.audio_time.max(chunk.end());
        self.completed()
    }

    /// Adds the video item of the frame shown from `pts` for `duration`;
    /// returns the clips it completed.
    pub fn push_video(&mut self, pts: Duration, duration: Duration, item: V) -> Vec<Clip<V>> {
        self.next_start.get_or_insert(pts);
        self.open_until(pts + Duration::from_nanos(1));
        for clip in self.open.iter_mut().filter(|c| c.span.contains(pts)) {
            clip.frames.push(item.clone());
        }
        // A frame covers its span up to pts + duration.
        self.video_time = self.video_time.max(pts + duration.max(Duration::from_nanos(1)));
        self.completed()
    }

    /// Ends the stream: clips still open are returned as they are (cut short).
    pub fn finish(mut self) -> Vec<Clip<V>> {
        self.endless = None;
        self.open_until(Duration::MAX);
        self.open.into_iter().filter(|c| !c.audio.is_empty() || !c.frames.is_empty()).collect()
    }

    fn completed(&mut self) -> Vec<Clip<V>> {
        let mut done = Vec::new();
        while self.open.front().is_some_and(|c| self.passed(c.span.end)) {
            done.extend(self.open.pop_front());
        }
        done
    }

    fn passed(&self, t: Duration) -> bool {
        (!self.has_audio || self.audio_time >= t) && (!self.has_video || self.video_time >= t)
    }

    /// Opens every pending clip that starts before `t`.
    fn open_until(&mut self, t: Duration) {
        if let (Some((length, stride)), Some(next)) = (self.endless, self.next_start.as_mut()) {
            // A stream that jumps far ahead starts its clips again at the jump, rather than
            // opening one for every stride it skipped.
            if t > *next + length + stride {
                *next = t.saturating_sub(stride);
            }
            while *next < t {
                self.spans.push_back(Span::new(*next, *next + length));
                *next += stride;
            }
        }
        while let Some(span) = self.spans.front().copied().filter(|s| s.start < t) {
            self.spans.pop_front();
            self.open.push_back(Clip {
                span,
                audio_start: span.start,
                sample_rate: 0,
                audio: Vec::new(),
                frames: Vec::new(),
            });
        }
    }
}

/// Appends the samples of `chunk` that fall inside the clip's span.
fn take_samples<V>(clip: &mut Clip<V>, chunk: &AudioChunk) {
    // Sample i plays at pts + i/sr; keep those with start <= t < end.
    let index = |t: Duration| (samples_before(chunk.pts, t, chunk.sample_rate) as usize).min(chunk.samples.len());
    let (from, to) = (index(clip.span.start), index(clip.span.end));
    if from >= to {
        return;
    }
    if clip.audio.is_empty() {
        clip.sample_rate = chunk.sample_rate;
        clip.audio_start = chunk.pts + samples_to_duration(from as u64, chunk.sample_rate);
    }
    clip.audio.extend_from_slice(&chunk.samples[from..to]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn paper_rule_takes_eight_seconds_around_the_middle() {
        assert_eq!(ClipRule::PAPER.spans(secs(20.0)), vec![Span::new(secs(6.0), secs(14.0))]);
        assert_eq!(ClipRule::PAPER.spans(secs(5.0)), vec![Span::new(Duration::ZERO, secs(5.0))]);
        assert_eq!(ClipRule::PAPER.decode_span(Some(secs(10.0))), Some(Span::new(secs(1.0), secs(9.0))));
        assert_eq!(ClipRule::Whole.decode_span(Some(secs(10.0))), None);
    }

    #[test]
    fn windows_fit_inside() {
        let rule: ClipRule = "windows:4:3".parse().unwrap();
        let starts: Vec<f64> = rule.spans(secs(11.0)).iter().map(|s| s.start.as_secs_f64()).collect();
        assert_eq!(starts, vec![0.0, 3.0, 6.0]);
        assert!(rule.spans(secs(3.9)).is_empty());
        assert!("windows:4".parse::<ClipRule>().is_err());
        assert!("centered:-1".parse::<ClipRule>().is_err());
    }

    fn stream(seconds: u32, sr: u32, fps: u32, chunk: usize) -> Vec<Packet> {
        let total = (seconds * sr) as usize;
        let mut packets = Vec::new();
        let mut next_frame = 0u32;
        for start in (0..total).step_by(chunk) {
            let pts = crate::source::samples_to_duration(start as u64, sr);
            // Frames are interleaved with audio in time order, as a demuxer would.
            while secs(next_frame as f64 / fps as f64) <= pts {
                let pts = secs(next_frame as f64 / fps as f64);
                packets.push(Packet::Video(VideoFrame {
                    pts,
                    duration: secs(1.0 / fps as f64),
                    width: 1,
                    height: 1,
                    rgb: vec![next_frame as u8; 3],
                    capture_us: None,
                }));
                next_frame += 1;
            }
            let samples = (start..(start + chunk).min(total)).map(|i| i as f32).collect();
            packets.push(Packet::Audio(AudioChunk { pts, sample_rate: sr, samples, capture_us: None }));
        }
        packets
    }

    #[test]
    fn assembles_overlapping_windows_sample_exact() {
        let spans = ClipRule::Windows { length: secs(2.0), stride: secs(1.0) }.spans(secs(5.0));
        let mut asm = ClipAssembler::<VideoFrame>::new(spans, true, true);
        let mut clips = Vec::new();
        let mut emitted_at = Vec::new();
        for p in stream(5, 100, 4, 37) {
            let done = asm.push(&p);
            emitted_at.extend(done.iter().map(|_| p.pts()));
            clips.extend(done);
        }
        assert!(asm.finish().is_empty(), "the last window ends at the end of the stream");
        assert_eq!(clips.len(), 4);
        for (k, clip) in clips.iter().enumerate() {
            // Sample values are their index: window k holds exactly samples [100k, 100k + 200).
            let expected: Vec<f32> = (100 * k..100 * k + 200).map(|i| i as f32).collect();
            assert_eq!(clip.audio, expected, "clip {k}");
            assert_eq!(clip.audio_start, secs(k as f64));
            let frames: Vec<u8> = clip.frames.iter().map(|f| f.rgb[0]).collect();
            assert_eq!(frames, (4 * k as u8..4 * k as u8 + 8).collect::<Vec<_>>());
        }
        // Each clip is emitted as soon as the stream passes its end, not at the end of the input.
        assert!(emitted_at[0] < secs(2.5), "{emitted_at:?}");
    }

    #[test]
    fn endless_clips_start_at_the_first_packet_and_go_on() {
        // A live stream whose media time starts at 3 s.
        let shifted = stream(5, 100, 4, 37).into_iter().map(|p| match p {
            Packet::Audio(a) => Packet::Audio(AudioChunk { pts: a.pts + secs(3.0), ..a }),
            Packet::Video(v) => Packet::Video(VideoFrame { pts: v.pts + secs(3.0), ..v }),
        });
        let mut asm = ClipAssembler::<VideoFrame>::endless(secs(2.0), secs(1.0), true, true);
        let mut clips = Vec::new();
        for p in shifted {
            clips.extend(asm.push(&p));
        }
        assert_eq!(clips.len(), 4);
        for (k, clip) in clips.iter().enumerate() {
            assert_eq!(clip.span, Span::new(secs(3.0 + k as f64), secs(5.0 + k as f64)));
            let expected: Vec<f32> = (100 * k..100 * k + 200).map(|i| i as f32).collect();
            assert_eq!(clip.audio, expected, "clip {k}");
            let frames: Vec<u8> = clip.frames.iter().map(|f| f.rgb[0]).collect();
            assert_eq!(frames, (4 * k as u8..4 * k as u8 + 8).collect::<Vec<_>>());
        }
        // The stream ends inside the next clip: it comes out cut short, and nothing after it.
        let rest = asm.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].span.start, secs(7.0));
        assert_eq!(rest[0].audio, (400..500).map(|i| i as f32).collect::<Vec<_>>());
    }

    #[test]
    fn whole_clip_comes_at_finish() {
        let mut asm = ClipAssembler::<VideoFrame>::new(ClipRule::Whole.spans(secs(10.0)), true, false);
        for p in stream(2, 50, 1, 10).iter().filter(|p| matches!(p, Packet::Audio(_))) {
            assert!(asm.push(p).is_empty());
        }
        let clips = asm.finish();
        assert_eq!(clips.len(), 1);
        assert_eq!(clips[0].audio.len(), 100);
    }
}
