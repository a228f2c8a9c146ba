//! Visual rhythm evaluation (paper Sec. 4.1, Table 1): a trained model's
//! visual rhythm frames against the music onsets of held-out clips, with and
//! without the audio, beside the model-free visual beats and chance.
//!
//! A predicted frame counts as a hit when a music onset lies within
//! `tolerance` video frames of it (±1 frame, ±125 ms at 8 fps, by default),
//! each onset matched once (mir_eval's onset rule); precision, recall and
//! F-measure are over all clips' events together.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mudar_operators::metrics::EventMatches;
use mudar_operators::model::MuDaR;
use mudar_operators::motion::HoofParams;
use mudar_operators::rhythm::RhythmParams;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tch::Device;

use super::clips::{CachedClip, read_cache};
use super::trained::{TrainedModel, model_inputs};
use super::{TrainPlan, TrainProgress, build_cache, cache_is_complete, source_for};
use crate::clip::ClipRule;
use crate::extract::FlowChoice;

/// What `mudar eval rhythm` needs.
#[derive(Clone, Debug)]
pub struct EvalPlan {
    pub inputs: Vec<String>,
    /// A checkpoint's JSON, or a run folder (its latest checkpoint).
    pub checkpoint: PathBuf,
    /// Where the inputs' clips are cached.
    pub cache: PathBuf,
    pub flow: FlowChoice,
    pub device: Device,
    pub tolerance_frames: i64,
    pub workers_per_process: usize,
}

/// Precision, recall and F-measure of one way of finding visual rhythm.
#[derive(Clone, Debug, Serialize)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f_measure: f64,
    pub onsets: usize,
    pub predicted: usize,
    pub matched: usize,
}

impl From<EventMatches> for Scores {
    fn from(m: EventMatches) -> Scores {
        Scores {
            precision: m.precision(),
            recall: m.recall(),
            f_measure: m.f_measure(),
            onsets: m.reference,
            predicted: m.estimated,
            matched: m.matched,
        }
    }
}

/// The evaluation of a model on a set of clips.
#[derive(Clone, Debug, Serialize)]
pub struct RhythmEvaluation {
    pub clips: usize,
    pub tolerance_frames: i64,
    /// The model with each clip's music.
    pub model_with_audio: Scores,
    /// The model from the frames and motion alone.
    pub model_without_audio: Scores,
    /// Model-free visual beats (directogram peaks) of the same clips.
    pub visual_beats: Scores,
    /// As many random frames per clip as it has onsets (seeded).
    pub chance: Scores,
}

/// Caches the inputs' clips as training would (same graph, the model's clip
/// length) and evaluates the checkpoint on them.
pub fn evaluate(
    plan: &EvalPlan,
    config: timely::Config,
    progress: Arc<dyn Fn(TrainProgress<'_>) + Send + Sync>,
) -> Result<RhythmEvaluation, String> {
    let trained = TrainedModel::load(&plan.checkpoint, plan.device)?;
    let model_config = trained.config().clone();
    let length = trained.clip_length();
    let rhythm = RhythmParams::default();
    let train_plan = TrainPlan {
        inputs: plan.inputs.clone(),
        run_dir: plan.cache.clone(),
        source: source_for(&model_config, &rhythm),
        rhythm,
        hoof: HoofParams { bins: model_config.hoof_bins as usize, ..HoofParams::default() },
        flow: plan.flow.clone(),
        clip_rule: ClipRule::Windows { length, stride: length },
        model: model_config,
        sampling: trained.sampling,
        adam: Default::default(),
        batch: 1,
        epochs: 0,
        max_steps: None,
        seed: trained.info.seed,
        checkpoint_every: 1,
        resume: false,
        device: plan.device,
        workers_per_process: plan.workers_per_process,
        max_open: 2,
    };
    let cache = plan.cache.join("cache");
    let for_workers = Arc::new(train_plan);
    let guards = timely::execute(config, move |worker| {
        let cache = for_workers.run_dir.join("cache");
        match cache_is_complete(&cache, &for_workers) {
            true => Ok(()),
            false => build_cache(worker, &for_workers, &cache, &*progress),
        }
    })?;
    for result in guards.join() {
        result.map_err(|e| format!("a worker failed: {e}"))??;
    }
    let clips = read_cache(&cache)?;
    if clips.is_empty() {
        return Err("no clip of the inputs can be evaluated (see the skipped inputs above)".into());
    }

    Ok(score(&trained.model, &clips, plan.tolerance_frames, plan.device))
}

/// Scores `model` on `clips`, a few at a time.
pub fn score(model: &MuDaR, clips: &[CachedClip], tolerance: i64, device: Device) -> RhythmEvaluation {
    let frames_per_clip = model.config().frames as usize;
    let (mut with_audio, mut without_audio) = (EventMatches::default(), EventMatches::default());
    let (mut visual, mut chance) = (EventMatches::default(), EventMatches::default());
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for group in clips.chunks(8) {
        let (frames, hoof, audio) = model_inputs(&group.iter().collect::<Vec<_>>(), model.config(), device);
        let heard = model.infer(&frames, &hoof, Some(&audio));
        let unheard = model.infer(&frames, &hoof, None);
        for (i, clip) in group.iter().enumerate() {
            let onsets = clip.onset_frames();
            let as_i64 = |frames: &[usize]| frames.iter().map(|&f| f as i64).collect::<Vec<_>>();
            with_audio = with_audio + EventMatches::of(&onsets, &as_i64(&heard.rhythm_frames[i]), tolerance);
            without_audio = without_audio + EventMatches::of(&onsets, &as_i64(&unheard.rhythm_frames[i]), tolerance);
            visual = visual + EventMatches::of(&onsets, &clip.visual_beat_frames(), tolerance);
            let random: Vec<i64> = (0..onsets.len()).map(|_| rng.random_range(0..frames_per_clip) as i64).collect();
            chance = chance + EventMatches::of(&onsets, &random, tolerance);
        }
    }
    RhythmEvaluation {
        clips: clips.len(),
        tolerance_frames: tolerance,
        model_with_audio: with_audio.into(),
        model_without_audio: without_audio.into(),
        visual_beats: visual.into(),
        chance: chance.into(),
    }
}

/// The cache folder `mudar eval` uses for `inputs` when none is given: under
/// the system's temporary folder, named by the checkpoint and inputs.
pub fn default_cache(checkpoint: &Path, inputs: &[String]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    checkpoint.hash(&mut hasher);
    inputs.hash(&mut hasher);
    std::env::temp_dir().join(format!("mudar-eval-{:016x}", hasher.finish()))
}
