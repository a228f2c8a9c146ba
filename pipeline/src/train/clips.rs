//! Training clips from the extraction graph: each clip's frames, their HOOF,
//! the audio input around it and its onset targets, cached on disk so epochs
//! do not decode and compute flow again.
//!
//! The audio input is computed once over the clip widened by the largest
//! AVTS shift on both sides (where the media has it), so a shifted negative
//! (Eq. 17) is a slice of the same frames as the positive.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mudar_operators::model::targets::{envelope_at_frames, onset_flags};
use mudar_operators::model::{ModelConfig, SamplingParams};
use mudar_operators::rhythm::stft::Frames;
use mudar_operators::rhythm::{self, RhythmParams, SpectrogramParams, audio_input};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;

use crate::clip::{Clip, ClipAssembler, ClipRule, Span};
use crate::graph::{Closing, Event, Record, StreamId, stream_of};

/// What a training clip must hold.
#[derive(Clone, Copy, Debug)]
pub struct TrainingClipParams {
    pub rule: ClipRule,
    pub rhythm: RhythmParams,
    pub fps: f64,
    /// Video frames per clip (the model's T).
    pub frames: usize,
    /// Audio input frames per clip (the model's T_a).
    pub audio_frames: usize,
    /// Audio kept on either side of a clip for shifted negatives.
    pub margin: Duration,
    pub hoof_bins: usize,
}

impl TrainingClipParams {
    /// How `model`'s clips are cut by `rule`: its frames and audio frames,
    /// with audio on either side for `sampling`'s largest AVTS shift.
    pub fn for_model(model: &ModelConfig, sampling: &SamplingParams, rule: ClipRule, rhythm: RhythmParams) -> Self {
        TrainingClipParams {
            rule,
            rhythm,
            fps: model.fps,
            frames: model.frames as usize,
            audio_frames: model.audio_frames as usize,
            margin: audio_margin(sampling, model.fps, &rhythm),
            hoof_bins: model.hoof_bins as usize,
        }
    }
}

/// The audio cached on either side of a clip: whole hops covering the
/// largest AVTS shift, so shifted windows stay on the clip's frame grid.
/// Inference takes the same, so the model's audio input is computed over the
/// same stretch of music as in training.
fn audio_margin(sampling: &SamplingParams, fps: f64, rhythm: &RhythmParams) -> Duration {
    let spec = rhythm.spectrogram;
    let margin_s = sampling.max_shift as f64 / fps;
    let margin_hops = (margin_s * spec.sr as f64 / spec.hop_length as f64).ceil();
    Duration::from_secs_f64(margin_hops * spec.hop_length as f64 / spec.sr as f64)
}

/// One clip, ready for the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipMeta {
    /// The input (path or URI) and the clip's index in it.
    pub video: String,
    pub clip: u32,
    pub start_s: f64,
    /// Side of the square frames.
    pub frame_size: usize,
    /// Audio input frames in the cached window, and the window frame where the clip starts.
    pub audio_window: usize,
    pub audio_offset: usize,
    pub tempo_bpm: f64,
}

#[derive(Clone, Debug)]
pub struct TrainingClip {
    pub meta: ClipMeta,
    /// T frames of `frame_size`² RGB bytes.
    pub frames: Vec<u8>,
    /// T × bins.
    pub hoof: Vec<f32>,
    /// `audio_window` × features.
    pub audio: Vec<f32>,
    pub audio_features: usize,
    /// Music onsets on the T video frames, and the envelope there (0..1).
    pub onsets: Vec<bool>,
    pub envelope: Vec<f32>,
    /// The model-free visual beats on the T frames (the baseline a trained model must beat).
    pub visual_beats: Vec<bool>,
    /// Media time of each of the T frames, seconds.
    pub frame_times: Vec<f64>,
}

