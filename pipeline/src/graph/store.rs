//! The store sink: rows into the Parquet feature store, each input committed
//! once the frontier shows all its rows have arrived.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use mudar_schemas::tables::{self, AUDIO_FRAMES, CLIPS, Layout, MEDIA, VIDEO_FRAMES};
use mudar_schemas::{AudioFrameRow, ClipRow, MediaRow, VideoFrameRow};
use mudar_sinks::store::{StoreError, StoreWriter};
use serde::{Deserialize, Serialize};
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::operator::Operator;

use super::views::Fact;
use super::{Failure, ModelOutput, Opened, Record, StreamId, stream_of};

/// Rows buffered per table before they go to the store as one record batch.
const BATCH_ROWS: usize = 4096;

/// Why the sink stopped writing.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build a record batch: {0}")]
    Batch(#[from] arrow_schema::ArrowError),
}

/// Which tables a run writes (`media` always).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tables {
    pub audio_frames: bool,
    pub video_frames: bool,
    pub clips: bool,
}

impl Default for Tables {
    fn default() -> Self {
        Tables { audio_frames: true, video_frames: true, clips: true }
    }
}

/// An input the store committed, as the run's summary reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputReport {
    pub input: String,
    pub failure: Option<Failure>,
    pub audio_frames: u64,
    pub video_frames: u64,
    pub clips: u64,
    /// What the `videos` view needs of it (none for a failed input).
    pub facts: Vec<Fact>,
}

#[derive(Default)]
struct Pending {
    opened: Option<Opened>,
    audio: Vec<AudioFrameRow>,
    video: Vec<VideoFrameRow>,
    clips: Vec<ClipRow>,
    model: Vec<ModelOutput>,
    media: MediaRow,
    failures: Vec<Failure>,
    clip_facts: Vec<Fact>,
    closed: Option<(Capability<u64>, Option<Failure>)>,
}

pub trait WriteStore<'scope> {
    /// Writes every stream's rows into `store` and commits the stream once
    /// the frontier has passed its `Closed` record; reports committed inputs.
    /// A store error stops writing and is left in `error` for the driver.
    /// With model columns in `layout`, a stream's `video_frames` and `clips`
    /// rows wait for its end, to be written with the model's outputs.
    fn write_store(
        self,
        store: Rc<RefCell<StoreWriter>>,
        tables: Tables,
        layout: Layout,
        error: Rc<RefCell<Option<SinkError>>>,
    ) -> Stream<'scope, u64, Vec<InputReport>>;
}

impl<'scope> WriteStore<'scope> for Stream<'scope, u64, Vec<(StreamId, Record)>> {
    fn write_store(
        self,
        store: Rc<RefCell<StoreWriter>>,
        tables: Tables,
        layout: Layout,
        error: Rc<RefCell<Option<SinkError>>>,
    ) -> Stream<'scope, u64, Vec<InputReport>> {
        let mut streams: HashMap<StreamId, Pending> = HashMap::new();
        self.unary_frontier(Exchange::new(stream_of), "WriteStore", move |_, _| {
            move |(input, frontier), output| {
                input.for_each(|time, data| {
                    for (id, record) in data.drain(..) {
                        let pending = streams.entry(id).or_default();
                        match record {
                            Record::Opened(opened) => pending.opened = Some(opened),
                            Record::Audio(row) => {
                                pending.media.onsets += row.onset as u64;
                                pending.audio.push(row);
                            }
                            Record::Video(row) => {
                                pending.media.visual_beats += row.visual_beat as u64;
                                pending.video.push(row);
                            }
                            Record::Clip(row) => {
                                pending.clip_facts.push(Fact::clip(&row));
                                pending.clips.push(row);
                            }
                            Record::Model(output) => pending.model.push(output),
                            Record::Failed(failure) => pending.failures.push(failure),
                            Record::Closed(failure) => {
                                pending.closed = Some((time.retain_least(0).expect("output 0"), failure));
                            }
                        }
                    }
                });
                if error.borrow().is_some() {
                    // Writing stopped: let go of every capability so the run can wind down.
                    streams.clear();
                    return;
                }
                let mut store = store.borrow_mut();
                let result = (|| -> Result<(), SinkError> {
                    let mut done = Vec::new();
                    for (&id, pending) in streams.iter_mut() {
                        let complete = pending.closed.as_ref().is_some_and(|(cap, _)| !frontier.less_equal(cap.time()));
                        write_rows(&mut store, pending, tables, layout, complete)?;
                        if complete {
                            done.push(id);
                        }
                    }
                    for id in done {
                        let mut pending = streams.remove(&id).expect("listed above");
                        let (cap, closed) = pending.closed.take().expect("complete streams are closed");
                        let report = commit(&mut store, pending, closed)?;
                        output.session(&cap).give(report);
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    *error.borrow_mut() = Some(e);
                }
            }
        })
        .container::<Vec<_>>()
    }
}

