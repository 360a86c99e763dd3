//! API tokens on SQLite: the `api_tokens` table.

crate::store::tokens::token_store!(super::SqliteStore, readers);
