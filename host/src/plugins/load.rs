//! One module as the loader takes it: the name it goes by, its settings, the checks made
//! before compiling it, and what it imports.
//!
//! The folder's [`watch`](super::watch) loader and `orchestra plugin check` (which checks
//! a module outside any folder) both load through here, so they accept and refuse the
//! same modules with the same messages.

use super::manifest::{self, Manifest, Settings};
use super::{Compiling, Plugin};
use crate::model::limits::Maxima;
use crate::model::names::MAX_NAME_CHARS;
use crate::model::now_ms;
use crate::runtime::{Runtime, check_fits};
use std::path::Path;

/// Whether `name` may name a plugin: 1 to [`MAX_NAME_CHARS`] ASCII letters, digits, `-`
/// and `_`.
pub fn is_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A plugin's settings: the manifest embedded in `bytes` (the module `wasm`), overridden
/// field by field by the file `toml` when it exists, held to the operator's `maxima`.
///
/// # Errors
/// A manifest that does not parse or names a wrong value, or a `toml` that exists but
/// cannot be read; the message names the file.
pub fn settings(
    wasm: &Path,
    bytes: &[u8],
    toml: &Path,
    maxima: &Maxima,
) -> Result<Settings, String> {
    let invalid_embedded = |e| format!("invalid manifest embedded in {}: {e}", wasm.display());
    let embedded = match manifest::embedded(bytes).map_err(invalid_embedded)? {
        Some(text) => Manifest::parse(&text).map_err(invalid_embedded)?,
        None => Manifest::default(),
    };
    let file = match std::fs::read_to_string(toml) {
        Ok(text) => Manifest::parse(&text)
            .map_err(|e| format!("invalid manifest {}: {e}", toml.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => return Err(format!("cannot read {}: {e}", toml.display())),
    };
    // Each layer is valid alone, and validation is per field, so the merge is valid too.
    embedded
        .overridden_by(file)
        .settings()
        .map(|settings| settings.clamped_to(maxima))
        .map_err(|e| format!("invalid manifest for {}: {e}", wasm.display()))
}

/// Checks that plugin `name`'s module fits its limits, then compiles and links it.
///
/// # Errors
/// The module's memory starts above its `memory_mb`, it is not a component, imports what
/// the host does not provide, or does not implement the world.
pub fn load(
    runtime: &Runtime,
    name: String,
    bytes: &[u8],
    compiling: Compiling,
) -> Result<Plugin, String> {
    check_fits(bytes, &compiling.settings.limits).map_err(|e| e.to_string())?;
    let prepared = runtime
        .prepare(bytes, &compiling.digest)
        .map_err(|e| e.to_string())?;
    Ok(Plugin {
        name,
        digest: compiling.digest,
        loaded_at: now_ms(),
        settings: compiling.settings,
        prepared,
    })
}

/// The interfaces a component imports (`orchestra:plugin/log@0.2.0`,
/// `wasi:cli/stdout@0.2.6`…), in the order it lists them; none for bytes that are not a
/// component.
pub fn imports(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::ModuleSection { .. })
            | Ok(wasmparser::Payload::ComponentSection { .. }) => depth += 1,
            Ok(wasmparser::Payload::End(_)) => depth = depth.saturating_sub(1),
            Ok(wasmparser::Payload::ComponentImportSection(section)) if depth == 0 => {
                let named = section.into_iter().flatten().map(|i| i.name.name);
                names.extend(named.filter(|n| n.contains(':')).map(str::to_owned));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    names
}

/// The versions of the plugin contract (`orchestra:plugin`) among `imports`, lowest
/// first, each once.
pub fn contract_versions(imports: &[String]) -> Vec<String> {
    let mut versions: Vec<String> = imports
        .iter()
        .filter_map(|name| name.strip_prefix("orchestra:plugin/"))
        .filter_map(|name| name.split_once('@').map(|(_, version)| version.to_owned()))
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_short_and_plain() {
        assert!(is_plugin_name("echo"));
        assert!(is_plugin_name("task-exec_2"));
        assert!(!is_plugin_name(""));
        assert!(!is_plugin_name("bad name"));
        assert!(!is_plugin_name("dots.no"));
        assert!(!is_plugin_name(&"a".repeat(MAX_NAME_CHARS + 1)));
    }

    #[test]
    fn contract_versions_come_from_the_contracts_imports_only() {
        let imports = [
            "wasi:cli/stdout@0.2.6",
            "orchestra:plugin/types@0.2.0",
            "orchestra:plugin/log@0.2.0",
            "orchestra:plugin/log@0.1.0",
        ]
        .map(String::from);
        assert_eq!(contract_versions(&imports), ["0.1.0", "0.2.0"]);
        assert!(contract_versions(&imports[..1]).is_empty());
    }

    #[test]
    fn bytes_that_are_not_a_component_import_nothing() {
        assert!(imports(b"not wasm").is_empty());
        assert!(imports(b"\0asm\x01\0\0\0").is_empty());
    }
}
