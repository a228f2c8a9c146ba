//! Self-supervised training of MuDaR from the extraction graph.
//!
//! A run has two phases on every worker of a timely cluster:
//!
//! 1. Clips: the same sources, flow and HOOF stages as `mudar extract` feed
//!    [`clips::TrainingClips`], which caches each clip (frames, HOOF, audio
//!    input, onset targets) under `RUN_DIR/cache`. Epochs read the cache:
//!    decoding and flow are the expensive part and do not change.
//! 2. Steps: data parallel. Every worker derives the same batch plan from
//!    the seed (shuffle per epoch, negatives by Eq. 16/17 per step), computes
//!    the gradient of its contiguous share of the global batch, and sends it
//!    through the dataflow to every worker; each averages them (weighted by
//!    clips, in worker order) once the frontier says all have arrived, and
//!    takes the same Adam step, so the weights stay identical everywhere.
//!
//! Worker 0 writes the metrics (`metrics.csv`) and checkpoints. Everything
//! random derives from the seed and the step, so `--resume` from a
//! checkpoint repeats the uninterrupted run's steps.

pub mod clips;
pub mod eval;
pub mod infer;
pub mod trained;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use mudar_operators::model::optim::{Adam, AdamParams, LossScale};
use mudar_operators::model::sampling::{PretextTask, draw_negative, draw_shift};
use mudar_operators::model::{
    DecisionThresholds, ModelConfig, MuDaR, RhythmTargets, SamplingParams, TrainingBatch, checkpoint,
    clips_without_audio,
};
use mudar_operators::motion::{HoofParams, VisualBeatParams};
use mudar_operators::rhythm::RhythmParams;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tch::{Device, Kind, Tensor, nn};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Input, Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

use crate::clip::ClipRule;
use crate::extract::FlowChoice;
use crate::graph::{Driver, DriverConfig, Event, FramePairs, MotionFeatures, OpticalFlow, Progress, StreamId};
use crate::source::{AudioOutput, Resize, SourceConfig, VideoOutput};
use clips::{CachedClip, ClipOutcome, TrainingClipParams, TrainingClips, cache_path, read_cache, write_clip};

/// Everything a training run needs; the same on every process.
#[derive(Clone, Debug)]
pub struct TrainPlan {
    pub inputs: Vec<String>,
    pub run_dir: PathBuf,
    pub source: SourceConfig,
    pub rhythm: RhythmParams,
    pub hoof: HoofParams,
    pub flow: FlowChoice,
    pub clip_rule: ClipRule,
    pub model: ModelConfig,
    pub sampling: SamplingParams,
    pub adam: AdamParams,
    /// Clips per step, over all workers.
    pub batch: usize,
    pub epochs: u64,
    /// Stop after this many steps in all (for tests and demos).
    pub max_steps: Option<u64>,
    pub seed: u64,
    /// Steps between checkpoints (and one at the end).
    pub checkpoint_every: u64,
    pub resume: bool,
    /// PWC-Net weights whose feature pyramid initialises the visual encoder
    /// (the paper's set-up); none: random, like the rest of the model.
    pub pyramid_weights: Option<PathBuf>,
    pub device: Device,
    /// float16 autocast on CUDA with dynamic loss scaling (the scaling runs
    /// on any device, so a CPU run can check it changes nothing).
    pub mixed_precision: bool,
    pub workers_per_process: usize,
    pub max_open: usize,
}

impl TrainPlan {
    /// The clip cache this run trains from.
    pub fn cache_plan(&self) -> CachePlan {
        CachePlan {
            inputs: self.inputs.clone(),
            source: self.source.clone(),
            hoof: self.hoof,
            flow: self.flow.clone(),
            clips: TrainingClipParams::for_model(&self.model, &self.sampling, self.clip_rule, self.rhythm),
            workers_per_process: self.workers_per_process,
            max_open: self.max_open,
        }
    }
}

/// What a clip cache is made from: the inputs, how they are decoded and
/// analysed, and how clips are cut from them. Training and evaluation
/// build theirs the same way.
#[derive(Clone, Debug)]
pub struct CachePlan {
    pub inputs: Vec<String>,
    pub source: SourceConfig,
    pub hoof: HoofParams,
    pub flow: FlowChoice,
    pub clips: TrainingClipParams,
    pub workers_per_process: usize,
    pub max_open: usize,
}

