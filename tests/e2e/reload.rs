//! The watched plugin folder: modules added, replaced, broken or removed while the host
//! runs, manifests that do not parse, manifests embedded in modules, modules compiled
//! in the background, and the compiled-module cache.

use crate::alerts::next_event;
use crate::common::{Options, Orchestra, TIMEOUT, module_digest, plugin_module, state};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Asserts `plugin` is listed with a non-empty `error` containing `text`, and returns it.
fn wait_for_error(host: &Orchestra, plugin: &str, text: &str) -> Value {
    host.wait_for_plugin(plugin, "reported broken", |p| {
        p.is_some_and(|p| p["error"].as_str().is_some_and(|e| e.contains(text)))
    })
    .expect("a broken plugin stays listed")
}

/// Waits until `plugin` serves the module with `digest` and no error.
fn wait_for_digest(host: &Orchestra, plugin: &str, digest: &str) -> Value {
    host.wait_for_plugin(plugin, &format!("at digest {digest}"), |p| {
        p.is_some_and(|p| p["digest"] == digest && p["error"].is_null())
    })
    .expect("a loaded plugin is listed")
}

/// Runs an echo-like `plugin` job and asserts it returns its args; returns the job.
fn assert_echoes(host: &Orchestra, plugin: &str) -> Value {
    let args = json!({"echoed_by": plugin});
    let id = host.submit(plugin, args.clone());
    let job = host.wait_for_state(&id, &["succeeded"], TIMEOUT);
    assert_eq!(job["result"], args, "{job:#}");
    job
}

/// Asserts submitting a job for `plugin` is refused with 422.
fn assert_unknown(host: &Orchestra, plugin: &str) {
    let (status, answer) = host.post("/api/jobs", &json!({"plugin": plugin}));
    assert_eq!(status, 422, "submitting for {plugin}: {answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains(plugin),
        "{answer}"
    );
}

#[test]
fn a_module_is_served_under_its_file_name() {
    let host = Orchestra::start(Options::new().plugin_as("echo", "hot"));
    let job = assert_echoes(&host, "hot");
    let digest = module_digest("echo");
    assert_eq!(job["plugin"], "hot");
    assert_eq!(job["plugin_digest"], digest, "{job:#}");
    assert_eq!(host.plugin("hot").expect("hot is listed")["digest"], digest);
    assert!(
        host.plugin("echo").is_none(),
        "only file stems are plugin names"
    );
}

#[test]
fn replacing_a_module_keeps_running_jobs_on_the_old_version() {
    let host = Orchestra::start(Options::new().plugin_as("sleep", "slow"));
    let (old, new) = (module_digest("sleep"), module_digest("echo"));
    let first = host.submit("slow", json!({"ms": 3000}));
    host.wait_for_state(&first, &["processing"], TIMEOUT);

    let replaced = Instant::now();
    host.install_plugin("echo", "slow");
    wait_for_digest(&host, "slow", &new);
    assert!(
        replaced.elapsed() < Duration::from_secs(5),
        "reload took {:?}",
        replaced.elapsed()
    );
    assert_eq!(
        state(&host.job(&first)),
        "processing",
        "the first job must still run when the new version is loaded"
    );

    let second = assert_echoes(&host, "slow");
    assert_eq!(
        second["plugin_digest"], new,
        "new jobs run the new module: {second:#}"
    );
    let first = host.wait_for_state(&first, &["succeeded"], TIMEOUT);
    assert_eq!(first["result"], json!({"slept_ms": 3000}), "{first:#}");
    assert_eq!(
        first["plugin_digest"], old,
        "the running job kept its module: {first:#}"
    );
}

#[test]
fn a_broken_module_is_reported_and_the_others_keep_working() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    host.write_plugin_file("bad.wasm", b"this is not a wasm component");
    let bad = wait_for_error(&host, "bad", "");
    assert!(bad["digest"].is_null(), "nothing of bad is loaded: {bad}");
    assert_unknown(&host, "bad");
    assert_echoes(&host, "echo");
    assert!(host.plugin("echo").unwrap()["error"].is_null());
}

