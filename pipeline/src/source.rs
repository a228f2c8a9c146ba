//! A GStreamer decoding source: any local path or URI GStreamer can decode,
//! delivered as mono f32 audio and RGB frames with media timestamps.
//!
//! ```text
//!                       ┌ audio/x-raw ─ audioconvert ─ audioresample ─ {F32LE mono @ rate} ─ appsink ┐
//! {uridecodebin uri=…} ─┤                                                                            ├─► bounded channel ─► MediaSource (Iterator)
//!                       └ video/x-raw ─ videorate ─ [aspectratiocrop] ─ videoscale ─ videoconvert ─ {RGB W×H @ fps} ─ appsink ┘
//!                         (other tracks ─ fakesink)
//! ```
//!
//! Decoding runs on GStreamer's streaming threads. The appsinks hand each
//! buffer to one bounded channel, and block when it is full: a slow consumer
//! slows decoding, and memory stays bounded whatever the file's length. Both
//! tracks share the channel, so the consumer sees them interleaved in the
//! order the demuxer produces them and cannot deadlock waiting on one while
//! the other fills up. Bus messages (errors, end of stream, preroll) travel on
//! a second small channel, and a consumer waiting longer than the stall
//! timeout for either gets [`ErrorKind::Stalled`].
//!
//! A *live* source (one that produces data only in real time: RTSP, SRT, UDP,
//! HLS; GStreamer says so by not prerolling, and `SourceConfig::live` can
//! force it) runs on a real-time UTC clock, so each packet carries its
//! capture time, and it never makes the sender wait: its video frames go to a
//! small channel of their own that drops its oldest frame when full (the
//! newest is kept, the drop counted), while its audio, a few kB a second,
//! keeps the shared bounded channel.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};
use gst::glib;
use gst::prelude::*;
use gst_video::prelude::*;

use crate::clip::{ClipRule, Span};
use crate::error::{ErrorKind, MediaError};

/// How the frame is fitted into the output size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resize {
    /// Scale each axis independently to fill the output (the paper's plain
    /// 256×256 resize); aspect ratio changes.
    #[default]
    Stretch,
    /// Keep the aspect ratio and pad with black bars.
    Letterbox,
    /// Keep the aspect ratio and crop the centre to the output's aspect.
    CenterCrop,
}

impl std::str::FromStr for Resize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stretch" => Ok(Resize::Stretch),
            "letterbox" => Ok(Resize::Letterbox),
            "center-crop" => Ok(Resize::CenterCrop),
            _ => Err(format!("unknown resize policy {s:?} (expected stretch, letterbox or center-crop)")),
        }
    }
}

/// Audio as delivered: mono f32 at `sample_rate` (channels are averaged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioOutput {
    pub sample_rate: u32,
}

impl Default for AudioOutput {
    fn default() -> Self {
        AudioOutput { sample_rate: 16_000 }
    }
}

/// Video as delivered: packed RGB frames of `width`×`height` at `fps`
/// (frames are dropped or repeated to hold the rate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoOutput {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub resize: Resize,
}

impl Default for VideoOutput {
    fn default() -> Self {
        VideoOutput { width: 256, height: 256, fps: 8, resize: Resize::Stretch }
    }
}

/// What to decode and how to deliver it.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// Deliver audio; the input must have an audio track.
    pub audio: Option<AudioOutput>,
    /// Deliver video; the input must have a video track.
    pub video: Option<VideoOutput>,
    /// Decode only this part of the media (seeking to its start).
    pub span: Option<Span>,
    /// Packets buffered between GStreamer and the consumer.
    pub capacity: usize,
    /// Longest wait for the next packet before giving up.
    pub stall_timeout: Duration,
    /// Take the input as live (`Some(true)`), as a file (`Some(false)`), or as GStreamer says
    /// (`None`: live when it does not preroll).
    pub live: Option<bool>,
    /// Longest wait for a live source's first packet of every track (connecting, buffering).
    pub connect_timeout: Duration,
    /// Video frames a live source holds for the consumer before dropping the oldest.
    pub live_frames: usize,
    /// Latency a network source (RTSP, SRT: any with a `latency` property) buffers for, ms.
    pub latency_ms: Option<u32>,
    /// Once set, a live source still waiting for its first packets gives up at once
    /// ([`ErrorKind::Cancelled`]): how a stopping run ends a connection attempt.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            audio: Some(AudioOutput::default()),
            video: Some(VideoOutput::default()),
            span: None,
            capacity: 32,
            stall_timeout: Duration::from_secs(30),
            live: None,
            connect_timeout: Duration::from_secs(30),
            live_frames: 24,
            latency_ms: None,
            cancel: None,
        }
    }
}

/// A run of mono samples; sample `i` plays at `pts + i / sample_rate`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AudioChunk {
    pub pts: Duration,
    pub sample_rate: u32,
    pub samples: Vec<f32>,
    /// A live source's capture time of the first sample, µs since the Unix epoch (UTC).
    #[serde(default)]
    pub capture_us: Option<i64>,
}

impl AudioChunk {
    /// Media time just after the last sample.
    pub fn end(&self) -> Duration {
        self.pts + samples_to_duration(self.samples.len() as u64, self.sample_rate)
    }
}

/// One frame of packed RGB, `width * height * 3` bytes, shown from `pts` for `duration`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VideoFrame {
    pub pts: Duration,
    pub duration: Duration,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    /// A live source's capture time, µs since the Unix epoch (UTC).
    #[serde(default)]
    pub capture_us: Option<i64>,
}

impl VideoFrame {
    /// The pixel at column `x`, row `y`.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = 3 * (y * self.width + x) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// What a source delivers.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Packet {
    Audio(AudioChunk),
    Video(VideoFrame),
}

impl Packet {
    pub fn pts(&self) -> Duration {
        match self {
            Packet::Audio(a) => a.pts,
            Packet::Video(v) => v.pts,
        }
    }

