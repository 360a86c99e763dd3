//! Queue controls on SQLite: the `queues` table, which claims read.

use super::SqliteStore;
use super::rows::parse_state;
use crate::model::Millis;
use crate::store::{QueueInfo, QueueSettings, QueueStore, Result};
use async_trait::async_trait;
use std::collections::BTreeMap;

impl SqliteStore {
    /// Stores one control of a queue with `sql` (binding the queue and `value`); claims
    /// read it from the table.
    async fn set_control(&self, queue: &str, sql: &'static str, value: Option<i64>) -> Result<()> {
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
impl QueueStore for SqliteStore {
    async fn set_queue_paused(&self, name: &str, paused: bool) -> Result<()> {
        let sql = "INSERT INTO queues (name, paused) VALUES (?1, ?2) \
                   ON CONFLICT (name) DO UPDATE SET paused = excluded.paused";
        self.set_control(name, sql, Some(i64::from(paused))).await
    }

    async fn set_queue_concurrency(&self, name: &str, concurrency: Option<u32>) -> Result<()> {
        let sql = "INSERT INTO queues (name, concurrency) VALUES (?1, ?2) \
                   ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency";
        let value = concurrency.map(i64::from);
        self.set_control(name, sql, value).await
    }

    async fn queues(&self) -> Result<Vec<QueueInfo>> {
        let mut conn = self.readers.acquire().await?;
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
             WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at >= ?1 \
             GROUP BY queue ORDER BY queue",
        )
        .bind(since)
        .fetch_all(&self.readers)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(queue, count)| (queue, count.max(0) as u64))
            .collect())
    }
}
