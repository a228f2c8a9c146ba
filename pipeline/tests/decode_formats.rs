//! Real decoding of every container/codec pair we support, made by GStreamer
//! encoders at test time: frame counts, timestamps, colours and samples.

mod common;

use std::time::Duration;

use common::*;
use mudar_pipeline::{AudioOutput, ClipRule, ProbeOptions, Resize, SourceConfig, VideoOutput, probe};
use mudar_sinks::MediaFormat;

const SECONDS: u32 = 3;
const OUT_FPS: u32 = 8;

fn config(video: bool, audio: bool) -> SourceConfig {
    SourceConfig {
        audio: audio.then_some(AudioOutput { sample_rate: 16_000 }),
        video: video.then_some(VideoOutput { width: 64, height: 48, fps: OUT_FPS, resize: Resize::Stretch }),
        ..SourceConfig::default()
    }
}

/// Checks the decoded frames of a pattern file written at `native_fps`.
fn check_frames(name: &str, decoded: &Decoded, native_fps: f64) {
    let frames = &decoded.frames;
    let expected = (SECONDS * OUT_FPS) as usize;
    assert_eq!(frames.len(), expected, "{name}: frames at {OUT_FPS} fps");
    let period = 1.0 / OUT_FPS as f64;
    for (n, f) in frames.iter().enumerate() {
        assert_eq!((f.width, f.height, f.rgb.len()), (64, 48, 64 * 48 * 3), "{name}");
        let t = f.pts.as_secs_f64();
        assert!((t - n as f64 * period).abs() < period, "{name}: frame {n} at {t} s");
        // Quadrant centres keep their colours through encoding and scaling.
        assert!(close(f.pixel(20, 12), RED, 40), "{name} frame {n}: red {:?}", f.pixel(20, 12));
        assert!(close(f.pixel(50, 12), GREEN, 40), "{name} frame {n}: green {:?}", f.pixel(50, 12));
        assert!(close(f.pixel(20, 36), BLUE, 40), "{name} frame {n}: blue {:?}", f.pixel(20, 36));
        assert!(close(f.pixel(1, 24), YELLOW, 40), "{name} frame {n}: yellow {:?}", f.pixel(1, 24));
        // The grey quadrant says which source frame this is: the one shown at t, within one frame.
        let shown = index_of(f.pixel(50, 36)[0]) as i64;
        let want = ((t * native_fps).round() as i64) % 20;
        let off = (shown - want).rem_euclid(20).min((want - shown).rem_euclid(20));
        assert!(off <= 1, "{name}: frame {n} at {t} s shows source frame {shown} (mod 20), expected {want}");
    }
}

/// Samples (at 16 kHz) a lossy codec may add to what was encoded, as GStreamer
/// 1.22 decodes it: AAC priming and final frame (no edit list from mp4mux), MP3
/// encoder delay and padding (no gapless header), Vorbis's last block in WebM
/// (no granule position to trim it). Lossless codecs and Opus (pre-skip) add none.
fn codec_padding(format: MediaFormat) -> usize {
    let at_16k = |samples_44k: usize| samples_44k * 16_000 / 44_100;
    match format {
        MediaFormat::Mp4 | MediaFormat::Mov | MediaFormat::M4a => at_16k(2 * 1024),
        MediaFormat::Mp3 | MediaFormat::Avi => at_16k(1105 + 1152),
        MediaFormat::WebmVp8 => at_16k(2048),
        _ => 0,
    }
}

fn check_audio(format: MediaFormat, decoded: &Decoded) {
    let name = format.name();
    let expected = (SECONDS * 16_000) as usize;
    let got = decoded.audio.len();
    // Every encoded sample, within 1 ms, plus at most the codec's own padding.
    assert!(
        got + 16 >= expected && got <= expected + codec_padding(format) + 16,
        "{name}: {got} samples, encoded {expected}, codec padding up to {}",
        codec_padding(format)
    );
    assert!(
        decoded.audio_start.unwrap() < Duration::from_millis(1),
        "{name}: audio starts at {:?}",
        decoded.audio_start
    );
    // Skip codec start-up and end; the middle is a clean 440 Hz sine of amplitude 0.5.
    let middle = &decoded.audio[4000..expected - 4000];
    let hz = zero_crossing_hz(middle, 16_000);
    assert!((hz - TONE_HZ).abs() < 2.0, "{name}: tone at {hz} Hz");
    let level = rms(middle);
    assert!((level - 0.5 / 2f64.sqrt()).abs() < 0.03, "{name}: rms {level}");
}