    /// A live source's capture time, µs since the Unix epoch.
    pub fn capture_us(&self) -> Option<i64> {
        match self {
            Packet::Audio(a) => a.capture_us,
            Packet::Video(v) => v.capture_us,
        }
    }
}

/// What a live source's branches share with it.
#[derive(Debug)]
struct LiveState {
    /// Set once the source is known to be live.
    live: AtomicBool,
    /// Video frames dropped because the consumer was behind.
    dropped: AtomicU64,
    /// The sender's clock minus this machine's capture clock, µs, once an RTCP sender report
    /// told it; `NO_SENDER_CLOCK` until then.
    sender_clock_us: AtomicI64,
}

const NO_SENDER_CLOCK: i64 = i64::MIN;

impl Default for LiveState {
    fn default() -> Self {
        LiveState {
            live: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            sender_clock_us: AtomicI64::new(NO_SENDER_CLOCK),
        }
    }
}

/// A live source's video channel, as its video branch holds it: the receiver
/// too, to drop the oldest frame when the channel is full.
#[derive(Clone, Debug)]
struct LiveVideo {
    tx: Sender<Packet>,
    rx: Receiver<Packet>,
    state: Arc<LiveState>,
}

impl LiveVideo {
    /// Queues `frame`, dropping the oldest queued frames to make room; never waits.
    fn give(&self, frame: Packet) -> Result<(), gst::FlowError> {
        let mut frame = frame;
        loop {
            match self.tx.try_send(frame) {
                Ok(()) => return Ok(()),
                Err(crossbeam_channel::TrySendError::Full(back)) => {
                    frame = back;
                    if self.rx.try_recv().is_ok() {
                        self.state.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => return Err(gst::FlowError::Flushing),
            }
        }
    }
}

/// How many samples of a run starting at `pts` play before `t` (exact, in integer nanoseconds).
pub(crate) fn samples_before(pts: Duration, t: Duration, sample_rate: u32) -> u64 {
    (t.saturating_sub(pts).as_nanos() * sample_rate as u128).div_ceil(1_000_000_000) as u64
}

pub(crate) fn samples_to_duration(samples: u64, sample_rate: u32) -> Duration {
    Duration::from_nanos((samples as u128 * 1_000_000_000 / sample_rate as u128) as u64)
}

/// How far past a span's end decoding goes, so the span's end is exact after trimming.
const SEEK_STOP_MARGIN: Duration = Duration::from_millis(250);

/// How long a local file's demuxer may stay silent (no track, no error) before it is taken as failed.
const SILENT_DEMUXER_TIMEOUT: Duration = Duration::from_secs(3);

/// The part of `packet` before `end`, if any.
fn trim_to(packet: Packet, end: Duration) -> Option<Packet> {
    match packet {
        Packet::Audio(mut a) if a.end() > end => {
            a.samples.truncate(samples_before(a.pts, end, a.sample_rate) as usize);
            (!a.samples.is_empty()).then_some(Packet::Audio(a))
        }
        Packet::Video(v) if v.pts >= end => None,
        other => Some(other),
    }
}

/// Bus messages the consumer acts on.
#[derive(Debug)]
enum Control {
    Prerolled,
    Eos,
    Error(ErrorKind),
    /// A decoder or demuxer recovered from bad data.
    Warning(String),
    MissingPlugin(String),
}

/// The tracks the decoder found, filled in from its `pad-added` signal.
#[derive(Debug, Default)]
struct Tracks {
    /// Decoded tracks reached the decoder's output.
    audio: bool,
    video: bool,
    /// The container's header announced tracks of these kinds (its demuxer made pads for them).
    declared_audio: bool,
    declared_video: bool,
}

/// The media type of a pad's current caps (`audio/x-raw`, `video/x-h264`, …).
pub(crate) fn media_type(pad: &gst::Pad) -> Option<String> {
    pad.current_caps().and_then(|c| c.structure(0).map(|s| s.name().to_string()))
}

/// Records the tracks a demuxer announces, so a track that is declared but
/// never decoded reads as damage, not as absence.
fn watch_demuxers(decoder: &gst::Element, tracks: &Arc<Mutex<Tracks>>) {
    let tracks = tracks.clone();
    decoder.connect("deep-element-added", false, move |values| {
        let element = values[2].get::<gst::Element>().ok()?;
        let is_demuxer = element.factory().is_some_and(|f| f.klass().contains("Demux"));
        if is_demuxer {
            let tracks = tracks.clone();
            element.connect_pad_added(move |_, pad| {
                let name = media_type(pad).unwrap_or_else(|| pad.name().to_string());
                let mut tracks = tracks.lock().unwrap_or_else(|p| p.into_inner());
                tracks.declared_audio |= name.starts_with("audio");
                tracks.declared_video |= name.starts_with("video") || name.starts_with("image");
            });
        }
        None
    });
}

enum State {
    Running,
    /// The pipeline stopped: deliver what is buffered, then this outcome.
    Draining(Result<(), ErrorKind>),
    Done,
}

/// An open input, yielding its packets in decoding order.
///
/// Iteration ends after the last packet, or with one error (after every
/// packet decoded before it). Dropping the source stops decoding.
pub struct MediaSource {
    input: String,
    pipeline: gst::Pipeline,
    data: Option<Receiver<Packet>>,
    /// A live source's video frames (see the module docs).
    live_video: Receiver<Packet>,
    live: Arc<LiveState>,
    /// Packets a live source took while connecting, delivered first.
    first: VecDeque<Packet>,
    control: Receiver<Control>,
    config: SourceConfig,
    duration: Option<Duration>,
    has_audio: bool,
    has_video: bool,
    state: State,
    audio_end: Option<Duration>,
    video_end: Option<Duration>,
    warnings: Vec<String>,
    /// No data came within the stall timeout.
    stalled: bool,
    /// When the last packet came (or the source started): the stall timeout counts from it.
    last_data: Instant,
    /// `(present, declared)` seconds of a WAV file cut short.
    wav_truncation: Option<(f64, f64)>,
}

impl std::fmt::Debug for MediaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSource")
            .field("input", &self.input)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

impl MediaSource {
    /// Opens `input` (a path or URI), waits until the decoders are ready, and
    /// checks the requested tracks exist.
    pub fn open(input: &str, config: &SourceConfig) -> Result<MediaSource, MediaError> {
        let uri = crate::input::to_uri(input)?;
        crate::init().map_err(|kind| kind.at(input))?;
        let fail = |e: glib::BoolError| ErrorKind::Gstreamer(e.to_string()).at(input);
        let capacity = config.capacity.max(1);
        let (data_tx, data_rx) = crossbeam_channel::bounded(capacity);
        let (live_tx, live_rx) = crossbeam_channel::bounded(config.live_frames.max(1));
        let live = Arc::new(LiveState::default());
        live.live.store(config.live == Some(true), Ordering::Relaxed);
        // Control messages are few (preroll, EOS, errors); a full channel drops warnings only.
        let (control_tx, control_rx) = crossbeam_channel::bounded(256);

        let pipeline = gst::Pipeline::with_name("mudar-source");
        // Running time plus base time on this clock is UTC: a live packet's capture time.
        let clock =
            glib::Object::builder::<gst::SystemClock>().property("clock-type", gst::ClockType::Realtime).build();
        pipeline.use_clock(Some(&clock));
        let decoder = gst::ElementFactory::make("uridecodebin").property("uri", &uri).build().map_err(fail)?;
        pipeline.add(&decoder).map_err(fail)?;
        {
            let (latency, live) = (config.latency_ms, live.clone());
            decoder.connect("source-setup", false, move |values| {
                let source = values[1].get::<gst::Element>().ok()?;
                if let Some(latency) = latency {
                    set_latency(&source, latency);
                }
                watch_sender_clock(&source, &live);
                None
            });
        }
        let tracks = Arc::new(Mutex::new(Tracks::default()));
        watch_demuxers(&decoder, &tracks);
        {
            let (pipeline, tracks, config, tx) =
                (pipeline.downgrade(), tracks.clone(), config.clone(), data_tx.clone());
            let live_video = LiveVideo { tx: live_tx, rx: live_rx.clone(), state: live.clone() };
            decoder.connect_pad_added(move |_, pad| {
                let Some(pipeline) = pipeline.upgrade() else {
                    return;
                };
                let Some(media) = media_type(pad) else {
                    return;
                };
                // Decide under the lock, link without it: linking waits on
                // streaming threads that may be announcing tracks themselves.
                let (first_audio, first_video) = {
                    let mut tracks = tracks.lock().unwrap_or_else(|p| p.into_inner());
                    let first_audio = media.starts_with("audio/") && !std::mem::replace(&mut tracks.audio, true);
                    let first_video = media.starts_with("video/") && !std::mem::replace(&mut tracks.video, true);
                    (first_audio, first_video)
                };
                let linked = if first_audio {
                    config
                        .audio
                        .map(|out| link_branch(&pipeline, pad, audio_branch(out, tx.clone(), live_video.state.clone())))
                } else if first_video {
                    config
                        .video
                        .map(|out| link_branch(&pipeline, pad, video_branch(out, tx.clone(), live_video.clone())))
                } else {
                    None
                };
                if let Some(Err(e)) = linked {
                    gst::element_error!(pipeline, gst::CoreError::Negotiation, ("cannot link the {media} track: {e}"));
                } else if linked.is_none() {
                    // Tracks we do not deliver still need a sink, or the demuxer stops on not-linked.
                    let _ = link_branch(&pipeline, pad, Ok(vec![discard()]));
                }
            });
        }
        drop(data_tx);
        let bus = pipeline.bus().expect("pipelines have a bus");
        bus.set_sync_handler(move |_, msg| {
            forward(msg, &control_tx);
            gst::BusSyncReply::Drop
        });

        let mut source = MediaSource {
            input: input.to_owned(),
            pipeline,
            data: Some(data_rx),
            live_video: live_rx,
            live,
            first: VecDeque::new(),
            control: control_rx,
            config: config.clone(),
            duration: None,
            has_audio: false,
            has_video: false,
            state: State::Running,
            audio_end: None,
            video_end: None,
            warnings: Vec::new(),
            stalled: false,
            last_data: Instant::now(),
            wav_truncation: crate::input::wav_truncation(input),
        };
        source.start(&tracks)?;
        source.last_data = Instant::now();
        Ok(source)
    }

    /// Prerolls, checks the tracks, seeks to the span, and starts playing.
    fn start(&mut self, tracks: &Mutex<Tracks>) -> Result<(), MediaError> {
        let input = self.input.clone();
        let state_error = |e: gst::StateChangeError| ErrorKind::Gstreamer(e.to_string()).at(&input);
        let change = self
            .pipeline
            .set_state(gst::State::Paused)
            .map_err(|e| self.first_error().unwrap_or_else(|| state_error(e)))?;
        if change == gst::StateChangeSuccess::NoPreroll && self.config.live != Some(false) {
            return self.start_live(tracks);
        }
        let missing_plugins = self.wait_preroll(tracks)?;
        self.check_tracks(tracks, missing_plugins)?;
        self.duration = self.pipeline.query_duration::<gst::ClockTime>().map(|d| Duration::from_nanos(d.nseconds()));
        if self.duration == Some(Duration::ZERO) {
            return Err(ErrorKind::ZeroDuration.at(&input));
        }
        if let Some(span) = self.config.span {
            let at = |d: Duration| gst::ClockTime::from_nseconds(d.as_nanos() as u64);
            self.pipeline
                .seek(
                    1.0,
                    gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                    gst::SeekType::Set,
                    at(span.start),
                    gst::SeekType::Set,
                    // Stop a little late and trim here: the resampler's filter
                    // would otherwise eat the last milliseconds before the stop.
                    at(span.end + SEEK_STOP_MARGIN),
                )
                .map_err(|e| ErrorKind::Gstreamer(format!("cannot seek to {span}: {e}")).at(&input))?;
            self.wait_preroll(tracks)?;
        }
        self.pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| self.first_error().unwrap_or_else(|| state_error(e)))?;
        if self.live.live.load(Ordering::Relaxed) {
            // Taken as live though it prerolls (HLS, a forced file): its first packets, as a
            // live source's, set the capture clock.
            self.wait_first_packets()?;
        }
        Ok(())
    }

    /// A live source makes data only once playing: play, then wait for the first packet of
    /// every track asked for (or the connect timeout), and check the tracks as a file's.
    fn start_live(&mut self, tracks: &Mutex<Tracks>) -> Result<(), MediaError> {
        self.live.live.store(true, Ordering::Relaxed);
        let input = self.input.clone();
        self.pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| self.first_error().unwrap_or_else(|| ErrorKind::Gstreamer(e.to_string()).at(&input)))?;
        let missing_plugins = self.wait_first_packets()?;
        self.check_tracks(tracks, missing_plugins)
    }

