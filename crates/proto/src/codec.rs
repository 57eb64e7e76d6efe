//! The prost codec of every `verdict.v1` service and client, with a small encode buffer.
//!
//! tonic's default codec gives every call an 8 KiB encode buffer that lives as long as the call.
//! A watch stream lives for hours and sends a few hundred bytes at a time (a case) or a few dozen
//! (a heartbeat): that buffer was about half of an idle stream's memory (heaptrack, 10 000 open
//! streams: 8 KiB of 17 per stream, allocated in `Grpc::map_response`). The buffer grows when a
//! message needs more, so only memory changes, never what can be sent.
//!
//! Half a KiB holds a case with its person and its frame header (245–270 bytes for the fixtures'
//! payloads; a test in `verdict-grpc` checks they fit). 1 KiB, the first size tried, left more
//! than half of it unused in every stream.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Room for a case with its person and the gRPC frame header: most messages never grow it.
pub const ENCODE_BUFFER: usize = 512;

/// tonic's default: how much encoded output is batched before it is handed to the transport.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// See the module docs; named by `build.rs` as the generated code's codec.
#[derive(Debug, Clone, Copy)]
pub struct CompactCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for CompactCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for CompactCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(ENCODE_BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::default())
    }
}
