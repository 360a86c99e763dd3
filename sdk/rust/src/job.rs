//! [`Job`]: the job a handler runs, and its args.

use crate::Error;
use crate::bindings::JobContext;
use serde::de::DeserializeOwned;

/// The job a handler runs: who it is, which attempt this is, and its args.
///
/// The repository a job was granted, if any, is mounted at `/repo`; the agent it is bound
/// to, if any, is [`agent::info`](crate::agent::info).
#[derive(Debug, Clone)]
pub struct Job {
    /// What the host sent.
    context: JobContext,
}

impl Job {
    /// A job from the host's description of it.
    pub(crate) fn new(context: JobContext) -> Self {
        Self { context }
    }

    /// The job's id (a UUID v7, as text).
    pub fn id(&self) -> &str {
        &self.context.id
    }

    /// The plugin name the job was submitted for.
    pub fn plugin(&self) -> &str {
        &self.context.plugin
    }

    /// The queue the job was taken from.
    pub fn queue(&self) -> &str {
        &self.context.queue
    }

    /// Which attempt this is, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.context.attempt
    }

    /// How many attempts the job may have in all.
    pub fn max_attempts(&self) -> u32 {
        self.context.max_attempts
    }

    /// The job's args, as the JSON text they were submitted as.
    pub fn raw_args(&self) -> &str {
        &self.context.args
    }

    /// The job's args, deserialized into `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Fatal`], `bad args: ` and serde's reason, when the args do not fit `T`:
    /// the same args would not fit on any later attempt.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.context.args).map_err(Error::bad_args)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde::Deserialize;

    /// A first attempt of an `echo` job with `args`.
    pub(crate) fn context(args: &str) -> JobContext {
        JobContext {
            id: "0190b2c4-7f3a-7000-8000-000000000001".into(),
            plugin: "echo".into(),
            queue: "default".into(),
            attempt: 1,
            max_attempts: 3,
            args: args.into(),
        }
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Args {
        ms: u64,
        #[serde(default)]
        steps: Option<u32>,
    }

    #[test]
    fn the_context_is_read_through() {
        let job = Job::new(context(r#"{"ms": 5}"#));
        assert_eq!(job.id(), "0190b2c4-7f3a-7000-8000-000000000001");
        assert_eq!((job.plugin(), job.queue()), ("echo", "default"));
        assert_eq!((job.attempt(), job.max_attempts()), (1, 3));
        assert_eq!(job.raw_args(), r#"{"ms": 5}"#);
    }

    #[test]
    fn args_deserialize_into_a_type() {
        let job = Job::new(context(r#"{"ms": 5, "unknown": true}"#));
        assert_eq!(job.args(), Ok(Args { ms: 5, steps: None }));
    }

    #[test]
    fn args_that_do_not_fit_are_fatal_with_the_reason() {
        for (args, reason) in [
            (r#"{"steps": 2}"#, "missing field `ms`"),
            (r#"{"ms": -1}"#, "invalid value: integer `-1`, expected u64"),
            ("[", "EOF while parsing a list"),
        ] {
            let Err(Error::Fatal(message)) = Job::new(context(args)).args::<Args>() else {
                panic!("{args}: a fatal error");
            };
            assert!(message.starts_with("bad args: "), "{args}: {message}");
            assert!(message.contains(reason), "{args}: {message}");
        }
    }
}