    /// Waits, up to the connect timeout, until every track asked for has delivered a packet
    /// (kept to be delivered first); returns the missing-plugin reports seen meanwhile.
    fn wait_first_packets(&mut self) -> Result<Vec<String>, MediaError> {
        // A few seconds of packets at most, while the other track is awaited.
        const MOST: usize = 512;
        let deadline = Instant::now() + self.config.connect_timeout;
        let mut missing = Vec::new();
        let (mut audio, mut video) = (self.config.audio.is_none(), self.config.video.is_none());
        let data = self.data.clone().expect("open");
        let (live_video, control) = (self.live_video.clone(), self.control.clone());
        while !(audio && video) && self.first.len() < MOST {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if self.config.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                self.stalled = true;
                return Err(ErrorKind::Cancelled.at(&self.input));
            }
            // Short waits, to see a cancel soon.
            let left = left.min(Duration::from_millis(100));
            let packet = select! {
                recv(data) -> packet => packet.ok(),
                recv(live_video) -> packet => packet.ok(),
                recv(control) -> msg => {
                    match msg {
                        Ok(Control::Error(kind)) => return Err(kind.at(&self.input)),
                        Ok(Control::Eos) | Err(_) => break,
                        Ok(Control::MissingPlugin(p)) => missing.push(p),
                        Ok(Control::Warning(w)) => self.warnings.push(w),
                        Ok(Control::Prerolled) => {}
                    }
                    None
                },
                default(left) => None,
            };
            if let Some(packet) = packet {
                audio |= matches!(packet, Packet::Audio(_));
                video |= matches!(packet, Packet::Video(_));
                self.first.push_back(packet);
            }
        }
        if self.first.is_empty() && missing.is_empty() {
            self.stalled = true;
            return Err(ErrorKind::Stalled(self.config.connect_timeout).at(&self.input));
        }
        Ok(missing)
    }

    /// Checks the decoder found the tracks asked for; names the cause when not.
    fn check_tracks(&mut self, tracks: &Mutex<Tracks>, missing_plugins: Vec<String>) -> Result<(), MediaError> {
        let input = self.input.clone();
        let (declared_audio, declared_video) = {
            let tracks = tracks.lock().unwrap_or_else(|p| p.into_inner());
            (self.has_audio, self.has_video) = (tracks.audio, tracks.video);
            (tracks.declared_audio, tracks.declared_video)
        };
        let damaged = |kind: &str| {
            ErrorKind::Corrupt(format!(
                "the container declares a {kind} track but holds no decodable {kind} data (truncated?)"
            ))
        };
        let absent = if self.config.audio.is_some() && !self.has_audio {
            Some(if declared_audio { damaged("audio") } else { ErrorKind::NoAudio })
        } else if self.config.video.is_some() && !self.has_video {
            Some(if declared_video { damaged("video") } else { ErrorKind::NoVideo })
        } else {
            None
        };
        if let Some(kind) = absent {
            // A track the decoder could not handle shows up as absent: name the real cause.
            let kind = missing_plugins.into_iter().next().map(ErrorKind::MissingPlugin).unwrap_or(kind);
            return Err(kind.at(&input));
        }
        Ok(())
    }

    /// Waits for the pipeline to preroll; returns the missing-plugin reports seen meanwhile.
    fn wait_preroll(&mut self, tracks: &Mutex<Tracks>) -> Result<Vec<String>, MediaError> {
        let mut missing = Vec::new();
        let started = Instant::now();
        // GStreamer 1.22's decodebin drops a demuxer's error posted while it is
        // still bringing the demuxer up (seen with qtdemux's "no playable
        // streams" under load): no error, no preroll, ever. A local file whose
        // demuxer has announced no track by then has none it can play.
        let local_file = std::fs::metadata(&self.input).is_ok_and(|m| m.is_file());
        let patience = match local_file {
            true => self.config.stall_timeout.min(SILENT_DEMUXER_TIMEOUT),
            false => self.config.stall_timeout,
        };
        // A source that may be cancelled waits in slices, to see the cancel soon.
        let slice = match self.config.cancel {
            Some(_) => patience.min(Duration::from_millis(100)),
            None => patience,
        };
        let mut quiet_since = Instant::now();
        loop {
            let message = self.control.recv_timeout(slice);
            if message.is_ok() {
                quiet_since = Instant::now();
            }
            match message {
                Ok(Control::Prerolled) => return Ok(missing),
                // EOS before any data: preroll completes on EOS too, with nothing decoded.
                Ok(Control::Eos) => return Ok(missing),
                Ok(Control::Error(kind)) => {
                    let kind = match (kind, missing.first()) {
                        (ErrorKind::Gstreamer(_) | ErrorKind::Corrupt(_), Some(plugin)) => {
                            ErrorKind::MissingPlugin(plugin.clone())
                        }
                        (kind, _) => kind,
                    };
                    return Err(kind.at(&self.input));
                }
                Ok(Control::Warning(w)) => self.warnings.push(w),
                Ok(Control::MissingPlugin(p)) => missing.push(p),
                Err(_) if self.config.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) => {
                    self.stalled = true;
                    return Err(ErrorKind::Cancelled.at(&self.input));
                }
                Err(_) if quiet_since.elapsed() < patience => {}
                Err(_) if started.elapsed() >= self.config.stall_timeout => return Err(self.stalled()),
                Err(_) => {
                    quiet_since = Instant::now();
                    let tracks = tracks.lock().unwrap_or_else(|p| p.into_inner());
                    let announced = tracks.audio || tracks.video || tracks.declared_audio || tracks.declared_video;
                    if !announced && missing.is_empty() {
                        self.stalled = true;
                        let reason = "the demuxer found no playable stream (its own error was lost by GStreamer)";
                        return Err(ErrorKind::Corrupt(reason.into()).at(&self.input));
                    }
                }
            }
        }
    }

    /// Marks the source stalled (so teardown will not wait on it) and says so.
    fn stalled(&mut self) -> MediaError {
        self.stalled = true;
        ErrorKind::Stalled(self.config.stall_timeout).at(&self.input)
    }

    /// The first error already on the control channel, if any.
    fn first_error(&self) -> Option<MediaError> {
        self.control.try_iter().find_map(|c| match c {
            Control::Error(kind) => Some(kind.at(&self.input)),
            _ => None,
        })
    }

    /// The input as given.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Duration the container declares, if any.
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// How far decoding has got, in media time (ahead of what was consumed by
    /// at most the channel's and GStreamer's queues).
    pub fn position(&self) -> Option<Duration> {
        self.pipeline.query_position::<gst::ClockTime>().map(|p| Duration::from_nanos(p.nseconds()))
    }

    pub fn has_audio(&self) -> bool {
        self.has_audio
    }

    /// Whether the source is live (see the module docs).
    pub fn is_live(&self) -> bool {
        self.live.live.load(Ordering::Relaxed)
    }

    /// Video frames a live source dropped so far because the consumer was behind.
    pub fn dropped_frames(&self) -> u64 {
        self.live.dropped.load(Ordering::Relaxed)
    }

    /// The sender's clock minus this machine's capture clock, µs, once an RTCP sender report
    /// gave the sender's NTP time of a packet (RTSP); `None` before that and for sources
    /// without RTCP.
    pub fn sender_clock_offset_us(&self) -> Option<i64> {
        Some(self.live.sender_clock_us.load(Ordering::Relaxed)).filter(|&d| d != NO_SENDER_CLOCK)
    }

    /// Media time of a live source's first packet.
    pub fn first_pts(&self) -> Option<Duration> {
        self.first.front().map(Packet::pts)
    }

    /// A live source's capture time minus media time, µs, from its first packet: fixed for
    /// the connection, so a row's capture time follows from its media time.
    pub fn capture_offset_us(&self) -> Option<i64> {
        let first = self.first.front()?;
        Some(first.capture_us()? - first.pts().as_micros() as i64)
    }

    pub fn has_video(&self) -> bool {
        self.has_video
    }

    /// Trims `packet` to the span and notes how far each track has got.
    fn record(&mut self, packet: Packet) -> Option<Packet> {
        let packet = match self.config.span {
            Some(span) => trim_to(packet, span.end)?,
            None => packet,
        };
        match &packet {
            Packet::Audio(a) => self.audio_end = Some(a.end()),
            Packet::Video(v) => self.video_end = Some(v.pts + v.duration),
        }
        Some(packet)
    }

    /// After a clean end of stream: did we get all the container promised?
    fn check_complete(&self) -> Result<(), ErrorKind> {
        let delivered = [
            self.audio_end.filter(|_| self.config.audio.is_some()),
            self.video_end.filter(|_| self.config.video.is_some()),
        ];
        if delivered.iter().all(Option::is_none) {
            return Err(ErrorKind::ZeroDuration);
        }
        if let Some((decoded_s, declared_s)) = self.wav_truncation {
            return Err(ErrorKind::Truncated { decoded_s, declared_s });
        }
        if let Some(first) = self.warnings.first() {
            return Err(ErrorKind::Corrupt(format!("{} decoding error(s), the first: {first}", self.warnings.len())));
        }
        let Some(duration) = self.duration else {
            return Ok(());
        };
        let (start, expected_end) = match self.config.span {
            Some(span) => (span.start, span.end.min(duration)),
            None => (Duration::ZERO, duration),
        };
        let frame = self.config.video.map_or(Duration::ZERO, |v| Duration::from_secs_f64(1.0 / v.fps as f64));
        // Containers round their durations, and the last frame may start just before the end.
        let slack = Duration::from_millis(250) + 2 * frame;
        for end in delivered.into_iter().flatten() {
            if end + slack < expected_end {
                return Err(ErrorKind::Truncated {
                    decoded_s: end.saturating_sub(start).as_secs_f64(),
                    declared_s: expected_end.saturating_sub(start).as_secs_f64(),
                });
            }
        }
        Ok(())
    }

    fn stop(&mut self) {
        // Once is enough (`poll` stops a source that ended, and so does `drop`).
        if self.data.is_none() {
            return;
        }
        // Unblock streaming threads stuck on a full channel before joining them.
        self.data = None;
        let pipeline = self.pipeline.clone();
        if self.stalled {
            // A thread stuck in a read that never returns would block the
            // state change: tear down in the background so the caller never hangs.
            let teardown = std::thread::spawn(move || {
                let _ = pipeline.set_state(gst::State::Null);
            });
            let mut teardowns = TEARDOWNS.lock().unwrap_or_else(|p| p.into_inner());
            teardowns.retain(|t| !t.is_finished());
            teardowns.push(teardown);
        } else {
            let _ = pipeline.set_state(gst::State::Null);
        }
    }
}

