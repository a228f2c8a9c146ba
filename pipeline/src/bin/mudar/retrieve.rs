//! `mudar retrieve` and `mudar eval retrieval`: music-to-dance retrieval over a store
//! extracted with a trained model (paper Sec. 4.3).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use mudar_operators::rhythm::{RhythmParams, SpectrogramParams};
use mudar_pipeline::retrieval::{self, Cut, DanceKey, MusicQuery, RetrievalScores, Segment};
use mudar_pipeline::train::trained::TrainedModel;
use serde_json::json;

use crate::flow::parse_device;

/// Ranks the dances of a store for each piece of music (the paper's music-to-dance retrieval).
///
/// The store must hold a trained model's outputs (`mudar extract --model RUN_DIR`); give the
/// same model here, which embeds the music. Each dance is cut into --segment-second
/// candidates; each is scored by Eq. 21, S_hyb = λ·S_e + (1 − λ)·S_r: S_e the cosine of the
/// music's and the dance's time-pooled embeddings, S_r how well the dance's visual rhythm
/// lines up with the music's onsets at the best offset; both standardized over the
/// candidates first, so λ weighs them as it says. --lambda 1 ranks by embeddings alone (the
/// paper's "w/o rhy"), 0 by rhythm alone.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Music files (any file with an audio track), folders of them, or glob patterns.
    #[arg(required = true, value_name = "MUSIC")]
    music: Vec<String>,
    #[command(flatten)]
    common: CommonArgs,
    /// Dances to list per query.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// The rankings as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// What retrieval and its evaluation share.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// The feature store to search.
    #[arg(long)]
    store: PathBuf,
    /// The trained model the store was extracted with (a run folder or checkpoint).
    #[arg(long)]
    model: PathBuf,
    /// λ₃ of Eq. 21: the weight of the embedding similarity against the rhythm similarity.
    #[arg(long, default_value_t = 0.5)]
    lambda: f64,
    /// Candidate length, seconds: dances are cut into segments this long (the paper's 24 s).
    #[arg(long, default_value_t = retrieval::DEFAULT_SEGMENT_S)]
    segment: f64,
    /// Device for the model: cpu, cuda, cuda:N, auto.
    #[arg(long, default_value = "auto")]
    device: String,
}

impl CommonArgs {
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!((0.0..=1.0).contains(&self.lambda), "--lambda must be in [0, 1], not {}", self.lambda);
        anyhow::ensure!(
            self.segment.is_finite() && self.segment > 0.0,
            "--segment must be a positive number of seconds"
        );
        anyhow::ensure!(self.store.is_dir(), "{}: no such store", self.store.display());
        Ok(())
    }

    fn model(&self) -> anyhow::Result<TrainedModel> {
        TrainedModel::load(&self.model, parse_device(&self.device)?).map_err(anyhow::Error::msg)
    }

    fn segments(&self, model: &TrainedModel, cut: &dyn Fn(&DanceKey) -> Option<Cut>) -> anyhow::Result<Vec<Segment>> {
        let config = model.config();
        check_model(&self.store, model)?;
        let segments = retrieval::read_segments(
            &self.store,
            self.segment,
            config.fps,
            config.embedding_dim as usize,
            config.embedding_len() as usize,
            cut,
        )
        .map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            !segments.is_empty(),
            "{}: no dance with a model's embeddings in this store",
            self.store.display()
        );
        Ok(segments)
    }
}

/// The configurations the store's inputs were extracted with, parsed.
fn store_configs(store: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let configs = mudar_sinks::store::input_configs(store)
        .with_context(|| format!("{}: cannot read the store", store.display()))?;
    Ok(configs.values().filter_map(|c| serde_json::from_str(c).ok()).collect())
}

/// Refuses a store whose inputs were extracted with another checkpoint than `model`: their
/// embeddings would be compared with the music's in spaces that have nothing in common.
fn check_model(store: &Path, model: &TrainedModel) -> anyhow::Result<()> {
    let ours = model.path.file_name().map(|n| n.to_string_lossy().into_owned());
    for config in store_configs(store)? {
        let Some(theirs) = config.get("model").filter(|m| !m.is_null()) else { continue };
        let (name, step) = (theirs["checkpoint"].as_str(), theirs["step"].as_u64());
        anyhow::ensure!(
            name == ours.as_deref() && step == Some(model.info.step),
            "{}: extracted with checkpoint {} (step {}), not {} (step {}): give the model the store was \
             extracted with",
            store.display(),
            name.unwrap_or("?"),
            step.map_or("?".to_owned(), |s| s.to_string()),
            ours.as_deref().unwrap_or("?"),
            model.info.step
        );
    }
    Ok(())
}

