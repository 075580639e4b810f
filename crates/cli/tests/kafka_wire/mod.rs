//! Raw Kafka protocol requests for tests: frames built and answers read with the
//! `kafka-protocol` crate, over a plain blocking socket.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// A blocking connection to `addr` with a 10 s read timeout.
pub fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A request frame: size, header (at the API's header version), body.
pub fn request<T: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &T) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("vltava-test")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, api.request_header_version(version)).unwrap();
    body.encode(&mut buf, version).unwrap();
    framed(&buf)
}

/// `payload` behind its size prefix.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.put_i32(payload.len() as i32);
    out.extend_from_slice(payload);
    out
}

/// Reads one response frame and its correlation id (header version `header_version`).
pub fn response(s: &mut TcpStream, header_version: i16) -> (i32, Bytes) {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut frame).unwrap();
    let mut frame = Bytes::from(frame);
    let header = ResponseHeader::decode(&mut frame, header_version).unwrap();
    (header.correlation_id, frame)
}

/// Sends one request on `s` and decodes its answer as `R` (same version).
pub fn call<T: Encodable, R: Decodable>(s: &mut TcpStream, api: ApiKey, version: i16, body: &T) -> R {
    use std::io::Write;
    s.write_all(&request(api, version, 42, body)).unwrap();
    let (correlation_id, mut frame) = response(s, api.response_header_version(version));
    assert_eq!(correlation_id, 42);
    R::decode(&mut frame, version).unwrap()
}