/// Pipelines being torn down in the background (see `MediaSource::stop`).
static TEARDOWNS: Mutex<Vec<std::thread::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits, up to `patience`, for the pipelines of stalled sources to finish tearing down: call
/// it before the process exits, since some network libraries (libsrt) break when their
/// static state goes while a pipeline still uses it. Returns how many are still going.
pub fn join_teardowns(patience: Duration) -> usize {
    let deadline = Instant::now() + patience;
    let mut teardowns = std::mem::take(&mut *TEARDOWNS.lock().unwrap_or_else(|p| p.into_inner()));
    while !teardowns.is_empty() && Instant::now() < deadline {
        teardowns.retain(|t| !t.is_finished());
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = teardowns.len();
    TEARDOWNS.lock().unwrap_or_else(|p| p.into_inner()).extend(teardowns);
    left
}

/// What [`MediaSource::poll`] found.
#[derive(Debug)]
pub enum Poll {
    /// The next item, as [`Iterator::next`] gives it (`None`: the input has ended).
    Ready(Option<Result<Packet, MediaError>>),
    /// Nothing within the wait, and the source is not stalled yet.
    Pending,
}

impl MediaSource {
    /// The next packet, waiting at most `wait` for it: how a loop serving several live
    /// sources takes what each has without being held up by one. A source silent for the
    /// stall timeout still ends with [`ErrorKind::Stalled`].
    pub fn poll(&mut self, wait: Duration) -> Poll {
        if let Some(packet) = self.first.pop_front() {
            self.last_data = Instant::now();
            if let Some(packet) = self.record(packet) {
                return Poll::Ready(Some(Ok(packet)));
            }
        }
        let deadline = Instant::now() + wait;
        loop {
            // Receivers are handles; cloning them frees `self` for the arms below.
            let Some(data) = self.data.clone() else { return Poll::Ready(None) };
            let (control, live_video) = (self.control.clone(), self.live_video.clone());
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Poll::Ready(None),
                State::Draining(outcome) => {
                    if let Ok(packet) = data.try_recv().or_else(|_| live_video.try_recv()) {
                        self.state = State::Draining(outcome);
                        match self.record(packet) {
                            Some(packet) => return Poll::Ready(Some(Ok(packet))),
                            None => continue,
                        }
                    }
                    let outcome = outcome.and_then(|()| self.check_complete());
                    self.stop();
                    return Poll::Ready(outcome.err().map(|kind| Err(kind.at(&self.input))));
                }
                State::Running => {
                    self.state = State::Running;
                    // A consumer busy elsewhere finds its packets waiting: the clock only counts
                    // once nothing is.
                    let stall_at = self.last_data + self.config.stall_timeout;
                    let now = Instant::now();
                    let timeout = stall_at.min(deadline).saturating_duration_since(now);
                    select! {
                        recv(data) -> packet => match packet {
                            Ok(packet) => {
                                self.last_data = Instant::now();
                                if let Some(packet) = self.record(packet) {
                                    return Poll::Ready(Some(Ok(packet)));
                                }
                            }
                            // Every sender is gone: the branches were torn down.
                            Err(_) => self.state = State::Draining(Ok(())),
                        },
                        recv(live_video) -> packet => if let Ok(packet) = packet {
                            self.last_data = Instant::now();
                            if let Some(packet) = self.record(packet) {
                                return Poll::Ready(Some(Ok(packet)));
                            }
                        },
                        recv(control) -> msg => match msg {
                            Ok(Control::Eos) => self.state = State::Draining(Ok(())),
                            Ok(Control::Error(kind)) => self.state = State::Draining(Err(kind)),
                            Ok(Control::Warning(w)) => self.warnings.push(w),
                            Ok(Control::Prerolled | Control::MissingPlugin(_)) => {}
                            Err(_) => self.state = State::Draining(Err(ErrorKind::Gstreamer("the bus closed".into()))),
                        },
                        default(timeout) => {
                            if Instant::now() < stall_at {
                                return Poll::Pending;
                            }
                            self.state = State::Done;
                            let stalled = self.stalled();
                            self.stop();
                            return Poll::Ready(Some(Err(stalled)));
                        }
                    }
                }
            }
        }
    }
}

