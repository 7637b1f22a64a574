//! The deadline guard's timer and arithmetic, and the payload-size guard.

use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::time::Sleep;

use crate::TaskError;

/// Step Functions' limit on a state's input or output, in bytes.
pub const STEP_FUNCTIONS_PAYLOAD_LIMIT: usize = 262_144;

/// Refuses an output Step Functions would refuse with the uncatchable
/// `States.DataLimitExceeded`, as a catchable `Task.Failed` naming the size.
pub fn check_output_size(len: usize) -> Result<(), TaskError> {
    if len > STEP_FUNCTIONS_PAYLOAD_LIMIT {
        return Err(TaskError::failed(format!(
            "task output is {len} bytes, over the Step Functions payload limit of \
             {STEP_FUNCTIONS_PAYLOAD_LIMIT} bytes; store large results in S3 and return a reference"
        )));
    }
    Ok(())
}

/// The Lambda deadline (milliseconds since the epoch) as an `Instant`.
pub(crate) fn deadline_instant(deadline_epoch_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let now = Instant::now();
    let left = Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms));
    // A nonsense deadline far in the future must not overflow.
    now.checked_add(left)
        .unwrap_or_else(|| now + Duration::from_secs(24 * 3600))
}

/// The deadline guard's timer, one per process, moved to each invocation's
/// deadline instead of made anew.
///
/// A new timer, with none pending, is the timer wheel's earliest: tokio
/// wakes the thread parked on its driver to take note, one cross-thread
/// wake-up (a `write` to its eventfd, a `futex` and an `epoll_wait`) per
/// invocation. Moving a pending timer to a later deadline, as each new
/// invocation's is, only updates it in place: the driver finds out when the
/// old deadline comes, once, not on every invocation.
#[derive(Debug, Default)]
pub(crate) struct DeadlineTimer {
    idle: Mutex<Option<Pin<Box<Sleep>>>>,
}

impl DeadlineTimer {
    /// A timer that fires at `at`: the process's one, when no other
    /// invocation holds it, else a new one. Must be called on the runtime.
    pub(crate) fn arm(&self, at: Instant) -> Pin<Box<Sleep>> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.take());
        match idle {
            Some(mut timer) => {
                timer.as_mut().reset(at.into());
                timer
            }
            None => Box::pin(tokio::time::sleep_until(at.into())),
        }
    }

    /// Keeps `timer` for the next invocation (it stays pending until then).
    pub(crate) fn release(&self, timer: Pin<Box<Sleep>>) {
        if let Ok(mut idle) = self.idle.lock() {
            *idle = Some(timer);
        }
    }
}

/// How long a Sentry flush may take: at most `limit`, and never so long that
/// the response could not be posted before `deadline` (`reserve` is kept
/// for that).
pub(crate) fn flush_budget(
    limit: Duration,
    deadline: Instant,
    reserve: Duration,
    now: Instant,
) -> Duration {
    limit.min(
        deadline
            .saturating_duration_since(now)
            .saturating_sub(reserve),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_guard_names_the_size() {
        assert!(check_output_size(STEP_FUNCTIONS_PAYLOAD_LIMIT).is_ok());
        match check_output_size(STEP_FUNCTIONS_PAYLOAD_LIMIT + 1) {
            Err(TaskError::Failed(m)) => {
                assert!(m.contains("262145 bytes"), "{m}");
                assert!(m.contains("262144"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flush_never_runs_past_the_deadline() {
        let now = Instant::now();
        let reserve = Duration::from_millis(100);
        let two = Duration::from_secs(2);
        assert_eq!(
            flush_budget(two, now + Duration::from_secs(10), reserve, now),
            two
        );
        assert_eq!(
            flush_budget(two, now + Duration::from_millis(600), reserve, now),
            Duration::from_millis(500)
        );
        assert_eq!(
            flush_budget(two, now + Duration::from_millis(50), reserve, now),
            Duration::ZERO
        );
        assert_eq!(flush_budget(two, now, reserve, now + two), Duration::ZERO);
    }

    /// Waits for `timer` on the paused clock: how long it took to fire.
    async fn fired_after(timer: &mut Pin<Box<Sleep>>) -> Duration {
        let armed_at = tokio::time::Instant::now();
        timer.as_mut().await;
        armed_at.elapsed()
    }

    fn in_paused(after: Duration) -> Instant {
        tokio::time::Instant::now().into_std() + after
    }

    #[tokio::test(start_paused = true)]
    async fn the_reused_timer_fires_at_each_new_deadline_later_or_earlier() {
        let timers = DeadlineTimer::default();
        for after in [5, 60, 1].map(Duration::from_secs) {
            let mut timer = timers.arm(in_paused(after));
            let took = fired_after(&mut timer).await;
            // The timer wheel rounds deadlines up to the next millisecond.
            assert!(
                took >= after && took <= after + Duration::from_millis(1),
                "{took:?}"
            );
            timers.release(timer);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_released_before_it_fired_is_moved_not_left_to_fire() {
        let timers = DeadlineTimer::default();
        let early = timers.arm(in_paused(Duration::from_secs(1)));
        timers.release(early);
        let mut later = timers.arm(in_paused(Duration::from_secs(30)));
        let took = fired_after(&mut later).await;
        assert!(took >= Duration::from_secs(30), "{took:?}");
    }

    #[test]
    fn deadlines_in_the_past_are_now() {
        let before = Instant::now();
        let d = deadline_instant(1);
        assert!(d >= before && d <= Instant::now());
        let later = deadline_instant(u64::MAX / 2);
        assert!(later > Instant::now() + Duration::from_secs(3600));
    }
}