#[test]
fn a_broken_replacement_keeps_the_previous_version_serving() {
    let host = Orchestra::start(Options::new().plugin_as("echo", "hot"));
    let digest = module_digest("echo");
    host.write_plugin_file("hot.wasm", b"\0asm garbage");
    let hot = wait_for_error(&host, "hot", "");
    assert_eq!(hot["digest"], digest, "the loaded version stays: {hot}");
    let job = assert_echoes(&host, "hot");
    assert_eq!(job["plugin_digest"], digest);

    host.install_plugin("echo", "hot");
    wait_for_digest(&host, "hot", &digest);
}

#[test]
fn an_invalid_manifest_is_reported_until_fixed() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    host.write_manifest("echo2", "fuel = \"x\"\n");
    host.install_plugin("echo", "echo2");
    let broken = wait_for_error(&host, "echo2", "manifest");
    assert!(
        broken["error"].as_str().unwrap().contains("fuel"),
        "the error names the field: {broken}"
    );
    assert_unknown(&host, "echo2");

    host.write_manifest("echo2", "fuel = 1000000000\n");
    let fixed = wait_for_digest(&host, "echo2", &module_digest("echo"));
    assert_eq!(fixed["limits"]["fuel"], 1_000_000_000u64, "{fixed}");
    assert_echoes(&host, "echo2");
}

#[test]
fn an_embedded_manifest_gives_defaults_that_a_file_overrides_field_by_field() {
    let host = Orchestra::start(Options::new().plugin("task_execution"));
    let embedded = wait_for_digest(&host, "task_execution", &module_digest("task_execution"));
    assert_eq!(embedded["max_attempts"], 3, "{embedded}");
    assert_eq!(
        embedded["retry"],
        json!({"delays_seconds": [60]}),
        "{embedded}"
    );
    assert_eq!(embedded["limits"]["timeout_ms"], 60_000, "{embedded}");

    host.write_manifest("task_execution", "max_attempts = 5\n");
    let merged = host
        .wait_for_plugin("task_execution", "reloaded with its file", |p| {
            p.is_some_and(|p| p["max_attempts"] == 5)
        })
        .expect("a loaded plugin is listed");
    assert!(merged["error"].is_null(), "{merged}");
    assert_eq!(
        merged["retry"],
        json!({"delays_seconds": [60]}),
        "kept: {merged}"
    );
    assert_eq!(merged["limits"]["timeout_ms"], 60_000, "kept: {merged}");
}

#[test]
fn a_removed_module_is_refused() {
    let host = Orchestra::start(Options::new().plugin("echo").plugin_as("echo", "doomed"));
    assert_echoes(&host, "doomed");
    host.remove_plugin("doomed");
    host.wait_for_plugin("doomed", "unlisted", |p| p.is_none());
    assert_unknown(&host, "doomed");
    assert_echoes(&host, "echo");
}

/// The compiled modules in a host's own cache, with their modification times.
fn cached_modules(host: &Orchestra) -> Vec<(String, std::time::SystemTime)> {
    let cache = host.cache_dir();
    let mut files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap_or_else(|e| panic!("reading {}: {e}", cache.display()))
        .map(|entry| {
            let entry = entry.expect("a cache entry");
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .expect("an mtime");
            (entry.file_name().to_string_lossy().into_owned(), modified)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_restart_loads_compiled_modules_from_the_cache() {
    let mut host = Orchestra::start(Options::new().plugin("echo").own_cache());
    let cached = cached_modules(&host);
    assert_eq!(cached.len(), 1, "one compiled module: {cached:?}");
    let (name, _) = &cached[0];
    assert!(
        name.starts_with(&module_digest("echo")) && name.ends_with(".cwasm"),
        "the cache is keyed by the module digest: {name}"
    );
    host.terminate(TIMEOUT);
    host.restart();
    assert_echoes(&host, "echo");
    assert_eq!(
        cached_modules(&host),
        cached,
        "the restart compiled nothing anew"
    );
}

#[test]
fn changes_to_the_plugin_folder_are_events() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let events = host.listen("/api/events?types=plugin.*", None);
    host.install_plugin("echo", "second");
    let loaded = next_event(&events, "plugin.loaded");
    assert_eq!(loaded["plugin"], "second", "{loaded}");
    assert_eq!(loaded["digest"], module_digest("echo"));

    host.write_plugin_file("broken.wasm", b"not a component");
    let failed = next_event(&events, "plugin.failed");
    assert_eq!(failed["plugin"], "broken", "{failed}");
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failed}"
    );

    host.remove_plugin("second");
    let removed = next_event(&events, "plugin.removed");
    assert_eq!(removed["plugin"], "second", "{removed}");
}

