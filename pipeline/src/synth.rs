//! Renders a synthetic [`Dance`] into a real media file, with its ground
//! truth as JSON beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mudar_operators::synth::{Dance, GroundTruth};
use mudar_sinks::{MediaFormat, MediaWriter, VideoParams, WriteError};

/// Writes `dance` to `path` in `format` and its ground truth to
/// [`ground_truth_path`]`(path)`. `progress(done, total)` is called per frame
/// (or per second of audio for audio-only formats).
pub fn write_dance(
    dance: &Dance,
    path: &Path,
    format: MediaFormat,
    mut progress: impl FnMut(u64, u64),
) -> Result<GroundTruth, WriteError> {
    let config = dance.config();
    let sr = config.sample_rate as u64;
    let video =
        format.has_video().then_some(VideoParams { width: config.width, height: config.height, fps: config.fps });
    let mut writer = MediaWriter::create(path, format, video, config.sample_rate)?;
    let audio = dance.render_audio();
    let at_sample = |n: u64| Duration::from_nanos((n as u128 * 1_000_000_000 / sr as u128) as u64);
    let mut written = 0u64;
    let mut push_audio_until = |writer: &mut MediaWriter, end: u64| -> Result<(), WriteError> {
        let end = end.min(audio.len() as u64);
        if end > written {
            writer.push_audio(&audio[written as usize..end as usize], at_sample(written))?;
            written = end;
        }
        Ok(())
    };
    if format.has_video() {
        let fps = config.fps as u64;
        let frames = dance.frame_count();
        for k in 0..frames {
            // Audio up to the end of this frame first: muxers wait for the lagging track.
            push_audio_until(&mut writer, ((k + 1) * sr).div_ceil(fps))?;
            let pts = Duration::from_nanos(k * 1_000_000_000 / fps);
            let next = Duration::from_nanos((k + 1) * 1_000_000_000 / fps);
            writer.push_video(&dance.render_frame(k), pts, next - pts)?;
            progress(k + 1, frames);
        }
        push_audio_until(&mut writer, audio.len() as u64)?;
    } else {
        let seconds = (audio.len() as u64).div_ceil(sr);
        for s in 0..seconds {
            push_audio_until(&mut writer, (s + 1) * sr)?;
            progress(s + 1, seconds);
        }
    }
    writer.finish()?;
    let truth = dance.ground_truth();
    let json = serde_json::to_string_pretty(&truth).expect("ground truth serialises");
    std::fs::write(ground_truth_path(path), json + "\n").map_err(|e| WriteError::Usage {
        path: ground_truth_path(path),
        what: format!("cannot write the ground truth: {e}"),
    })?;
    Ok(truth)
}

/// Where the ground truth of a synthetic file lives: `NAME.EXT` → `NAME.truth.json`.
pub fn ground_truth_path(media: &Path) -> PathBuf {
    media.with_extension("truth.json")
}
