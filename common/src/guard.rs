//! The deadline guard's arithmetic, and the payload-size guard.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

    #[test]
    fn deadlines_in_the_past_are_now() {
        let before = Instant::now();
        let d = deadline_instant(1);
        assert!(d >= before && d <= Instant::now());
        let later = deadline_instant(u64::MAX / 2);
        assert!(later > Instant::now() + Duration::from_secs(3600));
    }
}
