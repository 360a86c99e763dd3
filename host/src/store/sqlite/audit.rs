//! The audit log on SQLite: the `audit_log` table, appended to only.

crate::store::audit::audit_store!(super::SqliteStore, readers);
