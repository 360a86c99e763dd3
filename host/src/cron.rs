//! Recurring-job schedules: cron expressions evaluated in an IANA time zone.
//!
//! Pure logic, no I/O. Times are [`Millis`]; every firing falls on a whole second.
//!
//! # Syntax
//! - Standard 5 fields `minute hour day-of-month month day-of-week`, or 6 fields with
//!   seconds first: `second minute hour day-of-month month day-of-week`.
//! - Each field is a comma-separated list of items; an item is `*`, a value `a`, a range
//!   `a-b`, or a stepped `*/n`, `a-b/n` or `a/n` (the last meaning `a-max/n`).
//! - Ranges: second and minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or
//!   `JAN`-`DEC`, day-of-week 0-7 or `SUN`-`SAT` (0 and 7 are Sunday; a range may end on
//!   Sunday, as in `FRI-SUN` or `5-0`). Names are case-insensitive.
//! - `?` means the same as `*` in day-of-month and day-of-week.
//! - Day-of-month and day-of-week follow the usual cron rule: when both are restricted
//!   (neither is exactly `*` or `?`) a day matches if *either* matches; otherwise only the
//!   restricted one counts.
//! - Macros: `@yearly`/`@annually` (`0 0 1 1 *`), `@monthly` (`0 0 1 * *`), `@weekly`
//!   (`0 0 * * 0`), `@daily`/`@midnight` (`0 0 * * *`), `@hourly` (`0 * * * *`).
//!
//! # Daylight-saving time
//! The fields are matched against local wall-clock time in the schedule's zone. Two
//! guarantees hold: a scheduled local time is never silently lost, and (outside the one
//! exception below) never fires twice.
//! - **Skipped local time** (spring-forward gap, e.g. 02:30 in Europe/Berlin on the last
//!   Sunday of March): it fires once, at the first instant after the gap (03:00 local
//!   summer time). All skipped times of one gap, and an occurrence scheduled exactly at
//!   the end of the gap, share that single firing.
//! - **Repeated local time** (fall-back overlap, e.g. 02:30 in Europe/Berlin on the last
//!   Sunday of October): it fires once, at its first (earlier, summer-time) occurrence.
//! - **Exception, schedules that select every hour** (the hour field covers 0-23, e.g.
//!   `*/15 * * * *`, `0 * * * *`, `@hourly`): these follow elapsed time through a repeated
//!   hour and fire in both passes of it, so `*/15 * * * *` fires every 15 real minutes:
//!   100 times on a 25-hour day and 92 times on a 23-hour day (02:00-02:45 fall in the gap
//!   and share the 03:00 firing).
//!
//! The zone data is chrono-tz's compiled tzdb. It tabulates transitions through 2099; from
//! 2100 on, each zone keeps its last offset (e.g. Europe/Berlin stays on winter time).
//!
//! # Search bound
//! [`Schedule::next_after`] steps through calendar fields (matching month, then day, then
//! time of day), never minute by minute. Any expression that can fire at all fires within
//! eight years (29 February can be eight years apart, as in 2096 and 2104), so the search
//! gives up after nine years and returns `None` for impossible dates such as `0 0 30 2 *`.

mod describe;

pub use describe::describe;

use crate::model::Millis;
use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Timelike,
};
use chrono_tz::{GapInfo, Tz};
use std::fmt;

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    expression: String,
    timezone: String,
    tz: Tz,
    fields: Fields,
}

/// Why an expression or time zone was rejected; each message names the wrong part.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    /// The expression does not have 5 or 6 whitespace-separated fields.
    #[error("expected 5 or 6 fields, got {0}")]
    FieldCount(usize),
    /// An `@` macro that is not one of the supported ones.
    #[error("unknown macro `{0}`")]
    UnknownMacro(String),
    /// A value that is neither a number nor (where allowed) a name.
    #[error("{field} field `{value}` is not a valid value")]
    InvalidValue {
        /// The field holding the value.
        field: Field,
        /// The offending text.
        value: String,
    },
    /// A number outside the field's range.
    #[error("{field} field `{value}` is out of range {min}-{max}")]
    OutOfRange {
        /// The field holding the value.
        field: Field,
        /// The offending value as written.
        value: String,
        /// The field's smallest value.
        min: u32,
        /// The field's largest value.
        max: u32,
    },
    /// A range whose start is after its end.
    #[error("{field} field range `{range}` runs backwards")]
    BackwardsRange {
        /// The field holding the range.
        field: Field,
        /// The range as written.
        range: String,
    },
    /// A step of zero or larger than the field's largest value.
    #[error("{field} field step `{step}` is out of range 1-{max}")]
    StepOutOfRange {
        /// The field holding the step.
        field: Field,
        /// The step as written.
        step: String,
        /// The largest step allowed.
        max: u32,
    },
    /// A zone name the tz database does not know.
    #[error("unknown time zone `{0}`")]
    UnknownTimeZone(String),
}

/// One field of a cron expression, as named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Seconds (0-59), only in 6-field expressions.
    Second,
    /// Minutes (0-59).
    Minute,
    /// Hours (0-23).
    Hour,
    /// Day of the month (1-31).
    DayOfMonth,
    /// Month (1-12, `JAN`-`DEC`).
    Month,
    /// Day of the week (0-7, `SUN`-`SAT`; 0 and 7 are Sunday).
    DayOfWeek,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        })
    }
}

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const ALL_HOURS: u64 = (1 << 24) - 1;
/// Years searched before giving up; see the module doc.
const SEARCH_YEARS: i32 = 9;
/// Bound on search restarts in one `next_after` (at most three are needed).
const MAX_ROUNDS: usize = 8;

