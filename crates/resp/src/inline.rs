//! Inline requests (`SET k "hello world"\r\n`), split as Redis' `sdssplitargs` does: spaces
//! separate arguments; `"..."` understands `\n \r \t \b \a \\ \" \xHH`; `'...'` understands `\'`.

use bytes::{Buf, Bytes, BytesMut};

use super::decode::ProtocolError;

/// Takes one inline line from `buf` and splits it. `Ok(None)` if the line is not complete yet.
pub fn take_line(
    buf: &mut BytesMut,
    inline_bytes_max: usize,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let window = &buf[..buf.len().min(inline_bytes_max + 1)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() > inline_bytes_max {
            return Err(ProtocolError("too big inline request".into()));
        }
        return Ok(None);
    };
    let args = {
        let line = &buf[..nl];
        split_args(line.strip_suffix(b"\r").unwrap_or(line))
    };
    buf.advance(nl + 1);
    args.map(Some).ok_or_else(|| ProtocolError("unbalanced quotes in request".into()))
}

/// Splits a line into arguments; `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Some(args);
        }
        let mut arg = Vec::new();
        match line[i] {
            b'"' => i = double_quoted(line, i + 1, &mut arg)?,
            b'\'' => i = single_quoted(line, i + 1, &mut arg)?,
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    arg.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(Bytes::from(arg));
    }
}

/// A closing quote must be followed by a space or the end of the line.
fn closed_at(line: &[u8], i: usize) -> Option<usize> {
    match line.get(i + 1) {
        None => Some(i + 1),
        Some(b) if b.is_ascii_whitespace() => Some(i + 1),
        Some(_) => None,
    }
}

fn double_quoted(line: &[u8], mut i: usize, arg: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *line.get(i)? {
            b'"' => return closed_at(line, i),
            b'\\' if line.get(i + 1) == Some(&b'x') => {
                let hex = line.get(i + 2..i + 4).and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        arg.push(byte);
                        i += 4;
                    }
                    None => {
                        arg.push(b'x');
                        i += 2;
                    }
                }
            }
            b'\\' => {
                let c = *line.get(i + 1)?;
                arg.push(match c {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 8,
                    b'a' => 7,
                    other => other,
                });
                i += 2;
            }
            c => {
                arg.push(c);
                i += 1;
            }
        }
    }
}

fn single_quoted(line: &[u8], mut i: usize, arg: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *line.get(i)? {
            b'\'' => return closed_at(line, i),
            b'\\' if line.get(i + 1) == Some(&b'\'') => {
                arg.push(b'\'');
                i += 2;
            }
            c => {
                arg.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_args;

    fn split(s: &str) -> Option<Vec<String>> {
        split_args(s.as_bytes())
            .map(|v| v.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect())
    }

    #[test]
    fn splits_like_redis() {
        assert_eq!(split("set k  v").unwrap(), ["set", "k", "v"]);
        assert_eq!(split(r#"set "a b\n" 'c\'d'"#).unwrap(), ["set", "a b\n", "c'd"]);
        assert_eq!(split(r#"echo "\x41\x4a""#).unwrap(), ["echo", "AJ"]);
        assert_eq!(split("   ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn unbalanced_quotes_are_refused() {
        assert_eq!(split(r#"set "abc"#), None);
        assert_eq!(split(r#"set "abc"x"#), None);
        assert_eq!(split("set 'abc"), None);
    }
}
