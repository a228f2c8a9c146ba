//! `mudar train` end to end on synthetic dances with the `tiny` preset: the
//! clip cache from the extraction graph, metrics and checkpoints; a run
//! stopped after a checkpoint and resumed takes the same steps as an
//! uninterrupted one; two workers sharing the global batch train to the same
//! weights as one worker; `mudar extract --model` writes the trained model's
//! outputs into the store, equal to the model run on the training clips.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mudar_operators::model::{ModelConfig, MuDaR};
use mudar_pipeline::train::clips::read_cache;
use mudar_pipeline::train::trained::{TrainedModel, model_inputs};
use tch::Tensor;

fn mudar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mudar")).args(args).output().unwrap()
}

fn ok(output: Output) -> Output {
    assert!(output.status.success(), "mudar failed:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Three 4 s dances (two 2 s clips each) and a file that is not media.
fn dances(dir: &Path) -> PathBuf {
    let videos = dir.join("videos");
    let out = videos.to_str().unwrap();
    ok(mudar(&[
        "synth",
        "--out",
        out,
        "-n",
        "3",
        "--seed",
        "20",
        "--duration",
        "4",
        "--width",
        "160",
        "--height",
        "120",
    ]));
    std::fs::write(videos.join("notes.mp4"), b"not a video").unwrap();
    videos
}

fn train(videos: &Path, run: &Path, extra: &[&str]) -> Output {
    let args = [
        "train",
        videos.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--preset",
        "tiny",
        "--batch",
        "4",
        "--seed",
        "3",
        "--json",
    ];
    mudar(&[&args[..], extra].concat())
}

/// (step, loss, implicit, explicit, gradient norm) of each row of metrics.csv.
fn losses(run: &Path) -> Vec<(u64, f64, f64, f64, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("step,epoch,task,loss,implicit,explicit,triplet_accuracy,grad_norm,learning_rate,clips_per_s")
    );
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                f[5].parse().unwrap(),
                f[7].parse().unwrap(),
            )
        })
        .collect()
}

fn weights(run: &Path) -> BTreeMap<String, Tensor> {
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("checkpoints/latest.json")).unwrap()).unwrap();
    let file = run.join("checkpoints").join(info["tensors"].as_str().unwrap());
    Tensor::read_safetensors(file).unwrap().into_iter().filter(|(name, _)| name.starts_with("model.")).collect()
}

fn copy_cache(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("cache")).unwrap();
    for entry in std::fs::read_dir(from.join("cache")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join("cache").join(path.file_name().unwrap())).unwrap();
    }
}