impl Field {
    fn bounds(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }

    /// Names accepted for values, with the value of the first name.
    fn names(self) -> (&'static [&'static str], u32) {
        match self {
            Field::Month => (&MONTH_NAMES, 1),
            Field::DayOfWeek => (&WEEKDAY_NAMES, 0),
            _ => (&[], 0),
        }
    }

    fn accepts_question_mark(self) -> bool {
        matches!(self, Field::DayOfMonth | Field::DayOfWeek)
    }
}

/// The expanded fields: bit `v` set means value `v` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    /// Bits 0-6, Sunday = 0.
    weekdays: u64,
    /// Day-of-month is neither `*` nor `?`.
    days_restricted: bool,
    /// Day-of-week is neither `*` nor `?`.
    weekdays_restricted: bool,
}

impl Schedule {
    /// Parses `expression` evaluated in IANA zone `timezone` (e.g. "Europe/Berlin", "UTC").
    ///
    /// # Errors
    /// A [`ScheduleError`] naming the wrong field, value or zone.
    pub fn parse(expression: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let fields = parse_expression(expression)?;
        let tz = timezone
            .parse::<Tz>()
            .map_err(|_| ScheduleError::UnknownTimeZone(timezone.to_string()))?;
        Ok(Schedule {
            expression: expression.to_string(),
            timezone: timezone.to_string(),
            tz,
            fields,
        })
    }

    /// The first firing time strictly after `after`, or None if there is none (e.g. Feb 30).
    ///
    /// Daylight-saving transitions are handled as the module doc describes.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        let mut cursor = after.div_euclid(1000).checked_add(1)?;
        for _ in 0..MAX_ROUNDS {
            match self.step(cursor)? {
                Step::Fire(second) if second >= cursor => return second.checked_mul(1000),
                Step::Fire(_) => cursor = cursor.checked_add(1)?,
                Step::ResumeAt(second) => cursor = second,
            }
        }
        None
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone as given.
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// The instant `at` as RFC 3339 with the zone's offset then, to the second.
    pub fn local_rfc3339(&self, at: Millis) -> String {
        DateTime::from_timestamp_millis(at)
            .unwrap_or_default()
            .with_timezone(&self.tz)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    }

    /// One round of the search from `cursor` (Unix seconds, inclusive).
    fn step(&self, cursor: i64) -> Option<Step> {
        let local = self.tz.timestamp_opt(cursor, 0).single()?.naive_local();
        if let Some(overlap) = self.overlap_at(&local) {
            return Some(self.step_in_overlap(cursor, &local, &overlap));
        }
        let next = self.fields.next_local(&local)?;
        self.earliest_instant(&next).map(Step::Fire)
    }

    /// The search from `cursor`, which lies in the repeated hour `overlap`.
    fn step_in_overlap(&self, cursor: i64, local: &NaiveDateTime, overlap: &Overlap) -> Step {
        let every_hour = self.fields.hours == ALL_HOURS;
        let within = |next: Option<NaiveDateTime>| next.filter(|next| *next < overlap.end);
        if cursor < overlap.transition {
            // First pass.
            if let Some(next) = within(self.fields.next_local(local)) {
                return Step::Fire(seconds_of(&next) - overlap.first_offset);
            }
            if every_hour && let Some(next) = within(self.fields.next_local(&overlap.start)) {
                return Step::Fire(seconds_of(&next) - overlap.second_offset);
            }
        } else if every_hour && let Some(next) = within(self.fields.next_local(local)) {
            return Step::Fire(seconds_of(&next) - overlap.second_offset);
        }
        Step::ResumeAt(seconds_of(&overlap.end) - overlap.second_offset)
    }

    /// The instant `local` fires at: itself, its earlier occurrence, or the end of its gap.
    fn earliest_instant(&self, local: &NaiveDateTime) -> Option<i64> {
        match self.tz.from_local_datetime(local) {
            LocalResult::Single(at) => Some(at.timestamp()),
            LocalResult::Ambiguous(a, b) => Some(a.timestamp().min(b.timestamp())),
            LocalResult::None => Some(GapInfo::new(local, &self.tz)?.end?.timestamp()),
        }
    }

    /// The repeated hour around `local`, if `local` occurs twice.
    fn overlap_at(&self, local: &NaiveDateTime) -> Option<Overlap> {
        let LocalResult::Ambiguous(a, b) = self.tz.from_local_datetime(local) else {
            return None;
        };
        let (first, second) = if a.timestamp() <= b.timestamp() {
            (a, b)
        } else {
            (b, a)
        };
        let first_offset = i64::from(first.offset().fix().local_minus_utc());
        let second_offset = i64::from(second.offset().fix().local_minus_utc());
        // The transition is the first instant in (first, second] with the second offset.
        let (mut before, mut after) = (first.timestamp(), second.timestamp());
        while after - before > 1 {
            let middle = before + (after - before) / 2;
            if self.offset_at(middle)? == second_offset {
                after = middle;
            } else {
                before = middle;
            }
        }
        Some(Overlap {
            transition: after,
            first_offset,
            second_offset,
            start: naive_of(after.checked_add(second_offset)?)?,
            end: naive_of(after.checked_add(first_offset)?)?,
        })
    }

