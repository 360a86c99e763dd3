//! A job's links on PostgreSQL (see [`crate::store::links`]).

crate::store::links::link_reads!(sqlx::PgConnection);