impl TrainingClip {
    /// The clip as [`CachedClip`]'s tensors, by name.
    fn tensors(&self) -> [(&'static str, Tensor); 6] {
        let t = self.onsets.len() as i64;
        let s = self.meta.frame_size as i64;
        let as_floats = |flags: &[bool]| flags.iter().map(|&f| if f { 1f32 } else { 0.0 }).collect::<Vec<f32>>();
        [
            ("frames", Tensor::from_slice(&self.frames).view([t, s, s, 3])),
            ("hoof", Tensor::from_slice(&self.hoof).view([t, -1])),
            ("audio", Tensor::from_slice(&self.audio).view([-1, self.audio_features as i64])),
            ("onsets", Tensor::from_slice(&as_floats(&self.onsets))),
            ("visual_beats", Tensor::from_slice(&as_floats(&self.visual_beats))),
            ("envelope", Tensor::from_slice(&self.envelope)),
        ]
    }
}

/// A decoded frame waiting for, or joined with, its HOOF row.
#[derive(Clone, Debug)]
struct FrameItem {
    pts: Duration,
    size: usize,
    rgb: Vec<u8>,
    hoof: Option<Vec<f32>>,
    visual_beat: bool,
}

struct StreamState {
    video: String,
    assembler: ClipAssembler<FrameItem>,
    /// The clip spans proper, by the widened span's start.
    inner: Vec<(Span, Span)>,
    /// Frames decoded but not yet given their HOOF, by pts in ns.
    pending: BTreeMap<u128, FrameItem>,
    next_clip: u32,
}

/// A clip that becomes a training example, or why it does not.
pub type ClipOutcome = Result<TrainingClip, String>;

pub trait TrainingClips<'scope> {
    /// Training clips of every stream (exchanged by stream id), each as soon
    /// as its widened window has passed (or the stream closed).
    fn training_clips(
        self,
        motion: Stream<'scope, u64, Vec<(StreamId, Record)>>,
        params: TrainingClipParams,
    ) -> Stream<'scope, u64, Vec<(StreamId, ClipOutcome)>>;
}

impl<'scope> TrainingClips<'scope> for Stream<'scope, u64, Vec<(StreamId, Event)>> {
    fn training_clips(
        self,
        motion: Stream<'scope, u64, Vec<(StreamId, Record)>>,
        params: TrainingClipParams,
    ) -> Stream<'scope, u64, Vec<(StreamId, ClipOutcome)>> {
        let mut streams: HashMap<StreamId, StreamState> = HashMap::new();
        let mut closing = Closing::default();
        let frame_s = Duration::from_secs_f64(1.0 / params.fps);
        let exchange = (Exchange::new(stream_of), Exchange::new(stream_of));
        self.binary_frontier(motion, exchange.0, exchange.1, "TrainingClips", move |_, _| {
            move |(events, events_frontier), (motion, motion_frontier), output| {
                events.for_each(|time, data| {
                    let mut session = output.session(&time);
                    for (id, event) in data.drain(..) {
                        match event {
                            Event::Opened(opened) => {
                                if !(opened.has_audio && opened.has_video) {
                                    continue;
                                }
                                let inner = match opened.duration_s {
                                    Some(d) => params.rule.spans(Duration::from_secs_f64(d)),
                                    None => Vec::new(),
                                };
                                let widened: Vec<(Span, Span)> = inner
                                    .into_iter()
                                    .map(|s| {
                                        (Span::new(s.start.saturating_sub(params.margin), s.end + params.margin), s)
                                    })
                                    .collect();
                                let spans = widened.iter().map(|(w, _)| *w).collect();
                                streams.insert(
                                    id,
                                    StreamState {
                                        video: opened.input,
                                        assembler: ClipAssembler::new(spans, true, true),
                                        inner: widened,
                                        pending: BTreeMap::new(),
                                        next_clip: 0,
                                    },
                                );
                            }
                            Event::Audio(chunk) => {
                                if let Some(state) = streams.get_mut(&id) {
                                    let clips = state.assembler.push_audio(&chunk);
                                    session.give_iterator(outcomes(id, state, clips, &params).into_iter());
                                }
                            }
                            Event::Video(frame) => {
                                if let Some(state) = streams.get_mut(&id) {
                                    let item = FrameItem {
                                        pts: frame.pts,
                                        size: frame.width as usize,
                                        rgb: frame.rgb,
                                        hoof: None,
                                        visual_beat: false,
                                    };
                                    state.pending.insert(frame.pts.as_nanos(), item);
                                }
                            }
                            Event::Closed(_) => closing.push(time.retain_least(0).expect("output 0"), id),
                            Event::SenderClock(_) => {}
                        }
                    }
                });
                motion.for_each(|time, data| {
                    let mut session = output.session(&time);
                    for (id, record) in data.drain(..) {
                        let (Record::Video(row), Some(state)) = (record, streams.get_mut(&id)) else { continue };
                        // The row's time is the frame's pts as seconds: match within a microsecond.
                        let at = (row.time_s * 1e9).round() as u128;
                        let ready: Vec<u128> = state.pending.range(..=at + 1_000).map(|(k, _)| *k).collect();
                        let mut clips = Vec::new();
                        for k in ready {
                            let mut item = state.pending.remove(&k).expect("listed");
                            if k + 1_000 >= at {
                                item.hoof = Some(row.hoof.clone());
                                item.visual_beat = row.visual_beat;
                            }
                            clips.extend(state.assembler.push_video(item.pts, frame_s, item));
                        }
                        session.give_iterator(outcomes(id, state, clips, &params).into_iter());
                    }
                });
                closing.finish_complete([events_frontier, motion_frontier], |cap, id| {
                    if let Some(mut state) = streams.remove(&id) {
                        // The last frame has no flow out of it, so no HOOF row.
                        let mut clips = Vec::new();
                        for (_, item) in std::mem::take(&mut state.pending) {
                            clips.extend(state.assembler.push_video(item.pts, frame_s, item));
                        }
                        let assembler =
                            std::mem::replace(&mut state.assembler, ClipAssembler::new(Vec::new(), false, false));
                        clips.extend(assembler.finish());
                        output.session(cap).give_iterator(outcomes(id, &mut state, clips, &params).into_iter());
                    }
                });
            }
        })
        .container::<Vec<_>>()
    }
}

