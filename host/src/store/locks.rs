//! Agent locks: the [`AgentLocks`] trait.
//!
//! The agent lock: a job takes an agent with one conditional insert that succeeds only
//! while the agent is healthy and holds fewer unexpired locks than its
//! `max_concurrency`. The lock lasts until it expires unless renewed, and goes away in
//! the same transaction as its job leaves `processing`, however it leaves.

use super::Result;
use super::agents::Acquired;
use crate::model::{JobId, Millis};
use async_trait::async_trait;

/// Storage of agent locks.
#[async_trait]
pub trait AgentLocks: Send + Sync {
    /// Takes agent `agent_id` for job `job` until `until` (see the module doc).
    async fn acquire_agent(
        &self,
        agent_id: &str,
        job: JobId,
        owner: &str,
        until: Millis,
        now: Millis,
    ) -> Result<Acquired>;

    /// Extends every agent lock held by `owner`'s running jobs to `until`.
    async fn renew_agent_locks(&self, owner: &str, until: Millis) -> Result<u64>;
}
