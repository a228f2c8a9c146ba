//! `mudar extract`: inputs through the graph into a Parquet feature store.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar};
use mudar_operators::motion::HoofParams;
use mudar_operators::rhythm::{RhythmParams, SpectrogramParams};
use mudar_pipeline::extract::{self, ModelChoice, Plan};
use mudar_pipeline::graph::Progress;
use mudar_pipeline::graph::store::{InputReport, Tables};
use mudar_pipeline::live::RetryPolicy;
use mudar_pipeline::live::metrics::Metrics;
use mudar_pipeline::train::trained::TrainedModel;
use mudar_pipeline::{AudioOutput, ClipRule, Resize, SourceConfig, VideoOutput};
use mudar_schemas::FeedEventRow;
use serde_json::json;

use crate::flow::BackendArgs;
use crate::progress;

/// Extracts music rhythm, dance motion and clip features of every input into
/// a Parquet feature store (tables media, audio_frames, video_frames, clips;
/// see the README for their columns).
///
/// INPUTS are files, folders (searched recursively for videos), glob patterns,
/// URIs, or text files (.txt, .list) with one path or URI per line. Inputs
/// already in the store with the same configuration are skipped, so a run can
/// be repeated; after an interrupted run, --resume rolls the store back to its
/// last commit and goes on. Inputs that fail are recorded in the media table
/// and the run goes on; the exit status is 1 if any failed.
///
/// Live feeds (rtsp://, srt://, udp://, rtp://, rtmp://, HLS playlists, anything
/// GStreamer finds live, or every input with --live) are committed window by
/// window, every --commit-interval seconds, while they run; the run goes on
/// until every feed has ended, or until Ctrl-C or SIGTERM, which commit each
/// feed's last window and exit 0 (files not finished by then are left for the
/// next run). Several runs may share a store: each leaves to the others the
/// inputs they are extracting.
///
/// Scale-out is timely dataflow's: -w workers per process; for a cluster, run
/// the same command on every machine with -n processes, -p this process's
/// index and -h a host file (one host:port per line, process 0 first).
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    #[arg(required = true, value_name = "INPUTS")]
    inputs: Vec<String>,
    /// The store folder (created if missing).
    #[arg(long, short)]
    out: PathBuf,
    /// Roll back an interrupted run's uncommitted files, then go on.
    #[arg(long)]
    resume: bool,
    /// Remove the INPUTS' rows from the store (and the videos view) instead of extracting them.
    #[arg(long, conflicts_with = "replace")]
    remove: bool,
    /// Extract the INPUTS again even if the store has them: their old rows are removed first.
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Clips: whole, paper (8 s around the middle), centered:SECONDS, windows:LENGTH:STRIDE.
    /// Default: paper; with --model, back-to-back windows of the model's clip length.
    #[arg(long)]
    clip: Option<ClipRule>,
    /// Video frame rate and square frame side the video is decoded at (default 8 and 256; with
    /// --model, the model's).
    #[arg(long)]
    fps: Option<u32>,
    #[arg(long)]
    size: Option<u32>,
    /// Audio sample rate.
    #[arg(long, default_value_t = 16_000)]
    sr: u32,
    /// HOOF orientation bins (B; default 8, with --model the model's).
    #[arg(long)]
    bins: Option<usize>,
    /// A trained MuDaR (a run folder, checkpoint folder or checkpoint JSON of `mudar train`):
    /// adds its visual-rhythm probability and decision to video_frames (frames inside clips)
    /// and its visual and audio embeddings to clips. Frames are decoded at the model's size
    /// and rate, and clips cut at its clip length. Runs on --device.
    #[arg(long, value_name = "CHECKPOINT")]
    model: Option<PathBuf>,
    /// HOOF with Chaudhry's horizontal symmetry.
    #[arg(long)]
    symmetric: bool,
    /// σ of the Beat Align Score, seconds (AIST++/Bailando: 3 frames at 60 fps).
    #[arg(long, default_value_t = 0.05)]
    beat_align_sigma: f64,
    /// Frame pairs per flow batch, gathered across a worker's open inputs.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Inputs each worker decodes at once.
    #[arg(long, default_value_t = 2)]
    max_open: usize,
    /// Tables besides media: any of audio_frames, video_frames, clips.
    #[arg(long, value_delimiter = ',', default_value = "audio_frames,video_frames,clips")]
    tables: Vec<String>,
    /// Target size of the store's files, MiB.
    #[arg(long, default_value_t = 128)]
    file_size_mb: u64,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = 65_536)]
    row_group_rows: usize,
    /// A JSON summary on stdout at the end.
    #[arg(long)]
    json: bool,
    /// Take every input as a live feed (committed window by window, never counted done).
    #[arg(long)]
    live: bool,
    /// Seconds between a live feed's commits: its rows are readable at most this long after
    /// they are computed.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    commit_interval: f64,
    /// Seconds an input may deliver nothing before it is taken as stalled.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    stall_timeout: f64,
    /// Seconds a live feed may take to deliver its first packets (connecting, buffering).
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    connect_timeout: f64,
    /// A feed that fails, ends or stalls is reconnected after a wait that doubles from 0.5 s
    /// up to this (drawn between half of it and all of it).
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    max_backoff: f64,
    /// Give a feed up after this many consecutive failed attempts (default: never).
    #[arg(long, value_name = "N")]
    max_retries: Option<u32>,
    /// Give a feed up once it has been down this long (default: never).
    #[arg(long, value_name = "SECONDS")]
    give_up_after: Option<f64>,
    /// Latency the network sources (RTSP, SRT) buffer for, milliseconds.
    #[arg(long, value_name = "MS")]
    latency_ms: Option<u32>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics while the run goes on (port 0: a
    /// free one, said on stderr).
    #[arg(long, value_name = "HOST:PORT")]
    metrics: Option<String>,
    #[command(flatten)]
    backend: BackendArgs,
    #[arg(long, action = clap::ArgAction::Help, help = "Print help")]
    help: Option<bool>,
}

