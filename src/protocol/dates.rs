//! Dates as pages show them, in UTC: "5 Dec 2026" (the account page's passkey list) and
//! "5 Dec 2026, 14:05 UTC" (when a one-time link stops working). Pages carry no script to
//! localise times, so the zone is always said.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Year, month (1–12) and day of a Unix time (H. Hinnant's days-to-civil algorithm).
fn civil(unix: i64) -> (i64, usize, i64) {
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as usize, d)
}

/// "5 Dec 2026".
pub fn day(unix: i64) -> String {
    let (y, m, d) = civil(unix);
    format!("{d} {} {y}", MONTHS[m - 1])
}

/// "5 Dec 2026, 14:05 UTC".
pub fn day_and_time(unix: i64) -> String {
    let seconds = unix.rem_euclid(86_400);
    format!(
        "{}, {:02}:{:02} UTC",
        day(unix),
        seconds / 3600,
        seconds % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_civil_dates() {
        assert_eq!(day(0), "1 Jan 1970");
        assert_eq!(day(951_782_400), "29 Feb 2000");
        assert_eq!(day(1_796_428_800), "5 Dec 2026");
        assert_eq!(day(-1), "31 Dec 1969");
    }

    #[test]
    fn times_say_their_zone() {
        assert_eq!(
            day_and_time(1_796_428_800 + 14 * 3600 + 5 * 60 + 59),
            "5 Dec 2026, 14:05 UTC"
        );
        assert_eq!(day_and_time(0), "1 Jan 1970, 00:00 UTC");
    }
}
