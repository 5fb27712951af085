//! What the decoder's fuzz target checks of one input, shared with the test that replays the
//! fuzz corpus kept in the repository (so every input found once is checked on every build).

use bytes::{Bytes, BytesMut};

use crate::{Decoder, Limits};

const LIMITS: Limits = Limits {
    bulk_bytes_max: 4096,
    array_len_max: 1024,
    inline_bytes_max: 1024,
    request_bytes_max: 65536,
};

/// The requests decoded from `data` fed `chunk` bytes at a time under `limits`, and whether it
/// ended in an error.
pub(crate) fn decode_chunked(limits: Limits, data: &[u8], chunk: usize) -> (Vec<Vec<Bytes>>, bool) {
    let mut decoder = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(req)) => out.push(req),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

/// Decodes the input (its first byte is a chunk size) whole and in chunks: the decoder must
/// not panic, and splitting the input must not change what it decodes.
pub fn decode_in_chunks(data: &[u8]) {
    let Some((&chunk, data)) = data.split_first() else { return };
    let whole = decode_chunked(LIMITS, data, data.len());
    let pieces = decode_chunked(LIMITS, data, usize::from(chunk));
    assert_eq!(whole, pieces, "chunking changed the decoded requests");
}