/// How inputs are decoded and cut: the options, or a model's needs.
struct Decoding {
    fps: u32,
    size: u32,
    bins: usize,
    clip: ClipRule,
}

impl Decoding {
    fn for_model(args: &Args, model: Option<&TrainedModel>) -> anyhow::Result<Decoding> {
        let Some(model) = model else {
            return Ok(Decoding {
                fps: args.fps.unwrap_or(8),
                size: args.size.unwrap_or(256),
                bins: args.bins.unwrap_or(HoofParams::default().bins),
                clip: args.clip.unwrap_or(ClipRule::PAPER),
            });
        };
        let config = model.config();
        let length = model.clip_length();
        let needs = |what: &str, given: Option<u64>, wanted: u64| match given {
            Some(given) if given != wanted => {
                anyhow::bail!("--{what} {given}: the model was trained with {wanted}; leave it out with --model")
            }
            _ => Ok(wanted),
        };
        let fps = needs("fps", args.fps.map(u64::from), config.fps.round() as u64)? as u32;
        let size = needs("size", args.size.map(u64::from), config.frame_size as u64)? as u32;
        let bins = needs("bins", args.bins.map(|b| b as u64), config.hoof_bins as u64)? as usize;
        let clip = args.clip.unwrap_or(ClipRule::Windows { length, stride: length });
        let clip_length = match clip {
            ClipRule::Windows { length, .. } | ClipRule::Centered { length } => Some(length),
            ClipRule::Whole => None,
        };
        anyhow::ensure!(
            clip_length == Some(length),
            "--clip {clip:?}: the model sees clips of {:.3} s; use windows:{0}:STRIDE or centered:{0}",
            length.as_secs_f64()
        );
        Ok(Decoding { fps, size, bins, clip })
    }
}

/// Video extensions looked for in folders.
const VIDEO_EXTENSIONS: &[&str] =
    &["mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "flv", "wmv", "gif"];

/// The inputs the arguments name, in a fixed order (the same on every process).
pub fn expand_inputs(args: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        if mudar_pipeline::input::is_uri(arg) {
            out.push(arg.clone());
        } else if path.is_dir() {
            let mut found = BTreeSet::new();
            walk(path, &mut found).with_context(|| format!("{arg}: cannot list the folder"))?;
            anyhow::ensure!(!found.is_empty(), "{arg}: no videos in this folder ({})", VIDEO_EXTENSIONS.join(", "));
            out.extend(found);
        } else if path.extension().is_some_and(|e| e == "txt" || e == "list") {
            let text = std::fs::read_to_string(path).with_context(|| format!("{arg}: cannot read the input list"))?;
            out.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from));
        } else if arg.contains(['*', '?', '[']) {
            let mut matched: Vec<String> = glob::glob(arg)
                .with_context(|| format!("{arg}: not a valid glob pattern"))?
                .filter_map(Result::ok)
                .map(|p| p.display().to_string())
                .collect();
            anyhow::ensure!(!matched.is_empty(), "{arg}: the pattern matches nothing");
            matched.sort();
            out.extend(matched);
        } else {
            // Missing or unreadable files are reported per input by the run.
            out.push(arg.clone());
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|input| seen.insert(input.clone()));
    Ok(out)
}

