//! A codec with no decoder installed is reported as a missing plugin.
//!
//! Its own test binary (one process): it takes every H.264 decoder out of
//! autoplugging for the whole process, as an installation without
//! gstreamer1.0-libav and openh264 would be.

mod common;

use common::*;
use gst::prelude::*;
use mudar_pipeline::{ErrorKind, ProbeOptions, SourceConfig, probe};
use mudar_sinks::MediaFormat;

#[test]
fn h264_without_a_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pattern(dir.path(), MediaFormat::Mp4, 1);
    let input = path.to_str().unwrap();
    assert!(decode(input, &SourceConfig::default()).unwrap().error.is_none(), "decodes while the decoders are there");

    let registry = gst::Registry::get();
    for feature in registry.features(gst::ElementFactory::static_type()) {
        let factory = feature.downcast::<gst::ElementFactory>().unwrap();
        let decodes_h264 = factory.klass().contains("Decoder")
            && factory
                .static_pad_templates()
                .iter()
                .any(|t| t.direction() == gst::PadDirection::Sink && t.caps().to_string().contains("video/x-h264"));
        if decodes_h264 {
            factory.set_rank(gst::Rank::NONE);
        }
    }

    let err = decode(input, &SourceConfig::default()).unwrap_err();
    assert!(matches!(&err.kind, ErrorKind::MissingPlugin(what) if what.contains("H.264")), "{err}");
    assert!(err.to_string().starts_with(input));
    // The audio track alone still decodes.
    let audio_only = decode(input, &SourceConfig { video: None, ..Default::default() }).unwrap();
    assert!(audio_only.error.is_none() && !audio_only.audio.is_empty(), "{:?}", audio_only.error);
    // Probing still describes the file, with the audio track it can read.
    let info = probe(input, &ProbeOptions::default());
    assert!(info.as_ref().is_ok_and(|i| i.audio.is_some()), "{info:?}");
}
