//! Typed condition values: decimal numbers, dates, IP ranges, booleans.

use std::cmp::Ordering;
use std::net::IpAddr;

/// A decimal number borrowed from its text: sign, integer digits without leading zeros,
/// fraction digits without trailing zeros. Compared exactly (no floating point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Num<'a> {
    neg: bool,
    int: &'a str,
    frac: &'a str,
}

/// Parses an integer or decimal (`-12`, `3.50`, `+4`); no exponents.
pub(crate) fn parse_num(s: &str) -> Option<Num<'_>> {
    let s = s.trim();
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|c| c.is_ascii_digit())
        || !frac.bytes().all(|c| c.is_ascii_digit())
        || (body.contains('.') && frac.is_empty())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let neg = neg && !(int.is_empty() && frac.is_empty());
    Some(Num { neg, int, frac })
}

/// A decimal parsed once when the policy is compiled (the owned form of [`Num`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NumVal {
    neg: bool,
    int: Box<str>,
    frac: Box<str>,
}

impl NumVal {
    /// Parses like [`parse_num`].
    pub(crate) fn parse(s: &str) -> Option<NumVal> {
        parse_num(s).map(|n| NumVal {
            neg: n.neg,
            int: n.int.into(),
            frac: n.frac.into(),
        })
    }

    /// The borrowed form, for [`cmp_num`].
    pub(crate) fn as_num(&self) -> Num<'_> {
        Num {
            neg: self.neg,
            int: &self.int,
            frac: &self.frac,
        }
    }
}

fn cmp_abs(a: &Num<'_>, b: &Num<'_>) -> Ordering {
    a.int
        .len()
        .cmp(&b.int.len())
        .then_with(|| a.int.cmp(b.int))
        .then_with(|| a.frac.cmp(b.frac))
}

