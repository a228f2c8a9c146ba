//! The worker's sources: a few inputs open at a time, their packets fed into
//! the graph epoch by epoch. GStreamer's threads never touch timely: each
//! source hands packets over a bounded channel (`MediaSource`), which this
//! loop drains.

use std::collections::VecDeque;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::{InputHandle, ProbeHandle};

use super::{Event, Failure, Opened, StreamId};
use crate::error::MediaError;
use crate::source::{MediaSource, Packet, SourceConfig};

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
}

/// One worker's inputs and the sources open among them.
#[derive(Debug)]
pub struct Driver {
    pending: VecDeque<(StreamId, String)>,
    open: Vec<Open>,
    config: DriverConfig,
}

pub type EventInput = InputHandle<u64, CapacityContainerBuilder<Vec<(StreamId, Event)>>>;

impl Driver {
    pub fn new(inputs: Vec<(StreamId, String)>, config: DriverConfig) -> Driver {
        Driver { pending: inputs.into(), open: Vec::new(), config }
    }

    /// Feeds every input to its end, an epoch at a time, then closes `events`
    /// and steps `worker` until `probe` says the graph is done (the other
    /// workers wait for this one's frontier). timely has no flow control: the
    /// sources are held back while the graph lags more than `max_lag` epochs.
    /// `go_on` is asked after every epoch and while waiting; once it says no,
    /// nothing more is fed (a sink's error, say).
    pub fn run(
        &mut self,
        worker: &mut timely::worker::Worker,
        mut events: EventInput,
        probe: &ProbeHandle<u64>,
        max_lag: u64,
        progress: &mut dyn FnMut(Progress<'_>),
        go_on: &dyn Fn() -> bool,
    ) {
        let mut epoch = 0u64;
        let mut feeding = true;
        while feeding && go_on() {
            feeding = self.feed(&mut events, progress);
            epoch += 1;
            events.advance_to(epoch);
            worker.step_while(|| probe.less_than(&epoch.saturating_sub(max_lag)) && go_on());
            worker.step();
        }
        drop(events);
        worker.step_while(|| !probe.done());
    }

    /// Feeds one epoch: opens inputs up to `max_open`, then takes up to
    /// `packets_per_epoch` packets from each. Returns false once every input
    /// has been closed.
    pub fn feed(&mut self, events: &mut EventInput, progress: &mut dyn FnMut(Progress<'_>)) -> bool {
        while self.open.len() < self.config.max_open.max(1) {
            let Some((id, input)) = self.pending.pop_front() else { break };
            match MediaSource::open(&input, &self.config.source) {
                Ok(source) => {
                    let opened = Opened {
                        input: input.clone(),
                        duration_s: source.duration().map(|d| d.as_secs_f64()),
                        has_audio: source.has_audio() && self.config.source.audio.is_some(),
                        has_video: source.has_video() && self.config.source.video.is_some(),
                    };
                    progress(Progress::Opened { id, input: &input, duration_s: opened.duration_s });
                    events.send((id, Event::Opened(opened)));
                    self.open.push(Open { id, input, source });
                }
                Err(error) => {
                    let opened = Opened { input: input.clone(), duration_s: None, has_audio: false, has_video: false };
                    progress(Progress::Opened { id, input: &input, duration_s: None });
                    events.send((id, Event::Opened(opened)));
                    close(events, id, &input, Some(error), progress);
                }
            }
        }
        let per_epoch = self.config.packets_per_epoch.max(1);
        self.open.retain_mut(|open| {
            for _ in 0..per_epoch {
                match open.source.next() {
                    Some(Ok(packet)) => {
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
        !(self.open.is_empty() && self.pending.is_empty())
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
