//! Who writes a store now: leases held as advisory locks on files.
//!
//! Several runs may write one store at once (a live feed restarted beside a
//! running batch, two operators on one store). Each writer name is leased by
//! an exclusive `flock` on `_manifest/<writer>.lock` for as long as the
//! writer is open, so two live writers never share a name, a manifest or a
//! part file. The lock belongs to the open file, not to the file on disk: the
//! kernel releases it when the process ends, however it ends (`kill -9`
//! included), so a crashed run never leaves a writer name blocked, and a
//! lease that can be taken proves no live writer holds it. Recovery uses
//! exactly that: it takes the lease of every writer whose files it rolls
//! back, and leaves the files of leased (live) writers alone.
//!
//! While held, the lock file says who holds it ([`Holder`]), so an error can
//! name the run in the way.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{MANIFEST_DIR, StoreError, manifest};

/// The process holding a lease, as it described itself when taking it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// RFC 3339 UTC time the lease was taken.
    pub since: String,
    /// The command line, for people reading an error.
    pub command: String,
}

impl Holder {
    /// This process, now.
    pub fn this_process() -> Holder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        Holder { pid: std::process::id(), host, since: manifest::now_rfc3339(), command }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {} since {} (`{}`)", self.pid, self.host, self.since, self.command)
    }
}

/// An exclusive lease on a name in a store, released when dropped (or when
/// the process ends).
#[derive(Debug)]
pub struct Lease {
    // Held for its lock; closing it releases the lease.
    _file: File,
    path: PathBuf,
}

impl Lease {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Path of the lock file of `name`'s lease.
pub(super) fn lock_path(root: &Path, name: &str) -> PathBuf {
    root.join(MANIFEST_DIR).join(format!("{name}.lock"))
}

/// Takes the lease of `name` if no one holds it, recording `holder` in it;
/// `None` if another open file (this process's or another's) holds it.
pub fn try_lease(root: &Path, name: &str, holder: &Holder) -> Result<Option<Lease>, StoreError> {
    let path = lock_path(root, name);
    let dir = path.parent().expect("in _manifest");
    std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
    // Never truncate on open: the file holds the current holder's description.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(StoreError::io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(e)) => return Err(StoreError::io(&path)(e)),
    }
    let description = serde_json::to_vec(holder).expect("a holder serialises");
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(&description))
        .map_err(StoreError::io(&path))?;
    Ok(Some(Lease { _file: file, path }))
}

/// Takes the lease of `name`, or fails naming who holds it.
pub fn lease(root: &Path, name: &str, holder: &Holder) -> Result<Lease, StoreError> {
    try_lease(root, name, holder)?.ok_or_else(|| StoreError::Busy {
        root: root.to_owned(),
        name: name.to_owned(),
        holder: held_by(root, name),
    })
}

/// Who holds `name`'s lease, as its lock file says (best effort: the
/// description of a holder that just ended may remain).
pub fn held_by(root: &Path, name: &str) -> String {
    let mut text = String::new();
    let described = File::open(lock_path(root, name))
        .and_then(|mut f| f.read_to_string(&mut text))
        .ok()
        .and_then(|_| serde_json::from_str::<Holder>(&text).ok());
    match described {
        Some(holder) => holder.to_string(),
        None => "another process".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_excludes_others_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let holder = Holder::this_process();
        let first = try_lease(dir.path(), "w0", &holder).unwrap().expect("free");
        // Another open file of the same process is another holder.
        assert!(try_lease(dir.path(), "w0", &holder).unwrap().is_none());
        assert!(try_lease(dir.path(), "w1", &holder).unwrap().is_some());
        let busy = lease(dir.path(), "w0", &holder).unwrap_err().to_string();
        assert!(busy.contains(&format!("pid {}", std::process::id())), "{busy}");
        drop(first);
        assert!(try_lease(dir.path(), "w0", &holder).unwrap().is_some());
    }
}
