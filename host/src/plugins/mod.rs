//! The plugin folder: every `NAME.wasm` (with an optional `NAME.toml`) is plugin `NAME`.
//!
//! The [`Registry`] maps names to the version new jobs get. A job keeps the `Arc<Plugin>`
//! it started with, so replacing a module never disturbs a running job. The [`watch`]
//! loader keeps the registry in step with the folder.

pub mod manifest;
pub mod watch;

use crate::model::Millis;
use crate::runtime::Prepared;
use manifest::Settings;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// One loaded version of a plugin.
#[derive(Debug)]
pub struct Plugin {
    /// The plugin's name (its file stem).
    pub name: String,
    /// sha256 of the module.
    pub digest: String,
    /// When this version was loaded.
    pub loaded_at: Millis,
    /// Settings from its manifest.
    pub settings: Settings,
    /// The compiled, linked component.
    pub prepared: Prepared,
}

/// A plugin as `GET /api/plugins` shows it.
#[derive(Debug, Clone)]
pub struct PluginStatus {
    /// The name.
    pub name: String,
    /// The version jobs run, if any loaded.
    pub current: Option<Arc<Plugin>>,
    /// Why the latest module or manifest could not be loaded, if it could not.
    pub error: Option<String>,
}

/// Plugins by name.
#[derive(Debug, Default)]
pub struct Registry {
    /// Short critical sections only (no `.await` under the lock).
    plugins: RwLock<BTreeMap<String, PluginStatus>>,
}

impl Registry {
    /// The version new jobs of `name` run, if loaded.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        let plugins = self.plugins.read().expect("registry lock poisoned");
        plugins.get(name).and_then(|status| status.current.clone())
    }

    /// The version new jobs of `name` run, or why there is none (naming the loaded
    /// plugins). A name longer than any plugin's is refused as such.
    pub fn require(&self, name: &str) -> Result<Arc<Plugin>, String> {
        crate::model::names::check_length("plugin", name)?;
        self.get(name).ok_or_else(|| {
            let loaded: Vec<String> = self
                .list()
                .into_iter()
                .filter(|p| p.current.is_some())
                .map(|p| p.name)
                .collect();
            format!("unknown plugin `{name}` (loaded: {})", loaded.join(", "))
        })
    }

    /// One plugin's status.
    pub fn status(&self, name: &str) -> Option<PluginStatus> {
        let plugins = self.plugins.read().expect("registry lock poisoned");
        plugins.get(name).cloned()
    }

    /// Every plugin, loaded or broken, by name.
    pub fn list(&self) -> Vec<PluginStatus> {
        let plugins = self.plugins.read().expect("registry lock poisoned");
        plugins.values().cloned().collect()
    }

    /// Makes `plugin` the version new jobs of its name run.
    pub fn insert(&self, plugin: Plugin) {
        let mut plugins = self.plugins.write().expect("registry lock poisoned");
        let name = plugin.name.clone();
        plugins.insert(
            name.clone(),
            PluginStatus {
                name,
                current: Some(Arc::new(plugin)),
                error: None,
            },
        );
    }

    /// Records that `name`'s latest module could not be loaded; a version already loaded
    /// keeps serving.
    pub fn set_error(&self, name: &str, error: String) {
        let mut plugins = self.plugins.write().expect("registry lock poisoned");
        let status = plugins
            .entry(name.to_owned())
            .or_insert_with(|| PluginStatus {
                name: name.to_owned(),
                current: None,
                error: None,
            });
        status.error = Some(error);
    }

    /// Unloads `name`: new jobs for it are refused; running ones finish.
    pub fn remove(&self, name: &str) {
        self.plugins
            .write()
            .expect("registry lock poisoned")
            .remove(name);
    }
}
