//! Music-to-dance retrieval over a feature store (paper Sec. 4.3, Table 3).
//!
//! The candidates are the store's dances cut into segments of `segment_s`
//! seconds (the paper's 24 s), each with its clips' visual embeddings pooled
//! and its visual rhythm points (the trained model's decisions, `rhythm` in
//! `video_frames`). A query is a piece of music, embedded by the same model's
//! audio encoder over back-to-back clips of the model's length, with its
//! onsets as rhythm points. [`operators::retrieval`] scores each pair (Eq. 21)
//! and [`operators::metrics`] scores the rankings.
//!
//! Memory: one pooled embedding (E floats) and the rhythm points of each
//! candidate, and the store read a batch at a time, two columns of embeddings
//! at most: never the store's tables whole.
//!
//! [`operators::retrieval`]: mudar_operators::retrieval
//! [`operators::metrics`]: mudar_operators::metrics

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, UInt32Type};
use arrow_array::{Array, RecordBatch};
use mudar_operators::metrics::{average_precision, hit_at_k, precision_at_k};
use mudar_operators::retrieval::{embedding_similarity, hybrid_similarity, pooled_embedding, rhythm_similarity};
use mudar_operators::rhythm::{self, RhythmParams};
use mudar_schemas::tables::{CLIPS, VIDEO_FRAMES};
use serde::Serialize;
use tch::{Kind, Tensor};

use crate::clip::ClipRule;
use crate::source::decode_audio;
use crate::store_read::scan_table;
use crate::train::clips::clip_audio_input;
use crate::train::trained::TrainedModel;

/// The paper's retrieval candidates: 24 s of dance.
pub const DEFAULT_SEGMENT_S: f64 = 24.0;

/// Music clips the audio encoder takes at once.
const QUERY_BATCH: usize = 8;

/// A dance, or one feed connection of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DanceKey {
    pub input: String,
    /// A live feed's connection; `None` for files.
    pub connection: Option<u32>,
}

/// A retrieval candidate: `segment_s` seconds of one dance.
#[derive(Clone, Debug, Serialize)]
pub struct Segment {
    #[serde(flatten)]
    pub dance: DanceKey,
    /// The segment's number in its dance: it spans media time `[index·segment_s, (index+1)·segment_s)`.
    pub index: u32,
    /// The span its clips cover, seconds.
    pub start_s: f64,
    pub end_s: f64,
    #[serde(skip)]
    pub embedding: Vec<f32>,
    /// Visual rhythm frames, counted from the segment's start at the model's frame rate.
    #[serde(skip)]
    pub rhythm: Vec<i64>,
}

/// Which segments of a dance take part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Every segment.
    All,
    /// The first only (the paper's labelled videos: 24 s from the start).
    First,
}

