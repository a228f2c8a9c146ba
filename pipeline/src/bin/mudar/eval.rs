//! `mudar eval rhythm`: a trained model's visual rhythm against the music onsets.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mudar_operators::model::DecisionThresholds;
use mudar_pipeline::graph::Progress;
use mudar_pipeline::train::TrainProgress;
use mudar_pipeline::train::eval::{self, EvalPlan, Scores};

use crate::extract::{ClusterArgs, expand_inputs};
use crate::flow::BackendArgs;

/// Evaluates trained models.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    Rhythm(RhythmArgs),
    Retrieval(crate::retrieve::EvalArgs),
}

/// Visual rhythm recall, precision and F-measure against the music onsets
/// (the paper's Table 1 protocol), with and without the audio, beside the
/// model-free visual beats and chance.
///
/// The INPUTS (held-out dances) are cut into clips of the model's length and
/// go through the extraction graph as for training. A predicted frame is a
/// hit when an onset (librosa's onset_detect on the clip's audio, on the
/// nearest video frame) lies within --tolerance frames; each onset is
/// matched at most once (mir_eval's rule).
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
struct RhythmArgs {
    #[arg(required = true, value_name = "INPUTS")]
    inputs: Vec<String>,
    /// A checkpoint's JSON, or a run folder (its latest checkpoint).
    #[arg(long)]
    model: PathBuf,
    /// Frames either side of an onset that still count as a hit.
    #[arg(long, default_value_t = eval::DEFAULT_TOLERANCE_FRAMES)]
    tolerance: i64,
    /// Call a frame visual rhythm at this probability, with and without the
    /// audio, instead of the thresholds training fitted (0.5: the paper's
    /// binary decision).
    #[arg(long, value_name = "P")]
    threshold: Option<f64>,
    /// Folder for the inputs' clip cache (reused when it matches). Default: a temporary folder.
    #[arg(long)]
    cache: Option<PathBuf>,
    #[arg(short = 'w', long, default_value_t = 1)]
    workers: usize,
    /// The scores as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
    #[arg(long, action = clap::ArgAction::Help, help = "Print help")]
    help: Option<bool>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let args = match args.what {
        What::Rhythm(args) => args,
        What::Retrieval(args) => return crate::retrieve::run_eval(args),
    };
    let inputs = expand_inputs(&args.inputs)?;
    anyhow::ensure!(args.tolerance >= 0, "--tolerance must be at least 0");
    if let Some(p) = args.threshold {
        anyhow::ensure!((0.0..=1.0).contains(&p), "--threshold must be a probability in [0, 1], not {p}");
    }
    let cache = args.cache.clone().unwrap_or_else(|| eval::default_cache(&args.model, &inputs));
    let plan = EvalPlan {
        inputs,
        checkpoint: args.model.clone(),
        cache,
        flow: args.backend.choice()?,
        device: args.backend.device()?,
        tolerance_frames: args.tolerance,
        thresholds: args.threshold.map(|p| DecisionThresholds { with_audio: p, without_audio: p }),
        workers_per_process: args.workers,
    };
    let report = Arc::new(|event: TrainProgress<'_>| match event {
        TrainProgress::Clips(Progress::Closed { input, failure: Some(failure), .. }) => {
            eprintln!("mudar eval: {input}: {} ({}), skipped", failure.message, failure.kind)
        }
        TrainProgress::Skipped { video, reason } => eprintln!("mudar eval: {video}: {reason}"),
        _ => {}
    });
    let cluster = ClusterArgs { workers: args.workers, processes: 1, process: 0, hostfile: None };
    let result = eval::evaluate(&plan, cluster.timely_config()?, report).map_err(anyhow::Error::msg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} clips, hits within ±{} frames of a music onset", result.clips, result.tolerance_frames);
    println!("{:<30} {:>9} {:>9} {:>9} {:>9} {:>9}", "", "precision", "recall", "F", "predicted", "onsets");
    let row = |name: &str, s: &Scores| {
        println!(
            "{name:<30} {:>9.3} {:>9.3} {:>9.3} {:>9} {:>9}",
            s.precision, s.recall, s.f_measure, s.predicted, s.onsets
        )
    };
    let t = &result.thresholds;
    row(&format!("model, with audio (p≥{:.2})", t.with_audio), &result.model_with_audio);
    row(&format!("model, no audio (p≥{:.2})", t.without_audio), &result.model_without_audio);
    row("visual beats (no model)", &result.visual_beats);
    row("chance", &result.chance);
    row("every frame", &result.every_frame);
    let accuracy = |a: Option<f64>, n: usize| match a {
        Some(a) => format!("{a:.3} of {n}"),
        None => "no admissible negative".to_owned(),
    };
    let tr = &result.triplets;
    println!(
        "triplet accuracy (own music nearer than a negative): AVC {}, AVTS {}",
        accuracy(tr.avc, tr.avc_triplets),
        accuracy(tr.avts, tr.avts_triplets)
    );
    let cosine = |c: Option<f64>| c.map_or("-".to_owned(), |c| format!("{c:.3}"));
    println!(
        "embeddings, mean cosine across videos (1: collapsed): visual {}, audio {}",
        cosine(tr.visual_cosine),
        cosine(tr.audio_cosine)
    );
    Ok(ExitCode::SUCCESS)
}
