//! HOOF against an independent NumPy implementation (`tests/numpy/hoof.py`,
//! run with the project's Python), to 1e-5, on random and structured flows.

mod common;

use mudar_operators::motion::{Flow, HoofParams, hoof};
use mudar_operators::synth::SplitMix64;

fn random_flow(width: usize, height: usize, scale: f32, seed: u64) -> Flow {
    let mut rng = SplitMix64::new(seed);
    Flow { width, height, uv: (0..2 * width * height).map(|_| scale * rng.signed()).collect() }
}

/// A rotating field: every direction present, magnitudes growing outwards.
fn vortex(width: usize, height: usize) -> Flow {
    let mut flow = Flow::zeros(width, height);
    for y in 0..height {
        for x in 0..width {
            let (dx, dy) = (x as f32 - width as f32 / 2.0, y as f32 - height as f32 / 2.0);
            let i = 2 * (y * width + x);
            (flow.uv[i], flow.uv[i + 1]) = (-dy * 0.1, dx * 0.1);
        }
    }
    flow
}

#[test]
fn hoof_matches_numpy() {
    let dir = tempfile::tempdir().unwrap();
    let mut flows = vec![
        ("random", random_flow(64, 48, 5.0, 1)),
        ("small", random_flow(7, 5, 0.3, 2)),
        ("vortex", vortex(33, 31)),
        ("still", Flow::zeros(16, 16)),
        ("axis", Flow { width: 4, height: 1, uv: vec![1.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.0, -1.0] }),
    ];
    flows.push(("large", random_flow(256, 256, 20.0, 3)));
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for (name, flow) in &flows {
        for (bins, symmetric, min_magnitude) in [(30, false, 0.0), (8, true, 0.0), (12, false, 0.5), (30, true, 0.1)] {
            let case = format!("{name}-{bins}-{symmetric}-{min_magnitude}");
            flow.write_flo(std::fs::File::create(dir.path().join(format!("{case}.flo"))).unwrap()).unwrap();
            cases.push(serde_json::json!({ "name": case, "bins": bins, "symmetric": symmetric, "min_magnitude": min_magnitude }));
            expected.push((case, hoof(flow, &HoofParams { bins, symmetric, min_magnitude })));
        }
    }
    std::fs::write(dir.path().join("cases.json"), serde_json::to_string(&cases).unwrap()).unwrap();
    common::run_reference("numpy/hoof.py", dir.path());
    for (case, ours) in expected {
        let theirs = common::read_f32(&dir.path().join(format!("{case}.hoof.f32")));
        assert_eq!(ours.len(), theirs.len(), "{case}");
        for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!((a - b).abs() <= 1e-5, "{case} bin {k}: {a} vs numpy {b}\nours {ours:?}\nnumpy {theirs:?}");
        }
    }
}
