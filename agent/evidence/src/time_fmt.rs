// SPDX-License-Identifier: Apache-2.0
//! RFC 3339 timestamps as the bundle writes them (UTC, whole seconds), and parsing of the times
//! users pass to `verify --at`.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_unix(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{secs}"))
}

/// Parses an RFC 3339 time into seconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = parse_rfc3339("2026-06-01T00:00:00Z").unwrap();
        assert_eq!(t, 1_780_272_000);
        assert_eq!(format_unix(t), "2026-06-01T00:00:00Z");
        assert_eq!(parse_rfc3339("2026-06-01T02:00:00+02:00"), Some(t));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
