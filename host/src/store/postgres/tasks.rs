//! Tasks on PostgreSQL: the `tasks` table (see the migration), each task read joined
//! with its job. Each write is a transaction of its own.

crate::store::tasks::task_store!(
    super::PostgresStore,
    sqlx::Postgres,
    pool,
    super::jobs::insert
);
