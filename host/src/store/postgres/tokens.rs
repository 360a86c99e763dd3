//! API tokens on PostgreSQL: the `api_tokens` table. A name is taken once (its primary
//! key), so two hosts creating the same token at once give one of them a conflict.

crate::store::tokens::token_store!(super::PostgresStore, pool);
