//! `wasi:filesystem/types` as guests see it: wasmtime-wasi's implementation with the
//! repository's rules ([`RepoGuard`]) in front of every call that changes something.
//!
//! - An operation on a path first opens the directory that holds the path's last
//!   component (wasmtime-wasi resolves it, sandboxed as ever), judges that directory by
//!   its real place, then runs on it with just the last name: no `..`, symlink or
//!   concurrent rename can move the change elsewhere afterwards.
//! - Whatever is opened under a `.git` gets read-only permissions, so wasmtime-wasi
//!   itself refuses writes, resizes and changes through it; an open for writing there
//!   is refused at once.
//! - New symlinks (also a symlink moved or hard-linked to a new place) must lead inside
//!   the repository and outside `.git`; a directory never moves closer to the root,
//!   which could make a relative symlink inside it lead out.
//! - Bytes written count against the run's disk quota.
//!
//! A run without a repository has no guard: every call goes straight through.

use super::disk_quota::QuotaStream;
use super::host::RunState;
use super::repo_guard::{RepoGuard, is_git};
use std::ffi::OsStr;
use wasmtime::component::{HasData, Linker, Resource, ResourceTableError};
use wasmtime_wasi::FsPerms;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, Descriptor, DescriptorFlags, DirectoryEntryStream, ErrorCode, HostDescriptor,
    HostDirectoryEntryStream, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};

/// Most symlinks a changing open follows before it gives up (`loop`).
const MAX_SYMLINK_HOPS: usize = 40;

/// Links `wasi:filesystem/types` through [`RepoFsView`], in place of the plain
/// implementation `wasmtime_wasi::p2::add_to_linker_async` linked.
pub(super) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = types::add_to_linker::<RunState, RepoFs>(linker, view);
    linker.allow_shadowing(false);
    linked
}

fn view(state: &mut RunState) -> RepoFsView<'_> {
    RepoFsView {
        fs: WasiFilesystemCtxView {
            ctx: state.wasi.filesystem(),
            table: &mut state.table,
        },
        guard: state.repo.as_ref(),
    }
}

/// The [`HasData`] of the guarded filesystem.
struct RepoFs;

impl HasData for RepoFs {
    type Data<'a> = RepoFsView<'a>;
}

/// wasmtime-wasi's filesystem view and the run's guard, if it has a repository.
struct RepoFsView<'a> {
    fs: WasiFilesystemCtxView<'a>,
    guard: Option<&'a RepoGuard>,
}

/// Where a path operation runs: an open directory and the name in it.
struct Place {
    dir: Resource<Descriptor>,
    /// Whether `dir` was opened for this operation (and is closed after it).
    opened: bool,
    name: String,
}

impl Place {
    fn dir(&self) -> Resource<Descriptor> {
        borrow(&self.dir)
    }
}

fn borrow(fd: &Resource<Descriptor>) -> Resource<Descriptor> {
    Resource::new_borrow(fd.rep())
}

/// Splits `path` into the directory part and the last name (trailing slashes kept).
/// The last name may not be `.` or `..`, and the path may not be absolute.
fn split(path: &str) -> FsResult<(&str, &str)> {
    if path.starts_with('/') {
        return Err(ErrorCode::NotPermitted.into());
    }
    let trimmed = path.trim_end_matches('/');
    let (dir, name) = match trimmed.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    };
    match name.trim_end_matches('/') {
        "" | "." | ".." => Err(ErrorCode::Invalid.into()),
        _ => Ok((dir, name)),
    }
}

impl<'a> RepoFsView<'a> {
    /// The host file behind `fd`.
    fn host_file(&self, fd: &Resource<Descriptor>) -> Result<&std::fs::File, ResourceTableError> {
        Ok(match self.fs.table.get(fd)? {
            Descriptor::Dir(dir) => &dir.dir,
            Descriptor::File(file) => &file.file,
        })
    }

