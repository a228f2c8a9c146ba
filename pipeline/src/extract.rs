//! Extraction runs: the graph over a set of inputs into a feature store, on
//! one worker or a timely cluster.
//!
//! Every process gets the same [`Plan`] and builds the same graph; input `i`
//! of the plan is decoded by global worker `i mod workers`, which also owns
//! its state in every stage. Each worker writes its own store files
//! (`mudar_sinks::store`, writer `w<index>`, or the next free `w<index + k·workers>`
//! while another run holds that name), so a committed input lives in exactly
//! one segment whatever the number of workers. Runs may share a store: each
//! process claims its workers' inputs before extracting them
//! ([`mudar_sinks::store::claim_inputs`]) and leaves those another live run
//! has claimed to it.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use differential_dataflow::input::Input as _;
use mudar_operators::motion::{DisParams, FlowBackend, HoofParams, VisualBeatParams};
use mudar_operators::rhythm::RhythmParams;
use mudar_schemas::tables::{self, AUDIO_FRAMES, CLIPS, Layout, MEDIA, VIDEO_FRAMES};
use mudar_sinks::store::{Busy, Claimed, StoreConfig, StoreError, StoreWriter};
use serde_json::json;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concatenate, Input, Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

use crate::clip::ClipRule;
use crate::graph::store::{InputReport, SinkError, Tables, WriteStore};
use crate::graph::views::{self, Fact};
use crate::graph::{
    ClipFeatures, ClipParams, Driver, DriverConfig, Event, FramePairs, MotionFeatures, MusicRhythm, OpticalFlow,
    Progress, Record, StreamId,
};
use crate::live::RetryPolicy;
use crate::live::events::FeedEventLog;
use crate::live::metrics::Metrics;
use crate::source::SourceConfig;
use crate::train::clips::TrainingClips;
use crate::train::infer::RhythmModel;
use crate::train::trained::TrainedModel;

/// Which flow backend each worker builds.
#[derive(Clone, Debug)]
pub enum FlowChoice {
    Dis(DisParams),
    PwcNet { weights: PathBuf, device: tch::Device, half: bool },
}

impl FlowChoice {
    /// The backend of one of `workers_per_process` workers: they share the
    /// cores, so DIS gets this worker's share of them.
    pub fn worker_backend(&self, workers_per_process: usize) -> Result<FlowBackend, String> {
        match self {
            FlowChoice::Dis(params) => {
                FlowChoice::Dis(DisParams { threads: dis_threads(workers_per_process), ..*params }).backend()
            }
            other => other.backend(),
        }
    }

    /// Builds the backend (loading PWC-Net's weights).
    pub fn backend(&self) -> Result<FlowBackend, String> {
        match self {
            FlowChoice::Dis(params) => Ok(FlowBackend::Dis(*params)),
            FlowChoice::PwcNet { weights, device, half } => {
                FlowBackend::pwcnet(weights, *device, *half).map_err(|e| e.to_string())
            }
        }
    }
}

/// Everything a run needs; the same on every process.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The inputs, in a fixed order: their index is their stream id.
    pub inputs: Vec<String>,
    /// Extract none of the inputs (the run only refreshes the views).
    pub extract_none: bool,
    pub store: PathBuf,
    pub source: SourceConfig,
    pub rhythm: RhythmParams,
    pub hoof: HoofParams,
    pub clip_rule: ClipRule,
    pub beat_align_sigma_s: f64,
    pub flow: FlowChoice,
    /// Frame pairs per flow batch.
    pub batch: usize,
    /// Inputs a worker decodes at once.
    pub max_open: usize,
    /// Epochs the sources may run ahead of the store.
    pub max_lag: u64,
    pub tables: Tables,
    /// Workers in each process (to share the cores among them).
    pub workers_per_process: usize,
    pub target_file_bytes: u64,
    pub row_group_rows: usize,
    /// How often a live input's rows are committed.
    pub commit_interval: std::time::Duration,
    /// How live feeds reconnect.
    pub retry: RetryPolicy,
    /// A trained MuDaR whose outputs join `video_frames` and `clips`.
    pub model: Option<ModelChoice>,
}

