//! Tasks on SQLite: the `tasks` table (see the migration), each task read joined with
//! its job. Writes run on the writer's connection, each in a transaction of its own.

crate::store::tasks::task_store!(
    super::SqliteStore,
    sqlx::Sqlite,
    readers,
    super::batch::insert
);
