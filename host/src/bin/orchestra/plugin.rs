//! `orchestra plugin`: tools for plugin authors. `check` loads a module as the host would
//! and runs one dry job; `new` writes a plugin project that builds and tests.

mod check;
mod new;

/// What to do for a plugin author.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PluginCommand {
    /// Load a module as the host would and run one dry job, showing what a job would.
    Check(check::CheckArgs),
    /// Write a new plugin project that builds and passes its own test.
    New(new::NewArgs),
}

/// Runs `orchestra plugin …`.
pub(crate) async fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Check(args) => check::run(args).await,
        PluginCommand::New(args) => new::run(&args),
    }
}
