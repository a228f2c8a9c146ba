//! Writes raw RGB frames and mono f32 audio into real media files with
//! GStreamer encoders and muxers.
//!
//! ```text
//! {appsrc video: RGB} - videoconvert - {encoder} - queue ─┐
//!                                                          ├─ {muxer} - filesink
//! {appsrc audio: F32} - audioconvert - audioresample - {encoder} - queue ─┘
//! ```
//!
//! Both appsrcs block when their queues are full, so callers must interleave
//! [`MediaWriter::push_video`] and [`MediaWriter::push_audio`] in time order
//! (a muxer waits for the track that lags).

use std::path::{Path, PathBuf};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

/// A container with the codecs it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaFormat {
    /// MP4, H.264 + AAC.
    Mp4,
    /// QuickTime, H.264 + AAC.
    Mov,
    /// Matroska, H.264 + Opus.
    Mkv,
    /// AVI, Motion JPEG + MP3.
    Avi,
    /// WebM, VP8 + Vorbis.
    WebmVp8,
    /// WebM, VP9 + Opus.
    WebmVp9,
    /// WAV, 16-bit PCM (audio only).
    Wav,
    /// FLAC (audio only).
    Flac,
    /// Ogg Vorbis (audio only).
    Ogg,
    /// MP3 (audio only).
    Mp3,
    /// MPEG-4 audio, AAC (audio only).
    M4a,
}

impl MediaFormat {
    pub const ALL: [MediaFormat; 11] = [
        MediaFormat::Mp4,
        MediaFormat::Mov,
        MediaFormat::Mkv,
        MediaFormat::Avi,
        MediaFormat::WebmVp8,
        MediaFormat::WebmVp9,
        MediaFormat::Wav,
        MediaFormat::Flac,
        MediaFormat::Ogg,
        MediaFormat::Mp3,
        MediaFormat::M4a,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MediaFormat::Mp4 => "mp4",
            MediaFormat::Mov => "mov",
            MediaFormat::Mkv => "mkv",
            MediaFormat::Avi => "avi",
            MediaFormat::WebmVp8 => "webm-vp8",
            MediaFormat::WebmVp9 => "webm-vp9",
            MediaFormat::Wav => "wav",
            MediaFormat::Flac => "flac",
            MediaFormat::Ogg => "ogg",
            MediaFormat::Mp3 => "mp3",
            MediaFormat::M4a => "m4a",
        }
    }

    /// File name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            MediaFormat::WebmVp8 | MediaFormat::WebmVp9 => "webm",
            other => other.name(),
        }
    }

    pub fn has_video(self) -> bool {
        self.video_encoder().is_some()
    }

    fn video_encoder(self) -> Option<&'static str> {
        Some(match self {
            MediaFormat::Mp4 | MediaFormat::Mov | MediaFormat::Mkv => {
                "x264enc speed-preset=veryfast quantizer=18 pass=quant ! h264parse"
            }
            MediaFormat::Avi => "jpegenc quality=92",
            MediaFormat::WebmVp8 => "vp8enc deadline=1 cpu-used=4 end-usage=cq cq-level=10 target-bitrate=4000000",
            MediaFormat::WebmVp9 => {
                "vp9enc deadline=1 cpu-used=8 row-mt=true end-usage=cq cq-level=12 target-bitrate=4000000"
            }
            _ => return None,
        })
    }

    fn audio_encoder(self) -> &'static str {
        match self {
            MediaFormat::Mp4 | MediaFormat::Mov | MediaFormat::M4a => "avenc_aac bitrate=160000 ! aacparse",
            MediaFormat::Mkv | MediaFormat::WebmVp9 => "opusenc bitrate=128000 ! opusparse",
            MediaFormat::WebmVp8 | MediaFormat::Ogg => "vorbisenc quality=0.6",
            MediaFormat::Avi | MediaFormat::Mp3 => "lamemp3enc target=quality quality=2 ! mpegaudioparse",
            MediaFormat::Flac => "flacenc",
            MediaFormat::Wav => "audio/x-raw,format=S16LE ! wavenc",
        }
    }

    /// The muxer, or `None` where the encoder's output is the file (WAV, FLAC, MP3).
    fn muxer(self) -> Option<&'static str> {
        match self {
            MediaFormat::Mp4 | MediaFormat::M4a => Some("mp4mux"),
            MediaFormat::Mov => Some("qtmux"),
            MediaFormat::Mkv => Some("matroskamux"),
            MediaFormat::Avi => Some("avimux"),
            MediaFormat::WebmVp8 | MediaFormat::WebmVp9 => Some("webmmux"),
            MediaFormat::Ogg => Some("oggmux"),
            MediaFormat::Wav | MediaFormat::Flac | MediaFormat::Mp3 => None,
        }
    }
}

impl std::str::FromStr for MediaFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        MediaFormat::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<_> = MediaFormat::ALL.iter().map(|f| f.name()).collect();
            format!("unknown format {s:?} (expected one of: {})", names.join(", "))
        })
    }
}

