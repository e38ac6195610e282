//! `hoso call`: any method of the API with a JSON request, like grpcurl, through a codec
//! for messages known only at run time.

use crate::out::outln;

use anyhow::{Context, Result};
use tonic::{Request, Status};

use super::{ConnectArgs, connect, descriptors, status_error};

/// `hoso call`.
#[derive(clap::Args)]
pub(crate) struct CallArgs {
    /// The method as `Service/Method`, e.g. `DeskService/ReceiveDossier` (package hoso.v1 is
    /// implied; `hoso call list` lists them all).
    method: String,
    /// The request as JSON (the protobuf JSON mapping: field names in lowerCamelCase or as in the
    /// .proto, timestamps as RFC 3339 strings, enums by name); `-` reads it from standard input.
    #[arg(default_value = "{}")]
    json: String,
    #[command(flatten)]
    connect: ConnectArgs,
}

impl CallArgs {
    /// `hoso call list`.
    pub(crate) fn is_list(&self) -> bool {
        self.method == "list"
    }
}

/// Every method of the API, one `Service/Method` a line.
pub(crate) fn list_methods() -> Result<()> {
    for service in descriptors()?.services() {
        for method in service.methods() {
            let streaming = if method.is_server_streaming() {
                "  (server streaming)"
            } else {
                ""
            };
            outln!("{}/{}{streaming}", service.name(), method.name());
        }
    }
    Ok(())
}

/// Calls one method with a JSON request and prints the JSON answer (one object per message).
pub(crate) async fn call(args: CallArgs) -> Result<()> {
    use prost_reflect::{DynamicMessage, SerializeOptions};
    let pool = descriptors()?;
    let (service, method) = args
        .method
        .split_once('/')
        .with_context(|| format!("{:?} is not Service/Method; `hoso call list` lists them", args.method))?;
    let service_name = if service.contains('.') {
        service.to_owned()
    } else {
        format!("hoso.v1.{service}")
    };
    let service = pool
        .get_service_by_name(&service_name)
        .with_context(|| format!("there is no service {service_name}; `hoso call list` lists them"))?;
    let method = service
        .methods()
        .find(|m| m.name() == method)
        .with_context(|| format!("{} has no method {method}; `hoso call list` lists them", service.name()))?;
    let json = if args.json == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the request from standard input")?
    } else {
        args.json
    };
    let mut deserializer = serde_json::Deserializer::from_str(&json);
    let request = DynamicMessage::deserialize(method.input(), &mut deserializer)
        .and_then(|m| deserializer.end().map(|()| m))
        .with_context(|| format!("the request is not a valid {} in JSON", method.input().full_name()))?;

    let mut grpc = tonic::client::Grpc::new(connect(&args.connect).await?);
    grpc.ready()
        .await
        .context("the connection to the server is not ready")?;
    let path: tonic::codegen::http::uri::PathAndQuery = format!("/{}/{}", service.full_name(), method.name())
        .parse()
        .context("the method's path is not valid")?;
    let codec = DynamicCodec(method.output());
    let options = SerializeOptions::new().skip_default_fields(false);
    let print = |message: &DynamicMessage| -> Result<()> {
        let mut out = serde_json::Serializer::pretty(std::io::stdout());
        message.serialize_with_options(&mut out, &options)?;
        outln!();
        Ok(())
    };
    if method.is_server_streaming() {
        let mut stream = grpc
            .server_streaming(Request::new(request), path, codec)
            .await
            .map_err(status_error)?
            .into_inner();
        while let Some(message) = stream.message().await.map_err(status_error)? {
            print(&message)?;
        }
    } else {
        let response = grpc
            .unary(Request::new(request), path, codec)
            .await
            .map_err(status_error)?;
        print(response.get_ref())?;
    }
    Ok(())
}

/// Encodes and decodes messages known only at run time, by their descriptor.
struct DynamicCodec(prost_reflect::MessageDescriptor);

impl tonic::codec::Codec for DynamicCodec {
    type Encode = prost_reflect::DynamicMessage;
    type Decode = prost_reflect::DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder(self.0.clone())
    }
}

struct DynamicEncoder;

impl tonic::codec::Encoder for DynamicEncoder {
    type Item = prost_reflect::DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Status> {
        prost::Message::encode(&item, dst).map_err(|err| Status::internal(format!("cannot encode the request: {err}")))
    }
}

struct DynamicDecoder(prost_reflect::MessageDescriptor);

impl tonic::codec::Decoder for DynamicDecoder {
    type Item = prost_reflect::DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        prost_reflect::DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|err| Status::internal(format!("cannot decode the answer: {err}")))
    }
}
