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
use mudar_operators::model::estimator::rows;
use mudar_operators::model::sampling::{is_allowed_shift, is_rhythm_distinct};
use mudar_operators::model::{DecisionThresholds, Inference, MuDaR, RhythmHead};
use mudar_operators::motion::HoofParams;
use mudar_operators::rhythm::RhythmParams;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tch::{Device, Tensor};

use super::clips::{CachedClip, read_cache};
use super::trained::{TrainedModel, model_inputs};
use super::{CachePlan, TrainProgress, build_cache, cache_is_complete, source_for};
use crate::clip::ClipRule;
use crate::extract::FlowChoice;

/// ±1 video frame (±125 ms at 8 fps): the tolerance of `mudar eval rhythm`
/// unless told otherwise, and the one training fits its thresholds at.
pub const DEFAULT_TOLERANCE_FRAMES: i64 = 1;

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
    /// Decide at these probabilities instead of the checkpoint's fitted
    /// thresholds (e.g. 0.5 for both, a binary classifier's own rule, the
    /// paper's Table 1 protocol).
    pub thresholds: Option<DecisionThresholds>,
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
    /// The probabilities at which the model called a frame visual rhythm.
    pub thresholds: DecisionThresholds,
    /// The model with each clip's music.
    pub model_with_audio: Scores,
    /// The model from the frames and motion alone.
    pub model_without_audio: Scores,
    /// Model-free visual beats (directogram peaks) of the same clips.
    pub visual_beats: Scores,
    /// As many random frames per clip as it has onsets (seeded).
    pub chance: Scores,
    /// Every frame called visual rhythm: the F-measure a detector must beat
    /// when onsets are dense.
    pub every_frame: Scores,
    /// The implicit pathway on these clips (Eq. 18's positive nearer than its negative).
    pub triplets: TripletAccuracy,
}

/// How often a clip's own music is nearer its dance (in the embedding space)
/// than a negative, over every negative the sampling rules admit among the
/// evaluated clips.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TripletAccuracy {
    /// AVC: music of another video whose onsets differ by Eq. 16.
    pub avc: Option<f64>,
    pub avc_triplets: usize,
    /// AVTS: the clip's own music shifted off the eighth-note grid (Eq. 17),
    /// every admissible shift within the cached audio.
    pub avts: Option<f64>,
    pub avts_triplets: usize,
    /// Mean cosine similarity of the visual embeddings of clips of different
    /// videos: near 1, they have collapsed onto one direction and the
    /// accuracies above say nothing about the dance.
    pub visual_cosine: Option<f64>,
    /// The same of the audio embeddings.
    pub audio_cosine: Option<f64>,
}

