//! stats on PostgreSQL (being written).

#![allow(unused)]

use super::PostgresStore;
use crate::model::stats::{Histogram, Resolution, Rollup, RollupKey, RollupRow};
use crate::model::{ErrorKind, Job, JobState, Millis};
use crate::store::Result;
use crate::store::changes::JobChange;
use crate::store::stats::{StatsStore, kept_for};
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[async_trait]
impl StatsStore for PostgresStore {
    async fn rollup(
        &self,
        resolution: Resolution,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<RollupRow>> {
        todo!()
    }

    async fn prune_rollup(&self, now: Millis) -> Result<u64> {
        todo!()
    }
}
