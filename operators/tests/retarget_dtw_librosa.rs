//! DTW on rhythm points (paper Eq. 22–23) against `librosa.sequence.dtw` on the same cost
//! matrices (`tests/librosa/dtw.py`): accumulated costs and warping paths, ties included.

mod common;

use mudar_operators::retarget::{dtw, rhythm_distances};
use mudar_operators::synth::SplitMix64;

#[test]
fn dtw_matches_librosa() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(5);
    let mut cases = Vec::new();
    for k in 0..30 {
        let (n, m) = (1 + (rng.unit() * 25.0) as usize, 1 + (rng.unit() * 25.0) as usize);
        // Rhythm points in seconds; on a frame grid every third case, so distances tie often.
        let mut points = |count: usize| -> Vec<f64> {
            let mut p: Vec<f64> = (0..count).map(|_| rng.unit() * 10.0).collect();
            if k % 3 == 0 {
                p.iter_mut().for_each(|x| *x = (*x * 8.0).round() / 8.0);
            }
            p.sort_by(f64::total_cmp);
            p
        };
        let (visual, music) = (points(n), points(m));
        cases.push((format!("case{k}"), n, m, rhythm_distances(&visual, &music)));
    }
    // Equal distances everywhere: every step ties.
    cases.push(("flat".into(), 4, 5, vec![1.0; 20]));
    let json: Vec<_> = cases
        .iter()
        .map(|(name, n, m, cost)| serde_json::json!({ "name": name, "n": n, "m": m, "cost": cost }))
        .collect();
    std::fs::write(dir.path().join("cases.json"), serde_json::to_string(&json).unwrap()).unwrap();
    common::run_reference("librosa/dtw.py", dir.path());
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("dtw.json")).unwrap()).unwrap();
    for (name, n, m, cost) in &cases {
        let ours = dtw(cost, *n, *m).unwrap();
        let accumulated: Vec<f64> = serde_json::from_value(theirs[name]["accumulated"].clone()).unwrap();
        for (a, b) in ours.cost.iter().zip(&accumulated) {
            assert!((a - b).abs() < 1e-9, "{name}: accumulated {a} vs librosa {b}");
        }
        let path: Vec<(usize, usize)> = serde_json::from_value(theirs[name]["path"].clone()).unwrap();
        assert_eq!(ours.path, path, "{name}: path");
    }
}
