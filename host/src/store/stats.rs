//! The rollup behind the analytics (see [`crate::model::stats`]): every store counts
//! each run as it records it, in the same transaction, once per resolution; this is how
//! it is read back and pruned.

use super::Result;
use crate::model::Millis;
use crate::model::stats::{Resolution, RollupRow};
use async_trait::async_trait;

/// How long the rollup keeps its buckets, by resolution: minutes for a week, hours for
/// 90 days, days for ten years.
pub fn kept_for(resolution: Resolution) -> Millis {
    const DAY: Millis = 86_400_000;
    match resolution {
        Resolution::Minute => 7 * DAY,
        Resolution::Hour => 90 * DAY,
        Resolution::Day => 3650 * DAY,
    }
}

/// Reading and pruning the rollup; every [`super::JobStore`] is one.
#[async_trait]
pub trait StatsStore {
    /// The rows of `resolution` whose bucket starts in `[from, to)`.
    async fn rollup(
        &self,
        resolution: Resolution,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<RollupRow>>;

    /// Removes the buckets older than each resolution keeps (see [`kept_for`]) as of
    /// `now`; returns how many rows went.
    async fn prune_rollup(&self, now: Millis) -> Result<u64>;
}
