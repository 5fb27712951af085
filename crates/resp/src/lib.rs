//! RESP, the Redis serialization protocol: a bounded request decoder and a reply encoder for
//! RESP2 and RESP3. No I/O and no grid, so it is fuzzed and tested alone.
//!
//! # Layout
//! - [`decode`] — the request decoder and its limits.
//! - [`inline`] — inline (telnet-style) requests.
//! - [`encode`] — replies in RESP2 or RESP3.

pub mod decode;
pub mod encode;
#[doc(hidden)]
pub mod fuzzing;
pub mod inline;

pub use decode::{Decoder, Limits, ProtocolError};
pub use encode::{encode, Protocol};