/// Caches the inputs' clips as training would (same graph, the model's clip
/// length) and evaluates the checkpoint on them.
pub fn evaluate(
    plan: &EvalPlan,
    config: timely::Config,
    progress: Arc<dyn Fn(TrainProgress<'_>) + Send + Sync>,
) -> Result<RhythmEvaluation, String> {
    let mut trained = TrainedModel::load(&plan.checkpoint, plan.device)?;
    if let Some(thresholds) = plan.thresholds {
        trained.thresholds = thresholds;
    }
    let model_config = trained.config().clone();
    let length = trained.clip_length();
    let rhythm = RhythmParams::default();
    let cache_plan = CachePlan {
        inputs: plan.inputs.clone(),
        source: source_for(&model_config, &rhythm),
        hoof: HoofParams { bins: model_config.hoof_bins as usize, ..HoofParams::default() },
        flow: plan.flow.clone(),
        clips: trained.clip_params(ClipRule::Windows { length, stride: length }, rhythm),
        workers_per_process: plan.workers_per_process,
        max_open: 2,
    };
    let cache = plan.cache.join("cache");
    let for_workers = (Arc::new(cache_plan), cache.clone());
    let guards = timely::execute(config, move |worker| {
        let (cache_plan, cache) = &for_workers;
        match cache_is_complete(cache, cache_plan) {
            true => Ok(()),
            false => build_cache(worker, cache_plan, cache, &*progress),
        }
    })?;
    for result in guards.join() {
        result.map_err(|e| format!("a worker failed: {e}"))??;
    }
    let clips = read_cache(&cache)?;
    if clips.is_empty() {
        return Err("no clip of the inputs can be evaluated (see the skipped inputs above)".into());
    }

    Ok(score(&trained, &clips, plan.tolerance_frames))
}

/// What the model says of `clips`, a few at a time: with their music and without.
fn run_model(
    model: &MuDaR,
    thresholds: &DecisionThresholds,
    clips: &[CachedClip],
    device: Device,
) -> (Vec<Inference>, Vec<Inference>) {
    clips
        .chunks(8)
        .map(|group| {
            let (frames, hoof, audio) = model_inputs(&group.iter().collect::<Vec<_>>(), model.config(), device);
            (model.infer(&frames, &hoof, Some(&audio), thresholds), model.infer(&frames, &hoof, None, thresholds))
        })
        .unzip()
}

/// Scores the trained model on `clips`.
pub fn score(trained: &TrainedModel, clips: &[CachedClip], tolerance: i64) -> RhythmEvaluation {
    let model = &trained.model;
    let frames_per_clip = model.config().frames as usize;
    let (heard, unheard) = run_model(model, &trained.thresholds, clips, trained.device);
    let decided = |groups: &[Inference]| -> Vec<Vec<i64>> {
        groups.iter().flat_map(|g| g.rhythm_frames.iter().map(|f| f.iter().map(|&t| t as i64).collect())).collect()
    };
    let (with_audio, without_audio) = (decided(&heard), decided(&unheard));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let every: Vec<i64> = (0..frames_per_clip as i64).collect();
    let mut matches = [EventMatches::default(); 5];
    for (i, clip) in clips.iter().enumerate() {
        let onsets = clip.onset_frames();
        let random: Vec<i64> = (0..onsets.len()).map(|_| rng.random_range(0..frames_per_clip) as i64).collect();
        let predictions = [&with_audio[i], &without_audio[i], &clip.visual_beat_frames(), &random, &every];
        for (m, predicted) in matches.iter_mut().zip(predictions) {
            *m = *m + EventMatches::of(&onsets, predicted, tolerance);
        }
    }
    let visual: Vec<Vec<f32>> = heard.iter().flat_map(|g| rows(&g.visual_embedding)).collect();
    let audio: Vec<Vec<f32>> =
        heard.iter().flat_map(|g| rows(g.audio_embedding.as_ref().expect("given the audio"))).collect();
    let triplets = triplet_accuracy(trained, clips, &visual, &audio);
    let [with_audio, without_audio, visual, chance, every] = matches;
    RhythmEvaluation {
        clips: clips.len(),
        tolerance_frames: tolerance,
        thresholds: trained.thresholds,
        model_with_audio: with_audio.into(),
        model_without_audio: without_audio.into(),
        visual_beats: visual.into(),
        chance: chance.into(),
        every_frame: every.into(),
        triplets,
    }
}

/// Held-out triplet accuracy for both pretext tasks (see [`TripletAccuracy`]);
/// `visual` and `audio` are the clips' own embeddings, a row per clip.
fn triplet_accuracy(
    trained: &TrainedModel,
    clips: &[CachedClip],
    visual: &[Vec<f32>],
    audio: &[Vec<f32>],
) -> TripletAccuracy {
    let (config, sampling) = (trained.config(), &trained.sampling);
    let onsets: Vec<Vec<bool>> = clips.iter().map(CachedClip::onset_flags).collect();
    let (mut avc, mut avc_n) = (0usize, 0usize);
    for i in 0..clips.len() {
        let positive = squared_distance(&visual[i], &audio[i]);
        for j in 0..clips.len() {
            if clips[i].meta.video != clips[j].meta.video
                && is_rhythm_distinct(&onsets[i], &onsets[j], sampling.rhythm_threshold)
            {
                avc_n += 1;
                avc += usize::from(positive < squared_distance(&visual[i], &audio[j]));
            }
        }
    }
    let spec = RhythmParams::default().spectrogram;
    let (mut avts, mut avts_n) = (0usize, 0usize);
    for (i, clip) in clips.iter().enumerate() {
        let (before, after) = clip.shift_room(config.fps, &spec, config.audio_frames as usize);
        let shifts: Vec<i64> = (sampling.min_shift.max(1)..=sampling.max_shift)
            .flat_map(|s| [-s, s])
            .filter(|&s| -before <= s && s <= after)
            .filter(|&s| is_allowed_shift(s, config.fps, clip.meta.tempo_bpm, sampling.shift_tolerance))
            .collect();
        if shifts.is_empty() {
            continue;
        }
        let shifted: Vec<Tensor> =
            shifts.iter().map(|&s| clip.audio_shifted(s, config.fps, &spec, config.audio_frames)).collect();
        let negatives = tch::no_grad(|| {
            rows(&trained.model.audio(&Tensor::stack(&shifted, 0).to_device(trained.device), false).embedding)
        });
        let positive = squared_distance(&visual[i], &audio[i]);
        for negative in &negatives {
            avts_n += 1;
            avts += usize::from(positive < squared_distance(&visual[i], negative));
        }
    }
    let fraction = |hits: usize, n: usize| (n > 0).then(|| hits as f64 / n as f64);
    TripletAccuracy {
        avc: fraction(avc, avc_n),
        avc_triplets: avc_n,
        avts: fraction(avts, avts_n),
        avts_triplets: avts_n,
        visual_cosine: mean_cosine(visual, clips),
        audio_cosine: mean_cosine(audio, clips),
    }
}

/// `||a − b||²₂`, summed in f64: collapsed embeddings sit within float32
/// rounding of each other, where an f32 sum could decide the comparison.
fn squared_distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from((x - y) * (x - y))).sum()
}

