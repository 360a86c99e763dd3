//! SQLite's search index: jobs are found alike before and after they are indexed, the
//! index follows their text and their deletion, any text is a safe query, and the writer
//! indexes what waits while it has nothing else to do.

use super::search::{assert_found_by_text, found, indexed, store_searched, text};
use super::sqlite::{connect, open_sqlite};
use super::*;
use crate::store::sqlite::SqliteStore;
use sqlx::{ConnectOptions, Connection};
use std::path::Path;
use std::time::Duration;

/// Index rows of the store in `dir` (those matching `phrase`, if given).
async fn index_rows(dir: &Path, phrase: Option<&str>) -> i64 {
    let mut conn = connect(&dir.join("jobs.db")).await;
    let rows = match phrase {
        None => sqlx::query_scalar("SELECT count(*) FROM job_search"),
        Some(phrase) => {
            sqlx::query_scalar("SELECT count(*) FROM job_search WHERE job_search MATCH ?1")
                .bind(format!("\"{phrase}\""))
        }
    };
    let count = rows
        .fetch_one(&mut conn)
        .await
        .expect("counting index rows");
    conn.close().await.expect("closing");
    count
}

/// Lets the writer index again, and wakes it with a write.
async fn release_index(store: &SqliteStore) {
    store.hold_search_index(false);
    add(store, new_job("other", 0)).await;
}

#[tokio::test]
async fn jobs_are_found_by_text_before_they_are_indexed() {
    let (store, _dir) = open_sqlite().await;
    store.hold_search_index(true);
    let jobs = store_searched(store.as_ref()).await;
    assert_eq!(store.search_backlog().await.unwrap(), 5);
    assert_found_by_text(store.as_ref(), &jobs).await;
    store.close().await;
}

/// Claims the job waiting on `default` and fails it with `message`, to be retried at
/// once or not at all.
async fn fail_with(store: &dyn JobStore, message: &str, then: AfterFailure) -> JobId {
    store.promote_due(NOW, 10).await.unwrap();
    let claimed = claim_one(store, NOW).await;
    let failed = Failure {
        error: JobError::new(ErrorKind::Retryable, message),
        ..failure(ErrorKind::Retryable, then)
    };
    store
        .fail(claimed.job.id, claimed.lease, failed, NOW)
        .await
        .unwrap();
    claimed.job.id
}

#[tokio::test]
async fn a_jobs_new_error_text_is_found_and_its_old_one_no_longer() {
    let (store, dir) = open_sqlite().await;
    add(store.as_ref(), new_job("default", 0)).await;
    let job = fail_with(store.as_ref(), "first trouble", AfterFailure::RetryAt(NOW)).await;
    indexed(store.as_ref()).await;
    assert_eq!(found(store.as_ref(), text("first trouble")).await, [job]);

    store.hold_search_index(true);
    fail_with(store.as_ref(), "second trouble", AfterFailure::Fail).await;
    for _indexed_or_not in 0..2 {
        assert_eq!(found(store.as_ref(), text("SECOND trouble")).await, [job]);
        assert!(
            found(store.as_ref(), text("first trouble"))
                .await
                .is_empty()
        );
        release_index(&store).await;
        indexed(store.as_ref()).await;
    }
    assert_eq!(index_rows(dir.path(), Some("first trouble")).await, 0);
    assert_eq!(index_rows(dir.path(), Some("second trouble")).await, 1);
    store.close().await;
}

#[tokio::test]
async fn a_deleted_job_leaves_no_index_row() {
    let (store, dir) = open_sqlite().await;
    let older = add(store.as_ref(), new_job("default", 0)).await.id;
    indexed(store.as_ref()).await;
    store.hold_search_index(true);
    let newer = add(store.as_ref(), new_job("default", 0)).await.id;
    assert_eq!(index_rows(dir.path(), None).await, 1);
    assert_eq!(store.search_backlog().await.unwrap(), 1);
    store.delete(older, NOW).await.unwrap();
    store.delete(newer, NOW).await.unwrap();
    assert_eq!(index_rows(dir.path(), None).await, 0);
    assert_eq!(store.search_backlog().await.unwrap(), 0);
    store.close().await;
}