impl Iterator for MediaSource {
    type Item = Result<Packet, MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Poll::Ready(item) = self.poll(self.config.stall_timeout) {
                return item;
            }
        }
    }
}

impl Drop for MediaSource {
    fn drop(&mut self) {
        self.stop();
        if let Some(bus) = self.pipeline.bus() {
            bus.unset_sync_handler();
        }
    }
}

/// Decodes `input`'s audio track (the span `clip` keeps; all of it for `ClipRule::Whole`) at
/// `sr`, mono; returns the samples and the media time of the first.
pub fn decode_audio(input: &str, sr: u32, clip: ClipRule) -> Result<(Vec<f32>, Duration), MediaError> {
    let audio_only =
        SourceConfig { audio: Some(AudioOutput { sample_rate: sr }), video: None, ..SourceConfig::default() };
    let span = match clip {
        ClipRule::Whole => None,
        rule => {
            let duration = MediaSource::open(input, &audio_only)?.duration();
            rule.decode_span(duration)
        }
    };
    let mut samples = Vec::new();
    let mut start = None;
    for packet in MediaSource::open(input, &SourceConfig { span, ..audio_only })? {
        if let Packet::Audio(chunk) = packet? {
            start.get_or_insert(chunk.pts);
            samples.extend_from_slice(&chunk.samples);
        }
    }
    Ok((samples, start.unwrap_or_default()))
}