impl std::fmt::Display for MediaFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The raw video handed to the writer: packed RGB at a constant frame rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoParams {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: GStreamer cannot build the {format} encoder ({source}); is its plugin package installed?")]
    Build { path: PathBuf, format: MediaFormat, source: glib::Error },
    #[error("{path}: {what}")]
    Usage { path: PathBuf, what: String },
    #[error("{path}: {src}: {error} ({debug})")]
    Bus { path: PathBuf, src: String, error: String, debug: String },
    #[error("{path}: the pipeline refused a state change: {source}")]
    State { path: PathBuf, source: gst::StateChangeError },
    #[error("{path}: the encoder stopped accepting data ({flow:?})")]
    Flow { path: PathBuf, flow: gst::FlowError },
    #[error("{path}: no end of stream after {timeout:?}: the encoder or muxer stalled")]
    Timeout { path: PathBuf, timeout: Duration },
}

/// An open output file; call [`MediaWriter::finish`] to complete it.
#[derive(Debug)]
pub struct MediaWriter {
    path: PathBuf,
    pipeline: gst::Pipeline,
    video: Option<(gst_app::AppSrc, gst_video::VideoInfo)>,
    audio: gst_app::AppSrc,
    sample_rate: u32,
}

/// How long `finish` waits for the encoders to drain.
const FINISH_TIMEOUT: Duration = Duration::from_secs(120);

impl MediaWriter {
    /// Opens `path` for `format`; `video` must be given exactly when the format has video.
    pub fn create(
        path: &Path,
        format: MediaFormat,
        video: Option<VideoParams>,
        sample_rate: u32,
    ) -> Result<MediaWriter, WriteError> {
        let usage = |what: String| WriteError::Usage { path: path.to_owned(), what };
        gst::init().map_err(|e| WriteError::Build { path: path.to_owned(), format, source: e })?;
        if video.is_some() != format.has_video() {
            return Err(usage(format!(
                "format {format} {} video",
                if format.has_video() { "needs" } else { "has no" }
            )));
        }
        let audio_chain =
            format!("appsrc name=audio ! audioconvert ! audioresample ! {} ! queue", format.audio_encoder());
        let description = match (format.muxer(), format.video_encoder()) {
            (Some(mux), Some(venc)) => format!(
                "{mux} name=mux ! filesink name=file  {audio_chain} ! mux.  appsrc name=video ! videoconvert ! {venc} ! queue ! mux."
            ),
            (Some(mux), None) => {
                format!("{mux} name=mux ! filesink name=file  {audio_chain} ! mux.")
            }
            (None, _) => format!("{audio_chain} ! filesink name=file"),
        };
        let pipeline = gst::parse::launch(&description)
            .map_err(|source| WriteError::Build { path: path.to_owned(), format, source })?
            .downcast::<gst::Pipeline>()
            .expect("a description with several elements parses into a pipeline");
        let by_name = |name: &str| pipeline.by_name(name).expect("named in the description above");
        by_name("file").set_property("location", path.to_string_lossy().as_ref());

        let audio = by_name("audio").downcast::<gst_app::AppSrc>().expect("appsrc");
        let audio_info = gst_audio::AudioInfo::builder(gst_audio::AudioFormat::F32le, sample_rate, 1)
            .build()
            .map_err(|e| usage(format!("invalid sample rate {sample_rate}: {e}")))?;
        configure_appsrc(&audio, &audio_info.to_caps().expect("valid audio info"));

        let video = match video {
            Some(v) => {
                let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, v.width, v.height)
                    .fps(gst::Fraction::new(v.fps as i32, 1))
                    .build()
                    .map_err(|e| usage(format!("invalid video size {}x{}@{}: {e}", v.width, v.height, v.fps)))?;
                let src = by_name("video").downcast::<gst_app::AppSrc>().expect("appsrc");
                configure_appsrc(&src, &info.to_caps().expect("valid video info"));
                Some((src, info))
            }
            None => None,
        };
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|source| WriteError::State { path: path.to_owned(), source })?;
        Ok(MediaWriter { path: path.to_owned(), pipeline, video, audio, sample_rate })
    }

    /// Pushes one frame of packed RGB (`width * height * 3` bytes) shown from `pts` for `duration`.
    pub fn push_video(&mut self, rgb: &[u8], pts: Duration, duration: Duration) -> Result<(), WriteError> {
        let Some((src, info)) = &self.video else {
            return Err(WriteError::Usage { path: self.path.clone(), what: "this format has no video".into() });
        };
        let (w, h) = (info.width() as usize, info.height() as usize);
        if rgb.len() != w * h * 3 {
            return Err(WriteError::Usage {
                path: self.path.clone(),
                what: format!("frame of {} bytes, expected {w}x{h}x3", rgb.len()),
            });
        }
        // GStreamer pads RGB rows to a multiple of four bytes.
        let stride = info.stride()[0] as usize;
        let mut data = vec![0u8; info.size()];
        for (row, dst) in rgb.chunks_exact(w * 3).zip(data.chunks_exact_mut(stride)) {
            dst[..w * 3].copy_from_slice(row);
        }
        let mut buffer = gst::Buffer::from_mut_slice(data);
        let b = buffer.get_mut().expect("fresh buffer");
        b.set_pts(gst::ClockTime::from_nseconds(pts.as_nanos() as u64));
        b.set_duration(gst::ClockTime::from_nseconds(duration.as_nanos() as u64));
        let src = src.clone();
        self.push(&src, buffer)
    }

    /// Pushes mono samples at the writer's sample rate, the first one at `pts`.
    pub fn push_audio(&mut self, samples: &[f32], pts: Duration) -> Result<(), WriteError> {
        let bytes: Vec<u8> = samples.iter().flat_map(|x| x.to_le_bytes()).collect();
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        let b = buffer.get_mut().expect("fresh buffer");
        b.set_pts(gst::ClockTime::from_nseconds(pts.as_nanos() as u64));
        let duration_ns = samples.len() as u128 * 1_000_000_000 / self.sample_rate as u128;
        b.set_duration(gst::ClockTime::from_nseconds(duration_ns as u64));
        let src = self.audio.clone();
        self.push(&src, buffer)
    }

    fn push(&mut self, src: &gst_app::AppSrc, buffer: gst::Buffer) -> Result<(), WriteError> {
        match src.push_buffer(buffer) {
            Ok(_) => Ok(()),
            // A refused buffer means the pipeline failed: report its error, not the flow code.
            Err(flow) => Err(self
                .bus_error(Duration::from_secs(5))
                .unwrap_or(WriteError::Flow { path: self.path.clone(), flow })),
        }
    }

    /// Ends both streams, waits until the muxer has written the file, and closes it.
    pub fn finish(self) -> Result<(), WriteError> {
        for src in self.video.iter().map(|(s, _)| s).chain([&self.audio]) {
            let _ = src.end_of_stream();
        }
        let bus = self.pipeline.bus().expect("pipelines have a bus");
        let result = match bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(FINISH_TIMEOUT.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) {
            Some(msg) => match msg.view() {
                gst::MessageView::Eos(_) => Ok(()),
                _ => Err(bus_error(&self.path, &msg)),
            },
            None => Err(WriteError::Timeout { path: self.path.clone(), timeout: FINISH_TIMEOUT }),
        };
        // Drop sets the pipeline to Null, which closes the file.
        drop(self);
        result
    }

    fn bus_error(&self, wait: Duration) -> Option<WriteError> {
        let bus = self.pipeline.bus()?;
        let msg =
            bus.timed_pop_filtered(gst::ClockTime::from_nseconds(wait.as_nanos() as u64), &[gst::MessageType::Error])?;
        Some(bus_error(&self.path, &msg))
    }
}

