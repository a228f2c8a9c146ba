//! Retrieval's average precision against scikit-learn's `average_precision_score`
//! (`tests/sklearn/average_precision.py`, run with the project's Python), on random
//! rankings with many ties, negative scores and few relevant candidates.

mod common;

use mudar_operators::metrics::average_precision;
use mudar_operators::synth::SplitMix64;

#[test]
fn average_precision_matches_scikit_learn() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(7);
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for case in 0..60 {
        let n = 1 + (rng.unit() * 200.0) as usize;
        // Coarse scores make ties common; half the cases are raw cosines in [-1, 1].
        let levels = [3.0, 10.0, 1000.0][case % 3];
        let scores: Vec<f64> = (0..n).map(|_| (rng.range(-1.0, 1.0) * levels).round() / levels).collect();
        let share = rng.range(0.02, 0.5);
        let mut relevant: Vec<bool> = (0..n).map(|_| rng.unit() < share).collect();
        relevant[(rng.unit() * n as f64) as usize % n] = true;
        let name = format!("case{case}");
        ours.push((name.clone(), average_precision(&scores, &relevant).unwrap()));
        cases.push(serde_json::json!({ "name": name, "scores": scores, "relevant": relevant }));
    }
    std::fs::write(dir.path().join("cases.json"), serde_json::to_string(&cases).unwrap()).unwrap();
    common::run_reference("sklearn/average_precision.py", dir.path());
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("ap.json")).unwrap()).unwrap();
    for (name, ap) in ours {
        let reference = theirs[&name].as_f64().unwrap();
        assert!((ap - reference).abs() < 1e-12, "{name}: {ap} vs scikit-learn {reference}");
    }
}