fn outcomes(
    id: StreamId,
    state: &mut StreamState,
    clips: Vec<Clip<FrameItem>>,
    params: &TrainingClipParams,
) -> Vec<(StreamId, ClipOutcome)> {
    clips
        .into_iter()
        .map(|clip| {
            let inner = state.inner.iter().find(|(w, _)| *w == clip.span).map(|(_, s)| *s).expect("a span we opened");
            let index = state.next_clip;
            state.next_clip += 1;
            (id, training_clip(&state.video, index, &clip, inner, params))
        })
        .collect()
}

/// The training example of clip `index` of `video`, a widened clip whose
/// proper span is `inner`.
fn training_clip(
    video: &str,
    index: u32,
    clip: &Clip<FrameItem>,
    inner: Span,
    params: &TrainingClipParams,
) -> ClipOutcome {
    let start_s = inner.start.as_secs_f64();
    let what = || format!("clip {index} at {start_s:.2} s");
    let frames: Vec<&FrameItem> = clip.frames.iter().filter(|f| inner.contains(f.pts)).take(params.frames).collect();
    if frames.len() < params.frames {
        return Err(format!("{}: {} frames, the model needs {}", what(), frames.len(), params.frames));
    }
    let size = frames[0].size;
    let mut rgb = Vec::with_capacity(params.frames * size * size * 3);
    let mut hoof = Vec::with_capacity(params.frames * params.hoof_bins);
    let mut last = vec![0f32; params.hoof_bins];
    for frame in &frames {
        rgb.extend_from_slice(&frame.rgb);
        // The clip's last frame may have no flow out of it: it repeats the motion before.
        if let Some(h) = &frame.hoof {
            last.clone_from(h);
        }
        hoof.extend_from_slice(&last);
    }

    let spec = &params.rhythm.spectrogram;
    let sr = clip.sample_rate.max(1) as f64;
    let before = inner.start.saturating_sub(clip.audio_start).as_secs_f64();
    let (input, hops, window) =
        clip_audio_input(&clip.audio, clip.sample_rate, before, params.audio_frames, &params.rhythm)
            .map_err(|e| format!("{}: {e}", what()))?;
    let clip_samples = (inner.length().as_secs_f64() * sr).round() as usize;
    let own = &window[hops * spec.hop_length..(hops * spec.hop_length + clip_samples).min(window.len())];
    let music = rhythm::analyze(own, &params.rhythm).map_err(|e| format!("{}: {e}", what()))?;
    let onset_times: Vec<f64> = music.onset_frames.iter().map(|&f| spec.frame_time(f)).collect();
    let audio_rate = spec.sr as f64 / spec.hop_length as f64;

    let meta = ClipMeta {
        video: video.to_owned(),
        clip: index,
        start_s,
        frame_size: size,
        audio_window: input.len(),
        audio_offset: hops,
        tempo_bpm: music.tempo,
    };
    Ok(TrainingClip {
        meta,
        frames: rgb,
        hoof,
        audio_features: input.n_bins,
        audio: input.data,
        onsets: onset_flags(&onset_times, params.fps, params.frames),
        envelope: envelope_at_frames(&music.onset_envelope, audio_rate, params.fps, params.frames),
        visual_beats: frames.iter().map(|f| f.visual_beat).collect(),
        frame_times: frames.iter().map(|f| f.pts.as_secs_f64()).collect(),
    })
}

