//! Background jobs of the server on a timer.

use std::future::Future;
use std::time::Duration;

/// Runs `job` now and then every `period`, forever; a run that overruns delays the next
/// one instead of piling them up.
pub async fn repeat<F, Fut>(period: Duration, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        job().await;
    }
}

/// The slot of `now` for runs every `every`: the same number on every instance.
pub fn slot(now: chrono::DateTime<chrono::Utc>, every: Duration) -> i64 {
    now.timestamp()
        .div_euclid(i64::try_from(every.as_secs().max(1)).unwrap_or(i64::MAX))
}