#[test]
fn trains_stops_resumes_and_shares_batches() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dances(dir.path());

    // Uninterrupted: 6 steps (the epoch has 6 clips: one step of 4, then the next epoch).
    let whole = dir.path().join("whole");
    let out = ok(train(&videos, &whole, &["--steps", "6", "--checkpoint-every", "100"]));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["clips"], 6, "three 4 s dances give six 2 s clips: {summary}");
    assert_eq!(summary["steps"], 6);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notes.mp4"), "the broken input is reported: {stderr}");
    let reference = losses(&whole);
    assert_eq!(reference.iter().map(|r| r.0).collect::<Vec<_>>(), (0..6).collect::<Vec<_>>());
    assert!(reference.iter().all(|r| r.1.is_finite() && r.1 > 0.0), "{reference:?}");
    for entry in std::fs::read_dir(whole.join("cache")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name.ends_with(".safetensors") || name.ends_with(".json"), "{name}");
    }

    // The trained model evaluated on the dances (eval rhythm's plumbing, not its quality).
    let scores = ok(mudar(&[
        "eval",
        "rhythm",
        videos.to_str().unwrap(),
        "--model",
        whole.to_str().unwrap(),
        "--cache",
        dir.path().join("eval").to_str().unwrap(),
        "--json",
    ]));
    let scores: serde_json::Value = serde_json::from_slice(&scores.stdout).unwrap();
    assert_eq!(scores["clips"], 6, "{scores}");
    for way in ["model_with_audio", "model_without_audio", "visual_beats", "chance"] {
        let s = &scores[way];
        let onsets = s["onsets"].as_u64().unwrap();
        assert!(onsets > 0, "the dances have music onsets: {scores}");
        assert_eq!(onsets, scores["chance"]["onsets"].as_u64().unwrap());
        for measure in ["precision", "recall", "f_measure"] {
            let v = s[measure].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{way} {measure} = {v}");
        }
        assert!(s["matched"].as_u64().unwrap() <= onsets.min(s["predicted"].as_u64().unwrap()));
    }
    assert_eq!(scores["chance"]["predicted"], scores["chance"]["onsets"]);

    extracts_with_the_model(&videos, &whole, dir.path());

    // Stopped after step 3 (its checkpoint), then resumed to step 6: the same losses.
    let split = dir.path().join("split");
    copy_cache(&whole, &split);
    ok(train(&videos, &split, &["--steps", "3", "--checkpoint-every", "100"]));
    assert_eq!(losses(&split).len(), 3);
    ok(train(&videos, &split, &["--steps", "6", "--checkpoint-every", "100", "--resume"]));
    let resumed = losses(&split);
    assert_eq!(resumed.len(), 6);
    for (a, b) in reference.iter().zip(&resumed) {
        let scale = a.1.abs().max(1e-3);
        assert!((a.1 - b.1).abs() <= 1e-5 * scale, "step {}: loss {} uninterrupted, {} resumed", a.0, a.1, b.1);
    }
    let (w_whole, w_split) = (weights(&whole), weights(&split));
    assert_eq!(w_whole.keys().collect::<Vec<_>>(), w_split.keys().collect::<Vec<_>>());
    for (name, w) in &w_whole {
        let error = (w - &w_split[name]).abs().max().double_value(&[]);
        assert!(error < 1e-5, "{name}: resumed weights differ by {error}");
    }

    // Mixed precision's loss scaling (2^16, a power of two: exact in float32)
    // changes no loss and no weight; float16 autocast itself only acts on CUDA.
    let scaled = dir.path().join("scaled");
    copy_cache(&whole, &scaled);
    ok(train(&videos, &scaled, &["--steps", "6", "--checkpoint-every", "100", "--precision", "mixed"]));
    for (a, b) in reference.iter().zip(&losses(&scaled)) {
        assert!((a.1 - b.1).abs() <= 1e-6 * a.1.abs(), "step {}: loss {} in fp32, {} scaled", a.0, a.1, b.1);
    }
    for (name, w) in weights(&scaled) {
        let error = (&w - &w_whole[&name]).abs().max().double_value(&[]);
        assert!(error < 1e-6, "{name}: loss-scaled weights differ by {error}");
    }

    // Two workers, two clips each of the global batch of four: identical
    // weights on both; every step's loss and averaged gradient norm equal to
    // one worker's up to float rounding (the batch is summed in another
    // order). The weights drift further apart than the losses: Adam's steps
    // are about lr·sign(g), so rounding flips the steps of gradients near
    // zero, and the loss and gradient norm follow the weights (measured with
    // the frame-difference input: gradient norms equal to the last bit for
    // three steps, then 1.1e-4 and 7e-4 relative at steps 3 and 5, the
    // losses within 6e-5; with the rhythm-only audio input, losses within
    // 8e-7 for four steps, then 5.9e-6 and 1.3e-4; after 6 steps the
    // weights but the pyramid 6.9% of the distance trained apart, 0.5% with
    // the HOOF input; the pyramid 24%: its gradients, through the injector
    // only, are nearly all near zero).
    let parallel = dir.path().join("parallel");
    copy_cache(&whole, &parallel);
    let out = ok(train(&videos, &parallel, &["--steps", "6", "--checkpoint-every", "100", "-w", "2"]));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checksums = summary["weight_checksums"].as_array().unwrap();
    assert_eq!(checksums.len(), 2, "{summary}");
    assert_eq!(checksums[0][1], checksums[1][1], "the workers' weights differ: {summary}");
    let shared = losses(&parallel);
    for (a, b) in reference.iter().zip(&shared) {
        let loss_difference = (a.1 - b.1).abs() / a.1.abs().max(1e-3);
        let norm_difference = (a.4 - b.4).abs() / a.4;
        eprintln!(
            "step {}: relative differences, loss {loss_difference:.1e}, gradient norm {norm_difference:.1e}",
            a.0
        );
        // Until Adam has taken a few steps, only the summation order differs.
        let (loss_tolerance, norm_tolerance) = if a.0 < 3 { (1e-4, 1e-5) } else { (1e-3, 2e-3) };
        assert!(loss_difference <= loss_tolerance, "step {}: loss {} on one worker, {} on two", a.0, a.1, b.1);
        assert!(norm_difference <= norm_tolerance, "step {}: gradient norm {} on one worker, {} on two", a.0, a.4, b.4);
    }
    // The initial weights, as the trainer makes them from the seed.
    tch::manual_seed(3);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _model = MuDaR::new(&vs.root(), &ModelConfig::tiny()).unwrap();
    let initial: BTreeMap<String, Tensor> =
        vs.variables().into_iter().map(|(n, v)| (format!("model.{n}"), v)).collect();
    // Squared distances between the runs and trained, without and within the pyramid.
    let mut distances = [[0.0; 2]; 2];
    for (name, w) in weights(&parallel) {
        let part = &mut distances[usize::from(name.starts_with("model.visual.pyramid."))];
        part[0] += (&w - &w_whole[&name]).square().sum(tch::Kind::Double).double_value(&[]);
        part[1] += (&w_whole[&name] - &initial[&name]).square().sum(tch::Kind::Double).double_value(&[]);
    }
    for ([difference, trained], what, bound) in
        [(distances[0], "the model but the pyramid", 0.15), (distances[1], "the pyramid", 0.5)]
    {
        assert!(trained > 0.0, "training moved no weight of {what}");
        let relative = (difference / trained).sqrt();
        assert!(
            relative < bound,
            "two workers' weights of {what} differ from one worker's by {relative} of the distance trained"
        );
    }
}