/// The store's dances as retrieval candidates: segments of `segment_s` seconds (a clip belongs
/// to the segment its start lies in; a dance's last segment may be shorter), for the dances
/// `cut` lets in (`None`: the dance is left out). `embedding_dim` (E) and `embedding_len`
/// (T·E): the model's, which must be the width of the store's embeddings; `fps` its frame
/// rate. Clips without embeddings (files extracted without a model, clips the model could not
/// take) are left out, and so are segments left without any.
pub fn read_segments(
    store: &Path,
    segment_s: f64,
    fps: f64,
    embedding_dim: usize,
    embedding_len: usize,
    cut: &dyn Fn(&DanceKey) -> Option<Cut>,
) -> Result<Vec<Segment>, String> {
    let mut sums: BTreeMap<(DanceKey, u32), (Vec<f32>, f64, f64)> = BTreeMap::new();
    let columns = ["input", "connection", "start_s", "end_s", "visual_embedding"];
    scan_table(store, CLIPS, &columns, |batch| {
        // A file written without a model has no embeddings: nothing to rank there.
        let Some(embeddings) = batch.column_by_name("visual_embedding") else { return Ok(()) };
        let embeddings = embeddings.as_fixed_size_list();
        let width = embeddings.value_length() as usize;
        if width != embedding_len {
            return Err(format!(
                "{}: its clip embeddings have {width} values, this model's have {embedding_len}: \
                 the store was extracted with another model",
                store.display()
            ));
        }
        let (inputs, connections) = (batch.column(0).as_string::<i32>(), connection_column(&batch));
        let starts = batch.column_by_name("start_s").expect("clips have start_s").as_primitive::<Float64Type>();
        let ends = batch.column_by_name("end_s").expect("clips have end_s").as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            if embeddings.is_null(row) {
                continue;
            }
            let dance = DanceKey { input: inputs.value(row).to_owned(), connection: connections(row) };
            let index = (starts.value(row) / segment_s).floor().max(0.0) as u32;
            match cut(&dance) {
                None => continue,
                Some(Cut::First) if index > 0 => continue,
                Some(_) => {}
            }
            let values = embeddings.value(row);
            let values = values.as_primitive::<Float32Type>().values();
            let (sum, start, end) =
                sums.entry((dance, index)).or_insert_with(|| (vec![0.0; embedding_dim], f64::MAX, f64::MIN));
            for frame in values.chunks_exact(embedding_dim) {
                for (s, x) in sum.iter_mut().zip(frame) {
                    *s += x;
                }
            }
            (*start, *end) = (start.min(starts.value(row)), end.max(ends.value(row)));
        }
        Ok(())
    })?;

    let mut rhythm: HashMap<(DanceKey, u32), BTreeSet<i64>> = HashMap::new();
    let columns = ["input", "connection", "time_s", "rhythm"];
    scan_table(store, VIDEO_FRAMES, &columns, |batch| {
        let Some(decisions) = batch.column_by_name("rhythm") else { return Ok(()) };
        let decisions = decisions.as_boolean();
        let (inputs, connections) = (batch.column(0).as_string::<i32>(), connection_column(&batch));
        let times = batch.column_by_name("time_s").expect("frames have time_s").as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            if decisions.is_null(row) || !decisions.value(row) {
                continue;
            }
            let time = times.value(row);
            let index = (time / segment_s).floor().max(0.0) as u32;
            let key = (DanceKey { input: inputs.value(row).to_owned(), connection: connections(row) }, index);
            if sums.contains_key(&key) {
                let frame = ((time - index as f64 * segment_s) * fps).round() as i64;
                rhythm.entry(key).or_default().insert(frame);
            }
        }
        Ok(())
    })?;

    Ok(sums
        .into_iter()
        .filter_map(|((dance, index), (sum, start_s, end_s))| {
            let embedding = pooled_embedding(&sum, embedding_dim)?;
            let rhythm = rhythm.remove(&(dance.clone(), index)).map_or(Vec::new(), |r| r.into_iter().collect());
            Some(Segment { dance, index, start_s, end_s, embedding, rhythm })
        })
        .collect())
}

/// The `connection` column of a batch, read row by row (null, or absent in old stores: `None`).
fn connection_column(batch: &RecordBatch) -> impl Fn(usize) -> Option<u32> + '_ {
    let column = batch.column_by_name("connection").map(|c| c.as_primitive::<UInt32Type>());
    move |row| column.filter(|c| !c.is_null(row)).map(|c| c.value(row))
}

/// A piece of music, ready to query with.
#[derive(Clone, Debug, Serialize)]
pub struct MusicQuery {
    pub input: String,
    pub duration_s: f64,
    /// The model's clips it was embedded as.
    pub clips: usize,
    #[serde(skip)]
    pub embedding: Vec<f32>,
    /// Onset frames at the model's frame rate.
    #[serde(skip)]
    pub onsets: Vec<i64>,
}

/// Embeds the music `input` with `model`'s audio encoder, clip by clip of the model's length
/// (the audio cut as training cut it, margin included; a shorter tail is left out), pooled over
/// all its frames, and finds its onsets (librosa's onset_detect on the whole track) on the
/// model's frames.
pub fn music_query(input: &str, model: &TrainedModel, rhythm: &RhythmParams) -> Result<MusicQuery, String> {
    let sr = rhythm.spectrogram.sr;
    let (samples, _) = decode_audio(input, sr, ClipRule::Whole).map_err(|e| e.to_string())?;
    let config = model.config();
    let (fps, audio_frames, dim) = (config.fps, config.audio_frames as usize, config.embedding_dim as usize);
    let clip_s = config.frames as f64 / fps;
    let duration_s = samples.len() as f64 / sr as f64;
    let clips = (duration_s / clip_s).floor() as usize;
    if clips == 0 {
        return Err(format!(
            "{input}: {duration_s:.1} s of audio, shorter than the model's {clip_s:.1} s clip (or no audio track)"
        ));
    }
    let margin_s = model.clip_params(ClipRule::Whole, *rhythm).margin.as_secs_f64();
    let sample = |t: f64| ((t * sr as f64).round() as usize).min(samples.len());
    let mut sum = vec![0f32; dim];
    let mut batch: Vec<f32> = Vec::new();
    let mut width = 0;
    let mut embed = |batch: &mut Vec<f32>, width: usize| {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() / (audio_frames * width);
        let audio = Tensor::from_slice(batch).view([n as i64, audio_frames as i64, width as i64]);
        let embedding = model.audio_embedding(&audio).to_kind(Kind::Float).flatten(0, -1);
        let values = Vec::<f32>::try_from(&embedding).expect("embeddings are f32");
        for frame in values.chunks_exact(dim) {
            for (s, x) in sum.iter_mut().zip(frame) {
                *s += x;
            }
        }
        batch.clear();
    };
    for k in 0..clips {
        let start_s = k as f64 * clip_s;
        let from_s = (start_s - margin_s).max(0.0);
        let window = &samples[sample(from_s)..sample(start_s + clip_s + margin_s)];
        let (input_frames, hops, _) = clip_audio_input(window, sr, start_s - from_s, audio_frames, rhythm)
            .map_err(|e| format!("{input}: clip {k} at {start_s:.1} s: {e}"))?;
        width = input_frames.n_bins;
        batch.extend_from_slice(&input_frames.data[hops * width..(hops + audio_frames) * width]);
        if batch.len() >= QUERY_BATCH * audio_frames * width {
            embed(&mut batch, width);
        }
    }
    embed(&mut batch, width);
    let embedding = pooled_embedding(&sum, dim).ok_or_else(|| format!("{input}: its embedding is zero"))?;
    let music = rhythm::analyze(&samples, rhythm).map_err(|e| format!("{input}: cannot analyse its audio: {e}"))?;
    let mut onsets: Vec<i64> =
        music.onset_frames.iter().map(|&f| (rhythm.spectrogram.frame_time(f) * fps).round() as i64).collect();
    onsets.dedup();
    Ok(MusicQuery { input: input.to_owned(), duration_s, clips, embedding, onsets })
}

