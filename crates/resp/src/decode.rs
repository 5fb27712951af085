//! Request decoder. Clients send either an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! or an inline line (`GET k\r\n`).
//!
//! The decoder is incremental: arguments are taken out of the buffer as soon as they are complete,
//! so a request arriving in many reads is scanned once. Every length is checked against a limit
//! before anything is allocated for it, and nested arrays are refused outright (a request is a flat
//! array), so no input can make the decoder allocate without bound, recurse, or panic.

use bytes::{Buf, Bytes, BytesMut};
use sessiongrid_model::num::parse_i64;

use super::inline;

/// Bounds on what one request may contain.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub bulk_bytes_max: usize,
    pub array_len_max: usize,
    pub inline_bytes_max: usize,
    /// Most bytes of arguments one request may hold in total.
    pub request_bytes_max: usize,
}

/// Longest `*<count>` or `$<len>` header line, as in Redis.
const HEADER_BYTES_MAX: usize = 64 * 1024;

/// A request that can't be decoded. The connection answers `-ERR Protocol error: ...` and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

fn err<T>(text: impl Into<String>) -> Result<T, ProtocolError> {
    Err(ProtocolError(text.into()))
}

#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    /// Arguments of a multibulk request whose remaining arguments have not arrived yet.
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    remaining: usize,
    args: Vec<Bytes>,
    /// Bytes held in `args`, bounded by `request_bytes_max`.
    bytes: usize,
}

/// Arguments shorter than this are copied out of the read buffer, so a stored key or value never
/// pins the connection's whole buffer in memory; longer ones are taken without a copy (they are
/// most of their buffer anyway).
const COPY_BYTES_MAX: usize = 32 * 1024;

/// Capacity reserved up front for a request's argument list; the rest grows as it arrives.
const ARGS_PREALLOC_MAX: usize = 1024;

/// A complete request of at most [`ONE_PIECE_ARGS_MAX`] arguments totalling at most this many
/// bytes is copied out of the read buffer in one piece, every argument a slice of it: two
/// allocations per request (the piece and its shared count), instead of one per argument and
/// one more for each argument kept.
const ONE_PIECE_BYTES_MAX: usize = 4 * 1024;

/// A kept argument keeps its whole piece alive. With at most three (a command, a key and one
/// value: `SET k v`, `GET k`, `SADD s m`), a kept value keeps only its command and key besides,
/// and the key is copied where it outlives its value (the memory tier copies a key new to it).
/// A request naming several fields or members (`HSET h f v`) is taken argument by argument, so
/// one field's value never keeps a replaced one's alive.
const ONE_PIECE_ARGS_MAX: usize = 3;

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder { limits, pending: None }
    }

    /// Takes the next complete request out of `buf`. `Ok(None)` means more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.pending.is_none() {
                match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => {
                        let Some((count, used)) = header(buf, "mbulk count")? else {
                            return Ok(None);
                        };
                        buf.advance(used);
                        if count <= 0 {
                            continue; // Redis ignores empty and null arrays.
                        }
                        if count as u64 > self.limits.array_len_max as u64 {
                            return err("invalid multibulk length");
                        }
                        let remaining = count as usize;
                        if let Some(args) = one_piece(buf, remaining, &self.limits) {
                            return Ok(Some(args));
                        }
                        let args = Vec::with_capacity(remaining.min(ARGS_PREALLOC_MAX));
                        self.pending = Some(Pending { remaining, args, bytes: 0 });
                    }
                    Some(_) => match inline::take_line(buf, self.limits.inline_bytes_max)? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    },
                }
            }
            let pending = self.pending.as_mut().expect("pending request set above");
            while pending.remaining > 0 {
                let Some(arg) = bulk(buf, self.limits.bulk_bytes_max)? else {
                    return Ok(None);
                };
                pending.bytes += arg.len();
                if pending.bytes > self.limits.request_bytes_max {
                    return err("request larger than request_bytes_max");
                }
                pending.args.push(arg);
                pending.remaining -= 1;
            }
            return Ok(self.pending.take().map(|p| p.args));
        }
    }
}

