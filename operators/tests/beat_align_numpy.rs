//! Both Beat Align Scores against NumPy ports of Bailando's and AIST++/FACT's own code
//! (`tests/numpy/beat_align.py`), on random beat sets, one-beat sets and the empty cases.

mod common;

use mudar_operators::metrics::{beat_align_motion_to_music, beat_align_music_to_motion};
use mudar_operators::synth::SplitMix64;

#[test]
fn beat_align_scores_match_their_reference_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(11);
    let mut beats = |n: usize, span: f64| -> Vec<f64> { (0..n).map(|_| rng.unit() * span).collect() };
    let mut cases = vec![
        ("no music beats", vec![], vec![1.0, 2.0], 0.05),
        ("no motion beats", vec![1.0, 2.0], vec![], 0.05),
        ("neither", vec![], vec![], 0.05),
        ("one each", vec![1.0], vec![1.03], 0.05),
    ];
    for k in 0..40 {
        let (music, motion) = (beats(1 + k % 17, 8.0), beats(1 + (k * 7) % 23, 8.0));
        cases.push(("random", music, motion, [0.02, 0.05, 0.1][k % 3]));
    }
    let cases: Vec<(String, Vec<f64>, Vec<f64>, f64)> =
        cases.into_iter().enumerate().map(|(i, (name, a, b, s))| (format!("{name} {i}"), a, b, s)).collect();
    let json: Vec<_> = cases
        .iter()
        .map(|(name, music, motion, sigma)| serde_json::json!({ "name": name, "music": music, "motion": motion, "sigma": sigma }))
        .collect();
    std::fs::write(dir.path().join("cases.json"), serde_json::to_string(&json).unwrap()).unwrap();
    common::run_reference("numpy/beat_align.py", dir.path());
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("scores.json")).unwrap()).unwrap();
    for (name, music, motion, sigma) in &cases {
        let ours =
            [beat_align_music_to_motion(music, motion, *sigma), beat_align_motion_to_music(motion, music, *sigma)];
        for (way, ours) in ours.into_iter().enumerate() {
            let reference = theirs[name][way].as_f64();
            match (ours, reference) {
                (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "{name} way {way}: {a} vs {b}"),
                (a, b) => assert_eq!(a, b, "{name} way {way}"),
            }
        }
    }
}
