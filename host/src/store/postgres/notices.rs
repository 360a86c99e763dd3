//! What hosts tell each other through the database: what each write changed (channel
//! `orchestra_changes`, sent inside the writing transaction, so it is delivered once that
//! commits, and never for a write that did not), and that a running job's cancellation was
//! asked for (`orchestra_cancel`, sent by a trigger, see the migration). Each host listens
//! on one connection of its own and hands what the other hosts did to its sink: their
//! changes become this host's events and wake its dispatcher, and a cancel stops the run
//! if this host holds it.
//!
//! A notice that a lost connection missed is not sent again: the dispatcher's idle poll
//! still finds the jobs it would have woken for, and the next lease renewal tells which
//! held jobs were asked to cancel.

use crate::model::JobId;
use crate::store::Result;
use crate::store::changes::{Changes, Sink};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgNotification};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The channel of changes.
const CHANGES: &str = "orchestra_changes";
/// The channel of cancels.
const CANCELS: &str = "orchestra_cancel";
/// Most bytes of one notice: PostgreSQL takes payloads under 8,000 bytes.
const MOST_BYTES: usize = 7_000;
/// How long the listener waits before trying again after its connection failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What one write, or part of it, changed, and which store (host) wrote it.
#[derive(Serialize, Deserialize)]
struct Notice {
    from: Uuid,
    changes: Changes,
}

/// Tells every host what the current transaction changed, once it commits.
pub(super) async fn send(conn: &mut PgConnection, from: Uuid, changes: &Changes) -> Result<()> {
    send_all(conn, from, [changes]).await
}

/// Tells every host what each write of the current transaction changed, in order, once
/// it commits: in one statement, whatever the number of writes.
pub(super) async fn send_all<'c>(
    conn: &mut PgConnection,
    from: Uuid,
    writes: impl IntoIterator<Item = &'c Changes>,
) -> Result<()> {
    let told: Vec<String> = writes
        .into_iter()
        .filter(|changes| !changes.is_empty())
        .flat_map(|changes| payloads(from, changes))
        .collect();
    if told.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
        .bind(CHANGES)
        .bind(told)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `changes` as notices of at most about [`MOST_BYTES`] each, in order; the batches'
/// progress goes with the last.
fn payloads(from: Uuid, changes: &Changes) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut part = Changes::default();
    let mut bytes = 0;
    for change in &changes.jobs {
        let size = serde_json::to_string(change).map_or(0, |text| text.len());
        if bytes + size > MOST_BYTES && !part.jobs.is_empty() {
            payloads.push(encode(from, std::mem::take(&mut part)));
            bytes = 0;
        }
        bytes += size;
        part.jobs.push(change.clone());
    }
    part.batches = changes.batches.clone();
    payloads.push(encode(from, part));
    payloads
}

fn encode(from: Uuid, changes: Changes) -> String {
    serde_json::to_string(&Notice { from, changes }).expect("changes serialize")
}

/// Connects a listener to the channels every host sends on.
pub(super) async fn connect(pool: &PgPool) -> std::result::Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([CHANGES, CANCELS]).await?;
    Ok(listener)
}

/// Relays the notices `listener` receives until `closed`, handing those of other hosts
/// than `me` to `sink`; connects again from `pool` when its connection fails.
pub(super) async fn listen(
    mut listener: PgListener,
    pool: PgPool,
    me: Uuid,
    sink: Sink,
    closed: CancellationToken,
) {
    loop {
        let failed = tokio::select! {
            () = closed.cancelled() => return,
            failed = relay(&mut listener, me, &sink) => failed,
        };
        tracing::warn!(error = %failed, "listening for other hosts' changes failed; retrying");
        listener = loop {
            tokio::select! {
                () = closed.cancelled() => return,
                () = tokio::time::sleep(RETRY_AFTER) => {}
            }
            match connect(&pool).await {
                Ok(listener) => break listener,
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other hosts' changes failed; retrying")
                }
            }
        };
    }
}

/// Relays notices to `sink` until the connection fails; returns why.
async fn relay(listener: &mut PgListener, me: Uuid, sink: &Sink) -> sqlx::Error {
    loop {
        match listener.try_recv().await {
            Ok(Some(notice)) => hand_over(&notice, me, sink),
            Ok(None) => tracing::warn!("the connection for other hosts' changes was lost"),
            Err(e) => return e,
        }
    }
}

/// Hands one notice to the sink, if it came from another host.
fn hand_over(notice: &PgNotification, me: Uuid, sink: &Sink) {
    let Some(sink) = sink.get() else { return };
    match notice.channel() {
        CANCELS => match notice.payload().parse::<JobId>() {
            Ok(job) => sink.cancel_asked(job),
            Err(e) => tracing::warn!(error = %e, "a cancel notice names no job"),
        },
        _ => match serde_json::from_str::<Notice>(notice.payload()) {
            Ok(notice) if notice.from != me => sink.changed_elsewhere(&notice.changes),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "a change notice does not decode"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobState, new_job_id};
    use crate::store::changes::JobChange;

    fn change(reason_bytes: usize) -> JobChange {
        JobChange {
            id: new_job_id(),
            from: Some(JobState::Enqueued),
            to: Some(JobState::Processing),
            reason: "r".repeat(reason_bytes),
            at: 1,
            queue: "default".into(),
            plugin: "echo".into(),
            attempt: 1,
            batch: None,
            agent: None,
            task: None,
            lease: None,
        }
    }

    #[test]
    fn many_changes_are_split_into_notices_postgres_takes_in_order() {
        let changes = Changes {
            jobs: (0..200).map(|_| change(100)).collect(),
            batches: Vec::new(),
        };
        let from = Uuid::now_v7();
        let payloads = payloads(from, &changes);
        assert!(payloads.len() > 1, "{} notices", payloads.len());
        let mut told = Vec::new();
        for payload in &payloads {
            assert!(payload.len() < 8_000, "{} bytes", payload.len());
            let notice: Notice = serde_json::from_str(payload).unwrap();
            assert_eq!(notice.from, from);
            told.extend(notice.changes.jobs);
        }
        assert_eq!(told, changes.jobs, "every change, in order");
    }
}
