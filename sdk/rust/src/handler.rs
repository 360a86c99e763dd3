//! [`Handler`], what a plugin implements, and how a job reaches it: the host's job context
//! in, the result as JSON text or the error out.

use crate::bindings::{self, JobContext, JobError};
use crate::{Error, Job};
use serde::Serialize;

/// A job handler: what a plugin implements, and exports with [`export!`](crate::export).
///
/// The host runs one fresh instance of the plugin per attempt, so a handler keeps nothing
/// from one job to the next.
pub trait Handler {
    /// Runs one attempt of `job`. The value returned, serialized as JSON, is the job's
    /// result: return a `Box<serde_json::value::RawValue>` to pass JSON text through
    /// unchanged (a `String` is a JSON string).
    ///
    /// # Errors
    ///
    /// [`Error::Retryable`] to have the host run the job again by its retry policy,
    /// [`Error::Fatal`] to fail it at once. A panic traps the instance, which the host
    /// counts as a retryable failure.
    fn handle(job: Job) -> Result<impl Serialize, Error>;
}

impl<H: Handler> bindings::Guest for H {
    fn handle(job: JobContext) -> Result<String, JobError> {
        run::<H>(job)
    }
}

impl<H: Handler> bindings::v0_1::Guest for H {
    fn handle(job: JobContext) -> Result<String, JobError> {
        run::<H>(job)
    }
}

/// Runs `H` on the job the host sent, and turns its outcome into the contract's.
fn run<H: Handler>(context: JobContext) -> Result<String, JobError> {
    let result = H::handle(Job::new(context))?;
    serde_json::to_string(&result)
        .map_err(|e| JobError::Fatal(format!("the result is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Doubles `n`; fails as `fail` asks.
    struct Double;

    impl Handler for Double {
        fn handle(job: Job) -> Result<impl Serialize, Error> {
            let args: serde_json::Value = job.args()?;
            match args["fail"].as_str() {
                Some("retryable") => Err(Error::retryable("try again")),
                Some("fatal") => Err(Error::fatal("give up")),
                _ => Ok(json!({ "double": args["n"].as_u64().unwrap_or(0) * 2 })),
            }
        }
    }

    /// A result serde cannot write as JSON: a map whose keys are not strings.
    struct Unwritable;

    impl Handler for Unwritable {
        fn handle(_: Job) -> Result<impl Serialize, Error> {
            Ok(std::collections::BTreeMap::from([((1, 2), 3)]))
        }
    }

    /// Passes its args through as they are.
    struct Raw;

    impl Handler for Raw {
        fn handle(job: Job) -> Result<impl Serialize, Error> {
            job.args::<Box<serde_json::value::RawValue>>()
        }
    }

    fn context(args: &str) -> JobContext {
        crate::job::tests::context(args)
    }

    fn handle<H: Handler>(args: &str) -> Result<String, JobError> {
        <H as bindings::Guest>::handle(context(args))
    }

    #[test]
    fn the_result_is_serialized_as_json() {
        assert_eq!(
            handle::<Double>(r#"{"n": 21}"#),
            Ok(r#"{"double":42}"#.into())
        );
    }

    #[test]
    fn raw_json_passes_through_unchanged() {
        let args = r#"{"b": [1, 2.50],  "a": null}"#;
        assert_eq!(handle::<Raw>(args), Ok(args.into()));
    }

    #[test]
    fn errors_keep_their_kind() {
        assert_eq!(
            handle::<Double>(r#"{"fail": "retryable"}"#),
            Err(JobError::Retryable("try again".into()))
        );
        assert_eq!(
            handle::<Double>(r#"{"fail": "fatal"}"#),
            Err(JobError::Fatal("give up".into()))
        );
    }

    #[test]
    fn a_result_that_is_not_json_is_fatal() {
        let Err(JobError::Fatal(message)) = handle::<Unwritable>("{}") else {
            panic!("a fatal error");
        };
        assert!(message.starts_with("the result is not JSON: "), "{message}");
    }

    #[test]
    fn the_previous_contract_runs_the_same_handler() {
        let args = r#"{"n": 2}"#;
        assert_eq!(
            <Double as bindings::v0_1::Guest>::handle(context(args)),
            handle::<Double>(args)
        );
    }
}
