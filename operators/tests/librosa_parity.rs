//! Our music rhythm against librosa 0.11 itself, on signals made here: click
//! tracks at many tempi, synthetic drum patterns, chirps, tone bursts,
//! vibrato, noise, silence, very short and odd lengths, and real CC0 drum
//! loops from Debian's sonic-pi-samples. Both sides get the same samples.
//!
//! The reference runs `operators/tests/librosa/reference.py` with the
//! project's Python (`.venv`, where `scripts/test.sh` installs librosa==0.11.0;
//! override with MUDAR_PYTHON). Tolerances are the spec's §12.

mod common;

use std::f64::consts::TAU;
use std::path::Path;

use mudar_operators::rhythm::{
    self, Aggregate, DbParams, MelFilterbank, OnsetParams, RhythmParams, SpectrogramParams, onset, stft,
};
use mudar_operators::synth::{Dance, SplitMix64, Style, SynthConfig};

struct Case {
    name: String,
    sr: u32,
    /// `None`: a sonic-pi loop the reference loads and resamples.
    samples: Option<Vec<f32>>,
    loop_path: Option<String>,
    variants: bool,
}

fn case(name: &str, sr: u32, samples: Vec<f32>) -> Case {
    Case { name: name.into(), sr, samples: Some(samples), loop_path: None, variants: false }
}

fn clicks(bpm: f64, seconds: f64, sr: u32) -> Vec<f32> {
    let n = (seconds * sr as f64) as usize;
    let mut y = vec![0f32; n];
    let period = 60.0 / bpm;
    let mut t = 0.25;
    while t < seconds {
        let start = (t * sr as f64) as usize;
        for i in 0..(0.01 * sr as f64) as usize {
            if start + i < n {
                let s = i as f64 / sr as f64;
                y[start + i] += (0.9 * (TAU * 1000.0 * s).sin() * (-s / 0.003).exp()) as f32;
            }
        }
        t += period;
    }
    y
}

fn drums(style: Style, bpm: f64, swing: f64, seconds: f64, sr: u32, seed: u64) -> Vec<f32> {
    let config = SynthConfig {
        style,
        tempo_bpm: Some(bpm),
        swing,
        duration_s: seconds,
        sample_rate: sr,
        seed,
        ..Default::default()
    };
    Dance::new(config).unwrap().render_audio()
}

fn tone(seconds: f64, sr: u32, f: impl Fn(f64) -> f64) -> Vec<f32> {
    (0..(seconds * sr as f64) as usize).map(|i| f(i as f64 / sr as f64) as f32).collect()
}

fn cases() -> Vec<Case> {
    let sr = 16_000;
    let mut cases = Vec::new();
    for bpm in [60.0, 72.0, 85.0, 100.0, 113.0, 128.0, 140.0, 155.0, 172.0, 200.0] {
        cases.push(case(&format!("clicks{bpm}"), sr, clicks(bpm, 10.0, sr)));
    }
    for (i, style) in Style::ALL.into_iter().enumerate() {
        for (j, bpm) in [78.0 + 9.0 * i as f64, 118.0 + 13.0 * i as f64].into_iter().enumerate() {
            let swing = if j == 1 { 1.0 / 3.0 } else { 0.0 };
            cases.push(case(
                &format!("drums-{style}-{bpm}"),
                sr,
                drums(style, bpm, swing, 8.0 + 2.0 * j as f64, sr, i as u64),
            ));
        }
    }
    cases.push(case("chirp", sr, tone(5.0, sr, |t| 0.5 * (TAU * (100.0 * t + 390.0 * t * t)).sin())));
    cases.push(case("bursts", sr, tone(6.0, sr, |t| if t % 0.37 < 0.1 { 0.6 * (TAU * 440.0 * t).sin() } else { 0.0 })));
    cases.push(case(
        "vibrato",
        sr,
        tone(6.0, sr, |t| 0.4 * (TAU * 600.0 * t + 30.0 / 5.5 * (TAU * 5.5 * t).sin()).sin()),
    ));
    let mut rng = SplitMix64::new(42);
    cases.push(case("noise", sr, (0..4 * sr).map(|_| 0.3 * rng.signed()).collect()));
    let mut rng = SplitMix64::new(43);
    cases.push(case(
        "noise-bursts",
        sr,
        (0..6 * sr).map(|i| if (i / 2400) % 3 == 0 { rng.signed() * 0.5 } else { 0.0 }).collect(),
    ));
    cases.push(case("silence", sr, vec![0.0; 5 * sr as usize]));
    for n in [1usize, 100, 1535, 1536, 2047, 2048, 2049, 5000] {
        cases.push(case(&format!("short{n}"), sr, clicks(150.0, 1.0, sr)[..n].to_vec()));
    }
    cases.push(case("odd-length", sr, drums(Style::House, 124.0, 0.0, 8.1, sr, 7)[..128_300].to_vec()));
    cases.push(case("minute", sr, drums(Style::Breaking, 103.0, 0.1, 60.0, sr, 9)));
    for name in ["loop_amen", "loop_breakbeat", "loop_compus", "loop_safari", "loop_tabla", "loop_perc1"] {
        let path = format!("/usr/share/sonic-pi/samples/{name}.flac");
        cases.push(Case { name: name.into(), sr, samples: None, loop_path: Some(path), variants: false });
    }
    for other in [8000, 22_050] {
        cases.push(case(&format!("clicks-sr{other}"), other, clicks(110.0, 8.0, other)));
        cases.push(case(&format!("drums-sr{other}"), other, drums(Style::Hiphop, 95.0, 0.0, 8.0, other, 3)));
    }
    for name in ["clicks100", "drums-hiphop-78", "loop_amen", "noise-bursts"] {
        cases.iter_mut().find(|c| c.name == name).unwrap().variants = true;
    }
    cases
}