/// One candidate's scores for a query.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Scores {
    /// Index into the candidates.
    pub segment: usize,
    /// S_e, S_r, and Eq. 21's S_hyb over the standardized two.
    pub embedding: f64,
    pub rhythm: f64,
    pub hybrid: f64,
}

/// Scores every candidate for `query` (Eq. 21 with λ₃ = `lambda`), best first. Equal hybrid
/// scores (common at λ₃ = 0 or 1, where one similarity alone decides) are ordered by the other
/// similarity, not by where the candidates happen to be in the store.
pub fn rank(query: &MusicQuery, segments: &[Segment], lambda: f64) -> Vec<Scores> {
    let embedding: Vec<f64> = segments.iter().map(|s| embedding_similarity(&query.embedding, &s.embedding)).collect();
    let rhythm: Vec<f64> = segments.iter().map(|s| rhythm_similarity(&query.onsets, &s.rhythm)).collect();
    let hybrid = hybrid_similarity(&embedding, &rhythm, lambda);
    let mut scores: Vec<Scores> = (0..segments.len())
        .map(|i| Scores { segment: i, embedding: embedding[i], rhythm: rhythm[i], hybrid: hybrid[i] })
        .collect();
    let tie_break = |s: &Scores| s.embedding + s.rhythm;
    scores.sort_by(|a, b| b.hybrid.total_cmp(&a.hybrid).then(tie_break(b).total_cmp(&tie_break(a))));
    scores
}

/// Table 3's figures over a set of queries.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RetrievalScores {
    pub queries: usize,
    /// Share of queries with a relevant dance first, among the first five.
    pub r_at_1: f64,
    pub r_at_5: f64,
    /// Mean share of relevant dances among the first ten.
    pub p_at_10: f64,
    /// Mean average precision (scikit-learn's AP per query).
    pub map: f64,
}

/// Scores the rankings of `queries`, each with the candidates relevant to it, at λ₃ = `lambda`.
/// Queries without a relevant candidate are left out (their AP is undefined).
pub fn evaluate(queries: &[(&MusicQuery, Vec<bool>)], segments: &[Segment], lambda: f64) -> RetrievalScores {
    let mut scores = RetrievalScores::default();
    for (query, relevant) in queries {
        let ranked = rank(query, segments, lambda);
        let order: Vec<usize> = ranked.iter().map(|s| s.segment).collect();
        let mut hybrid = vec![0.0; segments.len()];
        for s in &ranked {
            hybrid[s.segment] = s.hybrid;
        }
        let Some(ap) = average_precision(&hybrid, relevant) else { continue };
        scores.queries += 1;
        scores.map += ap;
        scores.r_at_1 += hit_at_k(&order, relevant, 1) as u8 as f64;
        scores.r_at_5 += hit_at_k(&order, relevant, 5) as u8 as f64;
        scores.p_at_10 += precision_at_k(&order, relevant, 10);
    }
    if scores.queries > 0 {
        let n = scores.queries as f64;
        (scores.r_at_1, scores.r_at_5, scores.p_at_10, scores.map) =
            (scores.r_at_1 / n, scores.r_at_5 / n, scores.p_at_10 / n, scores.map / n);
    }
    scores
}
