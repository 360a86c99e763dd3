//! The rules of a run's repository mount, judged on the host's real paths: nothing named
//! `.git` (at any depth) or under one (even a repository mounted from inside a `.git`)
//! may change, symlinks may only point inside the repository (and directories, which may
//! hold relative ones, never move closer to its root), and writes count against the
//! run's [`DiskQuota`].
//!
//! Where an open file or directory really is comes from `/proc/self/fd` (Linux); when
//! that cannot be told, the place is treated as protected.

use super::disk_quota::DiskQuota;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Most symlinks followed while judging where a new link leads.
const MAX_SYMLINK_HOPS: u32 = 40;

/// One run's repository: its real path and its quota.
#[derive(Debug)]
pub(super) struct RepoGuard {
    root: PathBuf,
    pub(super) quota: Arc<DiskQuota>,
}

impl RepoGuard {
    /// The guard of the repository at `repo` with `quota_bytes` to write.
    ///
    /// # Errors
    /// The repository's real path cannot be found.
    pub(super) fn new(repo: &Path, quota_bytes: u64) -> std::io::Result<Self> {
        Ok(Self {
            root: std::fs::canonicalize(repo)?,
            quota: Arc::new(DiskQuota::new(quota_bytes)),
        })
    }

    /// Whether the open file or directory `file` is, or lies under, a `.git` (or its place
    /// is unknown): what it holds must not change.
    pub(super) fn is_protected(&self, file: &File) -> bool {
        real_path(file).is_none_or(|path| !self.is_writable_path(&path))
    }

    /// Whether a symlink holding `target`, created in the open directory `dir`, would
    /// lead to a place inside the repository and outside every `.git`.
    pub(super) fn link_allowed(&self, dir: &File, target: &str) -> bool {
        let target = Path::new(target);
        if target.is_absolute() {
            return false;
        }
        let Some(dir) = real_path(dir) else {
            return false;
        };
        let mut hops = 0;
        resolve(dir, target, Some(&self.root), &mut hops)
            .is_some_and(|place| self.is_writable_path(&place))
    }

    /// Whether a directory may move from the open directory `from` to the open directory
    /// `to`: not closer to the root, where a relative symlink inside it that leads to
    /// the repository now could lead out of it.
    pub(super) fn dir_may_move(&self, from: &File, to: &File) -> bool {
        match (real_path(from), real_path(to)) {
            (Some(from), Some(to)) => to.components().count() >= from.components().count(),
            _ => false,
        }
    }

    /// Whether the real path `path` lies inside the repository and outside every `.git`
    /// (also one the repository itself lies in).
    fn is_writable_path(&self, path: &Path) -> bool {
        path.starts_with(&self.root)
            && !path
                .components()
                .any(|c| matches!(c, Component::Normal(name) if is_git(name)))
    }
}

/// Whether an entry's name is `.git` (in any case, for case-insensitive filesystems).
pub(super) fn is_git(name: &OsStr) -> bool {
    name.eq_ignore_ascii_case(".git")
}

/// The real path of an open file or directory.
fn real_path(file: &File) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

/// Where `target` leads when read from the real directory `from`: symlinks met on the
/// way are followed as the host would, missing components taken as they are. `None`
/// when it climbs above `/`, follows too many symlinks, or (with `within`) leaves that
/// directory at any step.
fn resolve(from: PathBuf, target: &Path, within: Option<&Path>, hops: &mut u32) -> Option<PathBuf> {
    let mut place = from;
    for component in target.components() {
        match component {
            Component::CurDir => continue,
            Component::ParentDir => {
                if !place.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => place = PathBuf::from("/"),
            Component::Normal(name) => {
                place.push(name);
                let Ok(link) = std::fs::read_link(&place) else {
                    continue;
                };
                *hops += 1;
                if *hops > MAX_SYMLINK_HOPS {
                    return None;
                }
                place.pop();
                place = resolve(place, &link, None, hops)?;
            }
        }
        if within.is_some_and(|dir| !place.starts_with(dir)) {
            return None;
        }
    }
    Some(place)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A repository `repo/` (with `.git/` and `sub/`) in a fresh directory, and its guard.
    fn repository() -> (tempfile::TempDir, RepoGuard) {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(repo.join("sub")).unwrap();
        let guard = RepoGuard::new(&repo, 1 << 20).unwrap();
        (dir, guard)
    }

    fn open(path: &Path) -> File {
        File::open(path).unwrap()
    }

    #[test]
    fn git_and_what_lies_under_it_are_protected() {
        let (_dir, guard) = repository();
        let root = guard.root.clone();
        assert!(!guard.is_protected(&open(&root)));
        assert!(!guard.is_protected(&open(&root.join("sub"))));
        assert!(guard.is_protected(&open(&root.join(".git"))));
        std::fs::create_dir(root.join(".git/hooks")).unwrap();
        assert!(guard.is_protected(&open(&root.join(".git/hooks"))));
        std::fs::create_dir(root.join("sub/.GIT")).unwrap();
        assert!(guard.is_protected(&open(&root.join("sub/.GIT"))));
        assert!(guard.is_protected(&open(root.parent().unwrap())), "outside");

        let inside_git = RepoGuard::new(&root.join(".git"), 1).unwrap();
        assert!(inside_git.is_protected(&open(&root.join(".git/hooks"))));
    }

    #[test]
    fn links_must_lead_inside_and_not_into_git() {
        let (_dir, guard) = repository();
        let root = guard.root.clone();
        let sub = open(&root.join("sub"));
        assert!(guard.link_allowed(&sub, "../README"));
        assert!(guard.link_allowed(&sub, "missing/../../x"));
        assert!(guard.link_allowed(&sub, ".."));
        assert!(!guard.link_allowed(&sub, "/etc/passwd"));
        assert!(!guard.link_allowed(&sub, "../.."));
        assert!(!guard.link_allowed(&sub, "../../repo2/x"));
        assert!(
            !guard.link_allowed(&sub, "../../repo/x"),
            "not even through the parent"
        );
        assert!(!guard.link_allowed(&sub, "../.git/config"));
        assert!(!guard.link_allowed(&sub, "../.git"));
        // Existing symlinks on the way are followed.
        symlink("/etc", root.join("etc")).unwrap();
        assert!(!guard.link_allowed(&sub, "../etc/passwd"));
        symlink(".git", root.join("g")).unwrap();
        assert!(!guard.link_allowed(&sub, "../g/config"));
        symlink("sub/deep", root.join("d")).unwrap();
        assert!(!guard.link_allowed(&sub, "../d/../../.."));
        assert!(guard.link_allowed(&sub, "../d/../x"));
    }

    #[test]
    fn directories_may_not_move_closer_to_the_root() {
        let (_dir, guard) = repository();
        let root = guard.root.clone();
        std::fs::create_dir(root.join("other")).unwrap();
        let (top, sub, other) = (
            open(&root),
            open(&root.join("sub")),
            open(&root.join("other")),
        );
        assert!(guard.dir_may_move(&top, &top));
        assert!(guard.dir_may_move(&sub, &other));
        assert!(guard.dir_may_move(&top, &sub));
        assert!(!guard.dir_may_move(&sub, &top));
    }
}
