//! Reading a job's log on PostgreSQL (see [`crate::store::logs`]).

crate::store::logs::log_reads!(sqlx::Postgres, sqlx::PgConnection);
