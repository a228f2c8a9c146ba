//! Music rhythm per frame: the streaming onset envelope and onsets.

use std::collections::{HashMap, HashSet};

use mudar_operators::rhythm::onset::FlaggedFrames;
use mudar_operators::rhythm::{OnsetStream, RhythmParams};
use mudar_schemas::AudioFrameRow;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;

use super::{Event, Failure, Record, StreamId, stream_of};

/// One stream's envelope, onsets and the frames awaiting their onset decision.
struct AudioState {
    onsets: OnsetStream,
    frames: FlaggedFrames<f32>,
    /// Media time of the stream's first sample.
    start_s: Option<f64>,
    frame_s: f64,
}

impl AudioState {
    fn rows(&mut self, out: mudar_operators::rhythm::stream::StreamOutput) -> Vec<AudioFrameRow> {
        for frame in out.frames {
            self.frames.push(frame.index, frame.envelope);
        }
        self.frames.peaks(out.onsets);
        let start = self.start_s.unwrap_or_default();
        self.frames
            .release(self.onsets.decided())
            .into_iter()
            .map(|(index, onset_envelope, onset)| AudioFrameRow {
                frame: index as u32,
                time_s: start + index as f64 * self.frame_s,
                onset_envelope,
                onset,
            })
            .collect()
    }
}

pub trait MusicRhythm<'scope> {
    /// `audio_frames` rows of every stream with audio, as soon as each
    /// frame's onset is decided (`OnsetStream`: librosa's numbers, with the
    /// running-maximum normalisation of the streaming form).
    fn music_rhythm(self, params: RhythmParams) -> Stream<'scope, u64, Vec<(StreamId, Record)>>;
}

impl<'scope> MusicRhythm<'scope> for Stream<'scope, u64, Vec<(StreamId, Event)>> {
    fn music_rhythm(self, params: RhythmParams) -> Stream<'scope, u64, Vec<(StreamId, Record)>> {
        let mut streams: HashMap<StreamId, AudioState> = HashMap::new();
        let mut failed: HashSet<StreamId> = HashSet::new();
        let frame_s = params.spectrogram.hop_length as f64 / params.spectrogram.sr as f64;
        self.unary(Exchange::new(stream_of), "MusicRhythm", move |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let mut session = output.session(&time);
                    for (id, event) in data.drain(..) {
                        match event {
                            Event::Audio(_) if failed.contains(&id) => {}
                            Event::Audio(chunk) => {
                                let state = streams.entry(id).or_insert_with(|| AudioState {
                                    onsets: OnsetStream::new(&params).expect("parameters validated by the driver"),
                                    frames: FlaggedFrames::default(),
                                    start_s: None,
                                    frame_s,
                                });
                                state.start_s.get_or_insert(chunk.pts.as_secs_f64());
                                match state.onsets.push(&chunk.samples) {
                                    Ok(out) => session
                                        .give_iterator(state.rows(out).into_iter().map(|row| (id, Record::Audio(row)))),
                                    Err(e) => {
                                        streams.remove(&id);
                                        failed.insert(id);
                                        let failure = Failure { kind: "bad_audio".into(), message: e.to_string() };
                                        session.give((id, Record::Failed(failure)));
                                    }
                                }
                            }
                            Event::Closed(_) => {
                                failed.remove(&id);
                                if let Some(mut state) = streams.remove(&id) {
                                    let out = state.onsets.finish();
                                    session
                                        .give_iterator(state.rows(out).into_iter().map(|row| (id, Record::Audio(row))));
                                }
                            }
                            Event::Opened(_) | Event::SenderClock(_) | Event::Video(_) => {}
                        }
                    }
                });
            }
        })
        .container::<Vec<_>>()
    }
}
