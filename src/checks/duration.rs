//! Short human durations for check timeouts: parsing `"500ms"`, `"5s"`, `"1m"` from the
//! operations file and printing them back the same way in results ("timed out after 5s").
//! Limits on how long a timeout may be live in `spec.rs`.

use std::time::Duration;

/// Parses `<integer><unit>` with unit `ms`, `s` or `m` (e.g. `"500ms"`, `"5s"`, `"2m"`);
/// parts may be chained as [`format_duration`] prints them (`"1m30s"`).
///
/// Returns a lowercase message suitable for an operations-file error on failure.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let usage = "write it as a whole number followed by ms, s or m, e.g. \"500ms\", \"5s\", \"1m\"";
    let invalid = || format!("invalid duration {text:?}; {usage}");
    let too_large = || format!("duration {text:?} is too large");
    if text.is_empty() {
        return Err(invalid());
    }
    let mut rest = text;
    let mut total_millis: u64 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, after) = rest.split_at(digits_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        if digits.is_empty() {
            return Err(invalid());
        }
        let amount: u64 = digits.parse().map_err(|_| too_large())?;
        let millis_per_unit = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            _ => return Err(invalid()),
        };
        total_millis = amount
            .checked_mul(millis_per_unit)
            .and_then(|millis| total_millis.checked_add(millis))
            .ok_or_else(too_large)?;
        rest = next;
    }
    Ok(Duration::from_millis(total_millis))
}

/// Formats a duration in the same short style: `"250ms"`, `"5s"`, `"2m"`, `"1m30s"`.
/// Sub-millisecond parts are dropped.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 || !millis.is_multiple_of(1_000) {
        return format!("{millis}ms");
    }
    let secs = millis / 1_000;
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration(" 2s "), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_bad_forms_with_a_hint() {
        for bad in [
            "",
            "s",
            "5",
            "5h",
            "1.5s",
            "-1s",
            "5 s",
            "99999999999999999999s",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("duration"), "{bad:?}: {err}");
        }
        assert!(parse_duration("5").unwrap_err().contains("\"5s\""));
        assert!(
            parse_duration(&format!("{}m", u64::MAX / 10))
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn formats_round_trip() {
        for text in ["250ms", "5s", "2m", "1m30s", "1500ms"] {
            let parsed = parse_duration(text).unwrap_or(Duration::MAX);
            let shown = format_duration(parsed);
            assert_eq!(parse_duration(&shown), Ok(parsed), "{text} -> {shown}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
    }
}
