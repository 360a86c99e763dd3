//! Queues as the store keeps them: their controls, which every host obeys, and what they
//! hold.

use super::Result;
use crate::model::{JobState, Millis};
use async_trait::async_trait;

/// A queue's controls, kept in the store so that every host obeys them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// Paused queues accept jobs but run none.
    pub paused: bool,
    /// Most jobs of the queue running at once, across hosts; `None`: no cap.
    pub concurrency: Option<u32>,
}

/// What the store knows of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// The queue.
    pub name: String,
    /// Its controls.
    pub settings: QueueSettings,
    /// Jobs per state.
    pub counts: Vec<(JobState, u64)>,
    /// `run_at` of the longest-waiting enqueued job.
    pub oldest_enqueued_at: Option<Millis>,
}

/// Storage of queue controls; every [`super::JobStore`] is one.
#[async_trait]
pub trait QueueStore {
    /// Pauses or resumes a queue.
    async fn set_queue_paused(&self, name: &str, paused: bool) -> Result<()>;

    /// Caps (or with `None` uncaps) how many jobs of a queue run at once.
    async fn set_queue_concurrency(&self, name: &str, concurrency: Option<u32>) -> Result<()>;

    /// Every queue that has jobs or controls, with its counts, controls and oldest
    /// enqueued job.
    async fn queues(&self) -> Result<Vec<QueueInfo>>;

    /// Jobs that finished (succeeded, failed or were cancelled) at or after `since`, per
    /// queue: a queue's recent throughput.
    async fn finished_since(&self, since: Millis) -> Result<Vec<(String, u64)>>;
}

/// Implements [`QueueStore`] for `$store`, whose reads go to its pool `$reads` and whose
/// writes to its `exec`: the same SQL on every backend. Claims read the `queues` table
/// (nothing is cached), so a control set through one host holds on every host at its next
/// claim.
macro_rules! queue_store {
    ($store:ty, $reads:ident) => {
        use crate::model::Millis;
        use crate::store::rows::parse_state;
        use crate::store::{QueueInfo, QueueSettings, QueueStore, Result};
        use async_trait::async_trait;
        use std::collections::BTreeMap;

        impl $store {
            /// Stores one control of a queue with `sql` (binding the queue and `value`).
            async fn set_control(
                &self,
                queue: &str,
                sql: &'static str,
                value: Option<i64>,
            ) -> Result<()> {
                let name = queue.to_owned();
                self.exec(move |conn| {
                    Box::pin(async move {
                        sqlx::query(sql)
                            .bind(name)
                            .bind(value)
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                })
                .await
            }
        }

        #[async_trait]
        impl QueueStore for $store {
            async fn set_queue_paused(&self, name: &str, paused: bool) -> Result<()> {
                // `$2 <> 0`: a boolean on every backend.
                let sql = "INSERT INTO queues (name, paused) VALUES ($1, $2 <> 0) \
                           ON CONFLICT (name) DO UPDATE SET paused = excluded.paused";
                self.set_control(name, sql, Some(i64::from(paused))).await
            }

            async fn set_queue_concurrency(&self, name: &str, concurrency: Option<u32>) -> Result<()> {
                let sql = "INSERT INTO queues (name, concurrency) VALUES ($1, $2) \
                           ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency";
                self.set_control(name, sql, concurrency.map(i64::from)).await
            }

            async fn queues(&self) -> Result<Vec<QueueInfo>> {
                let mut conn = self.$reads.acquire().await?;
                let counts: Vec<(String, String, i64)> =
                    sqlx::query_as("SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state")
                        .fetch_all(&mut *conn)
                        .await?;
                let controls: Vec<(String, bool, Option<i64>)> =
                    sqlx::query_as("SELECT name, paused, concurrency FROM queues")
                        .fetch_all(&mut *conn)
                        .await?;
                let oldest: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT queue, MIN(run_at) FROM jobs WHERE state = 'enqueued' GROUP BY queue",
                )
                .fetch_all(&mut *conn)
                .await?;
                let mut queues: BTreeMap<String, QueueInfo> = BTreeMap::new();
                fn entry(queues: &mut BTreeMap<String, QueueInfo>, name: String) -> &mut QueueInfo {
                    queues.entry(name.clone()).or_insert_with(|| QueueInfo {
                        name,
                        settings: QueueSettings::default(),
                        counts: Vec::new(),
                        oldest_enqueued_at: None,
                    })
                }
                for (queue, state, count) in counts {
                    let state = parse_state(&state)?;
                    entry(&mut queues, queue)
                        .counts
                        .push((state, count.max(0) as u64));
                }
                for (name, paused, concurrency) in controls {
                    entry(&mut queues, name).settings = QueueSettings {
                        paused,
                        concurrency: concurrency.and_then(|c| u32::try_from(c).ok()),
                    };
                }
                for (queue, at) in oldest {
                    entry(&mut queues, queue).oldest_enqueued_at = Some(at);
                }
                Ok(queues.into_values().collect())
            }

            async fn finished_since(&self, since: Millis) -> Result<Vec<(String, u64)>> {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT queue, count(*) FROM jobs \
                     WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at >= $1 \
                     GROUP BY queue ORDER BY queue",
                )
                .bind(since)
                .fetch_all(&self.$reads)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(queue, count)| (queue, count.max(0) as u64))
                    .collect())
            }
        }
    };
}

pub(super) use queue_store;
