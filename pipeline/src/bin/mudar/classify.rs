//! `mudar classify train|eval|predict`: dance classification on a trained MuDaR's outputs
//! (paper Sec. 4.2, Table 2).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mudar_pipeline::classify::{Classifier, ClipFeatures, Evaluation, TrainParams, read_clip_features, split};
use mudar_pipeline::train::trained::TrainedModel;
use serde_json::json;

use crate::flow::parse_device;

/// Classifies dances with a trained MuDaR (the paper's two-stream classifier).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    Train(TrainArgs),
    Eval(EvalArgs),
    Predict(PredictArgs),
}

/// Where the inputs' features come from, and on what device the networks run.
#[derive(Debug, clap::Args)]
struct Common {
    /// Dance videos, folders of them, input lists or glob patterns.
    #[arg(required = true, value_name = "INPUTS")]
    inputs: Vec<String>,
    /// The feature store to extract the inputs into (with the model) and read them from;
    /// inputs already in it are not extracted again. Default: STORE beside the classifier.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Device: cpu, cuda, cuda:N, auto.
    #[arg(long, default_value = "auto")]
    device: String,
    /// The results as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Trains a classifier on labelled dances: the paper's schedule by default (Adam at 4e-3,
/// divided by 10 after epochs 20 and 50, batches of 64, 70 epochs), the MuDaR backbone frozen.
/// The videos are split 80/10/10 at random (--seed); the epoch with the best validation
/// accuracy is kept; the test videos' accuracy, per class and as a confusion matrix, is
/// reported and saved beside the weights in OUT.
#[derive(Debug, clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    common: Common,
    /// A CSV with a `path,label` header (paths relative to it); without it, each video's label
    /// is the name of its folder.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// The trained MuDaR (a run folder or checkpoint).
    #[arg(long)]
    model: PathBuf,
    /// Folder for the classifier (`classifier.safetensors`, `classifier.json`).
    #[arg(long, short)]
    out: PathBuf,
    #[arg(long, default_value_t = 70)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 4e-3)]
    lr: f64,
    /// Epochs after which the learning rate is divided by ten.
    #[arg(long, value_delimiter = ',', default_value = "20,50")]
    milestones: Vec<usize>,
    /// Width of the hidden layers.
    #[arg(long, default_value_t = 256)]
    hidden: i64,
    /// Seed of the split, the shuffling and the initial weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Embeddings only (Table 2's "w/o rhy" ablation).
    #[arg(long)]
    without_rhythm: bool,
}

/// Scores a classifier on labelled dances: accuracy, per class and as a confusion matrix.
#[derive(Debug, clap::Args)]
struct EvalArgs {
    #[command(flatten)]
    common: Common,
    /// A CSV with a `path,label` header; without it, the folder names.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// The classifier's folder (`mudar classify train --out`).
    #[arg(long)]
    classifier: PathBuf,
}

/// Names each dance's class, with its probability.
#[derive(Debug, clap::Args)]
struct PredictArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    classifier: PathBuf,
}

/// `mudar extract`, run in this process.
#[derive(Debug, Parser)]
struct ExtractCommand {
    #[command(flatten)]
    args: crate::extract::Args,
}

/// Extracts `inputs` with `model` into `store` (those already there are skipped).
fn extract(inputs: &[String], store: &Path, model: &Path) -> anyhow::Result<()> {
    let mut argv = vec!["extract".to_owned()];
    argv.extend(inputs.iter().cloned());
    argv.extend(["--out".to_owned(), store.display().to_string(), "--model".to_owned(), model.display().to_string()]);
    let command = ExtractCommand::try_parse_from(argv)?;
    let code = crate::extract::run(command.args)?;
    anyhow::ensure!(code == ExitCode::SUCCESS, "extracting the inputs into {} failed", store.display());
    Ok(())
}

