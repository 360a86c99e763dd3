//! Bar charts as inline SVG: succeeded and failed runs per bucket, stacked, with a
//! title and a text summary for screen readers.

use std::fmt::Write;

/// One bucket's bars.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Bar {
    /// Runs that succeeded.
    pub(super) succeeded: f64,
    /// Runs that failed.
    pub(super) failed: f64,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 120.0;

/// An SVG of `bars` (oldest first) titled `title`, labelled `first` and `last` at the
/// ends of its time axis.
pub(super) fn bars(title: &str, bars: &[Bar], first: &str, last: &str) -> String {
    let top = bars
        .iter()
        .map(|b| b.succeeded + b.failed)
        .fold(0.0, f64::max)
        .max(1.0);
    let (succeeded, failed) = bars
        .iter()
        .fold((0.0, 0.0), |(s, f), b| (s + b.succeeded, f + b.failed));
    let title = escape(title);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {WIDTH} {}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\">\
         <title id=\"{id}-t\">{title}</title>\
         <desc id=\"{id}-d\">{succeeded} succeeded and {failed} failed, from {first} to \
         {last}; the highest bar is {top} runs.</desc>",
        HEIGHT + 20.0,
        id = id_of(&title),
        first = escape(first),
        last = escape(last),
    );
    let step = WIDTH / bars.len().max(1) as f64;
    for (i, bar) in bars.iter().enumerate() {
        let x = i as f64 * step;
        let ok = bar.succeeded / top * HEIGHT;
        let bad = bar.failed / top * HEIGHT;
        let width = (step - 1.0).max(1.0);
        let _ = write!(
            svg,
            "<rect class=\"ok\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{ok:.1}\"/>\
             <rect class=\"bad\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{bad:.1}\"/>",
            HEIGHT - ok,
            HEIGHT - ok - bad,
        );
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{y}\" font-size=\"12\">{first}</text>\
         <text x=\"{WIDTH}\" y=\"{y}\" font-size=\"12\" text-anchor=\"end\">{last}</text></svg>",
        y = HEIGHT + 16.0,
        first = escape(first),
        last = escape(last),
    );
    svg
}

/// An id made of `title`'s letters and digits.
fn id_of(title: &str) -> String {
    let id: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("chart-{id}")
}

/// `text` safe inside SVG markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_highest_and_say_what_they_show() {
        let svg = bars(
            "Last hour",
            &[
                Bar {
                    succeeded: 3.0,
                    failed: 1.0,
                },
                Bar::default(),
            ],
            "10:00",
            "11:00",
        );
        assert!(svg.contains("<title id=\"chart-Last-hour-t\">Last hour</title>"));
        assert!(svg.contains("3 succeeded and 1 failed"), "{svg}");
        assert!(svg.contains("height=\"90.0\""), "3 of 4 runs: {svg}");
        assert!(svg.contains("height=\"30.0\""), "1 of 4 runs: {svg}");
        assert_eq!(svg.matches("<rect").count(), 4);
        let hostile = bars("<script>", &[], "\"", "&");
        assert!(!hostile.contains("<script>"));
    }
}
