//! The audit log on PostgreSQL: the `audit_log` table, appended to only.

crate::store::audit::audit_store!(super::PostgresStore, pool);