#[test]
fn video_containers_decode_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for format in MediaFormat::ALL.into_iter().filter(|f| f.has_video()) {
        let path = write_pattern(dir.path(), format, SECONDS);
        let input = path.to_str().unwrap();
        let decoded = decode(input, &config(true, true)).unwrap();
        assert!(decoded.error.is_none(), "{format}: {:?}", decoded.error);
        check_frames(format.name(), &decoded, FPS as f64);
        let info = probe(input, &ProbeOptions { count_frames: true, ..Default::default() }).unwrap();
        check_audio(format, &decoded);
        let video = info.video.unwrap();
        assert_eq!((video.width, video.height), (WIDTH, HEIGHT), "{format}");
        assert_eq!(video.frame_count, Some((SECONDS * FPS) as u64), "{format}: exact frame count");
        assert!((video.fps.unwrap() - FPS as f64).abs() < 1e-6, "{format}");
        assert!((info.duration_s.unwrap() - SECONDS as f64).abs() < 0.05, "{format}: {:?}", info.duration_s);
        assert!(info.audio.is_some(), "{format}");
    }
}

#[test]
fn gif_decodes_as_video_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_gif(dir.path(), SECONDS);
    let input = path.to_str().unwrap();
    let decoded = decode(input, &config(true, false)).unwrap();
    assert!(decoded.error.is_none(), "{:?}", decoded.error);
    check_frames("gif", &decoded, 25.0);
    let err = decode(input, &config(true, true)).unwrap_err();
    assert_eq!(err.kind.code(), "no_audio");
    let info = probe(input, &ProbeOptions { count_frames: true, ..Default::default() }).unwrap();
    assert_eq!(info.video.unwrap().frame_count, Some(75));
    assert!(info.audio.is_none());
}

#[test]
fn audio_files_decode_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for format in MediaFormat::ALL.into_iter().filter(|f| !f.has_video()) {
        let path = write_pattern(dir.path(), format, SECONDS);
        let input = path.to_str().unwrap();
        let decoded = decode(input, &config(false, true)).unwrap();
        assert!(decoded.error.is_none(), "{format}: {:?}", decoded.error);
        assert!(decoded.frames.is_empty());
        let info = probe(input, &ProbeOptions::default()).unwrap();
        check_audio(format, &decoded);
        // Asking for video from an audio file is a clear error.
        assert_eq!(decode(input, &config(true, true)).unwrap_err().kind.code(), "no_video", "{format}");
        assert_eq!(info.audio.unwrap().sample_rate, SAMPLE_RATE, "{format}");
        assert!(info.video.is_none());
    }
}

#[test]
fn stereo_is_averaged_to_mono() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stereo.wav");
    // Left a 440 Hz sine at 0.6, right silent: the mono mix is the sine at 0.3.
    gst_launch(&format!(
        "audiotestsrc num-buffers=40 samplesperbuffer=1000 wave=sine freq=440 volume=0.6 ! audio/x-raw,rate=8000,channels=1 ! \
         audiopanorama method=simple panorama=-1 ! audio/x-raw,channels=2 ! wavenc ! filesink location={}",
        path.display()
    ));
    let info = probe(path.to_str().unwrap(), &ProbeOptions::default()).unwrap();
    assert_eq!(info.audio.unwrap().channels, 2);
    let decoded = decode(path.to_str().unwrap(), &config(false, true)).unwrap();
    let level = rms(&decoded.audio[1000..decoded.audio.len() - 1000]);
    assert!((level - 0.3 / 2f64.sqrt()).abs() < 0.01, "rms {level}");
}

