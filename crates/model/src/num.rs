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

/// What C's `strtod` makes of the start of `s`: the value, how many bytes it read (0: no
/// number at all) and whether it set `ERANGE` (a finite literal that overflowed to an infinity
/// or underflowed to zero). Redis reads every score and range bound with it, so the grid accepts
/// exactly its inputs: leading spaces, a sign, `inf`/`infinity`, `nan`, hex floats.
pub fn strtod(s: &[u8]) -> (f64, usize, bool) {
    let mut i = s.iter().take_while(|b| is_c_space(**b)).count();
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let sign = if negative { -1.0 } else { 1.0 };
    let rest = &s[i..];
    if starts_with_ignore_case(rest, b"infinity") {
        return (sign * f64::INFINITY, i + 8, false);
    }
    if starts_with_ignore_case(rest, b"inf") {
        return (sign * f64::INFINITY, i + 3, false);
    }
    if starts_with_ignore_case(rest, b"nan") {
        let mut end = i + 3;
        if s.get(end) == Some(&b'(') {
            let inner =
                s[end + 1..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_');
            let close = end + 1 + inner.count();
            if s.get(close) == Some(&b')') {
                end = close + 1;
            }
        }
        return (f64::NAN, end, false);
    }
    let hex = rest.len() > 2
        && rest[0] == b'0'
        && (rest[1] | 0x20) == b'x'
        && (rest[2].is_ascii_hexdigit()
            || (rest[2] == b'.' && rest.get(3).is_some_and(u8::is_ascii_hexdigit)));
    let (magnitude, used, erange) = if hex { hex_float(&rest[2..]) } else { decimal(rest) };
    match used {
        0 => (0.0, 0, false),
        n if hex => (sign * magnitude, i + 2 + n, erange),
        n => (sign * magnitude, i + n, erange),
    }
}

/// `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn starts_with_ignore_case(s: &[u8], word: &[u8]) -> bool {
    s.len() >= word.len() && s[..word.len()].eq_ignore_ascii_case(word)
}

/// A decimal literal at the start of `s` (no sign): value, length, `ERANGE`.
fn decimal(s: &[u8]) -> (f64, usize, bool) {
    let digits =
        |from: usize| s[from.min(s.len())..].iter().take_while(|b| b.is_ascii_digit()).count();
    let whole = digits(0);
    let mut end = whole;
    let mut fraction = 0;
    if s.get(end) == Some(&b'.') {
        fraction = digits(end + 1);
        end += 1 + fraction;
    }
    if whole + fraction == 0 {
        return (0.0, 0, false);
    }
    if matches!(s.get(end), Some(b'e' | b'E')) {
        let signed = matches!(s.get(end + 1), Some(b'+' | b'-')) as usize;
        let exponent = digits(end + 1 + signed);
        if exponent > 0 {
            end += 1 + signed + exponent;
        }
    }
    let text = std::str::from_utf8(&s[..end]).unwrap_or("0");
    let value: f64 = text.parse().unwrap_or(0.0);
    let nonzero = s[..end].iter().take(whole + 1 + fraction).any(|b| (b'1'..=b'9').contains(b));
    let erange = value.is_infinite() || (value == 0.0 && nonzero);
    (value, end, erange)
}

/// A hex float after its `0x` (`1.8p3`): value, length, `ERANGE`.
fn hex_float(s: &[u8]) -> (f64, usize, bool) {
    let mut value = 0.0f64;
    let mut scale = 0i32;
    let mut end = 0;
    let mut seen_point = false;
    while let Some(&b) = s.get(end) {
        if b == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = (b as char).to_digit(16) {
            value = value * 16.0 + f64::from(d);
            if seen_point {
                scale -= 4;
            }
        } else {
            break;
        }
        end += 1;
    }
    if matches!(s.get(end), Some(b'p' | b'P')) {
        let signed = matches!(s.get(end + 1), Some(b'+' | b'-'));
        let from = end + 1 + signed as usize;
        let count = s[from.min(s.len())..].iter().take_while(|b| b.is_ascii_digit()).count();
        if count > 0 {
            let text = std::str::from_utf8(&s[from..from + count]).unwrap_or("0");
            let exponent = text.parse::<i32>().unwrap_or(i32::MAX / 2).min(100_000);
            scale += if s[end + 1] == b'-' { -exponent } else { exponent };
            end = from + count;
        }
    }
    let result = value * 2f64.powi(scale);
    (result, end, result.is_infinite() || (result == 0.0 && value != 0.0))
}

