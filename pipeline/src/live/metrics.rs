//! The live figures of a run in the Prometheus text format (OpenMetrics),
//! served over HTTP by `mudar extract --metrics HOST:PORT` at `/metrics`:
//! per feed, frames received and dropped, reconnects by reason, whether it is
//! up and how old its last frame is; for the run, the capture→row latency of
//! committed live rows, and the rows, windows and files committed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use mudar_schemas::FeedEventRow;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabels {
    feed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconnectLabels {
    feed: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: String,
}

/// A run's metrics; every method may be called from any worker thread.
pub struct Metrics {
    registry: Registry,
    frames: Family<FeedLabels, Counter>,
    dropped: Family<FeedLabels, Counter>,
    reconnects: Family<ReconnectLabels, Counter>,
    up: Family<FeedLabels, Gauge>,
    last_frame_age: Family<FeedLabels, Gauge<f64, AtomicU64>>,
    latency: Histogram,
    rows: Family<TableLabels, Counter>,
    windows: Counter,
    files: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mudar");
        let metrics = Metrics {
            frames: Family::default(),
            dropped: Family::default(),
            reconnects: Family::default(),
            up: Family::default(),
            last_frame_age: Family::default(),
            // 50 ms to about 50 s.
            latency: Histogram::new(exponential_buckets(0.05, 2.0, 11)),
            rows: Family::default(),
            windows: Counter::default(),
            files: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("feed_frames", "Video frames a feed delivered", metrics.frames.clone());
        registry.register(
            "feed_frames_dropped",
            "Video frames dropped at a feed's source because the graph was behind",
            metrics.dropped.clone(),
        );
        registry.register(
            "feed_reconnects",
            "A feed's lost connections and failed attempts, by reason",
            metrics.reconnects.clone(),
        );
        registry.register("feed_up", "Whether a feed is connected (1) or not (0)", metrics.up.clone());
        registry.register(
            "feed_last_frame_age_seconds",
            "Seconds since a feed last delivered a packet",
            metrics.last_frame_age.clone(),
        );
        registry.register(
            "capture_to_row_seconds",
            "From a live frame's capture to its row being committed and readable",
            metrics.latency.clone(),
        );
        registry.register("rows_committed", "Rows committed, by table", metrics.rows.clone());
        registry.register("windows_committed", "Live windows committed", metrics.windows.clone());
        registry.register("files_committed", "Part files committed", metrics.files.clone());
        Metrics { registry, ..metrics }
    }

    fn feed(feed: &str) -> FeedLabels {
        FeedLabels { feed: feed.to_owned() }
    }

    pub fn feed_frames(&self, feed: &str, frames: u64, dropped: u64) {
        self.frames.get_or_create(&Self::feed(feed)).inc_by(frames);
        self.dropped.get_or_create(&Self::feed(feed)).inc_by(dropped);
    }

    pub fn feed_up(&self, feed: &str, up: bool) {
        self.up.get_or_create(&Self::feed(feed)).set(up as i64);
    }

    /// `None`: nothing delivered yet.
    pub fn last_frame_age(&self, feed: &str, age: Option<Duration>) {
        let age = age.map_or(f64::NAN, |a| a.as_secs_f64());
        self.last_frame_age.get_or_create(&Self::feed(feed)).set(age);
    }

    /// Counts a lost connection or failed attempt by its reason.
    pub fn feed_event(&self, feed: &str, event: &FeedEventRow) {
        if matches!(event.event.as_str(), "disconnected" | "connect_failed") {
            let reason = event.reason.clone().unwrap_or_default();
            self.reconnects.get_or_create(&ReconnectLabels { feed: feed.to_owned(), reason }).inc();
        }
    }

    pub fn committed_rows(&self, table: &str, rows: u64) {
        self.rows.get_or_create(&TableLabels { table: table.to_owned() }).inc_by(rows);
    }

    pub fn committed_window(&self, files: u64) {
        self.windows.inc();
        self.files.inc_by(files);
    }

    pub fn latency(&self, seconds: f64) {
        self.latency.observe(seconds);
    }

    /// The metrics as the Prometheus text format (OpenMetrics) has them.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }

    /// Serves `GET /metrics` at `address` (`HOST:PORT`; port 0 picks a free one) on a thread of
    /// its own, for as long as the process runs; returns the address it listens on.
    pub fn serve(self: &Arc<Self>, address: &str) -> Result<SocketAddr, String> {
        let server = tiny_http::Server::http(address).map_err(|e| format!("cannot serve metrics at {address}: {e}"))?;
        let bound = server.server_addr().to_ip().ok_or_else(|| format!("{address}: not an IP address"))?;
        let metrics = self.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                let content_type = tiny_http::Header::from_bytes(
                    "Content-Type",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .expect("a valid header");
                for request in server.incoming_requests() {
                    let response = match request.url() {
                        "/metrics" => {
                            tiny_http::Response::from_string(metrics.render()).with_header(content_type.clone())
                        }
                        _ => tiny_http::Response::from_string("mudar: metrics are at /metrics\n").with_status_code(404),
                    };
                    let _ = request.respond(response);
                }
            })
            .map_err(|e| format!("cannot start the metrics server: {e}"))?;
        Ok(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format_and_serves_it() {
        let metrics = Arc::new(Metrics::new());
        metrics.feed_frames("udp://127.0.0.1:5600", 10, 2);
        metrics.feed_up("udp://127.0.0.1:5600", true);
        metrics.latency(0.3);
        metrics.committed_rows("video_frames", 7);
        let event = FeedEventRow {
            time_us: 0,
            connection: 0,
            event: "disconnected".into(),
            reason: Some("stalled".into()),
            message: None,
            attempt: 1,
            backoff_s: Some(0.5),
            frames_dropped: 0,
        };
        metrics.feed_event("udp://127.0.0.1:5600", &event);
        let address = metrics.serve("127.0.0.1:0").unwrap();
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        use std::io::{Read, Write};
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.") && reply.contains(" 200 "), "{reply}");
        for line in [
            r#"mudar_feed_frames_total{feed="udp://127.0.0.1:5600"} 10"#,
            r#"mudar_feed_frames_dropped_total{feed="udp://127.0.0.1:5600"} 2"#,
            r#"mudar_feed_up{feed="udp://127.0.0.1:5600"} 1"#,
            r#"mudar_feed_reconnects_total{feed="udp://127.0.0.1:5600",reason="stalled"} 1"#,
            r#"mudar_capture_to_row_seconds_count 1"#,
            r#"mudar_rows_committed_total{table="video_frames"} 7"#,
            "# EOF",
        ] {
            assert!(reply.contains(line), "{line} missing from\n{reply}");
        }
    }
}
