//! `mudar extract` end to end: a folder of real files (and a broken one)
//! into a store that pyarrow, DuckDB and polars open, rows equal to the
//! operators run directly on the same decoded media; the same rows from one
//! worker, two workers and two processes on loopback; runs killed at several
//! points resume to the same rows; a repeated run changes nothing.

mod common;

use common::read_store;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use mudar_operators::motion::{DisParams, FlowBackend, HoofParams, MotionStream, VisualBeatParams};
use mudar_operators::rhythm::onset::FlaggedFrames;
use mudar_operators::rhythm::{OnsetStream, RhythmParams};
use mudar_pipeline::graph::{ClipParams, clip_row};
use mudar_pipeline::{
    AudioOutput, ClipAssembler, ClipRule, MediaSource, Packet, Resize, SourceConfig, VideoFrame, VideoOutput,
};
use mudar_schemas::VideoFrameRow;
use serde_json::Value;

fn mudar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mudar")).args(args).output().unwrap()
}

/// Synthetic dances in three containers; returns the folder.
fn dances(dir: &Path, count: usize, seconds: u32) -> PathBuf {
    let videos = dir.join("videos");
    let formats = ["mp4", "webm-vp8", "mkv"];
    for k in 0..count {
        let seed = (10 + k).to_string();
        let duration = seconds.to_string();
        let format = formats[k % formats.len()];
        let args = ["synth", "--out", videos.to_str().unwrap(), "--seed", &seed, "--duration", &duration];
        let run = mudar(&[&args[..], &["--format", format, "--width", "160", "--height", "120"]].concat());
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
    videos
}

fn extract(inputs: &Path, store: &Path, extra: &[&str]) -> Output {
    let args = ["extract", inputs.to_str().unwrap(), "--out", store.to_str().unwrap(), "--json", "--file-size-mb", "0"];
    mudar(&[&args[..], extra].concat())
}

fn summary(run: &Output) -> Value {
    serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr))
    })
}

fn rows<'a>(store: &'a Value, table: &str, input: &str) -> Vec<&'a Value> {
    store[table].as_array().unwrap().iter().filter(|r| r["input"] == input).collect()
}

