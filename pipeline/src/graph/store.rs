//! The store sink: rows into the Parquet feature store, each input committed
//! once the frontier shows all its rows have arrived — or, for a live input,
//! window by window: every commit interval (or sooner, when the open files
//! reach their target size) the rows it has so far are committed, and its
//! last window when it ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mudar_schemas::tables::{self, AUDIO_FRAMES, CLIPS, Capture, Layout, MEDIA, VIDEO_FRAMES};
use mudar_schemas::{AudioFrameRow, ClipRow, MediaRow, VideoFrameRow};
use mudar_sinks::store::{StoreError, StoreWriter, Window};
use serde::{Deserialize, Serialize};
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::operator::Operator;

use super::views::Fact;
use super::{Failure, ModelOutput, Opened, Record, StreamId, stream_of};
use crate::live::metrics::Metrics;

/// Model outputs a live stream keeps for clip rows not out yet (a clip whose row failed never
/// takes its output).
const LIVE_MODEL_OUTPUTS: usize = 16;

/// Video rows a live stream holds for the model's outputs at most (a few clips' worth).
const LIVE_HELD_FRAMES: usize = 1024;

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
    /// A live feed's connection (reported when it ends).
    pub live: bool,
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
    /// The first stage failure (the input is reported failed with it).
    failure: Option<Failure>,
    /// What the `videos` view needs of the clips: each clip of a file, a live connection's as
    /// one running sum (its clips never end).
    clip_facts: Vec<Fact>,
    closed: Option<(Capability<u64>, Option<Failure>)>,
    /// A live stream's next window, and the media times its rows written so far span.
    window: u64,
    window_span: Option<(f64, f64)>,
    /// The sender's clock minus this machine's, µs, when RTCP told it before the stream's
    /// first rows were written: then every `capture_time` of the connection is the sender's.
    sender_clock_us: Option<i64>,
}

impl Pending {
    fn capture(&self) -> Option<Capture> {
        let live = self.opened.as_ref()?.live?;
        let offset_us = live.capture_offset_us? + self.sender_clock_us.unwrap_or(0);
        Some(Capture { offset_us, connection: live.connection })
    }

    /// Takes the sender's clock for the connection's capture times, unless rows already went
    /// out on this machine's: one connection never mixes the two clocks.
    fn sender_clock(&mut self, offset_us: i64) {
        if self.window == 0 && self.window_span.is_none() {
            self.sender_clock_us = Some(offset_us);
        }
    }

    fn is_live(&self) -> bool {
        self.opened.as_ref().is_some_and(|o| o.live.is_some())
    }

    /// Notes that rows at these media times went into the open window.
    fn cover(&mut self, times: impl Iterator<Item = f64>) {
        for t in times {
            let (from, to) = self.window_span.get_or_insert((t, t));
            (*from, *to) = (from.min(t), to.max(t));
        }
    }

    /// Commits the live stream's open window (its rows are written).
    fn commit_window(&mut self, store: &mut StoreWriter, last: bool) -> Result<(), StoreError> {
        let Some(opened) = self.opened.as_ref() else { return Ok(()) };
        let capture = self.capture();
        let span = self.window_span.take();
        let window = Window {
            index: self.window,
            connection: opened.live.map_or(0, |l| l.connection),
            capture_from_us: capture.zip(span).map(|(c, (from, _))| c.at(from)),
            capture_to_us: capture.zip(span).map(|(c, (_, to))| c.at(to)),
            last,
            through: None,
        };
        self.window += 1;
        store.commit_window(&opened.input, window)
    }
}

/// How much of a stream's buffered rows to hand to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flush {
    /// Full batches only.
    Batches,
    /// Every row ready for a live stream's window (with a model, rows whose outputs are in).
    Window,
    /// Everything: the stream is complete.
    All,
}

pub trait WriteStore<'scope> {
    /// Writes every stream's rows into `store` and commits the stream once
    /// the frontier has passed its `Closed` record; reports committed inputs.
    /// A store error stops writing and is left in `error` for the driver.
    /// With model columns in `layout`, a stream's `video_frames` and `clips`
    /// rows wait for its end, to be written with the model's outputs.
    /// Live streams are committed every `commit_interval`.
    fn write_store(
        self,
        store: Rc<RefCell<StoreWriter>>,
        tables: Tables,
        layout: Layout,
        error: Rc<RefCell<Option<SinkError>>>,
        commit_interval: Duration,
        metrics: Option<Arc<Metrics>>,
    ) -> Stream<'scope, u64, Vec<InputReport>>;
}