/// A float argument as Redis reads one (`getDoubleFromObject` for `ZADD` scores, `ZINCRBY`,
/// `WEIGHTS`; `string2ld` for `INCRBYFLOAT`): the whole argument through `strtod`, no leading
/// space, not NaN, no overflow or underflow (an infinity written out reads, and a sum it makes
/// is refused).
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    if arg.first().is_none_or(|b| is_c_space(*b)) {
        return None;
    }
    let (value, used, erange) = strtod(arg);
    let bad_range = erange && (value.is_infinite() || value == 0.0);
    (used == arg.len() && !value.is_nan() && !bad_range).then_some(value)
}

/// A float as C's `%.17g` prints it: what Redis replies for a score (`0.1` is
/// `0.10000000000000001`, `1e20` is `1e+20`), with infinities as `inf` and `-inf`.
pub fn format_g17(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if f.is_nan() {
        return "nan".to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let scientific = format!("{f:.16e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..17).contains(&exponent) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs());
    }
    let decimals = (16 - exponent) as usize;
    trim_fraction(&format!("{f:.decimals$}")).to_string()
}

/// `text` without trailing zeros after its point, nor the point if nothing is left after it.
fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// A score as Redis' `d2string` writes it into a listpack (what `ZSCAN` returns): an integral
/// value within ±2^62 as an integer, anything else as `%.17g`.
pub fn format_d2string(f: f64) -> String {
    const HALF_I64_MAX: f64 = (i64::MAX / 2) as f64;
    if f != 0.0 && f.is_finite() && f.fract() == 0.0 && (-HALF_I64_MAX..=HALF_I64_MAX).contains(&f)
    {
        return (f as i64).to_string();
    }
    format_g17(f)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn strtod_reads_what_c_reads() {
        assert_eq!(strtod(b"1.5xyz"), (1.5, 3, false));
        assert_eq!(strtod(b"  -2e3"), (-2000.0, 6, false));
        assert_eq!(strtod(b"1e"), (1.0, 1, false));
        assert_eq!(strtod(b"+.5"), (0.5, 3, false));
        assert_eq!(strtod(b"-Infinity"), (f64::NEG_INFINITY, 9, false));
        assert_eq!(strtod(b"infx"), (f64::INFINITY, 3, false));
        assert_eq!(strtod(b"0x10"), (16.0, 4, false));
        assert_eq!(strtod(b"0x1.8p1"), (3.0, 7, false));
        assert_eq!(strtod(b"0xg"), (0.0, 1, false));
        assert_eq!(strtod(b"abc"), (0.0, 0, false));
        assert_eq!(strtod(b""), (0.0, 0, false));
        assert_eq!(strtod(b"1e999"), (f64::INFINITY, 5, true));
        assert_eq!(strtod(b"1e-999"), (0.0, 6, true));
        assert!(strtod(b"nan").0.is_nan());
    }

    #[test]
    fn redis_floats_refuse_spaces_nan_and_overflow() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"0x10"), Some(16.0));
        assert_eq!(parse_f64(b"1e-320"), Some(1e-320));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"1e999", b"1e-999", b"abc", b"1\x002"] {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn g17_prints_as_printf() {
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(1.5), "1.5");
        assert_eq!(format_g17(1e20), "1e+20");
        assert_eq!(format_g17(1e16), "10000000000000000");
        assert_eq!(format_g17(1e17), "1e+17");
        assert_eq!(format_g17(123456789.0), "123456789");
        assert_eq!(format_g17(0.0001), "0.0001");
        assert_eq!(format_g17(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_g17(-2.5e-300), "-2.5e-300");
        assert_eq!(format_g17(f64::INFINITY), "inf");
        assert_eq!(format_g17(-0.0), "-0");
        assert_eq!(format_g17(3.0), "3");
        assert_eq!(format_d2string(1e17), "100000000000000000");
        assert_eq!(format_d2string(1e20), "1e+20");
        assert_eq!(format_d2string(2.5), "2.5");
    }
}
