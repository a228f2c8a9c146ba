//! End to end: `mudar extract` (the `mudar` binary, DIS flow on the CPU) beside
//! the Python pipeline a researcher would write today
//! (`benches/python/reference_pipeline.py`: PyAV, librosa, OpenCV DIS, NumPy
//! HOOF, pyarrow), on the same files, with 1 and 2 workers each, on two kinds
//! of 640x360 24 fps H.264+AAC videos rendered once per run:
//!
//! - "synthetic": GStreamer's bouncing ball (`videotestsrc pattern=ball`) over
//!   a ticking tone (`audiotestsrc wave=ticks`);
//! - "real-looking": `mudar synth` dances (a textured dancer on a textured
//!   backdrop, drums, bass and melody).
//!
//! Reports wall time of the whole command (process start, imports and the
//! store's writes included), the real-time factor (media seconds / wall
//! seconds) and peak RSS: mudar's from `/usr/bin/time -v` (the kernel's
//! `ru_maxrss` of the process, threads included), Python's as the script
//! reports it (its own peak plus the workers' from `getrusage`). A second
//! table runs mudar on a 1-minute and a 4-minute dance: flat memory means the
//! same peak RSS.
//!
//! `cargo build --release -p mudar-pipeline && cargo bench -p mudar-benches
//! --bench extract` (after `. scripts/env.sh`, and `.venv/bin/pip install av
//! opencv-python-headless` for the Python side; without them it is skipped
//! with a note). `MUDAR_BIN` overrides the binary. Under `cargo test` it
//! extracts two 4 s files of each kind once with `target/release/mudar` (or
//! `target/debug/mudar`; skipped if neither is built), without Python, as a
//! smoke test.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use gst::prelude::*;
use mudar_operators::synth::{Dance, Style, SynthConfig};
use mudar_sinks::MediaFormat;

const PYTHON_SCRIPT: &str = "reference_pipeline.py";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The same-size test inputs of one kind.
struct Inputs {
    kind: &'static str,
    files: Vec<PathBuf>,
    media_seconds: f64,
}

/// GStreamer's bouncing ball over ticks, encoded as mudar's synth encodes (x264 + AAC in MP4).
fn render_ball(path: &Path, index: usize, seconds: f64, (width, height): (u32, u32)) -> anyhow::Result<()> {
    let motion = ["wavy", "sweep", "hsweep"][index % 3];
    let tick_ns = 400_000_000 + 50_000_000 * index as u64;
    let description = format!(
        "videotestsrc pattern=ball motion={motion} num-buffers={frames} \
           ! video/x-raw,width={width},height={height},framerate=24/1 ! videoconvert \
           ! x264enc speed-preset=veryfast ! h264parse ! mp4mux name=mux ! filesink location={location} \
         audiotestsrc wave=ticks tick-interval={tick_ns} samplesperbuffer=441 num-buffers={buffers} \
           ! audio/x-raw,rate=44100,channels=2 ! audioconvert ! avenc_aac ! aacparse ! mux.",
        frames = (seconds * 24.0).round() as u64,
        buffers = (seconds * 100.0).round() as u64,
        location = path.display(),
    );
    let pipeline = gst::parse::launch(&description)?;
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let message = bus.timed_pop_filtered(gst::ClockTime::NONE, &[gst::MessageType::Eos, gst::MessageType::Error]);
    pipeline.set_state(gst::State::Null)?;
    match message.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => anyhow::bail!("rendering {}: {}", path.display(), e.error()),
        _ => anyhow::bail!("rendering {}: no end of stream", path.display()),
    }
}

/// A `mudar synth` dance, a different style and seed per index.
fn render_dance(path: &Path, index: usize, seconds: f64, (width, height): (u32, u32)) -> anyhow::Result<()> {
    let styles = [Style::Hiphop, Style::House, Style::Breaking, Style::Waltz, Style::Ballet];
    let config = SynthConfig {
        style: styles[index % styles.len()],
        duration_s: seconds,
        width,
        height,
        seed: index as u64,
        music_seed: None,
        ..SynthConfig::default()
    };
    mudar_pipeline::synth::write_dance(&Dance::new(config)?, path, MediaFormat::Mp4, |_, _| {})?;
    Ok(())
}

type Render = fn(&Path, usize, f64, (u32, u32)) -> anyhow::Result<()>;

fn render(dir: &Path, kind: &'static str, render: Render, count: usize, seconds: f64, size: (u32, u32)) -> Inputs {
    let files = (0..count)
        .map(|i| {
            let path = dir.join(format!("{}-{i}.mp4", kind.replace(' ', "-")));
            render(&path, i, seconds, size).unwrap_or_else(|e| panic!("{e:#}"));
            path
        })
        .collect();
    Inputs { kind, files, media_seconds: seconds * count as f64 }
}

/// One timed run of either side.
struct Run {
    seconds: f64,
    rss_mib: Option<f64>,
}

/// The `mudar` binary: `MUDAR_BIN`, else the workspace's release build, or
/// for the smoke test its debug build when there is no release one (the
/// debug build's flow is far slower: minutes for these few seconds).
fn mudar_binary(benching: bool) -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("MUDAR_BIN") {
        return Some(bin.into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root().join("target"), PathBuf::from);
    let profiles: &[&str] = if benching { &["release"] } else { &["release", "debug"] };
    profiles.iter().map(|p| target.join(p).join("mudar")).find(|bin| bin.is_file())
}

