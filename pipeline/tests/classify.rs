//! Dance classification end to end (paper Sec. 4.2): a tiny MuDaR trained on other dances, a
//! classifier trained on six synthetic dances of each of the five `mudar synth` styles (labels
//! from their folders), evaluated on three new dances of each style — other seeds, so other
//! tempi, dancers and music — from a labels CSV. Accuracy far above chance (1 in 5), with the
//! rhythm and without it (Table 2's ablation, reported); `predict` agrees with `eval`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn mudar(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_mudar")).args(args).output().unwrap();
    assert!(output.status.success(), "mudar {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

const STYLES: [&str; 5] = ["hiphop", "house", "waltz", "ballet", "breaking"];

/// `count` dances of each style into `dir/<style>/`, seeds from `seed` on.
fn dances(dir: &Path, count: usize, seed: u64) {
    for (k, style) in STYLES.iter().enumerate() {
        let out = dir.join(style);
        let first = (seed + 10 * k as u64).to_string();
        let n = count.to_string();
        let size = ["--width", "160", "--height", "120", "--duration", "8"];
        mudar(
            &[&["synth", "--out", out.to_str().unwrap(), "--style", style, "--seed", &first, "-n", &n][..], &size]
                .concat(),
        );
    }
}

#[test]
fn a_classifier_names_the_style_of_dances_it_never_saw() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let size = ["--width", "160", "--height", "120", "--duration", "8"];
    mudar(&[&["synth", "--out", &path("backbone"), "--seed", "100", "-n", "8"][..], &size].concat());
    mudar(&["train", &path("backbone"), "--out", &path("run"), "--preset", "tiny", "--epochs", "3"]);
    dances(&dir.path().join("train"), 6, 200);
    dances(&dir.path().join("held-out"), 3, 500);

    let store = path("store");
    let train = |out: &str, extra: &[&str]| -> Value {
        let args =
            ["classify", "train", &path("train"), "--model", &path("run"), "--out", out, "--store", &store, "--json"];
        serde_json::from_slice(&mudar(&[&args[..], extra].concat()).stdout).unwrap()
    };
    let trained = train(&path("cls"), &[]);
    assert_eq!(trained["info"]["split"]["train"].as_array().unwrap().len(), 24, "{}", trained["info"]["split"]);

    // The held-out dances' labels as a CSV, paths relative to it.
    let mut csv = String::from("path,label\n");
    for style in STYLES {
        for entry in std::fs::read_dir(dir.path().join("held-out").join(style)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".mp4") {
                csv += &format!("held-out/{style}/{name},{style}\n");
            }
        }
    }
    std::fs::write(dir.path().join("labels.csv"), csv).unwrap();
    let eval = |classifier: &str| -> Value {
        let args = [
            "classify",
            "eval",
            &path("held-out"),
            "--labels",
            &path("labels.csv"),
            "--classifier",
            classifier,
            "--store",
            &store,
            "--json",
        ];
        serde_json::from_slice(&mudar(&args).stdout).unwrap()
    };
    let with_rhythm = eval(&path("cls"));
    eprintln!("with rhythm: {with_rhythm}");
    assert_eq!(with_rhythm["videos"].as_u64(), Some(15));
    let confusion: Vec<Vec<u64>> = serde_json::from_value(with_rhythm["confusion"].clone()).unwrap();
    assert_eq!(confusion.iter().flatten().sum::<u64>(), 15);
    let accuracy = with_rhythm["accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.6, "accuracy {accuracy} on held-out dances (chance 0.2)");

    // Table 2's ablation: embeddings only, on the same split and store.
    train(&path("cls-plain"), &["--without-rhythm"]);
    let without = eval(&path("cls-plain"));
    eprintln!("without rhythm: {without}");
    assert_eq!(without["videos"].as_u64(), Some(15));

    // `predict` names the classes `eval` scored: the same accuracy, counted here from the
    // folders the dances are in.
    let args = ["classify", "predict", &path("held-out"), "--classifier", &path("cls"), "--store", &store, "--json"];
    let predictions: Vec<Value> = serde_json::from_slice(&mudar(&args).stdout).unwrap();
    let mut right = BTreeMap::new();
    for p in &predictions {
        let folder =
            Path::new(p["input"].as_str().unwrap()).parent().unwrap().file_name().unwrap().to_str().unwrap().to_owned();
        *right.entry(folder == p["label"].as_str().unwrap()).or_insert(0) += 1;
        assert!((0.0..=1.0).contains(&p["probability"].as_f64().unwrap()));
    }
    let counted = right.get(&true).copied().unwrap_or(0) as f64 / predictions.len() as f64;
    assert_eq!(predictions.len(), 15);
    assert!((counted - accuracy).abs() < 1e-12, "predict {counted} vs eval {accuracy}");
}
