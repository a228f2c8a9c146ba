//! Per-clip features: the clip's music rhythm exactly as librosa gives it on
//! the clip's audio, its visual beats, and how well they align.

use std::collections::HashMap;
use std::time::Duration;

use mudar_operators::metrics::{beat_align_motion_to_music, beat_align_music_to_motion};
use mudar_operators::rhythm::{self, RhythmParams};
use mudar_schemas::{ClipRow, VideoFrameRow};
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;

use super::{Closing, Event, Failure, Record, StreamId, stream_of};
use crate::clip::{Clip, ClipAssembler, ClipRule, Span};

/// How clips are cut and measured.
#[derive(Clone, Copy, Debug)]
pub struct ClipParams {
    pub rule: ClipRule,
    pub rhythm: RhythmParams,
    /// The video frame period, seconds.
    pub frame_s: f64,
    /// σ of the Beat Align Score, seconds.
    pub beat_align_sigma_s: f64,
}

struct ClipState {
    assembler: ClipAssembler<VideoFrameRow>,
    next_clip: u32,
}

pub trait ClipFeatures<'scope> {
    /// `clips` rows, each as soon as both the audio and the motion of the
    /// stream have passed the clip's end (or the stream closed).
    fn clip_features(
        self,
        motion: Stream<'scope, u64, Vec<(StreamId, Record)>>,
        params: ClipParams,
    ) -> Stream<'scope, u64, Vec<(StreamId, Record)>>;
}

impl<'scope> ClipFeatures<'scope> for Stream<'scope, u64, Vec<(StreamId, Event)>> {
    fn clip_features(
        self,
        motion: Stream<'scope, u64, Vec<(StreamId, Record)>>,
        params: ClipParams,
    ) -> Stream<'scope, u64, Vec<(StreamId, Record)>> {
        let mut streams: HashMap<StreamId, ClipState> = HashMap::new();
        // Streams whose events closed, waiting for their motion rows to be complete.
        let mut closing = Closing::default();
        self.binary_frontier(motion, Exchange::new(stream_of), Exchange::new(stream_of), "ClipFeatures", move |_, _| {
            move |(events, events_frontier), (motion, motion_frontier), output| {
                events.for_each(|time, data| {
                    let mut session = output.session(&time);
                    for (id, event) in data.drain(..) {
                        match event {
                            Event::Opened(opened) => {
                                let (audio, video) = (opened.has_audio, opened.has_video);
                                let assembler = match (opened.live, opened.duration_s) {
                                    (Some(_), _) => {
                                        let (length, stride) = params.rule.endless();
                                        ClipAssembler::endless(length, stride, audio, video)
                                    }
                                    (None, Some(d)) => {
                                        ClipAssembler::new(params.rule.spans(Duration::from_secs_f64(d)), audio, video)
                                    }
                                    // A file of unknown length: the whole stream is one clip.
                                    (None, None) => {
                                        ClipAssembler::new(vec![Span::new(Duration::ZERO, Duration::MAX)], audio, video)
                                    }
                                };
                                streams.insert(id, ClipState { assembler, next_clip: 0 });
                            }
                            Event::Audio(chunk) => {
                                if let Some(state) = streams.get_mut(&id) {
                                    let clips = state.assembler.push_audio(&chunk);
                                    session.give_iterator(clip_records(id, state, clips, &params));
                                }
                            }
                            Event::Closed(_) => closing.push(time.retain_least(0).expect("output 0"), id),
                            Event::Video(_) | Event::SenderClock(_) => {}
                        }
                    }
                });
                motion.for_each(|time, data| {
                    let mut session = output.session(&time);
                    for (id, record) in data.drain(..) {
                        if let (Record::Video(row), Some(state)) = (record, streams.get_mut(&id)) {
                            let pts = Duration::from_secs_f64(row.time_s);
                            let clips = state.assembler.push_video(pts, Duration::from_secs_f64(params.frame_s), row);
                            session.give_iterator(clip_records(id, state, clips, &params));
                        }
                    }
                });
                closing.finish_complete([events_frontier, motion_frontier], |cap, id| {
                    if let Some(mut state) = streams.remove(&id) {
                        let assembler =
                            std::mem::replace(&mut state.assembler, ClipAssembler::new(Vec::new(), false, false));
                        let clips = assembler.finish();
                        output.session(cap).give_iterator(clip_records(id, &mut state, clips, &params));
                    }
                });
            }
        })
        .container::<Vec<_>>()
    }
}

fn clip_records(
    id: StreamId,
    state: &mut ClipState,
    clips: Vec<Clip<VideoFrameRow>>,
    params: &ClipParams,
) -> std::vec::IntoIter<(StreamId, Record)> {
    let records: Vec<_> = clips
        .iter()
        .map(|clip| {
            let record = match clip_row(state.next_clip, clip, params) {
                Ok(row) => Record::Clip(row),
                Err(failure) => Record::Failed(failure),
            };
            state.next_clip += 1;
            (id, record)
        })
        .collect();
    records.into_iter()
}

/// A clip's row: tempo, onsets and beats of its audio (librosa's numbers on
/// exactly the clip's samples), its visual beats, and the Beat Align Score.
pub fn clip_row(index: u32, clip: &Clip<VideoFrameRow>, params: &ClipParams) -> Result<ClipRow, Failure> {
    let (tempo_bpm, onset_times, beat_times) = if clip.audio.is_empty() {
        (0.0, Vec::new(), Vec::new())
    } else {
        let rhythm = rhythm::analyze(&clip.audio, &params.rhythm)
            .map_err(|e| Failure { kind: "bad_audio".into(), message: format!("clip {index}: {e}") })?;
        let start = clip.audio_start.as_secs_f64();
        let times =
            |frames: &[usize]| frames.iter().map(|&f| start + params.rhythm.spectrogram.frame_time(f)).collect();
        (rhythm.tempo, times(&rhythm.onset_frames), times(&rhythm.beat_frames))
    };
    let visual_beat_times: Vec<f64> = clip.frames.iter().filter(|f| f.visual_beat).map(|f| f.time_s).collect();
    let mean_motion = if clip.frames.is_empty() {
        0.0
    } else {
        clip.frames.iter().map(|f| f.motion_energy).sum::<f32>() / clip.frames.len() as f32
    };
    let sigma = params.beat_align_sigma_s;
    Ok(ClipRow {
        clip: index,
        start_s: clip.span.start.as_secs_f64(),
        end_s: clip.span.end.as_secs_f64().min(clip_end(clip)),
        tempo_bpm,
        beat_align_music_to_motion: beat_align_music_to_motion(&beat_times, &visual_beat_times, sigma),
        beat_align_motion_to_music: beat_align_motion_to_music(&visual_beat_times, &beat_times, sigma),
        onset_times,
        beat_times,
        visual_beat_times,
        mean_motion,
        visual_embedding: None,
        audio_embedding: None,
    })
}

/// Where a clip's media actually ends (a stream may stop before its span does).
fn clip_end(clip: &Clip<VideoFrameRow>) -> f64 {
    let audio_end = clip.audio_start.as_secs_f64() + clip.audio.len() as f64 / clip.sample_rate.max(1) as f64;
    let video_end = clip.frames.last().map_or(0.0, |f| f.time_s);
    audio_end.max(video_end).max(clip.span.start.as_secs_f64())
}
