//! Stores shared by runs, and live feeds: two `mudar extract` processes on
//! one store land every row once; a run killed beside another loses nothing
//! a later run cannot redo; a live MPEG-TS feed over UDP (a real GStreamer
//! sender on loopback) is committed window by window while it runs, with
//! capture times, ends cleanly on SIGTERM, and restarts — after a clean stop
//! or `kill -9` — append without duplicating a row.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::read_store;
use serde_json::Value;

fn mudar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mudar")).args(args).output().unwrap()
}

/// A child process killed when dropped, so a failing test leaves nothing running.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Running {
    fn signal(&self, signal: &str) {
        let pid = self.0.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// Waits for the process to end and returns its output.
    fn finish(mut self) -> Output {
        self.0.take().expect("running").wait_with_output().unwrap()
    }
}

fn spawn_mudar(args: &[&str]) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_mudar"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Running(Some(child))
}

/// Waits for `ready`, a minute at most (runs share two cores with other tests: wait on what
/// happens, not on a clock).
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "waited a minute for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Synthetic dances; returns their paths.
fn dances(dir: &Path, count: usize, seconds: u32) -> Vec<String> {
    let videos = dir.join("videos");
    for k in 0..count {
        let seed = (30 + k).to_string();
        let duration = seconds.to_string();
        let args = ["synth", "--out", videos.to_str().unwrap(), "--seed", &seed, "--duration", &duration];
        let run = mudar(&[&args[..], &["--width", "160", "--height", "120"]].concat());
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
    let mut paths: Vec<String> = std::fs::read_dir(&videos)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".mp4"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), count);
    paths
}

fn extract_args<'a>(inputs: &'a [String], store: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["extract"];
    args.extend(inputs.iter().map(String::as_str));
    args.extend(["--out", store.to_str().unwrap(), "--json", "--file-size-mb", "0"]);
    args.extend(extra);
    args
}

fn summary(run: &Output) -> Value {
    serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr))
    })
}

fn manifest_lines(store: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(store.join("_manifest")) else { return Vec::new() };
    let mut lines = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(path).unwrap();
            lines.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
    }
    lines
}

#[test]
fn two_runs_at_once_land_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dances(dir.path(), 4, 3);
    let reference_store = dir.path().join("reference");
    assert!(mudar(&extract_args(&videos, &reference_store, &[])).status.success());
    let reference = read_store(&reference_store);

    // Overlapping input lists, started together.
    let store = dir.path().join("shared");
    let (first, second) = (videos[..3].to_vec(), videos[1..].to_vec());
    let a = spawn_mudar(&extract_args(&first, &store, &[]));
    let b = spawn_mudar(&extract_args(&second, &store, &[]));
    let (a, b) = (a.finish(), b.finish());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let (a, b) = (summary(&a), summary(&b));
    // Each input is extracted by exactly one of them: the other left it to it or found it done.
    let count = |s: &Value, key: &str| s[key].as_array().map_or_else(|| s[key].as_u64().unwrap(), |a| a.len() as u64);
    assert_eq!(count(&a, "committed") + count(&b, "committed"), 4, "{a}\n{b}");
    assert_eq!(count(&a, "committed") + count(&a, "skipped") + count(&a, "busy"), 3, "{a}");
    assert_eq!(count(&b, "committed") + count(&b, "skipped") + count(&b, "busy"), 3, "{b}");
    // Two writers, none sharing a name; the rows equal one run's over all the inputs.
    let writers: std::collections::BTreeSet<String> =
        manifest_lines(&store).iter().map(|l| l["writer"].as_str().unwrap().to_owned()).collect();
    assert!(writers.len() <= 2, "{writers:?}");
    assert_eq!(read_store(&store), reference);
}

