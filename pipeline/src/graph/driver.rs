//! The worker's sources: a few files open at a time and every live feed, their
//! packets fed into the graph epoch by epoch. GStreamer's threads never touch
//! timely: each source hands packets over a bounded channel (`MediaSource`),
//! which this loop drains. A file is read as fast as the graph takes it; a
//! feed ([`crate::live::Feed`]) gives what it has, connects and reconnects in
//! the background, and is never waited on, so one quiet feed holds up neither
//! the others nor the graph.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mudar_schemas::FeedEventRow;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::{InputHandle, ProbeHandle};

use super::{Event, Failure, Live, Opened, StreamId};
use crate::error::MediaError;
use crate::live::metrics::Metrics;
use crate::live::{Feed, FeedOutput, RetryPolicy};
use crate::source::{MediaSource, Packet, Poll, SourceConfig};

/// How long the loop sleeps when its only inputs are live feeds with nothing new.
const IDLE_WAIT: Duration = Duration::from_millis(5);

/// Audio chunks a feed holds for the graph (about 20 s of audio, under 2 MB): a feed's frames
/// are dropped when the graph is behind, its audio is not, so it must wait out the frames'
/// work. Each epoch takes all of it.
const FEED_AUDIO_CHUNKS: usize = 1024;

/// How the sources feed the graph.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    pub source: SourceConfig,
    /// Files this worker decodes at once (what flow batches can gather across); feeds do not
    /// count: every feed is open all along.
    pub max_open: usize,
    /// Packets taken from each open input per epoch.
    pub packets_per_epoch: usize,
    /// How feeds reconnect.
    pub retry: RetryPolicy,
    /// Where feeds' figures go (`--metrics`).
    pub metrics: Option<Arc<Metrics>>,
}

/// What happened to an input, for progress reports.
#[derive(Clone, Debug)]
pub enum Progress<'a> {
    /// `live`: a live connection (a feed's, or a source GStreamer finds live).
    Opened {
        id: StreamId,
        input: &'a str,
        duration_s: Option<f64>,
        live: bool,
    },
    /// How far an input has got: media time, and a live packet's capture time (µs, UTC).
    Position {
        id: StreamId,
        seconds: f64,
        capture_us: Option<i64>,
    },
    Closed {
        id: StreamId,
        input: &'a str,
        failure: Option<&'a Failure>,
    },
    /// A feed's connection came, went, or is tried again (a `feed_events` row).
    Feed {
        input: &'a str,
        event: &'a FeedEventRow,
    },
}

#[derive(Debug)]
struct Open {
    id: StreamId,
    input: String,
    source: MediaSource,
    /// GStreamer found it live though it is no feed: never waited on, not reconnected.
    live: bool,
}

#[derive(Debug)]
struct FeedSlot {
    feed: Feed,
    /// Its current connection's stream, and when that last delivered.
    stream: Option<StreamId>,
    last_packet: Option<Instant>,
    /// Frames the current connection had dropped at the last look (for the metrics' deltas).
    dropped: u64,
}

/// One worker's inputs and the sources open among them.
#[derive(Debug)]
pub struct Driver {
    pending: VecDeque<(StreamId, String)>,
    open: Vec<Open>,
    feeds: Vec<FeedSlot>,
    config: DriverConfig,
    /// Inputs a stop left unfinished (files, whose rows are not committed).
    interrupted: Vec<String>,
}

pub type EventInput = InputHandle<u64, CapacityContainerBuilder<Vec<(StreamId, Event)>>>;

impl Driver {
    pub fn new(inputs: Vec<(StreamId, String)>, config: DriverConfig) -> Driver {
        Driver { pending: inputs.into(), open: Vec::new(), feeds: Vec::new(), config, interrupted: Vec::new() }
    }

    /// Inputs a stop left unfinished: files, and inputs not opened yet. Their rows are not
    /// committed; a later run extracts them.
    pub fn interrupted(&self) -> &[String] {
        &self.interrupted
    }