    /// The zone's UTC offset in seconds at Unix second `at`.
    fn offset_at(&self, at: i64) -> Option<i64> {
        let at = DateTime::from_timestamp(at, 0)?.naive_utc();
        Some(i64::from(
            self.tz
                .offset_from_utc_datetime(&at)
                .fix()
                .local_minus_utc(),
        ))
    }
}

/// What one search round found.
enum Step {
    /// Fire at this Unix second.
    Fire(i64),
    /// Nothing before this Unix second; search again from it.
    ResumeAt(i64),
}

/// A repeated local hour (fall-back): local times in `start..end` occur twice.
struct Overlap {
    /// The first instant (Unix second) of the second pass.
    transition: i64,
    /// UTC offset in seconds during the first pass.
    first_offset: i64,
    /// UTC offset in seconds during the second pass.
    second_offset: i64,
    start: NaiveDateTime,
    end: NaiveDateTime,
}

/// A local date-time as seconds, as if it were UTC.
fn seconds_of(local: &NaiveDateTime) -> i64 {
    local.and_utc().timestamp()
}

fn naive_of(seconds: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(seconds, 0).map(|at| at.naive_utc())
}

impl Fields {
    /// The first local date-time at or after `from` that matches, within the search bound.
    fn next_local(&self, from: &NaiveDateTime) -> Option<NaiveDateTime> {
        let last_year = from.year().checked_add(SEARCH_YEARS)?;
        let mut date = from.date();
        let mut time = Some(from.time());
        while date.year() <= last_year {
            if !has_bit(self.months, date.month()) {
                date = self.next_month_start(date)?;
                time = None;
                continue;
            }
            if self.day_matches(date)
                && let Some(at) = self.next_time(time)
            {
                return Some(date.and_time(at));
            }
            date = date.succ_opt()?;
            time = None;
        }
        None
    }

    /// The first day of the next matching month after `date`'s month.
    fn next_month_start(&self, date: NaiveDate) -> Option<NaiveDate> {
        let year = date.year();
        match next_bit(self.months, date.month() + 1) {
            Some(month) if month <= 12 => NaiveDate::from_ymd_opt(year, month, 1),
            _ => NaiveDate::from_ymd_opt(year.checked_add(1)?, next_bit(self.months, 1)?, 1),
        }
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let by_day = has_bit(self.days, date.day());
        let by_weekday = has_bit(self.weekdays, date.weekday().num_days_from_sunday());
        if self.days_restricted && self.weekdays_restricted {
            by_day || by_weekday
        } else {
            by_day && by_weekday
        }
    }

    /// The first matching time of day at or after `from` (None: midnight).
    fn next_time(&self, from: Option<NaiveTime>) -> Option<NaiveTime> {
        let (hour, minute, second) = from.map_or((0, 0, 0), |t| (t.hour(), t.minute(), t.second()));
        let mut h = next_bit(self.hours, hour)?;
        while h < 24 {
            let m_from = if h == hour { minute } else { 0 };
            let mut m = next_bit(self.minutes, m_from);
            while let Some(m_now) = m.filter(|m| *m < 60) {
                let s_from = if h == hour && m_now == minute {
                    second
                } else {
                    0
                };
                if let Some(s) = next_bit(self.seconds, s_from).filter(|s| *s < 60) {
                    return NaiveTime::from_hms_opt(h, m_now, s);
                }
                m = next_bit(self.minutes, m_now + 1);
            }
            h = next_bit(self.hours, h + 1)?;
        }
        None
    }
}

fn has_bit(bits: u64, value: u32) -> bool {
    value < 64 && bits & (1 << value) != 0
}

/// The smallest set bit at or above `from`.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    let rest = bits.checked_shr(from)?;
    (rest != 0).then(|| from + rest.trailing_zeros())
}

fn parse_expression(expression: &str) -> Result<Fields, ScheduleError> {
    let trimmed = expression.trim();
    let text = if trimmed.starts_with('@') {
        expand_macro(trimmed)?
    } else {
        trimmed
    };
    let parts: Vec<&str> = text.split_whitespace().collect();
    let (second, rest) = match parts.len() {
        5 => ("0", &parts[..]),
        6 => (parts[0], &parts[1..]),
        got => return Err(ScheduleError::FieldCount(got)),
    };
    let [minute, hour, day, month, weekday] = rest else {
        return Err(ScheduleError::FieldCount(parts.len()));
    };
    let weekdays = parse_field(weekday, Field::DayOfWeek)?;
    Ok(Fields {
        seconds: parse_field(second, Field::Second)?,
        minutes: parse_field(minute, Field::Minute)?,
        hours: parse_field(hour, Field::Hour)?,
        days: parse_field(day, Field::DayOfMonth)?,
        months: parse_field(month, Field::Month)?,
        // 7 is Sunday too.
        weekdays: (weekdays | (weekdays >> 7)) & 0x7f,
        days_restricted: !is_unrestricted(day),
        weekdays_restricted: !is_unrestricted(weekday),
    })
}

