//! Feeds arbitrary bytes to a node as frames from its peers (see
//! `sessiongrid_simulations::fuzzing::peer_frames`): no frame a peer sends may end the process.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sessiongrid_simulations::fuzzing::peer_frames(data));
