//! Keeps the [`Registry`] in step with the plugin folder: modules added, replaced or
//! removed are loaded, reloaded or unloaded while the host runs.
//!
//! File events wake the loader (debounced, since copies land in pieces); a poll every
//! second catches whatever events miss. A file is reread only when its size or
//! modification time changed, and recompiled only when its digest did.
//!
//! A scan only reads: a new or changed module is registered as compiling at once (its
//! manifest already read), and compiled in the background, as many at a time as the
//! machine has cores, so that a large module never holds up the others or the API.
//! When a module leaves the folder (replaced or removed), its compiled entries leave the
//! runtime's cache, unless another plugin of the folder has the same module.

use super::load::{is_plugin_name, load, settings};
use super::{Compiling, Registry};
use crate::model::limits::Maxima;
use crate::runtime::{Runtime, digest};
use notify::{RecursiveMode, Watcher};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Quiet time after a file event before the folder is read.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// How often the folder is read even without events.
const POLL: Duration = Duration::from_secs(1);

/// Changes kept for a listener that falls behind.
const CHANGES_KEPT: usize = 256;

/// A change the loader made to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A version of plugin `name` was loaded: new jobs run it.
    Loaded {
        /// The plugin.
        name: String,
        /// sha256 of its module.
        digest: String,
    },
    /// Plugin `name`'s latest module or manifest could not be loaded.
    Failed {
        /// The plugin.
        name: String,
        /// Why.
        error: String,
    },
    /// Plugin `name`'s module left the folder: new jobs of it are refused.
    Removed {
        /// The plugin.
        name: String,
    },
}

/// Size and modification time of a file.
type Stamp = Option<(u64, SystemTime)>;

/// What the loader last saw of one plugin's files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    wasm: Stamp,
    manifest: Stamp,
}

/// Loads plugins from one folder into a registry.
#[derive(Debug)]
pub struct Loader {
    dir: PathBuf,
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    /// The operator's ceilings on every plugin's limits.
    maxima: Maxima,
    seen: Mutex<HashMap<String, Seen>>,
    /// The digest of each plugin's module as last read from the folder.
    digests: Mutex<HashMap<String, String>>,
    /// One permit per module compiled at once.
    compilers: Arc<Semaphore>,
    /// Every change made, for whoever listens.
    changes: broadcast::Sender<Change>,
}

/// A module to compile for a plugin.
struct Compile {
    name: String,
    bytes: Vec<u8>,
    compiling: Compiling,
}

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// A plugin name is the module's file stem (see [`is_plugin_name`]).
fn plugin_name(path: &Path) -> Option<String> {
    if path.extension()? != "wasm" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    is_plugin_name(stem).then(|| stem.to_owned())
}

