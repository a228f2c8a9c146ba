//! The worker's sources: a few inputs open at a time, their packets fed into
//! the graph epoch by epoch. GStreamer's threads never touch timely: each
//! source hands packets over a bounded channel (`MediaSource`), which this
//! loop drains. A file is read as fast as the graph takes it; a live feed
//! gives what it has and is never waited on, so one quiet feed holds up
//! neither the others nor the graph.

use std::collections::VecDeque;
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::{InputHandle, ProbeHandle};

use super::{Event, Failure, Live, Opened, StreamId};
use crate::error::MediaError;
use crate::source::{MediaSource, Packet, Poll, SourceConfig};

/// How long the loop sleeps when its only open inputs are live feeds with nothing new.
const IDLE_WAIT: Duration = Duration::from_millis(5);

/// How the sources feed the graph.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    pub source: SourceConfig,
    /// Inputs this worker decodes at once (what flow batches can gather across).
    pub max_open: usize,
    /// Packets taken from each open input per epoch.
    pub packets_per_epoch: usize,
}

/// What happened to an input, for progress reports.
#[derive(Clone, Debug)]
pub enum Progress<'a> {
    Opened { id: StreamId, input: &'a str, duration_s: Option<f64> },
    Position { id: StreamId, seconds: f64 },
    Closed { id: StreamId, input: &'a str, failure: Option<&'a Failure> },
}

#[derive(Debug)]
struct Open {
    id: StreamId,
    input: String,
    source: MediaSource,
    live: bool,
}

/// One worker's inputs and the sources open among them.
#[derive(Debug)]
pub struct Driver {
    pending: VecDeque<(StreamId, String)>,
    open: Vec<Open>,
    config: DriverConfig,
    /// Inputs a stop left unfinished (files, whose rows are not committed).
    interrupted: Vec<String>,
}

pub type EventInput = InputHandle<u64, CapacityContainerBuilder<Vec<(StreamId, Event)>>>;

impl Driver {
    pub fn new(inputs: Vec<(StreamId, String)>, config: DriverConfig) -> Driver {
        Driver { pending: inputs.into(), open: Vec::new(), config, interrupted: Vec::new() }
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
    /// SIGTERM), live feeds end cleanly, so their last windows commit, and
    /// files are left unfinished (see [`Self::interrupted`]).
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

    /// Opens `input` and announces it to the graph, or closes it at once with its error.
    fn open_input(
        &mut self,
        id: StreamId,
        input: String,
        events: &mut EventInput,
        progress: &mut dyn FnMut(Progress<'_>),
    ) {
        // A feed is live from the start, whatever GStreamer makes of it (HLS prerolls).
        let feed = self.is_feed(&input);
        let config =
            SourceConfig { live: self.config.source.live.or(feed.then_some(true)), ..self.config.source.clone() };
        match MediaSource::open(&input, &config) {
            Ok(source) => {
                let live = feed || source.is_live();
                let opened = Opened {
                    input: input.clone(),
                    duration_s: source.duration().map(|d| d.as_secs_f64()).filter(|_| !live),
                    has_audio: source.has_audio() && self.config.source.audio.is_some(),
                    has_video: source.has_video() && self.config.source.video.is_some(),
                    live: live.then(|| Live { connection: 0, capture_offset_us: source.capture_offset_us() }),
                };
                progress(Progress::Opened { id, input: &input, duration_s: opened.duration_s });
                events.send((id, Event::Opened(opened)));
                self.open.push(Open { id, input, source, live });
            }
            Err(error) => {
                let opened = Opened {
                    input: input.clone(),
                    duration_s: None,
                    has_audio: false,
                    has_video: false,
                    live: feed.then_some(Live { connection: 0, capture_offset_us: None }),
                };
                progress(Progress::Opened { id, input: &input, duration_s: None });
                events.send((id, Event::Opened(opened)));
                close(events, id, &input, Some(error), progress);
            }
        }
    }

    /// Ends the run early: live feeds close cleanly; files and inputs not yet opened are left.
    fn stop(&mut self, events: &mut EventInput, progress: &mut dyn FnMut(Progress<'_>)) {
        for open in std::mem::take(&mut self.open) {
            match open.live {
                true => close(events, open.id, &open.input, None, progress),
                false => self.interrupted.push(open.input),
            }
        }
        self.interrupted.extend(self.pending.drain(..).map(|(_, input)| input));
    }

    /// Feeds one epoch: opens inputs up to `max_open`, then takes up to
    /// `packets_per_epoch` packets from each (from a live feed, those it
    /// has). Returns whether inputs remain, and how many packets it fed.
    pub fn feed(&mut self, events: &mut EventInput, progress: &mut dyn FnMut(Progress<'_>)) -> (bool, usize) {
        // Feeds never end, so they do not wait for a place: every one opens at once.
        let mut i = 0;
        while i < self.pending.len() {
            let files_open = self.open.iter().filter(|o| !o.live).count();
            if self.is_feed(&self.pending[i].1) || files_open < self.config.max_open.max(1) {
                let (id, input) = self.pending.remove(i).expect("in range");
                self.open_input(id, input, events, progress);
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
                        progress(Progress::Position { id: open.id, seconds: packet.pts().as_secs_f64() });
                        let event = match packet {
                            Packet::Audio(chunk) => Event::Audio(chunk),
                            Packet::Video(frame) => Event::Video(frame),
                        };
                        events.send((open.id, event));
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
        (!(self.open.is_empty() && self.pending.is_empty()), sent)
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
