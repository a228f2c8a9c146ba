//! The `mudar` binary end to end: synth renders real files whose decoded
//! content matches what was rendered; probe reports every input.

mod common;

use std::process::Command;

use common::*;
use mudar_operators::synth::{Dance, GroundTruth, Style, SynthConfig};
use mudar_pipeline::{AudioOutput, Resize, SourceConfig, VideoOutput};

fn mudar(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mudar")).args(args).output().unwrap()
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
}

#[test]
fn synth_renders_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = ["synth", "--out", out, "--format", "mkv", "--style", "house", "--tempo", "120", "--duration", "6"];
    let run = mudar(&[&args[..], &["--width", "256", "--height", "256", "--seed", "11"]].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let video = dir.path().join("dance-0011-house.mkv");
    let truth: GroundTruth =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("dance-0011-house.truth.json")).unwrap())
            .unwrap();
    assert_eq!((truth.style, truth.tempo_bpm, truth.seed), (Style::House, 120.0, 11));

    // Decoded frames are the frames the renderer draws at the same instants.
    let config = SynthConfig {
        style: Style::House,
        tempo_bpm: Some(120.0),
        duration_s: 6.0,
        width: 256,
        height: 256,
        seed: 11,
        music_seed: None,
        ..SynthConfig::default()
    };
    let dance = Dance::new(config).unwrap();
    assert_eq!(dance.ground_truth(), truth);
    let source = SourceConfig {
        audio: Some(AudioOutput { sample_rate: 16_000 }),
        video: Some(VideoOutput { width: 256, height: 256, fps: 8, resize: Resize::Stretch }),
        ..SourceConfig::default()
    };
    let decoded = decode(video.to_str().unwrap(), &source).unwrap();
    assert!(decoded.error.is_none(), "{:?}", decoded.error);
    // 6 s at 8 fps, within one frame (videorate may repeat the last frame at the end).
    assert!(decoded.frames.len().abs_diff(48) <= 1, "{} frames", decoded.frames.len());
    for (n, frame) in decoded.frames.iter().enumerate().take(48) {
        let rendered = dance.render_frame(3 * n as u64); // 24 fps rendered, 8 fps decoded
        let quality = psnr(&frame.rgb, &rendered);
        assert!(quality > 30.0, "frame {n}: PSNR {quality:.1} dB");
    }
    // Audio onsets sit where the ground truth says: energy jumps at each one.
    // (High-passed by a first difference, so a soft hi-hat shows over a ringing kick.)
    let energy = |from: f64, to: f64| {
        let (a, b) = ((from * 16_000.0) as usize, (to * 16_000.0) as usize);
        decoded.audio[a..b].windows(2).map(|w| (w[1] - w[0]).powi(2)).sum::<f32>() / (b - a) as f32
    };
    for &t in &truth.onset_times {
        let (before, after) = (energy(t - 0.012, t - 0.002), energy(t + 0.002, t + 0.012));
        assert!(after > 2.0 * before, "onset at {t}: energy {before} before, {after} after");
    }
}

#[test]
fn probe_reports_every_input_and_fails_if_any_does() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_pattern(dir.path(), mudar_sinks::MediaFormat::WebmVp9, 2);
    let good = good.to_str().unwrap();
    let bad = dir.path().join("bad.mp4");
    std::fs::write(&bad, b"nope").unwrap();
    let run = mudar(&["probe", "--json", "--count-frames", good, bad.to_str().unwrap(), "/missing.webm", good]);
    assert_eq!(run.status.code(), Some(1));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(run.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["path"], good);
    assert_eq!(lines[0]["video"]["frame_count"], 48);
    assert_eq!(lines[0]["video"]["frame_count_exact"], true);
    assert_eq!(lines[0]["audio"]["sample_rate"], SAMPLE_RATE / 44_100 * 48_000); // Opus is 48 kHz
    assert!((lines[0]["duration_s"].as_f64().unwrap() - 2.0).abs() < 0.05);
    assert_eq!(lines[1]["error"]["kind"], "not_media");
    assert_eq!(lines[2]["error"]["kind"], "not_found");
    assert_eq!(lines[3], lines[0]);
    assert!(String::from_utf8_lossy(&run.stderr).contains("2 of 4 input(s) failed"));

    let run = mudar(&["probe", good]);
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).unwrap();
    assert!(text.contains("video 160x120") && text.contains("audio 48000 Hz 1 ch"), "{text}");
}

