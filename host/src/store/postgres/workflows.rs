//! workflows on PostgreSQL (being written).

#![allow(unused)]

use super::PostgresStore;
use crate::model::{JobId, Millis};
use crate::store::workflows::{
    Advanced, NewWorkflowRun, RunState, RunStep, StoredWorkflow, WorkflowRun, WorkflowStore,
    parse_step_state,
};
use crate::store::{Changes, Error, NewJob, Result};
use crate::workflow::{Definition, StepChange, StepState, plan};
use async_trait::async_trait;

#[async_trait]
impl WorkflowStore for PostgresStore {
    async fn put_workflow(&self, id: &str, definition: &Definition, now: Millis) -> Result<bool> {
        todo!()
    }

    async fn workflow(&self, id: &str) -> Result<Option<StoredWorkflow>> {
        todo!()
    }

    async fn delete_workflow(&self, id: &str) -> Result<bool> {
        todo!()
    }

    async fn create_workflow_run(&self, run: NewWorkflowRun, now: Millis) -> Result<()> {
        todo!()
    }

    async fn workflow_run(&self, id: JobId) -> Result<Option<WorkflowRun>> {
        todo!()
    }

    async fn running_workflow_runs(&self) -> Result<Vec<JobId>> {
        todo!()
    }

    async fn advance_workflow_run(&self, id: JobId, now: Millis) -> Result<Advanced> {
        todo!()
    }

    async fn cancel_workflow_run(&self, id: JobId, now: Millis) -> Result<Option<Vec<JobId>>> {
        todo!()
    }
}
