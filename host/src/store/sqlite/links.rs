//! A job's links on SQLite (see [`crate::store::links`]).

crate::store::links::link_reads!(sqlx::SqliteConnection);