#[test]
fn help_and_usage_errors() {
    let run = mudar(&["--help"]);
    assert!(run.status.success());
    let help = String::from_utf8(run.stdout).unwrap();
    for command in ["probe", "synth", "info"] {
        assert!(help.contains(command), "{help}");
    }
    let run = mudar(&["synth", "--out", "/tmp/x", "--style", "tango"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown style"));
    let run = mudar(&["synth", "--out", "/tmp/x", "--tempo", "1000"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("tempo must be in"));
}

#[test]
fn info_finds_gstreamer_and_libtorch() {
    let run = mudar(&["info", "--json"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stdout));
    let info: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(info["gstreamer"].as_str().unwrap().contains("1.22"));
    assert_eq!(info["missing_elements"].as_array().unwrap().len(), 0);
    assert!(info["torch"]["threads"].as_i64().unwrap() >= 1);
}

#[test]
fn music_finds_the_beats_of_a_synthetic_dance() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let run = mudar(&[
        "synth",
        "--out",
        out,
        "--style",
        "hiphop",
        "--tempo",
        "92",
        "--duration",
        "12",
        "--format",
        "webm-vp8",
        "--seed",
        "3",
    ]);
    assert!(run.status.success());
    let video = dir.path().join("dance-0003-hiphop.webm");
    let truth: GroundTruth =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("dance-0003-hiphop.truth.json")).unwrap())
            .unwrap();

    let run = mudar(&["music", "--json", video.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let result: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!((result["sr"].as_u64(), result["hop_length"].as_u64()), (Some(16_000), Some(512)));
    let n_frames = result["n_frames"].as_u64().unwrap() as usize;
    assert_eq!(n_frames, 1 + 12 * 16_000 / 512);
    assert_eq!(result["onset_envelope"].as_array().unwrap().len(), n_frames);
    // 92 bpm on librosa's lag grid (1875 / 20 = 93.75).
    assert_eq!(result["tempo"].as_f64().unwrap(), 93.75);
    // Every tracked beat is within two frames (64 ms) of a true beat. Onsets trail
    // the true ones by up to three frames: librosa's envelope peaks a frame or two
    // late, and at 16 kHz it often reports two adjacent frames.
    let frame = 512.0 / 16_000.0;
    let near =
        |t: f64, truth: &[f64], before: f64, after: f64| truth.iter().any(|&g| t >= g - before && t <= g + after);
    let beats: Vec<f64> = serde_json::from_value(result["beat_times"].clone()).unwrap();
    assert!(beats.len() >= 12, "{beats:?}");
    assert!(
        beats.iter().all(|&t| near(t, &truth.beat_times, 2.0 * frame, 2.0 * frame)),
        "{beats:?} vs {:?}",
        truth.beat_times
    );
    let onsets: Vec<f64> = serde_json::from_value(result["onset_times"].clone()).unwrap();
    let missed: Vec<f64> =
        onsets.iter().copied().filter(|&t| !near(t, &truth.onset_times, frame, 3.0 * frame)).collect();
    assert!(missed.is_empty(), "{missed:?} of {onsets:?} vs {:?}", truth.onset_times);
    let frames: Vec<f64> = serde_json::from_value(result["beat_frames"].clone()).unwrap();
    assert!(frames.iter().zip(&beats).all(|(f, t)| (f * 512.0 / 16_000.0 - t).abs() < 1e-9));

    // A video without sound is an error naming it; the batch goes on.
    let silent = dir.path().join("silent.mp4");
    gst_launch(&format!(
        "videotestsrc num-buffers=16 ! video/x-raw,width=64,height=48,framerate=8/1 ! x264enc ! mp4mux ! filesink location={}",
        silent.display()
    ));
    let run = mudar(&["music", silent.to_str().unwrap(), video.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("silent.mp4: no audio track"));
    assert!(String::from_utf8_lossy(&run.stdout).contains("tempo 93.75 bpm"));
}

#[test]
fn flow_between_two_images() {
    let dir = tempfile::tempdir().unwrap();
    // A smooth texture and the same texture moved 3 px right and 2 px up.
    let texture = |x: f32, y: f32| {
        let v = 128.0 + 60.0 * (x * 0.21).sin() * (y * 0.17).cos() + 40.0 * ((x + 2.0 * y) * 0.07).sin();
        v.clamp(0.0, 255.0) as u8
    };
    let (w, h) = (96u32, 80u32);
    let frame = |dx: f32, dy: f32| {
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([texture(x as f32 - dx, y as f32 - dy); 3]))
    };
    let (a, b) = (dir.path().join("a.png"), dir.path().join("b.jpg"));
    frame(0.0, 0.0).save(&a).unwrap();
    frame(3.0, -2.0).save(&b).unwrap();
    let (flo, png) = (dir.path().join("ab.flo"), dir.path().join("ab.png"));
    let run = mudar(&[
        "flow",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        flo.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let flow = mudar_operators::motion::Flow::read_flo(std::fs::File::open(&flo).unwrap()).unwrap();
    assert_eq!((flow.width, flow.height), (96, 80));
    let interior: Vec<(f32, f32)> =
        (16..64).flat_map(|y| (16..80).map(move |x| (x, y))).map(|(x, y)| flow.at(x, y)).collect();
    let mean = interior.iter().fold((0.0, 0.0), |(a, b), (u, v)| (a + u, b + v));
    let (mu, mv) = (mean.0 / interior.len() as f32, mean.1 / interior.len() as f32);
    assert!((mu - 3.0).abs() < 0.3 && (mv + 2.0).abs() < 0.3, "mean flow ({mu}, {mv})");
    assert_eq!(image::open(&png).unwrap().to_rgb8().dimensions(), (96, 80));

    let small = dir.path().join("small.png");
    image::RgbImage::new(10, 10).save(&small).unwrap();
    let run = mudar(&["flow", a.to_str().unwrap(), small.to_str().unwrap(), "--out", flo.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("differ in size"));
    let run = mudar(&["flow", a.to_str().unwrap(), "/missing.png", "--out", flo.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&run.stderr).contains("/missing.png: cannot read the image"));
}

/// (precision, recall) of `found` against `truth`, a hit within `tolerance` seconds.
fn precision_recall(found: &[f64], truth: &[f64], tolerance: f64) -> (f64, f64) {
    let near = |t: f64, set: &[f64]| set.iter().any(|&s| (s - t).abs() <= tolerance);
    let hits = found.iter().filter(|&&t| near(t, truth)).count();
    let recalled = truth.iter().filter(|&&t| near(t, found)).count();
    (hits as f64 / found.len().max(1) as f64, recalled as f64 / truth.len().max(1) as f64)
}

#[test]
fn motion_finds_the_moves_of_synthetic_dances() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let run = mudar(&["synth", "--out", out, "--count", "3", "--seed", "20", "--duration", "10", "--format", "mkv"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let mut videos: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .collect();
    videos.sort();
    let args: Vec<&str> = videos.iter().map(|p| p.to_str().unwrap()).collect();
    let run = mudar(&[&["motion", "--json", "--bins", "12"][..], &args].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&run.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    for (video, result) in videos.iter().zip(&lines) {
        let truth: GroundTruth =
            serde_json::from_str(&std::fs::read_to_string(video.with_extension("truth.json")).unwrap()).unwrap();
        assert_eq!(result["backend"], "dis");
        // 10 s at 8 fps: 80 frames, 79 flows stamped with their first frame's time.
        assert_eq!(result["n_frames"], 80);
        let times: Vec<f64> = serde_json::from_value(result["times"].clone()).unwrap();
        assert_eq!(times.len(), 79);
        assert!(times.iter().enumerate().all(|(t, &s)| (s - t as f64 / 8.0).abs() < 1e-6), "{times:?}");
        let hoof: Vec<Vec<f32>> = serde_json::from_value(result["hoof"].clone()).unwrap();
        assert_eq!(hoof.len(), 79);
        for h in &hoof {
            let sum: f32 = h.iter().sum();
            assert!(h.len() == 12 && (sum == 0.0 || (sum - 1.0).abs() < 1e-5), "{h:?}");
        }
        let energy: Vec<f32> = serde_json::from_value(result["motion_energy"].clone()).unwrap();
        assert!(energy.iter().all(|&e| e >= 0.0) && energy.iter().any(|&e| e > 0.1), "{energy:?}");
        // The moves land on frames (8 fps): a visual beat counts within half a
        // frame of a true accent. Chance precision at this density is ~0.25.
        let beats: Vec<f64> = serde_json::from_value(result["visual_beat_times"].clone()).unwrap();
        let (precision, recall) = precision_recall(&beats, &truth.visual_accent_times, 0.07);
        assert!(
            precision >= 0.8 && recall >= 0.3,
            "{}: precision {precision}, recall {recall}: {beats:?} vs {:?}",
            video.display(),
            truth.visual_accent_times
        );
    }

    // An audio-only file is an error naming it; the others go on.
    let wav = dir.path().join("music.wav");
    let run = mudar(&["synth", "--out", out, "--format", "wav", "--duration", "2", "--seed", "1"]);
    assert!(run.status.success());
    std::fs::rename(dir.path().join("dance-0001-house.wav"), &wav).unwrap();
    let run = mudar(&["motion", wav.to_str().unwrap(), args[0]]);
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("music.wav: no video track"));
    assert!(String::from_utf8_lossy(&run.stdout).contains("dis flow"));
}

#[test]
fn pwcnet_backend_runs_end_to_end_with_converted_weights() {
    // Random weights: this checks the plumbing (weights file, batching,
    // shapes, errors); the network itself is checked against PyTorch in
    // operators/tests/pwcnet_torch.rs.
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("random.safetensors");
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = mudar_operators::motion::PwcNet::new(&vs.root());
    vs.save(&weights).unwrap();
    let out = dir.path().to_str().unwrap();
    let run = mudar(&[
        "synth",
        "--out",
        out,
        "--duration",
        "3",
        "--seed",
        "5",
        "--style",
        "breaking",
        "--width",
        "160",
        "--height",
        "120",
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let video = dir.path().join("dance-0005-breaking.mp4");
    let args = ["motion", "--json", "--size", "96", "--batch", "5", "--weights", weights.to_str().unwrap()];
    let run = mudar(&[&args[..], &[video.to_str().unwrap(), "--device", "cpu"]].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let result: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(result["backend"], "pwcnet");
    assert_eq!(result["hoof"].as_array().unwrap().len(), 23);

    let png = |name: &str, shade: u8| {
        let path = dir.path().join(name);
        image::RgbImage::from_fn(70, 50, |x, y| image::Rgb([shade.wrapping_add((x * y) as u8); 3]))
            .save(&path)
            .unwrap();
        path
    };
    let (a, b, flo) = (png("a.png", 0), png("b.png", 9), dir.path().join("ab.flo"));
    let run = mudar(&[
        "flow",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        flo.to_str().unwrap(),
        "--backend",
        "pwcnet",
        "--weights",
        weights.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let flow = mudar_operators::motion::Flow::read_flo(std::fs::File::open(&flo).unwrap()).unwrap();
    assert_eq!((flow.width, flow.height), (70, 50));

    let run = mudar(&["flow", a.to_str().unwrap(), b.to_str().unwrap(), "--out", "x.flo", "--backend", "pwcnet"]);
    assert!(String::from_utf8_lossy(&run.stderr).contains("the pwcnet backend needs --weights"));
    let run =
        mudar(&["flow", a.to_str().unwrap(), b.to_str().unwrap(), "--out", "x.flo", "--weights", a.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("a.png: cannot read the weights"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run = mudar(&[&args[..], &[video.to_str().unwrap(), "--device", "cpu", "--half"]].concat());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--half needs a GPU"));
}