    /// Opens the directory holding `path` (relative to `fd`) and checks that the entry
    /// may change: not named `.git`, not under a `.git`.
    async fn place(
        &mut self,
        guard: &RepoGuard,
        fd: &Resource<Descriptor>,
        path: &str,
    ) -> FsResult<Place> {
        let (dir, name) = split(path)?;
        let place = if dir.is_empty() {
            Place {
                dir: borrow(fd),
                opened: false,
                name: name.to_owned(),
            }
        } else {
            let dir = HostDescriptor::open_at(
                &mut self.fs,
                borrow(fd),
                PathFlags::SYMLINK_FOLLOW,
                dir.to_owned(),
                OpenFlags::DIRECTORY,
                DescriptorFlags::READ,
            )
            .await?;
            Place {
                dir,
                opened: true,
                name: name.to_owned(),
            }
        };
        let name = OsStr::new(place.name.trim_end_matches('/'));
        if is_git(name) || guard.is_protected(self.host_file(&place.dir)?) {
            self.release(place)?;
            return Err(ErrorCode::ReadOnly.into());
        }
        Ok(place)
    }

    /// Like [`RepoFsView::place`], but with `follow` a symlink in the last place is
    /// followed (by its target text, judged again) until a place that is not one.
    async fn place_following(
        &mut self,
        guard: &RepoGuard,
        fd: &Resource<Descriptor>,
        mut path: String,
        follow: bool,
    ) -> FsResult<Place> {
        for _ in 0..MAX_SYMLINK_HOPS {
            let place = self.place(guard, fd, &path).await?;
            if !follow {
                return Ok(place);
            }
            let link = HostDescriptor::readlink_at(&mut self.fs, place.dir(), place.name.clone());
            let Ok(target) = link.await else {
                return Ok(place);
            };
            self.release(place)?;
            let (dir, _) = split(&path)?;
            path = if dir.is_empty() {
                target
            } else {
                format!("{dir}/{target}")
            };
        }
        Err(ErrorCode::Loop.into())
    }

    /// Closes the directory a [`Place`] opened.
    fn release(&mut self, place: Place) -> Result<(), ResourceTableError> {
        if place.opened {
            self.fs.table.delete(place.dir)?;
        }
        Ok(())
    }

    /// The places of a rename or hard link from `old` (under `fd`) to `new` (under
    /// `new_fd`): both must be allowed to change, a symlink may only go where its
    /// target would be allowed, and a directory not closer to the root.
    async fn places_of_move(
        &mut self,
        guard: &RepoGuard,
        (fd, old): (&Resource<Descriptor>, &str),
        (new_fd, new): (&Resource<Descriptor>, &str),
    ) -> FsResult<(Place, Place)> {
        let from = self.place(guard, fd, old).await?;
        let to = match self.place(guard, new_fd, new).await {
            Ok(to) => to,
            Err(e) => {
                self.release(from)?;
                return Err(e);
            }
        };
        if let Err(e) = self.check_move(guard, &from, &to).await {
            self.release(from)?;
            self.release(to)?;
            return Err(e);
        }
        Ok((from, to))
    }

    /// Refuses to move or link the entry at `from` to `to` when it is a symlink whose
    /// target would not be allowed there, or a directory that would come closer to the
    /// root.
    async fn check_move(&mut self, guard: &RepoGuard, from: &Place, to: &Place) -> FsResult<()> {
        let name = from.name.clone();
        let stat = HostDescriptor::stat_at(&mut self.fs, from.dir(), PathFlags::empty(), name);
        let allowed = match stat.await.map(|stat| stat.type_) {
            Ok(types::DescriptorType::SymbolicLink) => {
                let link = HostDescriptor::readlink_at(&mut self.fs, from.dir(), from.name.clone());
                let target = link.await?;
                guard.link_allowed(self.host_file(&to.dir)?, &target)
            }
            Ok(types::DescriptorType::Directory) => {
                guard.dir_may_move(self.host_file(&from.dir)?, self.host_file(&to.dir)?)
            }
            _ => true,
        };
        if allowed {
            Ok(())
        } else {
            Err(ErrorCode::NotPermitted.into())
        }
    }

    /// Makes a just opened descriptor read-only if it lies under a `.git`; one opened
    /// for writing there is closed and refused.
    fn seal(
        &mut self,
        guard: &RepoGuard,
        opened: Resource<Descriptor>,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        if !guard.is_protected(self.host_file(&opened)?) {
            return Ok(opened);
        }
        if flags.contains(DescriptorFlags::WRITE) {
            self.fs.table.delete(opened)?;
            return Err(ErrorCode::ReadOnly.into());
        }
        match self.fs.table.get_mut(&opened)? {
            Descriptor::Dir(dir) => dir.perms = FsPerms::ReadOnly,
            Descriptor::File(file) => file.perms = FsPerms::ReadOnly,
        }
        Ok(opened)
    }

