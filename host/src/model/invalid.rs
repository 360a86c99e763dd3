//! [`Invalid`]: a value refused, with the field it came in.

/// A value refused by a check of several fields: which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// The field, as clients write it (`max_concurrency`, `cron`).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl Invalid {
    /// A refusal of `field`: for `map_err` on a check that gives only the message.
    pub fn of(field: &'static str) -> impl FnOnce(String) -> Invalid {
        move |message| Invalid { field, message }
    }
}