/// `echo` made distinct (so it compiles anew, under another digest) by a custom section
/// named for `tag` at its end.
pub(crate) fn distinct_echo(tag: &str) -> Vec<u8> {
    let mut module = std::fs::read(plugin_module("echo")).expect("reading echo");
    let name = format!("distinct-{tag}");
    assert!(name.len() < 0x40, "one-byte lengths");
    module.extend_from_slice(&[0, name.len() as u8 + 1, name.len() as u8]);
    module.extend_from_slice(name.as_bytes());
    module
}

#[test]
fn the_api_answers_while_plugins_compile_and_their_jobs_wait() {
    const COPIES: usize = 32;
    let mut options = Options::new().own_cache();
    for n in 0..COPIES {
        options = options.plugin_file(&format!("echo{n}.wasm"), distinct_echo(&n.to_string()));
    }
    // `try_start` returns once `/healthz` answers, without waiting for the plugins.
    let host = Orchestra::try_start(options).unwrap_or_else(|why| panic!("{why}"));
    let listed = host.plugins();
    assert_eq!(
        listed.len(),
        COPIES,
        "every module is known at once: {listed:?}"
    );
    let compiling: Vec<String> = listed
        .iter()
        .filter(|p| p["status"] == "compiling")
        .map(|p| p["name"].as_str().expect("a name").to_owned())
        .collect();
    assert!(
        !compiling.is_empty(),
        "the API opened before {COPIES} modules compiled: {listed:?}"
    );
    let args = json!({"waited": true});
    let jobs: Vec<(String, String)> = compiling
        .iter()
        .map(|plugin| (plugin.clone(), host.submit(plugin, args.clone())))
        .collect();
    let (status, _) = host.get("/plugins");
    assert_eq!(status, 200, "the dashboard answers too");

    host.wait_compiled();
    let mut waited = 0;
    for (plugin, id) in &jobs {
        let job = host.wait_for_state(id, &["succeeded"], TIMEOUT);
        assert_eq!(job["result"], args, "{job:#}");
        assert_eq!(
            job["attempt"], 1,
            "no attempt failed while compiling: {job:#}"
        );
        let loaded = host.plugin(plugin).expect("listed");
        assert_eq!(loaded["status"], "loaded", "{loaded}");
        let loaded_at = loaded["loaded_at"].as_str().expect("loaded_at");
        let started_at = job["started_at"].as_str().expect("started_at");
        assert!(
            started_at >= loaded_at,
            "ran after loading: {job:#} {loaded}"
        );
        if job["created_at"].as_str().expect("created_at") < loaded_at {
            waited += 1;
        }
    }
    assert!(waited > 0, "some job was accepted before its plugin loaded");
}

/// The digests of the modules compiled in a host's own cache.
fn cached_digests(host: &Orchestra) -> Vec<String> {
    cached_modules(host)
        .into_iter()
        .map(|(name, _)| name.split('-').next().expect("a digest").to_owned())
        .collect()
}

#[test]
fn the_cache_keeps_only_modules_still_in_the_folder() {
    let host = Orchestra::start(
        Options::new()
            .own_cache()
            .plugin_as("echo", "hot")
            .plugin_as("echo", "twin")
            .plugin("spin"),
    );
    let (echo, sleep, spin) = (
        module_digest("echo"),
        module_digest("sleep"),
        module_digest("spin"),
    );
    let mut both = vec![echo.clone(), spin.clone()];
    both.sort();
    assert_eq!(cached_digests(&host), both);

    host.install_plugin("sleep", "hot");
    wait_for_digest(&host, "hot", &sleep);
    let mut now = vec![echo.clone(), sleep.clone(), spin.clone()];
    now.sort();
    assert_eq!(cached_digests(&host), now, "twin still has echo's module");

    host.remove_plugin("twin");
    host.wait_for_plugin("twin", "unlisted", |p| p.is_none());
    let mut now = vec![sleep.clone(), spin];
    now.sort();
    assert_eq!(cached_digests(&host), now, "no plugin has echo's module");
    host.remove_plugin("spin");
    host.wait_for_plugin("spin", "unlisted", |p| p.is_none());
    assert_eq!(cached_digests(&host), [sleep], "only hot's module is left");
}