#[test]
fn a_run_killed_beside_another_loses_nothing_a_later_run_cannot_redo() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dances(dir.path(), 4, 3);
    let reference_store = dir.path().join("reference");
    assert!(mudar(&extract_args(&videos, &reference_store, &[])).status.success());
    let reference = read_store(&reference_store);

    let store = dir.path().join("store");
    let killed = spawn_mudar(&extract_args(&videos, &store, &["--max-open", "1"]));
    // Once it has committed something, a second run starts on the same inputs, and the first is
    // killed meanwhile: before or after the second claims its inputs, as it happens.
    wait_for("the first run's first commit", || !manifest_lines(&store).is_empty());
    let beside = spawn_mudar(&extract_args(&videos, &store, &[]));
    killed.signal("-KILL");
    drop(killed);
    let beside = beside.finish();
    let stderr = String::from_utf8_lossy(&beside.stderr).into_owned();
    if beside.status.success() {
        // It left the inputs a live run held alone, or took them over once their run was dead.
        let s = summary(&beside);
        let busy = s["busy"].as_array().unwrap().len() as u64;
        assert_eq!(s["committed"].as_u64().unwrap() + s["skipped"].as_u64().unwrap() + busy, 4, "{s}");
    } else {
        // It found the dead run's leftovers before claiming: it says what to do.
        assert!(stderr.contains("--resume"), "{stderr}");
    }

    // A later run finds the killed run's leftovers, rolls them back on --resume, and completes the store.
    let plain = mudar(&extract_args(&videos, &store, &[]));
    let resumed = match plain.status.success() {
        true => plain,
        false => {
            assert!(
                String::from_utf8_lossy(&plain.stderr).contains("--resume"),
                "{}",
                String::from_utf8_lossy(&plain.stderr)
            );
            mudar(&extract_args(&videos, &store, &["--resume"]))
        }
    };
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(read_store(&store), reference);
}

/// A live MPEG-TS sender (H.264 + AAC, a ticking tone) to `127.0.0.1:port` over UDP.
fn udp_sender(port: u16) -> Running {
    let pipeline = format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=24/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=24 ! h264parse ! mpegtsmux name=mux \
         ! udpsink host=127.0.0.1 port={port} \
         audiotestsrc is-live=true wave=ticks ! audioconvert ! avenc_aac ! aacparse ! mux."
    );
    let child = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gst-launch-1.0 (Debian's gstreamer1.0-tools, installed by scripts/setup.sh)");
    Running(Some(child))
}

/// A UDP port nobody listens on now (udpsrc binds it; a clash shows as a failed run).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The live windows of rows committed so far (not the feed events'): (window index, last,
/// committed rows of video_frames, connection).
fn windows(store: &Path) -> Vec<(u64, bool, u64, u64)> {
    manifest_lines(store)
        .iter()
        .flat_map(|l| l["inputs"].as_array().unwrap().clone())
        .filter(|i| i["rows"].get("feed_events").is_none())
        .filter_map(|i| {
            let w = i.get("window")?;
            let frames = i["rows"].get("video_frames").and_then(Value::as_u64).unwrap_or(0);
            let connection = w["connection"].as_u64().unwrap();
            Some((w["index"].as_u64().unwrap(), w["last"].as_bool().unwrap_or(false), frames, connection))
        })
        .collect()
}

/// Whether connection `c` has committed video rows.
fn has_rows(store: &Path, c: u64) -> bool {
    windows(store).iter().any(|w| w.3 == c && w.2 > 0)
}

/// Runs `mudar extract` on the feed until `windows` windows are committed; then stops it with
/// `signal` and returns its output.
fn live_run(feed: &str, store: &Path, windows_wanted: usize, signal: &str, extra: &[&str]) -> Output {
    let before = windows(store).len();
    let args = ["extract", feed, "--out", store.to_str().unwrap(), "--json", "--commit-interval", "1.5"];
    let run = spawn_mudar(&[&args[..], extra].concat());
    wait_for("live windows", || windows(store).len() >= before + windows_wanted);
    run.signal(signal);
    run.finish()
}

