//! Live feeds that supervise themselves: a [`Feed`] connects in the
//! background, hands over what its connection delivers without ever making
//! the caller wait, and when the connection fails, ends or goes quiet for
//! the stall timeout, tears it down and connects again after an exponential
//! backoff with jitter, until it gives up as its [`RetryPolicy`] says.
//!
//! Each connection is a stream of its own in the graph (its
//! [`connection_stream`] id): it opens, delivers and closes like a file, so
//! every stage's state starts afresh at a reconnect — no flow, onset
//! envelope or clip spans the gap. What happened is recorded as
//! [`FeedEventRow`]s (the `feed_events` table).

pub mod events;
pub mod metrics;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, TryRecvError};
use mudar_schemas::FeedEventRow;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{ErrorKind, MediaError};
use crate::graph::{Live, Opened, StreamId};
use crate::source::{MediaSource, Packet, Poll, SourceConfig};

/// When a feed tries again, and when it stops trying.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles after each further one…
    pub initial_backoff: Duration,
    /// …up to this. The wait actually taken is drawn between half of it and all of it (jitter,
    /// so feeds that fail together do not retry together).
    pub max_backoff: Duration,
    /// Give up after this many consecutive failed attempts (`None`: never).
    pub max_retries: Option<u32>,
    /// Give up once the feed has been down this long (`None`: never).
    pub give_up_after: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retries: None,
            give_up_after: None,
        }
    }
}

impl RetryPolicy {
    /// The longest wait after `failures` consecutive failures (1 for the first).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.initial_backoff.saturating_mul(1 << doublings).min(self.max_backoff)
    }
}

/// The graph stream of connection `connection` of input `index`: connection 0 is the input's
/// own id, later ones are apart from every input's.
pub fn connection_stream(index: u64, connection: u32) -> StreamId {
    index + ((connection as u64) << 32)
}

/// What a feed hands the graph.
#[derive(Debug)]
pub enum FeedOutput {
    /// A connection is up: its stream opens.
    Connected {
        stream: StreamId,
        opened: Opened,
    },
    Packet {
        stream: StreamId,
        packet: Packet,
    },
    /// The connection's stream ends, with the error that ended it, if any.
    Closed {
        stream: StreamId,
        error: Option<MediaError>,
    },
    /// The connection's sender clock, as RTCP told it: sender minus this machine, µs.
    SenderClock {
        stream: StreamId,
        offset_us: i64,
    },
    /// Something to record in `feed_events`.
    Event(FeedEventRow),
}

enum State {
    /// An attempt runs in the background.
    Connecting(Attempt),
    Up {
        /// Boxed: a source is large beside the other states.
        source: Box<MediaSource>,
        stream: StreamId,
    },
    /// Down, trying again at this instant.
    Waiting(Instant),
    Ended,
}

/// A connection attempt on a thread of its own.
struct Attempt {
    result: Receiver<Result<MediaSource, MediaError>>,
    cancel: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl Attempt {
    /// Abandons the attempt and waits for its thread (a live source notices within a tenth of
    /// a second), so no pipeline outlives the feed.
    fn abandon(self) {
        self.cancel.store(true, Ordering::Relaxed);
        drop(self.result);
        let _ = self.thread.join();
    }
}

/// One live input across its connections (see the module docs).
pub struct Feed {
    index: u64,
    input: String,
    config: SourceConfig,
    policy: RetryPolicy,
    reconnect_on_eos: bool,
    state: State,
    /// The current connection's number, or the next one's while down.
    connection: u32,
    /// Consecutive failed attempts.
    failures: u32,
    /// Since when the feed has had no connection (from the start, until the first).
    down_since: Option<Instant>,
    /// Whether the connection's sender clock has been handed on.
    sender_clock_known: bool,
    rng: ChaCha8Rng,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("input", &self.input).field("connection", &self.connection).finish_non_exhaustive()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let State::Connecting(attempt) = std::mem::replace(&mut self.state, State::Ended) {
            attempt.abandon();
        }
    }
}

