//! `orchestra plugin new NAME --lang rust|python|js`: writes a plugin project (from
//! `template/`) that passes its own unit test natively and builds into a component.

use anyhow::Context;
use orchestra::plugins::load::is_plugin_name;
use std::path::{Path, PathBuf};

/// The SDK this binary was built beside.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/rust");

/// The plugin contract, which Python and JavaScript projects carry.
const WIT: &str = include_str!("../../../../../wit/world.wit");

/// The languages a project can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Lang {
    /// Rust, on the SDK crate `orchestra-plugin`.
    Rust,
    /// Python, built with componentize-py, on the helper module `orchestra_plugin.py`.
    Python,
    /// JavaScript, built with componentize-js, on the helper module `orchestra-plugin.js`.
    Js,
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
    /// For Rust, the SDK crate `orchestra-plugin` to depend on [default: the one this
    /// binary was built beside].
    #[arg(long)]
    sdk: Option<PathBuf>,
}

/// The files of a project: path in the project, template text.
type Files = &'static [(&'static str, &'static str)];

/// A Rust project on the SDK crate, which it depends on by path.
const RUST: Files = &[
    ("Cargo.toml", include_str!("template/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("template/rust/lib.rs")),
    ("README.md", include_str!("template/rust/README.md")),
    (
        ".cargo/config.toml",
        include_str!("template/rust/cargo-config.toml"),
    ),
    (".gitignore", include_str!("template/rust/gitignore")),
];

/// A Python project, with the helper module and the WIT copied in.
const PYTHON: Files = &[
    ("app.py", include_str!("template/python/app.py")),
    ("test_app.py", include_str!("template/python/test_app.py")),
    (
        "orchestra_plugin.py",
        include_str!("../../../../../sdk/python/orchestra_plugin.py"),
    ),
    ("wit/world.wit", WIT),
    ("build.sh", include_str!("template/python/build.sh")),
    ("README.md", include_str!("template/python/README.md")),
    (".gitignore", include_str!("template/python/gitignore")),
];

/// A JavaScript project, with the helper module and the WIT copied in.
const JS: Files = &[
    ("handler.js", include_str!("template/js/handler.js")),
    ("index.js", include_str!("template/js/index.js")),
    (
        "handler.test.js",
        include_str!("template/js/handler.test.js"),
    ),
    (
        "orchestra-plugin.js",
        include_str!("../../../../../sdk/js/orchestra-plugin.js"),
    ),
    ("wit/world.wit", WIT),
    ("package.json", include_str!("template/js/package.json")),
    ("README.md", include_str!("template/js/README.md")),
    (".gitignore", include_str!("template/js/gitignore")),
];

/// Runs `orchestra plugin new`.
pub(crate) fn run(args: &NewArgs) -> anyhow::Result<()> {
    let name = &args.name;
    anyhow::ensure!(
        is_plugin_name(name),
        "`{name}` cannot name a plugin: use 1 to 200 letters, digits, - and _"
    );
    anyhow::ensure!(
        args.sdk.is_none() || args.lang == Lang::Rust,
        "--sdk names the Rust SDK: a Python or JavaScript project carries its helper module"
    );
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    let occupied = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
    anyhow::ensure!(
        !occupied,
        "{} exists and is not empty: give --dir a new or empty directory",
        dir.display()
    );
    let (files, module, next) = project(args.lang, name);
    let sdk = match args.lang {
        Lang::Rust => toml_escaped(&sdk(args.sdk.as_deref())?.to_string_lossy()),
        Lang::Python | Lang::Js => String::new(),
    };
    for (path, template) in files {
        let text = template
            .replace("{{name}}", name)
            .replace("{{module}}", &module)
            .replace("{{package}}", &name.to_lowercase())
            .replace("{{sdk}}", &sdk);
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("wrote plugin `{name}` in {}; then:", dir.display());
    println!("  cd {} && {}", dir.display(), next[0]);
    for step in &next[1..] {
        println!("  {step}");
    }
    Ok(())
}

/// What `lang` writes for `name`: the files, the module's name and the next steps.
fn project(lang: Lang, name: &str) -> (Files, String, [String; 3]) {
    match lang {
        Lang::Rust => {
            // Cargo names the module after the crate, with `-` made `_`.
            let module = name.replace('-', "_");
            let next = [
                "cargo test".to_owned(),
                "cargo build --release --target wasm32-wasip2".to_owned(),
                format!("orchestra plugin check target/wasm32-wasip2/release/{module}.wasm"),
            ];
            (RUST, module, next)
        }
        Lang::Python => {
            let next = [
                "python3 -m unittest".to_owned(),
                "sh build.sh   # with componentize-py on PATH (see README.md)".to_owned(),
                format!("orchestra plugin check {name}.wasm"),
            ];
            (PYTHON, name.to_owned(), next)
        }
        Lang::Js => {
            let next = [
                "node --test".to_owned(),
                "npm install && npm run build".to_owned(),
                format!("orchestra plugin check {name}.wasm"),
            ];
            (JS, name.to_owned(), next)
        }
    }
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
