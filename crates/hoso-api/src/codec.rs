//! The protobuf codec of every `hoso.v1` service: prost's, except that a message that does not
//! decode is the sender's fault.
//!
//! `tonic_prost::ProstCodec` answers an undecodable request with INTERNAL (gRPC's status-code
//! table lists parse errors there), which tells a desk's developer that the server broke and
//! tells the operator nothing. Here it is INVALID_ARGUMENT naming what prost could not read.

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// `ProstCodec` with decode errors answered as INVALID_ARGUMENT (set as the generated code's
/// `codec_path` in `build.rs`).
#[derive(Debug, Clone, Default)]
pub struct HosoCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Codec for HosoCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = HosoDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        HosoDecoder(self.0.decoder())
    }
}

/// Prost's decoder, with its errors as INVALID_ARGUMENT.
#[derive(Debug, Clone, Default)]
pub struct HosoDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for HosoDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            let problem: String = status.message().chars().take(200).collect();
            Status::invalid_argument(format!(
                "the message is not a valid {} in protobuf ({problem}); send it as the hoso.v1 proto files define it",
                std::any::type_name::<U>().rsplit("::").next().unwrap_or("message")
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
