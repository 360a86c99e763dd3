//! Reading a job's log on SQLite (see [`crate::store::logs`]).

crate::store::logs::log_reads!(sqlx::Sqlite, sqlx::SqliteConnection);
