//! UTC instants as AWS writes them, built digit by digit.
//!
//! Every signed request formats `aws:CurrentTime` and every audit record carries two or three
//! times; `time`'s format descriptions cost about 200 ns each, these about 50. Years outside
//! 0–9999 return `None`, and the caller falls back to `time`, which decides how those are
//! written or refused.

use time::{OffsetDateTime, UtcOffset};

/// Writes `value` as `digits.len()` decimal digits (zero-padded; the caller bounds `value`).
fn put_digits(digits: &mut [u8], mut value: u32) {
    for d in digits.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of `t` in UTC.
fn civil(t: OffsetDateTime) -> Option<[u8; 19]> {
    let t = t.to_offset(UtcOffset::UTC);
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let mut out = *b"0000-00-00T00:00:00";
    put_digits(&mut out[0..4], year);
    put_digits(&mut out[5..7], u32::from(u8::from(t.month())));
    put_digits(&mut out[8..10], u32::from(t.day()));
    put_digits(&mut out[11..13], u32::from(t.hour()));
    put_digits(&mut out[14..16], u32::from(t.minute()));
    put_digits(&mut out[17..19], u32::from(t.second()));
    Some(out)
}

/// `YYYY-MM-DDTHH:MM:SSZ`: UTC to the second, as STS writes `Expiration` and IAM condition
/// keys hold `aws:CurrentTime`.
pub fn utc_seconds(t: OffsetDateTime) -> Option<[u8; 20]> {
    let mut text = [b'Z'; 20];
    text[..19].copy_from_slice(&civil(t)?);
    Some(text)
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`: UTC with microseconds, as CloudTrail writes `eventTime`.
pub fn utc_micros(t: OffsetDateTime) -> Option<[u8; 27]> {
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    text[..19].copy_from_slice(&civil(t)?);
    put_digits(&mut text[20..26], t.to_offset(UtcOffset::UTC).microsecond());
    Some(text)
}

/// The text as a `String`. It is ASCII by construction, so the conversion cannot fail.
pub fn to_string<const N: usize>(text: [u8; N]) -> String {
    String::from_utf8(text.to_vec()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    #[test]
    fn matches_the_time_crate_across_years_and_offsets() {
        let micros = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        // From year 0 to 9999, in uneven steps, at three offsets, with sub-second parts.
        let mut s: i64 = -62_167_219_200;
        while s <= 253_402_300_799 {
            for offset in [0, 19_800, -36_000] {
                let utc = OffsetDateTime::from_unix_timestamp(s)
                    .unwrap()
                    .replace_nanosecond(123_456_789)
                    .unwrap();
                let t = utc.to_offset(UtcOffset::from_whole_seconds(offset).unwrap());
                let whole = utc.replace_nanosecond(0).unwrap().format(&Rfc3339).unwrap();
                assert_eq!(to_string(utc_seconds(t).unwrap()), whole);
                assert_eq!(
                    to_string(utc_micros(t).unwrap()),
                    utc.format(micros).unwrap()
                );
            }
            s += 987_654_321;
        }
    }

    #[test]
    fn years_outside_four_digits_are_left_to_the_caller() {
        let early = OffsetDateTime::from_unix_timestamp(-62_167_219_201).unwrap();
        assert!(utc_seconds(early).is_none() && utc_micros(early).is_none());
        let edge = OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap();
        assert_eq!(
            to_string(utc_seconds(edge).unwrap()),
            "9999-12-31T23:59:59Z"
        );
    }
}