impl Loader {
    /// A loader for `dir` (created if missing) whose plugins' limits are held to
    /// `maxima`.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn new(
        dir: PathBuf,
        runtime: Arc<Runtime>,
        registry: Arc<Registry>,
        maxima: Maxima,
    ) -> std::io::Result<Loader> {
        std::fs::create_dir_all(&dir)?;
        Ok(Loader {
            dir,
            runtime,
            registry,
            maxima,
            seen: Mutex::default(),
            digests: Mutex::default(),
            compilers: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            changes: broadcast::channel(CHANGES_KEPT).0,
        })
    }

    /// The changes the loader makes from now on (a listener that falls more than 256
    /// behind misses the oldest).
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Logs `change` and tells listeners of it (none listening is fine).
    fn tell(&self, change: Change) {
        match &change {
            Change::Loaded { name, digest } => {
                tracing::info!(plugin = %name, %digest, "plugin loaded");
            }
            Change::Failed { name, error } => {
                tracing::warn!(plugin = %name, %error, "plugin failed to load");
            }
            Change::Removed { name } => tracing::info!(plugin = %name, "plugin unloaded"),
        }
        let _ = self.changes.send(change);
    }

    /// Reads the folder and applies every change: removals at once, new and changed
    /// modules registered as compiling and compiled in the background (on the tokio
    /// runtime this is called from). Reads files, so call it off the async threads.
    /// Returns how many plugins changed.
    pub fn scan(self: &Arc<Self>) -> usize {
        // By name, so plugins load in the same order on every start.
        let names = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter_map(|e| plugin_name(&e.path()))
                .collect::<std::collections::BTreeSet<_>>(),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read plugin folder");
                return 0;
            }
        };
        let mut changed = 0;
        let previous: Vec<String> = self
            .seen
            .lock()
            .expect("loader lock poisoned")
            .keys()
            .cloned()
            .collect();
        for gone in previous.iter().filter(|name| !names.contains(*name)) {
            self.seen.lock().expect("loader lock poisoned").remove(gone);
            self.note_digest(gone, None);
            self.registry.remove(gone);
            self.tell(Change::Removed { name: gone.clone() });
            changed += 1;
        }
        for name in names {
            let wasm = self.dir.join(format!("{name}.wasm"));
            let toml = self.dir.join(format!("{name}.toml"));
            let now = Seen {
                wasm: stamp(&wasm),
                manifest: stamp(&toml),
            };
            let mut seen = self.seen.lock().expect("loader lock poisoned");
            if seen.get(&name) == Some(&now) {
                continue;
            }
            seen.insert(name.clone(), now);
            drop(seen);
            match self.read(&name, &wasm, &toml) {
                Ok(None) => {}
                Ok(Some(compile)) => {
                    tracing::info!(plugin = %name, digest = %compile.compiling.digest, "plugin compiling");
                    self.registry.compiling(&name, compile.compiling.clone());
                    tokio::spawn(self.clone().compile(compile));
                    changed += 1;
                }
                Err(error) => {
                    self.registry.set_error(&name, error.clone());
                    self.tell(Change::Failed { name, error });
                    changed += 1;
                }
            }
        }
        changed
    }

    /// Records that `name`'s module in the folder is now `digest` (`None`: gone), and
    /// drops the compiled entries of the module it replaces if no plugin has it any more.
    fn note_digest(&self, name: &str, digest: Option<&str>) {
        let mut digests = self.digests.lock().expect("loader lock poisoned");
        let old = match digest {
            Some(digest) => digests.insert(name.to_owned(), digest.to_owned()),
            None => digests.remove(name),
        };
        let stale = old.filter(|old| {
            Some(old.as_str()) != digest && !digests.values().any(|other| other == old)
        });
        drop(digests);
        if let Some(stale) = stale {
            self.runtime.evict(&stale);
        }
    }

    /// Reads a plugin's module and manifest; `None` when nothing that matters changed.
    fn read(&self, name: &str, wasm: &Path, toml: &Path) -> Result<Option<Compile>, String> {
        let bytes =
            std::fs::read(wasm).map_err(|e| format!("cannot read {}: {e}", wasm.display()))?;
        let digest = digest(&bytes);
        self.note_digest(name, Some(&digest));
        let settings = settings(wasm, &bytes, toml, &self.maxima)?;
        let compiling = Compiling { digest, settings };
        let unchanged = self.registry.status(name).is_some_and(|status| {
            status.compiling.as_ref() == Some(&compiling)
                || (status.error.is_none()
                    && status.compiling.is_none()
                    && status.current.is_some_and(|c| {
                        c.digest == compiling.digest && c.settings == compiling.settings
                    }))
        });
        Ok((!unchanged).then(|| Compile {
            name: name.to_owned(),
            bytes,
            compiling,
        }))
    }

    /// Compiles one module when a compiler is free, and makes it the plugin's version,
    /// unless it was replaced or removed meanwhile.
    async fn compile(self: Arc<Self>, compile: Compile) {
        let _permit = self
            .compilers
            .clone()
            .acquire_owned()
            .await
            .expect("the compile semaphore is never closed");
        let Compile {
            name,
            bytes,
            compiling,
        } = compile;
        let (loader, plugin, built) = (self.clone(), name.clone(), compiling.clone());
        let outcome =
            tokio::task::spawn_blocking(move || load(&loader.runtime, plugin, &bytes, built))
                .await
                .unwrap_or_else(|e| Err(format!("compiling panicked: {e}")));
        let change = match &outcome {
            Ok(plugin) => Change::Loaded {
                name: name.clone(),
                digest: plugin.digest.clone(),
            },
            Err(error) => Change::Failed {
                name: name.clone(),
                error: error.clone(),
            },
        };
        if self.registry.finish(&name, &compiling, outcome) {
            self.tell(change);
        }
    }

    /// Watches the folder until `shutdown`, applying changes as they come.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let (tx, mut events) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |_| {
            let _ = tx.send(());
        })
        .and_then(|mut watcher| {
            watcher.watch(&self.dir, RecursiveMode::NonRecursive)?;
            Ok(watcher)
        });
        if let Err(e) = &watcher {
            tracing::warn!(error = %e, "file events unavailable; polling the plugin folder");
        }
        let mut poll = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(()) = events.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    while events.try_recv().is_ok() {}
                }
                _ = poll.tick() => {}
            }
            let loader = self.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || loader.scan()).await {
                tracing::error!(error = %e, "plugin scan panicked");
            }
        }
        drop(watcher);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::names::MAX_NAME_CHARS;

    #[test]
    fn plugin_names_come_from_wasm_file_stems() {
        assert_eq!(
            plugin_name(Path::new("/p/echo.wasm")).as_deref(),
            Some("echo")
        );
        assert_eq!(
            plugin_name(Path::new("/p/task-exec_2.wasm")).as_deref(),
            Some("task-exec_2")
        );
        assert_eq!(plugin_name(Path::new("/p/echo.toml")), None);
        assert_eq!(plugin_name(Path::new("/p/bad name.wasm")), None);
        assert_eq!(plugin_name(Path::new("/p/.wasm")), None);
        let long = format!("/p/{}.wasm", "a".repeat(MAX_NAME_CHARS + 1));
        assert_eq!(plugin_name(Path::new(&long)), None);
    }
}
