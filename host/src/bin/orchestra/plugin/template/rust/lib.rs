//! An Orchestra plugin: greets the name in its args.
//!
//! Args: `{"name": "..."}`. Result: `{"text": "hello, ..."}`. Args without a `name` fail
//! the job at once (fatal); an empty name fails it retryably, to show the other kind.

use orchestra_plugin::{Error, Handler, Job, log, progress};
use serde::{Deserialize, Serialize};

// The plugin's settings, read by the host when it loads the module; a `NAME.toml` beside
// the module overrides them field by field.
orchestra_plugin::manifest!("max_attempts = 3\ntimeout_ms = 60000\n");

/// What a job asks for.
#[derive(Debug, Deserialize)]
struct Args {
    /// Who to greet.
    name: String,
}

/// The job's result.
#[derive(Debug, PartialEq, Serialize)]
struct Greeting {
    /// The greeting.
    text: String,
}

/// The plugin's logic, apart from the host so that a unit test can run it natively.
fn greet(args: &Args) -> Result<Greeting, Error> {
    if args.name.trim().is_empty() {
        return Err(Error::retryable("the name is empty"));
    }
    Ok(Greeting {
        text: format!("hello, {}", args.name),
    })
}

/// The handler exported to the host.
struct Plugin;

impl Handler for Plugin {
    fn handle(job: Job) -> Result<impl Serialize, Error> {
        log::info!("attempt {} of {}", job.attempt(), job.max_attempts());
        // Args that do not fit `Args` fail the job at once, with serde's reason.
        let args: Args = job.args()?;
        progress(50, "args read");
        let greeting = greet(&args)?;
        progress(100, "done");
        Ok(greeting)
    }
}

orchestra_plugin::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_the_name() {
        let args = Args {
            name: "world".into(),
        };
        assert_eq!(
            greet(&args).unwrap(),
            Greeting {
                text: "hello, world".into()
            }
        );
    }

    #[test]
    fn an_empty_name_is_retryable() {
        let args = Args { name: " ".into() };
        assert!(matches!(greet(&args), Err(Error::Retryable(_))));
    }
}