fn run_reference(dir: &Path, cases: &mut [Case]) {
    let mut listing = Vec::new();
    for case in cases.iter() {
        let mut entry = serde_json::json!({ "name": case.name, "sr": case.sr });
        match (&case.samples, &case.loop_path) {
            (Some(samples), _) => {
                let bytes: Vec<u8> = samples.iter().flat_map(|x| x.to_le_bytes()).collect();
                std::fs::write(dir.join(format!("{}.in.f32", case.name)), bytes).unwrap();
                entry["samples"] = format!("{}.in.f32", case.name).into();
            }
            (None, Some(path)) => entry["loop"] = path.clone().into(),
            (None, None) => unreachable!(),
        }
        if case.variants {
            entry["variants"] = serde_json::json!(["max3", "max4", "lag2", "detrend", "nocenter"]);
        }
        listing.push(entry);
    }
    std::fs::write(dir.join("cases.json"), serde_json::to_string(&listing).unwrap()).unwrap();
    common::run_reference("librosa/reference.py", dir);
    for case in cases.iter_mut().filter(|c| c.samples.is_none()) {
        case.samples = Some(common::read_f32(&dir.join(format!("{}.f32", case.name))));
    }
}

fn read_f64(path: &Path) -> Vec<f64> {
    std::fs::read(path).unwrap().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
}

/// Largest `|a − b| − allowed(b)` over both arrays; `Err` when any is positive.
fn compare(
    what: &str,
    ours: &[f32],
    theirs: &[f32],
    allowed: impl Fn(usize) -> f64,
    failures: &mut Vec<String>,
) -> f64 {
    if ours.len() != theirs.len() {
        failures.push(format!("{what}: length {} vs librosa {}", ours.len(), theirs.len()));
        return f64::INFINITY;
    }
    let mut worst = 0f64;
    for (i, (&a, &b)) in ours.iter().zip(theirs).enumerate() {
        let d = (a as f64 - b as f64).abs();
        worst = worst.max(d);
        if d > allowed(i) {
            failures.push(format!("{what}[{i}]: {a} vs librosa {b} (allowed {:e})", allowed(i)));
            return worst;
        }
    }
    worst
}

fn envelope_tolerance(reference: &[f32]) -> impl Fn(usize) -> f64 {
    let max = reference.iter().fold(0f32, |m, &v| m.max(v)) as f64;
    move |_| 1e-4 + 1e-5 * max
}

