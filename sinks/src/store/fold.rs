//! Keeping manifests bounded: a live feed commits a window every few seconds,
//! a manifest line each, for as long as it runs. Compaction rewrites those
//! windows' files into a few large ones; folding then drops the lines they
//! superseded, so what a store's manifests hold grows with its data (one line
//! per large file), not with the number of windows ever committed.
//!
//! - A writer folds its own manifest (it holds the writer's lease, so nobody
//!   appends meanwhile): when it opens, after a commit once a compaction or
//!   removal has committed since it last folded all it could, and the
//!   compactor folds the manifests of writers no run holds.
//! - A line is dropped only when another manifest supersedes its segment and
//!   none of its files is left in the table folders (the compaction's swap, or
//!   the removal's deletions, are done): recovery then has nothing of it to
//!   protect or roll back. The writer's last line always stays, so segment
//!   numbers are never reused, but emptied (no files, no inputs): an empty
//!   line keeps nothing alive, so a chain of compactions above it can go.
//! - A line that supersedes segments (a compaction's, a removal's) keeps only
//!   the names some manifest still holds, and goes itself only once none is
//!   left: else the segments it hides would count again.
//! - A compaction folds a run of windows of one feed connection into one
//!   committed input ([`fold_windows`]).

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use super::compact::COMPACTOR;
use super::lease::{Holder, try_lease};
use super::manifest::{CommittedInput, Manifest, ManifestEntry, Window};
use super::recover::manifest_files;
use super::remove::REMOVER;
use super::{StoreError, manifest_path, sync_dir};

/// What folding a manifest did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Folded {
    /// Lines dropped (or emptied, for the last).
    pub dropped: usize,
    /// Superseded lines kept because their files are still in the table folders (a
    /// compaction between its commit and its swap): a later fold may drop them.
    pub waiting: usize,
}

/// Folds `writer`'s manifest (the caller holds the writer's lease): drops its lines that a
/// manifest supersedes and whose files are gone, and prunes from the lines it keeps the
/// superseded segment names no manifest holds any more (see the module docs). The last line
/// stays, as the floor of the writer's segment numbers, but emptied once it would go: an empty
/// line holds nothing, so it keeps no line that supersedes it alive.
pub(super) fn fold_manifest(root: &Path, writer: &str) -> Result<Folded, StoreError> {
    let path = manifest_path(root, writer);
    let own = Manifest::read(&path)?;
    if own.entries.is_empty() {
        return Ok(Folded::default());
    }
    let (mut present, mut superseded) = (BTreeSet::new(), BTreeSet::new());
    for manifest in manifest_files(root)? {
        for entry in Manifest::read(&manifest)?.entries {
            if !(entry.files.is_empty() && entry.inputs.is_empty()) {
                present.insert(entry.segment);
            }
            superseded.extend(entry.replaces);
        }
    }
    // A file whose presence cannot be told counts as there: dropping its line is what is unsafe.
    let on_disk = |entry: &ManifestEntry| entry.files.iter().any(|f| root.join(&f.path).try_exists().unwrap_or(true));
    let last = own.entries.len() - 1;
    let mut folded = Folded::default();
    let mut kept = Vec::new();
    for (i, entry) in own.entries.iter().enumerate() {
        let replaced = superseded.contains(&entry.segment);
        // A line that itself supersedes segments still listed somewhere must stay: without it
        // they would count again.
        let empty = entry.files.is_empty() && entry.inputs.is_empty() && entry.replaces.is_empty();
        let gone = (replaced && !on_disk(entry) && entry.replaces.iter().all(|s| !present.contains(s))) || empty;
        let mut entry = entry.clone();
        match (gone, i == last) {
            (true, false) => {
                folded.dropped += 1;
                continue;
            }
            (true, true) if !empty => {
                (entry.files, entry.inputs, entry.replaces) = (Vec::new(), Vec::new(), Vec::new());
                folded.dropped += 1;
            }
            _ => {
                folded.waiting += (replaced && !gone) as usize;
                entry.replaces.retain(|s| present.contains(s));
            }
        }
        kept.push(entry);
    }
    if kept != own.entries {
        rewrite(&path, &kept)?;
    }
    Ok(folded)
}