impl Feed {
    /// Starts connecting to `input` (the run's input number `index`) in the background.
    /// `reconnect_on_eos`: whether an end of stream is a loss to recover from (a camera or
    /// server) rather than the end (a playlist that ended, a file taken as live).
    pub fn new(index: u64, input: String, config: SourceConfig, policy: RetryPolicy, reconnect_on_eos: bool) -> Feed {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64 ^ index;
        let mut feed = Feed {
            index,
            input,
            config,
            policy,
            reconnect_on_eos,
            state: State::Ended,
            connection: 0,
            failures: 0,
            down_since: Some(Instant::now()),
            sender_clock_known: false,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        feed.connect();
        feed
    }

    pub fn input(&self) -> &str {
        &self.input
    }

    /// Whether the feed has ended for good (ended, gave up or stopped).
    pub fn ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// Whether a connection is up.
    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up { .. })
    }

    /// Video frames the current connection dropped so far because the graph was behind.
    pub fn dropped_frames(&self) -> u64 {
        match &self.state {
            State::Up { source, .. } => source.dropped_frames(),
            _ => 0,
        }
    }

    /// Takes what the feed has now: a finished connection attempt, up to `max` packets, a
    /// loss, a due retry. Never waits. Returns the packets handed over.
    pub fn step(&mut self, max: usize, out: &mut dyn FnMut(FeedOutput)) -> usize {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Ended => 0,
            State::Connecting(attempt) => {
                match attempt.result.try_recv() {
                    Ok(Ok(source)) => self.connected(source, out),
                    Ok(Err(error)) => self.lost(None, Some(error), "connect_failed", out),
                    Err(TryRecvError::Empty) => self.state = State::Connecting(attempt),
                    Err(TryRecvError::Disconnected) => {
                        let error = ErrorKind::Gstreamer("the connecting thread ended without a word".into());
                        self.lost(None, Some(error.at(&self.input)), "connect_failed", out)
                    }
                }
                0
            }
            State::Waiting(until) => {
                if Instant::now() < until {
                    self.state = State::Waiting(until);
                } else {
                    out(FeedOutput::Event(self.event("retry", None, None)));
                    self.connect();
                }
                0
            }
            State::Up { mut source, stream } => {
                let mut sent = 0;
                while sent < max {
                    match source.poll(Duration::ZERO) {
                        Poll::Pending => break,
                        Poll::Ready(Some(Ok(packet))) => {
                            out(FeedOutput::Packet { stream, packet });
                            sent += 1;
                        }
                        Poll::Ready(Some(Err(error))) => {
                            self.lost(Some((source, stream)), Some(error), "disconnected", out);
                            return sent;
                        }
                        Poll::Ready(None) => {
                            self.lost(Some((source, stream)), None, "disconnected", out);
                            return sent;
                        }
                    }
                }
                if let (false, Some(offset_us)) = (self.sender_clock_known, source.sender_clock_offset_us()) {
                    self.sender_clock_known = true;
                    out(FeedOutput::SenderClock { stream, offset_us });
                    let message = format!("{:+.1} ms from this machine's clock", offset_us as f64 / 1e3);
                    out(FeedOutput::Event(self.event("sender_clock", Some("rtcp".into()), Some(message))));
                }
                self.state = State::Up { source, stream };
                sent
            }
        }
    }

    /// Ends the feed now (Ctrl-C, SIGTERM): an open connection closes cleanly, so its rows
    /// commit; an attempt under way is abandoned.
    pub fn stop(&mut self, out: &mut dyn FnMut(FeedOutput)) {
        let dropped = match &self.state {
            State::Up { source, .. } => source.dropped_frames(),
            _ => 0,
        };
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Up { mut source, stream } => {
                // What the source holds (up to the audio the graph had not taken yet) goes in
                // the last window.
                while let Poll::Ready(Some(Ok(packet))) = source.poll(Duration::ZERO) {
                    out(FeedOutput::Packet { stream, packet });
                }
                out(FeedOutput::Closed { stream, error: None })
            }
            State::Connecting(attempt) => attempt.abandon(),
            State::Waiting(_) | State::Ended => {}
        }
        let mut event = self.event("stopped", None, None);
        event.frames_dropped = dropped;
        out(FeedOutput::Event(event));
    }

    /// Starts an attempt in the background.
    fn connect(&mut self) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let cancel = Arc::new(AtomicBool::new(false));
        let config = SourceConfig { cancel: Some(cancel.clone()), ..self.config.clone() };
        let input = self.input.clone();
        let spawned = thread::Builder::new().name(format!("connect {}", self.input)).spawn(move || {
            // Nobody waits any more when the feed was stopped meanwhile: the source just goes.
            let _ = tx.send(MediaSource::open(&input, &config));
        });
        self.state = match spawned {
            Ok(thread) => State::Connecting(Attempt { result: rx, cancel, thread }),
            // No thread to spare: try again later.
            Err(_) => State::Waiting(Instant::now() + self.policy.initial_backoff),
        };
    }

    fn connected(&mut self, source: MediaSource, out: &mut dyn FnMut(FeedOutput)) {
        let stream = connection_stream(self.index, self.connection);
        let opened = Opened {
            input: self.input.clone(),
            duration_s: None,
            has_audio: source.has_audio() && self.config.audio.is_some(),
            has_video: source.has_video() && self.config.video.is_some(),
            live: Some(Live {
                connection: self.connection,
                capture_offset_us: source.capture_offset_us(),
                start_s: source.first_pts().map_or(0.0, |t| t.as_secs_f64()),
            }),
        };
        let mut event = self.event("connected", None, None);
        if let Some(since) = self.down_since.take() {
            let seconds = since.elapsed().as_secs_f64();
            event.message = Some(match self.connection {
                0 => format!("in {seconds:.1} s"),
                _ => format!("after {seconds:.1} s down"),
            });
        }
        self.failures = 0;
        self.sender_clock_known = false;
        out(FeedOutput::Connected { stream, opened });
        out(FeedOutput::Event(event));
        self.state = State::Up { source: Box::new(source), stream };
    }

    /// The connection (if up) is gone, or an attempt failed: close its stream, record why,
    /// and wait to try again — or give up.
    fn lost(
        &mut self,
        up: Option<(Box<MediaSource>, StreamId)>,
        error: Option<MediaError>,
        what: &str,
        out: &mut dyn FnMut(FeedOutput),
    ) {
        let (reason, message) = match &error {
            Some(e) => (e.kind.code().to_owned(), e.kind.to_string()),
            None => ("eos".to_owned(), "the feed ended its stream".to_owned()),
        };
        let mut event = self.event(what, Some(reason), Some(message));
        let ends = error.is_none() && !self.reconnect_on_eos;
        if let Some((source, stream)) = up {
            event.frames_dropped = source.dropped_frames();
            drop(source);
            out(FeedOutput::Closed { stream, error: error.clone() });
            self.connection += 1;
            self.down_since = Some(Instant::now());
        }
        if ends {
            event.event = "ended".to_owned();
            out(FeedOutput::Event(event));
            self.state = State::Ended;
            return;
        }
        self.failures += 1;
        let down_for = self.down_since.map_or(Duration::ZERO, |t| t.elapsed());
        let give_up = self.policy.max_retries.is_some_and(|n| self.failures > n)
            || self.policy.give_up_after.is_some_and(|limit| down_for >= limit);
        if give_up {
            out(FeedOutput::Event(event));
            let why = format!("down for {:.1} s after {} failed attempt(s)", down_for.as_secs_f64(), self.failures);
            out(FeedOutput::Event(self.event("gave_up", None, Some(why))));
            self.state = State::Ended;
            return;
        }
        let longest = self.policy.backoff(self.failures);
        let wait = longest.mul_f64(self.rng.random_range(0.5..=1.0));
        event.backoff_s = Some(wait.as_secs_f64());
        out(FeedOutput::Event(event));
        self.state = State::Waiting(Instant::now() + wait);
    }

    fn event(&self, event: &str, reason: Option<String>, message: Option<String>) -> FeedEventRow {
        FeedEventRow {
            time_us: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as i64,
            connection: self.connection,
            event: event.to_owned(),
            reason,
            message,
            attempt: self.failures,
            backoff_s: None,
            frames_dropped: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
            ..Default::default()
        };
        let waits: Vec<f64> = (1..=6).map(|n| policy.backoff(n).as_secs_f64()).collect();
        assert_eq!(waits, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(4));
    }

    #[test]
    fn connection_streams_are_apart() {
        assert_eq!(connection_stream(7, 0), 7);
        assert_ne!(connection_stream(7, 1), connection_stream(8, 0));
        assert_ne!(connection_stream(7, 1), connection_stream(7, 2));
    }

    /// A feed nobody serves: every attempt fails, the waits grow, and it gives up as told.
    #[test]
    fn a_feed_that_never_connects_retries_then_gives_up() {
        let config = SourceConfig { connect_timeout: Duration::from_millis(300), ..SourceConfig::default() };
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            max_retries: Some(3),
            give_up_after: None,
        };
        // A local UDP port nobody sends to: the source opens, then nothing ever comes.
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut feed = Feed::new(0, format!("udp://127.0.0.1:{port}"), config, policy, true);
        let mut events = Vec::new();
        let started = Instant::now();
        while !feed.ended() {
            assert!(started.elapsed() < Duration::from_secs(60), "it never gave up: {events:?}");
            feed.step(16, &mut |o| match o {
                FeedOutput::Event(e) => events.push(e),
                other => panic!("nothing connects: {other:?}"),
            });
            std::thread::sleep(Duration::from_millis(10));
        }
        let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "connect_failed",
                "retry",
                "connect_failed",
                "retry",
                "connect_failed",
                "retry",
                "connect_failed",
                "gave_up"
            ]
        );
        let failed: Vec<&FeedEventRow> = events.iter().filter(|e| e.event == "connect_failed").collect();
        assert!(failed.iter().all(|e| e.reason.as_deref() == Some("stalled")), "{failed:?}");
        // Each wait within [half, all] of its doubling cap.
        for (n, e) in failed.iter().take(3).enumerate() {
            let cap = policy.backoff(n as u32 + 1).as_secs_f64();
            let wait = e.backoff_s.unwrap();
            assert!(wait >= cap / 2.0 - 1e-9 && wait <= cap + 1e-9, "attempt {n}: {wait} of {cap}");
        }
    }
}