/// What the sources decode for a model: mono audio at the rhythm's sample
/// rate, square frames of the model's size at its frame rate.
pub fn source_for(model: &ModelConfig, rhythm: &RhythmParams) -> SourceConfig {
    SourceConfig {
        audio: Some(AudioOutput { sample_rate: rhythm.spectrogram.sr }),
        video: Some(VideoOutput {
            width: model.frame_size as u32,
            height: model.frame_size as u32,
            fps: model.fps as u32,
            resize: Resize::Stretch,
        }),
        ..SourceConfig::default()
    }
}

/// What the run reports as it goes.
#[derive(Debug)]
pub enum TrainProgress<'a> {
    /// Phase 1: the extraction graph's progress.
    Clips(Progress<'a>),
    /// A clip or input that gives no training example, and why.
    Skipped {
        video: &'a str,
        reason: &'a str,
    },
    /// Phase 2 is starting.
    Training {
        clips: usize,
        videos: usize,
        steps: u64,
        first_step: u64,
    },
    Step(&'a StepMetrics),
    Checkpoint(&'a Path),
}

/// One step's numbers, as `metrics.csv` records them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: u64,
    pub epoch: u64,
    pub task: String,
    pub loss: f64,
    pub implicit: f64,
    pub explicit: f64,
    pub triplet_accuracy: f64,
    pub grad_norm: f64,
    pub learning_rate: f64,
    pub clips_per_s: f64,
}

/// What a finished (or stopped) run did.
#[derive(Debug, Default)]
pub struct TrainReport {
    pub clips: usize,
    pub steps: u64,
    pub last: Option<StepMetrics>,
    pub checkpoint: Option<PathBuf>,
    pub stopped: bool,
    /// Per worker of this process: Σ over all weights of `w·(1 + i)` for the
    /// i-th element in name order, which differs when any weight does.
    pub weight_checksums: Vec<(usize, f64)>,
}

/// Trains per the plan on this process's workers; `stop` (Ctrl-C) ends the
/// run after the current step with a checkpoint.
pub fn run(
    plan: Arc<TrainPlan>,
    config: timely::Config,
    stop: Arc<AtomicBool>,
    progress: Arc<dyn Fn(TrainProgress<'_>) + Send + Sync>,
) -> Result<TrainReport, String> {
    // libtorch's generator is one per process: the workers of a process draw
    // their initial weights from it in turn, all before any of them trains.
    let initialised = Arc::new(std::sync::Barrier::new(plan.workers_per_process.max(1)));
    let guards = timely::execute(config, move |worker| run_worker(worker, &plan, &stop, &initialised, &*progress))?;
    let mut report = TrainReport::default();
    let mut checksums = Vec::new();
    for (i, result) in guards.join().into_iter().enumerate() {
        let worker_report = result.map_err(|e| format!("a worker failed: {e}"))??;
        checksums.extend(worker_report.weight_checksums.iter().copied());
        if i == 0 {
            report = worker_report;
        }
    }
    report.weight_checksums = checksums;
    Ok(report)
}

fn run_worker(
    worker: &mut timely::worker::Worker,
    plan: &TrainPlan,
    stop: &AtomicBool,
    initialised: &std::sync::Barrier,
    progress: &(dyn Fn(TrainProgress<'_>) + Send + Sync),
) -> Result<TrainReport, String> {
    let cache = plan.run_dir.join("cache");
    let cache_plan = plan.cache_plan();
    if !cache_is_complete(&cache, &cache_plan) {
        build_cache(worker, &cache_plan, &cache, progress)?;
    }
    let clips = read_cache(&cache)?;
    if clips.len() < 2 {
        return Err(format!(
            "{} training clips from {} inputs: at least 2 are needed (see the skipped clips above)",
            clips.len(),
            plan.inputs.len()
        ));
    }
    train(worker, plan, clips, stop, initialised, progress)
}

// ---------------------------------------------------------------------------
// Phase 1: the clip cache.

fn cache_fingerprint(plan: &CachePlan) -> String {
    let clips = &plan.clips;
    json!({
        "inputs": plan.inputs,
        "source": format!("{:?}", plan.source.video),
        "rhythm": format!("{:?}", clips.rhythm),
        "hoof": format!("{:?}", plan.hoof),
        "clip_rule": format!("{:?}", clips.rule),
        "frames": clips.frames,
        "audio_frames": clips.audio_frames,
        "margin": format!("{:?}", clips.margin),
    })
    .to_string()
}

pub(crate) fn cache_is_complete(cache: &Path, plan: &CachePlan) -> bool {
    std::fs::read_to_string(cache.join("complete.json")).is_ok_and(|text| text == cache_fingerprint(plan))
}

/// Runs the plan's inputs through the extraction graph into `cache`, a
/// clip per file, and marks it complete.
pub(crate) fn build_cache(
    worker: &mut timely::worker::Worker,
    plan: &CachePlan,
    cache: &Path,
    progress: &(dyn Fn(TrainProgress<'_>) + Send + Sync),
) -> Result<(), String> {
    let (index, peers) = (worker.index(), worker.peers());
    std::fs::create_dir_all(cache).map_err(|e| format!("{}: cannot create the clip cache: {e}", cache.display()))?;
    let params = plan.clips;
    let backend = Rc::new(plan.flow.worker_backend(plan.workers_per_process)?);
    let beats = VisualBeatParams::for_fps(params.fps);
    let error: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
    let skipped: Rc<RefCell<Vec<(StreamId, String)>>> = Rc::new(RefCell::new(Vec::new()));
    let mut events = InputHandle::new();
    let probe = ProbeHandle::new();
    worker.dataflow::<u64, _, _>(|scope| {
        let events = scope.input_from(&mut events).container::<Vec<(StreamId, Event)>>();
        let motion = events.clone().frame_pairs().optical_flow(backend, 8).motion_features(plan.hoof, beats);
        let dir = cache.to_owned();
        let error = error.clone();
        let skipped = skipped.clone();
        events
            .training_clips(motion, params)
            .inspect(move |(stream, outcome): &(StreamId, ClipOutcome)| match outcome {
                Ok(clip) => {
                    if let Err(e) = write_clip(&cache_path(&dir, *stream, clip.meta.clip), clip) {
                        error.borrow_mut().get_or_insert(e);
                    }
                }
                Err(reason) => skipped.borrow_mut().push((*stream, reason.clone())),
            })
            .probe_with(&probe);
    });
    let mine: Vec<(StreamId, String)> = plan
        .inputs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % peers == index)
        .map(|(i, input)| (i as StreamId, input.clone()))
        .collect();
    let driver_config = DriverConfig {
        source: plan.source.clone(),
        max_open: plan.max_open,
        packets_per_epoch: 16,
        retry: crate::live::RetryPolicy::default(),
        metrics: None,
    };
    let mut driver = Driver::new(mine, driver_config);
    let report_skipped = || {
        for (stream, reason) in skipped.borrow_mut().drain(..) {
            progress(TrainProgress::Skipped { video: &plan.inputs[stream as usize], reason: &reason });
        }
    };
    let go_on = || {
        report_skipped();
        error.borrow().is_none()
    };
    driver.run(worker, events, &probe, 4, &mut |p| progress(TrainProgress::Clips(p)), &go_on, &|| false);
    report_skipped();
    if let Some(e) = error.borrow_mut().take() {
        return Err(e);
    }
    if index == 0 {
        std::fs::write(cache.join("complete.json"), cache_fingerprint(plan))
            .map_err(|e| format!("{}: cannot mark the clip cache complete: {e}", cache.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Phase 2: data-parallel steps.

/// One worker's contribution to a step.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LocalGradient {
    worker: usize,
    clips: usize,
    gradient: Vec<f32>,
    /// Loss terms summed over the worker's clips (weighted like the gradient).
    implicit: f64,
    explicit: f64,
    correct_triplets: f64,
    /// This worker was asked to stop (Ctrl-C): every worker stops after this step.
    stop: bool,
}

/// The clip and negative of one position of a step's global batch.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Example {
    clip: usize,
    negative: Negative,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Negative {
    /// Another video's clip (AVC).
    Other(usize),
    /// The clip's own audio, shifted by this many video frames (AVTS).
    Shifted(i64),
}

struct Trainer {
    plan: TrainPlan,
    clips: Vec<CachedClip>,
    onsets: Vec<Vec<bool>>,
    model: MuDaR,
    vs: nn::VarStore,
    adam: Adam,
    steps_per_epoch: u64,
    worker: usize,
    peers: usize,
    metrics: Option<std::fs::File>,
    last: Option<StepMetrics>,
    checkpoint: Option<PathBuf>,
    step_started: Instant,
    stopping: bool,
    /// Fitted at the end of the run.
    thresholds: Option<DecisionThresholds>,
    /// With mixed precision.
    loss_scale: Option<LossScale>,
}

fn train(
    worker: &mut timely::worker::Worker,
    plan: &TrainPlan,
    clips: Vec<CachedClip>,
    stop: &AtomicBool,
    initialised: &std::sync::Barrier,
    progress: &(dyn Fn(TrainProgress<'_>) + Send + Sync),
) -> Result<TrainReport, String> {
    let (index, peers) = (worker.index(), worker.peers());
    if plan.batch < peers {
        return Err(format!("a batch of {} clips cannot be shared among {peers} workers", plan.batch));
    }
    let batch = plan.batch.min(clips.len());
    let steps_per_epoch = (clips.len() / batch) as u64;
    let planned_steps = steps_per_epoch * plan.epochs;
    // --steps stops the run early; the schedule stays the whole run's, so a run stopped and resumed is the same run.
    let total_steps = plan.max_steps.unwrap_or(u64::MAX).min(planned_steps);

    // The same initial weights on every worker: each draws them from the
    // seeded generator in turn, and none trains until all have.
    static INITIALISING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let built = {
        let _turn = INITIALISING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tch::manual_seed(plan.seed as i64);
        let vs = nn::VarStore::new(plan.device);
        MuDaR::new(&vs.root(), &plan.model).and_then(|model| {
            if let Some(path) = &plan.pyramid_weights {
                MuDaR::load_pyramid(&vs, path).map_err(|e| e.to_string())?;
            }
            Ok((vs, model))
        })
    };
    initialised.wait();
    let (mut vs, model) = built?;
    let adam_params = AdamParams { total_steps: planned_steps, ..plan.adam };
    let mut adam = Adam::new(&vs, adam_params);
    let checkpoints = plan.run_dir.join("checkpoints");
    let mut first_step = 0;
    let mut loss_scale = plan.mixed_precision.then(LossScale::new);
    if plan.resume && checkpoints.join("latest.json").exists() {
        let (folder, info) = checkpoint::read_info(&checkpoints)?;
        if info.seed != plan.seed {
            return Err(format!("the checkpoint was trained with seed {}, not {}", info.seed, plan.seed));
        }
        checkpoint::load(&folder, &info, &mut vs, Some(&mut adam))?;
        first_step = info.step;
        if let Some(scale) = &mut loss_scale {
            *scale = serde_json::from_value(info.config["loss_scale"].clone()).unwrap_or_default();
        }
    }
    let metrics = if index == 0 { Some(open_metrics(&plan.run_dir, first_step)?) } else { None };
    let videos = clips.iter().map(|c| &c.meta.video).collect::<std::collections::BTreeSet<_>>().len();
    if index == 0 {
        progress(TrainProgress::Training { clips: clips.len(), videos, steps: total_steps, first_step });
    }
    let onsets = clips.iter().map(CachedClip::onset_flags).collect();
    let plan_for_trainer = TrainPlan { batch, adam: adam_params, ..plan.clone() };
    let trainer = Rc::new(RefCell::new(Trainer {
        plan: plan_for_trainer,
        clips,
        onsets,
        model,
        vs,
        adam,
        steps_per_epoch,
        worker: index,
        peers,
        metrics,
        last: None,
        checkpoint: None,
        step_started: Instant::now(),
        stopping: false,
        thresholds: None,
        loss_scale,
    }));

    let mut steps = InputHandle::new();
    let probe = ProbeHandle::new();
    let reported: Rc<RefCell<Vec<StepMetrics>>> = Rc::new(RefCell::new(Vec::new()));
    worker.dataflow::<u64, _, _>(|scope| {
        let local_trainer = trainer.clone();
        let step_trainer = trainer.clone();
        let reported = reported.clone();
        scope
            .input_from(&mut steps)
            .container::<Vec<(u64, bool)>>()
            .unary(Pipeline, "LocalGradient", move |_, _| {
                move |input, output| {
                    input.for_each(|time, data| {
                        let mut session = output.session(&time);
                        for (step, stop) in data.drain(..) {
                            let mut local = local_trainer.borrow_mut().local_gradient(step);
                            local.stop = stop;
                            session.give(local);
                        }
                    });
                }
            })
            .broadcast()
            .unary_frontier(Pipeline, "AverageAndStep", move |_, _| {
                let mut arrived: HashMap<u64, (timely::dataflow::operators::Capability<u64>, Vec<LocalGradient>)> =
                    HashMap::new();
                move |(input, frontier), output| {
                    input.for_each(|time, data| {
                        let Some(cap) = time.retain_least(0) else { return };
                        arrived.entry(*cap.time()).or_insert_with(|| (cap, Vec::new())).1.append(data);
                    });
                    let mut complete: Vec<u64> = arrived.keys().filter(|t| !frontier.less_equal(t)).copied().collect();
                    complete.sort();
                    for t in complete {
                        let (cap, gradients) = arrived.remove(&t).expect("listed");
                        let metrics = step_trainer.borrow_mut().apply(t, gradients);
                        reported.borrow_mut().push(metrics.clone());
                        output.session(&cap).give(metrics);
                    }
                }
            })
            .container::<Vec<StepMetrics>>()
            .probe_with(&probe);
    });

    for step in first_step..total_steps {
        trainer.borrow_mut().step_started = Instant::now();
        steps.send((step, stop.load(Ordering::SeqCst)));
        steps.advance_to(step + 1);
        worker.step_while(|| probe.less_than(&(step + 1)));
        for metrics in reported.borrow_mut().drain(..) {
            if index == 0 {
                progress(TrainProgress::Step(&metrics));
            }
        }
        let mut t = trainer.borrow_mut();
        let done = step + 1 == total_steps;
        if index == 0 && (done || t.stopping || (step + 1) % plan.checkpoint_every.max(1) == 0) {
            if done || t.stopping {
                t.fit_thresholds();
            }
            let path = t.save_checkpoint(step + 1)?;
            progress(TrainProgress::Checkpoint(&path));
        }
        if t.stopping {
            break;
        }
    }
    drop(steps);
    worker.step_while(|| !probe.done());
    let t = trainer.borrow();
    Ok(TrainReport {
        clips: t.clips.len(),
        steps: t.adam.step_count(),
        last: t.last.clone(),
        checkpoint: t.checkpoint.clone(),
        stopped: t.stopping,
        weight_checksums: vec![(index, t.weight_checksum())],
    })
}

impl Trainer {
    /// The global batch of `step`: the epoch's shuffle, and a negative for
    /// each clip by the curriculum's task (falling back to the other task
    /// when a clip has no admissible negative of its own).
    fn examples(&self, step: u64) -> Vec<Example> {
        let epoch = step / self.steps_per_epoch;
        let n = self.clips.len();
        let mut order: Vec<usize> = (0..n).collect();
        shuffle(&mut order, &mut ChaCha8Rng::seed_from_u64(self.plan.seed ^ (epoch << 32) ^ 0x5eed));
        let at = (step % self.steps_per_epoch) as usize * self.plan.batch;
        let mut rng = ChaCha8Rng::seed_from_u64(self.plan.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ step);
        let videos: Vec<&String> = self.clips.iter().map(|c| &c.meta.video).collect();
        let sampling = &self.plan.sampling;
        order[at..at + self.plan.batch]
            .iter()
            .map(|&clip| {
                let other = |rng: &mut ChaCha8Rng| {
                    draw_negative(rng, clip, &self.onsets, &videos, sampling).map(Negative::Other)
                };
                let shifted = |rng: &mut ChaCha8Rng| self.draw_shift(rng, clip).map(Negative::Shifted);
                let negative = match sampling.task(epoch) {
                    PretextTask::Avc => other(&mut rng).or_else(|| shifted(&mut rng)),
                    PretextTask::Avts => shifted(&mut rng).or_else(|| other(&mut rng)),
                }
                // No admissible negative: any other clip, so the step keeps its size.
                .unwrap_or(Negative::Other((clip + 1) % n));
                Example { clip, negative }
            })
            .collect()
    }

    fn draw_shift(&self, rng: &mut ChaCha8Rng, clip: usize) -> Option<i64> {
        let model = &self.plan.model;
        let c = &self.clips[clip];
        let (before, after) = c.shift_room(model.fps, &self.plan.rhythm.spectrogram, model.audio_frames as usize);
        draw_shift(rng, model.fps, c.meta.tempo_bpm, before, after, &self.plan.sampling)
    }

    /// The audio input of `clip`, starting `shift` video frames after its own.
    fn audio_of(&self, clip: usize, shift: i64) -> Tensor {
        let model = &self.plan.model;
        self.clips[clip].audio_shifted(shift, model.fps, &self.plan.rhythm.spectrogram, model.audio_frames)
    }

    /// This worker's share of the step: contiguous positions of the global batch.
    fn share(&self) -> (usize, usize) {
        let b = self.plan.batch;
        (self.worker * b / self.peers, (self.worker + 1) * b / self.peers)
    }

    fn local_gradient(&mut self, step: u64) -> LocalGradient {
        let examples = self.examples(step);
        let (from, to) = self.share();
        let mine = &examples[from..to];
        let device = self.plan.device;
        let stack = |tensors: Vec<Tensor>| Tensor::stack(&tensors, 0).to_device(device);
        let frames = stack(mine.iter().map(|e| self.clips[e.clip].frames.shallow_clone()).collect())
            .permute([0, 1, 4, 2, 3])
            .to_kind(Kind::Float)
            / 255.0;
        let negative_audio = stack(
            mine.iter()
                .map(|e| match e.negative {
                    Negative::Other(other) => self.audio_of(other, 0),
                    Negative::Shifted(shift) => self.audio_of(e.clip, shift),
                })
                .collect(),
        );
        let gate = clips_without_audio(self.plan.batch as i64, self.plan.model.audio_dropout);
        let batch = TrainingBatch {
            frames,
            hoof: stack(mine.iter().map(|e| self.clips[e.clip].hoof.shallow_clone()).collect()),
            audio: stack(mine.iter().map(|e| self.audio_of(e.clip, 0)).collect()),
            negative_audio,
            targets: RhythmTargets {
                onsets: stack(mine.iter().map(|e| self.clips[e.clip].onsets.shallow_clone()).collect()),
                envelope: stack(mine.iter().map(|e| self.clips[e.clip].envelope.shallow_clone()).collect()),
            },
            without_audio: (gate - from as i64).clamp(0, (to - from) as i64),
        };
        // Dropout's randomness, a function of the step and the worker (reproducible
        // with one worker per process: threads of a process share libtorch's generator).
        tch::manual_seed((self.plan.seed ^ (step << 8) ^ self.worker as u64) as i64);
        self.adam.zero_grad();
        let losses = tch::autocast(self.loss_scale.is_some(), || self.model.losses(&batch));
        let scale = self.loss_scale.map_or(1.0, |s| s.scale);
        (&losses.total * scale).backward();
        let clips = mine.len();
        LocalGradient {
            worker: self.worker,
            clips,
            gradient: self.adam.flat_gradient(),
            implicit: losses.implicit.double_value(&[]) * clips as f64,
            explicit: losses.explicit.double_value(&[]) * clips as f64,
            correct_triplets: losses.triplet_accuracy * clips as f64,
            stop: false,
        }
    }

    /// Averages the workers' gradients (in worker order, weighted by their
    /// clips) and takes the step.
    fn apply(&mut self, step: u64, mut gradients: Vec<LocalGradient>) -> StepMetrics {
        gradients.sort_by_key(|g| g.worker);
        let clips: usize = gradients.iter().map(|g| g.clips).sum();
        let mut mean = vec![0f64; gradients[0].gradient.len()];
        for g in &gradients {
            let weight = g.clips as f64 / clips as f64;
            mean.iter_mut().zip(&g.gradient).for_each(|(m, &v)| *m += weight * v as f64);
        }
        let mut mean: Vec<f32> = mean.into_iter().map(|v| v as f32).collect();
        let learning_rate = self.plan.adam.rate_at(self.adam.step_count());
        let overflowed = self.loss_scale.as_mut().is_some_and(|scale| !scale.unscale(&mut mean));
        let grad_norm = if overflowed {
            // Overflowed in float16: no update, and a smaller scale next time.
            self.adam.skip();
            f64::NAN
        } else {
            self.adam.apply(&mean)
        };
        self.stopping |= gradients.iter().any(|g| g.stop);
        let sum = |f: fn(&LocalGradient) -> f64| gradients.iter().map(f).sum::<f64>() / clips as f64;
        let (implicit, explicit) = (sum(|g| g.implicit), sum(|g| g.explicit));
        let model = &self.plan.model;
        let epoch = step / self.steps_per_epoch;
        let metrics = StepMetrics {
            step,
            epoch,
            task: format!("{:?}", self.plan.sampling.task(epoch)).to_lowercase(),
            loss: model.lambda_implicit * implicit + model.lambda_explicit * explicit,
            implicit,
            explicit,
            triplet_accuracy: sum(|g| g.correct_triplets),
            grad_norm,
            learning_rate,
            clips_per_s: clips as f64 / self.step_started.elapsed().as_secs_f64().max(1e-9),
        };
        if let Some(file) = &mut self.metrics {
            let m = &metrics;
            let _ = writeln!(
                file,
                "{},{},{},{:.8},{:.8},{:.8},{:.6},{:.6},{:.3e},{:.3}",
                m.step,
                m.epoch,
                m.task,
                m.loss,
                m.implicit,
                m.explicit,
                m.triplet_accuracy,
                m.grad_norm,
                m.learning_rate,
                m.clips_per_s
            );
            let _ = file.flush();
        }
        self.last = Some(metrics.clone());
        metrics
    }

    /// The classifier's decision thresholds, fitted on (up to 4096 of) the
    /// training clips for the checkpoint at the end of the run.
    fn fit_thresholds(&mut self) {
        const MOST: usize = 4096;
        let every = self.clips.len().div_ceil(MOST).max(1);
        let sample: Vec<CachedClip> = self.clips.iter().step_by(every).map(CachedClip::shallow_clone).collect();
        let tolerance = eval::DEFAULT_TOLERANCE_FRAMES;
        self.thresholds = Some(eval::fit_thresholds(&self.model, &sample, tolerance, self.plan.device));
    }

    fn weight_checksum(&self) -> f64 {
        let mut variables: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        let flat: Vec<Tensor> = variables.iter().map(|(_, v)| v.detach().to_kind(Kind::Double).reshape([-1])).collect();
        let flat = Tensor::cat(&flat, 0);
        let positions = Tensor::arange(flat.numel() as i64, (Kind::Double, flat.device())) + 1.0;
        (flat * positions).sum(Kind::Double).double_value(&[])
    }

    fn save_checkpoint(&mut self, step: u64) -> Result<PathBuf, String> {
        let info = checkpoint::CheckpointInfo {
            step,
            seed: self.plan.seed,
            tensors: String::new(),
            config: json!({
                "model": self.plan.model,
                "sampling": self.plan.sampling,
                "adam": self.plan.adam,
                "batch": self.plan.batch,
                "rhythm": format!("{:?}", self.plan.rhythm),
                "hoof_bins": self.plan.hoof.bins,
                "pyramid_weights": self.plan.pyramid_weights,
                "thresholds": self.thresholds,
                "loss_scale": self.loss_scale,
            }),
        };
        let path = checkpoint::save(&self.plan.run_dir.join("checkpoints"), &self.vs, &self.adam, &info)?;
        self.checkpoint = Some(path.clone());
        Ok(path)
    }
}

/// Fisher-Yates with the run's generator (the same order on every worker).
fn shuffle(items: &mut [usize], rng: &mut ChaCha8Rng) {
    use rand::RngExt;
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

const METRICS_HEADER: &str =
    "step,epoch,task,loss,implicit,explicit,triplet_accuracy,grad_norm,learning_rate,clips_per_s";

/// `metrics.csv`, keeping the rows of steps before `first_step` (a resumed
/// run rewrites the steps after its checkpoint).
fn open_metrics(run_dir: &Path, first_step: u64) -> Result<std::fs::File, String> {
    let path = run_dir.join("metrics.csv");
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let kept: Vec<String> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|line| line.split(',').next().and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s < first_step))
        .map(str::to_owned)
        .collect();
    let mut file = std::fs::File::create(&path).map_err(fail)?;
    writeln!(file, "{METRICS_HEADER}").map_err(fail)?;
    for line in kept {
        writeln!(file, "{line}").map_err(fail)?;
    }
    Ok(file)
}