/// The model's audio input around a clip that starts `before_s` into `audio` (the clip's
/// audio with the margin before it, at `sample_rate`): the features of the whole window, the
/// row where the clip starts, and the samples the features were computed on (the window from
/// a whole number of hops before the clip, so its frames are the clip's own). Training,
/// extraction and retrieval queries all cut the model's audio this way.
pub fn clip_audio_input<'a>(
    audio: &'a [f32],
    sample_rate: u32,
    before_s: f64,
    audio_frames: usize,
    rhythm: &RhythmParams,
) -> Result<(Frames, usize, &'a [f32]), String> {
    let hop = rhythm.spectrogram.hop_length;
    let offset_samples = (before_s * sample_rate.max(1) as f64).round() as usize;
    let (hops, skip) = (offset_samples / hop, offset_samples % hop);
    let window = audio.get(skip..).unwrap_or_default();
    let input = audio_input(window, rhythm).map_err(|e| e.to_string())?;
    if input.len() < hops + audio_frames {
        return Err("the audio ends before the clip does".to_owned());
    }
    Ok((input, hops, window))
}

/// The cache file of a clip: `DIR/v<stream>-c<clip>.safetensors`, its
/// description in the `.json` beside it (written last: the clip is cached
/// once the JSON exists).
pub fn cache_path(dir: &Path, stream: StreamId, clip: u32) -> PathBuf {
    dir.join(format!("v{stream:06}-c{clip:05}"))
}

pub fn write_clip(stem: &Path, clip: &TrainingClip) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: cannot write the clip cache: {e}", stem.display());
    let tensors = clip.tensors();
    let tensor_file = stem.with_extension("safetensors");
    Tensor::write_safetensors(&tensors, &tensor_file).map_err(|e| fail(&e))?;
    let json = serde_json::to_string(&clip.meta).expect("serialisable");
    let partial = stem.with_extension("json.tmp");
    std::fs::write(&partial, json).map_err(|e| fail(&e))?;
    std::fs::rename(&partial, stem.with_extension("json")).map_err(|e| fail(&e))
}

/// A cached clip as tensors: frames [T, S, S, 3] u8, hoof [T, bins], audio
/// \[window, F\], onsets, envelope and visual beats \[T\].
#[derive(Debug)]
pub struct CachedClip {
    pub meta: ClipMeta,
    pub frames: Tensor,
    pub hoof: Tensor,
    pub audio: Tensor,
    pub onsets: Tensor,
    pub envelope: Tensor,
    pub visual_beats: Tensor,
}