/// Sets a network source's `latency` property (milliseconds, as rtspsrc and srtsrc take it), if
/// it has one.
fn set_latency(source: &gst::Element, latency_ms: u32) {
    let Some(spec) = source.find_property("latency") else { return };
    let value = match spec.value_type() {
        t if t == glib::Type::U32 => latency_ms.to_value(),
        t if t == glib::Type::I32 => (latency_ms.min(i32::MAX as u32) as i32).to_value(),
        t if t == glib::Type::U64 => (latency_ms as u64 * 1_000_000).to_value(),
        t if t == glib::Type::I64 => (latency_ms as i64 * 1_000_000).to_value(),
        _ => return,
    };
    source.set_property_from_value("latency", &value);
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_TO_UNIX_S: u64 = 2_208_988_800;

/// Asks an RTP source (rtspsrc) to stamp its packets with the sender's NTP time, which its
/// jitter buffer knows once an RTCP sender report has mapped RTP time to NTP time, and
/// records the sender's clock against this machine's from the first stamped packet.
fn watch_sender_clock(source: &gst::Element, live: &Arc<LiveState>) {
    if source.find_property("add-reference-timestamp-meta").is_none() {
        return;
    }
    source.set_property("add-reference-timestamp-meta", true);
    let live = live.clone();
    source.connect_pad_added(move |source, pad| {
        let (source, live) = (source.downgrade(), live.clone());
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if live.sender_clock_us.load(Ordering::Relaxed) != NO_SENDER_CLOCK {
                return gst::PadProbeReturn::Remove;
            }
            let (Some(buffer), Some(source)) = (info.buffer(), source.upgrade()) else {
                return gst::PadProbeReturn::Ok;
            };
            if let Some(offset) = sender_clock_offset(pad, buffer, &source) {
                live.sender_clock_us.store(offset, Ordering::Relaxed);
                return gst::PadProbeReturn::Remove;
            }
            gst::PadProbeReturn::Ok
        });
    });
}

