//! The `feed_events` table: each worker commits its feeds' events the moment
//! they happen, through a store writer of its own (`e<worker>`), so the log
//! of connects, losses and retries is in the store even while the graph is
//! stuck, and never waits for a window.

use std::collections::HashMap;
use std::path::PathBuf;

use mudar_schemas::FeedEventRow;
use mudar_schemas::tables::{self, FEED_EVENTS};
use mudar_sinks::store::{StoreConfig, StoreError, StoreWriter, Window};

/// One worker's `feed_events` writer, opened with its first event.
#[derive(Debug)]
pub struct FeedEventLog {
    root: PathBuf,
    config: StoreConfig,
    /// This worker's index and the run's workers: the writer's name is `e<index>`, or the next
    /// free `e<index + k·peers>`.
    worker: (usize, usize),
    writer: Option<StoreWriter>,
    /// Events committed so far per feed (their windows' numbers).
    counts: HashMap<String, u64>,
}

impl FeedEventLog {
    pub fn new(root: PathBuf, config: StoreConfig, worker: (usize, usize)) -> FeedEventLog {
        FeedEventLog { root, config, worker, writer: None, counts: HashMap::new() }
    }

    /// Commits `event` of `input`.
    pub fn record(&mut self, input: &str, event: &FeedEventRow) -> Result<(), StoreError> {
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => {
                let (index, peers) = self.worker;
                let names = (0..).map(|k| format!("e{}", index + k * peers)).take(1024);
                let schema = [(FEED_EVENTS, tables::feed_events_schema())];
                self.writer.insert(StoreWriter::open_first_free(&self.root, names, &schema, self.config.clone())?)
            }
        };
        let batch =
            tables::feed_events_batch(input, std::slice::from_ref(event)).expect("a feed event row fits its schema");
        writer.set_windowed(input);
        writer.write(FEED_EVENTS, input, &batch)?;
        let count = self.counts.entry(input.to_owned()).or_default();
        let window = Window {
            index: *count,
            connection: event.connection,
            capture_from_us: Some(event.time_us),
            capture_to_us: Some(event.time_us),
            last: false,
            through: None,
        };
        *count += 1;
        writer.commit_window(input, window)
    }
}