impl CachedClip {
    /// The same clip, sharing its tensors' storage.
    pub fn shallow_clone(&self) -> CachedClip {
        CachedClip {
            meta: self.meta.clone(),
            frames: self.frames.shallow_clone(),
            hoof: self.hoof.shallow_clone(),
            audio: self.audio.shallow_clone(),
            onsets: self.onsets.shallow_clone(),
            envelope: self.envelope.shallow_clone(),
            visual_beats: self.visual_beats.shallow_clone(),
        }
    }

    /// A clip straight from the graph, as it would read back from the cache.
    pub fn from_training(clip: &TrainingClip) -> CachedClip {
        let tensors: HashMap<&str, Tensor> = clip.tensors().into_iter().collect();
        CachedClip::from_tensors(clip.meta.clone(), |name| tensors.get(name).map(Tensor::shallow_clone))
            .expect("every tensor is there")
    }

    fn from_tensors(meta: ClipMeta, take: impl Fn(&str) -> Option<Tensor>) -> Result<CachedClip, String> {
        let take = |name: &str| take(name).ok_or_else(|| format!("no {name}"));
        Ok(CachedClip {
            meta,
            frames: take("frames")?.to_kind(Kind::Uint8),
            hoof: take("hoof")?,
            audio: take("audio")?,
            onsets: take("onsets")?,
            envelope: take("envelope")?,
            visual_beats: take("visual_beats")?,
        })
    }

    /// The model's audio input for this clip's frames, `shift` video frames
    /// later (earlier when negative) than its own: `audio_frames` rows of the
    /// cached window, starting at the nearest audio frame.
    pub fn audio_shifted(&self, shift: i64, fps: f64, spec: &SpectrogramParams, audio_frames: i64) -> Tensor {
        let audio_shift = (shift as f64 / fps * spec.sr as f64 / spec.hop_length as f64).round() as i64;
        let start = (self.meta.audio_offset as i64 + audio_shift).max(0);
        self.audio.narrow(0, start, audio_frames)
    }

    /// How many whole video frames the audio may shift before and after the
    /// clip's own and stay inside the cached window.
    pub fn shift_room(&self, fps: f64, spec: &SpectrogramParams, audio_frames: usize) -> (i64, i64) {
        let frames_per_audio = fps * spec.hop_length as f64 / spec.sr as f64;
        let after = self.meta.audio_window.saturating_sub(self.meta.audio_offset + audio_frames);
        let before = (self.meta.audio_offset as f64 * frames_per_audio).floor() as i64;
        (before, (after as f64 * frames_per_audio).floor() as i64)
    }

    /// Onset flags as booleans (for Eq. 16).
    pub fn onset_flags(&self) -> Vec<bool> {
        flags(&self.onsets)
    }

    /// The frames with a music onset.
    pub fn onset_frames(&self) -> Vec<i64> {
        frames_of(&self.onsets)
    }

    /// The frames with a model-free visual beat.
    pub fn visual_beat_frames(&self) -> Vec<i64> {
        frames_of(&self.visual_beats)
    }
}

fn flags(x: &Tensor) -> Vec<bool> {
    Vec::<f32>::try_from(x).expect("floats").iter().map(|&v| v > 0.5).collect()
}

fn frames_of(x: &Tensor) -> Vec<i64> {
    flags(x).iter().enumerate().filter(|(_, f)| **f).map(|(t, _)| t as i64).collect()
}

/// Every clip cached in `dir`, in file-name order (stream, then clip).
pub fn read_cache(dir: &Path) -> Result<Vec<CachedClip>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: cannot read the clip cache: {e}", dir.display());
    let mut stems: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| fail(&e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('v'))
        })
        .map(|p| p.with_extension(""))
        .collect();
    stems.sort();
    stems
        .iter()
        .map(|stem| {
            let meta: ClipMeta =
                serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).map_err(|e| fail(&e))?)
                    .map_err(|e| fail(&e))?;
            let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(stem.with_extension("safetensors"))
                .map_err(|e| fail(&e))?
                .into_iter()
                .collect();
            CachedClip::from_tensors(meta, |name| tensors.get(name).map(Tensor::shallow_clone)).map_err(|e| fail(&e))
        })
        .collect()
}
