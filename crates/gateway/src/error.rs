//! One error code for both faces of the gateway: every failure says what kind it is, and that
//! kind gives the gRPC code and the HTTP status (as quickwit's `ServiceErrorCode` does). Neither
//! face is derived from the other.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// What kind of failure, as a client should read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is wrong (a bad camera name, a time that is no time).
    BadRequest,
    /// Nothing kept for it (an unknown camera, no poses yet, a silent or ended camera).
    NotFound,
    /// The message bus is unreachable or failed: try again.
    Unavailable,
    /// Something in pump itself (a stored message that does not decode, an encoder failure).
    Internal,
}

impl ErrorCode {
    pub fn grpc(self) -> tonic::Code {
        match self {
            ErrorCode::BadRequest => tonic::Code::InvalidArgument,
            ErrorCode::NotFound => tonic::Code::NotFound,
            ErrorCode::Unavailable => tonic::Code::Unavailable,
            ErrorCode::Internal => tonic::Code::Internal,
        }
    }

    pub fn http(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A failure of the gateway: its kind and one line for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The bus failed or is unreachable.
    pub fn bus(e: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Unavailable, format!("message bus unavailable: {e}"))
    }

    pub fn bad_camera(name: &str) -> Self {
        Self::bad_request(format!("camera: {name:?} is not a camera name (letters, digits, '-', '_')"))
    }
}

/// A camera name from a request, checked.
pub fn camera(name: &str) -> Result<pump_bus::subject::CameraId, ServiceError> {
    pump_bus::subject::CameraId::new(name).map_err(|_| ServiceError::bad_camera(name))
}

impl From<ServiceError> for tonic::Status {
    fn from(e: ServiceError) -> Self {
        tonic::Status::new(e.code.grpc(), e.message)
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        (self.code.http(), [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.message + "\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn each_kind_has_its_grpc_code_and_http_status() {
        let cases = [
            (ServiceError::bad_camera("a b"), tonic::Code::InvalidArgument, StatusCode::BAD_REQUEST),
            (StoreError::UnknownCamera("x".into()).into(), tonic::Code::NotFound, StatusCode::NOT_FOUND),
            (StoreError::NoPoses("x".into()).into(), tonic::Code::NotFound, StatusCode::NOT_FOUND),
            (ServiceError::bus("down"), tonic::Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            (ServiceError::internal("oops"), tonic::Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (e, grpc, http) in cases {
            let status = tonic::Status::from(e.clone());
            assert_eq!((status.code(), status.message()), (grpc, e.message.as_str()));
            assert_eq!(e.clone().into_response().status(), http, "{e}");
        }
        assert!(camera("rack1").is_ok());
        assert_eq!(camera("a/b").unwrap_err().code, ErrorCode::BadRequest);
    }
}
