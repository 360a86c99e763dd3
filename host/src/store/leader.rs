//! Leadership: which host runs the upkeep that every host would otherwise repeat
//! (promotion, recurring firings, lease rescue, workflow advancing, alerts). The lead is
//! a lease: its holder renews it, and once it has expired any host may take it. It is an
//! economy, not a guard: every upkeep write is safe when two hosts run it at once (a host
//! that stalled past its lease may still believe it leads until its next renewal).

use crate::model::Millis;
use crate::store::Result;
use async_trait::async_trait;

/// Who leads.
#[async_trait]
pub trait Leadership {
    /// Takes the lead for `owner` until `until`, or keeps it, unless another owner holds
    /// it past `now`; whether `owner` leads.
    async fn lead(&self, owner: &str, until: Millis, now: Millis) -> Result<bool>;

    /// Gives the lead up if `owner` holds it, so that another host takes it at once.
    async fn resign(&self, owner: &str) -> Result<()>;
}
