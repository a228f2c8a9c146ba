//! MuDaR learns visual rhythm (the model issue's learning check, on CPU with
//! `tiny`): trained on 24 synthetic dances, evaluated on four held-out ones
//! (other seeds, so other tempi, key poses, backdrops and music), its visual
//! rhythm finds the music onsets clearly better than the model-free visual
//! beats, chance and calling every frame, with the music and (by a smaller
//! margin) without it; its embeddings do not collapse and put a clip's own
//! music nearer than other music, and than itself shifted, far more often
//! than chance. The BCE ablation is trained beside it on the same clips: at
//! p ≥ 0.5 (Table 1's protocol) the focal model is the more precise. The
//! numbers are printed for the README.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn mudar(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_mudar")).args(args).output().unwrap();
    assert!(output.status.success(), "mudar {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn synth(out: &Path, count: &str, seed: &str) {
    let out = out.to_str().unwrap();
    let size = ["--width", "160", "--height", "120"];
    mudar(&[&["synth", "--out", out, "-n", count, "--seed", seed, "--duration", "8"][..], &size[..]].concat());
}

/// Trains 360 steps (30 epochs of the 96 clips) with `head` and scores the
/// held-out dances, at the thresholds training fitted and at p ≥ 0.5.
fn train_and_evaluate(dances: &Path, held_out: &Path, run: &Path, head: &str, cache: &Path) -> (Value, Value) {
    let run_dir = run.to_str().unwrap();
    let train = [
        "train",
        dances.to_str().unwrap(),
        "--out",
        run_dir,
        "--preset",
        "tiny",
        "--epochs",
        "30",
        "--head",
        head,
        "--checkpoint-every",
        "1000",
        "--json",
    ];
    mudar(&train);
    let eval = ["eval", "rhythm", held_out.to_str().unwrap(), "--model", run_dir, "--cache", cache.to_str().unwrap()];
    let scores = |extra: &[&str]| -> Value {
        let out = mudar(&[&eval[..], &["--json"], extra].concat());
        let scores = serde_json::from_slice(&out.stdout).unwrap();
        eprintln!("{head} {extra:?}: {}", serde_json::to_string_pretty(&scores).unwrap());
        scores
    };
    (scores(&[]), scores(&["--threshold", "0.5"]))
}

/// `what` (precision, f_measure, matched...) of one way of finding visual rhythm.
fn score(scores: &Value, way: &str, what: &str) -> f64 {
    scores[way][what].as_f64().unwrap()
}

fn f(scores: &Value, way: &str) -> f64 {
    score(scores, way, "f_measure")
}

#[test]
fn learns_visual_rhythm_of_held_out_dances() {
    let dir = tempfile::tempdir().unwrap();
    let (dances, held_out) = (dir.path().join("dances"), dir.path().join("held-out"));
    synth(&dances, "24", "0");
    synth(&held_out, "4", "100");
    let cache = dir.path().join("held-out-cache");

    let (focal, focal_half) = train_and_evaluate(&dances, &held_out, &dir.path().join("focal"), "focal", &cache);
    assert_eq!(focal["clips"], 16, "four 8 s dances, 2 s clips: {focal}");
    let baseline = ["visual_beats", "chance", "every_frame"].iter().map(|way| f(&focal, way)).fold(0.0, f64::max);
    // Without the music the held-out dances' tempi, unlike any seen in
    // training, cost the frames-only estimate more: runs measured F 0.60-0.73
    // against the visual beats' 0.58, so above the baselines is what holds.
    for (way, margin) in [("model_with_audio", 0.1), ("model_without_audio", 0.0)] {
        assert!(
            f(&focal, way) > baseline + margin,
            "{way}: F {} is not {margin} above the best model-free baseline {baseline}",
            f(&focal, way)
        );
    }
    let triplets = &focal["triplets"];
    for modality in ["visual_cosine", "audio_cosine"] {
        let cosine = triplets[modality].as_f64().unwrap();
        assert!(cosine < 0.9, "{modality} {cosine}: the embeddings of different videos collapse");
    }
    // Held out, a clip's own music is nearer its dance than other music
    // (AVC) and than itself shifted off the beat (AVTS): runs measured
    // 0.92-0.95 and 0.90-0.93 (with the audio encoder reading every audio
    // column, 0.80-0.91 and 0.79-0.88; with HOOF as the visual input,
    // 0.62-0.64 and 0.54-0.61).
    for (task, least) in [("avc", 0.85), ("avts", 0.85)] {
        let accuracy = triplets[task].as_f64().unwrap();
        assert!(accuracy > least, "{task} triplet accuracy {accuracy} held out, not above {least}");
    }

    // The ablation of Table 1 on the same clips (the clip cache is reused).
    let bce_run = dir.path().join("bce");
    std::fs::create_dir_all(&bce_run).unwrap();
    let focal_cache = dir.path().join("focal").join("cache");
    std::fs::create_dir_all(bce_run.join("cache")).unwrap();
    for entry in std::fs::read_dir(&focal_cache).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, bce_run.join("cache").join(path.file_name().unwrap())).unwrap();
    }
    let (bce, bce_half) = train_and_evaluate(&dances, &held_out, &bce_run, "bce", &cache);
    for (rule, focal, bce) in [("fitted thresholds", &focal, &bce), ("p ≥ 0.5", &focal_half, &bce_half)] {
        for way in ["model_with_audio", "model_without_audio"] {
            eprintln!(
                "{rule}, {way}: precision {:.3} focal, {:.3} BCE; recall {:.3} focal, {:.3} BCE",
                score(focal, way, "precision"),
                score(bce, way, "precision"),
                score(focal, way, "recall"),
                score(bce, way, "recall")
            );
        }
    }
    // Table 1's comparison, at a binary classifier's own decision (p ≥ 0.5):
    // focal loss's α = 0.25 and its down-weighting of easy frames make the
    // full model call fewer frames, more precisely, than plain BCE. Over all
    // its decisions, with the music and without (the gate trains it for both).
    let precision = |scores: &Value| {
        let sum =
            |what| ["model_with_audio", "model_without_audio"].iter().map(|way| score(scores, way, what)).sum::<f64>();
        sum("matched") / sum("predicted")
    };
    let (focal_precision, bce_precision) = (precision(&focal_half), precision(&bce_half));
    assert!(
        focal_precision > bce_precision,
        "at p ≥ 0.5 the focal model (precision {focal_precision}) is not more precise than the BCE ablation ({bce_precision})"
    );
}