/// The rhythm settings the store was extracted with (its audio sample rate, which must be one;
/// the rest are librosa's defaults, as `mudar extract` uses them).
fn store_rhythm(store: &Path) -> anyhow::Result<RhythmParams> {
    let rates: BTreeSet<u64> =
        store_configs(store)?.iter().filter_map(|c| c["audio"]["sample_rate"].as_u64()).collect();
    anyhow::ensure!(
        rates.len() <= 1,
        "{}: its inputs were extracted at several sample rates ({rates:?}): retrieval compares one",
        store.display()
    );
    let sr = rates.into_iter().next().unwrap_or(SpectrogramParams::default().sr as u64);
    Ok(RhythmParams {
        spectrogram: SpectrogramParams { sr: sr as u32, ..SpectrogramParams::default() },
        ..RhythmParams::default()
    })
}

const MUSIC_EXTENSIONS: &[&str] =
    &["wav", "flac", "ogg", "oga", "opus", "mp3", "m4a", "aac", "mp4", "m4v", "mov", "mkv", "webm", "avi"];

/// The music the arguments name: files, globs, and the media files in folders (sorted).
fn music_inputs(args: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        if path.is_dir() {
            let mut found = BTreeSet::new();
            for entry in std::fs::read_dir(path).with_context(|| format!("{arg}: cannot list the folder"))? {
                let file = entry?.path();
                let known = file.extension().and_then(|e| e.to_str()).is_some_and(|e| MUSIC_EXTENSIONS.contains(&e));
                if known && file.is_file() {
                    found.insert(file.display().to_string());
                }
            }
            anyhow::ensure!(!found.is_empty(), "{arg}: no music in this folder ({})", MUSIC_EXTENSIONS.join(", "));
            out.extend(found);
        } else {
            out.extend(crate::extract::expand_inputs(std::slice::from_ref(arg))?);
        }
    }
    let mut seen = HashSet::new();
    out.retain(|m| seen.insert(m.clone()));
    Ok(out)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.common.check()?;
    let music = music_inputs(&args.music)?;
    let model = args.common.model()?;
    let rhythm = store_rhythm(&args.common.store)?;
    let segments = args.common.segments(&model, &|_| Some(Cut::All))?;
    let mut failed = 0;
    let mut results = Vec::new();
    for input in &music {
        let query = match retrieval::music_query(input, &model, &rhythm) {
            Ok(query) => query,
            Err(e) => {
                eprintln!("mudar retrieve: {e}");
                failed += 1;
                continue;
            }
        };
        let ranked = retrieval::rank(&query, &segments, args.common.lambda);
        let top: Vec<_> = ranked.iter().take(args.k).collect();
        if args.json {
            let list: Vec<_> = top
                .iter()
                .enumerate()
                .map(|(rank, s)| {
                    let segment = &segments[s.segment];
                    json!({
                        "rank": rank + 1,
                        "input": segment.dance.input,
                        "connection": segment.dance.connection,
                        "segment": segment.index,
                        "start_s": segment.start_s,
                        "end_s": segment.end_s,
                        "hybrid": s.hybrid,
                        "embedding": s.embedding,
                        "rhythm": s.rhythm,
                    })
                })
                .collect();
            results.push(
                json!({ "music": query.input, "duration_s": query.duration_s, "clips": query.clips, "dances": list }),
            );
            continue;
        }
        println!(
            "{} ({:.1} s, {} model clips): {} of {} dance segments",
            input,
            query.duration_s,
            query.clips,
            top.len(),
            segments.len()
        );
        println!("  {:>4} {:>7} {:>9} {:>7}  dance", "rank", "S_hyb", "S_e", "S_r");
        for (rank, s) in top.iter().enumerate() {
            let segment = &segments[s.segment];
            let connection = segment.dance.connection.map_or(String::new(), |c| format!(" (connection {c})"));
            println!(
                "  {:>4} {:>7.3} {:>9.3} {:>7.3}  {}{connection} {:.1}-{:.1} s",
                rank + 1,
                s.hybrid,
                s.embedding,
                s.rhythm,
                segment.dance.input,
                segment.start_s,
                segment.end_s
            );
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Scores music-to-dance retrieval on your data: the paper's Dance-50 protocol (Table 3).
///
/// QUERIES is a CSV with a `music,dance` header and a row for each dance of each song: the
/// music file, and a dance in the store performed to it. Each song is a query; its dances are
/// the relevant answers, each cut to its first --segment seconds (the paper's 24 s from the
/// start); every other dance in the store is a distractor, cut into --segment-second pieces.
/// Reports R@1 and R@5 (the share of queries with a relevant dance in the top 1 / 5), P@10
/// and mAP (scikit-learn's average precision), with rhythm (Eq. 21 at --lambda) and without
/// (λ = 1, the paper's "w/o rhy"). Paths in the CSV are relative to its folder, and must name
/// the dances as the store does (as they were given to `mudar extract`) or the same files.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The CSV of songs and their dances.
    #[arg(long)]
    queries: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
    /// The scores, and each query's, as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Reads the `music,dance` CSV: song → the dances to it, paths resolved against the CSV's folder.
fn read_queries(path: &Path) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let base = path.parent().unwrap_or(Path::new(""));
    let resolve = |p: &str| -> String {
        if mudar_pipeline::input::is_uri(p) || Path::new(p).is_absolute() {
            p.to_owned()
        } else {
            base.join(p).display().to_string()
        }
    };
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("{}: cannot read it", path.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: no header row", path.display()))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(music), Some(dance)) = (column("music"), column("dance")) else {
        anyhow::bail!("{}: the header must name the columns music and dance, not {:?}", path.display(), headers);
    };
    let mut queries: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), line + 2))?;
        let (Some(m), Some(d)) = (record.get(music), record.get(dance)) else {
            anyhow::bail!("{}: row {} has no music or dance", path.display(), line + 2);
        };
        queries.entry(resolve(m.trim())).or_default().insert(resolve(d.trim()));
    }
    anyhow::ensure!(!queries.is_empty(), "{}: no queries", path.display());
    Ok(queries)
}