    /// Feeds every input to its end, an epoch at a time, then closes `events`
    /// and steps `worker` until `probe` says the graph is done (the other
    /// workers wait for this one's frontier). timely has no flow control: the
    /// sources are held back while the graph lags more than `max_lag` epochs.
    /// `go_on` is asked after every epoch and while waiting; once it says no,
    /// nothing more is fed (a sink's error, say). Once `stop` says yes (Ctrl-C,
    /// SIGTERM), feeds end cleanly, so their last windows commit, and files are
    /// left unfinished (see [`Self::interrupted`]).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        worker: &mut timely::worker::Worker,
        mut events: EventInput,
        probe: &ProbeHandle<u64>,
        max_lag: u64,
        progress: &mut dyn FnMut(Progress<'_>),
        go_on: &dyn Fn() -> bool,
        stop: &dyn Fn() -> bool,
    ) {
        let mut epoch = 0u64;
        let mut feeding = true;
        while feeding && go_on() {
            if stop() {
                self.stop(&mut events, progress);
                feeding = false;
            } else {
                let sent;
                (feeding, sent) = self.feed(&mut events, progress);
                if sent == 0 && feeding && self.open.iter().all(|o| o.live) {
                    std::thread::sleep(IDLE_WAIT);
                }
            }
            epoch += 1;
            events.advance_to(epoch);
            worker.step_while(|| probe.less_than(&epoch.saturating_sub(max_lag)) && go_on());
            worker.step();
        }
        drop(events);
        worker.step_while(|| !probe.done());
    }

    /// Whether `input` is taken as a feed (see [`crate::input::is_feed`]; `--live` makes every
    /// input one).
    fn is_feed(&self, input: &str) -> bool {
        self.config.source.live == Some(true) || crate::input::is_feed(input)
    }

    /// Ends the run early: feeds close cleanly; files and inputs not yet opened are left.
    fn stop(&mut self, events: &mut EventInput, progress: &mut dyn FnMut(Progress<'_>)) {
        for open in std::mem::take(&mut self.open) {
            match open.live {
                true => close(events, open.id, &open.input, None, progress),
                false => self.interrupted.push(open.input),
            }
        }
        for mut slot in std::mem::take(&mut self.feeds) {
            let input = slot.feed.input().to_owned();
            slot.feed.stop(&mut |output| feed_output(events, &input, output, progress));
            if let Some(metrics) = &self.config.metrics {
                metrics.feed_up(&input, false);
            }
        }
        self.interrupted.extend(self.pending.drain(..).map(|(_, input)| input));
    }

    /// Feeds one epoch: opens files up to `max_open` and every feed, then takes up to
    /// `packets_per_epoch` packets from each (from a feed, those it has). Returns whether
    /// inputs remain, and how many packets it fed.
    pub fn feed(&mut self, events: &mut EventInput, progress: &mut dyn FnMut(Progress<'_>)) -> (bool, usize) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.is_feed(&self.pending[i].1) {
                let (id, input) = self.pending.remove(i).expect("in range");
                let config = SourceConfig {
                    live: Some(true),
                    capacity: self.config.source.capacity.max(FEED_AUDIO_CHUNKS),
                    ..self.config.source.clone()
                };
                // A camera or server that ends its stream has gone away; a playlist or a file
                // taken as live has ended.
                let reconnect_on_eos = crate::input::is_feed(&input) && !crate::input::is_playlist(&input);
                let feed = Feed::new(id, input, config, self.config.retry, reconnect_on_eos);
                self.feeds.push(FeedSlot { feed, stream: None, last_packet: None, dropped: 0 });
            } else if self.open.iter().filter(|o| !o.live).count() < self.config.max_open.max(1) {
                let (id, input) = self.pending.remove(i).expect("in range");
                self.open_file(id, input, events, progress);
            } else {
                i += 1;
            }
        }
        let per_epoch = self.config.packets_per_epoch.max(1);
        let mut sent = 0;
        self.open.retain_mut(|open| {
            for _ in 0..per_epoch {
                let next = match open.live {
                    true => match open.source.poll(Duration::ZERO) {
                        Poll::Ready(next) => next,
                        Poll::Pending => break,
                    },
                    false => open.source.next(),
                };
                match next {
                    Some(Ok(packet)) => {
                        sent += 1;
                        let (seconds, capture_us) = (packet.pts().as_secs_f64(), packet.capture_us());
                        progress(Progress::Position { id: open.id, seconds, capture_us });
                        events.send((open.id, packet_event(packet)));
                    }
                    Some(Err(error)) => {
                        close(events, open.id, &open.input, Some(error), progress);
                        return false;
                    }
                    None => {
                        close(events, open.id, &open.input, None, progress);
                        return false;
                    }
                }
            }
            true
        });
        let metrics = self.config.metrics.clone();
        let config_frames = self.config.source.live_frames;
        self.feeds.retain_mut(|slot| {
            let input = slot.feed.input().to_owned();
            let mut frames = 0;
            let mut stream = slot.stream;
            // All a feed has: its frames are few (the newest, the rest dropped), its audio cheap.
            let fed = slot.feed.step(FEED_AUDIO_CHUNKS + config_frames, &mut |output| {
                match &output {
                    FeedOutput::Connected { stream: id, .. } => stream = Some(*id),
                    FeedOutput::Closed { .. } => stream = None,
                    FeedOutput::Packet { packet: Packet::Video(_), .. } => frames += 1,
                    FeedOutput::Packet { .. } | FeedOutput::SenderClock { .. } | FeedOutput::Event(_) => {}
                }
                if let (Some(metrics), FeedOutput::Event(event)) = (&metrics, &output) {
                    metrics.feed_event(&input, event);
                }
                feed_output(events, &input, output, progress)
            });
            if fed > 0 {
                slot.last_packet = Some(Instant::now());
            }
            if stream != slot.stream {
                slot.dropped = 0;
            }
            slot.stream = stream;
            if let Some(metrics) = &metrics {
                let dropped = slot.feed.dropped_frames();
                metrics.feed_frames(&input, frames, dropped.saturating_sub(slot.dropped));
                slot.dropped = dropped;
                metrics.feed_up(&input, slot.feed.is_up());
                metrics.last_frame_age(&input, slot.last_packet.map(|t| t.elapsed()));
            }
            sent += fed;
            !slot.feed.ended()
        });
        (!(self.open.is_empty() && self.feeds.is_empty() && self.pending.is_empty()), sent)
    }

