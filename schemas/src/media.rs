//! The `media` table: one row per input, describing its tracks (or why it failed).

use serde::{Deserialize, Serialize};

/// What an input holds, as its container and decoders declare it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// Duration in seconds of media time, if the container declares one.
    pub duration_s: Option<f64>,
    /// The first video track, if any.
    pub video: Option<VideoStreamInfo>,
    /// The first audio track, if any.
    pub audio: Option<AudioStreamInfo>,
}

/// A video track as decoded: native size and frame rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoStreamInfo {
    pub width: u32,
    pub height: u32,
    /// Nominal frames per second; `None` for variable-rate tracks (e.g. GIF).
    pub fps: Option<f64>,
    /// Number of frames: counted by decoding when `frame_count_exact`, else
    /// duration × nominal frame rate, rounded.
    pub frame_count: Option<u64>,
    pub frame_count_exact: bool,
}

/// An audio track as decoded: native rate and channel count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioStreamInfo {
    pub sample_rate: u32,
    pub channels: u32,
}

impl MediaInfo {
    /// Whether the input has a track of either kind with a positive duration.
    pub fn has_content(&self) -> bool {
        (self.video.is_some() || self.audio.is_some()) && self.duration_s.is_none_or(|d| d > 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_json() {
        let info = MediaInfo {
            duration_s: Some(8.0),
            video: Some(VideoStreamInfo {
                width: 256,
                height: 256,
                fps: Some(8.0),
                frame_count: Some(64),
                frame_count_exact: false,
            }),
            audio: Some(AudioStreamInfo { sample_rate: 16_000, channels: 1 }),
        };
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(serde_json::from_str::<MediaInfo>(&json).unwrap(), info);
    }

    #[test]
    fn zero_duration_has_no_content() {
        let audio = Some(AudioStreamInfo { sample_rate: 8000, channels: 1 });
        assert!(!MediaInfo { duration_s: Some(0.0), video: None, audio: audio.clone() }.has_content());
        assert!(MediaInfo { duration_s: None, video: None, audio }.has_content());
        assert!(!MediaInfo::default().has_content());
    }
}