/// Exact comparison of two decimals.
pub(crate) fn cmp_num(a: &Num<'_>, b: &Num<'_>) -> Ordering {
    match (a.neg, b.neg) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => cmp_abs(a, b),
        (true, true) => cmp_abs(b, a),
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DDTHH:MM:SSZ` exactly, the form AWS puts in `aws:CurrentTime` and
/// `aws:TokenIssueTime`, read by position without splitting. `None` for anything else (which
/// the general parser then reads); where this accepts, it agrees with [`parse_date_general`].
fn parse_date_fixed(s: &str) -> Option<i128> {
    let b: &[u8; 20] = s.as_bytes().try_into().ok()?;
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
        || !matches!(b[19], b'Z' | b'z')
    {
        return None;
    }
    let mut bad = false;
    let mut num = |i: usize, j: usize| -> i64 {
        b[i..j].iter().fold(0, |acc, c| {
            bad |= !c.is_ascii_digit();
            acc * 10 + i64::from(c.wrapping_sub(b'0'))
        })
    };
    let (y, mo, d) = (num(0, 4), num(5, 7), num(8, 10));
    let (h, mi, sec) = (num(11, 13), num(14, 16), num(17, 19));
    if bad
        || !(1..=12).contains(&mo)
        || h > 23
        || mi > 59
        || sec > 60
        || d < 1
        || d > month_days(y, mo)
    {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
    Some(i128::from(secs) * 1_000_000_000)
}

/// Days in month `mo` (1..=12) of year `y`.
fn month_days(y: i64, mo: i64) -> i64 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match mo {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses a date as nanoseconds since the Unix epoch: epoch seconds (`1700000000`, optionally
/// with a fraction) or W3C ISO 8601 (`2020-01-02`, `2020-01-02T03:04Z`,
/// `2020-01-02T03:04:05.678+01:00`).
pub(crate) fn parse_date(s: &str) -> Option<i128> {
    parse_date_fixed(s).or_else(|| parse_date_general(s))
}

/// [`parse_date`] for every accepted form.
fn parse_date_general(s: &str) -> Option<i128> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.') && !s.contains('-') {
        let (i, f) = s.split_once('.').unwrap_or((s, ""));
        let secs = digits(i)?;
        let mut nanos: i128 = 0;
        if !f.is_empty() {
            let f9: String = f.chars().chain(std::iter::repeat('0')).take(9).collect();
            nanos = i128::from(digits(&f9)?);
        }
        return Some(i128::from(secs) * 1_000_000_000 + nanos);
    }
    let (date, time) = match s.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut dp = date.split('-');
    let y = dp.next().filter(|x| x.len() == 4).and_then(digits)?;
    let mo = dp.next().filter(|x| x.len() == 2).and_then(digits)?;
    let d = dp.next().filter(|x| x.len() == 2).and_then(digits)?;
    if dp.next().is_some() || !(1..=12).contains(&mo) {
        return None;
    }
    if d < 1 || d > month_days(y, mo) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut nanos: i128 = 0;
    if let Some(t) = time {
        let (clock, offset) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
            (c, 0i64)
        } else if let Some(pos) = t.rfind(['+', '-']) {
            let (c, off) = t.split_at(pos);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let off = &off[1..];
            let (oh, om) = match off.split_once(':') {
                Some((h, m)) => (h, m),
                None if off.len() == 4 => off.split_at(2),
                None => (off, "00"),
            };
            let (oh, om) = (digits(oh)?, digits(om)?);
            if oh > 23 || om > 59 {
                return None;
            }
            (c, sign * (oh * 3600 + om * 60))
        } else {
            (t, 0)
        };
        let mut cp = clock.split(':');
        let h = cp.next().filter(|x| x.len() == 2).and_then(digits)?;
        let mi = cp.next().filter(|x| x.len() == 2).and_then(digits)?;
        let sec_part = cp.next();
        if cp.next().is_some() || h > 23 || mi > 59 {
            return None;
        }
        let mut sec = 0;
        if let Some(sp) = sec_part {
            let (si, sf) = sp.split_once('.').unwrap_or((sp, ""));
            if si.len() != 2 {
                return None;
            }
            sec = digits(si)?;
            if sec > 60 {
                return None;
            }
            if sp.contains('.') {
                if sf.is_empty() || sf.len() > 9 {
                    return None;
                }
                let f9: String = sf.chars().chain(std::iter::repeat('0')).take(9).collect();
                nanos = i128::from(digits(&f9)?);
            }
        }
        secs += h * 3600 + mi * 60 + sec - offset;
    }
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

/// An IP network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Parses `a.b.c.d/n`, `x::y/n` or a bare address (= /32 or /128).
pub(crate) fn parse_cidr(s: &str) -> Option<Cidr> {
    let s = s.trim();
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|c| c.is_ascii_digit()) => {
            p.parse::<u8>().ok()?
        }
        Some(_) => return None,
        None => max,
    };
    (prefix <= max).then_some(Cidr { addr, prefix })
}

impl Cidr {
    /// Whether `ip` is inside this network (IPv4-mapped IPv6 addresses match IPv4 networks).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) if self.addr.is_ipv4() => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            other => other,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    /// Whether the network is private (RFC 1918 / ULA), for the validator.
    pub(crate) fn is_private(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => a.is_private() && self.prefix >= 8,
            IpAddr::V6(a) => (a.segments()[0] & 0xfe00) == 0xfc00 && self.prefix >= 7,
        }
    }
}

/// Parses a request IP (a bare address; a CIDR-looking value is not an address).
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    parse_ipv4_plain(s).or_else(|| s.trim().parse().ok())
}

/// A dotted-quad IPv4 address in its plain form only (four decimal octets of at most three
/// digits, no leading zeros, each at most 255), read in one pass. `None` for anything else,
/// which the standard parser then reads; where this accepts, the standard parser gives the same
/// address.
fn parse_ipv4_plain(s: &str) -> Option<IpAddr> {
    let mut octets = [0u8; 4];
    let mut n = 0; // octets finished
    let mut v: u16 = 0; // value of the current octet
    let mut len = 0; // its digits
    let mut lead_zero = false;
    for &c in s.as_bytes() {
        if c == b'.' {
            if len == 0 || n == 3 {
                return None;
            }
            *octets.get_mut(n)? = u8::try_from(v).ok()?;
            n += 1;
            (v, len) = (0, 0);
        } else if c.is_ascii_digit() {
            if len == 0 {
                lead_zero = c == b'0';
            } else if lead_zero || len == 3 {
                return None;
            }
            v = v * 10 + u16::from(c - b'0');
            len += 1;
        } else {
            return None;
        }
    }
    if len == 0 || n != 3 {
        return None;
    }
    *octets.get_mut(3)? = u8::try_from(v).ok()?;
    Some(IpAddr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let n = |s| parse_num(s).unwrap();
        assert_eq!(cmp_num(&n("3600"), &n("3600.0")), Ordering::Equal);
        assert_eq!(cmp_num(&n("-1"), &n("0")), Ordering::Less);
        assert_eq!(cmp_num(&n("-0"), &n("0")), Ordering::Equal);
        assert_eq!(cmp_num(&n("10"), &n("9.99")), Ordering::Greater);
        assert_eq!(cmp_num(&n("-10"), &n("-9.99")), Ordering::Less);
        assert!(parse_num("1e3").is_none());
        assert!(parse_num("").is_none());
        assert!(parse_num("1.").is_none());
        assert!(parse_num("abc").is_none());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_date("1700000000"), Some(1_700_000_000_000_000_000));
        assert_eq!(parse_date("2014-05-07T23:47:00Z"), parse_date("1399506420"));
        assert_eq!(
            parse_date("2014-05-08T01:47:00+02:00"),
            parse_date("2014-05-07T23:47:00Z")
        );
        assert_eq!(parse_date("2014-05-07"), parse_date("2014-05-07T00:00Z"));
        assert!(parse_date("2014-02-30").is_none());
        assert!(parse_date("2014-05-07T25:00Z").is_none());
        assert!(parse_date("yesterday").is_none());
        assert!(parse_date("2020-01-01T00:00:00.5Z") > parse_date("2020-01-01T00:00:00Z"));
    }

    #[test]
    fn fixed_form_agrees_with_general() {
        for s in [
            "2026-11-22T03:00:00Z",
            "2026-11-22t03:00:00z",
            "2024-02-29T23:59:60Z",
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-04-30T24:00:00Z",
            "2026-04-30T23:60:00Z",
            "2026-04-30T23:59:61Z",
            "0000-01-01T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2026-1a-01T00:00:00Z",
            "2026-01-01T00:00:00+",
        ] {
            if let Some(d) = parse_date_fixed(s) {
                assert_eq!(Some(d), parse_date_general(s), "{s}");
            }
            assert_eq!(parse_date(s), parse_date_general(s), "{s}");
        }
        assert!(parse_date_fixed("2026-11-22T03:00:00Z").is_some());
    }

    proptest::proptest! {
        #[test]
        fn plain_ipv4_agrees_with_std(s in "[0-9.]{0,17}|[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}") {
            if let Some(ip) = parse_ipv4_plain(&s) {
                proptest::prop_assert_eq!(Some(ip), s.parse::<IpAddr>().ok());
            }
            proptest::prop_assert_eq!(parse_ip(&s), s.trim().parse::<IpAddr>().ok());
        }

        #[test]
        fn fixed_form_agrees_with_general_on_any_digits(
            s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}[Zz]"
        ) {
            proptest::prop_assert_eq!(parse_date_fixed(&s), parse_date_general(&s));
        }

        #[test]
        fn date_parse_is_the_general_one(s in "[0-9T:.Zz+-]{0,24}") {
            proptest::prop_assert_eq!(parse_date(&s), parse_date_general(&s));
        }
    }

    #[test]
    fn plain_ipv4() {
        for (s, ok) in [
            ("203.0.113.10", true),
            ("0.0.0.0", true),
            ("255.255.255.255", true),
            ("256.0.0.1", false),
            ("01.2.3.4", false),
            ("1.2.3", false),
            ("1.2.3.4.5", false),
            ("1.2.3.4 ", false),
            ("1..3.4", false),
            ("::ffff:1.2.3.4", false),
        ] {
            assert_eq!(parse_ipv4_plain(s).is_some(), ok, "{s}");
            assert_eq!(parse_ip(s), s.trim().parse::<IpAddr>().ok(), "{s}");
        }
    }

    #[test]
    fn cidrs() {
        let c = parse_cidr("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.9".parse().unwrap()));
        assert!(!c.contains("203.0.114.9".parse().unwrap()));
        assert!(c.contains("::ffff:203.0.113.9".parse().unwrap()));
        let c = parse_cidr("2001:DB8:1234:5678::/64").unwrap();
        assert!(c.contains("2001:db8:1234:5678::99".parse().unwrap()));
        assert!(parse_cidr("1.2.3.4/33").is_none());
        assert!(
            parse_cidr("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(parse_cidr("10.0.0.0/8").unwrap().is_private());
    }
}