/// `mudar extract --model RUN` on the training videos: every clip row has the
/// model's embeddings and every frame of a clip its rhythm probability and
/// decision, equal to the model run directly on the run's cached clips (the
/// same clips, cut by the training graph and read back from safetensors).
fn extracts_with_the_model(videos: &Path, run: &Path, dir: &Path) {
    let store = dir.join("store");
    let out = mudar(&[
        "extract",
        videos.to_str().unwrap(),
        "--out",
        store.to_str().unwrap(),
        "--model",
        run.to_str().unwrap(),
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["failed"], 1, "notes.mp4 is reported, the dances extracted: {summary}");
    assert_eq!(summary["config"]["video"]["width"], 96, "decoded at the model's frame size: {summary}");
    assert_eq!(summary["config"]["model"]["step"], 6, "{summary}");
    let tables = common::read_store(&store);
    let frames = tables["video_frames"].as_array().unwrap();
    let clip_rows = tables["clips"].as_array().unwrap();
    assert_eq!(clip_rows.len(), 6, "three 4 s dances, 2 s clips");

    let trained = TrainedModel::load(run, tch::Device::Cpu).unwrap();
    let cached = read_cache(&run.join("cache")).unwrap();
    assert_eq!(cached.len(), 6);
    let (frames_in, hoof, audio) = model_inputs(&cached.iter().collect::<Vec<_>>(), trained.config(), tch::Device::Cpu);
    let inference = trained.infer(&frames_in, &hoof, Some(&audio));
    let fps = trained.config().fps;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * b.abs().max(1.0);
    for (i, clip) in cached.iter().enumerate() {
        let row = clip_rows
            .iter()
            .find(|r| r["input"] == clip.meta.video.as_str() && r["clip"] == clip.meta.clip)
            .unwrap_or_else(|| panic!("no clips row for {:?}", clip.meta));
        for (column, expected) in [
            ("visual_embedding", &inference.visual_embedding),
            ("audio_embedding", inference.audio_embedding.as_ref().unwrap()),
        ] {
            let stored: Vec<f64> = row[column].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let expected = Vec::<f64>::try_from(expected.get(i as i64).to_kind(tch::Kind::Double)).unwrap();
            assert_eq!(stored.len(), expected.len());
            assert!(stored.iter().zip(&expected).all(|(a, b)| close(*a, *b)), "{column} of {:?}", clip.meta);
        }
        let probability =
            Vec::<f64>::try_from(inference.rhythm_probability.get(i as i64).to_kind(tch::Kind::Double)).unwrap();
        for (t, p) in probability.iter().enumerate() {
            let time_s = clip.meta.start_s + t as f64 / fps;
            let Some(frame) = frames.iter().find(|f| {
                f["input"] == clip.meta.video.as_str() && (f["time_s"].as_f64().unwrap() - time_s).abs() < 1e-3
            }) else {
                // The last frame of a video has no flow out of it, so no video_frames row.
                continue;
            };
            assert!(close(frame["rhythm_probability"].as_f64().unwrap(), *p), "frame at {time_s}: {frame}");
            let decided = inference.rhythm_frames[i].contains(&t);
            assert_eq!(frame["rhythm"].as_bool().unwrap(), decided, "frame at {time_s}");
        }
    }
}
