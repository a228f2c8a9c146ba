//! Music-to-dance retrieval end to end (paper Sec. 4.3): a tiny model trained
//! on some synthetic dances, a store extracted with it from others — four songs
//! each danced by three dancers (`mudar synth --music`), four dances to music
//! of their own as distractors — and the songs as queries. Checked: the
//! evaluation's figures against scikit-learn on the rankings `mudar retrieve`
//! lists (tests/python/check_retrieval.py), the docs' DuckDB embedding query
//! against NumPy, and retrieval by rhythm far above chance on dancers, seeds and
//! tempi the model never saw.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn mudar(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_mudar")).args(args).output().unwrap();
    assert!(output.status.success(), "mudar {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

const STYLES: [&str; 4] = ["hiphop", "house", "waltz", "breaking"];

/// Four songs (seeds 0–3, wav) and their dances, three each (seeds 10–21), plus four dances to
/// their own music (seeds 40–43); the queries CSV.
fn make_data(dir: &Path) -> std::path::PathBuf {
    let size = ["--width", "160", "--height", "120", "--duration", "12"];
    let out = |sub: &str| dir.join(sub).to_str().unwrap().to_owned();
    let mut csv = String::from("music,dance\n");
    for (song, style) in STYLES.iter().enumerate() {
        let seed = song.to_string();
        mudar(&[
            "synth",
            "--out",
            &out("songs"),
            "--seed",
            &seed,
            "--style",
            style,
            "--format",
            "wav",
            "--duration",
            "12",
        ]);
        let dancers = (10 + 3 * song).to_string();
        mudar(
            &[
                &["synth", "--out", &out("dances"), "--seed", &dancers, "-n", "3", "--music", &seed, "--style", style]
                    [..],
                &size,
            ]
            .concat(),
        );
        for dancer in 10 + 3 * song..13 + 3 * song {
            csv += &format!("songs/dance-{song:04}-{style}.wav,dances/dance-{dancer:04}-{style}-m{song:04}.mp4\n");
        }
    }
    mudar(&[&["synth", "--out", &out("dances"), "--seed", "40", "-n", "4"][..], &size].concat());
    let queries = dir.join("queries.csv");
    std::fs::write(&queries, csv).unwrap();
    queries
}

#[test]
fn retrieval_finds_the_dances_to_each_song() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let queries = make_data(dir.path());
    let size = ["--width", "160", "--height", "120", "--duration", "8"];
    mudar(&[&["synth", "--out", &path("train"), "--seed", "100", "-n", "8"][..], &size].concat());
    mudar(&["train", &path("train"), "--out", &path("run"), "--preset", "tiny", "--epochs", "3"]);
    mudar(&["extract", &path("dances"), "--out", &path("store"), "--model", &path("run")]);

    let common = ["--store", &path("store"), "--model", &path("run")];
    let eval = mudar(&[&["eval", "retrieval", "--queries", queries.to_str().unwrap(), "--json"][..], &common].concat());
    let report: Value = serde_json::from_slice(&eval.stdout).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(
        (report["queries"].as_u64(), report["candidates"].as_u64(), report["relevant"].as_u64()),
        (Some(4), Some(16), Some(12))
    );
    // Three relevant dances among sixteen: a random ranking's mAP is about 0.3.
    let map = |way: &str| report[way]["map"].as_f64().unwrap();
    assert!(map("rhythm_only") > 0.6, "rhythm-only mAP {}", map("rhythm_only"));
    assert!(
        map("with_rhythm") > map("without_rhythm"),
        "rhythm helps: {} vs {}",
        map("with_rhythm"),
        map("without_rhythm")
    );

    // The evaluation's figures, recomputed from the full rankings `mudar retrieve` lists.
    let rankings = mudar(&[&["retrieve", &path("songs"), "-k", "100", "--json"][..], &common].concat());
    std::fs::write(dir.path().join("rankings.json"), &rankings.stdout).unwrap();
    std::fs::write(dir.path().join("eval.json"), &eval.stdout).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_retrieval.py");
    let check = Command::new(common::python())
        .args([script.to_str().unwrap(), &path("rankings.json"), &path("eval.json"), &path("store")])
        .output()
        .unwrap();
    assert!(check.status.success(), "check_retrieval.py:\n{}", String::from_utf8_lossy(&check.stderr));

    // A clear error for a model the store was not extracted with, and for music too short.
    let wrong = Command::new(env!("CARGO_BIN_EXE_mudar"))
        .args(["retrieve", &path("songs"), "--store", &path("songs"), "--model", &path("run")])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("no dance with a model's embeddings"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    mudar(&["synth", "--out", &path("short"), "--format", "wav", "--duration", "1"]);
    let short = Command::new(env!("CARGO_BIN_EXE_mudar"))
        .args([&["retrieve", &path("short")][..], &common].concat())
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("shorter than the model's 2.0 s clip"),
        "{}",
        String::from_utf8_lossy(&short.stderr)
    );
}