fn walk(dir: &Path, found: &mut BTreeSet<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, found)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_lowercase().as_str()))
        {
            found.insert(path.display().to_string());
        }
    }
    Ok(())
}

fn tables(names: &[String]) -> anyhow::Result<Tables> {
    let mut tables = Tables { audio_frames: false, video_frames: false, clips: false };
    for name in names {
        match name.as_str() {
            "audio_frames" => tables.audio_frames = true,
            "video_frames" => tables.video_frames = true,
            "clips" => tables.clips = true,
            "media" => {}
            other => anyhow::bail!("unknown table {other:?}: use audio_frames, video_frames, clips"),
        }
    }
    Ok(tables)
}

/// Scale-out: timely's workers per process and cluster flags.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Worker threads per process.
    #[arg(short = 'w', long, default_value_t = 1)]
    pub workers: usize,
    /// Processes in the cluster.
    #[arg(short = 'n', long, default_value_t = 1)]
    pub processes: usize,
    /// This process's index in the cluster.
    #[arg(short = 'p', long, default_value_t = 0)]
    pub process: usize,
    /// Host file of the cluster: one host:port per line, in process order.
    #[arg(short = 'h', long)]
    pub hostfile: Option<PathBuf>,
}

impl ClusterArgs {
    /// timely's configuration for `-w` workers per process and, with more
    /// than one process, `-n/-p/-h`.
    pub fn timely_config(&self) -> anyhow::Result<timely::Config> {
        anyhow::ensure!(self.workers > 0 && self.processes > 0, "-w and -n must be positive");
        anyhow::ensure!(self.process < self.processes, "-p {} is not below -n {}", self.process, self.processes);
        let mut flags = vec!["-w".to_owned(), self.workers.to_string()];
        if self.processes > 1 {
            flags.extend(["-n".to_owned(), self.processes.to_string(), "-p".to_owned(), self.process.to_string()]);
            if let Some(hosts) = &self.hostfile {
                flags.extend(["-h".to_owned(), hosts.display().to_string()]);
            }
        }
        timely::Config::from_args(flags.into_iter()).map_err(|e| anyhow::anyhow!("cluster flags: {e}"))
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inputs = expand_inputs(&args.inputs)?;
    let spectrogram = SpectrogramParams { sr: args.sr, ..SpectrogramParams::default() };
    spectrogram.validate()?;
    let model = match &args.model {
        Some(path) => Some(ModelChoice::load(path, args.backend.device()?).map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    let decoding = Decoding::for_model(&args, model.as_ref().map(|(_, trained)| trained))?;
    anyhow::ensure!(decoding.fps > 0 && decoding.size >= 8, "--fps must be positive and --size at least 8");
    anyhow::ensure!(
        decoding.bins > 0 && args.batch > 0 && args.max_open > 0,
        "--bins, --batch, --max-open must be positive"
    );
    let seconds = |name: &str, value: f64| -> anyhow::Result<Duration> {
        anyhow::ensure!(value.is_finite() && value > 0.0, "--{name} must be a positive number of seconds");
        Ok(Duration::from_secs_f64(value))
    };
    let source = SourceConfig {
        live: args.live.then_some(true),
        stall_timeout: seconds("stall-timeout", args.stall_timeout)?,
        connect_timeout: seconds("connect-timeout", args.connect_timeout)?,
        latency_ms: args.latency_ms,
        audio: Some(AudioOutput { sample_rate: args.sr }),
        video: Some(VideoOutput {
            width: decoding.size,
            height: decoding.size,
            fps: decoding.fps,
            resize: Resize::Stretch,
        }),
        ..SourceConfig::default()
    };
    let plan = Plan {
        extract_none: args.remove,
        inputs,
        store: args.out.clone(),
        source,
        rhythm: RhythmParams { spectrogram, ..RhythmParams::default() },
        hoof: HoofParams { bins: decoding.bins, symmetric: args.symmetric, ..Default::default() },
        clip_rule: decoding.clip,
        beat_align_sigma_s: args.beat_align_sigma,
        flow: args.backend.choice()?,
        batch: args.batch,
        max_open: args.max_open,
        max_lag: 4,
        tables: tables(&args.tables)?,
        workers_per_process: args.cluster.workers,
        target_file_bytes: args.file_size_mb << 20,
        row_group_rows: args.row_group_rows.max(1),
        commit_interval: seconds("commit-interval", args.commit_interval)?,
        retry: RetryPolicy {
            max_backoff: seconds("max-backoff", args.max_backoff)?,
            max_retries: args.max_retries,
            give_up_after: args.give_up_after.map(|s| seconds("give-up-after", s)).transpose()?,
            ..RetryPolicy::default()
        },
        model: model.map(|(choice, _)| choice),
    };
    let config = plan.config_json();

    // Only process 0 touches the store as a whole; the others wait for it when connecting.
    if args.cluster.process == 0 {
        let remove = (args.remove || args.replace).then(|| plan.inputs.iter().cloned().collect());
        prepare_store(&args.out, args.resume, &config, remove)?;
    }
    // What the workers will skip (they decide for themselves once the store is prepared).
    let committed = mudar_sinks::store::committed_inputs(&args.out).unwrap_or_default();
    let skipped = match args.remove {
        // Nothing is extracted; the run refreshes the videos view.
        true => plan.inputs.len(),
        false => plan.inputs.iter().filter(|input| committed.get(*input) == Some(&config)).count(),
    };
    let to_do = plan.inputs.len() - skipped;
    if skipped > 0 && !args.remove {
        eprintln!(
            "mudar extract: {skipped} input(s) already in {} with this configuration, skipped",
            args.out.display()
        );
    }

    let bars = Bars::new(to_do as u64);
    let observer = bars.clone();
    let started = Instant::now();
    let plan = Arc::new(plan);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("mudar extract: stopping: committing the live feeds' last windows (again to quit at once)");
    })
    .context("cannot install the Ctrl-C/SIGTERM handler")?;
    let metrics = match &args.metrics {
        Some(address) => {
            let metrics = Arc::new(Metrics::new());
            let bound = metrics.serve(address).map_err(anyhow::Error::msg)?;
            eprintln!("mudar extract: metrics at http://{bound}/metrics");
            Some(metrics)
        }
        None => None,
    };
    let timely = args.cluster.timely_config()?;
    let run = extract::run(plan.clone(), timely, Arc::new(move |p| observer.update(p)), stop, metrics)
        .map_err(anyhow::Error::msg)?;
    bars.finish();
    if !run.interrupted.is_empty() {
        eprintln!(
            "mudar extract: stopped before {} input(s) finished (not committed; the next run extracts them): {}",
            run.interrupted.len(),
            run.interrupted.join(", ")
        );
    }
    for busy in &run.busy {
        eprintln!("mudar extract: {}: another run is extracting it ({}); left to it", busy.input, busy.holder);
    }
    let feed_events = std::mem::take(&mut *bars.feed_events.lock().unwrap_or_else(|p| p.into_inner()));
    summarize(&args, &plan, &config, &run, &feed_events, skipped, started.elapsed().as_secs_f64())
}

/// Checks the store against this run: recovers it on --resume, refuses leftovers or another
/// configuration; removes the inputs to remove or replace.
fn prepare_store(store: &Path, resume: bool, config: &str, remove: Option<BTreeSet<String>>) -> anyhow::Result<()> {
    if !store.exists() {
        return Ok(());
    }
    if resume {
        let recovery = mudar_sinks::store::recover(store)?;
        if !recovery.is_clean() {
            eprintln!("mudar extract: resumed {}: {recovery}", store.display());
        }
    } else {
        anyhow::ensure!(
            !extract::needs_recovery(store)?,
            "{}: an earlier run was interrupted; add --resume to roll back its uncommitted files and go on",
            store.display()
        );
    }
    if let Some(inputs) = remove {
        let store_config = mudar_sinks::StoreConfig { config_json: config.to_owned(), ..Default::default() };
        let removal = mudar_sinks::store::remove_inputs(store, &inputs, &store_config)?;
        eprintln!(
            "mudar extract: removed {} input(s) from {} ({} segment(s) rewritten)",
            removal.removed.len(),
            store.display(),
            removal.segments
        );
    }
    let committed = mudar_sinks::store::input_configs(store)?;
    if let Some((input, _)) = committed.iter().find(|(_, c)| c.as_str() != config) {
        anyhow::bail!(
            "{}: the store holds inputs extracted with another configuration (e.g. {input}); \
             extract into a new folder",
            store.display()
        );
    }
    Ok(())
}

fn summarize(
    args: &Args,
    plan: &Plan,
    config: &str,
    run: &extract::RunReport,
    feed_events: &[(String, FeedEventRow)],
    skipped: usize,
    seconds: f64,
) -> anyhow::Result<ExitCode> {
    let reports = &run.committed;
    // A feed's lost connections are events of a run that goes on, not failures; a feed that
    // gave up is one.
    let feeds: BTreeSet<&str> = reports
        .iter()
        .filter(|r| r.live)
        .map(|r| r.input.as_str())
        .chain(feed_events.iter().map(|(input, _)| input.as_str()))
        .collect();
    let gave_up: Vec<&(String, FeedEventRow)> = feed_events.iter().filter(|(_, e)| e.event == "gave_up").collect();
    let failed: Vec<&InputReport> = reports.iter().filter(|r| r.failure.is_some() && !r.live).collect();
    for report in &failed {
        let failure = report.failure.as_ref().expect("filtered");
        eprintln!("mudar extract: {} ({})", failure.message, failure.kind);
    }
    for (input, event) in &gave_up {
        eprintln!("mudar extract: {input}: gave up: {}", event.message.as_deref().unwrap_or_default());
    }
    let committed: BTreeSet<&str> = reports.iter().map(|r| r.input.as_str()).collect();
    let connections = reports.iter().filter(|r| r.live).count();
    let failures = failed.len() + gave_up.len();
    let total = |f: fn(&InputReport) -> u64| reports.iter().map(f).sum::<u64>();
    if args.json {
        println!(
            "{}",
            json!({
                "store": args.out,
                "inputs": plan.inputs.len(),
                "committed": committed.len(),
                "connections": connections,
                "skipped": skipped,
                "interrupted": run.interrupted,
                "feeds": feeds.len(),
                "feed_events": feed_events.iter().map(|(input, e)| json!({
                    "input": input, "connection": e.connection, "event": e.event, "reason": e.reason,
                    "message": e.message, "attempt": e.attempt, "backoff_s": e.backoff_s, "frames_dropped": e.frames_dropped,
                })).collect::<Vec<_>>(),
                "busy": run.busy.iter().map(|b| json!({"input": b.input, "held_by": b.holder.to_string()})).collect::<Vec<_>>(),
                "failed": failures,
                "audio_frames": total(|r| r.audio_frames),
                "video_frames": total(|r| r.video_frames),
                "clips": total(|r| r.clips),
                "seconds": seconds,
                "errors": failed
                    .iter()
                    .map(|r| json!({"input": r.input, "kind": r.failure.as_ref().map(|f| &f.kind), "error": r.failure.as_ref().map(|f| &f.message)}))
                    .chain(gave_up.iter().map(|(input, e)| json!({"input": input, "kind": "gave_up", "error": e.message})))
                    .collect::<Vec<_>>(),
                "config": serde_json::from_str::<serde_json::Value>(config)?,
            })
        );
    } else {
        eprintln!(
            "mudar extract: {} input(s) committed to {} ({} failed, {} skipped, {} left to other runs) in {seconds:.1} s: {} audio frames, {} video frames, {} clips",
            committed.len(),
            args.out.display(),
            failures,
            skipped,
            run.busy.len(),
            total(|r| r.audio_frames),
            total(|r| r.video_frames),
            total(|r| r.clips),
        );
        for feed in &feeds {
            let events: Vec<&FeedEventRow> = feed_events.iter().filter(|(i, _)| i == feed).map(|(_, e)| e).collect();
            let count = |kind: &str| events.iter().filter(|e| e.event == kind).count();
            let connections = reports.iter().filter(|r| r.live && r.input == *feed).count();
            eprintln!(
                "mudar extract: feed {feed}: {connections} connection(s), {} lost, {} failed attempt(s), {} frame(s) dropped",
                count("disconnected"),
                count("connect_failed"),
                events.iter().map(|e| e.frames_dropped).sum::<u64>(),
            );
        }
    }
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Progress: on a terminal, a bar per open input and one overall; otherwise a line per input.
/// Feed events are printed as they come, and kept for the summary.
#[derive(Clone)]
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    inputs: Arc<Mutex<HashMap<u64, ProgressBar>>>,
    feed_events: Arc<Mutex<Vec<(String, FeedEventRow)>>>,
    feeds: Arc<Mutex<BTreeSet<String>>>,
    live: Arc<Mutex<HashMap<u64, LiveLine>>>,
    terminal: bool,
}

/// How a live connection keeps up, for its progress line.
#[derive(Default)]
struct LiveLine {
    /// Media time and wall-clock instant a second or so ago, to measure the rate from.
    mark: Option<(f64, Instant)>,
}

impl LiveLine {
    /// The line's message, about once a second: media seconds per second (1.0: keeping up)
    /// and how far behind the capture the packets reach the graph.
    fn advance(&mut self, seconds: f64, capture_us: i64) -> Option<String> {
        let (then_s, then) = *self.mark.get_or_insert((seconds, Instant::now()));
        let elapsed = then.elapsed().as_secs_f64();
        if elapsed < 1.0 {
            return None;
        }
        self.mark = Some((seconds, Instant::now()));
        let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros();
        // The pipeline's clock and the system's may differ by a few milliseconds.
        let behind = ((now_us as i64 - capture_us) as f64 / 1e6).max(0.0);
        Some(format!("{:.2}× real time, {behind:.1} s behind capture", (seconds - then_s) / elapsed))
    }
}

impl Bars {
    fn new(total: u64) -> Bars {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let multi = MultiProgress::new();
        if !terminal {
            multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let overall = multi.add(progress::bar(total, "inputs".into(), "inputs"));
        Bars {
            multi,
            overall,
            inputs: Arc::default(),
            feed_events: Arc::default(),
            feeds: Arc::default(),
            live: Arc::default(),
            terminal,
        }
    }

    fn update(&self, event: Progress<'_>) {
        let mut inputs = self.inputs.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Progress::Opened { id, input, duration_s, live: false } => {
                let seconds = duration_s.unwrap_or(0.0).ceil() as u64;
                let bar = self.multi.insert_before(&self.overall, progress::bar(seconds, input.to_owned(), "s"));
                inputs.insert(id, bar);
            }
            Progress::Opened { id, input, live: true, .. } => {
                let line = self.multi.insert_before(&self.overall, progress::feed(input.to_owned()));
                line.set_message(format!("connection {}: connected", id >> 32));
                inputs.insert(id, line);
                self.live.lock().unwrap_or_else(|p| p.into_inner()).insert(id, LiveLine::default());
            }
            Progress::Position { id, seconds, capture_us } => {
                let Some(bar) = inputs.get(&id) else { return };
                let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
                match (live.get_mut(&id), capture_us) {
                    (Some(line), Some(capture_us)) => {
                        if let Some(message) = line.advance(seconds, capture_us) {
                            bar.set_message(format!("connection {}: {message}", id >> 32));
                        }
                    }
                    _ => bar.set_position(seconds as u64),
                }
            }
            Progress::Closed { id, input, failure } => {
                if let Some(bar) = inputs.remove(&id) {
                    bar.finish_and_clear();
                }
                self.live.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                // A feed's connections come and go: their events say so.
                if self.feeds.lock().unwrap_or_else(|p| p.into_inner()).contains(input) {
                    return;
                }
                self.overall.inc(1);
                if !self.terminal {
                    match failure {
                        Some(f) => eprintln!("mudar extract: {input}: decoded with an error ({})", f.kind),
                        None => eprintln!("mudar extract: {input}: decoded"),
                    }
                }
            }
            Progress::Feed { input, event } => {
                self.feeds.lock().unwrap_or_else(|p| p.into_inner()).insert(input.to_owned());
                let why = event.message.as_deref().or(event.reason.as_deref()).map(|w| format!(": {w}"));
                let wait = event.backoff_s.map(|s| format!(", next attempt in {s:.1} s")).unwrap_or_default();
                let line = format!(
                    "mudar extract: {input}: {} (connection {}){}{wait}",
                    event.event.replace('_', " "),
                    event.connection,
                    why.unwrap_or_default()
                );
                match self.terminal {
                    true => self.multi.suspend(|| eprintln!("{line}")),
                    false => eprintln!("{line}"),
                }
                self.feed_events.lock().unwrap_or_else(|p| p.into_inner()).push((input.to_owned(), event.clone()));
            }
        }
    }

    fn finish(&self) {
        self.overall.finish_and_clear();
    }
}