/// The arguments of the request at the start of `buf` (after its `*<count>` header) in one
/// piece, if there are at most [`ONE_PIECE_ARGS_MAX`], they have all arrived, each is within the
/// limits, and they total at most [`ONE_PIECE_BYTES_MAX`]; `None` (nothing taken) leaves the
/// request to the argument-by-argument path, which also names whatever is wrong with it.
fn one_piece(buf: &mut BytesMut, count: usize, limits: &Limits) -> Option<Vec<Bytes>> {
    if count > ONE_PIECE_ARGS_MAX {
        return None;
    }
    let bulk_at = |at: usize| -> Option<(usize, usize)> {
        let rest = buf.get(at..).filter(|r| r.first() == Some(&b'$'))?;
        let (len, used) = header(rest, "bulk count").ok()??;
        let len = usize::try_from(len).ok().filter(|&len| len <= limits.bulk_bytes_max)?;
        Some((used, len))
    };
    let (mut at, mut total) = (0, 0);
    for _ in 0..count {
        let (used, len) = bulk_at(at)?;
        total += len; // each len is at most bulk_bytes_max, and total stops at 4 KiB
        if total > ONE_PIECE_BYTES_MAX || total > limits.request_bytes_max {
            return None;
        }
        at += used + len + 2; // within the buffer or just past it, checked next
        if at > buf.len() {
            return None;
        }
    }
    let mut piece = BytesMut::with_capacity(total);
    let mut args = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        let (used, len) = bulk_at(at)?; // as checked above
        piece.extend_from_slice(&buf[at + used..at + used + len]);
        args.push(piece.split().freeze());
        at += used + len + 2;
    }
    buf.advance(at);
    Some(args)
}

/// Parses a `<type><integer>\r\n` header at the start of `buf`: (value, bytes used).
fn header(buf: &[u8], what: &str) -> Result<Option<(i64, usize)>, ProtocolError> {
    let window = &buf[..buf.len().min(HEADER_BYTES_MAX)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if buf.len() > HEADER_BYTES_MAX {
            err(format!("too big {what} string"))
        } else {
            Ok(None)
        };
    };
    if cr + 1 >= buf.len() {
        return Ok(None);
    }
    if buf[cr + 1] != b'\n' {
        return err(format!("invalid {what}"));
    }
    let invalid =
        if what == "mbulk count" { "invalid multibulk length" } else { "invalid bulk length" };
    // Redis' integer rules: no `+`, no leading zeros, no spaces.
    let value = parse_i64(&buf[1..cr]).ok_or_else(|| ProtocolError(invalid.into()))?;
    Ok(Some((value, cr + 2)))
}

