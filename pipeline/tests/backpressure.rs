//! A paused consumer holds decoding back: memory stays bounded whatever the
//! input's length. Its own test binary, so the process's memory is ours alone.

mod common;

use std::time::Duration;

use common::*;
use mudar_pipeline::{MediaSource, Packet, SourceConfig};

/// Resident memory of this process, in MiB.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / (1024.0 * 1024.0)
}

#[test]
fn paused_consumer_bounds_decoding_and_memory() {
    const MINUTES: u64 = 10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.mkv");
    let frames = MINUTES * 60 * 24;
    let buffers = MINUTES * 60 * 10;
    gst_launch(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=96,height=64,framerate=24/1 ! \
         x264enc speed-preset=ultrafast ! queue ! mux. \
         audiotestsrc num-buffers={buffers} samplesperbuffer=4800 wave=ticks ! audio/x-raw,rate=48000 ! opusenc ! queue ! mux. \
         matroskamux name=mux ! filesink location={}",
        path.display()
    ));

    // 256x256 RGB frames are 192 KiB: a file's worth would be ~900 MiB.
    let config = SourceConfig { capacity: 4, ..SourceConfig::default() };
    let mut source = MediaSource::open(path.to_str().unwrap(), &config).unwrap();
    let mut packets = 0;
    let mut frames_seen = 0u64;
    for item in source.by_ref().take(20) {
        frames_seen += matches!(item.unwrap(), Packet::Video(_)) as u64;
        packets += 1;
    }
    let before = rss_mib();
    std::thread::sleep(Duration::from_secs(3));
    let position = source.position().unwrap();
    let grown = rss_mib() - before;
    // Decoding waits for us: a few seconds of queues ahead, not the whole file.
    assert!(position < Duration::from_secs(30), "decoding ran ahead to {position:?} while paused");
    assert!(grown < 32.0, "memory grew {grown:.1} MiB while paused");

    let mut peak = 0f64;
    for item in source {
        match item.unwrap() {
            Packet::Video(_) => frames_seen += 1,
            Packet::Audio(_) => {}
        }
        packets += 1;
        if packets % 500 == 0 {
            peak = peak.max(rss_mib());
        }
    }
    // Nothing lost: every 8 fps frame of the ten minutes arrives.
    assert_eq!(frames_seen, MINUTES * 60 * 8, "8 fps frames of the {MINUTES} minutes");
    assert!(peak - before < 64.0, "memory grew {:.1} MiB while decoding the whole file", peak - before);
}