/// The mean cosine similarity of unit embeddings (a row per clip) over the
/// pairs of clips of different videos; none without such a pair.
fn mean_cosine(embeddings: &[Vec<f32>], clips: &[CachedClip]) -> Option<f64> {
    let (mut sum, mut pairs) = (0.0, 0usize);
    for i in 0..clips.len() {
        for j in 0..clips.len() {
            if clips[i].meta.video != clips[j].meta.video {
                sum +=
                    embeddings[i].iter().zip(&embeddings[j]).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum::<f64>();
                pairs += 1;
            }
        }
    }
    (pairs > 0).then(|| sum / pairs as f64)
}

/// The decision thresholds that give the best F-measure (within `tolerance`
/// frames) on `clips`, with and without the music: how training sets the
/// classifier heads' operating points on its own clips. Other heads decide
/// without a threshold and keep the default.
pub fn fit_thresholds(model: &MuDaR, clips: &[CachedClip], tolerance: i64, device: Device) -> DecisionThresholds {
    if !matches!(model.config().head, RhythmHead::Focal | RhythmHead::Bce) || clips.is_empty() {
        return DecisionThresholds::default();
    }
    let (heard, unheard) = run_model(model, &DecisionThresholds::default(), clips, device);
    let onsets: Vec<Vec<i64>> = clips.iter().map(CachedClip::onset_frames).collect();
    let best = |groups: &[Inference]| {
        let probabilities: Vec<Vec<f32>> = groups.iter().flat_map(|g| rows(&g.rhythm_probability)).collect();
        best_threshold(&probabilities, &onsets, tolerance)
    };
    DecisionThresholds { with_audio: best(&heard), without_audio: best(&unheard) }
}

/// The threshold in 0.01..0.99 whose decisions (`p ≥ threshold`) have the
/// best F-measure against the clips' onset frames within `tolerance` frames;
/// of equal ones the highest, which calls fewer frames.
fn best_threshold(probabilities: &[Vec<f32>], onsets: &[Vec<i64>], tolerance: i64) -> f64 {
    let f_at = |threshold: f64| {
        let mut m = EventMatches::default();
        for (p, onsets) in probabilities.iter().zip(onsets) {
            let predicted: Vec<i64> =
                p.iter().enumerate().filter(|(_, p)| f64::from(**p) >= threshold).map(|(t, _)| t as i64).collect();
            m = m + EventMatches::of(onsets, &predicted, tolerance);
        }
        m.f_measure()
    };
    let (mut best, mut best_f) = (0.5, f64::NEG_INFINITY);
    for step in (1..100).rev() {
        let threshold = step as f64 / 100.0;
        let f = f_at(threshold);
        if f > best_f {
            (best, best_f) = (threshold, f);
        }
    }
    best
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

#[cfg(test)]
mod tests {
    use super::best_threshold;

    #[test]
    fn best_threshold_by_hand() {
        // Onsets at 1 and 4 (probabilities exact in binary). Called frames by
        // threshold, exact timing: above 0.875 none (F 0); 0.76-0.87 {1} (P 1,
        // R 1/2, F 2/3); 0.51-0.75 {1, 5} (F 1/2); 0.26-0.5 {1, 4, 5} (P 2/3,
        // R 1, F 4/5); 0.13-0.25 {1, 2, 4, 5} (F 2/3); below, every frame
        // (F 1/2). Best: 0.26-0.5, of which the highest.
        let p = vec![vec![0.125, 0.875, 0.25, 0.125, 0.5, 0.75]];
        let onsets = vec![vec![1, 4]];
        assert_eq!(best_threshold(&p, &onsets, 0), 0.5);
        // Within a frame, 5 counts for 4: {1, 5} at 0.51-0.75 is perfect.
        assert_eq!(best_threshold(&p, &onsets, 1), 0.75);
        // Clips pool their matches: a second clip whose one onset has 0.375
        // makes 0.26-0.37 best ({1, 4, 5} and {0}: P 3/4, R 1, F 6/7, where
        // 0.38-0.5 has F 2/3 and 0.13-0.25 F 3/4).
        let p = vec![p[0].clone(), vec![0.375, 0.125, 0.125]];
        let onsets = vec![vec![1, 4], vec![0]];
        assert_eq!(best_threshold(&p, &onsets, 0), 0.37);
    }
}
