//! A cron expression in words, for people reading a schedule: `0 */5 * * * *` is
//! "every 5 minutes", `0 30 9 * * MON-FRI` is "at 09:30 on Monday to Friday". Forms it
//! cannot say plainly come back as the expression itself.

use super::{Field, Schedule, expand_macro, parse_value};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// `expression` in words; the expression itself (trimmed) when it does not parse or has
/// a form this cannot put plainly.
pub fn describe(expression: &str) -> String {
    let trimmed = expression.trim();
    words(trimmed).unwrap_or_else(|| trimmed.to_owned())
}

/// The words for a valid expression of a form this knows.
fn words(expression: &str) -> Option<String> {
    Schedule::parse(expression, "UTC").ok()?;
    let text = if expression.starts_with('@') {
        expand_macro(expression).ok()?
    } else {
        expression
    };
    let parts: Vec<&str> = text.split_whitespace().collect();
    let (second, minute, hour, day, month, weekday) = match parts[..] {
        [m, h, d, mo, w] => ("0", m, h, d, mo, w),
        [s, m, h, d, mo, w] => (s, m, h, d, mo, w),
        _ => return None,
    };
    let any = |text: &str| text == "*" || text == "?";
    let days = match (any(day), any(weekday)) {
        (true, true) => None,
        (false, true) => Some(days_of_month(day, month)?),
        (true, false) => Some(format!("on {}", list(weekday, Field::DayOfWeek)?)),
        (false, false) => return None,
    };
    let months = if any(month) || !any(day) {
        None
    } else {
        Some(format!("in {}", list(month, Field::Month)?))
    };
    let time = time_of_day(second, minute, hour, days.is_none())?;
    Some(
        [Some(time), days, months]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// "at 09:30", "every 5 minutes"…; `daily` asks for "every day" before a time of day.
fn time_of_day(second: &str, minute: &str, hour: &str, daily: bool) -> Option<String> {
    let number = |text: &str, field| {
        text.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| parse_value(text, field).ok())
            .flatten()
    };
    let every = |text: &str| match text {
        "*" => Some(1),
        _ => text.strip_prefix("*/")?.parse::<u32>().ok(),
    };
    let unit = |n: u32, name: &str| match n {
        1 => format!("every {name}"),
        n => format!("every {n} {name}s"),
    };
    if let (Some(n), "*", "*") = (every(second), minute, hour) {
        return Some(unit(n, "second"));
    }
    let on_the_minute = number(second, Field::Second) == Some(0);
    if on_the_minute && hour == "*" {
        if let Some(n) = every(minute) {
            return Some(unit(n, "minute"));
        }
        let m = number(minute, Field::Minute)?;
        return Some(match m {
            0 => "every hour".to_owned(),
            m => format!("every hour at minute {m}"),
        });
    }
    if on_the_minute && let (Some(n), Some(m)) = (every(hour), number(minute, Field::Minute)) {
        return Some(format!("{} at minute {m}", unit(n, "hour")));
    }
    let s = number(second, Field::Second)?;
    let m = number(minute, Field::Minute)?;
    let hours = hour
        .split(',')
        .map(|h| number(h, Field::Hour))
        .collect::<Option<Vec<_>>>()?;
    let clock = |h: u32| match s {
        0 => format!("{h:02}:{m:02}"),
        s => format!("{h:02}:{m:02}:{s:02}"),
    };
    let times = joined(hours.into_iter().map(clock).collect());
    Some(if daily {
        format!("every day at {times}")
    } else {
        format!("at {times}")
    })
}

/// "on day 1 of every month", "on 1 January", "on day 1 and 15 of January to March".
fn days_of_month(day: &str, month: &str) -> Option<String> {
    let days = list(day, Field::DayOfMonth)?;
    let months = if month == "*" {
        "every month".to_owned()
    } else {
        list(month, Field::Month)?
    };
    let single = |text: &str| text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty();
    Some(if single(day) && !month.contains([',', '-', '/', '*']) {
        format!("on {days} {months}")
    } else {
        format!("on day {days} of {months}")
    })
}

/// A field's items in words ("Monday to Friday", "January, March and May"); `None` for
/// steps.
fn list(text: &str, field: Field) -> Option<String> {
    let name = |text: &str| {
        let value = parse_value(text, field).ok()?;
        Some(match field {
            Field::DayOfWeek => WEEKDAYS[value as usize % 7].to_owned(),
            Field::Month => MONTHS[value as usize - 1].to_owned(),
            _ => value.to_string(),
        })
    };
    let items = text
        .split(',')
        .map(|item| match item.split_once('-') {
            _ if item.contains('/') => None,
            Some((low, high)) => Some(format!("{} to {}", name(low)?, name(high)?)),
            None => name(item),
        })
        .collect::<Option<Vec<_>>>()?;
    Some(joined(items))
}

/// "a", "a and b", "a, b and c".
fn joined(mut items: Vec<String>) -> String {
    match items.pop() {
        None => String::new(),
        Some(last) if items.is_empty() => last,
        Some(last) => format!("{} and {last}", items.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn says_a_schedule_in_words() {
        for (expression, words) in [
            ("0 */5 * * * *", "every 5 minutes"),
            ("*/5 * * * *", "every 5 minutes"),
            ("* * * * *", "every minute"),
            ("*/10 * * * * *", "every 10 seconds"),
            ("* * * * * *", "every second"),
            ("0 30 9 * * MON-FRI", "at 09:30 on Monday to Friday"),
            ("30 9 * * 1-5", "at 09:30 on Monday to Friday"),
            ("0 18 * * sat,SUN", "at 18:00 on Saturday and Sunday"),
            ("0 8 * * 1,3,5", "at 08:00 on Monday, Wednesday and Friday"),
            ("0 0 * * 7", "at 00:00 on Sunday"),
            ("@daily", "every day at 00:00"),
            ("@midnight", "every day at 00:00"),
            ("@hourly", "every hour"),
            ("@weekly", "at 00:00 on Sunday"),
            ("@monthly", "at 00:00 on day 1 of every month"),
            ("@yearly", "at 00:00 on 1 January"),
            ("15 * * * *", "every hour at minute 15"),
            ("0 */2 * * *", "every 2 hours at minute 0"),
            ("0 0,12 * * *", "every day at 00:00 and 12:00"),
            ("30 45 6 * * *", "every day at 06:45:30"),
            ("0 3 1,15 * *", "at 03:00 on day 1 and 15 of every month"),
            ("0 3 1 JAN-MAR *", "at 03:00 on day 1 of January to March"),
            ("0 9 * 12 *", "every day at 09:00 in December"),
            ("0 9 * 6-8 MON", "at 09:00 on Monday in June to August"),
            (" 0 7 * * * ", "every day at 07:00"),
        ] {
            assert_eq!(describe(expression), words, "{expression}");
        }
    }

    #[test]
    fn falls_back_to_the_expression() {
        for expression in [
            "5/15 * * * *",
            "0 9 1 * MON",
            "0 9 */2 * *",
            "0 1-5 * * *",
            "not cron",
            "@never",
            "61 * * * *",
            "",
        ] {
            assert_eq!(describe(expression), expression.trim(), "{expression}");
        }
    }
}
