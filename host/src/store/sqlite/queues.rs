//! Queue controls on SQLite: the `queues` table, which claims read.

crate::store::queues::queue_store!(super::SqliteStore, readers);