fn expand_macro(name: &str) -> Result<&'static str, ScheduleError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return Err(ScheduleError::UnknownMacro(name.to_string())),
    })
}

fn is_unrestricted(text: &str) -> bool {
    text == "*" || text == "?"
}

/// A field's matching values as bits.
fn parse_field(text: &str, field: Field) -> Result<u64, ScheduleError> {
    let mut bits = 0;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(invalid(field, text));
        }
        bits |= parse_item(item, field)?;
    }
    Ok(bits)
}

fn parse_item(item: &str, field: Field) -> Result<u64, ScheduleError> {
    let (min, max) = field.bounds();
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(step, field)?)),
        None => (item, None),
    };
    let (low, high) = if range == "*" || (range == "?" && field.accepts_question_mark()) {
        (min, max)
    } else if let Some((low, high)) = range.split_once('-') {
        let low = parse_value(low, field)?;
        let mut high = parse_value(high, field)?;
        if field == Field::DayOfWeek && high == 0 && low > 0 {
            high = 7;
        }
        if low > high {
            return Err(ScheduleError::BackwardsRange {
                field,
                range: range.to_string(),
            });
        }
        (low, high)
    } else {
        let value = parse_value(range, field)?;
        (value, if step.is_some() { max } else { value })
    };
    let step = step.unwrap_or(1) as usize;
    Ok((low..=high)
        .step_by(step)
        .fold(0, |bits, v| bits | (1 << v)))
}

fn parse_step(text: &str, field: Field) -> Result<u32, ScheduleError> {
    let (_, max) = field.bounds();
    let out_of_range = || ScheduleError::StepOutOfRange {
        field,
        step: text.to_string(),
        max,
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(field, text));
    }
    match text.parse::<u32>() {
        Ok(step) if (1..=max).contains(&step) => Ok(step),
        _ => Err(out_of_range()),
    }
}

fn parse_value(text: &str, field: Field) -> Result<u32, ScheduleError> {
    let (min, max) = field.bounds();
    let out_of_range = || ScheduleError::OutOfRange {
        field,
        value: text.to_string(),
        min,
        max,
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(value) if (min..=max).contains(&value) => Ok(value),
            _ => Err(out_of_range()),
        };
    }
    let (names, first) = field.names();
    names
        .iter()
        .zip(first..)
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, value)| value)
        .ok_or_else(|| invalid(field, text))
}

