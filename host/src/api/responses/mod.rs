//! The HTTP contract: every JSON answer of the API as a type, one module per resource.
//! Each type says which endpoints answer it and what each field holds; a field that is
//! only sometimes present says when. Handlers build these and nothing else, so an answer
//! changes only here. (The live event stream is the exception: its events are built by
//! [`crate::events::Published::to_json`].)

mod agents;
mod alerts;
mod audit;
mod batches;
mod errors;
mod jobs;
mod maintenance;
mod queues;
mod recurring;
mod session;
mod stats;
mod status;
mod tasks;
mod tokens;
mod workflows;

pub(crate) use agents::{AgentList, AgentView};
pub(crate) use alerts::{AlertList, AlertView, IncidentList, IncidentView};
pub(crate) use audit::{AuditList, AuditView};
pub(crate) use batches::{BatchCancelled, BatchCreated, BatchView};
pub(crate) use errors::ErrorBody;
pub(crate) use jobs::{BulkDone, CancelledJob, JobPage, JobRef, LogPage, SubmittedJob};
pub(crate) use maintenance::CleanupDone;
pub(crate) use queues::{QueueConcurrency, QueueList, QueuePaused, QueueView};
pub(crate) use recurring::{RecurringList, RecurringPreview, RecurringTriggered, RecurringView};
pub(crate) use session::SessionView;
pub(crate) use stats::SeriesAnswer;
pub(crate) use status::{Health, PluginList, PluginState, PluginView, Retry};
pub(crate) use tasks::{CancelledTask, SubmittedTask, TaskList, TaskView};
pub(crate) use tokens::{MadeToken, TokenList, TokenView};
pub(crate) use workflows::{RunStarted, RunView, WorkflowView};

use serde::Serialize;
use utoipa::ToSchema;

/// An answer of a `PUT` that stores something, with a warning when what it stored sends
/// jobs to queues no worker of this host serves (`PUT /api/recurring/{id}`,
/// `PUT /api/workflows/{id}`, `PUT /api/alerts/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Warned<T> {
    /// What was stored, as `GET` shows it.
    #[serde(flatten)]
    pub(crate) body: T,
    /// The unserved queues, if any; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warning: Option<String>,
}