#[test]
fn a_live_feed_is_committed_window_by_window_and_restarts_append() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _sender = udp_sender(port);
    let feed = format!("udp://127.0.0.1:{port}");
    let store: PathBuf = dir.path().join("store");

    // A clean stop: windows while it runs, the last on SIGTERM, exit 0.
    let started = Instant::now();
    let first = live_run(&feed, &store, 3, "-TERM", &[]);
    let ran_s = started.elapsed().as_secs_f64();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let s = summary(&first);
    assert_eq!(s["committed"].as_u64(), Some(1), "{s}");
    let committed = windows(&store);
    assert!(committed.len() >= 4, "windows while running, then the last: {committed:?}");
    assert_eq!(committed.iter().filter(|w| w.1).count(), 1, "one last window: {committed:?}");
    assert!(committed.iter().filter(|w| !w.1).all(|w| w.2 > 0), "every interval's window has frames: {committed:?}");

    let tables = read_store(&store);
    let frames = tables["video_frames"].as_array().unwrap();
    // 8 analysis frames a second of the feed (less the time to connect).
    assert!(frames.len() as f64 <= 8.0 * ran_s + 2.0, "{} frames in {ran_s:.1} s", frames.len());
    assert!(frames.len() >= 8 * 3, "{} frames", frames.len());
    let capture = |r: &Value| r["capture_time"].as_str().expect("live rows carry their capture time").to_owned();
    let mut times: Vec<(f64, String)> = frames.iter().map(|r| (r["time_s"].as_f64().unwrap(), capture(r))).collect();
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(times.windows(2).all(|w| w[0].1 < w[1].1), "capture time follows media time");
    assert!(frames.iter().all(|r| r["connection"] == 0));
    let media = tables["media"].as_array().unwrap();
    assert_eq!((media.len(), media[0]["status"].as_str()), (1, Some("ok")));
    assert!(!tables["clips"].as_array().unwrap().is_empty() || ran_s < 8.0);

    // A kill in the middle of a window: the committed windows stay, the open one goes.
    let before = windows(&store).len();
    let killed = live_run(&feed, &store, 2, "-KILL", &[]);
    assert!(!killed.status.success());
    assert!(windows(&store).len() >= before + 2);
    // A restart (rolling the killed run's open window back) appends.
    let third = live_run(&feed, &store, 2, "-TERM", &["--resume"]);
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));

    let tables = read_store(&store);
    let frames = tables["video_frames"].as_array().unwrap();
    let mut stamps: Vec<String> = frames.iter().map(capture).collect();
    let total = stamps.len();
    stamps.sort();
    stamps.dedup();
    assert_eq!(stamps.len(), total, "no (input, capture_time) row twice");
    let committed_frames: u64 = windows(&store).iter().map(|w| w.2).sum();
    assert_eq!(committed_frames, total as u64, "every committed window reads back, nothing else");
    // The killed run never wrote its media row; the two clean runs did.
    assert_eq!(tables["media"].as_array().unwrap().len(), 2);

    // Compaction of the windows' small files, while DuckDB and pyarrow read the table.
    let parquet_files = |table: &str| {
        std::fs::read_dir(store.join(table))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "parquet"))
            .count()
    };
    let before = parquet_files("video_frames");
    let stop = dir.path().join("stop-reading");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_while_compacting.py");
    let reader = Command::new(common::python())
        .arg(script)
        .args([store.to_str().unwrap(), "video_frames", &total.to_string(), stop.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let compact = mudar(&["store", "compact", store.to_str().unwrap(), "--json"]);
    assert!(compact.status.success(), "{}", String::from_utf8_lossy(&compact.stderr));
    std::fs::write(&stop, "").unwrap();
    let read = reader.wait_with_output().unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let reads: Value = serde_json::from_slice(&read.stdout).unwrap();
    assert!(reads["reads"].as_u64().unwrap() > 0, "{reads}");
    let after = parquet_files("video_frames");
    assert!(after < before && after >= 1, "{before} files became {after}");
    assert_eq!(read_store(&store), tables, "compaction changes no row");
}

/// `mudar extract` on a feed, its stderr read as it comes (for the metrics address and events).
struct LiveRun {
    run: Running,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl LiveRun {
    fn start(feed: &str, store: &Path, extra: &[&str]) -> LiveRun {
        let args = ["extract", feed, "--out", store.to_str().unwrap(), "--json"];
        // A window a second, unless the test says otherwise.
        let interval: &[&str] = if extra.contains(&"--commit-interval") { &[] } else { &["--commit-interval", "1"] };
        let mut child = Command::new(env!("CARGO_BIN_EXE_mudar"))
            .args(args)
            .args(interval)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        LiveRun { run: Running(Some(child)), stderr }
    }

    fn said(&self, text: &str) -> bool {
        self.stderr.lock().unwrap().iter().any(|l| l.contains(text))
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The metrics as `GET /metrics` returns them.
    fn metrics(&self) -> String {
        wait_for("the metrics address", || self.said("metrics at http://"));
        let line = self.stderr.lock().unwrap().iter().find(|l| l.contains("metrics at http://")).unwrap().clone();
        let address = line.split("http://").nth(1).unwrap().trim_end_matches("/metrics").to_owned();
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        use std::io::{Read, Write};
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    }

    /// A metric's value (its first sample line starting with `name`).
    fn metric(&self, name: &str) -> f64 {
        let text = self.metrics();
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    /// Stops it with SIGTERM and returns its summary; it must exit 0.
    fn stop(self) -> Value {
        self.run.signal("-TERM");
        let log = self.stderr.clone();
        let out = self.run.finish();
        let log = log.lock().unwrap().join("\n");
        assert!(out.status.success(), "{log}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {log}"))
    }
}

/// The feed's events as committed in the store (pyarrow), in order.
fn feed_events(store: &Path) -> Vec<(u64, String, Option<String>)> {
    let tables = read_store(store);
    tables["feed_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["connection"].as_u64().unwrap(),
                e["event"].as_str().unwrap().to_owned(),
                e["reason"].as_str().map(String::from),
            )
        })
        .collect()
}

/// The feed goes away (sender killed) and comes back on the same port, then pauses (SIGSTOP)
/// and resumes: each loss is a `disconnected` event (the stall watchdog's), each return a new
/// connection whose rows go on after the gap; metrics count it all.
#[test]
fn a_lost_feed_reconnects_and_its_rows_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let feed = format!("udp://127.0.0.1:{port}");
    let store = dir.path().join("store");
    let fast = ["--stall-timeout", "1.5", "--connect-timeout", "1.5", "--max-backoff", "1", "--metrics", "127.0.0.1:0"];
    let run = LiveRun::start(&feed, &store, &fast);

    // Down at the start: attempts fail and are retried with growing waits.
    wait_for("failed attempts", || run.said("connect failed") && run.said("next attempt in"));
    let mut sender = udp_sender(port);
    wait_for("the first connection", || run.said("connected (connection 0)"));
    wait_for("rows of connection 0", || has_rows(&store, 0));

    // Killed, down a while, back on the same port.
    drop(sender);
    let down = Instant::now();
    wait_for("the loss", || run.said("disconnected (connection 0)"));
    wait_for("a failed reconnect", || run.log().matches("connect failed").count() >= 2);
    sender = udp_sender(port);
    let downtime = down.elapsed().as_secs_f64();
    wait_for("connection 1", || run.said("connected (connection 1)"));

    // Paused: the watchdog fires, and it recovers once resumed.
    wait_for("rows of connection 1", || has_rows(&store, 1));
    sender.signal("-STOP");
    wait_for("the stall", || run.said("disconnected (connection 1)"));
    sender.signal("-CONT");
    wait_for("connection 2", || run.said("connected (connection 2)"));
    assert!(run.metric("mudar_feed_up{") == 1.0);
    let reconnects = run.metrics();
    assert!(
        reconnects.contains("mudar_feed_reconnects_total{") && reconnects.contains("reason=\"stalled\""),
        "{reconnects}"
    );
    assert!(run.metric("mudar_capture_to_row_seconds_count") > 0.0);
    assert!(run.metric("mudar_feed_frames_total{") > 0.0);
    wait_for("rows of connection 2", || has_rows(&store, 2));
    let summary = run.stop();
    assert_eq!(summary["failed"].as_u64(), Some(0), "{summary}");
    assert!(summary["connections"].as_u64().unwrap() >= 3, "{summary}");

    // feed_events, as committed: every connect and loss with its reason.
    let events = feed_events(&store);
    let of = |kind: &str| events.iter().filter(|e| e.1 == kind).collect::<Vec<_>>();
    assert_eq!(of("connected").iter().map(|e| e.0).collect::<Vec<_>>(), [0, 1, 2], "{events:?}");
    assert_eq!(of("disconnected").len(), 2, "{events:?}");
    assert!(of("disconnected").iter().all(|e| e.2.as_deref() == Some("stalled")), "{events:?}");
    assert!(!of("connect_failed").is_empty() && of("retry").len() >= of("connect_failed").len(), "{events:?}");
    assert_eq!(of("stopped").len(), 1);

    // Rows per connection, in capture order, and the gap between connections 0 and 1 spans the downtime.
    let tables = read_store(&store);
    let frames = tables["video_frames"].as_array().unwrap();
    let stamps = |c: u64| -> Vec<String> {
        let mut s: Vec<String> = frames
            .iter()
            .filter(|r| r["connection"] == c)
            .map(|r| r["capture_time"].as_str().unwrap().to_owned())
            .collect();
        s.sort();
        s
    };
    let (zero, one, two) = (stamps(0), stamps(1), stamps(2));
    assert!(!zero.is_empty() && !one.is_empty() && !two.is_empty());
    assert!(zero.last() < one.first() && one.last() < two.first(), "connections follow each other");
    let seconds = |t: &str| -> f64 {
        // "2026-12-07 19:46:04.008694+00:00"
        let hms = t.split(' ').nth(1).unwrap().split('+').next().unwrap();
        let parts: Vec<f64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    let gap = seconds(one.first().unwrap()) - seconds(zero.last().unwrap());
    assert!(gap >= downtime - 0.5, "the gap between connections ({gap:.1} s) spans the downtime ({downtime:.1} s)");
    // One media row per connection; the lost ones say why.
    let media = tables["media"].as_array().unwrap();
    assert_eq!(media.len(), 3);
    assert_eq!(media.iter().filter(|m| m["error_kind"] == "stalled").count(), 2);
}

/// Runs `mudar extract` on `feed` until two windows with frames are committed, stops it, and
/// checks what a store of a live feed holds.
fn ingest_briefly(feed: &str, store: &Path, extra: &[&str]) -> Value {
    let run = LiveRun::start(feed, store, extra);
    wait_for("two windows with frames", || windows(store).iter().filter(|w| w.2 > 0).count() >= 2);
    let summary = run.stop();
    assert_eq!((summary["committed"].as_u64(), summary["failed"].as_u64()), (Some(1), Some(0)), "{summary}");
    let tables = read_store(store);
    let frames = tables["video_frames"].as_array().unwrap();
    assert!(frames.len() >= 8, "{feed}: {} frames", frames.len());
    assert!(frames.iter().all(|r| r["capture_time"].is_string() && r["connection"] == 0), "{feed}");
    assert!(!tables["audio_frames"].as_array().unwrap().is_empty(), "{feed}: audio");
    let events = feed_events(store);
    assert_eq!(events.first().map(|e| e.1.as_str()), Some("connected"), "{events:?}");
    assert_eq!(events.last().map(|e| e.1.as_str()), Some("stopped"), "{events:?}");
    tables
}

/// The launch line of a live test pattern with a ticking tone, H.264 and AAC, into `sink`.
fn sender_line(sink: &str) -> String {
    format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=24/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=24 ! h264parse config-interval=-1 {sink} \
         audiotestsrc is-live=true wave=ticks ! audioconvert ! avenc_aac ! aacparse"
    )
}