#[test]
fn resize_policies() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pattern(dir.path(), MediaFormat::Mkv, 1);
    let input = path.to_str().unwrap();
    let first_frame = |resize| {
        let config = SourceConfig {
            audio: None,
            video: Some(VideoOutput { width: 64, height: 64, fps: 8, resize }),
            ..Default::default()
        };
        decode(input, &config).unwrap().frames.remove(0)
    };
    // 160x120 into 64x64. Stretch: the yellow stripe (10% of the width) stays, no bars.
    let f = first_frame(Resize::Stretch);
    assert!(close(f.pixel(2, 32), YELLOW, 40) && close(f.pixel(20, 2), RED, 40), "{:?}", f.pixel(20, 2));
    // Letterbox: 64x48 of picture between 8-row black bars.
    let f = first_frame(Resize::Letterbox);
    assert!(close(f.pixel(32, 3), [0, 0, 0], 20) && close(f.pixel(32, 60), [0, 0, 0], 20), "{:?}", f.pixel(32, 3));
    assert!(close(f.pixel(20, 12), RED, 40) && close(f.pixel(2, 32), YELLOW, 40));
    // Centre crop: the centre 120x120 loses the 20-column yellow edge, keeps the quadrants.
    let f = first_frame(Resize::CenterCrop);
    assert!(!close(f.pixel(1, 32), YELLOW, 60), "{:?}", f.pixel(1, 32));
    assert!(close(f.pixel(4, 4), RED, 40) && close(f.pixel(60, 60), [grey_of(0); 3], 40), "{:?}", f.pixel(4, 4));
}

#[test]
fn paper_clip_decodes_only_the_middle_eight_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pattern(dir.path(), MediaFormat::Mp4, 12);
    let input = path.to_str().unwrap();
    let duration = Duration::from_secs_f64(probe(input, &ProbeOptions::default()).unwrap().duration_s.unwrap());
    let span = ClipRule::PAPER.decode_span(Some(duration)).unwrap();
    let decoded = decode(input, &SourceConfig { span: Some(span), ..config(true, true) }).unwrap();
    assert!(decoded.error.is_none(), "{:?}", decoded.error);
    // Media time, not time since the seek: frames start near 2 s and stop before 10 s.
    let first = decoded.frames[0].pts.as_secs_f64();
    let last = decoded.frames.last().unwrap().pts.as_secs_f64();
    assert!((first - span.start.as_secs_f64()).abs() < 0.125, "first frame at {first}, span {span}");
    assert!(last < span.end.as_secs_f64() && last > span.end.as_secs_f64() - 0.25, "last frame at {last}, span {span}");
    assert!(decoded.frames.len().abs_diff(64) <= 1, "{} frames", decoded.frames.len());
    assert!(decoded.audio.len().abs_diff(8 * 16_000) <= 16, "{} samples", decoded.audio.len());
    let start = decoded.audio_start.unwrap().as_secs_f64();
    assert!((start - span.start.as_secs_f64()).abs() < 0.001, "audio starts at {start}");
    // The frame shown at 2.0 s is source frame 48.
    let shown = index_of(decoded.frames[0].pixel(50, 36)[0]);
    assert_eq!(shown, ((first * FPS as f64).round() as u64) % 20);
}

#[test]
fn real_drum_loop_from_sonic_pi() {
    let path = "/usr/share/sonic-pi/samples/loop_amen.flac";
    let info = probe(path, &ProbeOptions::default()).unwrap();
    let decoded = decode(path, &config(false, true)).unwrap();
    assert!(decoded.error.is_none(), "{:?}", decoded.error);
    let expected = info.duration_s.unwrap() * 16_000.0;
    assert!((decoded.audio.len() as f64 - expected).abs() <= 16.0, "{} vs {expected}", decoded.audio.len());
    assert!(rms(&decoded.audio) > 0.05, "a drum loop is not silent");
}