    /// Opens a file and announces it to the graph, or closes it at once with its error.
    fn open_file(
        &mut self,
        id: StreamId,
        input: String,
        events: &mut EventInput,
        progress: &mut dyn FnMut(Progress<'_>),
    ) {
        match MediaSource::open(&input, &self.config.source) {
            Ok(source) => {
                let live = source.is_live();
                let opened = Opened {
                    input: input.clone(),
                    duration_s: source.duration().map(|d| d.as_secs_f64()).filter(|_| !live),
                    has_audio: source.has_audio() && self.config.source.audio.is_some(),
                    has_video: source.has_video() && self.config.source.video.is_some(),
                    live: live.then(|| Live {
                        connection: 0,
                        capture_offset_us: source.capture_offset_us(),
                        start_s: source.first_pts().map_or(0.0, |t| t.as_secs_f64()),
                    }),
                };
                progress(Progress::Opened { id, input: &input, duration_s: opened.duration_s, live });
                events.send((id, Event::Opened(opened)));
                self.open.push(Open { id, input, source, live });
            }
            Err(error) => {
                let opened =
                    Opened { input: input.clone(), duration_s: None, has_audio: false, has_video: false, live: None };
                progress(Progress::Opened { id, input: &input, duration_s: None, live: false });
                events.send((id, Event::Opened(opened)));
                close(events, id, &input, Some(error), progress);
            }
        }
    }
}

fn packet_event(packet: Packet) -> Event {
    match packet {
        Packet::Audio(chunk) => Event::Audio(chunk),
        Packet::Video(frame) => Event::Video(frame),
    }
}

/// Puts what a feed says into the graph (and the progress report).
fn feed_output(events: &mut EventInput, input: &str, output: FeedOutput, progress: &mut dyn FnMut(Progress<'_>)) {
    match output {
        FeedOutput::Connected { stream, opened } => {
            progress(Progress::Opened { id: stream, input, duration_s: None, live: true });
            events.send((stream, Event::Opened(opened)));
        }
        FeedOutput::Packet { stream, packet } => {
            let (seconds, capture_us) = (packet.pts().as_secs_f64(), packet.capture_us());
            progress(Progress::Position { id: stream, seconds, capture_us });
            events.send((stream, packet_event(packet)));
        }
        FeedOutput::SenderClock { stream, offset_us } => events.send((stream, Event::SenderClock(offset_us))),
        FeedOutput::Closed { stream, error } => close(events, stream, input, error, progress),
        FeedOutput::Event(event) => progress(Progress::Feed { input, event: &event }),
    }
}

fn close(
    events: &mut EventInput,
    id: StreamId,
    input: &str,
    error: Option<MediaError>,
    progress: &mut dyn FnMut(Progress<'_>),
) {
    let failure = error.map(|e| Failure { kind: e.kind.code().to_owned(), message: e.to_string() });
    progress(Progress::Closed { id, input, failure: failure.as_ref() });
    events.send((id, Event::Closed(failure)));
}
