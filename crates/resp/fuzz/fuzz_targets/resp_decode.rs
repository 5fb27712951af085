//! Feeds arbitrary bytes to the RESP request decoder in arbitrary chunk sizes. The decoder must
//! never panic, and splitting the input differently must never change the requests decoded.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sessiongrid_resp::{Decoder, Limits};

const LIMITS: Limits = Limits {
    bulk_bytes_max: 4096,
    array_len_max: 1024,
    inline_bytes_max: 1024,
    request_bytes_max: 65536,
};

fn decode(data: &[u8], chunk: usize) -> (Vec<Vec<bytes::Bytes>>, bool) {
    let mut decoder = Decoder::new(LIMITS);
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

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else { return };
    let whole = decode(data, data.len());
    let pieces = decode(data, chunk as usize);
    assert_eq!(whole, pieces, "chunking changed the decoded requests");
});
