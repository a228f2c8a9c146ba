//! `mudar retarget` end to end (paper Sec. 4.4): a synthetic hip-hop dance at 90 bpm put to
//! house music at 120 bpm by each of the three patterns. After DTW the dancer's accents (from
//! its `truth.json`, not from what mudar detected) land on the music's beats; DTW aligns better
//! than shifting; the files decode with both tracks, at the dance's size and rate, as long as
//! the music (or the warped dance).

use std::path::Path;
use std::process::{Command, Output};

use mudar_pipeline::{ProbeOptions, probe};
use serde_json::Value;

fn mudar(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_mudar")).args(args).output().unwrap();
    assert!(output.status.success(), "mudar {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// The warp the report describes, recomputed: anchors (output, source), slope 1 beyond them,
/// held within the dance.
fn source_time(report: &Value, t: f64) -> f64 {
    let anchors: Vec<(f64, f64)> = serde_json::from_value(report["anchors"].clone()).unwrap();
    let dance_s = report["dance_s"].as_f64().unwrap();
    let raw = match anchors.iter().position(|a| a.0 > t) {
        _ if anchors.is_empty() => t,
        Some(0) => anchors[0].1 + t - anchors[0].0,
        None => anchors[anchors.len() - 1].1 + t - anchors[anchors.len() - 1].0,
        Some(k) => {
            let ((t0, s0), (t1, s1)) = (anchors[k - 1], anchors[k]);
            s0 + (t - t0) * (s1 - s0) / (t1 - t0)
        }
    };
    raw.clamp(0.0, dance_s)
}

/// Share of the music's beats (inside the output) with one of the dancer's true accents shown
/// within `tolerance` seconds of it.
fn beats_met(report: &Value, accents: &[f64], tolerance: f64) -> f64 {
    let (offset, duration) = (report["music_offset_s"].as_f64().unwrap(), report["duration_s"].as_f64().unwrap());
    // When each accent is first shown, on a fine grid of output times.
    let grid: Vec<(f64, f64)> = (0..(duration * 1000.0) as usize)
        .map(|k| (k as f64 / 1000.0, source_time(report, k as f64 / 1000.0)))
        .collect();
    let shown: Vec<f64> =
        accents.iter().filter_map(|&a| grid.iter().find(|(_, s)| *s >= a - 1e-9).map(|(t, _)| *t)).collect();
    let beats: Vec<f64> = serde_json::from_value::<Vec<f64>>(report["music_beats"].clone())
        .unwrap()
        .into_iter()
        .map(|b| b - offset)
        .filter(|b| (0.0..duration).contains(b))
        .collect();
    assert!(beats.len() >= 5, "{beats:?}");
    beats.iter().filter(|&&b| shown.iter().any(|&s| (s - b).abs() <= tolerance)).count() as f64 / beats.len() as f64
}

#[test]
fn retargeting_puts_the_dancers_accents_on_the_new_music() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let size = ["--width", "320", "--height", "240", "--duration", "12"];
    mudar(&[&["synth", "--out", &path("in"), "--seed", "5", "--style", "hiphop", "--tempo", "90"][..], &size].concat());
    mudar(&[
        "synth",
        "--out",
        &path("in"),
        "--seed",
        "6",
        "--style",
        "house",
        "--tempo",
        "120",
        "--duration",
        "12",
        "--format",
        "wav",
    ]);
    let (dance, music) = (path("in/dance-0005-hiphop.mp4"), path("in/dance-0006-house.wav"));
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(path("in/dance-0005-hiphop.truth.json")).unwrap()).unwrap();
    let accents: Vec<f64> = serde_json::from_value(truth["visual_accent_times"].clone()).unwrap();

    let mut reports = std::collections::BTreeMap::new();
    for (mode, out) in
        [("dtw", "dtw.mp4"), ("shift", "shift.mp4"), ("accelerate", "accelerate.mp4"), ("dtw", "dtw.webm")]
    {
        let run = mudar(&["retarget", &dance, &music, "--out", &path(out), "--mode", mode, "--json"]);
        let report: Value = serde_json::from_slice(&run.stdout).unwrap();
        eprintln!("{out}: before {} after {}", report["before"], report["after"]);
        // The file: both tracks, the dance's size and rate, the music's length.
        let info = probe(&path(out), &ProbeOptions::default()).unwrap();
        let video = info.video.as_ref().expect("a video track");
        assert_eq!((video.width, video.height), (320, 240), "{out}");
        assert!((video.fps.unwrap() - 24.0).abs() < 0.01, "{out}: {video:?}");
        assert!(info.audio.is_some(), "{out}: no sound");
        // As long as the music, or as the dance lasts at its warped pace, whichever ends first.
        let duration = report["duration_s"].as_f64().unwrap();
        assert!(duration > 11.0 && duration <= 12.0 + 1e-9, "{out}: {duration}");
        assert!((info.duration_s.unwrap() - duration).abs() < 0.15, "{out}: {:?} vs {duration}", info.duration_s);
        reports.insert(out, report);
    }
    let score = |out: &str, what: &str| reports[out]["after"][what].as_f64().unwrap();
    // After DTW, nine in ten of the music's beats have one of the dancer's accents within a
    // frame (1/24 s); before, the two tempi meet only by chance.
    let frame = 1.0 / 24.0;
    let met = beats_met(&reports["dtw.mp4"], &accents, frame);
    let untouched = serde_json::json!({ "anchors": [[0.0, 0.0]], "dance_s": 12.0, "music_offset_s": 0.0, "duration_s": 12.0, "music_beats": reports["dtw.mp4"]["music_beats"] });
    let before = beats_met(&untouched, &accents, frame);
    assert!(met >= 0.9, "after dtw {met:.2} of the beats met, before {before:.2}");
    assert!(before < 0.5, "before {before:.2}");
    // DTW aligns better than shifting, which keeps the dance's tempo.
    for what in ["beats_hit", "beat_align_music_to_motion", "beat_align_motion_to_music"] {
        assert!(
            score("dtw.mp4", what) > score("shift.mp4", what),
            "{what}: dtw {} shift {}",
            score("dtw.mp4", what),
            score("shift.mp4", what)
        );
    }
    assert_eq!((score("shift.mp4", "slowest"), score("shift.mp4", "fastest")), (1.0, 1.0));
    // No pattern freezes or races the dance here.
    for out in ["dtw.mp4", "accelerate.mp4"] {
        assert!(score(out, "slowest") > 0.4 && score(out, "fastest") < 2.5, "{out}: {}", reports[out]["after"]);
    }
    // The two containers carry the same warp.
    assert_eq!(reports["dtw.mp4"]["anchors"], reports["dtw.webm"]["anchors"]);
    assert!(Path::new(&path("dtw.webm")).metadata().unwrap().len() > 10_000);
}