fn invalid(field: Field, text: &str) -> ScheduleError {
    ScheduleError::InvalidValue {
        field,
        value: text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    /// A UTC instant as millis.
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Millis {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid UTC time")
            .timestamp_millis()
    }

    fn schedule(expression: &str, zone: &str) -> Schedule {
        Schedule::parse(expression, zone).expect("parses")
    }

    fn error(expression: &str, zone: &str) -> String {
        Schedule::parse(expression, zone)
            .expect_err("rejected")
            .to_string()
    }

    /// All firings in `from..until` (UTC millis).
    fn firings(s: &Schedule, from: Millis, until: Millis) -> Vec<Millis> {
        let mut out = Vec::new();
        let mut at = from - 1;
        while let Some(next) = s.next_after(at).filter(|n| *n < until) {
            out.push(next);
            at = next;
        }
        out
    }

    fn next(expression: &str, zone: &str, after: Millis) -> Option<Millis> {
        schedule(expression, zone).next_after(after)
    }

    fn fields(expression: &str) -> Fields {
        schedule(expression, "UTC").fields
    }

    fn bits(values: &[u32]) -> u64 {
        values.iter().fold(0, |b, v| b | (1 << v))
    }

    // ---- parsing ----

    #[test]
    fn parses_every_item_form() {
        let f = fields("*/20 5,10-12 1-10/3 JAN-mar/2 mon-fri");
        assert_eq!(f.seconds, bits(&[0]));
        assert_eq!(f.minutes, bits(&[0, 20, 40]));
        assert_eq!(f.hours, bits(&[5, 10, 11, 12]));
        assert_eq!(f.days, bits(&[1, 4, 7, 10]));
        assert_eq!(f.months, bits(&[1, 3]));
        assert_eq!(f.weekdays, bits(&[1, 2, 3, 4, 5]));
        assert!(f.days_restricted && f.weekdays_restricted);
    }

    #[test]
    fn parses_wildcards_and_single_value_steps() {
        let f = fields("* * ? * ?");
        assert_eq!(f.minutes, (1 << 60) - 1);
        assert_eq!(f.hours, ALL_HOURS);
        assert_eq!(f.days, ((1 << 32) - 1) & !1);
        assert_eq!(f.months, ((1 << 13) - 1) & !1);
        assert_eq!(f.weekdays, 0x7f);
        assert!(!f.days_restricted && !f.weekdays_restricted);
        // `a/n` means `a-max/n`.
        assert_eq!(fields("50/3 * * * *").minutes, bits(&[50, 53, 56, 59]));
    }

    #[test]
    fn parses_seconds_field() {
        let f = fields("*/15 30 * * * *");
        assert_eq!(f.seconds, bits(&[0, 15, 30, 45]));
        assert_eq!(f.minutes, bits(&[30]));
    }

    #[test]
    fn weekday_seven_and_ranges_ending_on_sunday_are_sunday() {
        assert_eq!(fields("0 0 * * 7").weekdays, bits(&[0]));
        assert_eq!(fields("0 0 * * 0-7").weekdays, 0x7f);
        assert_eq!(fields("0 0 * * FRI-SUN").weekdays, bits(&[0, 5, 6]));
        assert_eq!(fields("0 0 * * 5-0").weekdays, bits(&[0, 5, 6]));
        assert_eq!(fields("0 0 * * Sat,sun").weekdays, bits(&[0, 6]));
    }

    #[test]
    fn parses_macros() {
        let same = |a: &str, b: &str| assert_eq!(fields(a), fields(b), "{a} vs {b}");
        same("@yearly", "0 0 1 1 *");
        same("@annually", "0 0 1 1 *");
        same("@monthly", "0 0 1 * *");
        same("@weekly", "0 0 * * 0");
        same("@daily", "0 0 * * *");
        same("@midnight", "0 0 * * *");
        same("@HOURLY", "0 * * * *");
    }

    #[test]
    fn keeps_expression_and_zone_as_given() {
        let s = schedule(" @daily ", "Europe/Berlin");
        assert_eq!(s.expression(), " @daily ");
        assert_eq!(s.timezone(), "Europe/Berlin");
    }

    // ---- errors ----

    #[test]
    fn out_of_range_values_name_the_field() {
        assert_eq!(
            error("61 * * * *", "UTC"),
            "minute field `61` is out of range 0-59"
        );
        assert_eq!(
            error("60 * * * * *", "UTC"),
            "second field `60` is out of range 0-59"
        );
        assert_eq!(
            error("0 24 * * *", "UTC"),
            "hour field `24` is out of range 0-23"
        );
        assert_eq!(
            error("0 0 0 * *", "UTC"),
            "day-of-month field `0` is out of range 1-31"
        );
        assert_eq!(
            error("0 0 1 1-13 *", "UTC"),
            "month field `13` is out of range 1-12"
        );
        assert_eq!(
            error("0 0 * * 8", "UTC"),
            "day-of-week field `8` is out of range 0-7"
        );
        assert_eq!(
            error("99999999999 * * * *", "UTC"),
            "minute field `99999999999` is out of range 0-59"
        );
    }

    #[test]
    fn invalid_values_name_the_field() {
        assert_eq!(
            error("x * * * *", "UTC"),
            "minute field `x` is not a valid value"
        );
        assert_eq!(
            error("0 0 * FOO *", "UTC"),
            "month field `FOO` is not a valid value"
        );
        assert_eq!(
            error("0 0 * * MON-XYZ", "UTC"),
            "day-of-week field `XYZ` is not a valid value"
        );
        assert_eq!(
            error("0 ? * * *", "UTC"),
            "hour field `?` is not a valid value"
        );
        assert_eq!(
            error("1,,2 * * * *", "UTC"),
            "minute field `1,,2` is not a valid value"
        );
        assert_eq!(
            error("0 0 JAN * *", "UTC"),
            "day-of-month field `JAN` is not a valid value"
        );
        assert_eq!(
            error("0 5-3 * * *", "UTC"),
            "hour field range `5-3` runs backwards"
        );
    }

    #[test]
    fn bad_steps_name_the_field() {
        assert_eq!(
            error("*/0 * * * *", "UTC"),
            "minute field step `0` is out of range 1-59"
        );
        assert_eq!(
            error("0 */24 * * *", "UTC"),
            "hour field step `24` is out of range 1-23"
        );
        assert_eq!(
            error("*/x * * * *", "UTC"),
            "minute field `x` is not a valid value"
        );
        assert_eq!(
            error("*/ * * * *", "UTC"),
            "minute field `` is not a valid value"
        );
    }

    #[test]
    fn wrong_field_count_and_unknown_macro() {
        assert_eq!(error("* * *", "UTC"), "expected 5 or 6 fields, got 3");
        assert_eq!(error("", "UTC"), "expected 5 or 6 fields, got 0");
        assert_eq!(
            error("* * * * * * *", "UTC"),
            "expected 5 or 6 fields, got 7"
        );
        assert_eq!(error("@reboot", "UTC"), "unknown macro `@reboot`");
    }

    #[test]
    fn unknown_zone_is_named() {
        assert_eq!(
            error("* * * * *", "Mars/Base"),
            "unknown time zone `Mars/Base`"
        );
        assert_eq!(
            Schedule::parse("* * * * *", ""),
            Err(ScheduleError::UnknownTimeZone(String::new()))
        );
    }

    // ---- ordinary next_after ----

    #[test]
    fn every_five_minutes() {
        let s = schedule("*/5 * * * *", "UTC");
        assert_eq!(
            s.next_after(utc(2026, 1, 1, 10, 3, 0)),
            Some(utc(2026, 1, 1, 10, 5, 0))
        );
        // Strictly after: a firing time itself moves on.
        assert_eq!(
            s.next_after(utc(2026, 1, 1, 10, 5, 0)),
            Some(utc(2026, 1, 1, 10, 10, 0))
        );
        // One millisecond before fires at the whole minute.
        assert_eq!(
            s.next_after(utc(2026, 1, 1, 10, 5, 0) - 1),
            Some(utc(2026, 1, 1, 10, 5, 0))
        );
        assert_eq!(
            s.next_after(utc(2026, 12, 31, 23, 59, 0)),
            Some(utc(2027, 1, 1, 0, 0, 0))
        );
    }

    #[test]
    fn seconds_field() {
        let s = schedule("*/10 * * * * *", "UTC");
        assert_eq!(
            s.next_after(utc(2026, 1, 1, 10, 0, 55)),
            Some(utc(2026, 1, 1, 10, 1, 0))
        );
        assert_eq!(
            s.next_after(utc(2026, 1, 1, 10, 0, 0) + 1),
            Some(utc(2026, 1, 1, 10, 0, 10))
        );
        let day = firings(&s, utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 2, 0, 0, 0));
        assert_eq!(day.len(), 6 * 60 * 24);
    }

    #[test]
    fn weekday_names() {
        // 2026-01-01 is a Thursday.
        assert_eq!(
            next("0 9 * * MON", "UTC", utc(2026, 1, 1, 0, 0, 0)),
            Some(utc(2026, 1, 5, 9, 0, 0))
        );
        assert_eq!(
            next("0 9 * * sat,SUN", "UTC", utc(2026, 1, 1, 0, 0, 0)),
            Some(utc(2026, 1, 3, 9, 0, 0))
        );
        assert_eq!(
            next("0 9 * * 7", "UTC", utc(2026, 1, 1, 0, 0, 0)),
            Some(utc(2026, 1, 4, 9, 0, 0))
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_restricted() {
        // The 15th or any Monday: Mon 5th, Mon 12th, Thu 15th, Mon 19th.
        let s = schedule("0 0 15 * MON", "UTC");
        let got = firings(&s, utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 20, 0, 0, 0));
        assert_eq!(
            got,
            vec![
                utc(2026, 1, 5, 0, 0, 0),
                utc(2026, 1, 12, 0, 0, 0),
                utc(2026, 1, 15, 0, 0, 0),
                utc(2026, 1, 19, 0, 0, 0),
            ]
        );
        // Only one restricted: only that one counts.
        let dom = schedule("0 0 15 * *", "UTC");
        assert_eq!(
            firings(&dom, utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 20, 0, 0, 0)),
            vec![utc(2026, 1, 15, 0, 0, 0)]
        );
        let dow = schedule("0 0 ? * MON", "UTC");
        assert_eq!(
            firings(&dow, utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 13, 0, 0, 0)),
            vec![utc(2026, 1, 5, 0, 0, 0), utc(2026, 1, 12, 0, 0, 0)]
        );
    }

    #[test]
    fn day_31_skips_short_months() {
        let s = schedule("0 0 31 * *", "UTC");
        let got = firings(&s, utc(2026, 1, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0));
        let months: Vec<u32> = got
            .iter()
            .filter_map(|ms| DateTime::from_timestamp_millis(*ms))
            .map(|t| t.month())
            .collect();
        assert_eq!(months, vec![1, 3, 5, 7, 8, 10, 12]);
    }

    #[test]
    fn february_29_finds_next_leap_year() {
        assert_eq!(
            next("0 0 29 2 *", "UTC", utc(2026, 1, 1, 0, 0, 0)),
            Some(utc(2028, 2, 29, 0, 0, 0))
        );
        // 2100 is not a leap year: eight years apart.
        assert_eq!(
            next("0 0 29 2 *", "UTC", utc(2096, 3, 1, 0, 0, 0)),
            Some(utc(2104, 2, 29, 0, 0, 0))
        );
    }

    #[test]
    fn impossible_dates_give_none() {
        assert_eq!(next("0 0 30 2 *", "UTC", utc(2026, 1, 1, 0, 0, 0)), None);
        assert_eq!(
            next(
                "0 0 31 4,6,9,11 *",
                "Europe/Berlin",
                utc(2026, 1, 1, 0, 0, 0)
            ),
            None
        );
    }

    #[test]
    fn macros_fire() {
        let after = utc(2026, 5, 17, 12, 34, 56); // a Sunday
        assert_eq!(
            next("@yearly", "UTC", after),
            Some(utc(2027, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            next("@monthly", "UTC", after),
            Some(utc(2026, 6, 1, 0, 0, 0))
        );
        assert_eq!(
            next("@weekly", "UTC", after),
            Some(utc(2026, 5, 24, 0, 0, 0))
        );
        assert_eq!(
            next("@daily", "UTC", after),
            Some(utc(2026, 5, 18, 0, 0, 0))
        );
        assert_eq!(
            next("@hourly", "UTC", after),
            Some(utc(2026, 5, 17, 13, 0, 0))
        );
    }

    #[test]
    fn kolkata_half_hour_offset() {
        let s = schedule("30 9 * * *", "Asia/Kolkata");
        // 09:30 IST = 04:00 UTC.
        assert_eq!(
            s.next_after(utc(2026, 6, 1, 0, 0, 0)),
            Some(utc(2026, 6, 1, 4, 0, 0))
        );
        assert_eq!(
            s.next_after(utc(2026, 6, 1, 4, 0, 0)),
            Some(utc(2026, 6, 2, 4, 0, 0))
        );
        // Midnight IST is 18:30 UTC the day before.
        assert_eq!(
            next("@daily", "Asia/Kolkata", utc(2026, 6, 1, 0, 0, 0)),
            Some(utc(2026, 6, 1, 18, 30, 0))
        );
        let quarter = schedule("*/15 * * * *", "Asia/Kolkata");
        let day = firings(
            &quarter,
            utc(2026, 5, 31, 18, 30, 0),
            utc(2026, 6, 1, 18, 30, 0),
        );
        assert_eq!(day.len(), 96);
    }

    #[test]
    fn far_past_and_future_do_not_panic() {
        let s = schedule("* * * * *", "Europe/Berlin");
        assert_eq!(s.next_after(i64::MAX), None);
        assert_eq!(s.next_after(i64::MIN), None);
        assert_eq!(s.next_after(-1), Some(0));
    }

    // ---- daylight saving ----

    /// The firings of `expression` in `zone` during the UTC interval `from..until`.
    fn day(expression: &str, zone: &str, from: Millis, until: Millis) -> Vec<Millis> {
        firings(&schedule(expression, zone), from, until)
    }

    // Europe/Berlin: local day 2026-03-29 is 2026-03-28T23:00Z..2026-03-29T22:00Z (23 h),
    // gap 02:00-03:00 CET at 01:00Z; local day 2026-10-25 is 2026-10-24T22:00Z..
    // 2026-10-25T23:00Z (25 h), 02:00-03:00 repeated, transition at 01:00Z.

    #[test]
    fn berlin_spring_gap() {
        let (from, until) = (utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 29, 22, 0, 0));
        // 02:30 does not exist: fires once at 03:00 CEST.
        assert_eq!(
            day("30 2 * * *", "Europe/Berlin", from, until),
            vec![utc(2026, 3, 29, 1, 0, 0)]
        );
        // 02:00, 02:30 and 03:00 share one firing at 03:00 CEST, then 03:30.
        assert_eq!(
            day("0,30 2-3 * * *", "Europe/Berlin", from, until),
            vec![utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 29, 1, 30, 0)]
        );
        assert_eq!(day("*/15 * * * *", "Europe/Berlin", from, until).len(), 92);
        assert_eq!(day("0 * * * *", "Europe/Berlin", from, until).len(), 23);
        // The day before and after are unaffected.
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", until),
            Some(utc(2026, 3, 30, 0, 30, 0))
        );
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", from - 86_400_000),
            Some(utc(2026, 3, 28, 1, 30, 0))
        );
    }

    #[test]
    fn berlin_fall_overlap() {
        let (from, until) = (utc(2026, 10, 24, 22, 0, 0), utc(2026, 10, 25, 23, 0, 0));
        // 02:30 occurs twice: fires once, at 02:30 CEST.
        assert_eq!(
            day("30 2 * * *", "Europe/Berlin", from, until),
            vec![utc(2026, 10, 25, 0, 30, 0)]
        );
        // Asked from inside the second pass, it does not fire again that day.
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 1, 10, 0)),
            Some(utc(2026, 10, 26, 1, 30, 0))
        );
        let quarter = day("*/15 * * * *", "Europe/Berlin", from, until);
        assert_eq!(quarter.len(), 100);
        assert!(quarter.windows(2).all(|w| w[1] - w[0] == 15 * 60 * 1000));
        assert_eq!(day("0 * * * *", "Europe/Berlin", from, until).len(), 25);
        // Every-hour schedules fire in the second pass, also when asked from inside it.
        assert_eq!(
            next("*/15 * * * *", "Europe/Berlin", utc(2026, 10, 25, 1, 10, 0)),
            Some(utc(2026, 10, 25, 1, 15, 0))
        );
        assert_eq!(
            next("0 * * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 30, 0)),
            Some(utc(2026, 10, 25, 1, 0, 0))
        );
        // A fixed hour keeps to the first pass.
        assert_eq!(
            day("*/15 2 * * *", "Europe/Berlin", from, until),
            vec![
                utc(2026, 10, 25, 0, 0, 0),
                utc(2026, 10, 25, 0, 15, 0),
                utc(2026, 10, 25, 0, 30, 0),
                utc(2026, 10, 25, 0, 45, 0),
            ]
        );
    }

    // America/New_York: local 2026-03-08 is 05:00Z..2026-03-09T04:00Z (23 h), gap 02:00-03:00
    // EST at 07:00Z; local 2026-11-01 is 04:00Z..2026-11-02T05:00Z (25 h), 01:00-02:00
    // repeated, transition at 06:00Z.

    #[test]
    fn new_york_spring_gap() {
        let (from, until) = (utc(2026, 3, 8, 5, 0, 0), utc(2026, 3, 9, 4, 0, 0));
        assert_eq!(
            day("30 2 * * *", "America/New_York", from, until),
            vec![utc(2026, 3, 8, 7, 0, 0)]
        );
        assert_eq!(
            day("*/15 * * * *", "America/New_York", from, until).len(),
            92
        );
    }

    #[test]
    fn new_york_fall_overlap() {
        let (from, until) = (utc(2026, 11, 1, 4, 0, 0), utc(2026, 11, 2, 5, 0, 0));
        // 01:30 EDT = 05:30Z; the second 01:30 (EST, 06:30Z) does not fire.
        assert_eq!(
            day("30 1 * * *", "America/New_York", from, until),
            vec![utc(2026, 11, 1, 5, 30, 0)]
        );
        assert_eq!(
            day("*/15 * * * *", "America/New_York", from, until).len(),
            100
        );
        assert_eq!(day("30 * * * *", "America/New_York", from, until).len(), 25);
    }

    // Australia/Sydney: local 2026-04-05 is 2026-04-04T13:00Z..2026-04-05T14:00Z (25 h),
    // 02:00-03:00 repeated, transition at 16:00Z on the 4th; local 2026-10-04 is
    // 2026-10-03T14:00Z..2026-10-04T13:00Z (23 h), gap 02:00-03:00 AEST at 16:00Z on the 3rd.

    #[test]
    fn sydney_fall_overlap_in_april() {
        let (from, until) = (utc(2026, 4, 4, 13, 0, 0), utc(2026, 4, 5, 14, 0, 0));
        // 02:30 AEDT (+11) = 15:30Z on the 4th.
        assert_eq!(
            day("30 2 * * *", "Australia/Sydney", from, until),
            vec![utc(2026, 4, 4, 15, 30, 0)]
        );
        assert_eq!(
            day("*/15 * * * *", "Australia/Sydney", from, until).len(),
            100
        );
    }

    #[test]
    fn sydney_spring_gap_in_october() {
        let (from, until) = (utc(2026, 10, 3, 14, 0, 0), utc(2026, 10, 4, 13, 0, 0));
        // 02:30 does not exist: fires at 03:00 AEDT = 16:00Z on the 3rd.
        assert_eq!(
            day("30 2 * * *", "Australia/Sydney", from, until),
            vec![utc(2026, 10, 3, 16, 0, 0)]
        );
        assert_eq!(
            day("*/15 * * * *", "Australia/Sydney", from, until).len(),
            92
        );
    }

    #[test]
    fn skipped_midnight_fires_at_the_end_of_the_gap() {
        // Sao Paulo began DST at midnight on 2018-11-04: 00:00 -03 became 01:00 -02.
        assert_eq!(
            next("@daily", "America/Sao_Paulo", utc(2018, 11, 3, 12, 0, 0)),
            Some(utc(2018, 11, 4, 3, 0, 0))
        );
    }

    /// The documented rule, checked minute by minute in absolute time: an instant fires if
    /// its local time matches and was not seen before (or the schedule selects every hour);
    /// the first instant after a gap fires if any skipped local minute matches.
    fn brute_force(s: &Schedule, from: Millis, until: Millis) -> Vec<Millis> {
        let f = &s.fields;
        let matches = |local: NaiveDateTime| {
            has_bit(f.months, local.month())
                && f.day_matches(local.date())
                && has_bit(f.hours, local.hour())
                && has_bit(f.minutes, local.minute())
                && has_bit(f.seconds, local.second())
        };
        let local_at = |ms: Millis| {
            DateTime::from_timestamp_millis(ms)
                .expect("in range")
                .with_timezone(&s.tz)
                .naive_local()
        };
        let minute = chrono::TimeDelta::minutes(1);
        let mut out = Vec::new();
        let mut latest_seen = local_at(from - 60_000);
        let mut previous = latest_seen;
        for t in (from..until).step_by(60_000) {
            let local = local_at(t);
            let mut skipped = previous + minute;
            let mut fire = false;
            while skipped < local {
                fire |= matches(skipped);
                skipped += minute;
            }
            let repeated = local <= latest_seen;
            fire |= matches(local) && (!repeated || f.hours == ALL_HOURS);
            if fire {
                out.push(t);
            }
            latest_seen = latest_seen.max(local);
            previous = local;
        }
        out
    }

    #[test]
    fn matches_brute_force_around_transitions() {
        let expressions = [
            "*/15 * * * *",
            "0 * * * *",
            "30 * * * *",
            "59 * * * *",
            "30 2 * * *",
            "30 1 * * *",
            "0,30 2-3 * * *",
            "*/20 1-3 * * *",
            "0 0 * * *",
            "45 23 * * *",
            "45 2 * * SUN",
            "7 */2 * * *",
            "15 0-23/3 1-10,20-31 * *",
        ];
        // (zone, first day) for three-day windows around transitions.
        let windows = [
            ("Europe/Berlin", (2026, 3, 28)),
            ("Europe/Berlin", (2026, 10, 24)),
            ("America/New_York", (2026, 3, 7)),
            ("America/New_York", (2026, 10, 31)),
            ("Australia/Sydney", (2026, 4, 4)),
            ("Australia/Sydney", (2026, 10, 3)),
            // A 30-minute daylight-saving shift.
            ("Australia/Lord_Howe", (2026, 4, 4)),
            ("Australia/Lord_Howe", (2026, 10, 3)),
            // Midnight skipped (2018-11-04) and repeated (2019-02-16 23:00).
            ("America/Sao_Paulo", (2018, 11, 3)),
            ("America/Sao_Paulo", (2019, 2, 15)),
            ("Asia/Kolkata", (2026, 3, 28)),
        ];
        for (zone, (y, m, d)) in windows {
            let from = utc(y, m, d, 0, 0, 0);
            let until = from + 3 * 86_400_000;
            for expression in expressions {
                let s = schedule(expression, zone);
                assert_eq!(
                    firings(&s, from, until),
                    brute_force(&s, from, until),
                    "{expression} in {zone} from {y}-{m}-{d}"
                );
            }
        }
    }
}
