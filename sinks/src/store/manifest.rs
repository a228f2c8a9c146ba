//! Manifest lines: one JSON object per committed segment, appended to `_manifest/<writer>.jsonl`.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{StoreError, sync_dir};

/// One committed segment: its part files and the inputs whose rows they hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// `<writer>-<seq>`, the stem of the part files.
    pub segment: String,
    pub writer: String,
    /// At most one file per table; none for a segment whose inputs have no rows.
    pub files: Vec<CommittedFile>,
    pub inputs: Vec<CommittedInput>,
    /// RFC 3339 UTC time of the commit, e.g. `2026-11-24T18:30:00.123Z`.
    pub committed_at: String,
    /// Segments this one supersedes (see [`super::remove_inputs`]): their
    /// files and inputs no longer count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
}

/// A committed part file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommittedFile {
    pub table: String,
    /// Relative to the store root: `<table>/part-<writer>-<seq>.parquet`.
    pub path: String,
    pub rows: u64,
}

/// A committed input: all of its rows are in this segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommittedInput {
    pub input: String,
    /// The configuration that produced its rows ([`super::StoreConfig::config_json`]).
    pub config: String,
    /// Rows per table; tables where it has none are absent.
    pub rows: BTreeMap<String, u64>,
    /// For an input committed window by window (a live feed): which window
    /// these rows are. Absent for an input committed whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

/// A window of an input committed window by window (see
/// [`super::StoreWriter::commit_window`]): its rows are those the input
/// wrote since its previous window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// 0, 1, 2, … within the writer's run of the input.
    pub index: u64,
    /// The input's connection (reconnects count up) the rows came from.
    pub connection: u32,
    /// Capture times (µs since the Unix epoch, UTC) of the window's first and
    /// last rows, where the rows have them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_from_us: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_to_us: Option<i64>,
    /// The input ended with this window.
    #[serde(default)]
    pub last: bool,
    /// Set when compaction folded windows `index..=through` (of one run of one connection)
    /// into this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<u64>,
}

/// A manifest as read: its complete lines, and where a torn tail starts (if any).
#[derive(Debug)]
pub(super) struct Manifest {
    pub path: PathBuf,
    pub entries: Vec<ManifestEntry>,
    /// Length of the complete lines; bytes past it are a torn append.
    pub valid_len: u64,
    pub torn: bool,
}

impl Manifest {
    /// Reads a manifest. A missing file reads as empty. The last line is torn if it lacks its
    /// newline or does not parse; any other line that does not parse is an error.
    pub fn read(path: &Path) -> Result<Manifest, StoreError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StoreError::io(path)(e)),
        };
        let mut entries = Vec::new();
        let mut start = 0;
        let mut line = 0;
        let mut torn = false;
        while start < bytes.len() {
            line += 1;
            let Some(len) = bytes[start..].iter().position(|&b| b == b'\n') else {
                torn = true;
                break;
            };
            let end = start + len + 1;
            match serde_json::from_slice(&bytes[start..end]) {
                Ok(entry) => entries.push(entry),
                Err(_) if end == bytes.len() => {
                    torn = true;
                    break;
                }
                Err(source) => return Err(StoreError::ManifestLine { path: path.to_owned(), line, source }),
            }
            start = end;
        }
        Ok(Manifest { path: path.to_owned(), entries, valid_len: start as u64, torn })
    }

    /// The sequence number the writer's next segment takes (segment names are never reused).
    pub fn next_seq(&self) -> u64 {
        self.entries.iter().filter_map(|e| e.segment.rsplit_once('-')?.1.parse::<u64>().ok()).max().map_or(1, |s| s + 1)
    }

    /// Cuts a torn tail off, so the next append starts on a line of its own.
    pub fn truncate_torn(&self) -> Result<(), StoreError> {
        if self.torn {
            let file = OpenOptions::new().write(true).open(&self.path).map_err(StoreError::io(&self.path))?;
            file.set_len(self.valid_len).and_then(|()| file.sync_all()).map_err(StoreError::io(&self.path))?;
        }
        Ok(())
    }
}

/// Appends one line to a manifest and makes it durable: the commit point of a segment.
pub(super) fn append(path: &Path, entry: &ManifestEntry) -> Result<(), StoreError> {
    let mut line = serde_json::to_vec(entry).expect("a manifest entry serialises");
    line.push(b'\n');
    let created = !path.exists();
    let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(StoreError::io(path))?;
    file.write_all(&line).and_then(|()| file.sync_data()).map_err(StoreError::io(path))?;
    if created {
        sync_dir(path.parent().expect("a manifest has a folder"))?;
    }
    Ok(())
}

/// The current time in RFC 3339 UTC with milliseconds.
pub(super) fn now_rfc3339() -> String {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_416), (2025, 11, 24));
    }
}