/// Folds the manifest of every writer no live run holds, the compactor's and remover's last
/// (the caller holds both leases): writers' lines go first, so the lines superseding them may
/// go too. Returns how many lines went.
pub(super) fn fold_idle_manifests(root: &Path, holder: &Holder) -> Result<usize, StoreError> {
    let mut writers: Vec<String> = manifest_files(root)?
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
        .filter(|w| w != COMPACTOR && w != REMOVER)
        .collect();
    writers.extend([REMOVER.to_owned(), COMPACTOR.to_owned()]);
    let mut dropped = 0;
    for writer in writers {
        let _lease = match writer == COMPACTOR || writer == REMOVER {
            true => None,
            false => match try_lease(root, &writer, holder)? {
                Some(lease) => Some(lease),
                // A live run's: it folds its own.
                None => continue,
            },
        };
        dropped += fold_manifest(root, &writer)?.dropped;
    }
    Ok(dropped)
}

/// Replaces a manifest's content at once: a temp file, fsynced, renamed over it. A torn tail is
/// dropped with the rest of what is not in `entries`.
fn rewrite(path: &Path, entries: &[ManifestEntry]) -> Result<(), StoreError> {
    let dir = path.parent().expect("a manifest has a folder");
    let name = path.file_name().expect("a manifest has a name").to_string_lossy();
    let temp = dir.join(format!(".{name}.tmp"));
    let mut text = Vec::new();
    for entry in entries {
        serde_json::to_writer(&mut text, entry).expect("a manifest entry serialises");
        text.push(b'\n');
    }
    let mut file = std::fs::File::create(&temp).map_err(StoreError::io(&temp))?;
    file.write_all(&text).and_then(|()| file.sync_all()).map_err(StoreError::io(&temp))?;
    std::fs::rename(&temp, path).map_err(StoreError::io(path))?;
    sync_dir(dir)
}

/// Merges the windows in `inputs` that follow each other within one run of one connection of a
/// feed (same input, configuration and connection; indices in a row) into one committed input
/// spanning them (its `index` the first, `through` the last). Whole inputs pass unchanged.
pub(super) fn fold_windows(inputs: impl IntoIterator<Item = CommittedInput>) -> Vec<CommittedInput> {
    let mut folded: Vec<CommittedInput> = Vec::new();
    // (input, config, connection) -> the folded entry its next window may extend.
    let mut open: HashMap<(String, String, u32), usize> = HashMap::new();
    for input in inputs {
        let Some(window) = input.window.clone() else {
            folded.push(input);
            continue;
        };
        let key = (input.input.clone(), input.config.clone(), window.connection);
        let extends = open.get(&key).copied().filter(|&at| {
            let last = folded[at].window.as_ref().expect("open entries are windows");
            !last.last && last.through.unwrap_or(last.index) + 1 == window.index
        });
        match extends {
            Some(at) => {
                let into = &mut folded[at];
                for (table, rows) in &input.rows {
                    *into.rows.entry(table.clone()).or_default() += rows;
                }
                let span = into.window.as_mut().expect("open entries are windows");
                merge(span, &window);
            }
            None => {
                open.insert(key, folded.len());
                folded.push(input);
            }
        }
    }
    folded
}

/// Extends window span `into` with the window after it.
fn merge(into: &mut Window, next: &Window) {
    into.through = Some(next.through.unwrap_or(next.index));
    into.capture_from_us = match (into.capture_from_us, next.capture_from_us) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    into.capture_to_us = match (into.capture_to_us, next.capture_to_us) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    into.last = next.last;
}