/// The trained model of `mudar extract --model`, described by what its
/// checkpoint holds (each worker loads its own copy).
#[derive(Clone, Debug)]
pub struct ModelChoice {
    /// The checkpoint's JSON.
    pub checkpoint: PathBuf,
    pub step: u64,
    /// Values in a clip's embedding (the store's vector width).
    pub embedding_dim: usize,
    pub device: tch::Device,
}

impl ModelChoice {
    /// Reads the checkpoint (weights included, so a broken one fails before the run).
    pub fn load(checkpoint: &Path, device: tch::Device) -> Result<(ModelChoice, TrainedModel), String> {
        let trained = TrainedModel::load(checkpoint, device)?;
        let choice = ModelChoice {
            checkpoint: trained.path.clone(),
            step: trained.info.step,
            embedding_dim: trained.config().embedding_len() as usize,
            device,
        };
        Ok((choice, trained))
    }
}

impl Plan {
    /// How the `video_frames` and `clips` tables look.
    pub fn layout(&self) -> Layout {
        Layout { hoof_bins: self.hoof.bins, embedding_dim: self.model.as_ref().map(|m| m.embedding_dim) }
    }

    /// The configuration that determines the rows (recorded in every file
    /// and in the manifest; an input committed with it is not extracted again).
    pub fn config_json(&self) -> String {
        let video = self.source.video.expect("extraction decodes video");
        let audio = self.source.audio.expect("extraction decodes audio");
        let flow = match &self.flow {
            // Threads do not change the flow: leave them out, or a re-run with other -w would redo everything.
            FlowChoice::Dis(params) => {
                json!({ "backend": "dis", "params": format!("{:?}", DisParams { threads: 0, ..*params }) })
            }
            FlowChoice::PwcNet { weights, half, .. } => json!({
                "backend": "pwcnet",
                "weights": weights.file_name().map(|n| n.to_string_lossy().into_owned()),
                "weights_bytes": std::fs::metadata(weights).map(|m| m.len()).ok(),
                "half": half,
            }),
        };
        json!({
            "schema_version": mudar_schemas::SCHEMA_VERSION,
            "audio": { "sample_rate": audio.sample_rate },
            "video": { "width": video.width, "height": video.height, "fps": video.fps, "resize": format!("{:?}", video.resize) },
            "rhythm": format!("{:?}", self.rhythm),
            "hoof": { "bins": self.hoof.bins, "symmetric": self.hoof.symmetric, "min_magnitude": self.hoof.min_magnitude },
            "clip_rule": format!("{:?}", self.clip_rule),
            "beat_align_sigma_s": self.beat_align_sigma_s,
            "flow": flow,
            "tables": self.tables,
            "model": self.model.as_ref().map(|m| json!({
                "checkpoint": m.checkpoint.file_name().map(|n| n.to_string_lossy().into_owned()),
                "step": m.step,
                "weights_bytes": std::fs::metadata(m.checkpoint.with_extension("safetensors")).map(|m| m.len()).ok(),
            })),
        })
        .to_string()
    }

    fn table_schemas(&self) -> Vec<(&'static str, arrow_schema::SchemaRef)> {
        let mut tables = vec![(MEDIA, tables::media_schema())];
        if self.tables.audio_frames {
            tables.push((AUDIO_FRAMES, tables::audio_frames_schema()));
        }
        if self.tables.video_frames {
            tables.push((VIDEO_FRAMES, tables::video_frames_schema(self.layout())));
        }
        if self.tables.clips {
            tables.push((CLIPS, tables::clips_schema(self.layout())));
        }
        tables
    }
}

/// What one worker did.
#[derive(Debug, Default)]
pub struct WorkerReport {
    pub committed: Vec<InputReport>,
    pub interrupted: Vec<String>,
}

/// What a process's run did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Inputs committed by this process's workers.
    pub committed: Vec<InputReport>,
    /// Inputs left to the other live runs that were extracting them.
    pub busy: Vec<Busy>,
    /// Inputs a stop left unfinished (not committed: a later run extracts them).
    pub interrupted: Vec<String>,
}

/// The inputs this process claimed in the store, shared by its workers: the
/// first worker to get here claims for all (once the store is prepared), and
/// the claim lasts until every worker is done.
type ProcessClaim = Arc<std::sync::Mutex<Option<Claimed>>>;

