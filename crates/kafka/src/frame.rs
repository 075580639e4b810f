//! Kafka framing: a big-endian `i32` size, then the request header and body; responses are the
//! size, the response header (the correlation id) and the body.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::KafkaError;
use crate::versions::{Served, served_api};

/// The smallest request: API key, version and correlation id.
const MIN_FRAME: usize = 8;

/// One decoded request header and the body that follows it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The API and its entry in the served table.
    pub api: &'static Served,
    /// The version the client speaks.
    pub version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
    /// The client's `client.id`, empty when it sent none.
    pub client_id: String,
    /// The client's address as Kafka shows it (`/127.0.0.1`); set by the connection.
    pub client_host: String,
    /// The request body (after the header).
    pub body: Bytes,
}

/// Reads one frame; `Ok(None)` when the peer closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> Result<Option<Bytes>, KafkaError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size);
    if size < MIN_FRAME as i32 || size as usize > max {
        return Err(KafkaError::FrameSize { size: size.into(), max });
    }
    let mut frame = BytesMut::zeroed(size as usize);
    reader.read_exact(&mut frame).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            KafkaError::Truncated(format!("the connection closed inside a {size}-byte frame"))
        }
        _ => e.into(),
    })?;
    Ok(Some(frame.freeze()))
}

/// Decodes a frame's request header. An unknown or unserved API, or a version outside the
/// served range, is an error, except ApiVersions, which Kafka answers at any version (with
/// `UNSUPPORTED_VERSION` and the versions it serves, so the client can pick one).
pub fn parse(mut frame: Bytes) -> Result<Request, KafkaError> {
    if frame.len() < MIN_FRAME {
        return Err(KafkaError::Truncated(format!("{} bytes cannot hold a request header", frame.len())));
    }
    let key = (&frame[0..2]).get_i16();
    let version = (&frame[2..4]).get_i16();
    let api = ApiKey::try_from(key).ok().and_then(served_api).ok_or(KafkaError::UnsupportedApi(key))?;
    if (version < api.min || version > api.max) && api.api != ApiKey::ApiVersions {
        return Err(KafkaError::UnsupportedVersion { api: api.name, version, min: api.min, max: api.max });
    }
    // An ApiVersions request newer than the codec knows still has the flexible (v2) header.
    let header_version = api.api.request_header_version(version.clamp(api.min, api.max));
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| KafkaError::Truncated(format!("{} v{version} request header: {e}", api.name)))?;
    Ok(Request {
        api,
        version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.map(|c| c.to_string()).unwrap_or_default(),
        client_host: String::new(),
        body: frame,
    })
}

impl Request {
    /// Decodes the body as `T` at the request's version.
    pub fn decode<T: Decodable>(&self) -> Result<T, KafkaError> {
        let mut body = self.body.clone();
        let decoded = T::decode(&mut body, self.version).map_err(|e| self.malformed(e.to_string()))?;
        Ok(decoded)
    }

    fn malformed(&self, reason: String) -> KafkaError {
        KafkaError::Malformed { api: self.api.name, version: self.version, reason }
    }

    /// The whole response frame for `body`, encoded at `version` (the request's, except for an
    /// ApiVersions error answer, which is always version 0).
    pub fn respond<T: Encodable>(&self, body: &T, version: i16) -> Result<Bytes, KafkaError> {
        let encode_error = |reason: String| KafkaError::Encode { api: self.api.name, version, reason };
        let header = ResponseHeader::default().with_correlation_id(self.correlation_id);
        let header_version = self.api.api.response_header_version(version);
        let mut out = BytesMut::with_capacity(64);
        out.put_i32(0);
        header.encode(&mut out, header_version).map_err(|e| encode_error(e.to_string()))?;
        body.encode(&mut out, version).map_err(|e| encode_error(e.to_string()))?;
        let size = (out.len() - 4) as i32;
        out[0..4].copy_from_slice(&size.to_be_bytes());
        Ok(out.freeze())
    }
}