impl<'scope> WriteStore<'scope> for Stream<'scope, u64, Vec<(StreamId, Record)>> {
    fn write_store(
        self,
        store: Rc<RefCell<StoreWriter>>,
        tables: Tables,
        layout: Layout,
        error: Rc<RefCell<Option<SinkError>>>,
        commit_interval: Duration,
        metrics: Option<Arc<Metrics>>,
    ) -> Stream<'scope, u64, Vec<InputReport>> {
        let mut streams: HashMap<StreamId, Pending> = HashMap::new();
        let mut last_window = Instant::now();
        self.unary_frontier(Exchange::new(stream_of), "WriteStore", move |_, _| {
            move |(input, frontier), output| {
                input.for_each(|time, data| {
                    for (id, record) in data.drain(..) {
                        let pending = streams.entry(id).or_default();
                        match record {
                            Record::Opened(opened) => {
                                if opened.live.is_some() {
                                    store.borrow_mut().set_windowed(&opened.input);
                                }
                                pending.opened = Some(opened);
                            }
                            Record::SenderClock(offset_us) => pending.sender_clock(offset_us),
                            Record::Audio(row) => {
                                pending.media.onsets += row.onset as u64;
                                pending.audio.push(row);
                            }
                            Record::Video(row) => {
                                pending.media.visual_beats += row.visual_beat as u64;
                                pending.video.push(row);
                            }
                            Record::Clip(row) => {
                                let fact = Fact::clip(&row);
                                match pending.is_live() {
                                    true => Fact::add_clip(&mut pending.clip_facts, fact),
                                    false => pending.clip_facts.push(fact),
                                }
                                pending.clips.push(row);
                            }
                            Record::Model(output) => pending.model.push(output),
                            Record::Failed(failure) => {
                                pending.failure.get_or_insert(failure);
                            }
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
                    let window_due = last_window.elapsed() >= commit_interval || store.windows_due();
                    for (&id, pending) in streams.iter_mut() {
                        let complete = pending.closed.as_ref().is_some_and(|(cap, _)| !frontier.less_equal(cap.time()));
                        let flush = match (complete, pending.is_live() && window_due) {
                            (true, _) => Flush::All,
                            (false, true) => Flush::Window,
                            (false, false) => Flush::Batches,
                        };
                        let files = store.files_committed();
                        write_rows(&mut store, pending, tables, layout, flush, metrics.as_deref())?;
                        if flush == Flush::Window {
                            pending.commit_window(&mut store, false)?;
                        }
                        if let Some(metrics) =
                            metrics.as_deref().filter(|_| pending.is_live() && flush != Flush::Batches)
                        {
                            metrics.committed_window(store.files_committed() - files);
                        }
                        // Committed right after its last rows are written: a feed's next
                        // connection, writing under the same input, never takes them in.
                        if complete {
                            let (cap, closed) = pending.closed.take().expect("complete streams are closed");
                            let report = commit(&mut store, std::mem::take(pending), closed)?;
                            output.session(&cap).give(report);
                            done.push(id);
                        }
                    }
                    if window_due {
                        last_window = Instant::now();
                    }
                    for id in done {
                        streams.remove(&id);
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

/// Hands buffered rows to the store, as much as `flush` says. A live stream's rows wait for
/// its window, so what the store holds uncommitted of a feed is always one window's rows,
/// written and committed in one go.
fn write_rows(
    store: &mut StoreWriter,
    pending: &mut Pending,
    tables: Tables,
    layout: Layout,
    flush: Flush,
    metrics: Option<&Metrics>,
) -> Result<(), SinkError> {
    let Some(input) = pending.opened.as_ref().map(|o| o.input.clone()) else { return Ok(()) };
    if flush == Flush::Batches && pending.is_live() {
        return Ok(());
    }
    let count = |table: &str, rows: usize| {
        if let Some(metrics) = metrics {
            metrics.committed_rows(table, rows as u64);
        }
    };
    let capture = pending.capture();
    let sender_clock_us = pending.sender_clock_us.unwrap_or(0);
    let due = |n: usize| n > 0 && (flush != Flush::Batches || n >= BATCH_ROWS);
    let with_model = layout.embedding_dim.is_some();
    if with_model && flush != Flush::Batches {
        annotate(pending);
    }
    if due(pending.audio.len()) {
        pending.media.audio_frames += pending.audio.len() as u64;
        let rows = std::mem::take(&mut pending.audio);
        pending.cover(rows.iter().map(|r| r.time_s));
        if tables.audio_frames {
            store.write(AUDIO_FRAMES, &input, &tables::audio_frames_batch(&input, capture, &rows)?)?;
            count(AUDIO_FRAMES, rows.len());
        }
    }
    // With a model, frames and clips wait for its outputs: a whole stream's until it ends, a
    // live window's for those the model has seen.
    let (video, clips) = match (with_model, flush) {
        (false, _) if due(pending.video.len()) || due(pending.clips.len()) => {
            let video = if due(pending.video.len()) { std::mem::take(&mut pending.video) } else { Vec::new() };
            let clips = if due(pending.clips.len()) { std::mem::take(&mut pending.clips) } else { Vec::new() };
            (video, clips)
        }
        (true, Flush::All) => (std::mem::take(&mut pending.video), std::mem::take(&mut pending.clips)),
        (true, Flush::Window) => annotated_rows(pending),
        _ => (Vec::new(), Vec::new()),
    };
    if !video.is_empty() {
        pending.media.video_frames += video.len() as u64;
        pending.cover(video.iter().map(|r| r.time_s));
        if tables.video_frames {
            store.write(VIDEO_FRAMES, &input, &tables::video_frames_batch(&input, layout, capture, &video)?)?;
            count(VIDEO_FRAMES, video.len());
        }
        // A live frame's row is readable once its window commits, right after this.
        if let (Some(metrics), Some(capture)) = (metrics, capture) {
            let now_us = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as i64;
            for row in &video {
                // On this machine's clock, however far off the sender's is.
                metrics.latency((now_us - (capture.at(row.time_s) - sender_clock_us)) as f64 / 1e6);
            }
        }
    }
    if !clips.is_empty() {
        pending.media.clips += clips.len() as u64;
        pending.cover(clips.iter().map(|r| r.start_s));
        if tables.clips {
            store.write(CLIPS, &input, &tables::clips_batch(&input, layout, capture, &clips)?)?;
            count(CLIPS, clips.len());
        }
    }
    Ok(())
}

/// A live stream's annotated rows, taken out of `pending`: frames up to the last one the model
/// has seen, and clips that have their embeddings. The outputs of clips written are let go.
fn annotated_rows(pending: &mut Pending) -> (Vec<VideoFrameRow>, Vec<ClipRow>) {
    let seen_until =
        pending.model.iter().filter_map(|o| o.frame_times.last().copied()).fold(f64::NEG_INFINITY, f64::max);
    let (video, rest): (Vec<_>, Vec<_>) =
        std::mem::take(&mut pending.video).into_iter().partition(|r| r.time_s <= seen_until);
    pending.video = rest;
    let (mut clips, rest): (Vec<_>, Vec<_>) =
        std::mem::take(&mut pending.clips).into_iter().partition(|c| c.visual_embedding.is_some());
    pending.clips = rest;
    // Rows whose clip the model never took (a clip short of frames the feed dropped) are not
    // held for ever: past a bound they go without the model's columns.
    let mut video = video;
    let excess = pending.video.len().saturating_sub(LIVE_HELD_FRAMES);
    video.extend(pending.video.drain(..excess));
    let excess = pending.clips.len().saturating_sub(LIVE_MODEL_OUTPUTS);
    clips.extend(pending.clips.drain(..excess));
    pending.model.retain(|o| !clips.iter().any(|c| c.clip == o.clip && (c.start_s - o.start_s).abs() < 1e-6));
    let excess = pending.model.len().saturating_sub(LIVE_MODEL_OUTPUTS);
    pending.model.drain(..excess);
    (video, clips)
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
    let (window, span, capture) = (pending.window, pending.window_span, pending.capture());
    let opened = pending.opened.expect("the driver opens before it closes");
    // The source's own error first; else the first stage that failed.
    let failure = closed.or(pending.failure);
    let media = MediaRow {
        status: if failure.is_some() { "error" } else { "ok" }.to_owned(),
        error_kind: failure.as_ref().map(|f| f.kind.clone()),
        error: failure.as_ref().map(|f| f.message.clone()),
        duration_s: opened.duration_s,
        has_audio: opened.has_audio,
        has_video: opened.has_video,
        ..pending.media
    };
    let start = capture.zip(opened.live.map(|l| l.start_s));
    store.write(MEDIA, &opened.input, &tables::media_batch(&opened.input, start, std::slice::from_ref(&media))?)?;
    if opened.live.is_some() {
        // A live input ends with its last window; it is never done for good (a later run appends).
        let mut last = Pending { opened: Some(opened.clone()), window, window_span: span, ..Pending::default() };
        last.commit_window(store, true)?;
    } else {
        store.finish_input(&opened.input)?;
    }
    let facts = match failure {
        Some(_) => Vec::new(),
        None => std::iter::once(Fact::media(&media)).chain(pending.clip_facts).collect(),
    };
    Ok(InputReport {
        live: opened.live.is_some(),
        input: opened.input,
        failure,
        audio_frames: media.audio_frames,
        video_frames: media.video_frames,
        clips: media.clips,
        facts,
    })
}