fn gst_launch(line: &str) -> Running {
    let child = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(line.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gst-launch-1.0");
    Running(Some(child))
}

#[test]
fn an_srt_feed_is_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    // MPEG-TS in 7-packet messages (1316 bytes), as SRT senders send it; mudar calls in.
    let sink = format!("! mpegtsmux alignment=7 name=mux ! srtsink uri=srt://127.0.0.1:{port}?mode=listener");
    let _sender = gst_launch(&format!("{} ! mux.", sender_line(&sink)));
    ingest_briefly(&format!("srt://127.0.0.1:{port}"), &dir.path().join("store"), &[]);
}

/// A folder served over HTTP on loopback (what an HLS origin is), until dropped.
struct HttpFolder {
    server: std::sync::Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpFolder {
    fn serve(folder: PathBuf) -> (HttpFolder, u16) {
        let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let serving = server.clone();
        let thread = std::thread::spawn(move || {
            for request in serving.incoming_requests() {
                let path = folder.join(request.url().trim_start_matches('/'));
                let _ = match std::fs::read(&path) {
                    Ok(bytes) => request.respond(tiny_http::Response::from_data(bytes)),
                    Err(_) => request.respond(tiny_http::Response::empty(404)),
                };
            }
        });
        (HttpFolder { server, thread: Some(thread) }, port)
    }
}

impl Drop for HttpFolder {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn an_hls_feed_is_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let hls = dir.path().join("hls");
    std::fs::create_dir_all(&hls).unwrap();
    let (segments, playlist) = (hls.join("segment%05d.ts"), hls.join("live.m3u8"));
    let sink = format!(
        "! hlssink2 name=h target-duration=1 playlist-length=6 max-files=12 location={} playlist-location={}",
        segments.display(),
        playlist.display()
    );
    let _sender = gst_launch(&format!("{} ! h.audio", sender_line(&sink)));
    let (_origin, port) = HttpFolder::serve(hls);
    wait_for("the playlist's first segments", || {
        std::fs::read_to_string(&playlist).is_ok_and(|p| p.matches("#EXTINF").count() >= 2)
    });
    ingest_briefly(&format!("http://127.0.0.1:{port}/live.m3u8"), &dir.path().join("store"), &[]);
}

/// An RTSP server in this process (gst-rtsp-server), serving the test pattern at `/live`.
struct RtspServer {
    main_loop: glib::MainLoop,
    server: gst_rtsp_server::RTSPServer,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
}

use gst_rtsp_server::glib;
use gst_rtsp_server::prelude::*;

impl RtspServer {
    /// Serves on `port` (0: a free one).
    fn start(port: u16) -> RtspServer {
        RtspServer::with_ntp_time_source(port, "ntp")
    }