/// The sender's NTP time of `buffer` (its `timestamp/x-ntp` reference) minus the time this
/// machine's capture clock gives it (base time plus running time), µs.
fn sender_clock_offset(pad: &gst::Pad, buffer: &gst::BufferRef, source: &gst::Element) -> Option<i64> {
    let ntp = buffer
        .iter_meta::<gst::ReferenceTimestampMeta>()
        .find(|m| m.reference().structure(0).is_some_and(|s| s.name() == "timestamp/x-ntp"))?
        .timestamp();
    let segment = pad.sticky_event::<gst::event::Segment>(0)?;
    let segment = segment.segment().downcast_ref::<gst::format::Time>()?;
    let received = source.base_time()? + segment.to_running_time(buffer.pts()?)?;
    let sender_unix_ns = ntp.nseconds() as i128 - (NTP_TO_UNIX_S as i128) * 1_000_000_000;
    Some(((sender_unix_ns - received.nseconds() as i128) / 1_000) as i64)
}

/// Turns the bus messages we act on into [`Control`]s.
fn forward(msg: &gst::Message, tx: &Sender<Control>) {
    use gst::MessageView;
    let control = match msg.view() {
        MessageView::AsyncDone(_) => Control::Prerolled,
        MessageView::Eos(_) => Control::Eos,
        MessageView::Error(e) => Control::Error(ErrorKind::classify(&e.error(), e.debug().as_deref())),
        MessageView::Warning(w) if is_data_warning(&w.error()) => {
            let src = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
            Control::Warning(format!("{src}: {}", w.error()))
        }
        MessageView::Element(_) if gst_pbutils::MissingPluginMessage::is(msg) => {
            let description =
                gst_pbutils::MissingPluginMessage::parse(msg).map(|m| m.description().to_string()).unwrap_or_default();
            Control::MissingPlugin(description)
        }
        _ => return,
    };
    let _ = tx.try_send(control);
}

/// Warnings that mean the data was bad (a decoder or demuxer skipped some).
fn is_data_warning(error: &glib::Error) -> bool {
    matches!(
        error.kind::<gst::StreamError>(),
        Some(gst::StreamError::Decode | gst::StreamError::Demux | gst::StreamError::Format)
    )
}

