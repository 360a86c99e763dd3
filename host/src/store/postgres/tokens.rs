//! tokens on PostgreSQL (being written).

#![allow(unused)]

use super::PostgresStore;
use crate::model::Millis;
use crate::model::token::{Role, TokenHash};
use crate::store::tokens::{ActiveToken, TokenInfo, TokenStore};
use crate::store::{Error, Result};
use async_trait::async_trait;

#[async_trait]
impl TokenStore for PostgresStore {
    async fn create_token(
        &self,
        name: &str,
        role: Role,
        hash: TokenHash,
        now: Millis,
    ) -> Result<TokenInfo> {
        todo!()
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        todo!()
    }

    async fn active_tokens(&self) -> Result<Vec<ActiveToken>> {
        todo!()
    }

    async fn revoke_token(&self, name: &str, now: Millis) -> Result<TokenInfo> {
        todo!()
    }
}
