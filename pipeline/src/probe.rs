//! What an input holds (duration, tracks), without decoding all of it.

use std::time::Duration;

use gst::prelude::*;
use mudar_schemas::{AudioStreamInfo, MediaInfo, VideoStreamInfo};

use crate::error::{ErrorKind, MediaError};

/// Options of [`probe`].
#[derive(Clone, Copy, Debug)]
pub struct ProbeOptions {
    /// Longest the discoverer may take per input.
    pub timeout: Duration,
    /// Decode the video track and count its frames, instead of estimating
    /// them from duration × frame rate.
    pub count_frames: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions { timeout: Duration::from_secs(30), count_frames: false }
    }
}

/// Describes `input` (a path or URI). Inputs with no track, or tracks of zero
/// duration, are errors; a missing audio or video track is not.
pub fn probe(input: &str, options: &ProbeOptions) -> Result<MediaInfo, MediaError> {
    let uri = crate::input::to_uri(input)?;
    crate::init().map_err(|kind| kind.at(input))?;
    let timeout = gst::ClockTime::from_nseconds(options.timeout.as_nanos() as u64);
    let discoverer =
        gst_pbutils::Discoverer::new(timeout).map_err(|e| ErrorKind::Gstreamer(e.to_string()).at(input))?;
    let info = discoverer.discover_uri(&uri).map_err(|e| ErrorKind::classify(&e, None).at(input))?;
    if info.result() == gst_pbutils::DiscovererResult::Timeout {
        return Err(ErrorKind::Stalled(options.timeout).at(input));
    }
    let missing = info.missing_elements_installer_details();
    if info.result() == gst_pbutils::DiscovererResult::MissingPlugins
        && info.audio_streams().is_empty()
        && info.video_streams().is_empty()
    {
        return Err(ErrorKind::MissingPlugin(missing.join(", ")).at(input));
    }
    let duration_s = info.duration().map(|d| d.nseconds() as f64 / 1e9);
    let video = info.video_streams().first().map(|v| {
        let rate = v.framerate();
        let fps = (rate.numer() > 0 && rate.denom() > 0).then(|| rate.numer() as f64 / rate.denom() as f64);
        VideoStreamInfo {
            width: v.width(),
            height: v.height(),
            fps,
            frame_count: fps.zip(duration_s).map(|(f, d)| (f * d).round() as u64),
            frame_count_exact: false,
        }
    });
    let audio =
        info.audio_streams().first().map(|a| AudioStreamInfo { sample_rate: a.sample_rate(), channels: a.channels() });
    let mut media = MediaInfo { duration_s, video, audio };
    if media.video.is_none() && media.audio.is_none() {
        return Err(ErrorKind::NotMedia("no audio or video track".into()).at(input));
    }
    if !media.has_content() {
        return Err(ErrorKind::ZeroDuration.at(input));
    }
    if let Some((decoded_s, declared_s)) = crate::input::wav_truncation(input) {
        return Err(ErrorKind::Truncated { decoded_s, declared_s }.at(input));
    }
    if options.count_frames
        && let Some(video) = media.video.as_mut()
    {
        video.frame_count = Some(count_frames(&uri, options.timeout).map_err(|kind| kind.at(input))?);
        video.frame_count_exact = true;
    }
    Ok(media)
}

/// Decodes the first video track at its native rate and counts the frames.
fn count_frames(uri: &str, stall_timeout: Duration) -> Result<u64, ErrorKind> {
    let gst_err = |e: gst::glib::BoolError| ErrorKind::Gstreamer(e.to_string());
    let pipeline = gst::Pipeline::new();
    let decoder = gst::ElementFactory::make("uridecodebin").property("uri", uri).build().map_err(gst_err)?;
    pipeline.add(&decoder).map_err(gst_err)?;
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (pipeline, frames, counted) = (pipeline.downgrade(), frames.clone(), counted.clone());
        decoder.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipeline.upgrade() else {
                return;
            };
            let is_video = crate::source::media_type(pad).is_some_and(|m| m.starts_with("video/"));
            let sink = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .build()
                .expect("fakesink is a core element");
            if pipeline.add(&sink).is_err() || sink.sync_state_with_parent().is_err() {
                return;
            }
            let Some(sink_pad) = sink.static_pad("sink") else {
                return;
            };
            if is_video && !counted.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let frames = frames.clone();
                sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                });
            }
            let _ = pad.link(&sink_pad);
        });
    }
    pipeline.set_state(gst::State::Playing).map_err(|e| ErrorKind::Gstreamer(e.to_string()))?;
    let bus = pipeline.bus().expect("pipelines have a bus");
    // A long file may take long to decode: give up only when frames stop coming.
    let (mut last_count, mut last_progress) = (0, std::time::Instant::now());
    let result = loop {
        let count = frames.load(std::sync::atomic::Ordering::Relaxed);
        if count != last_count {
            (last_count, last_progress) = (count, std::time::Instant::now());
        } else if last_progress.elapsed() > stall_timeout {
            break Err(ErrorKind::Stalled(stall_timeout));
        }
        let Some(msg) = bus
            .timed_pop_filtered(gst::ClockTime::from_mseconds(200), &[gst::MessageType::Eos, gst::MessageType::Error])
        else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(frames.load(std::sync::atomic::Ordering::Relaxed)),
            gst::MessageView::Error(e) => {
                break Err(ErrorKind::classify(&e.error(), e.debug().as_deref()));
            }
            _ => {}
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}
