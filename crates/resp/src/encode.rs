//! Reply encoder. RESP2 flattens maps into arrays and writes nulls as `$-1`; RESP3 (after
//! `HELLO 3`) has `%` maps, `~` sets and `_` nulls.

use bytes::{BufMut, BytesMut};
use sessiongrid_model::Reply;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Resp2,
    Resp3,
}

/// Appends the encoding of `reply` to `out`.
pub fn encode(reply: &Reply, proto: Protocol, out: &mut BytesMut) {
    match reply {
        Reply::Ok => out.put_slice(b"+OK\r\n"),
        Reply::Status(s) => line(out, b'+', s.as_bytes()),
        Reply::Error(e) => line(out, b'-', e.as_bytes()),
        Reply::Nil => match proto {
            Protocol::Resp2 => out.put_slice(b"$-1\r\n"),
            Protocol::Resp3 => out.put_slice(b"_\r\n"),
        },
        Reply::Int(n) => number(out, b':', *n),
        Reply::Bulk(b) => {
            number(out, b'$', b.len() as i64);
            out.put_slice(b);
            out.put_slice(b"\r\n");
        }
        Reply::Verbatim(text) => match proto {
            Protocol::Resp2 => encode(&Reply::Bulk(text.clone()), proto, out),
            Protocol::Resp3 => {
                number(out, b'=', text.len() as i64 + 4);
                out.put_slice(b"txt:");
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
        },
        Reply::Array(items) => seq(out, b'*', items, proto),
        Reply::Push(items) => {
            seq(out, if proto == Protocol::Resp3 { b'>' } else { b'*' }, items, proto)
        }
        Reply::Many(replies) => {
            for reply in replies {
                encode(reply, proto, out);
            }
        }
        Reply::Set(items) => {
            seq(out, if proto == Protocol::Resp3 { b'~' } else { b'*' }, items, proto)
        }
        Reply::Double(f) => {
            let text = sessiongrid_model::num::format_g17(*f);
            match proto {
                Protocol::Resp2 => encode(&Reply::Bulk(text.into()), proto, out),
                Protocol::Resp3 => line(out, b',', text.as_bytes()),
            }
        }
        Reply::NilArray => match proto {
            Protocol::Resp2 => out.put_slice(b"*-1\r\n"),
            Protocol::Resp3 => out.put_slice(b"_\r\n"),
        },
        Reply::Bool(b) => match proto {
            Protocol::Resp2 => number(out, b':', i64::from(*b)),
            Protocol::Resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        },
        Reply::BigNumber(digits) => match proto {
            Protocol::Resp2 => encode(&Reply::Bulk(digits.clone()), proto, out),
            Protocol::Resp3 => line(out, b'(', digits),
        },
        Reply::Pairs(pairs) => match proto {
            Protocol::Resp2 => {
                number(out, b'*', 2 * pairs.len() as i64);
                for (first, second) in pairs {
                    encode(first, proto, out);
                    encode(second, proto, out);
                }
            }
            Protocol::Resp3 => {
                number(out, b'*', pairs.len() as i64);
                for (first, second) in pairs {
                    out.put_slice(b"*2\r\n");
                    encode(first, proto, out);
                    encode(second, proto, out);
                }
            }
        },
        Reply::Map(pairs) => {
            match proto {
                Protocol::Resp2 => number(out, b'*', 2 * pairs.len() as i64),
                Protocol::Resp3 => number(out, b'%', pairs.len() as i64),
            }
            for (k, v) in pairs {
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
    }
}

fn seq(out: &mut BytesMut, tag: u8, items: &[Reply], proto: Protocol) {
    number(out, tag, items.len() as i64);
    for item in items {
        encode(item, proto, out);
    }
}

fn number(out: &mut BytesMut, tag: u8, n: i64) {
    out.put_u8(tag);
    let mut digits = itoa_buf(n);
    out.put_slice(digits.as_bytes_mut());
    out.put_slice(b"\r\n");
}

/// A status or error line; CR and LF inside would end the line early, so they become spaces.
fn line(out: &mut BytesMut, tag: u8, text: &[u8]) {
    out.put_u8(tag);
    out.extend(text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.put_slice(b"\r\n");
}

/// Decimal digits of `n` without allocating.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(n: i64) -> Digits {
    let mut d = Digits { buf: [0; 20], start: 20 };
    let mut m = n.unsigned_abs();
    loop {
        d.start -= 1;
        d.buf[d.start] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        d.start -= 1;
        d.buf[d.start] = b'-';
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn enc(r: &Reply, p: Protocol) -> String {
        let mut out = BytesMut::new();
        encode(r, p, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        let map = Reply::Map(vec![(Reply::bulk(Bytes::from_static(b"f")), Reply::Int(-1))]);
        assert_eq!(enc(&map, Protocol::Resp2), "*2\r\n$1\r\nf\r\n:-1\r\n");
        assert_eq!(enc(&map, Protocol::Resp3), "%1\r\n$1\r\nf\r\n:-1\r\n");
        assert_eq!(enc(&Reply::Nil, Protocol::Resp2), "$-1\r\n");
        assert_eq!(enc(&Reply::Nil, Protocol::Resp3), "_\r\n");
        assert_eq!(enc(&Reply::Int(i64::MIN), Protocol::Resp2), ":-9223372036854775808\r\n");
    }

    #[test]
    fn doubles_null_arrays_and_pairs() {
        assert_eq!(enc(&Reply::Double(0.1), Protocol::Resp3), ",0.10000000000000001\r\n");
        assert_eq!(enc(&Reply::Double(1.5), Protocol::Resp2), "$3\r\n1.5\r\n");
        assert_eq!(enc(&Reply::Double(f64::NEG_INFINITY), Protocol::Resp3), ",-inf\r\n");
        assert_eq!(enc(&Reply::NilArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(enc(&Reply::NilArray, Protocol::Resp3), "_\r\n");
        let pairs = Reply::Pairs(vec![(Reply::bulk(Bytes::from_static(b"m")), Reply::Double(2.0))]);
        assert_eq!(enc(&pairs, Protocol::Resp2), "*2\r\n$1\r\nm\r\n$1\r\n2\r\n");
        assert_eq!(enc(&pairs, Protocol::Resp3), "*1\r\n*2\r\n$1\r\nm\r\n,2\r\n");
    }

    #[test]
    fn error_text_cannot_break_the_line() {
        assert_eq!(enc(&Reply::error("ERR a\r\nb"), Protocol::Resp2), "-ERR a  b\r\n");
    }
}