    /// The guard whose quota a change of the file `fd` counts against: none without a
    /// repository, or when wasmtime-wasi will refuse the change anyway.
    fn quota_guard(
        &self,
        fd: &Resource<Descriptor>,
    ) -> Result<Option<&'a RepoGuard>, ResourceTableError> {
        Ok(match self.fs.table.get(fd)? {
            Descriptor::File(file) if !file.perms.write_not_permitted() => self.guard,
            _ => None,
        })
    }

    /// Wraps a file's new output stream so its writes count against the quota.
    fn count_writes(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let Some(guard) = self.guard else {
            return Ok(stream);
        };
        let inner = self.fs.table.delete(stream)?;
        let counted = QuotaStream::wrap(inner, guard.quota.clone());
        Ok(self.fs.table.push(counted)?)
    }
}

impl types::Host for RepoFsView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.fs, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.fs, err)
    }
}

impl HostDescriptor for RepoFsView<'_> {
    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        HostDescriptor::advise(&mut self.fs, fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        HostDescriptor::sync_data(&mut self.fs, fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags> {
        HostDescriptor::get_flags(&mut self.fs, fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorType> {
        HostDescriptor::get_type(&mut self.fs, fd).await
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: types::Filesize) -> FsResult<()> {
        let Some(guard) = self.quota_guard(&fd)? else {
            return HostDescriptor::set_size(&mut self.fs, fd, size).await;
        };
        let current = HostDescriptor::stat(&mut self.fs, borrow(&fd)).await?.size;
        let growth = size.saturating_sub(current);
        if !guard.quota.take(growth) {
            return Err(ErrorCode::InsufficientSpace.into());
        }
        let resized = HostDescriptor::set_size(&mut self.fs, fd, size).await;
        if resized.is_err() {
            guard.quota.give_back(growth);
        }
        resized
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times(&mut self.fs, fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        HostDescriptor::read(&mut self.fs, fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        let Some(guard) = self.quota_guard(&fd)? else {
            return HostDescriptor::write(&mut self.fs, fd, buf, offset).await;
        };
        let len = buf.len() as u64;
        if !guard.quota.take(len) {
            return Err(ErrorCode::InsufficientSpace.into());
        }
        let written = HostDescriptor::write(&mut self.fs, fd, buf, offset).await;
        let unwritten = len - written.as_ref().map_or(0, |n| (*n).min(len));
        guard.quota.give_back(unwritten);
        written
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DirectoryEntryStream>> {
        HostDescriptor::read_directory(&mut self.fs, fd).await
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        HostDescriptor::sync(&mut self.fs, fd).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let Some(guard) = self.guard else {
            return HostDescriptor::create_directory_at(&mut self.fs, fd, path).await;
        };
        let place = self.place(guard, &fd, &path).await?;
        let made =
            HostDescriptor::create_directory_at(&mut self.fs, place.dir(), place.name.clone());
        let made = made.await;
        self.release(place)?;
        made
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorStat> {
        HostDescriptor::stat(&mut self.fs, fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        HostDescriptor::stat_at(&mut self.fs, fd, path_flags, path).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        let Some(guard) = self.guard else {
            return HostDescriptor::set_times_at(&mut self.fs, fd, path_flags, path, atim, mtim)
                .await;
        };
        let follow = path_flags.contains(PathFlags::SYMLINK_FOLLOW);
        let place = self.place_following(guard, &fd, path, follow).await?;
        let name = place.name.clone();
        let set = HostDescriptor::set_times_at(
            &mut self.fs,
            place.dir(),
            PathFlags::empty(),
            name,
            atim,
            mtim,
        )
        .await;
        self.release(place)?;
        set
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: PathFlags,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let Some(guard) = self.guard else {
            return HostDescriptor::link_at(
                &mut self.fs,
                fd,
                old_path_flags,
                old_path,
                new_descriptor,
                new_path,
            )
            .await;
        };
        let (from, to) = self
            .places_of_move(guard, (&fd, &old_path), (&new_descriptor, &new_path))
            .await?;
        let linked = HostDescriptor::link_at(
            &mut self.fs,
            from.dir(),
            old_path_flags,
            from.name.clone(),
            to.dir(),
            to.name.clone(),
        )
        .await;
        self.release(from)?;
        self.release(to)?;
        linked
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        oflags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let Some(guard) = self.guard else {
            return HostDescriptor::open_at(&mut self.fs, fd, path_flags, path, oflags, flags)
                .await;
        };
        let opened = if oflags.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE) {
            // `exclusive` never follows a symlink in the last place.
            let follow = path_flags.contains(PathFlags::SYMLINK_FOLLOW)
                && !oflags.contains(OpenFlags::EXCLUSIVE);
            let place = self.place_following(guard, &fd, path, follow).await?;
            let name = place.name.clone();
            let opened = HostDescriptor::open_at(
                &mut self.fs,
                place.dir(),
                PathFlags::empty(),
                name,
                oflags,
                flags,
            )
            .await;
            self.release(place)?;
            opened?
        } else {
            HostDescriptor::open_at(&mut self.fs, fd, path_flags, path, oflags, flags).await?
        };
        self.seal(guard, opened, flags)
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        HostDescriptor::drop(&mut self.fs, fd)
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        HostDescriptor::readlink_at(&mut self.fs, fd, path).await
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let Some(guard) = self.guard else {
            return HostDescriptor::remove_directory_at(&mut self.fs, fd, path).await;
        };
        let place = self.place(guard, &fd, &path).await?;
        let removed =
            HostDescriptor::remove_directory_at(&mut self.fs, place.dir(), place.name.clone())
                .await;
        self.release(place)?;
        removed
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let Some(guard) = self.guard else {
            return HostDescriptor::rename_at(&mut self.fs, fd, old_path, new_fd, new_path).await;
        };
        let (from, to) = self
            .places_of_move(guard, (&fd, &old_path), (&new_fd, &new_path))
            .await?;
        let renamed = HostDescriptor::rename_at(
            &mut self.fs,
            from.dir(),
            from.name.clone(),
            to.dir(),
            to.name.clone(),
        )
        .await;
        self.release(from)?;
        self.release(to)?;
        renamed
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        let Some(guard) = self.guard else {
            return HostDescriptor::symlink_at(&mut self.fs, fd, src_path, dest_path).await;
        };
        let place = self.place(guard, &fd, &dest_path).await?;
        let linked = if guard.link_allowed(self.host_file(&place.dir)?, &src_path) {
            HostDescriptor::symlink_at(&mut self.fs, place.dir(), src_path, place.name.clone())
                .await
        } else {
            Err(ErrorCode::NotPermitted.into())
        };
        self.release(place)?;
        linked
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let Some(guard) = self.guard else {
            return HostDescriptor::unlink_file_at(&mut self.fs, fd, path).await;
        };
        let place = self.place(guard, &fd, &path).await?;
        let removed =
            HostDescriptor::unlink_file_at(&mut self.fs, place.dir(), place.name.clone()).await;
        self.release(place)?;
        removed
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        HostDescriptor::read_via_stream(&mut self.fs, fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let stream = HostDescriptor::write_via_stream(&mut self.fs, fd, offset)?;
        self.count_writes(stream)
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let stream = HostDescriptor::append_via_stream(&mut self.fs, fd)?;
        self.count_writes(stream)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        HostDescriptor::is_same_object(&mut self.fs, a, b).await
    }

    async fn metadata_hash(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash(&mut self.fs, fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash_at(&mut self.fs, fd, path_flags, path).await
    }
}

impl HostDirectoryEntryStream for RepoFsView<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        HostDirectoryEntryStream::read_directory_entry(&mut self.fs, stream).await
    }

    fn drop(&mut self, stream: Resource<DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.fs, stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_a_directory_and_a_last_name() {
        assert_eq!(split("a").unwrap(), ("", "a"));
        assert_eq!(split("a/b/c").unwrap(), ("a/b", "c"));
        assert_eq!(split("a/b/").unwrap(), ("a", "b/"));
        assert_eq!(split("../x").unwrap(), ("..", "x"));
        for refused in ["", "/", "/etc/x", "a/..", "a/.", "..", "./"] {
            assert!(split(refused).is_err(), "{refused}");
        }
    }
}
