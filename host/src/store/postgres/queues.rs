//! Queue controls on PostgreSQL: the `queues` table, which every claim reads (nothing is
//! cached, so a control set through one host holds on every host at its next claim).

crate::store::queues::queue_store!(super::PostgresStore, pool);
