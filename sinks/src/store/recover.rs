//! Reading the manifests back, and recovering a store after a crash.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::generations::TablesLock;
use super::lease::{Holder, try_lease};
use super::manifest::{Manifest, ManifestEntry};
use super::{MANIFEST_DIR, PartName, StoreError, check_name, sync_dir};

/// What [`recover`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Temp files of committed segments renamed to their final names.
    pub rolled_forward: usize,
    /// Temp files of uncommitted segments deleted.
    pub deleted_temps: usize,
    /// Final part files named by no manifest deleted.
    pub deleted_orphans: usize,
    /// Manifests whose torn last line was cut off.
    pub truncated_manifests: usize,
    /// Writers left alone because a live run holds them (see [`super::lease`]).
    pub live_writers: Vec<String>,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} committed file(s) renamed into place, {} uncommitted and {} orphaned file(s) deleted, \
             {} torn manifest line(s) cut",
            self.rolled_forward, self.deleted_temps, self.deleted_orphans, self.truncated_manifests
        )
    }
}

impl Recovery {
    /// Whether the store was already consistent (live writers' files are theirs, not leftovers).
    pub fn is_clean(&self) -> bool {
        self.rolled_forward + self.deleted_temps + self.deleted_orphans + self.truncated_manifests == 0
    }
}

/// Brings the store at `root` back to its committed state after a crash: finishes the renames of
/// committed segments (roll forward), deletes every other temp file and every part file no
/// manifest names (roll back), and truncates torn manifest lines. Writers that live runs hold are
/// left alone (their files are in the making, not leftovers), and every other writer's lease is
/// held while recovery works, so no writer starts on files being rolled back. A missing `root` is
/// an empty store.
pub fn recover(root: &Path) -> Result<Recovery, StoreError> {
    recover_files(root, None, false)
}

/// What [`recover`] would do, without doing it: clean when no run was interrupted.
pub fn pending_recovery(root: &Path) -> Result<Recovery, StoreError> {
    recover_files(root, None, true)
}

/// [`recover`] restricted to one writer's manifest and files, which that writer owns alone.
pub(super) fn recover_writer(root: &Path, writer: &str) -> Result<Recovery, StoreError> {
    recover_files(root, Some(writer), false)
}

