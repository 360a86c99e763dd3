//! Leadership on SQLite: the database has one host, so the lead is kept in memory, by the
//! same rule as a shared database keeps it.

use super::SqliteStore;
use crate::model::Millis;
use crate::store::{Leadership, Result};
use async_trait::async_trait;

#[async_trait]
impl Leadership for SqliteStore {
    async fn lead(&self, owner: &str, until: Millis, now: Millis) -> Result<bool> {
        let mut lead = self.lead.lock().expect("lead lock poisoned");
        let free = match &*lead {
            Some((holder, expires_at)) => holder == owner || *expires_at < now,
            None => true,
        };
        if free {
            *lead = Some((owner.to_owned(), until));
        }
        Ok(free)
    }

    async fn resign(&self, owner: &str) -> Result<()> {
        let mut lead = self.lead.lock().expect("lead lock poisoned");
        if lead.as_ref().is_some_and(|(holder, _)| holder == owner) {
            *lead = None;
        }
        Ok(())
    }
}
