//! Music rhythm, side by side with librosa 0.11, single thread, in one run:
//! STFT, mel (dB), onset envelope, onset detection, beat tracking, tempogram
//! and the full set, each from raw 16 kHz samples, on 60 s and 1 h of audio.
//!
//! `cargo bench -p mudar-benches --bench rhythm` (after `. scripts/env.sh`;
//! librosa from `scripts/setup.sh --test`). Under `cargo test` it runs a
//! few seconds of audio once, as a smoke test.

use std::hint::black_box;
use std::path::Path;

use mudar_benches::best_of;
use mudar_operators::rhythm::{self, DbParams, OnsetParams, RhythmParams, SpectrogramParams, onset, stft};
use mudar_operators::synth::{Dance, Style, SynthConfig};

const SR: u32 = 16_000;

fn ours(y: &[f32], repeats: usize) -> Vec<(&'static str, f64)> {
    let spec = SpectrogramParams::default();
    let params = RhythmParams::default();
    let peaks = rhythm::PeakPickParams::onset_detect_defaults(SR, 512);
    vec![
        ("stft", best_of(repeats, || drop(black_box(stft::power_spectrogram(y, 2048, 512))))),
        ("mel", best_of(repeats, || drop(black_box(onset::mel_db(y, &spec, &DbParams::default()))))),
        (
            "onset_envelope",
            best_of(repeats, || drop(black_box(rhythm::onset_strength(y, &spec, &OnsetParams::default())))),
        ),
        (
            "onset_detect",
            best_of(repeats, || {
                let env = rhythm::onset_strength(y, &spec, &OnsetParams::default()).unwrap();
                black_box(rhythm::onset_detect_from_envelope(&env, &peaks, false));
            }),
        ),
        ("beat_track", best_of(repeats, || drop(black_box(rhythm::analyze(y, &params))))),
        (
            "tempogram",
            best_of(repeats, || {
                let env = rhythm::onset_strength(y, &spec, &OnsetParams::default()).unwrap();
                black_box(rhythm::tempogram(&env, 384));
            }),
        ),
        (
            "full",
            best_of(repeats, || {
                let r = rhythm::analyze(y, &params).unwrap();
                black_box(rhythm::tempogram(&r.onset_envelope, 384));
            }),
        ),
    ]
}

fn librosa(y: &[f32], dir: &Path, repeats: usize) -> Option<serde_json::Value> {
    let path = dir.join("audio.f32");
    std::fs::write(&path, y.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).ok()?;
    let (sr, repeats) = (SR.to_string(), repeats.to_string());
    mudar_benches::python_peer("librosa_rhythm.py", &[path.as_os_str(), sr.as_ref(), repeats.as_ref()])
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let lengths: &[(f64, usize)] = if benching { &[(60.0, 5), (3600.0, 1)] } else { &[(5.0, 1)] };
    let dir = tempfile::tempdir().unwrap();
    println!("| audio | stage | mudar (s) | librosa 0.11 (s) | speed-up | mudar / own STFT |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for &(seconds, repeats) in lengths {
        let config = SynthConfig { style: Style::Breaking, duration_s: seconds, sample_rate: SR, ..Default::default() };
        let y = Dance::new(config).unwrap().render_audio();
        let ours = ours(&y, repeats);
        let theirs = if benching { librosa(&y, dir.path(), repeats) } else { None };
        let own_stft = ours[0].1;
        for (stage, t) in &ours {
            let peer = theirs.as_ref().and_then(|v| v[*stage].as_f64());
            println!(
                "| {seconds} s | {stage} | {t:.3} | {} | {} | {:.2}x |",
                peer.map_or("-".into(), |p| format!("{p:.3}")),
                peer.map_or("-".into(), |p| format!("{:.1}x", p / t)),
                t / own_stft
            );
        }
    }
}
