//! The database file itself: the lock that keeps a second process off it, and the
//! check that the file at its path is still the one the host opened.
//!
//! SQLite is one host: a second process on the same file would claim jobs beside the
//! first with no way to tell its leases apart, so it is refused at start. And a file
//! deleted or replaced under a running host would take every later write with it while
//! the host answered as if it had kept them, so writes are refused once it is noticed.

use crate::store::{Error, Fault, Result};
use std::fs::{File, TryLockError};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// An exclusive lock on `DB.lock` beside the database, held for the store's life.
#[derive(Debug)]
pub(super) struct ProcessLock {
    /// Closing the file (dropping it) releases the lock.
    _file: File,
}

impl ProcessLock {
    /// Takes the lock of the database at `db`, and writes this process's id into it.
    ///
    /// # Errors
    /// [`Error::InUse`] when another process holds it.
    pub(super) fn take(db: &Path) -> Result<ProcessLock> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let cannot = |e: std::io::Error| {
            Error::InUse(format!("cannot use the lock file {}: {e}", path.display()))
        };
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(cannot)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(Error::InUse(format!(
                    "database {} is in use by another orchestra process (pid {}): SQLite is \
                     one host; several hosts share Postgres",
                    db.display(),
                    holder.trim()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(cannot(e)),
        }
        file.set_len(0).map_err(cannot)?;
        write!(file, "{}", std::process::id()).map_err(cannot)?;
        Ok(ProcessLock { _file: file })
    }
}

/// Which file a path names: device and inode.
fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

/// Whether the database file is still the one opened.
#[derive(Debug)]
pub(super) struct FileCheck {
    path: PathBuf,
    opened: (u64, u64),
    /// Set while the path names another file, or none.
    replaced: AtomicBool,
}

impl FileCheck {
    /// Remembers the file `path` names now.
    pub(super) fn new(path: &Path) -> Result<FileCheck> {
        let opened = identity(path).map_err(|e| Error::Unavailable {
            fault: Fault::Io,
            detail: format!("cannot read {}: {e}", path.display()),
        })?;
        Ok(FileCheck {
            path: path.to_owned(),
            opened,
            replaced: AtomicBool::new(false),
        })
    }

    /// Looks at the path again; logs (loudly) when what it names changes.
    ///
    /// # Errors
    /// [`Fault::Replaced`] when the path no longer names the opened file.
    pub(super) fn check(&self) -> Result<()> {
        let now = identity(&self.path);
        let replaced = now.as_ref().map_or(true, |id| *id != self.opened);
        let was = self.replaced.swap(replaced, Ordering::Relaxed);
        if replaced && !was {
            tracing::error!(
                db = %self.path.display(),
                "the database file was deleted or replaced: refusing writes until it is back"
            );
        } else if was && !replaced {
            tracing::warn!(db = %self.path.display(), "the database file is back");
        }
        self.known()
    }

    /// Names an I/O fault [`Fault::ReadOnly`] when the database's file system has become
    /// read-only: SQLite reports a write refused that way as an I/O error.
    pub(super) fn refine(&self, e: Error) -> Error {
        match e {
            Error::Unavailable {
                fault: Fault::Io,
                detail,
            } if self.read_only() => Error::Unavailable {
                fault: Fault::ReadOnly,
                detail,
            },
            other => other,
        }
    }

    fn read_only(&self) -> bool {
        File::options()
            .append(true)
            .open(&self.path)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ReadOnlyFilesystem)
    }

    /// The last check's verdict, without looking again.
    pub(super) fn known(&self) -> Result<()> {
        if self.replaced.load(Ordering::Relaxed) {
            Err(Error::Unavailable {
                fault: Fault::Replaced,
                detail: format!("{} is not the file this host opened", self.path.display()),
            })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::disk::Tmpfs;

    #[test]
    fn an_io_fault_on_a_read_only_file_system_is_named_read_only() {
        let disk = Tmpfs::mount("1m");
        let db = disk.path().join("o.db");
        std::fs::write(&db, b"").unwrap();
        let check = FileCheck::new(&db).unwrap();
        let io = || Error::Unavailable {
            fault: Fault::Io,
            detail: "disk I/O error".into(),
        };
        let fault = |e: Error| match e {
            Error::Unavailable { fault, .. } => Some(fault),
            _ => None,
        };
        assert_eq!(fault(check.refine(io())), Some(Fault::Io));
        disk.remount("ro");
        assert_eq!(fault(check.refine(io())), Some(Fault::ReadOnly));
        disk.remount("rw");
        assert_eq!(fault(check.refine(io())), Some(Fault::Io));
    }
}