/// Adds `elements` to the pipeline, links them in a chain after `pad`, and starts them.
fn link_branch(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    elements: Result<Vec<gst::Element>, glib::BoolError>,
) -> Result<(), String> {
    let elements = elements.map_err(|e| e.to_string())?;
    pipeline.add_many(&elements).map_err(|e| e.to_string())?;
    gst::Element::link_many(&elements).map_err(|e| e.to_string())?;
    for e in &elements {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let sink = elements[0].static_pad("sink").ok_or("the branch has no sink pad")?;
    pad.link(&sink).map(|_| ()).map_err(|e| e.to_string())
}

fn discard() -> gst::Element {
    gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
        .expect("fakesink is a core element")
}

fn make(factory: &str) -> Result<gst::Element, glib::BoolError> {
    gst::ElementFactory::make(factory).build()
}

fn appsink(caps: gst::Caps) -> gst_app::AppSink {
    // One buffer of slack inside the appsink; the bounded channel does the rest.
    gst_app::AppSink::builder().caps(&caps).sync(false).max_buffers(1).enable_last_sample(false).build()
}

fn audio_branch(
    out: AudioOutput,
    tx: Sender<Packet>,
    live: Arc<LiveState>,
) -> Result<Vec<gst::Element>, glib::BoolError> {
    let caps = gst_audio::AudioCapsBuilder::new_interleaved()
        .format(gst_audio::AudioFormat::F32le)
        .channels(1)
        .rate(out.sample_rate as i32)
        .build();
    let sink = appsink(caps);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let live = live.live.load(Ordering::Relaxed).then(|| sink.base_time()).flatten();
                let chunk = audio_chunk(&sample, out.sample_rate, live).ok_or_else(|| {
                    gst::element_error!(
                        sink,
                        gst::StreamError::Format,
                        ("audio buffer without a timestamp or readable data")
                    );
                    gst::FlowError::Error
                })?;
                // A closed channel means the consumer is gone.
                tx.send(Packet::Audio(chunk)).map_err(|_| gst::FlowError::Flushing)?;
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(vec![make("audioconvert")?, make("audioresample")?, sink.upcast()])
}

/// `live_base`: a live source's base time, to stamp the capture time with.
fn audio_chunk(sample: &gst::Sample, sample_rate: u32, live_base: Option<gst::ClockTime>) -> Option<AudioChunk> {
    let buffer = sample.buffer()?;
    let pts = stream_time(sample, buffer.pts()?)?;
    let capture_us = live_base.and_then(|base| capture_time(sample, buffer.pts()?, base));
    let map = buffer.map_readable().ok()?;
    let samples = map.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Some(AudioChunk { pts, sample_rate, samples, capture_us })
}

/// When a live buffer was captured, µs since the Unix epoch: its running time on the
/// pipeline's real-time clock, plus the pipeline's base time.
fn capture_time(sample: &gst::Sample, pts: gst::ClockTime, base: gst::ClockTime) -> Option<i64> {
    let segment = sample.segment()?.downcast_ref::<gst::format::Time>()?;
    let running = segment.to_running_time(pts)?;
    Some(((base + running).nseconds() / 1_000) as i64)
}

fn video_branch(out: VideoOutput, tx: Sender<Packet>, live: LiveVideo) -> Result<Vec<gst::Element>, glib::BoolError> {
    let caps = gst_video::VideoCapsBuilder::new()
        .format(gst_video::VideoFormat::Rgb)
        .width(out.width as i32)
        .height(out.height as i32)
        .framerate(gst::Fraction::new(out.fps as i32, 1))
        .pixel_aspect_ratio(gst::Fraction::new(1, 1))
        .build();
    let sink = appsink(caps);
    let input_end = Arc::new(AtomicU64::new(u64::MAX));
    let end = input_end.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                // videorate closes the stream with a frame at the last input frame's end: past the video.
                if sample
                    .buffer()
                    .and_then(|b| b.pts())
                    .is_some_and(|pts| pts.nseconds() >= end.load(Ordering::Relaxed))
                {
                    return Ok(gst::FlowSuccess::Ok);
                }
                let is_live = live.state.live.load(Ordering::Relaxed);
                let base = is_live.then(|| sink.base_time()).flatten();
                let frame = video_frame(&sample, base).ok_or_else(|| {
                    gst::element_error!(
                        sink,
                        gst::StreamError::Format,
                        ("video buffer without a timestamp or readable data")
                    );
                    gst::FlowError::Error
                })?;
                match is_live {
                    // Never hold a live sender up: keep the newest frames.
                    true => live.give(Packet::Video(frame))?,
                    false => tx.send(Packet::Video(frame)).map_err(|_| gst::FlowError::Flushing)?,
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let rate = make("videorate")?;
    rate.static_pad("sink")
        .expect("videorate has a sink pad")
        .add_probe(gst::PadProbeType::BUFFER, restamp_repeated_pts());
    rate.static_pad("sink").expect("videorate has a sink pad").add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            // Unknown durations leave no end to hold frames to.
            let end = buffer.pts().zip(buffer.duration()).map_or(u64::MAX, |(pts, d)| (pts + d).nseconds());
            input_end.store(end, Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
    let mut chain = vec![rate];
    if out.resize == Resize::CenterCrop {
        chain.push(
            gst::ElementFactory::make("aspectratiocrop")
                .property("aspect-ratio", gst::Fraction::new(out.width as i32, out.height as i32))
                .build()?,
        );
    }
    chain.push(
        gst::ElementFactory::make("videoscale").property("add-borders", out.resize == Resize::Letterbox).build()?,
    );
    chain.push(make("videoconvert")?);
    chain.push(sink.upcast());
    Ok(chain)
}

/// A pad probe that repairs streams whose decoder stamps every frame with the
/// same time (GStreamer 1.22's libav GIF demuxer gives all frames pts 0, with
/// the right per-frame durations): such a frame is re-stamped at the previous
/// frame's pts plus its duration. Streams with increasing timestamps pass untouched.
fn restamp_repeated_pts() -> impl Fn(&gst::Pad, &mut gst::PadProbeInfo) -> gst::PadProbeReturn + Send + Sync + 'static {
    let previous: Mutex<Option<(gst::ClockTime, gst::ClockTime)>> = Mutex::new(None);
    move |_, info| {
        let Some(buffer) = info.buffer_mut() else { return gst::PadProbeReturn::Ok };
        let mut previous = previous.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some((pts, duration)), Some(current)) = (*previous, buffer.pts())
            && current <= pts
            && !buffer.flags().contains(gst::BufferFlags::DISCONT)
        {
            buffer.make_mut().set_pts(pts + duration);
        }
        *previous = buffer.pts().zip(buffer.duration());
        gst::PadProbeReturn::Ok
    }
}

fn video_frame(sample: &gst::Sample, live_base: Option<gst::ClockTime>) -> Option<VideoFrame> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let buffer = sample.buffer()?;
    let pts = stream_time(sample, buffer.pts()?)?;
    let duration = buffer.duration().map_or(Duration::ZERO, |d| Duration::from_nanos(d.nseconds()));
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let plane = frame.plane_data(0).ok()?;
    // Rows are padded to four bytes; deliver them packed.
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in plane.chunks(stride).take(h) {
        rgb.extend_from_slice(&row[..w * 3]);
    }
    let capture_us = live_base.and_then(|base| capture_time(sample, buffer.pts()?, base));
    Some(VideoFrame { pts, duration, width: w as u32, height: h as u32, rgb, capture_us })
}

/// A buffer timestamp as media time (position in the file, from its start).
fn stream_time(sample: &gst::Sample, pts: gst::ClockTime) -> Option<Duration> {
    let segment = sample.segment()?.downcast_ref::<gst::format::Time>()?;
    let t = segment.to_stream_time(pts)?;
    Some(Duration::from_nanos(t.nseconds()))
}
