//! Typed ingestion errors: every one names the input and the cause.

use std::time::Duration;

use gst::glib;

/// An input that could not be (fully) decoded.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
#[error("{input}: {kind}")]
pub struct MediaError {
    /// The path or URI as the user gave it.
    pub input: String,
    pub kind: ErrorKind,
}

/// What went wrong with an input.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum ErrorKind {
    #[error("no such file")]
    NotFound,
    #[error("cannot read it: {0}")]
    Unreadable(String),
    #[error("not a media file GStreamer recognises ({0})")]
    NotMedia(String),
    #[error("truncated: decoding ended at {decoded_s:.3} s of the {declared_s:.3} s the container declares")]
    Truncated { decoded_s: f64, declared_s: f64 },
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("no audio track")]
    NoAudio,
    #[error("no video track")]
    NoVideo,
    #[error("zero duration: no audio or video samples")]
    ZeroDuration,
    #[error(
        "missing GStreamer plugin: {0} (install the package that provides it, e.g. gstreamer1.0-libav or -plugins-bad/-ugly)"
    )]
    MissingPlugin(String),
    #[error("stalled: no data for {0:?} (the source or a decoder hung)")]
    Stalled(Duration),
    #[error("GStreamer failed: {0}")]
    Gstreamer(String),
    #[error("abandoned: the run is stopping")]
    Cancelled,
}

impl ErrorKind {
    /// A stable, machine-readable name for reports and tables.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unreadable(_) => "unreadable",
            ErrorKind::NotMedia(_) => "not_media",
            ErrorKind::Truncated { .. } => "truncated",
            ErrorKind::Corrupt(_) => "corrupt",
            ErrorKind::NoAudio => "no_audio",
            ErrorKind::NoVideo => "no_video",
            ErrorKind::ZeroDuration => "zero_duration",
            ErrorKind::MissingPlugin(_) => "missing_plugin",
            ErrorKind::Stalled(_) => "stalled",
            ErrorKind::Gstreamer(_) => "gstreamer",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    pub(crate) fn at(self, input: &str) -> MediaError {
        MediaError { input: input.to_owned(), kind: self }
    }

    /// Sorts a GStreamer error (from the bus or the discoverer) into a kind.
    pub(crate) fn classify(error: &glib::Error, debug: Option<&str>) -> ErrorKind {
        let message = match debug {
            Some(d) if !d.is_empty() => format!("{error}; {}", last_line(d)),
            _ => error.to_string(),
        };
        if let Some(code) = error.kind::<gst::ResourceError>() {
            return match code {
                gst::ResourceError::NotFound => ErrorKind::NotFound,
                _ => ErrorKind::Unreadable(message),
            };
        }
        if let Some(code) = error.kind::<gst::CoreError>() {
            return match code {
                gst::CoreError::MissingPlugin => ErrorKind::MissingPlugin(message),
                _ => ErrorKind::Gstreamer(message),
            };
        }
        if let Some(code) = error.kind::<gst::StreamError>() {
            return match code {
                gst::StreamError::TypeNotFound | gst::StreamError::WrongType => ErrorKind::NotMedia(message),
                gst::StreamError::CodecNotFound => ErrorKind::MissingPlugin(message),
                _ => ErrorKind::Corrupt(message),
            };
        }
        ErrorKind::Gstreamer(message)
    }
}

/// GStreamer debug strings start with a source location; the last line is the human part.
fn last_line(debug: &str) -> &str {
    debug.lines().last().unwrap_or(debug).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_gstreamer_domains() {
        let e = |err: glib::Error| ErrorKind::classify(&err, None).code();
        assert_eq!(e(glib::Error::new(gst::ResourceError::NotFound, "x")), "not_found");
        assert_eq!(e(glib::Error::new(gst::ResourceError::OpenRead, "x")), "unreadable");
        assert_eq!(e(glib::Error::new(gst::StreamError::TypeNotFound, "x")), "not_media");
        assert_eq!(e(glib::Error::new(gst::StreamError::Demux, "x")), "corrupt");
        assert_eq!(e(glib::Error::new(gst::StreamError::Decode, "x")), "corrupt");
        assert_eq!(e(glib::Error::new(gst::CoreError::MissingPlugin, "x")), "missing_plugin");
        assert_eq!(e(glib::Error::new(gst::LibraryError::Init, "x")), "gstreamer");
    }

    #[test]
    fn message_names_input_and_keeps_the_debug_tail() {
        let kind = ErrorKind::classify(
            &glib::Error::new(gst::StreamError::Demux, "bad atom"),
            Some("qtdemux.c(1): x\nmoov missing"),
        );
        assert_eq!(kind.at("a.mp4").to_string(), "a.mp4: corrupt data: bad atom; moov missing");
    }
}
