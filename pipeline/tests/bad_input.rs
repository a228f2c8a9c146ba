//! Bad input gets a typed error naming the file, never a panic or a hang.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use mudar_pipeline::{ErrorKind, MediaError, ProbeOptions, SourceConfig, probe};
use mudar_sinks::MediaFormat;

fn decode_error(input: &str) -> Option<MediaError> {
    match decode(input, &SourceConfig::default()) {
        Err(e) => Some(e),
        Ok(decoded) => decoded.error,
    }
}

fn write_bytes(path: &Path, bytes: &[u8]) -> String {
    std::fs::write(path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn missing_file() {
    let err = decode_error("/definitely/not/here.mp4").unwrap();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.to_string(), "/definitely/not/here.mp4: no such file");
    assert_eq!(probe("/definitely/not/here.mp4", &ProbeOptions::default()).unwrap_err().kind, ErrorKind::NotFound);
}

#[test]
fn not_a_media_file() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        write_bytes(&dir.path().join("notes.mp4"), b"These are my dance notes, not a video.\n".repeat(50).as_slice());
    let noise: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let random = write_bytes(&dir.path().join("noise.webm"), &noise);
    for input in [text, random] {
        let err = decode_error(&input).unwrap();
        assert_eq!(err.kind.code(), "not_media", "{err}");
        assert!(err.to_string().starts_with(&input));
        assert_eq!(probe(&input, &ProbeOptions::default()).unwrap_err().kind.code(), "not_media");
    }
}

#[test]
fn truncated_files_are_reported_at_every_cut() {
    let dir = tempfile::tempdir().unwrap();
    for format in [MediaFormat::Mp4, MediaFormat::WebmVp8, MediaFormat::Mkv, MediaFormat::Wav, MediaFormat::Flac] {
        let whole = std::fs::read(write_pattern(dir.path(), format, 4)).unwrap();
        for fraction in [0.02, 0.3, 0.6, 0.85] {
            let cut = (whole.len() as f64 * fraction) as usize;
            let path = dir.path().join(format!("cut-{fraction}.{}", format.extension()));
            let input = write_bytes(&path, &whole[..cut]);
            let config = SourceConfig { video: format.has_video().then(Default::default), ..Default::default() };
            let err = match decode(&input, &config) {
                Err(e) => e,
                Ok(d) => d.error.unwrap_or_else(|| panic!("{format} cut at {fraction}: decoded without error")),
            };
            assert!(
                matches!(err.kind, ErrorKind::Truncated { .. } | ErrorKind::Corrupt(_) | ErrorKind::NotMedia(_)),
                "{format} cut at {fraction}: {err}"
            );
            assert!(err.to_string().starts_with(&input), "{err}");
        }
    }
}

#[test]
fn flipped_bytes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for format in [MediaFormat::Mp4, MediaFormat::WebmVp8, MediaFormat::Flac] {
        let mut bytes = std::fs::read(write_pattern(dir.path(), format, 4)).unwrap();
        // Flip every bit of one byte in 64 across the second half of the file.
        let half = bytes.len() / 2;
        for b in bytes[half..].iter_mut().step_by(64) {
            *b ^= 0xff;
        }
        let input = write_bytes(&dir.path().join(format!("flipped.{}", format.extension())), &bytes);
        let config = SourceConfig { video: format.has_video().then(Default::default), ..Default::default() };
        let err = match decode(&input, &config) {
            Err(e) => e,
            Ok(d) => d.error.unwrap_or_else(|| panic!("{format}: corrupt data decoded without error")),
        };
        assert!(matches!(err.kind, ErrorKind::Corrupt(_) | ErrorKind::Truncated { .. }), "{format}: {err}");
    }
}

#[test]
fn missing_tracks() {
    let dir = tempfile::tempdir().unwrap();
    let silent_video = dir.path().join("video-only.mp4");
    gst_launch(&format!(
        "videotestsrc num-buffers=24 ! video/x-raw,width=64,height=48,framerate=8/1 ! x264enc ! mp4mux ! filesink location={}",
        silent_video.display()
    ));
    let input = silent_video.to_str().unwrap();
    let err = decode_error(input).unwrap();
    assert_eq!(err.kind, ErrorKind::NoAudio);
    assert_eq!(err.to_string(), format!("{input}: no audio track"));
    // Asked for video only, the same file decodes.
    let decoded = decode(input, &SourceConfig { audio: None, ..Default::default() }).unwrap();
    assert!(decoded.error.is_none() && decoded.frames.len() == 24, "{:?} {}", decoded.error, decoded.frames.len());

    let audio_only = write_pattern(dir.path(), MediaFormat::Ogg, 1);
    assert_eq!(decode_error(audio_only.to_str().unwrap()).unwrap().kind, ErrorKind::NoVideo);
}

/// A RIFF/WAVE header announcing 16-bit mono PCM with `data_len` bytes of data.
fn wav_header(data_len: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&1u16.to_le_bytes()); // mono
    h.extend_from_slice(&16_000u32.to_le_bytes());
    h.extend_from_slice(&32_000u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

#[test]
fn zero_duration() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_bytes(&dir.path().join("empty.wav"), &wav_header(0));
    let config = SourceConfig { video: None, ..Default::default() };
    let err = match decode(&input, &config) {
        Err(e) => e,
        Ok(d) => d.error.expect("an empty file is an error"),
    };
    assert_eq!(err.kind, ErrorKind::ZeroDuration, "{err}");
    let err = probe(&input, &ProbeOptions::default()).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::ZeroDuration | ErrorKind::NotMedia(_)), "{err}");
}

#[test]
fn a_source_that_never_delivers_stalls_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("live.fifo");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    // A writer that holds the pipe open and never writes: reads block forever.
    let fifo_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo_path).unwrap();
        std::thread::sleep(Duration::from_secs(4));
        let _ = f.write_all(b"");
    });
    let config = SourceConfig { stall_timeout: Duration::from_millis(1500), ..Default::default() };
    let started = Instant::now();
    let err = decode(fifo.to_str().unwrap(), &config).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Stalled(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "gave up after {:?}", started.elapsed());
    writer.join().unwrap();
}

#[test]
fn a_bad_file_does_not_stop_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_pattern(dir.path(), MediaFormat::Mkv, 1);
    let bad = write_bytes(&dir.path().join("bad.mkv"), b"garbage");
    let inputs = [good.to_str().unwrap(), bad.as_str(), "/missing.mkv", good.to_str().unwrap()];
    let results: Vec<_> = inputs.iter().map(|i| decode(i, &SourceConfig::default())).collect();
    let ok: Vec<bool> =
        results.iter().map(|r| matches!(r, Ok(d) if d.error.is_none() && !d.frames.is_empty())).collect();
    assert_eq!(ok, [true, false, false, true]);
}