#[test]
fn extract_builds_a_store_the_readers_open_with_the_operators_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dances(dir.path(), 3, 10);
    // A broken input in the middle of the batch: a dance cut at 60%.
    let whole = std::fs::read(videos.join("dance-0010-hiphop.mp4")).unwrap();
    std::fs::write(videos.join("dance-0010-zz-cut.mp4"), &whole[..whole.len() * 6 / 10]).unwrap();
    let store = dir.path().join("store");

    let run = extract(&videos, &store, &[]);
    assert_eq!(run.status.code(), Some(1), "{}", String::from_utf8_lossy(&run.stderr));
    let s = summary(&run);
    assert_eq!((s["inputs"].as_u64(), s["committed"].as_u64(), s["failed"].as_u64()), (Some(4), Some(4), Some(1)));
    assert!(s["errors"][0]["input"].as_str().unwrap().ends_with("zz-cut.mp4"), "{s}");

    let tables = read_store(&store);
    let media = tables["media"].as_array().unwrap();
    assert_eq!(media.len(), 4);
    for row in media {
        let broken = row["input"].as_str().unwrap().ends_with("zz-cut.mp4");
        assert_eq!(row["status"], if broken { "error" } else { "ok" }, "{row}");
        if !broken {
            // 10 s: librosa's 1 + 160000 / 512 envelope frames (plus up to two for the lossy codecs'
            // padding, which GStreamer 1.22 keeps), 80 frames at 8 fps (79 with a flow), one paper clip.
            assert!((313..=315).contains(&row["audio_frames"].as_u64().unwrap()), "{row}");
            assert_eq!(row["video_frames"].as_u64(), Some(79), "{row}");
            assert_eq!(row["clips"], 1);
        }
    }

    // The videos view: one row per input without error, aggregating its media row and clips.
    let view = tables["videos"].as_array().unwrap();
    assert_eq!(view.len(), 3);
    for video in view {
        let input = video["input"].as_str().unwrap();
        let media = &rows(&tables, "media", input)[0];
        assert_eq!((&video["onsets"], &video["visual_beats"]), (&media["onsets"], &media["visual_beats"]));
        assert!(media["onsets"].as_u64().unwrap() > 10 && media["visual_beats"].as_u64().unwrap() > 3, "{media}");
        let clips = rows(&tables, "clips", input);
        assert_eq!(video["clips"].as_u64(), Some(clips.len() as u64));
        let mean = |key: &str| clips.iter().map(|c| c[key].as_f64().unwrap()).sum::<f64>() / clips.len() as f64;
        assert!((video["tempo_bpm"].as_f64().unwrap() - mean("tempo_bpm")).abs() < 1e-3, "{video}");
        for way in ["beat_align_music_to_motion", "beat_align_motion_to_music"] {
            assert!((video[way].as_f64().unwrap() - mean(way)).abs() < 1e-8, "{way}: {video}");
        }
    }

    // The rows of one input against the operators run directly on the same decoded media.
    let input = videos.join("dance-0011-house.webm").display().to_string();
    let config = SourceConfig {
        audio: Some(AudioOutput { sample_rate: 16_000 }),
        video: Some(VideoOutput { width: 256, height: 256, fps: 8, resize: Resize::Stretch }),
        ..SourceConfig::default()
    };
    let source = MediaSource::open(&input, &config).unwrap();
    let rule = ClipRule::PAPER;
    let mut clips = ClipAssembler::<VideoFrameRow>::new(rule.spans(source.duration().unwrap()), true, true);
    let (rhythm, hoof, beats) = (RhythmParams::default(), HoofParams::default(), VisualBeatParams::for_fps(8.0));
    let mut onsets = OnsetStream::new(&rhythm).unwrap();
    let mut flagged = FlaggedFrames::default();
    let mut motion = MotionStream::new(hoof, beats);
    let backend = FlowBackend::Dis(DisParams::default());
    let (mut frames, mut motion_frames, mut audio_start) = (Vec::<VideoFrame>::new(), Vec::new(), None);
    for packet in source {
        match packet.unwrap() {
            Packet::Audio(chunk) => {
                audio_start.get_or_insert(chunk.pts.as_secs_f64());
                let out = onsets.push(&chunk.samples).unwrap();
                out.frames.iter().for_each(|f| flagged.push(f.index, f.envelope));
                flagged.peaks(out.onsets);
                clips.push_audio(&chunk);
            }
            Packet::Video(frame) => {
                if let Some(previous) = frames.last() {
                    let flow = backend.flows(&[(&previous.rgb, &frame.rgb)], 256, 256).pop().unwrap();
                    motion_frames.extend(motion.push(&flow));
                }
                frames.push(frame);
            }
        }
    }
    let out = onsets.finish();
    out.frames.iter().for_each(|f| flagged.push(f.index, f.envelope));
    flagged.peaks(out.onsets);
    motion_frames.extend(motion.finish());
    let audio = flagged.release(usize::MAX);
    let stored = rows(&tables, "audio_frames", &input);
    assert_eq!(stored.len(), audio.len());
    for (row, (index, envelope, onset)) in stored.iter().zip(&audio) {
        assert_eq!(row["frame"].as_u64(), Some(*index as u64));
        assert_eq!(row["onset_envelope"].as_f64().unwrap() as f32, *envelope, "frame {index}");
        assert_eq!(row["onset"].as_bool(), Some(*onset), "frame {index}");
        let time = audio_start.unwrap() + *index as f64 * 512.0 / 16_000.0;
        assert!((row["time_s"].as_f64().unwrap() - time).abs() < 1e-9);
    }
    assert!(audio.iter().any(|a| a.2), "the dance has onsets");
    let stored = rows(&tables, "video_frames", &input);
    assert_eq!(stored.len(), motion_frames.len());
    let mut motion_rows = Vec::new();
    for (row, frame) in stored.iter().zip(&motion_frames) {
        let hoof: Vec<f32> = row["hoof"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(hoof, frame.hoof, "frame {}", frame.index);
        assert_eq!(row["visual_beat"].as_bool(), Some(frame.visual_beat));
        assert_eq!(row["impact"].as_f64().unwrap() as f32, frame.impact);
        let time_s = frames[frame.index].pts.as_secs_f64();
        assert!((row["time_s"].as_f64().unwrap() - time_s).abs() < 1e-9);
        motion_rows.push(VideoFrameRow {
            frame: frame.index as u32,
            time_s,
            hoof,
            motion_energy: frame.motion_energy,
            impact: frame.impact,
            visual_beat: frame.visual_beat,
            rhythm_probability: None,
            rhythm: None,
        });
    }
    let mut done = Vec::new();
    for row in motion_rows {
        done.extend(clips.push_video(Duration::from_secs_f64(row.time_s), Duration::from_millis(125), row));
    }
    done.extend(clips.finish());
    assert_eq!(done.len(), 1, "the paper's one clip");
    let params = ClipParams { rule, rhythm, frame_s: 0.125, beat_align_sigma_s: 0.05 };
    let expected = clip_row(0, &done[0], &params).unwrap();
    let stored = rows(&tables, "clips", &input);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["tempo_bpm"].as_f64(), Some(expected.tempo_bpm));
    for (column, want) in [
        ("beat_times", &expected.beat_times),
        ("onset_times", &expected.onset_times),
        ("visual_beat_times", &expected.visual_beat_times),
    ] {
        let got: Vec<f64> = serde_json::from_value(stored[0][column].clone()).unwrap();
        assert!(
            got.len() == want.len() && got.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-9),
            "{column}: {got:?} vs {want:?}"
        );
    }
    assert!(!expected.beat_times.is_empty() && !expected.visual_beat_times.is_empty());
    for (way, want) in [
        ("beat_align_music_to_motion", expected.beat_align_music_to_motion),
        ("beat_align_motion_to_music", expected.beat_align_motion_to_music),
    ] {
        assert!((stored[0][way].as_f64().unwrap() - want.unwrap()).abs() < 1e-9, "{way}");
    }

    // Again: everything is skipped, the store's files do not change.
    let files = |store: &Path| {
        let mut all: Vec<_> = walk(store);
        all.sort();
        all
    };
    let before = files(&store);
    let run = extract(&videos, &store, &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!((summary(&run)["committed"].as_u64(), summary(&run)["skipped"].as_u64()), (Some(0), Some(4)));
    assert_eq!(files(&store), before);

    // Removing an input takes its rows out of every table and of the view, and
    // leaves the others' rows; extracting it again brings back the same rows.
    let removed = videos.join("dance-0012-waltz.mkv").display().to_string();
    let run = mudar(&["extract", &removed, "--out", store.to_str().unwrap(), "--remove"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let after = read_store(&store);
    for table in ["media", "audio_frames", "video_frames", "clips", "videos"] {
        let others = |t: &Value| -> Vec<Value> {
            t[table].as_array().unwrap().iter().filter(|r| r["input"] != removed.as_str()).cloned().collect()
        };
        assert_eq!(others(&after), others(&tables), "{table}");
        assert!(rows(&after, table, &removed).is_empty(), "{table} still has {removed}");
        assert!(!rows(&tables, table, &removed).is_empty(), "{table} had {removed}");
    }
    let run = extract(&videos, &store, &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!((summary(&run)["committed"].as_u64(), summary(&run)["skipped"].as_u64()), (Some(1), Some(3)));
    assert_eq!(read_store(&store), tables);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// Two free TCP ports on loopback.
fn free_ports() -> [u16; 2] {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    [a.local_addr().unwrap().port(), b.local_addr().unwrap().port()]
}

#[test]
fn one_worker_two_workers_and_two_processes_give_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dances(dir.path(), 3, 4);
    let one = dir.path().join("one");
    assert!(extract(&videos, &one, &[]).status.success());
    let reference = read_store(&one);
    assert_eq!(reference["media"].as_array().unwrap().len(), 3);

    let two = dir.path().join("two");
    let run = extract(&videos, &two, &["-w", "2"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(read_store(&two), reference);

    let cluster = dir.path().join("cluster");
    let hosts = dir.path().join("hosts.txt");
    let [a, b] = free_ports();
    std::fs::write(&hosts, format!("127.0.0.1:{a}\n127.0.0.1:{b}\n")).unwrap();
    let process = |index: &str| {
        let args = ["extract", videos.to_str().unwrap(), "--out", cluster.to_str().unwrap(), "--file-size-mb", "0"];
        Command::new(env!("CARGO_BIN_EXE_mudar"))
            .args(args)
            .args(["-n", "2", "-p", index, "-h", hosts.to_str().unwrap()])
            .spawn()
            .unwrap()
    };
    let (mut p0, mut p1) = (process("0"), process("1"));
    assert!(p0.wait().unwrap().success() && p1.wait().unwrap().success());
    assert_eq!(read_store(&cluster), reference);
}

#[test]
fn killed_runs_resume_to_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dances(dir.path(), 4, 4);
    let reference_store = dir.path().join("reference");
    assert!(extract(&videos, &reference_store, &[]).status.success());
    let reference = read_store(&reference_store);

    for (k, delay_ms) in [300u64, 1200, 2500].into_iter().enumerate() {
        let store = dir.path().join(format!("killed{k}"));
        let args = ["extract", videos.to_str().unwrap(), "--out", store.to_str().unwrap(), "--file-size-mb", "0"];
        let mut child = Command::new(env!("CARGO_BIN_EXE_mudar"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        child.wait().unwrap();
        if !store.exists() {
            continue;
        }
        let plain = extract(&videos, &store, &[]);
        if !plain.status.success() {
            assert!(
                String::from_utf8_lossy(&plain.stderr).contains("--resume"),
                "{}",
                String::from_utf8_lossy(&plain.stderr)
            );
            let resumed = extract(&videos, &store, &["--resume"]);
            assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
        }
        assert_eq!(read_store(&store), reference, "killed after {delay_ms} ms");
    }
}