impl Drop for MediaWriter {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn configure_appsrc(src: &gst_app::AppSrc, caps: &gst::Caps) {
    src.set_caps(Some(caps));
    src.set_format(gst::Format::Time);
    src.set_block(true);
    // A few frames of slack: the producer waits rather than buffering the file.
    src.set_max_bytes(8 << 20);
}

fn bus_error(path: &Path, msg: &gst::Message) -> WriteError {
    match msg.view() {
        gst::MessageView::Error(err) => WriteError::Bus {
            path: path.to_owned(),
            src: msg.src().map(|s| s.path_string().to_string()).unwrap_or_default(),
            error: err.error().to_string(),
            debug: err.debug().map(|d| d.to_string()).unwrap_or_default(),
        },
        _ => WriteError::Bus {
            path: path.to_owned(),
            src: String::new(),
            error: format!("unexpected {:?}", msg.type_()),
            debug: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_extensions() {
        for f in MediaFormat::ALL {
            assert_eq!(f.name().parse::<MediaFormat>().unwrap(), f);
        }
        assert_eq!(MediaFormat::WebmVp9.extension(), "webm");
        assert!("divx".parse::<MediaFormat>().unwrap_err().contains("webm-vp8"));
    }

    #[test]
    fn video_must_match_the_format() {
        let dir = tempfile::tempdir().unwrap();
        let err = MediaWriter::create(
            &dir.path().join("a.wav"),
            MediaFormat::Wav,
            Some(VideoParams { width: 16, height: 16, fps: 8 }),
            16_000,
        )
        .unwrap_err();
        assert!(err.to_string().contains("has no video"), "{err}");
        let err = MediaWriter::create(&dir.path().join("a.mp4"), MediaFormat::Mp4, None, 16_000).unwrap_err();
        assert!(err.to_string().contains("needs video"), "{err}");
    }

    #[test]
    fn writes_a_playable_wav_with_every_sample() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        let mut w = MediaWriter::create(&path, MediaFormat::Wav, None, 8000).unwrap();
        let tone: Vec<f32> = (0..8000).map(|n| 0.5 * (n as f32 * 0.1).sin()).collect();
        w.push_audio(&tone[..4000], Duration::ZERO).unwrap();
        w.push_audio(&tone[4000..], Duration::from_millis(500)).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // RIFF header (44 bytes) then 16-bit PCM: every sample made it, quantised.
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(bytes.len(), 44 + 2 * 8000);
        let decoded: Vec<f32> =
            bytes[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
        assert!(decoded.iter().zip(&tone).all(|(a, b)| (a - b).abs() < 1e-3));
    }
}