#[tokio::test]
async fn the_writer_indexes_a_backlog_while_idle_and_answers_writes_meanwhile() {
    const JOBS: usize = 20_000;
    let (store, dir) = open_sqlite().await;
    store.hold_search_index(true);
    let jobs = (0..JOBS).map(|_| new_job("default", 0)).collect();
    store.enqueue_many(jobs, NOW).await.unwrap();
    assert_eq!(store.search_backlog().await.unwrap(), JOBS as u64);
    release_index(&store).await;
    let started = std::time::Instant::now();
    while store.search_backlog().await.unwrap() > JOBS as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "indexing began"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    add(store.as_ref(), new_job("default", 0)).await;
    assert!(
        store.search_backlog().await.unwrap() > 0,
        "a write is answered between two chunks, not after the whole backlog"
    );
    indexed(store.as_ref()).await;
    assert_eq!(index_rows(dir.path(), None).await, JOBS as i64 + 2);
    store.close().await;
}

/// Texts that mean something to FTS5's query syntax, or are long or not ASCII.
fn hostile_texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "\"",
        "\"\"",
        "say \"hi\"",
        "*",
        "star*",
        "NEAR(",
        "NEAR(a b)",
        "AND",
        "a AND b",
        "OR",
        "NOT",
        "^",
        "^start",
        "col:x",
        "(",
        ")",
        "{a b}",
        "-x",
        "+",
        "'",
        "';--",
        "\\",
        "\\\"",
        "%",
        "_",
        "a_m",
        "日本語",
        "本語",
        "École",
        "école",
        "🦀🦀",
        "   ",
    ]
    .map(String::from)
    .into();
    texts.push("x".repeat(1000));
    texts.push("\"NEAR(*^ AND ".repeat(77));
    texts
}

/// Whether a search for `text` should find a job with this id and args text: the id
/// starts with it or the args contain it, ASCII letters in any case.
fn expected(id: JobId, args: &str, text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    id.to_string().starts_with(&text) || args.to_ascii_lowercase().contains(&text)
}

#[tokio::test]
async fn any_text_is_answered_as_a_scan_would_before_and_after_indexing() {
    let (store, _dir) = open_sqlite().await;
    store.hold_search_index(true);
    let texts = hostile_texts();
    for text in &texts {
        let args = json!({ "note": format!("before {text} after") });
        add(store.as_ref(), NewJob::new("echo", raw(args), "default")).await;
    }
    for _indexed_or_not in 0..2 {
        let every = JobFilter {
            limit: 100,
            ..JobFilter::default()
        };
        let jobs = store.list(&every).await.unwrap().jobs;
        let mut answered = 0;
        for query in &texts {
            let want: Vec<JobId> = jobs
                .iter()
                .filter(|job| expected(job.id, job.args.as_str(), query))
                .map(|job| job.id)
                .collect();
            answered += usize::from(!want.is_empty());
            assert_eq!(found(store.as_ref(), text(query)).await, want, "{query:?}");
        }
        assert!(answered > texts.len() / 2, "most texts find a job");
        release_index(&store).await;
        indexed(store.as_ref()).await;
    }
    store.close().await;
}

#[tokio::test]
async fn jobs_stored_before_the_index_existed_are_indexed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.db");
    let earlier = tempfile::tempdir().expect("temp dir");
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
    for entry in std::fs::read_dir(migrations).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().as_ref() < "0014" {
            std::fs::copy(entry.path(), earlier.path().join(entry.file_name())).unwrap();
        }
    }
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    let before = sqlx::migrate::Migrator::new(earlier.path()).await.unwrap();
    before.run(&mut conn).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = new_job_id();
        sqlx::query(
            "INSERT INTO jobs (id, plugin, args, queue, priority, state, max_attempts, \
             run_at, created_at, state_at, state_reason) \
             VALUES (?1, 'echo', ?2, 'default', 0, 'enqueued', 3, 0, 0, 0, 'stored')",
        )
        .bind(id.to_string())
        .bind(json!({ "note": format!("stored before search {n}") }).to_string())
        .execute(&mut conn)
        .await
        .unwrap();
        ids.push(id);
    }
    conn.close().await.unwrap();

    let store = SqliteStore::open(&path, Durability::Normal).await.unwrap();
    indexed(&store).await;
    assert_eq!(index_rows(dir.path(), None).await, 3);
    ids.reverse();
    assert_eq!(found(&store, text("before search")).await, ids);
    store.close().await;
}