#[test]
fn music_rhythm_equals_librosa() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = cases();
    run_reference(dir.path(), &mut cases);
    let mut failures = Vec::new();
    let mut worst = [0f64; 5];
    for sr in [8000, 16_000, 22_050] {
        let ours = MelFilterbank::new(sr, 2048, 128, 0.0, sr as f64 / 2.0);
        let theirs = common::read_f32(&dir.path().join(format!("melfb_{sr}.f32")));
        let ours: Vec<f32> =
            (0..128).flat_map(|b| (0..1025).map(move |k| (b, k))).map(|(b, k)| ours.weight(b, k)).collect();
        if ours != theirs {
            failures.push(format!("mel filterbank at {sr} Hz is not bit-identical"));
        }
    }
    for case in &cases {
        let y = case.samples.as_ref().unwrap();
        let name = &case.name;
        let at = |suffix: &str| dir.path().join(format!("{name}.{suffix}"));
        let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(at("json")).unwrap()).unwrap();
        let spec = SpectrogramParams { sr: case.sr, ..Default::default() };

        // Mel power, per frame against its column maximum.
        let power = stft::power_spectrogram(y, spec.n_fft, spec.hop_length);
        let filters = spec.filterbank();
        let mel: Vec<f32> = power
            .iter()
            .flat_map(|p| {
                let mut m = vec![0f32; 128];
                filters.apply(p, &mut m);
                m
            })
            .collect();
        let their_mel = common::read_f32(&at("mel.f32"));
        let column_max: Vec<f64> =
            their_mel.chunks(128).map(|c| c.iter().fold(0f32, |m, &v| m.max(v)) as f64).collect();
        worst[0] = worst[0].max(compare(
            &format!("{name} mel"),
            &mel,
            &their_mel,
            |i| 1e-5 * column_max[i / 128] + 1e-30,
            &mut failures,
        ));
        let db = onset::mel_db(y, &spec, &DbParams::default());
        worst[1] = worst[1].max(compare(
            &format!("{name} dB"),
            &db.data,
            &common::read_f32(&at("db.f32")),
            |_| 5e-3,
            &mut failures,
        ));

        let rhythm = rhythm::analyze(y, &RhythmParams { spectrogram: spec, ..Default::default() }).unwrap();
        let env = common::read_f32(&at("env.f32"));
        worst[2] = worst[2].max(compare(
            &format!("{name} envelope"),
            &rhythm.onset_envelope,
            &env,
            envelope_tolerance(&env),
            &mut failures,
        ));
        let median = onset::onset_strength_from_db(
            &db,
            &spec,
            &OnsetParams { aggregate: Aggregate::Median, ..Default::default() },
        );
        worst[3] = worst[3].max(compare(
            &format!("{name} median envelope"),
            &median,
            &common::read_f32(&at("envmed.f32")),
            |_| 1e-3,
            &mut failures,
        ));
        if case.variants {
            for (variant, params) in [
                ("max3", OnsetParams { max_size: 3, ..Default::default() }),
                ("max4", OnsetParams { max_size: 4, ..Default::default() }),
                ("lag2", OnsetParams { lag: 2, ..Default::default() }),
                ("detrend", OnsetParams { detrend: true, ..Default::default() }),
                ("nocenter", OnsetParams { center: false, ..Default::default() }),
            ] {
                let theirs = common::read_f32(&at(&format!("{variant}.f32")));
                let ours = onset::onset_strength_from_db(&db, &spec, &params);
                compare(
                    &format!("{name} envelope {variant}"),
                    &ours,
                    &theirs,
                    envelope_tolerance(&theirs),
                    &mut failures,
                );
            }
        }
        let tg = rhythm::tempogram(&rhythm.onset_envelope, 384);
        let their_tg = read_f64(&at("tg.f64"));
        let tg_worst = tg.data.iter().zip(&their_tg).map(|(&a, b)| (a as f64 - b).abs()).fold(0f64, f64::max);
        worst[4] = worst[4].max(tg_worst);
        if tg.data.len() != their_tg.len() || tg_worst > 1e-5 {
            failures.push(format!(
                "{name} tempogram: {} values vs {}, max deviation {tg_worst:e}",
                tg.data.len(),
                their_tg.len()
            ));
        }

        // Discrete outputs: identical.
        let frames = |key: &str| -> Vec<usize> { serde_json::from_value(expected[key].clone()).unwrap() };
        let mut check = |what: &str, ours: String, theirs: String| {
            if ours != theirs {
                failures.push(format!("{name} {what}: ours {ours}\n    librosa {theirs}"));
            }
        };
        check("onset frames", format!("{:?}", rhythm.onset_frames), format!("{:?}", frames("onset_frames")));
        let peaks = rhythm::PeakPickParams::onset_detect_defaults(case.sr, 512);
        let backtracked = rhythm::onset_detect_from_envelope(&rhythm.onset_envelope, &peaks, true);
        check("backtracked onsets", format!("{backtracked:?}"), format!("{:?}", frames("onset_frames_backtrack")));
        check("tempo", format!("{:.9}", rhythm.tempo), format!("{:.9}", expected["tempo"].as_f64().unwrap()));
        check("beat frames", format!("{:?}", rhythm.beat_frames), format!("{:?}", frames("beat_frames")));
        let untrimmed = rhythm::track_beats(
            &median,
            rhythm.tempo,
            spec.frame_rate(),
            &rhythm::BeatParams { trim: false, ..Default::default() },
        );
        let untrimmed = if rhythm.tempo == 0.0 { Vec::new() } else { untrimmed };
        check("untrimmed beats", format!("{untrimmed:?}"), format!("{:?}", frames("beat_frames_untrimmed")));
        let mean_tempo = rhythm::tempo(&rhythm.onset_envelope, case.sr, 512, &rhythm::TempoParams::default());
        check(
            "tempo of the mean envelope",
            format!("{mean_tempo:.9}"),
            format!("{:.9}", expected["tempo_mean_envelope"].as_f64().unwrap()),
        );
        check("frames", rhythm.onset_envelope.len().to_string(), expected["n_frames"].to_string());
    }
    eprintln!(
        "{} cases; worst deviations: mel {:.2e}, dB {:.2e}, envelope {:.2e}, median envelope {:.2e}, tempogram {:.2e}",
        cases.len(),
        worst[0],
        worst[1],
        worst[2],
        worst[3],
        worst[4]
    );
    assert!(failures.is_empty(), "{} mismatches with librosa:\n  {}", failures.len(), failures.join("\n  "));
}