pub fn run_eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    args.common.check()?;
    let queries = read_queries(&args.queries)?;
    let model = args.common.model()?;
    let rhythm = store_rhythm(&args.common.store)?;
    let labelled: HashSet<String> = queries.values().flatten().map(|d| mudar_pipeline::input::file_key(d)).collect();
    let cut = |dance: &DanceKey| {
        Some(if labelled.contains(&mudar_pipeline::input::file_key(&dance.input)) { Cut::First } else { Cut::All })
    };
    let segments = args.common.segments(&model, &cut)?;
    let in_store: HashSet<String> = segments.iter().map(|s| mudar_pipeline::input::file_key(&s.dance.input)).collect();
    let missing: Vec<&String> = labelled.iter().filter(|d| !in_store.contains(*d)).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{}: {} dance(s) of the queries are not in the store with embeddings, e.g. {}",
        args.queries.display(),
        missing.len(),
        missing[0]
    );

    let mut prepared: Vec<(MusicQuery, Vec<bool>)> = Vec::new();
    for (music, dances) in &queries {
        let query = retrieval::music_query(music, &model, &rhythm).map_err(anyhow::Error::msg)?;
        let dances: HashSet<String> = dances.iter().map(|d| mudar_pipeline::input::file_key(d)).collect();
        let relevant =
            segments.iter().map(|s| dances.contains(&mudar_pipeline::input::file_key(&s.dance.input))).collect();
        prepared.push((query, relevant));
    }
    let queries: Vec<(&MusicQuery, Vec<bool>)> = prepared.iter().map(|(q, r)| (q, r.clone())).collect();
    let with_rhythm = retrieval::evaluate(&queries, &segments, args.common.lambda);
    let without_rhythm = retrieval::evaluate(&queries, &segments, 1.0);
    let rhythm_only = retrieval::evaluate(&queries, &segments, 0.0);
    let relevant: usize = queries.iter().map(|(_, r)| r.iter().filter(|&&x| x).count()).sum();
    if args.json {
        let per_query: Vec<_> = queries
            .iter()
            .map(|(q, relevant)| {
                let one = [(*q, relevant.clone())];
                json!({
                    "music": q.input,
                    "relevant": relevant.iter().filter(|&&x| x).count(),
                    "with_rhythm": retrieval::evaluate(&one, &segments, args.common.lambda),
                    "without_rhythm": retrieval::evaluate(&one, &segments, 1.0),
                })
            })
            .collect();
        let report = json!({
            "store": args.common.store,
            "queries": queries.len(),
            "candidates": segments.len(),
            "relevant": relevant,
            "segment_s": args.common.segment,
            "lambda": args.common.lambda,
            "with_rhythm": with_rhythm,
            "without_rhythm": without_rhythm,
            "rhythm_only": rhythm_only,
            "per_query": per_query,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} queries, {} candidates ({} relevant), {:.0} s segments",
        queries.len(),
        segments.len(),
        relevant,
        args.common.segment
    );
    println!("{:<24} {:>6} {:>6} {:>6} {:>6}", "", "R@1", "R@5", "P@10", "mAP");
    let row = |name: &str, s: &RetrievalScores| {
        println!("{name:<24} {:>6.3} {:>6.3} {:>6.3} {:>6.3}", s.r_at_1, s.r_at_5, s.p_at_10, s.map)
    };
    row(&format!("MuDaR (λ = {})", args.common.lambda), &with_rhythm);
    row("MuDaR w/o rhy (λ = 1)", &without_rhythm);
    row("rhythm only (λ = 0)", &rhythm_only);
    Ok(ExitCode::SUCCESS)
}
