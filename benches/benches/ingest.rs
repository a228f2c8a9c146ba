//! Ingestion throughput: decoding a 640x360 H.264/AAC file into 256x256 RGB
//! at 8 fps and 16 kHz mono through `MediaSource`, beside a bare GStreamer
//! decode of the same file to fakesinks (the floor: demux + decode only).
//!
//! `cargo bench -p mudar-benches --bench ingest`

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gst::prelude::*;
use mudar_pipeline::{MediaSource, SourceConfig};
use mudar_sinks::MediaFormat;

const SECONDS: f64 = 20.0;

fn bare_decode(uri: &str) {
    let pipeline = gst::parse::launch(&format!(
        "uridecodebin uri={uri} name=d d. ! queue ! fakesink sync=false d. ! queue ! fakesink sync=false"
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    bus.timed_pop_filtered(gst::ClockTime::from_seconds(60), &[gst::MessageType::Eos, gst::MessageType::Error])
        .unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
}

fn ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = mudar_benches::synthetic_video(dir.path(), SECONDS, MediaFormat::Mp4).unwrap();
    let input = path.to_str().unwrap().to_owned();
    let uri = mudar_pipeline::input::to_uri(&input).unwrap();
    let mut group = c.benchmark_group("ingest 20 s of 640x360 H.264+AAC");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    // Throughput in seconds of media: elements/s reads as the real-time factor.
    group.throughput(Throughput::Elements(SECONDS as u64));
    group.bench_function("MediaSource 256x256@8fps + 16 kHz", |b| {
        b.iter(|| MediaSource::open(&input, &SourceConfig::default()).unwrap().for_each(|p| drop(p.unwrap())))
    });
    group.bench_function("GStreamer decode only (floor)", |b| b.iter(|| bare_decode(&uri)));
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
