//! RESP, the Redis serialization protocol: a bounded request decoder and a reply encoder for
//! RESP2 and RESP3.

pub mod decode;
pub mod encode;
pub mod inline;

pub use decode::{Decoder, Limits, ProtocolError};
pub use encode::{encode, Protocol};