/// `mudar extract FILES --out STORE --json -w WORKERS`, under `/usr/bin/time -v` for the peak RSS where it exists.
fn run_mudar(bin: &Path, files: &[PathBuf], workers: usize, store: &Path) -> Run {
    let time = Path::new("/usr/bin/time");
    let mut command = if time.is_file() {
        let mut c = Command::new(time);
        c.arg("-v").arg(bin);
        c
    } else {
        Command::new(bin)
    };
    command.arg("extract").args(files).arg("--out").arg(store).args(["--json", "-w", &workers.to_string()]);
    let start = Instant::now();
    let output = command.stdin(Stdio::null()).output().expect("cannot start mudar");
    let seconds = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "mudar extract failed ({}):\n{stderr}", output.status);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("mudar extract --json prints JSON");
    assert_eq!(summary["committed"], files.len(), "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let rss_kib = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse::<f64>().ok());
    std::fs::remove_dir_all(store).ok();
    Run { seconds, rss_mib: rss_kib.map(|k| k / 1024.0) }
}

/// Whether the project's Python has what the reference pipeline imports; a note on stderr if not.
fn python_ready() -> bool {
    let python = std::env::var_os("MUDAR_PYTHON").map_or(root().join(".venv/bin/python"), Into::into);
    let ok = Command::new(&python)
        .args(["-c", "import av, cv2, librosa, numpy, pyarrow"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "note: the Python reference pipeline is skipped: {} lacks PyAV, OpenCV, librosa or pyarrow \
             (`.venv/bin/pip install av opencv-python-headless`; librosa and pyarrow come with \
             `scripts/setup.sh --test`)",
            python.display()
        );
    }
    ok
}

/// The Python reference pipeline on `files` with `workers` processes.
fn run_python(files: &[PathBuf], workers: usize) -> Option<Run> {
    let workers = workers.to_string();
    let mut args: Vec<OsString> = files.iter().map(|f| f.clone().into_os_string()).collect();
    args.extend(["--workers".into(), workers.into()]);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let start = Instant::now();
    let result = mudar_benches::python_peer(PYTHON_SCRIPT, &args)?;
    let seconds = start.elapsed().as_secs_f64();
    Some(Run { seconds, rss_mib: result["peak_rss_mib"].as_f64() })
}

fn show(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let Some(bin) = mudar_binary(benching) else {
        let build = "cargo build --release -p mudar-pipeline";
        if benching {
            panic!("no mudar binary under target/release: run `{build}` first (or set MUDAR_BIN)");
        }
        eprintln!("note: extract smoke test skipped: no target/release/mudar or target/debug/mudar (`{build}`)");
        return;
    };
    gst::init().expect("GStreamer initialises");
    let (count, seconds, size) = if benching { (4, 60.0, (640, 360)) } else { (2, 4.0, (320, 180)) };
    let dir = tempfile::tempdir().unwrap();
    let kinds = [
        render(dir.path(), "synthetic", render_ball, count, seconds, size),
        render(dir.path(), "real-looking", render_dance, count, seconds, size),
    ];
    let python = benching && python_ready();
    let store = dir.path().join("store");

    println!("mudar: {}", bin.display());
    println!(
        "| videos | workers | media (s) | mudar (s) | mudar real-time factor | Python (s) | Python real-time factor | \
         mudar / Python | mudar peak RSS (MiB) | Python peak RSS (MiB) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for inputs in &kinds {
        for workers in [1, 2] {
            let ours = run_mudar(&bin, &inputs.files, workers, &store);
            let theirs = if python { run_python(&inputs.files, workers) } else { None };
            let media = inputs.media_seconds;
            println!(
                "| {} × {seconds} s {} | {workers} | {media} | {:.1} | {:.1}× | {} | {} | {} | {} | {} |",
                count,
                inputs.kind,
                ours.seconds,
                media / ours.seconds,
                show(theirs.as_ref().map(|t| t.seconds), 1),
                show(theirs.as_ref().map(|t| media / t.seconds), 2) + if theirs.is_some() { "×" } else { "" },
                show(theirs.as_ref().map(|t| t.seconds / ours.seconds), 1) + if theirs.is_some() { "×" } else { "" },
                show(ours.rss_mib, 0),
                show(theirs.as_ref().and_then(|t| t.rss_mib), 0),
            );
        }
    }

    // Memory in input length: one short and one 4× longer dance, one worker.
    let long = if benching { 240.0 } else { 8.0 };
    let short = kinds[1].files[0].clone();
    let longer = dir.path().join("real-looking-long.mp4");
    render_dance(&longer, 0, long, size).unwrap_or_else(|e| panic!("{e:#}"));
    println!();
    println!("| real-looking video | media (s) | mudar (s) | mudar real-time factor | mudar peak RSS (MiB) |");
    println!("| --- | --- | --- | --- | --- |");
    for (path, media) in [(short, seconds), (longer, long)] {
        let ours = run_mudar(&bin, &[path], 1, &store);
        println!(
            "| {media} s | {media} | {:.1} | {:.1}× | {} |",
            ours.seconds,
            media / ours.seconds,
            show(ours.rss_mib, 0)
        );
    }
}
