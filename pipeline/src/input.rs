//! What users name as inputs: local paths or URIs.

use std::path::Path;

use crate::error::{ErrorKind, MediaError};

/// `input` as a URI GStreamer opens: URIs pass through; paths must exist and be files.
pub fn to_uri(input: &str) -> Result<String, MediaError> {
    if is_uri(input) {
        return Ok(input.to_owned());
    }
    let path = Path::new(input);
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound.at(input),
        _ => ErrorKind::Unreadable(e.to_string()).at(input),
    })?;
    if metadata.is_dir() {
        return Err(ErrorKind::Unreadable("it is a directory".into()).at(input));
    }
    let absolute = std::path::absolute(path).map_err(|e| ErrorKind::Unreadable(e.to_string()).at(input))?;
    gst::glib::filename_to_uri(&absolute, None)
        .map(|u| u.to_string())
        .map_err(|e| ErrorKind::Unreadable(e.to_string()).at(input))
}

/// A path as a key to compare inputs by: the file itself (its canonical path) where it exists,
/// else the text as given.
pub fn file_key(input: &str) -> String {
    std::fs::canonicalize(input).map_or_else(|_| input.to_owned(), |p| p.display().to_string())
}

/// Whether `input` looks like `scheme://…` rather than a path.
pub fn is_uri(input: &str) -> bool {
    match input.split_once("://") {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

/// Whether `input` names a feed: a streaming protocol (RTSP, RTMP, SRT, UDP, RTP) or an HLS
/// playlist. A feed is committed window by window and never counted done, even before it has
/// connected (an input GStreamer finds live when it opens is one too).
pub fn is_feed(input: &str) -> bool {
    let Some((scheme, _)) = input.split_once("://").filter(|_| is_uri(input)) else { return false };
    matches!(
        scheme.to_ascii_lowercase().as_str(),
        "rtsp" | "rtsps" | "rtspt" | "rtmp" | "rtmps" | "srt" | "udp" | "rtp"
    ) || is_playlist(input)
}

/// Whether `input` is an HLS playlist over HTTP(S): a feed whose end of stream is its end (a
/// broadcast that finished), not a loss to reconnect from.
pub fn is_playlist(input: &str) -> bool {
    let Some((scheme, rest)) = input.split_once("://").filter(|_| is_uri(input)) else { return false };
    let path = rest.split(['?', '#']).next().unwrap_or_default().to_ascii_lowercase();
    scheme.to_ascii_lowercase().starts_with("http") && path.ends_with(".m3u8")
}

#[cfg(test)]
mod feed_tests {
    #[test]
    fn feeds_are_known_by_scheme_or_playlist() {
        for feed in ["rtsp://cam/a", "SRT://host:9000", "udp://127.0.0.1:5600", "http://h/live.m3u8?x=1"] {
            assert!(super::is_feed(feed), "{feed}");
        }
        for not in ["http://h/video.mp4", "file:///a.m3u8.mp4", "/data/live.m3u8", "clip.mp4"] {
            assert!(!super::is_feed(not), "{not}");
        }
    }
}

/// For an input that is a local RIFF/WAVE file cut short: `(seconds
/// present, seconds its header declares)`; `None` for anything else (URIs too).
///
/// GStreamer plays a truncated WAV up to the cut without a word (its duration
/// comes from the file size), so we compare the `data` chunk's declared size
/// with the bytes actually there.
pub fn wav_truncation(input: &str) -> Option<(f64, f64)> {
    use std::io::Read;
    if is_uri(input) {
        return None;
    }
    let path = Path::new(input);
    // Only regular files: opening a pipe or device to peek could block.
    let metadata = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    let file_len = metadata.len();
    let mut file = std::fs::File::open(path).ok()?;
    let mut head = vec![0u8; 4096];
    let n = file.read(&mut head).ok()?;
    let head = &head[..n];
    if n < 12 || &head[..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return None;
    }
    let u32_at = |i: usize| head.get(i..i + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64);
    let (mut at, mut byte_rate) = (12usize, None);
    while let (Some(id), Some(size)) = (head.get(at..at + 4), u32_at(at + 4)) {
        match id {
            b"fmt " => byte_rate = u32_at(at + 16),
            b"data" => {
                let byte_rate = byte_rate.filter(|&r| r > 0)? as f64;
                let present = file_len.saturating_sub(at as u64 + 8);
                return (present < size).then(|| (present as f64 / byte_rate, size as f64 / byte_rate));
            }
            _ => {}
        }
        at += 8 + size as usize + (size as usize & 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_paths() {
        assert!(is_uri("file:///a/b.mp4"));
        assert!(is_uri("rtsp://cam/stream"));
        assert!(!is_uri("/data/a b.mp4"));
        assert!(!is_uri("dir/x://y"));
        assert_eq!(to_uri("/no/such/file.mp4").unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(to_uri("/tmp").unwrap_err().kind.code(), "unreadable");
        let f = tempfile::NamedTempFile::new().unwrap();
        let uri = to_uri(f.path().to_str().unwrap()).unwrap();
        assert!(uri.starts_with("file:///"), "{uri}");
    }

    #[test]
    fn wav_truncation_compares_the_data_chunk_with_the_file() {
        // 8 kHz 16-bit mono: 16000 bytes per second; the header declares 2 s of data.
        let mut wav = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        wav.extend(16u32.to_le_bytes());
        wav.extend([1, 0, 1, 0]);
        wav.extend(8000u32.to_le_bytes());
        wav.extend(16000u32.to_le_bytes());
        wav.extend([2, 0, 16, 0]);
        wav.extend(b"data");
        wav.extend(32000u32.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        std::fs::write(&path, [wav.clone(), vec![0; 8000]].concat()).unwrap();
        assert_eq!(wav_truncation(path.to_str().unwrap()), Some((0.5, 2.0)));
        std::fs::write(&path, [wav, vec![0; 32000]].concat()).unwrap();
        assert_eq!(wav_truncation(path.to_str().unwrap()), None);
        std::fs::write(&path, b"not a wav").unwrap();
        assert_eq!(wav_truncation(path.to_str().unwrap()), None);
    }
}
