//! `mudar train`: self-supervised MuDaR training from the extraction graph.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use mudar_operators::model::optim::AdamParams;
use mudar_operators::model::{AudioStreamInput, ModelConfig, MuDaR, RhythmHead, SamplingParams, VisualStreamInput};
use mudar_operators::motion::HoofParams;
use mudar_operators::rhythm::RhythmParams;
use mudar_pipeline::ClipRule;
use mudar_pipeline::graph::Progress;
use mudar_pipeline::train::{self, TrainPlan, TrainProgress};
use serde_json::json;

use crate::extract::{ClusterArgs, expand_inputs};
use crate::flow::BackendArgs;
use crate::progress;

/// Trains MuDaR (paper Sec. 3) on unlabelled dance videos: the implicit
/// pathway by the triplet loss over AVC then AVTS negatives, the explicit
/// pathway by the focal loss against the music onsets.
///
/// The inputs go through the extraction graph once (decoding, flow, HOOF,
/// music rhythm) into a clip cache in RUN_DIR/cache; epochs read the cache.
/// RUN_DIR/metrics.csv gets a row per step, RUN_DIR/checkpoints a checkpoint
/// every --checkpoint-every steps, at the end and on Ctrl-C; --resume goes on
/// from the latest and repeats exactly the steps an uninterrupted run takes.
/// Data parallel over timely workers (-w, and -n/-p/-h for a cluster; the
/// run folder must be shared): the global --batch is split among them.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    #[arg(required = true, value_name = "INPUTS")]
    inputs: Vec<String>,
    /// The run folder (created if missing).
    #[arg(long, short)]
    out: PathBuf,
    /// tiny: small model, 2 s clips of 96x96 frames (CPU tests, demos);
    /// paper: Sec. 4.1 (8 s clips, 256x256, batch 384, Adam 1e-4, 50 epochs, AVC for 35).
    #[arg(long, default_value = "tiny", value_parser = ["tiny", "paper"])]
    preset: String,
    /// Go on from the latest checkpoint in the run folder.
    #[arg(long)]
    resume: bool,
    /// Start the visual encoder from the feature pyramid of these PWC-Net
    /// weights (safetensors, see scripts/convert_pwcnet.py), as the paper
    /// does; without it the whole model starts random.
    #[arg(long, value_name = "FILE")]
    pyramid_weights: Option<PathBuf>,
    /// Clips per step over all workers (preset: tiny 8, paper 384).
    #[arg(long)]
    batch: Option<usize>,
    /// Epochs (preset: tiny 20, paper 50).
    #[arg(long)]
    epochs: Option<u64>,
    /// Epochs of AVC before AVTS (preset: tiny 2/3 of the epochs, paper 35).
    #[arg(long)]
    avc_epochs: Option<u64>,
    /// Stop after this many steps.
    #[arg(long)]
    steps: Option<u64>,
    /// Peak learning rate (preset: tiny 1e-3, paper 1e-4).
    #[arg(long)]
    lr: Option<f64>,
    /// Steps of learning-rate warm-up before the cosine decay.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Largest global gradient norm (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    clip_grad: f64,
    /// Explicit pathway head: focal (the full model), bce, regression, bilstm-crf (Table 1).
    #[arg(long, default_value = "focal")]
    head: RhythmHead,
    /// p of the audio dropout gate (Eq. 9-10).
    #[arg(long)]
    audio_dropout: Option<f64>,
    /// What the audio encoder reads per audio frame: full (mel, beat, onset envelope and
    /// tempogram, the paper's) or rhythm (the beat and onset envelope only)
    #[arg(long)]
    audio_input: Option<AudioStreamInput>,
    /// Dropout in the transformer layers (preset: tiny 0, paper 0.1).
    #[arg(long)]
    dropout: Option<f64>,
    /// What the implicit pathway's visual transformer reads per frame: frame-difference
    /// (how much each frame differs from the one before, and the change of that; all
    /// standardised per clip), motion (HOOF) or pyramid (the paper's pooled last pyramid
    /// level; meant with --pyramid-weights: a randomly initialised pyramid makes the
    /// embedding collapse).
    #[arg(long, default_value = "frame-difference")]
    visual_input: VisualStreamInput,
    /// α of Eq. 16: the fraction of frames whose onsets must differ for an AVC negative.
    #[arg(long, default_value_t = SamplingParams::default().rhythm_threshold)]
    rhythm_threshold: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 50)]
    checkpoint_every: u64,
    /// mixed: float16 autocast with dynamic loss scaling; fp32: full precision;
    /// auto: mixed on a CUDA device, fp32 elsewhere.
    #[arg(long, default_value = "auto", value_parser = ["auto", "mixed", "fp32"])]
    precision: String,
    /// Clips: paper (8 s around the middle), centered:SECONDS, windows:LENGTH:STRIDE
    /// (preset: tiny windows:2:2, paper paper). Their length must match the preset's.
    #[arg(long)]
    clip: Option<ClipRule>,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// A JSON summary on stdout at the end.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
    #[arg(long, action = clap::ArgAction::Help, help = "Print help")]
    help: Option<bool>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inputs = expand_inputs(&args.inputs)?;
    let paper = args.preset == "paper";
    let mut model = if paper { ModelConfig::paper() } else { ModelConfig::tiny() };
    model.head = args.head;
    model.visual_input = args.visual_input;
    if let Some(p) = args.audio_dropout {
        model.audio_dropout = p;
    }
    if let Some(input) = args.audio_input {
        model.audio_input = input;
    }
    if let Some(p) = args.dropout {
        model.dropout = p;
    }
    model.check().map_err(anyhow::Error::msg)?;
    let epochs = args.epochs.unwrap_or(if paper { 50 } else { 20 });
    let sampling = SamplingParams {
        rhythm_threshold: args.rhythm_threshold,
        avc_epochs: args.avc_epochs.unwrap_or(if paper { 35 } else { epochs * 2 / 3 }),
        ..SamplingParams::default()
    };
    let clip_rule = args.clip.unwrap_or(if paper {
        ClipRule::PAPER
    } else {
        ClipRule::Windows { length: std::time::Duration::from_secs(2), stride: std::time::Duration::from_secs(2) }
    });
    let rhythm = RhythmParams::default();
    let source = train::source_for(&model, &rhythm);
    let device = args.backend.device()?;
    let plan = TrainPlan {
        inputs,
        run_dir: args.out.clone(),
        source,
        rhythm,
        hoof: HoofParams { bins: model.hoof_bins as usize, ..HoofParams::default() },
        flow: args.backend.choice()?,
        clip_rule,
        adam: AdamParams {
            learning_rate: args.lr.unwrap_or(if paper { 1e-4 } else { 1e-3 }),
            warmup_steps: args.warmup,
            max_grad_norm: args.clip_grad,
            ..AdamParams::default()
        },
        batch: args.batch.unwrap_or(if paper { 384 } else { 8 }),
        epochs,
        max_steps: args.steps,
        seed: args.seed,
        checkpoint_every: args.checkpoint_every,
        resume: args.resume,
        pyramid_weights: args.pyramid_weights.clone(),
        device,
        mixed_precision: match args.precision.as_str() {
            "auto" => device.is_cuda(),
            other => other == "mixed",
        },
        workers_per_process: args.cluster.workers,
        max_open: 2,
        model,
        sampling,
    };
    if let Some(path) = &plan.pyramid_weights {
        // A file that does not fit fails now, not after the clip cache is built.
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        MuDaR::new(&vs.root(), &plan.model).map_err(anyhow::Error::msg)?;
        MuDaR::load_pyramid(&vs, path)?;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create the run folder", args.out.display()))?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("mudar train: stopping after this step (Ctrl-C again to quit at once)");
    })
    .context("cannot install the Ctrl-C handler")?;

    let bar = progress::bar(0, "steps".into(), "steps");
    let observer = bar.clone();
    let quiet = args.json;
    let report = train::run(
        Arc::new(plan),
        args.cluster.timely_config()?,
        stop,
        Arc::new(move |event| match event {
            TrainProgress::Clips(Progress::Closed { input, failure: Some(failure), .. }) => {
                observer.suspend(|| eprintln!("mudar train: {input}: {} ({}), skipped", failure.message, failure.kind))
            }
            TrainProgress::Clips(_) => {}
            TrainProgress::Skipped { video, reason } => {
                observer.suspend(|| eprintln!("mudar train: {video}: {reason}"))
            }
            TrainProgress::Training { clips, videos, steps, first_step } => {
                observer.set_length(steps);
                observer.set_position(first_step);
                observer.suspend(|| {
                    eprintln!("mudar train: {clips} clips from {videos} videos, steps {first_step}..{steps}")
                });
            }
            TrainProgress::Step(m) => {
                observer.set_position(m.step + 1);
                observer.set_message(format!("loss {:.4} ({})", m.loss, m.task));
                if !observer.is_hidden() || quiet {
                    return;
                }
                if m.step % 10 == 0 {
                    eprintln!(
                        "step {} epoch {} {}: loss {:.4} implicit {:.4} explicit {:.4} triplet accuracy {:.2}",
                        m.step, m.epoch, m.task, m.loss, m.implicit, m.explicit, m.triplet_accuracy
                    );
                }
            }
            TrainProgress::Checkpoint(path) => {
                observer.suspend(|| eprintln!("mudar train: checkpoint {}", path.display()))
            }
        }),
    )
    .map_err(anyhow::Error::msg)?;
    bar.finish_and_clear();
    let summary = json!({
        "run_dir": args.out,
        "clips": report.clips,
        "steps": report.steps,
        "stopped": report.stopped,
        "checkpoint": report.checkpoint,
        "last": report.last,
        "weight_checksums": report.weight_checksums,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if let Some(last) = &report.last {
        eprintln!(
            "mudar train: {} steps; last loss {:.4}, triplet accuracy {:.2}; checkpoint {}",
            report.steps,
            last.loss,
            last.triplet_accuracy,
            report.checkpoint.as_ref().map_or("none".into(), |p| p.display().to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}
