//! Integer parsing with Redis' exact rules (`string2ll`): optional `-`, no `+`, no spaces, no
//! leading zeros, within `i64`.

/// Parses `bytes` as Redis does for integer arguments and `INCR` values.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    let (negative, digits) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    match digits {
        [] => return None,
        [b'0'] => return if negative { None } else { Some(0) },
        [b'0', ..] => return None,
        _ => {}
    }
    let mut magnitude: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    if negative {
        if magnitude == i64::MIN.unsigned_abs() {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|m| -m)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// A float as Redis reads one (`INCRBYFLOAT`): the whole string, no spaces, not NaN (an
/// infinity reads, and the sum it makes is refused).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(s).ok()?;
    let first = s.bytes().next()?;
    if first.is_ascii_whitespace() || s.bytes().last().is_some_and(|b| b.is_ascii_whitespace()) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| !f.is_nan())
}

/// A float as Redis writes the result of `INCRBYFLOAT`: plain decimal, at most 17 digits after
/// the point, no exponent, no trailing zeros. Redis adds in `long double`; rounding this `f64`
/// to 15 significant digits gives what that extra precision prints (1 - 1.1 is -0.1, not
/// -0.10000000000000009).
pub fn format_f64(f: f64) -> String {
    let magnitude = if f == 0.0 { 0 } else { f.abs().log10().floor() as i32 };
    let decimals = (14 - magnitude).clamp(0, 17) as usize;
    let mut text = format!("{f:.decimals$}");
    if text.contains('.') {
        let kept = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(kept);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{format_f64, parse_f64, parse_i64};

    #[test]
    fn floats_read_and_print_as_redis_does() {
        assert_eq!(parse_f64(b"10.5"), Some(10.5));
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        for bad in [&b""[..], b" 1", b"1 ", b"abc", b"nan", b"1.5.2"] {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(format_f64(10.5 + 0.1), "10.6");
        assert_eq!(format_f64(5000.0), "5000");
        assert_eq!(format_f64(1e21), "1000000000000000000000");
        assert_eq!(format_f64(-0.25), "-0.25");
        assert_eq!(format_f64(1.0 - 1.1), "-0.1");
        assert_eq!(format_f64(17179869184.0 + 1.5), "17179869185.5");
        assert_eq!(format_f64(-0.0), "-0");
        assert_eq!(format_f64(1e-20), "0");
    }

    #[test]
    fn accepts_what_redis_accepts() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn rejects_what_redis_rejects() {
        for bad in
            [&b""[..], b"-", b"+1", b" 1", b"1 ", b"01", b"-0", b"1.5", b"9223372036854775808"]
        {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