/// Runs the plan on this process's workers (`config`: timely's, e.g. from
/// `-w/-n/-p/-h`); `progress` sees every input open, advance and close. Once
/// `stop` is set (Ctrl-C, SIGTERM), live feeds end with their last window
/// committed and files are left for a later run.
pub fn run(
    plan: Arc<Plan>,
    config: timely::Config,
    progress: Arc<dyn Fn(Progress<'_>) + Send + Sync>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    metrics: Option<Arc<Metrics>>,
) -> Result<RunReport, String> {
    let claim = ProcessClaim::default();
    let shared = claim.clone();
    let guards =
        timely::execute(config, move |worker| run_worker(worker, &plan, &shared, &*progress, &stop, metrics.clone()))?;
    let mut report = RunReport::default();
    for result in guards.join() {
        let worker = result.map_err(|e| format!("a worker failed: {e}"))??;
        report.committed.extend(worker.committed);
        report.interrupted.extend(worker.interrupted);
    }
    let claim = claim.lock().unwrap_or_else(|p| p.into_inner()).take();
    report.busy = claim.map(|c| c.busy).unwrap_or_default();
    crate::source::join_teardowns(std::time::Duration::from_secs(5));
    Ok(report)
}

/// The inputs this worker extracts, with their stream ids: its share of the
/// plan's, less those committed with the same configuration and those other
/// live runs hold. The first worker of a process claims for all of them.
fn my_inputs(
    plan: &Plan,
    claim: &ProcessClaim,
    config: &str,
    (index, peers): (usize, usize),
) -> Result<Vec<(StreamId, String)>, String> {
    if plan.extract_none {
        return Ok(Vec::new());
    }
    let per_process = plan.workers_per_process.max(1);
    let process = index / per_process;
    let mut claim = claim.lock().unwrap_or_else(|p| p.into_inner());
    if claim.is_none() {
        let ours = |i: usize| (i % peers) / per_process == process;
        let claimed = mudar_sinks::store::claim_inputs(&plan.store, |committed| {
            let mut wanted: Vec<String> =
                plan.inputs.iter().enumerate().filter(|(i, _)| ours(*i)).map(|(_, input)| input.clone()).collect();
            wanted.retain(|input| committed.get(input).map(String::as_str) != Some(config));
            wanted
        })
        .map_err(|e| e.to_string())?;
        *claim = Some(claimed);
    }
    let claimed: std::collections::HashSet<&String> = claim.as_ref().expect("claimed above").inputs.iter().collect();
    Ok(plan
        .inputs
        .iter()
        .enumerate()
        .filter(|(i, input)| i % peers == index && claimed.contains(input))
        .map(|(i, input)| (i as StreamId, input.clone()))
        .collect())
}

fn run_worker(
    worker: &mut timely::worker::Worker,
    plan: &Plan,
    claim: &ProcessClaim,
    progress: &(dyn Fn(Progress<'_>) + Send + Sync),
    stop: &std::sync::atomic::AtomicBool,
    metrics: Option<Arc<Metrics>>,
) -> Result<WorkerReport, String> {
    let (index, peers) = (worker.index(), worker.peers());
    let backend = Rc::new(plan.flow.worker_backend(plan.workers_per_process)?);
    let model = match &plan.model {
        Some(choice) => Some(Rc::new(TrainedModel::load(&choice.checkpoint, choice.device)?)),
        None => None,
    };
    let config = plan.config_json();
    let store_config = StoreConfig {
        target_file_bytes: plan.target_file_bytes,
        row_group_rows: plan.row_group_rows,
        config_json: config.clone(),
    };
    let names = (0..).map(|k| format!("w{}", index + k * peers)).take(1024);
    let store = StoreWriter::open_first_free(&plan.store, names, &plan.table_schemas(), store_config)
        .map_err(|e| e.to_string())?;
    let store = Rc::new(RefCell::new(store));
    let error: Rc<RefCell<Option<SinkError>>> = Rc::new(RefCell::new(None));
    let committed = Rc::new(RefCell::new(Vec::new()));

    let mut events = InputHandle::new();
    let probe = ProbeHandle::new();
    let earlier_facts = RefCell::new(None);
    let view_config = StoreConfig { config_json: config.clone(), ..StoreConfig::default() };
    let frame_s = 1.0 / plan.source.video.map_or(8, |v| v.fps) as f64;
    let clip_params =
        ClipParams { rule: plan.clip_rule, rhythm: plan.rhythm, frame_s, beat_align_sigma_s: plan.beat_align_sigma_s };
    let beats = VisualBeatParams::for_fps(1.0 / frame_s);
    worker.dataflow::<u64, _, _>(|scope| {
        let events = scope.input_from(&mut events).container::<Vec<(StreamId, Event)>>();
        let audio = events.clone().music_rhythm(plan.rhythm);
        let motion = events.clone().frame_pairs().optical_flow(backend, plan.batch).motion_features(plan.hoof, beats);
        let clips = events.clone().clip_features(motion.clone(), clip_params);
        let model_outputs = model.map(|model| {
            let params = model.clip_params(plan.clip_rule, plan.rhythm);
            events.clone().training_clips(motion.clone(), params).rhythm_model(model)
        });
        let lifecycle = events.flat_map(|(id, event)| match event {
            Event::Opened(opened) => Some((id, Record::Opened(opened))),
            Event::SenderClock(offset_us) => Some((id, Record::SenderClock(offset_us))),
            Event::Closed(failure) => Some((id, Record::Closed(failure))),
            Event::Audio(_) | Event::Video(_) => None,
        });
        let reports = committed.clone();
        let written = scope
            .concatenate([lifecycle, audio, motion, clips].into_iter().chain(model_outputs))
            .write_store(
                store.clone(),
                plan.tables,
                plan.layout(),
                error.clone(),
                plan.commit_interval,
                metrics.clone(),
            )
            .inspect(move |report| reports.borrow_mut().push(report.clone()));
        written.clone().probe_with(&probe);
        // The per-video view: what the store held before this run, plus what it commits.
        let (facts_input, earlier) = scope.new_collection::<(String, Fact), isize>();
        *earlier_facts.borrow_mut() = Some(facts_input);
        let facts = earlier.concat(views::committed_facts(written));
        views::maintain_videos(facts, plan.store.clone(), view_config, index == 0).probe_with(&probe);
    });
    let mut earlier_facts = earlier_facts.borrow_mut().take().expect("built with the dataflow");
    if index == 0 {
        for (input, fact) in views::facts_in_store(&plan.store).map_err(|e| e.to_string())? {
            earlier_facts.insert((input, fact));
        }
    }
    earlier_facts.close();

    // Read the store only now: in a cluster, process 0 has prepared it (recovery, removals)
    // before connecting, and the workers start once every process is connected.
    let mine = my_inputs(plan, claim, &config, (index, peers))?;
    let driver_config = DriverConfig {
        source: plan.source.clone(),
        max_open: plan.max_open,
        packets_per_epoch: 16,
        retry: plan.retry,
        metrics: metrics.clone(),
    };
    let mut driver = Driver::new(mine, driver_config);
    let stopped = || stop.load(std::sync::atomic::Ordering::Relaxed);
    let events_config = StoreConfig { config_json: config.clone(), ..StoreConfig::default() };
    let mut feed_events = FeedEventLog::new(plan.store.clone(), events_config, (index, peers));
    let mut on_progress = |p: Progress<'_>| {
        if let Progress::Feed { input, event } = &p
            && let Err(e) = feed_events.record(input, event)
        {
            *error.borrow_mut() = Some(SinkError::Store(e));
        }
        progress(p)
    };
    driver.run(worker, events, &probe, plan.max_lag, &mut on_progress, &|| error.borrow().is_none(), &stopped);
    if let Some(e) = error.borrow_mut().take() {
        return Err(format!("writing the store failed: {e}"));
    }
    // A stop leaves unfinished files: their rows go, so the store has nothing to recover.
    store.borrow_mut().flush_and_discard().map_err(|e| format!("writing the store failed: {e}"))?;
    let committed = committed.borrow().clone();
    Ok(WorkerReport { committed, interrupted: driver.interrupted().to_vec() })
}

fn dis_threads(workers_per_process: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / workers_per_process.max(1)).max(1)
}

/// Whether `path` is a store with an interrupted run's leftovers.
pub fn needs_recovery(path: &Path) -> Result<bool, StoreError> {
    mudar_sinks::store::pending_recovery(path).map(|r| !r.is_clean())
}