/// Each input's label: from the CSV (`path,label`, paths relative to it) or its folder's name.
fn labels(inputs: &[String], csv_path: Option<&Path>) -> anyhow::Result<HashMap<String, String>> {
    let Some(csv_path) = csv_path else {
        return inputs
            .iter()
            .map(|input| {
                let folder =
                    Path::new(input).parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
                let folder = folder
                    .filter(|f| !f.is_empty())
                    .with_context(|| format!("{input}: no folder to take its label from"))?;
                Ok((input.clone(), folder))
            })
            .collect();
    };
    let base = csv_path.parent().unwrap_or(Path::new(""));
    let mut reader =
        csv::Reader::from_path(csv_path).with_context(|| format!("{}: cannot read it", csv_path.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(path), Some(label)) = (column("path"), column("label")) else {
        anyhow::bail!("{}: the header must name the columns path and label, not {:?}", csv_path.display(), headers);
    };
    let mut by_file = HashMap::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", csv_path.display(), line + 2))?;
        let (Some(p), Some(l)) = (record.get(path), record.get(label)) else {
            anyhow::bail!("{}: row {} has no path or label", csv_path.display(), line + 2);
        };
        let p = if Path::new(p.trim()).is_absolute() { PathBuf::from(p.trim()) } else { base.join(p.trim()) };
        by_file.insert(mudar_pipeline::input::file_key(&p.display().to_string()), l.trim().to_owned());
    }
    let mut out = HashMap::new();
    for input in inputs {
        let label = by_file
            .get(&mudar_pipeline::input::file_key(input))
            .with_context(|| format!("{input}: no label in {}", csv_path.display()))?;
        out.insert(input.clone(), label.clone());
    }
    Ok(out)
}

/// The inputs' clips from the store, with `model`'s shape.
fn features(inputs: &[String], store: &Path, model: &TrainedModel) -> anyhow::Result<Vec<ClipFeatures>> {
    let wanted: HashSet<&str> = inputs.iter().map(String::as_str).collect();
    let config = model.config();
    let clips =
        read_clip_features(store, config.frames as usize, config.embedding_dim as usize, config.fps, &|input| {
            wanted.contains(input)
        })
        .map_err(anyhow::Error::msg)?;
    let found: HashSet<&str> = clips.iter().map(|c| c.input.as_str()).collect();
    for input in inputs.iter().filter(|i| !found.contains(i.as_str())) {
        eprintln!(
            "mudar classify: {input}: no clip the model could take (too short, or it failed to extract); left out"
        );
    }
    anyhow::ensure!(!clips.is_empty(), "no clips to classify in {}", store.display());
    Ok(clips)
}

fn print_evaluation(title: &str, evaluation: &Evaluation) {
    println!("{title}: {:.3} accuracy over {} videos", evaluation.accuracy, evaluation.videos);
    for (class, accuracy, count) in &evaluation.per_class {
        println!("  {class:<16} {:>6} of {count}", accuracy.map_or("-".to_owned(), |a| format!("{a:.3}")));
    }
    println!("  confusion (rows: true, columns: predicted, in that order):");
    for row in &evaluation.confusion {
        println!("    {}", row.iter().map(|n| format!("{n:>4}")).collect::<String>());
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Train(args) => train(args),
        What::Eval(args) => eval(args),
        What::Predict(args) => predict(args),
    }
}

fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.epochs > 0 && args.batch > 0 && args.hidden > 0,
        "--epochs, --batch and --hidden must be positive"
    );
    let inputs = crate::extract::expand_inputs(&args.common.inputs)?;
    let labels = labels(&inputs, args.labels.as_deref())?;
    let device = parse_device(&args.common.device)?;
    let model = TrainedModel::load(&args.model, device).map_err(anyhow::Error::msg)?;
    let store = args.common.store.clone().unwrap_or_else(|| args.out.join("store"));
    extract(&inputs, &store, &args.model)?;
    let clips = features(&inputs, &store, &model)?;
    let mut classes: Vec<String> = labels.values().cloned().collect::<HashSet<_>>().into_iter().collect();
    classes.sort();
    let videos: Vec<String> = clips.iter().map(|c| c.input.clone()).collect::<HashSet<_>>().into_iter().collect();
    let split = split(&videos, args.seed);
    let params = TrainParams {
        epochs: args.epochs,
        batch: args.batch,
        learning_rate: args.lr,
        milestones: args.milestones.clone(),
        hidden: args.hidden,
        seed: args.seed,
        rhythm: !args.without_rhythm,
    };
    let config = model.config();
    let mut classifier = Classifier::new(
        classes,
        config.frames as usize,
        config.embedding_dim as usize,
        params.hidden,
        params.rhythm,
        device,
    );
    let log = classifier
        .train(&clips, &labels, &split, &params, |epoch, loss, accuracy| {
            if !args.common.json {
                eprintln!("mudar classify: epoch {epoch}: loss {loss:.4}, validation accuracy {accuracy:.3}");
            }
        })
        .map_err(anyhow::Error::msg)?;
    let test_clips: Vec<ClipFeatures> = clips.iter().filter(|c| split.test.contains(&c.input)).cloned().collect();
    let test = classifier.evaluate(&test_clips, &labels);
    let info = json!({
        "backbone": { "checkpoint": model.path, "step": model.info.step },
        "params": params,
        "split": split,
        "best_epoch": log.best_epoch,
        "validation_accuracy": log.best_validation,
        "test": test,
    });
    classifier.save(&args.out, info.clone()).map_err(anyhow::Error::msg)?;
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&json!({ "classifier": args.out, "log": log, "info": info }))?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} videos ({} train, {} validation, {} test), best epoch {} (validation {:.3})",
        args.out.display(),
        videos.len(),
        split.train.len(),
        split.validation.len(),
        split.test.len(),
        log.best_epoch,
        log.best_validation
    );
    print_evaluation("test", &test);
    Ok(ExitCode::SUCCESS)
}

/// The classifier, its backbone, and the inputs' clips (extracted if need be).
fn load(common: &Common, dir: &Path) -> anyhow::Result<(Classifier, Vec<String>, Vec<ClipFeatures>)> {
    let device = parse_device(&common.device)?;
    let (classifier, info) = Classifier::load(dir, device).map_err(anyhow::Error::msg)?;
    let backbone = info["backbone"]["checkpoint"]
        .as_str()
        .map(PathBuf::from)
        .with_context(|| format!("{}: classifier.json names no backbone", dir.display()))?;
    let model = TrainedModel::load(&backbone, device).map_err(anyhow::Error::msg)?;
    let inputs = crate::extract::expand_inputs(&common.inputs)?;
    let store = common.store.clone().unwrap_or_else(|| dir.join("store"));
    extract(&inputs, &store, &backbone)?;
    let clips = features(&inputs, &store, &model)?;
    Ok((classifier, inputs, clips))
}

fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let (classifier, inputs, clips) = load(&args.common, &args.classifier)?;
    let labels = labels(&inputs, args.labels.as_deref())?;
    let unknown: HashSet<&String> = labels.values().filter(|l| !classifier.classes.contains(l)).collect();
    anyhow::ensure!(
        unknown.is_empty(),
        "labels the classifier was not trained on: {unknown:?} (it knows {:?})",
        classifier.classes
    );
    let evaluation = classifier.evaluate(&clips, &labels);
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&evaluation)?);
    } else {
        print_evaluation(&args.classifier.display().to_string(), &evaluation);
    }
    Ok(ExitCode::SUCCESS)
}

fn predict(args: PredictArgs) -> anyhow::Result<ExitCode> {
    let (classifier, _, clips) = load(&args.common, &args.classifier)?;
    let predictions = classifier.predict(&clips);
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&predictions)?);
        return Ok(ExitCode::SUCCESS);
    }
    for p in predictions {
        println!("{}\t{}\t{:.3}\t{} clips", p.input, p.label, p.probability, p.clips);
    }
    Ok(ExitCode::SUCCESS)
}
