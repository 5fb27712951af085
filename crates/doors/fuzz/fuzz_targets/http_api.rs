//! A node's HTTP API fed arbitrary requests: any method, path, query and JSON body, as the
//! admin or as an ACL user limited to one session group (see
//! `sessiongrid_embedded::fuzzing`). No input may end the node or get a 500.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sessiongrid_embedded::fuzzing::HttpApi;

fuzz_target!(|data: &[u8]| {
    static API: OnceLock<HttpApi> = OnceLock::new();
    API.get_or_init(HttpApi::start).send(data);
});