    /// Serves on `port`, its RTCP sender reports stamped by `ntp_time_source` (an rtpbin
    /// `ntp-time-source`: `ntp` is this machine's real time; `running-time` a clock that
    /// started in 1900, as a camera's that was never set).
    fn with_ntp_time_source(port: u16, ntp_time_source: &'static str) -> RtspServer {
        mudar_pipeline::init().unwrap();
        let context = glib::MainContext::new();
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(
            "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=24/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=24 ! rtph264pay name=pay0 pt=96 \
             audiotestsrc is-live=true wave=ticks ! audioconvert ! avenc_aac ! rtpmp4gpay name=pay1 pt=97 )",
        );
        factory.set_shared(true);
        factory.connect_media_configure(move |_, media| {
            let Some(pipeline) = media.element().parent().and_downcast::<gst::Bin>() else { return };
            pipeline.connect_element_added(move |_, element| {
                if element.factory().is_some_and(|f| f.name() == "rtpbin") {
                    element.set_property_from_str("ntp-time-source", ntp_time_source);
                }
            });
        });
        server.mount_points().unwrap().add_factory("/live", factory);
        server.attach(Some(&context)).unwrap();
        let port = server.bound_port() as u16;
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let running = main_loop.clone();
        let thread = std::thread::spawn(move || running.run());
        RtspServer { main_loop, server, thread: Some(thread), port }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        // Its clients go with it, as with a server that dies.
        self.server.client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
        self.main_loop.quit();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn an_rtsp_feed_is_ingested_and_follows_its_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let server = RtspServer::start(0);
    let feed = format!("rtsp://127.0.0.1:{}/live", server.port);
    let fast = ["--stall-timeout", "2", "--connect-timeout", "3", "--max-backoff", "1"];
    let run = LiveRun::start(&feed, &store, &fast);
    wait_for("rows of connection 0", || has_rows(&store, 0));
    // The server goes away, then comes back on the same port.
    let port = server.port;
    drop(server);
    wait_for("the loss", || run.said("disconnected (connection 0)"));
    let _server = RtspServer::start(port);
    wait_for("rows of connection 1", || has_rows(&store, 1));
    let summary = run.stop();
    assert_eq!(summary["failed"].as_u64(), Some(0), "{summary}");
    let tables = read_store(&store);
    let frames = tables["video_frames"].as_array().unwrap();
    assert!(frames.iter().any(|r| r["connection"] == 0) && frames.iter().any(|r| r["connection"] == 1));
    let connected: Vec<u64> = feed_events(&store).iter().filter(|e| e.1 == "connected").map(|e| e.0).collect();
    assert_eq!(&connected[..2], [0, 1]);
}

/// Ingests an RTSP feed whose sender stamps its RTCP reports by `ntp_time_source`; returns the
/// sender's clock minus ours as `feed_events` gives it (ms), when that event was (on our clock),
/// and every row's capture time.
fn ingest_with_sender_clock(ntp_time_source: &'static str) -> (f64, String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let server = RtspServer::with_ntp_time_source(0, ntp_time_source);
    let feed = format!("rtsp://127.0.0.1:{}/live", server.port);
    // RTCP reports come a few seconds apart: the first window waits long enough for one.
    let run = LiveRun::start(&feed, &store, &["--commit-interval", "8"]);
    wait_for("rows", || has_rows(&store, 0));
    let summary = run.stop();
    assert_eq!(summary["failed"].as_u64(), Some(0), "{summary}");
    let tables = read_store(&store);
    let clock = tables["feed_events"].as_array().unwrap().iter().find(|e| e["event"] == "sender_clock").cloned();
    let clock = clock.unwrap_or_else(|| panic!("no sender_clock event: {}", tables["feed_events"]));
    assert_eq!(clock["reason"], "rtcp");
    let offset_ms = clock["message"].as_str().unwrap().split_whitespace().next().unwrap().parse().unwrap();
    let frames = tables["video_frames"].as_array().unwrap();
    assert!(frames.len() >= 8, "{} frames", frames.len());
    let audio = tables["audio_frames"].as_array().unwrap();
    let times = frames.iter().chain(audio).map(|r| r["capture_time"].as_str().unwrap().to_owned()).collect();
    (offset_ms, clock["time"].as_str().unwrap().to_owned(), times)
}

/// Capture times are the sender's, as its RTCP reports map them, from the connection's first
/// row on; `feed_events` says how far the sender's clock is from ours.
#[test]
fn an_rtsp_feed_is_stamped_with_its_senders_clock() {
    // A sender on this machine's clock: within the network's delay of ours.
    let (offset_ms, now, times) = ingest_with_sender_clock("ntp");
    assert!(offset_ms.abs() < 2000.0, "{offset_ms} ms");
    assert!(times.iter().all(|t| t[..5] == now[..5]), "{:?} in the year of {now}", &times[..3]);
    // A camera whose clock was never set (its reports say 1900; 1900 to now is ~4.0e12 ms).
    let (offset_ms, _, times) = ingest_with_sender_clock("running-time");
    assert!(offset_ms < -3.9e12, "{offset_ms} ms");
    assert!(times.iter().all(|t| t.starts_with("1900-01-01")), "{:?}", &times[..3]);
}

/// Resident memory of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A graph slower than its feed (1024² frames at 30 fps through DIS flow, more than these cores
/// do in real time): frames are dropped at the source and counted, the audio is kept whole,
/// windows go on committing, and memory stays flat.
#[test]
fn a_graph_slower_than_its_feed_drops_frames_and_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _sender = udp_sender(port);
    let store = dir.path().join("store");
    let heavy = ["--fps", "30", "--size", "1024", "--metrics", "127.0.0.1:0"];
    let run = LiveRun::start(&format!("udp://127.0.0.1:{port}"), &store, &heavy);
    let pid = run.run.0.as_ref().unwrap().id();
    let with_frames = |n: usize| windows(&store).iter().filter(|w| w.2 > 0).count() >= n;
    wait_for("three windows", || with_frames(3));
    let early = rss_kib(pid);
    wait_for("nine windows", || with_frames(9));
    let late = rss_kib(pid);
    assert!(late < early + early / 4 + 32 * 1024, "memory grew from {early} KiB to {late} KiB");
    assert!(run.metric("mudar_feed_frames_dropped_total{") > 0.0, "{}", run.metrics());
    let summary = run.stop();
    let dropped: u64 =
        summary["feed_events"].as_array().unwrap().iter().map(|e| e["frames_dropped"].as_u64().unwrap()).sum();
    assert!(dropped > 0, "{summary}");