/// Takes one `$<len>\r\n<bytes>\r\n` bulk string from the start of `buf`, if it is complete.
fn bulk(buf: &mut BytesMut, bulk_bytes_max: usize) -> Result<Option<Bytes>, ProtocolError> {
    match buf.first() {
        None => return Ok(None),
        Some(b'$') => {}
        Some(&other) => return err(format!("expected '$', got '{}'", other as char)),
    }
    let Some((len, used)) = header(buf, "bulk count")? else { return Ok(None) };
    if len < 0 || len as u64 > bulk_bytes_max as u64 {
        return err("invalid bulk length");
    }
    let len = len as usize;
    let total = used + len + 2;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    // Like Redis, the two bytes after the payload are skipped without being checked.
    buf.advance(used);
    let arg = if len < COPY_BYTES_MAX {
        let arg = Bytes::copy_from_slice(&buf[..len]);
        buf.advance(len);
        arg
    } else {
        buf.split_to(len).freeze()
    };
    buf.advance(2);
    Ok(Some(arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        bulk_bytes_max: 16,
        array_len_max: 4,
        inline_bytes_max: 64,
        request_bytes_max: 40,
    };

    fn decode_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut d = Decoder::new(LIMITS);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(req) = d.decode(&mut buf)? {
            out.push(req);
        }
        Ok(out)
    }

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn decodes_pipelined_multibulk_and_inline() {
        let got =
            decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*0\r\n*1\r\n$0\r\n\r\n").unwrap();
        assert_eq!(got, vec![args(&["GET", "k"]), args(&["PING"]), args(&[""])]);
    }

    #[test]
    fn byte_at_a_time_gives_the_same_requests() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n";
        let mut d = Decoder::new(LIMITS);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            if let Some(req) = d.decode(&mut buf).unwrap() {
                out.push(req);
            }
        }
        assert_eq!(out, vec![args(&["SET", "k", "a\r\nb"])]);
    }

    #[test]
    fn a_request_taken_in_one_piece_or_argument_by_argument_is_the_same() {
        let limits = Limits {
            bulk_bytes_max: 8192,
            array_len_max: 8,
            inline_bytes_max: 64,
            request_bytes_max: 16384,
        };
        for size in [0, 1, 100, ONE_PIECE_BYTES_MAX / 2, ONE_PIECE_BYTES_MAX, 5000] {
            let value = "v".repeat(size);
            let mut input = Vec::new();
            for arg in ["SET", "key", &value] {
                input.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
            }
            let input = [b"*3\r\n".as_slice(), &input, b"*1\r\n$4\r\nPING\r\n"].concat();
            let whole = crate::fuzzing::decode_chunked(limits, &input, input.len());
            assert_eq!(whole, crate::fuzzing::decode_chunked(limits, &input, 7), "{size}");
            let mut buf = BytesMut::from(&input[..]);
            let first = Decoder::new(limits).decode(&mut buf).unwrap();
            assert_eq!(first, Some(args(&["SET", "key", &value])));
        }
        // More arguments than one piece takes: argument by argument, the same request.
        let mut buf = BytesMut::from(&b"*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$1\r\nv\r\n"[..]);
        let hset = Decoder::new(limits).decode(&mut buf).unwrap();
        assert_eq!(hset, Some(args(&["HSET", "h", "f", "v"])));
    }

    #[test]
    fn refuses_what_exceeds_limits() {
        assert_eq!(decode_all(b"*5\r\n").unwrap_err().0, "invalid multibulk length");
        assert_eq!(decode_all(b"*1\r\n$17\r\n").unwrap_err().0, "invalid bulk length");
        assert_eq!(decode_all(b"*1\r\n$-1\r\n").unwrap_err().0, "invalid bulk length");
        assert_eq!(
            decode_all(b"*99999999999999999999\r\n").unwrap_err().0,
            "invalid multibulk length"
        );
        assert_eq!(decode_all(b"*1\r\n*1\r\n").unwrap_err().0, "expected '$', got '*'");
        assert_eq!(decode_all(b"*+1\r\n").unwrap_err().0, "invalid multibulk length");
        let big = b"*3\r\n$16\r\naaaaaaaaaaaaaaaa\r\n$16\r\naaaaaaaaaaaaaaaa\r\n$16\r\naaaaaaaaaaaaaaaa\r\n";
        assert_eq!(decode_all(big).unwrap_err().0, "request larger than request_bytes_max");
        assert_eq!(decode_all(b"*1\r\n$04\r\n").unwrap_err().0, "invalid bulk length");
        assert!(decode_all(&[b'x'; 100]).is_err(), "inline line without end");
    }

    #[test]
    fn incomplete_input_waits_for_more() {
        for cut in [&b"*2\r\n$3\r\nGE"[..], b"*2", b"*2\r", b"*2\r\n$3\r\nGET\r\n", b"PIN"] {
            let mut d = Decoder::new(LIMITS);
            let mut buf = BytesMut::from(cut);
            assert_eq!(d.decode(&mut buf).unwrap(), None, "{:?}", String::from_utf8_lossy(cut));
        }
    }

    /// The same property the `resp_decode` fuzz target checks, over seeded pseudo-random inputs
    /// built from protocol-shaped pieces: never a panic, and chunking never changes the result.
    #[test]
    fn random_inputs_never_panic_and_chunking_does_not_matter() {
        const PIECES: &[&[u8]] = &[
            b"*",
            b"$",
            b"\r\n",
            b"\r",
            b"\n",
            b"1",
            b"2",
            b"0",
            b"-1",
            b"17",
            b"99999999999",
            b"abc",
            b"\"",
            b"'",
            b" ",
            b"\\x4",
            b"+",
            b"\x00",
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let mut data = Vec::new();
            for _ in 0..len {
                data.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let chunk = 1 + (next() % 8) as usize;
            let decode = |chunk| crate::fuzzing::decode_chunked(LIMITS, &data, chunk);
            assert_eq!(decode(data.len()), decode(chunk), "{data:?}");
        }
    }
}
