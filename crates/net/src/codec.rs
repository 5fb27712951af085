//! Grid messages on a libp2p stream: a 4-byte big-endian length, then the postcard bytes. A
//! frame above the cap, or bytes that are not a message, fail the stream; they never reach the
//! protocol and never panic.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;
use sessiongrid_cluster::Msg;

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/sessiongrid/grid/1.0.0");

/// A request carries the messages queued for one peer at that moment, in order; messages are
/// one-way and the response is an empty acknowledgement. Batching amortises the stream set-up
/// over everything a busy node has to say to a peer.
#[derive(Clone)]
pub struct MsgCodec {
    pub max_frame_bytes: usize,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

pub async fn read_frame<T: AsyncRead + Unpin>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(invalid(format!("frame of {len} bytes exceeds the {max}-byte limit")));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

pub async fn write_frame<T: AsyncWrite + Unpin>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(invalid)?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

impl request_response::Codec for MsgCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<Msg>;
    type Response = ();

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<Msg>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, self.max_frame_bytes).await?;
        postcard::from_bytes(&bytes).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, _io: &mut T) -> io::Result<()>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(())
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        msg: Vec<Msg>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = postcard::to_stdvec(&msg).map_err(invalid)?;
        if bytes.len() > self.max_frame_bytes {
            return Err(invalid(format!(
                "message of {} bytes exceeds the frame limit",
                bytes.len()
            )));
        }
        write_frame(io, &bytes).await?;
        io.close().await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, _: ()) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        futures::executor::block_on(async {
            let mut buf = Cursor::new(Vec::new());
            write_frame(&mut buf, b"hello").await.unwrap();
            let mut rd = Cursor::new(buf.into_inner());
            assert_eq!(read_frame(&mut rd, 16).await.unwrap(), b"hello");
            let mut big = Cursor::new(vec![0, 0, 1, 0]);
            let e = read_frame(&mut big, 16).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        });
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        futures::executor::block_on(async {
            let mut codec = MsgCodec { max_frame_bytes: 1024 };
            let mut frame = Cursor::new(Vec::new());
            write_frame(&mut frame, &[0xff; 40]).await.unwrap();
            let mut rd = Cursor::new(frame.into_inner());
            assert!(request_response::Codec::read_request(&mut codec, &PROTOCOL, &mut rd)
                .await
                .is_err());
        });
    }
}
