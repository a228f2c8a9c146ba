//! Weight-free CPU flow beside OpenCV's `DISOpticalFlow` (medium and fast
//! presets, the `opencv-python-headless` wheel), in one run: average
//! end-point error and time per 256×256 pair, each side on one and on two
//! threads, on synthetic motions of a value-noise texture and of a rendered
//! dancer frame (translations, rotation, zoom, shear, smooth random fields,
//! several magnitudes).
//!
//! `cargo bench -p mudar-benches --bench flow` (after `. scripts/env.sh` and
//! `.venv/bin/pip install opencv-python-headless`). Under `cargo test` it
//! runs one small pair, as a smoke test.

use std::path::Path;
use std::time::Instant;

use mudar_operators::motion::warp::{affine_pair, smooth_field_pair, value_noise};
use mudar_operators::motion::{DisParams, Flow, Gray, average_epe, dis_flow};
use mudar_operators::synth::{Dance, Style, SynthConfig};

/// Rounds to 8-bit grey, as both sides get it.
fn quantize(g: &Gray) -> Gray {
    Gray::new(g.width, g.height, g.data.iter().map(|v| v.round().clamp(0.0, 255.0)).collect())
}

fn pairs(size: usize) -> Vec<(String, Gray, Gray, Flow)> {
    let noise = value_noise(size, size, 7);
    let dance =
        Dance::new(SynthConfig { style: Style::House, width: size as u32, height: size as u32, ..Default::default() })
            .unwrap();
    let dancer = Gray::from_rgb(&dance.render_frame(30), size, size);
    let (c, s) = (3f32.to_radians().cos(), 3f32.to_radians().sin());
    let id = [[1.0, 0.0], [0.0, 1.0]];
    let mut out = Vec::new();
    for (texture, i0) in [("noise", &noise), ("dancer", &dancer)] {
        let motions: Vec<(&str, Gray, Flow)> = vec![
            ("shift 1.5 px", affine_pair(i0, id, (1.5, -0.7))),
            ("shift 6 px", affine_pair(i0, id, (6.3, 4.1))),
            ("shift 12 px", affine_pair(i0, id, (-11.2, 5.6))),
            ("rotate 3 deg", affine_pair(i0, [[c, -s], [s, c]], (0.0, 0.0))),
            ("zoom 5%", affine_pair(i0, [[1.05, 0.0], [0.0, 1.05]], (0.0, 0.0))),
            ("shear", affine_pair(i0, [[1.0, 0.06], [0.03, 1.0]], (1.0, 0.0))),
            ("smooth field 2 px", smooth_field_pair(i0, 2.0, 11)),
            ("smooth field 5 px", smooth_field_pair(i0, 5.0, 13)),
        ]
        .into_iter()
        .map(|(name, (i1, flow))| (name, i1, flow))
        .collect();
        for (motion, i1, flow) in motions {
            out.push((format!("{texture}: {motion}"), quantize(i0), quantize(&i1), flow));
        }
    }
    out
}

/// OpenCV's results on `pairs` with `threads` threads, per pair and preset.
fn opencv(dir: &Path, pairs: &[(String, Gray, Gray, Flow)], threads: &[&str]) -> Option<Vec<serde_json::Value>> {
    let mut listing = Vec::new();
    for (k, (_, i0, i1, flow)) in pairs.iter().enumerate() {
        let name = format!("pair{k}");
        std::fs::write(dir.join(format!("{name}.i0")), i0.data.iter().map(|&v| v as u8).collect::<Vec<u8>>()).ok()?;
        std::fs::write(dir.join(format!("{name}.i1")), i1.data.iter().map(|&v| v as u8).collect::<Vec<u8>>()).ok()?;
        flow.write_flo(std::fs::File::create(dir.join(format!("{name}.flo"))).ok()?).ok()?;
        listing.push(serde_json::json!({ "name": name, "width": i0.width, "height": i0.height }));
    }
    std::fs::write(dir.join("pairs.json"), serde_json::to_string(&listing).ok()?).ok()?;
    // `pip install opencv-python-headless` into .venv provides the peer.
    threads.iter().map(|t| mudar_benches::python_peer("opencv_dis.py", &[dir.as_os_str(), t.as_ref()])).collect()
}

/// Best of 5 times of our flow on one pair, in milliseconds.
fn time_ms(i0: &Gray, i1: &Gray, params: &DisParams) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(dis_flow(i0, i1, params));
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let size = if benching { 256 } else { 64 };
    let pairs = pairs(size);
    let pairs = if benching { pairs } else { pairs.into_iter().take(1).collect() };
    let dir = tempfile::tempdir().unwrap();
    let theirs = if benching { opencv(dir.path(), &pairs, &["1", "2"]) } else { None };
    let one = DisParams { threads: 1, ..Default::default() };
    let two = DisParams { threads: 2, ..one };
    println!(
        "| {size}x{size} pair | mudar DIS EPE | OpenCV medium EPE | OpenCV fast EPE | mudar ms, 1 thread | mudar ms, 2 threads | OpenCV medium ms, 1 thread | OpenCV medium ms, 2 threads | OpenCV fast ms, 1 thread |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let (mut sums, mut n) = ([0f64; 8], 0.0);
    for (k, (name, i0, i1, truth)) in pairs.iter().enumerate() {
        let flow = dis_flow(i0, i1, &one);
        assert!(flow == dis_flow(i0, i1, &two), "{name}: the flow depends on the number of threads");
        let epe = average_epe(&flow, truth) as f64;
        let peer = |run: usize, preset: &str, key: &str| {
            theirs.as_ref().and_then(|runs| runs[run][format!("pair{k}")][preset][key].as_f64())
        };
        let cells = [
            Some(epe),
            peer(0, "medium", "epe"),
            peer(0, "fast", "epe"),
            Some(time_ms(i0, i1, &one)),
            Some(time_ms(i0, i1, &two)),
            peer(0, "medium", "ms"),
            peer(1, "medium", "ms"),
            peer(0, "fast", "ms"),
        ];
        let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
        println!("| {name} | {} |", cells.iter().map(|&c| show(c)).collect::<Vec<_>>().join(" | "));
        cells.iter().enumerate().for_each(|(i, c)| sums[i] += c.unwrap_or(f64::NAN));
        n += 1.0;
    }
    println!("| mean | {} |", sums.iter().map(|s| format!("{:.3}", s / n)).collect::<Vec<_>>().join(" | "));
}
