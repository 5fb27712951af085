//! Feeds arbitrary bytes to the RESP request decoder in arbitrary chunk sizes. The decoder must
//! never panic, and splitting the input differently must never change the requests decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sessiongrid_resp::fuzzing::decode_in_chunks(data));
