//! Cron expressions of the schedules (seconds first, weekdays by name).

use std::str::FromStr;

use cron::Schedule;

/// A cron expression (6 or 7 fields, seconds first), or what is wrong with it.
pub fn parse_cron(expression: &str) -> Result<Schedule, String> {
    Schedule::from_str(expression).map_err(|e| {
        format!(
            "{expression:?} is not a cron expression (6 or 7 fields, seconds first, \
             weekdays by name such as Mon): {e}"
        )
    })
}
