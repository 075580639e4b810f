//! ApiVersions: the APIs and versions this listener serves ([`crate::versions::SUPPORTED`]).
//!
//! A client asking at a version newer than served gets, as Kafka answers it, a version 0
//! response with `UNSUPPORTED_VERSION` and the list, and retries at a version both know.

use bytes::Bytes;
use kafka_protocol::messages::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

use super::codes::UNSUPPORTED_VERSION;
use crate::KafkaError;
use crate::frame::Request;
use crate::versions::SUPPORTED;

/// Answers ApiVersions at the request's version, or at version 0 when it is too new.
pub fn handle(req: &Request) -> Result<Bytes, KafkaError> {
    let api_keys = SUPPORTED
        .iter()
        .map(|s| ApiVersion::default().with_api_key(s.api as i16).with_min_version(s.min).with_max_version(s.max))
        .collect();
    let response = ApiVersionsResponse::default().with_api_keys(api_keys);
    if req.version > req.api.max || req.version < req.api.min {
        return req.respond(&response.with_error_code(UNSUPPORTED_VERSION), 0);
    }
    let _: ApiVersionsRequest = req.decode()?;
    req.respond(&response, req.version)
}
