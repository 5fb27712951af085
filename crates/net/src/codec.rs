//! Grid messages on a libp2p stream: each message is a frame, a 4-byte big-endian length and
//! then the postcard bytes. A frame above the cap, or bytes that are not a message, fail the
//! stream; they never reach the protocol and never panic.

use std::io;

use futures::{AsyncRead, AsyncReadExt};
use libp2p::StreamProtocol;
use sessiongrid_cluster::Msg;

/// Each node opens one long-lived stream of this protocol to each peer it talks to.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/sessiongrid/grid/8.0.0");

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Appends `msg` as one frame to `out`; refuses a message larger than `max` bytes (the peer
/// would refuse the frame and close the stream).
pub fn encode_frame(out: &mut Vec<u8>, msg: &Msg, max: usize) -> io::Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    if let Err(e) = postcard::to_io(msg, &mut *out) {
        out.truncate(start);
        return Err(invalid(e));
    }
    let len = out.len() - start - 4;
    if len > max {
        out.truncate(start);
        return Err(invalid(format!("message of {len} bytes exceeds the {max}-byte frame limit")));
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Reads one frame's bytes; `Ok(None)` at a clean end of the stream.
pub async fn read_frame<T: AsyncRead + Unpin>(
    io: &mut T,
    max: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match io.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(invalid(format!("frame of {len} bytes exceeds the {max}-byte limit")));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// Decodes a frame's bytes into a message.
pub fn decode(bytes: &[u8]) -> io::Result<Msg> {
    postcard::from_bytes(bytes).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use sessiongrid_cluster::{MemberMsg, Topology};

    #[test]
    fn frames_round_trip_in_order_and_oversized_ones_are_refused() {
        futures::executor::block_on(async {
            let mut out = Vec::new();
            encode_frame(&mut out, &MemberMsg::TopologyPull.into(), 64).unwrap();
            encode_frame(&mut out, &MemberMsg::Leave.into(), 64).unwrap();
            let mut rd = Cursor::new(out);
            let first = read_frame(&mut rd, 64).await.unwrap().unwrap();
            assert!(matches!(decode(&first).unwrap(), Msg::Membership(MemberMsg::TopologyPull)));
            let second = read_frame(&mut rd, 64).await.unwrap().unwrap();
            assert!(matches!(decode(&second).unwrap(), Msg::Membership(MemberMsg::Leave)));
            assert!(read_frame(&mut rd, 64).await.unwrap().is_none(), "a clean end");

            let mut big = Cursor::new(vec![0, 0, 1, 0]);
            let e = read_frame(&mut big, 16).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            let mut cut = Cursor::new(vec![0, 0, 0, 9, 1, 2]);
            assert!(read_frame(&mut cut, 16).await.is_err(), "a frame cut short");
        });
    }

    #[test]
    fn a_message_over_the_limit_is_not_framed() {
        let mut out = vec![7];
        let t = std::sync::Arc::new(Topology::founded_by(1, 100));
        let msg = Msg::Membership(MemberMsg::TopologyPush(t));
        assert!(encode_frame(&mut out, &msg, 8).is_err());
        assert_eq!(out, vec![7], "nothing half-written");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[0xff; 40]).is_err());
        assert!(decode(&[]).is_err());
    }
}
