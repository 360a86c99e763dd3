//! Compiled components cached on disk, keyed by module digest and engine compatibility,
//! so a restart does not recompile.

use sha2::{Digest, Sha256};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The sha256 of a module, in hex.
pub fn digest(bytes: &[u8]) -> String {
    crate::model::hex(&Sha256::digest(bytes))
}

/// A folder of `.cwasm` files.
#[derive(Debug, Clone)]
pub(super) struct ComponentCache {
    dir: PathBuf,
    /// Tells apart engines whose compiled code is not interchangeable (wasmtime version,
    /// settings, CPU features).
    engine_key: String,
}

impl ComponentCache {
    pub(super) fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// The cached component for `digest`, or `bytes` compiled and cached.
    pub(super) fn load(
        &self,
        engine: &Engine,
        digest: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        let path = self.path(digest);
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring bad cache entry")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled component");
        }
        Ok(component)
    }

    /// Removes the compiled entries of `digest`, for this engine and any other (each
    /// one's file name starts with the digest); a component already loaded from one
    /// keeps working, its mapping outliving the file.
    pub(super) fn remove(&self, digest: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = format!("{digest}-");
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".cwasm") {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(entry = %name, "compiled module removed from the cache")
                    }
                    Err(e) => {
                        tracing::warn!(entry = %name, error = %e, "could not remove a cache entry")
                    }
                }
            }
        }
    }

    /// Writes to a temporary file and renames it, so a reader never maps a partial file.
    fn store(&self, path: &Path, component: &Component) -> wasmtime::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::io::Write::write_all(&mut tmp, &component.serialize()?)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Loads a compiled component this host wrote itself.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file lies in the host's own cache folder, was written by this host
    // through a temporary file and a rename (never rewritten in place while mapped), and
    // its name carries the engine's compatibility hash.
    unsafe { Component::deserialize_file(engine, path) }
}
