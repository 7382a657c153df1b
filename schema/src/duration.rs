//! Lengths of time written as a whole number and one unit (`"90s"`, `"30m"`,
//! `"2h"`, `"1d"`, `"1w"`): the one reading of a duration shared by the
//! configuration (`timeout`, `retries.wait`, `scripts.timeout`,
//! `vpc_clone.timeout`) and the command line (`--timeout`).
//!
//! Schedule intervals (`every`) are not durations: they are calendar steps
//! ([`crate::Every`], with months), read by their own parser on the same
//! number-then-unit split ([`split_number_unit`]).

use std::time::Duration;

/// The units a duration takes, for messages: "s, m, h, d or w".
pub const DURATION_UNITS: &str = "s, m, h, d or w";

/// The longest duration Lifeboat reads, in days (about ten years). Every
/// duration ends up added to an instant (a retry's due time, a deadline),
/// and instants end a few hundred thousand years from now: a bound this far
/// below that keeps every such sum, retries multiplied in, representable.
pub const MAX_DURATION_DAYS: u64 = 3650;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a whole number followed by one known unit.
    #[error("{0:?} is not a duration; write a whole number and one unit: s (seconds), m (minutes), h (hours), d (days) or w (weeks), as in \"90s\", \"30m\" or \"2h\"")]
    Malformed(String),
    /// A well-formed duration longer than [`MAX_DURATION_DAYS`].
    #[error("{0:?} is too long a duration (at most {MAX_DURATION_DAYS} days)")]
    TooLong(String),
}

/// `"90s"` → `(90, "s")`: the leading ASCII digits as a number and the rest.
/// `None` when there are no digits or the number does not fit in a `u64`.
/// Signs, spaces, fractions are not digits, so `"-1h"`, `" 1h"` and
/// `"1.5h"` leave a unit that no caller knows.
pub(crate) fn split_number_unit(s: &str) -> Option<(u64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (n, unit) = s.split_at(digits);
    Some((n.parse().ok()?, unit))
}

/// Reads `Ns`, `Nm`, `Nh`, `Nd` or `Nw`, N a whole number (zero included:
/// callers that need a positive duration say so in their own words).
/// Spaces around it are ignored, as a policy's `timeout` always allowed.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let malformed = || DurationError::Malformed(s.to_string());
    let (n, unit) = split_number_unit(s.trim()).ok_or_else(malformed)?;
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(malformed()),
    };
    n.checked_mul(unit_secs)
        .filter(|&secs| secs <= MAX_DURATION_DAYS * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| DurationError::TooLong(s.to_string()))
}

/// A duration written back in the same syntax, in the largest unit that
/// holds it whole (`90s`, `2m`, `1h`); fractions of a second are dropped.
/// Reading the text back gives the same whole seconds.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let unit = [(7 * 86_400, "w"), (86_400, "d"), (3600, "h"), (60, "m")]
        .into_iter()
        .find(|&(n, _)| secs > 0 && secs.is_multiple_of(n));
    match unit {
        Some((n, u)) => format!("{}{u}", secs / n),
        None => format!("{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formatted_duration_reads_back_as_itself() {
        for (secs, text) in [
            (0, "0s"),
            (1, "1s"),
            (90, "90s"),
            (120, "2m"),
            (3600, "1h"),
            (172_800, "2d"),
            (1_209_600, "2w"),
        ] {
            assert_eq!(format_duration(Duration::from_secs(secs)), text);
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(secs)));
        }
    }

    #[test]
    fn durations_are_a_whole_number_and_one_unit() {
        let ok: &[(&str, u64)] = &[
            ("0s", 0),
            ("90s", 90),
            ("30m", 1800),
            ("2h", 7200),
            ("1d", 86_400),
            ("2w", 1_209_600),
            ("007m", 420),
            (" 1h ", 3600),
        ];
        for &(text, secs) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text:?}"
            );
        }
        let malformed = [
            "",
            " ",
            "s",
            "10",
            "1h30m",
            "1.5h",
            "-1h",
            "1H",
            "1mo",
            "1y",
            "1 h",
            "1x",
            "99999999999999999999999s",
        ];
        for text in malformed {
            assert_eq!(
                parse_duration(text),
                Err(DurationError::Malformed(text.to_string())),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_duration("99999999999999w"),
            Err(DurationError::TooLong("99999999999999w".into()))
        );
    }

    #[test]
    fn durations_stop_at_the_longest_one_an_instant_takes() {
        let most = MAX_DURATION_DAYS * 86_400;
        assert_eq!(
            parse_duration(&format!("{MAX_DURATION_DAYS}d")),
            Ok(Duration::from_secs(most))
        );
        assert_eq!(
            parse_duration(&format!("{most}s")),
            Ok(Duration::from_secs(most))
        );
        for text in ["300000000d", "3651d", "522w", "87601h", "315360001s"] {
            let e = parse_duration(text).unwrap_err();
            assert_eq!(e, DurationError::TooLong(text.into()));
            assert!(e.to_string().contains("at most 3650 days"), "{e}");
        }
    }

    #[test]
    fn the_message_names_the_text_and_the_units() {
        let e = parse_duration("1x").unwrap_err().to_string();
        assert!(e.starts_with("\"1x\" is not a duration"), "{e}");
        assert!(e.contains("d (days) or w (weeks)"), "{e}");
    }
}