/// Hands buffered rows to the store: full batches, or everything once the stream is complete.
fn write_rows(
    store: &mut StoreWriter,
    pending: &mut Pending,
    tables: Tables,
    layout: Layout,
    complete: bool,
) -> Result<(), SinkError> {
    let Some(input) = pending.opened.as_ref().map(|o| o.input.clone()) else { return Ok(()) };
    let due = |n: usize| n > 0 && (complete || n >= BATCH_ROWS);
    let with_model = layout.embedding_dim.is_some();
    if with_model && complete {
        annotate(pending);
    }
    let due_annotated = |n: usize| if with_model { complete && n > 0 } else { due(n) };
    if due(pending.audio.len()) {
        pending.media.audio_frames += pending.audio.len() as u64;
        let rows = std::mem::take(&mut pending.audio);
        if tables.audio_frames {
            store.write(AUDIO_FRAMES, &input, &tables::audio_frames_batch(&input, &rows)?)?;
        }
    }
    if due_annotated(pending.video.len()) {
        pending.media.video_frames += pending.video.len() as u64;
        let rows = std::mem::take(&mut pending.video);
        if tables.video_frames {
            store.write(VIDEO_FRAMES, &input, &tables::video_frames_batch(&input, layout, &rows)?)?;
        }
    }
    if due_annotated(pending.clips.len()) {
        pending.media.clips += pending.clips.len() as u64;
        let rows = std::mem::take(&mut pending.clips);
        if tables.clips {
            store.write(CLIPS, &input, &tables::clips_batch(&input, layout, &rows)?)?;
        }
    }
    Ok(())
}

/// Puts the model's outputs into the stream's rows: each clip's embeddings
/// into its `clips` row, each frame's probability and decision into its
/// `video_frames` row (matched by time; where clips overlap, the later one's).
fn annotate(pending: &mut Pending) {
    let key = |time_s: f64| (time_s * 1e6).round() as i64;
    let mut frames = HashMap::new();
    for output in &pending.model {
        for (i, &time_s) in output.frame_times.iter().enumerate() {
            frames.insert(key(time_s), (output.rhythm_probability[i], output.rhythm[i]));
        }
    }
    for row in &mut pending.video {
        if let Some(&(probability, rhythm)) = frames.get(&key(row.time_s)) {
            row.rhythm_probability = Some(probability);
            row.rhythm = Some(rhythm);
        }
    }
    for row in &mut pending.clips {
        let output = pending.model.iter().find(|o| o.clip == row.clip && (o.start_s - row.start_s).abs() < 1e-6);
        if let Some(output) = output {
            row.visual_embedding = Some(output.visual_embedding.clone());
            row.audio_embedding = Some(output.audio_embedding.clone());
        }
    }
}

/// Writes the input's `media` row and commits it.
fn commit(store: &mut StoreWriter, pending: Pending, closed: Option<Failure>) -> Result<InputReport, SinkError> {
    let opened = pending.opened.expect("the driver opens before it closes");
    // The source's own error first; else the first stage that failed.
    let failure = closed.or_else(|| pending.failures.into_iter().next());
    let media = MediaRow {
        status: if failure.is_some() { "error" } else { "ok" }.to_owned(),
        error_kind: failure.as_ref().map(|f| f.kind.clone()),
        error: failure.as_ref().map(|f| f.message.clone()),
        duration_s: opened.duration_s,
        has_audio: opened.has_audio,
        has_video: opened.has_video,
        ..pending.media
    };
    store.write(MEDIA, &opened.input, &tables::media_batch(&opened.input, std::slice::from_ref(&media))?)?;
    store.finish_input(&opened.input)?;
    let facts = match failure {
        Some(_) => Vec::new(),
        None => std::iter::once(Fact::media(&media)).chain(pending.clip_facts).collect(),
    };
    Ok(InputReport {
        input: opened.input,
        failure,
        audio_frames: media.audio_frames,
        video_frames: media.video_frames,
        clips: media.clips,
        facts,
    })
}
