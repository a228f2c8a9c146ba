//! Inputs claimed by the runs writing a store now, so two runs sharing a
//! store never extract the same input twice.
//!
//! Each run (each process of a cluster) writes `_runs/<run>.json` listing the
//! inputs it will extract, and holds an exclusive lock on that file for as
//! long as it runs (see [`super::lease`] for why a lock: the kernel drops it
//! when the process ends, however it ends). Claiming happens under a lock on
//! `_runs/.claims.lock`, which also covers reading what the store has
//! committed: a run ending commits its inputs before its claim goes, so a
//! later run finds each input either committed, or claimed by a live run, or
//! free — never neither committed nor claimed while being extracted.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lease::Holder;
use super::recover::committed_inputs;
use super::{StoreError, sync_dir};

/// Folder of the live runs' claims.
pub const RUNS_DIR: &str = "_runs";

/// A run's claim on its inputs, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunClaim {
    _file: File,
    path: PathBuf,
    /// `<host>-<pid>-<milliseconds since the epoch>-<count>`: unique among runs.
    pub run: String,
}

impl Drop for RunClaim {
    fn drop(&mut self) {
        // Only tidiness: a claim file whose lock is free counts for nothing.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An input another live run is extracting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Busy {
    pub input: String,
    /// The run holding it, as it described itself.
    pub holder: Holder,
}

/// What a run claimed.
#[derive(Debug)]
pub struct Claimed {
    pub claim: RunClaim,
    /// The inputs this run may extract.
    pub inputs: Vec<String>,
    /// Inputs it wanted that other live runs hold.
    pub busy: Vec<Busy>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RunFile {
    holder: Holder,
    inputs: Vec<String>,
}

/// Claims for this run the inputs `wanted` picks, given what the store has
/// committed (input → configuration, read under the claims lock), less those
/// other live runs hold.
pub fn claim_inputs(
    root: &Path,
    wanted: impl FnOnce(&HashMap<String, String>) -> Vec<String>,
) -> Result<Claimed, StoreError> {
    let dir = root.join(RUNS_DIR);
    std::fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
    let lock_path = dir.join(".claims.lock");
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(StoreError::io(&lock_path))?;
    lock.lock().map_err(StoreError::io(&lock_path))?;

    let mut held: HashMap<String, Holder> = HashMap::new();
    for entry in std::fs::read_dir(&dir).map_err(StoreError::io(&dir))? {
        let path = entry.map_err(StoreError::io(&dir))?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(file) = File::open(&path) else { continue };
        match file.try_lock() {
            // Its run has ended: the claim is stale.
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
            }
            Err(TryLockError::WouldBlock) => {
                let text = std::fs::read(&path).map_err(StoreError::io(&path))?;
                // A claim being written has its lock but maybe not its text: it holds nothing yet.
                if let Ok(run) = serde_json::from_slice::<RunFile>(&text) {
                    held.extend(run.inputs.into_iter().map(|input| (input, run.holder.clone())));
                }
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::io(&path)(e)),
        }
    }
    let committed = committed_inputs(root)?;
    let mut inputs = Vec::new();
    let mut busy = Vec::new();
    for input in wanted(&committed) {
        match held.get(&input) {
            Some(holder) => busy.push(Busy { input, holder: holder.clone() }),
            None => inputs.push(input),
        }
    }

    let holder = Holder::this_process();
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    let host: String =
        holder.host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    // Claims of one process in one millisecond are told apart by a count; never opened over
    // another's file.
    static CLAIMS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CLAIMS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let run = format!("{host}-{}-{millis}-{n}", holder.pid);
    let path = dir.join(format!("{run}.json"));
    let mut file = OpenOptions::new().write(true).create_new(true).open(&path).map_err(StoreError::io(&path))?;
    file.try_lock().map_err(|e| StoreError::io(&path)(e.into()))?;
    let text = serde_json::to_vec(&RunFile { holder, inputs: inputs.clone() }).expect("a claim serialises");
    file.write_all(&text).and_then(|()| file.sync_data()).map_err(StoreError::io(&path))?;
    sync_dir(&dir)?;
    drop(lock);
    Ok(Claimed { claim: RunClaim { _file: file, path, run }, inputs, busy })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_claim_keeps_its_inputs_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let all = |_: &HashMap<String, String>| vec!["a".to_owned(), "b".to_owned()];
        let first = claim_inputs(dir.path(), |_| vec!["a".to_owned()]).unwrap();
        assert_eq!(first.inputs, ["a"]);
        let second = claim_inputs(dir.path(), all).unwrap();
        assert_eq!(second.inputs, ["b"]);
        assert_eq!(second.busy.len(), 1);
        assert_eq!(second.busy[0].input, "a");
        assert_eq!(second.busy[0].holder.pid, std::process::id());
        drop(first);
        drop(second);
        let third = claim_inputs(dir.path(), all).unwrap();
        assert_eq!(third.inputs, ["a", "b"]);
        assert!(third.busy.is_empty());
    }
}
