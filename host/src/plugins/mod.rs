//! The plugin folder: every `NAME.wasm` (with an optional `NAME.toml`) is plugin `NAME`.
//!
//! The [`Registry`] maps names to the version new jobs get. A job keeps the `Arc<Plugin>`
//! it started with, so replacing a module never disturbs a running job. The [`watch`]
//! loader keeps the registry in step with the folder: it names a plugin as soon as it sees
//! its module, [`Compiling`] until the module is ready, so jobs for it are accepted at
//! once and wait.

pub mod load;
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

/// A module being compiled: what is known of it before its code is ready.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiling {
    /// sha256 of the module.
    pub digest: String,
    /// Settings from its manifest.
    pub settings: Settings,
}

/// A plugin as `GET /api/plugins` shows it.
#[derive(Debug, Clone)]
pub struct PluginStatus {
    /// The name.
    pub name: String,
    /// The version jobs run, if any loaded.
    pub current: Option<Arc<Plugin>>,
    /// The module being compiled, if any: it replaces `current` once ready.
    pub compiling: Option<Compiling>,
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

    /// The settings new jobs of `name` take: the loaded version's, else those of the
    /// module being compiled; `None` when neither is there.
    pub fn settings(&self, name: &str) -> Option<Settings> {
        let plugins = self.plugins.read().expect("registry lock poisoned");
        let status = plugins.get(name)?;
        match (&status.current, &status.compiling) {
            (Some(current), _) => Some(current.settings.clone()),
            (None, Some(compiling)) => Some(compiling.settings.clone()),
            (None, None) => None,
        }
    }

    /// The settings new jobs of `name` take (its jobs are accepted while its module
    /// compiles, and wait for it), or why there are none (naming the known plugins). A
    /// name longer than any plugin's is refused as such.
    pub fn require(&self, name: &str) -> Result<Settings, String> {
        crate::model::names::check_length("plugin", name)?;
        self.settings(name).ok_or_else(|| {
            let known: Vec<String> = self
                .list()
                .into_iter()
                .filter(|p| p.current.is_some() || p.compiling.is_some())
                .map(|p| p.name)
                .collect();
            format!("unknown plugin `{name}` (loaded: {})", known.join(", "))
        })
    }

    /// The plugins whose jobs wait: compiling, with no version loaded yet.
    pub fn waiting(&self) -> Vec<String> {
        let plugins = self.plugins.read().expect("registry lock poisoned");
        plugins
            .values()
            .filter(|status| status.current.is_none() && status.compiling.is_some())
            .map(|status| status.name.clone())
            .collect()
    }

    /// One plugin's status.
    pub fn status(&self, name: &str) -> Option<PluginStatus> {
        let plugins = self.plugins.read().expect("registry lock poisoned");
        plugins.get(name).cloned()
    }

    /// Every plugin, loaded, compiling or broken, by name.
    pub fn list(&self) -> Vec<PluginStatus> {
        let plugins = self.plugins.read().expect("registry lock poisoned");
        plugins.values().cloned().collect()
    }

    /// Records that `name`'s latest module is being compiled; a version already loaded
    /// keeps serving until it is ready.
    pub fn compiling(&self, name: &str, compiling: Compiling) {
        let mut plugins = self.plugins.write().expect("registry lock poisoned");
        let status = entry(&mut plugins, name);
        status.compiling = Some(compiling);
        status.error = None;
    }

    /// Ends the compile of `compiled` for `name` with its `outcome`: the version new jobs
    /// run, or why it could not be loaded (a version already loaded keeps serving).
    /// Ignored, returning `false`, when `compiled` is no longer the module being compiled
    /// for `name` (it was replaced or removed meanwhile).
    pub fn finish(
        &self,
        name: &str,
        compiled: &Compiling,
        outcome: Result<Plugin, String>,
    ) -> bool {
        let mut plugins = self.plugins.write().expect("registry lock poisoned");
        let Some(status) = plugins
            .get_mut(name)
            .filter(|status| status.compiling.as_ref() == Some(compiled))
        else {
            return false;
        };
        status.compiling = None;
        match outcome {
            Ok(plugin) => status.current = Some(Arc::new(plugin)),
            Err(error) => status.error = Some(error),
        }
        true
    }

    /// Records that `name`'s latest module or manifest could not be read, dropping any
    /// compile under way; a version already loaded keeps serving.
    pub fn set_error(&self, name: &str, error: String) {
        let mut plugins = self.plugins.write().expect("registry lock poisoned");
        let status = entry(&mut plugins, name);
        status.compiling = None;
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

/// `name`'s status, made (empty) if it has none.
fn entry<'a>(plugins: &'a mut BTreeMap<String, PluginStatus>, name: &str) -> &'a mut PluginStatus {
    plugins
        .entry(name.to_owned())
        .or_insert_with(|| PluginStatus {
            name: name.to_owned(),
            current: None,
            compiling: None,
            error: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(digest: &str) -> Compiling {
        Compiling {
            digest: digest.into(),
            settings: Settings {
                queue: "slow".into(),
                ..Settings::default()
            },
        }
    }

    #[test]
    fn a_plugin_compiling_is_known_and_its_jobs_wait() {
        let registry = Registry::default();
        assert!(
            registry
                .require("py")
                .unwrap_err()
                .contains("unknown plugin")
        );
        registry.compiling("py", module("a"));
        assert_eq!(registry.require("py").unwrap().queue, "slow");
        assert!(registry.get("py").is_none(), "nothing runs yet");
        assert_eq!(registry.waiting(), ["py"]);
        assert!(registry.finish("py", &module("a"), Err("too big".into())));
        assert!(
            registry.waiting().is_empty(),
            "a failed compile ends the wait"
        );
        assert!(registry.require("py").is_err(), "nothing to run");
        assert_eq!(
            registry.status("py").unwrap().error.as_deref(),
            Some("too big")
        );
    }

    #[test]
    fn a_compile_ends_only_for_the_module_still_in_the_folder() {
        let registry = Registry::default();
        registry.compiling("py", module("a"));
        registry.compiling("py", module("b"));
        assert!(!registry.finish("py", &module("a"), Err("old".into())));
        let status = registry.status("py").unwrap();
        assert_eq!(status.compiling, Some(module("b")), "b still compiles");
        assert_eq!(status.error, None);
        registry.remove("py");
        assert!(!registry.finish("py", &module("b"), Err("gone".into())));
        assert!(
            registry.status("py").is_none(),
            "a removed plugin stays removed"
        );
    }

    #[test]
    fn an_unreadable_module_drops_the_compile_under_way() {
        let registry = Registry::default();
        registry.compiling("py", module("a"));
        registry.set_error("py", "invalid manifest".into());
        assert!(registry.waiting().is_empty());
        assert!(!registry.finish("py", &module("a"), Err("late".into())));
        let error = registry.status("py").unwrap().error;
        assert_eq!(error.as_deref(), Some("invalid manifest"));
    }
}