    // The audio is whole: an envelope frame every 32 ms of the span its rows cover.
    let tables = read_store(&store);
    let mut audio: Vec<f64> =
        tables["audio_frames"].as_array().unwrap().iter().map(|r| r["time_s"].as_f64().unwrap()).collect();
    audio.sort_by(f64::total_cmp);
    let span = audio.last().unwrap() - audio.first().unwrap();
    let expected = span / (512.0 / 16_000.0);
    assert!(audio.len() as f64 >= 0.98 * expected, "{} audio frames over {span:.1} s", audio.len());
}

/// Two feeds on two workers: each worker takes its own feed, writer and event log, as with files.
#[test]
fn feeds_spread_over_workers() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_udp_port(), free_udp_port()];
    let _senders = ports.map(udp_sender);
    let store = dir.path().join("store");
    let feeds = ports.map(|p| format!("udp://127.0.0.1:{p}"));
    let args = [
        "extract",
        &feeds[0],
        &feeds[1],
        "--out",
        store.to_str().unwrap(),
        "--json",
        "--commit-interval",
        "1",
        "-w",
        "2",
    ];
    let run = spawn_mudar(&args);
    wait_for("windows of both feeds", || {
        let lines = manifest_lines(&store);
        let with_frames = |feed: &str| {
            lines
                .iter()
                .flat_map(|l| l["inputs"].as_array().unwrap().clone())
                .any(|i| i["input"] == feed && i["rows"].get("video_frames").is_some())
        };
        with_frames(&feeds[0]) && with_frames(&feeds[1])
    });
    run.signal("-TERM");
    let out = run.finish();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let writers: std::collections::BTreeSet<String> =
        manifest_lines(&store).iter().map(|l| l["writer"].as_str().unwrap().to_owned()).collect();
    assert_eq!(writers, ["e0", "e1", "w0", "w1"].map(String::from).into(), "one writer and one event log per worker");
    let tables = read_store(&store);
    for feed in &feeds {
        assert!(tables["video_frames"].as_array().unwrap().iter().any(|r| r["input"] == *feed), "{feed}");
    }
}