fn recover_files(root: &Path, only: Option<&str>, dry_run: bool) -> Result<Recovery, StoreError> {
    let mut report = Recovery::default();
    if !root.exists() {
        return Ok(report);
    }
    // The writers whose files recovery may touch: those whose lease it holds (the caller holds
    // `only`'s). Every other writer is live, or appeared since the names were read: hands off.
    let mut leases = Vec::new();
    let mut leased = BTreeSet::new();
    let mut live = BTreeSet::new();
    match only {
        Some(writer) => {
            leased.insert(writer.to_owned());
        }
        None => {
            let holder = Holder::this_process();
            for writer in writer_names(root)? {
                match try_lease(root, &writer, &holder)? {
                    Some(lease) => {
                        leases.push(lease);
                        leased.insert(writer);
                    }
                    None => {
                        live.insert(writer);
                    }
                }
            }
        }
    }
    report.live_writers = live.iter().cloned().collect();
    // Every manifest counts for what is superseded (a live compaction's or removal's line too);
    // only the recovered writers' are repaired and decide what is theirs.
    let mut manifests = Vec::new();
    let mut others = Vec::new();
    for path in manifest_files(root)? {
        let manifest = Manifest::read(&path)?;
        if !leased.contains(&writer_of_manifest(&path)) {
            others.push(manifest);
            continue;
        }
        if manifest.torn {
            if !dry_run {
                manifest.truncate_torn()?;
            }
            report.truncated_manifests += 1;
        }
        manifests.push(manifest);
    }
    let replaced = replaced_segments(manifests.iter().chain(&others).flat_map(|m| &m.entries));
    // Segments a writer that may still be at work supersedes: it removes their files itself.
    let replaced_by_others = replaced_segments(others.iter().flat_map(|m| &m.entries));
    // Final path of every committed file -> the manifest committing it; files left to others.
    let mut committed = HashMap::new();
    let mut protected = BTreeSet::new();
    for manifest in &manifests {
        for entry in &manifest.entries {
            for file in &entry.files {
                if !replaced.contains(&entry.segment) {
                    committed.insert(root.join(&file.path), manifest.path.clone());
                } else if replaced_by_others.contains(&entry.segment) {
                    protected.insert(root.join(&file.path));
                }
            }
        }
    }

    let _adding = if dry_run { None } else { Some(TablesLock::shared(root)?) };
    let mut touched = BTreeSet::new();
    for dir in table_dirs(root)? {
        for entry in std::fs::read_dir(&dir).map_err(StoreError::io(&dir))? {
            let path = entry.map_err(StoreError::io(&dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(part) = PartName::parse(name) else { continue };
            if !leased.contains(part.writer) {
                continue;
            }
            if part.temp {
                let final_path = dir.join(&name[1..name.len() - ".tmp".len()]);
                if committed.contains_key(&final_path) && !final_path.exists() {
                    if !dry_run {
                        std::fs::rename(&path, &final_path).map_err(StoreError::io(&path))?;
                    }
                    report.rolled_forward += 1;
                } else {
                    if !dry_run {
                        std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
                    }
                    report.deleted_temps += 1;
                }
            } else if !committed.contains_key(&path) && !protected.contains(&path) {
                if !dry_run {
                    std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
                }
                report.deleted_orphans += 1;
            } else {
                continue;
            }
            touched.insert(dir.clone());
        }
    }
    for dir in touched.iter().filter(|_| !dry_run) {
        sync_dir(dir)?;
    }
    if dry_run {
        return Ok(report);
    }
    if let Some((path, manifest)) = committed.into_iter().find(|(path, _)| !path.exists()) {
        return Err(StoreError::CommittedFileMissing { manifest, path });
    }
    Ok(report)
}

/// The writer whose manifest `path` is (`_manifest/<writer>.jsonl`).
fn writer_of_manifest(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Every writer the store knows of: by manifest, by lease file and by part file.
fn writer_names(root: &Path) -> Result<BTreeSet<String>, StoreError> {
    let mut names: BTreeSet<String> = manifest_files(root)?.iter().map(|p| writer_of_manifest(p)).collect();
    let dir = root.join(MANIFEST_DIR);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries {
            let path = entry.map_err(StoreError::io(&dir))?.path();
            // Writers' leases only (not the hidden store-wide locks).
            let name = writer_of_manifest(&path);
            if path.extension().is_some_and(|e| e == "lock") && check_name("writer", &name).is_ok() {
                names.insert(name);
            }
        }
    }
    for dir in table_dirs(root)? {
        for entry in std::fs::read_dir(&dir).map_err(StoreError::io(&dir))? {
            let path = entry.map_err(StoreError::io(&dir))?.path();
            if let Some(part) = path.file_name().and_then(|n| n.to_str()).and_then(PartName::parse) {
                names.insert(part.writer.to_owned());
            }
        }
    }
    Ok(names)
}

/// Segments some entry supersedes.
fn replaced_segments<'a>(entries: impl IntoIterator<Item = &'a ManifestEntry>) -> BTreeSet<String> {
    entries.into_iter().flat_map(|e| e.replaces.iter().cloned()).collect()
}

/// Every live committed segment of the store at `root` (none that another supersedes), oldest commit first. Torn last lines are
/// ignored; a missing `root` is an empty store.
pub fn read_manifests(root: &Path) -> Result<Vec<ManifestEntry>, StoreError> {
    let mut entries = Vec::new();
    for path in manifest_files(root)? {
        entries.extend(Manifest::read(&path)?.entries);
    }
    let replaced = replaced_segments(&entries);
    // Lines that commit nothing (a folded writer's last, see `fold`) are bookkeeping only.
    entries.retain(|e| !(replaced.contains(&e.segment) || e.files.is_empty() && e.inputs.is_empty()));
    entries.sort_by(|a, b| (&a.committed_at, &a.segment).cmp(&(&b.committed_at, &b.segment)));
    Ok(entries)
}

/// Input -> configuration of every input committed whole in the store at `root` (the latest
/// commit wins if an input was committed twice). A driver skips the inputs committed with its own
/// configuration. Windowed inputs (live feeds) are not listed: they are never done.
pub fn committed_inputs(root: &Path) -> Result<HashMap<String, String>, StoreError> {
    Ok(read_manifests(root)?
        .into_iter()
        .flat_map(|e| e.inputs)
        .filter(|i| i.window.is_none())
        .map(|i| (i.input, i.config))
        .collect())
}

/// Input -> configuration of every input with committed rows, whole or by windows.
pub fn input_configs(root: &Path) -> Result<HashMap<String, String>, StoreError> {
    Ok(read_manifests(root)?.into_iter().flat_map(|e| e.inputs).map(|i| (i.input, i.config)).collect())
}

/// `_manifest/*.jsonl`.
pub(super) fn manifest_files(root: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let dir = root.join(MANIFEST_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(&dir)(e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(StoreError::io(&dir))?.path();
        if path.extension().is_some_and(|e| e == "jsonl") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Every folder under `root` that may hold a table: not hidden, not `_manifest`.
fn table_dirs(root: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(root).map_err(StoreError::io(root))? {
        let path = entry.map_err(StoreError::io(root))?.path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with(['.', '_']));
        if !hidden && path.is_dir() {
            dirs.push(path);
        }
    }
    Ok(dirs)
}
