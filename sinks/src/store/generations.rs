//! Table folders as generations, so a compaction changes what readers see in
//! one atomic step.
//!
//! `STORE/<table>` is a symbolic link to `.tables/<table>.g<N>/`, the
//! table's current generation, which holds its part files. Writers add files
//! to the current generation; a compaction builds generation N+1 beside it
//! (hard links to every file it keeps, and the compacted files) and swaps the
//! link with one `rename`. A reader listing `STORE/<table>` thus sees
//! generation N or N+1, each whole, never a mix (the rows twice, or some
//! missing). Generation N stays until the next compaction, so a reader that
//! resolved the link (`realpath`) keeps reading it; one that opens files by
//! the link's path after the swap may find a compacted file gone: an error,
//! never wrong rows.
//!
//! Writers hold a shared lock on `_manifest/.tables.lock` while they create or
//! rename files in a table folder; a compaction holds it exclusively while it
//! links the next generation and swaps it in, so no file appears in a
//! generation that is being left. A writer's temp file open across a swap is
//! linked into the next generation too (the same file), and its rename at
//! commit lands there.
//!
//! Stores made before generations have plain table folders: the first
//! compaction of a table moves its folder to generation 1 first (the table is
//! briefly absent then, once).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::{MANIFEST_DIR, StoreError, sync_dir};

/// The hidden folder holding every table's generations.
pub const GENERATIONS_DIR: &str = ".tables";

/// Creates the folder of a new table as generation 1 behind its link; an existing table (link
/// or plain folder) is left as it is.
pub(super) fn ensure_table(root: &Path, table: &str) -> Result<(), StoreError> {
    let link = root.join(table);
    if link.exists() {
        return Ok(());
    }
    let generation = generation_dir(root, table, 1);
    std::fs::create_dir_all(&generation).map_err(StoreError::io(&generation))?;
    match std::os::unix::fs::symlink(relative_target(table, 1), &link) {
        Ok(()) => {}
        // Another writer made it meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(StoreError::io(&link)(e)),
    }
    sync_dir(&root.join(GENERATIONS_DIR))?;
    sync_dir(root)
}

fn generation_name(table: &str, n: u64) -> String {
    format!("{table}.g{n}")
}

fn generation_dir(root: &Path, table: &str, n: u64) -> PathBuf {
    root.join(GENERATIONS_DIR).join(generation_name(table, n))
}

/// The link's target, relative to the store (so the store can move).
fn relative_target(table: &str, n: u64) -> PathBuf {
    Path::new(GENERATIONS_DIR).join(generation_name(table, n))
}

/// The lock writers share while they add files to table folders (see the module docs).
#[derive(Debug)]
pub(super) struct TablesLock {
    // Held for its lock.
    _file: File,
}

impl TablesLock {
    fn open(root: &Path) -> Result<File, StoreError> {
        let path = root.join(MANIFEST_DIR).join(".tables.lock");
        let dir = path.parent().expect("in _manifest");
        std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        OpenOptions::new().write(true).create(true).truncate(false).open(&path).map_err(StoreError::io(&path))
    }

    /// Shared: files may be added to the current generations.
    pub fn shared(root: &Path) -> Result<TablesLock, StoreError> {
        let file = Self::open(root)?;
        file.lock_shared().map_err(StoreError::io(root.join(MANIFEST_DIR).join(".tables.lock")))?;
        Ok(TablesLock { _file: file })
    }

    /// Exclusive: generations may be swapped.
    pub fn exclusive(root: &Path) -> Result<TablesLock, StoreError> {
        let file = Self::open(root)?;
        file.lock().map_err(StoreError::io(root.join(MANIFEST_DIR).join(".tables.lock")))?;
        Ok(TablesLock { _file: file })
    }
}

/// The table's current generation number, turning a plain folder (a store from before
/// generations) into generation 1 first. Call it under the exclusive lock.
fn current_generation(root: &Path, table: &str) -> Result<u64, StoreError> {
    let link = root.join(table);
    let metadata = std::fs::symlink_metadata(&link).map_err(StoreError::io(&link))?;
    if metadata.is_dir() {
        let generation = generation_dir(root, table, 1);
        let parent = generation.parent().expect("in .tables");
        std::fs::create_dir_all(parent).map_err(StoreError::io(parent))?;
        std::fs::rename(&link, &generation).map_err(StoreError::io(&link))?;
        std::os::unix::fs::symlink(relative_target(table, 1), &link).map_err(StoreError::io(&link))?;
        sync_dir(parent)?;
        sync_dir(root)?;
        return Ok(1);
    }
    let target = std::fs::read_link(&link).map_err(StoreError::io(&link))?;
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.strip_prefix(&format!("{table}.g")).and_then(|n| n.parse().ok()).ok_or_else(|| StoreError::InvalidConfig {
        root: root.to_owned(),
        reason: format!("{} points at {}, not a generation of table `{table}`", link.display(), target.display()),
    })
}

/// Makes the next generation of `table` current: every entry of the current one but those
/// `drop` names, plus `add` (temp files in the current generation, linked into the next under
/// their final names). The next generation is built and swapped in under the exclusive lock;
/// then the temps' old names go, and generations older than the one replaced are deleted (the
/// one replaced stays for readers still in it, until the next swap).
pub(super) fn swap(
    root: &Path,
    table: &str,
    drop: &dyn Fn(&str) -> bool,
    add: &[(PathBuf, String)],
) -> Result<(), StoreError> {
    let current = {
        let _lock = TablesLock::exclusive(root)?;
        let current = current_generation(root, table)?;
        let (from, next) = (generation_dir(root, table, current), generation_dir(root, table, current + 1));
        if next.exists() {
            // A swap that crashed half way: never current, nobody reads it.
            std::fs::remove_dir_all(&next).map_err(StoreError::io(&next))?;
        }
        std::fs::create_dir(&next).map_err(StoreError::io(&next))?;
        for entry in std::fs::read_dir(&from).map_err(StoreError::io(&from))? {
            let path = entry.map_err(StoreError::io(&from))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if !drop(name) && path.is_file() {
                std::fs::hard_link(&path, next.join(name)).map_err(StoreError::io(&path))?;
            }
        }
        // Linked, not moved: until the swap, the file is where recovery looks for it.
        for (temp, name) in add {
            std::fs::hard_link(temp, next.join(name)).map_err(StoreError::io(temp))?;
        }
        sync_dir(&next)?;
        let staged = root.join(format!(".{table}.link.tmp"));
        let _ = std::fs::remove_file(&staged);
        std::os::unix::fs::symlink(relative_target(table, current + 1), &staged).map_err(StoreError::io(&staged))?;
        // The swap readers see.
        std::fs::rename(&staged, root.join(table)).map_err(StoreError::io(&staged))?;
        sync_dir(root)?;
        current
    };
    let replaced = generation_dir(root, table, current);
    for (temp, _) in add {
        if let Some(name) = temp.file_name() {
            let _ = std::fs::remove_file(replaced.join(name));
        }
    }
    let generations = root.join(GENERATIONS_DIR);
    for entry in std::fs::read_dir(&generations).map_err(StoreError::io(&generations))? {
        let path = entry.map_err(StoreError::io(&generations))?.path();
        let older = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(&format!("{table}.g")))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n < current);
        if older {
            std::fs::remove_dir_all(&path).map_err(StoreError::io(&path))?;
        }
    }
    sync_dir(&generations)
}
