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
}
