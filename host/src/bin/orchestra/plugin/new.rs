//! `orchestra plugin new NAME`: writes a plugin project (from `template/`) that builds
//! for `wasm32-wasip2` and passes its own unit test.

use anyhow::Context;
use orchestra::plugins::load::is_plugin_name;
use std::path::{Path, PathBuf};

/// The SDK this binary was built beside.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/rust");

/// The languages a project can be written in.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Lang {
    /// Rust, on the SDK crate `orchestra-plugin`.
    Rust,
}

/// `orchestra plugin new` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct NewArgs {
    /// The plugin's name: letters, digits, `-` and `_`.
    name: String,
    /// The language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where to write the project (absent or empty) [default: ./NAME].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The SDK crate `orchestra-plugin` to depend on [default: the one this binary was
    /// built beside].
    #[arg(long)]
    sdk: Option<PathBuf>,
}

/// The project's files: path in the project, template text.
const FILES: [(&str, &str); 5] = [
    ("Cargo.toml", include_str!("template/Cargo.toml")),
    ("src/lib.rs", include_str!("template/lib.rs")),
    ("README.md", include_str!("template/README.md")),
    (
        ".cargo/config.toml",
        include_str!("template/cargo-config.toml"),
    ),
    (".gitignore", include_str!("template/gitignore")),
];

/// Runs `orchestra plugin new`.
pub(crate) fn run(args: &NewArgs) -> anyhow::Result<()> {
    let Lang::Rust = args.lang;
    let name = &args.name;
    anyhow::ensure!(
        is_plugin_name(name),
        "`{name}` cannot name a plugin: use 1 to 200 letters, digits, - and _"
    );
    let sdk = sdk(args.sdk.as_deref())?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    let occupied = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
    anyhow::ensure!(
        !occupied,
        "{} exists and is not empty: give --dir a new or empty directory",
        dir.display()
    );
    // Cargo names the module after the crate, with `-` made `_`.
    let module = name.replace('-', "_");
    for (path, template) in FILES {
        let text = template
            .replace("{{name}}", name)
            .replace("{{module}}", &module)
            .replace("{{sdk}}", &toml_escaped(&sdk.to_string_lossy()));
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("wrote plugin `{name}` in {}; then:", dir.display());
    println!("  cd {} && cargo test", dir.display());
    println!("  cargo build --release --target wasm32-wasip2");
    println!("  orchestra plugin check target/wasm32-wasip2/release/{module}.wasm");
    Ok(())
}

/// The SDK directory to depend on, absolute: `given`, else the one built beside.
fn sdk(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let (path, hint) = match given {
        Some(path) => (path, "--sdk names"),
        None => (Path::new(BUILT_SDK), "this binary was built beside"),
    };
    path.join("Cargo.toml")
        .canonicalize()
        .ok()
        .and_then(|manifest| manifest.parent().map(Path::to_owned))
        .with_context(|| {
            format!(
                "no SDK crate at {} (the directory {hint}): give --sdk the path of sdk/rust \
                 in a checkout of Orchestra",
                path.display()
            )
        })
}

/// `text` escaped for a TOML basic string.
fn toml_escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
