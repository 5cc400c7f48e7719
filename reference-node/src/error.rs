//! The node's two error layers: failures of the node itself ([`NodeError`]) and refusals of one
//! request, each carrying the spec's wire code ([`ReqError`]).

use kith_proto::{ErrorCode, HasErrorCode};

/// Why the node could not start or keep running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A file or socket operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error("store: {0}")]
    Store(Box<redb::Error>),
    /// The configuration is unusable (a bad seed file, a budget below the entry size).
    #[error("config: {0}")]
    Config(String),
}

macro_rules! redb_errors {
    ($($t:ty),+) => {$(
        impl From<$t> for NodeError {
            fn from(e: $t) -> Self {
                NodeError::Store(Box::new(e.into()))
            }
        }
    )+};
}
redb_errors!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// A request's refusal: the error frame's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ReqError {
    /// The spec code.
    pub code: ErrorCode,
    /// Detail for humans.
    pub message: String,
}

impl ReqError {
    /// A refusal with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ReqError { code, message: message.into() }
    }

    /// The node's own failure (a database error): `internal`.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ReqError { code: ErrorCode::Internal, message: e.to_string() }
    }

    /// From any core error that carries its code.
    pub fn from_coded<E: HasErrorCode + std::fmt::Display>(e: &E) -> Self {
        ReqError { code: e.code(), message: e.to_string() }
    }
}

impl HasErrorCode for ReqError {
    fn code(&self) -> ErrorCode {
        self.code
    }
}
