//! Step 10 of 06 §3 for every request type: the typed decoders behind
//! [`crate::frame::parse_client_frame`].
//!
//! serde only builds each request's *wire struct*: its members with their JSON kinds, texts left
//! as texts. Everything serde refuses there is a structural defect, `invalid_request`
//! ([FRAME-16]), unless the member is an object whose chapter names another code (an entry's
//! structure is `malformed_entry`, [ENTRY-2]; a hello's certificate is `bad_certificate`,
//! [HS-25]). The member rules then run in code, in the order their chapter fixes, and fail with a
//! [`RequestError`] whose variant decides the code. No code is ever read back from an error's
//! text.

use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::encoding::EncodingError;
use crate::entry::EntryError;
use crate::error::{ErrorCode, HasErrorCode};

/// Why a request's members break its rules (06 §3 step 10). Each variant carries its spec code
/// ([`HasErrorCode::code`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A member is missing, of the wrong JSON kind or out of range ([FRAME-16]), or breaks a
    /// rule its chapter answers with `invalid_request` (an account name, a list too long).
    #[error("{0}")]
    Invalid(String),
    /// A `KEY`, `ID` or `SIG` text is not in its one canonical form, or a key is weak
    /// ([ENC-10] .. [ENC-14]): `bad_encoding` or `weak_key`.
    #[error("{member}: {source}")]
    Encoding {
        /// The member, as the frame names it (e.g. `filter.authors`).
        member: &'static str,
        /// What is wrong with its text.
        source: EncodingError,
    },
    /// The entry of a `publish` breaks a rule of 03 §3 (structure, field rules, in that order).
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// The hello's `version` is not one the node speaks (H3, [HS-22]).
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(String),
    /// The hello's `cert` is not a certificate (H6, [HS-25]).
    #[error("bad certificate: {0}")]
    BadCertificate(String),
}

impl HasErrorCode for RequestError {
    fn code(&self) -> ErrorCode {
        match self {
            RequestError::Invalid(_) => ErrorCode::InvalidRequest,
            RequestError::Encoding { source, .. } => source.code(),
            RequestError::Entry(e) => e.code(),
            RequestError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            RequestError::BadCertificate(_) => ErrorCode::BadCertificate,
        }
    }
}

/// A request type's decoder from the text of a frame that passed steps 1 to 6 of 06 §3 (one
/// JSON object of chapter 1's grammar, a registered `type`, a valid `id`).
pub(crate) trait DecodeRequest: Sized {
    /// Decodes the request, or says which of its rules it breaks first.
    fn decode(text: &str) -> Result<Self, RequestError>;
}

/// Calls a request type's decoder (the shape `frame_registry!` expects).
pub(crate) fn decode_request<T: DecodeRequest>(text: &str) -> Result<T, RequestError> {
    T::decode(text)
}

/// Reads a request's wire struct; whatever serde refuses is structural ([FRAME-16]).
pub(crate) fn wire<T: DeserializeOwned>(text: &str) -> Result<T, RequestError> {
    serde_json::from_str(text).map_err(|e| RequestError::Invalid(e.to_string()))
}

/// Reads a wire struct that borrows its texts from the frame.
pub(crate) fn wire_borrowed<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, RequestError> {
    serde_json::from_str(text).map_err(|e| RequestError::Invalid(e.to_string()))
}

/// Decodes one text member ([ENC-11] .. [ENC-14]), naming it in the error.
pub(crate) fn member<T>(
    member: &'static str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, EncodingError>,
) -> Result<T, RequestError> {
    parse(text).map_err(|source| RequestError::Encoding { member, source })
}

/// Decodes an optional text member (absent is `None`; `null` was refused by the wire struct,
/// [FRAME-40]).
pub(crate) fn optional_member<T>(
    name: &'static str,
    text: Option<&str>,
    parse: impl Fn(&str) -> Result<T, EncodingError>,
) -> Result<Option<T>, RequestError> {
    text.map(|t| member(name, t, parse)).transpose()
}

/// Implements [`DecodeRequest`] for request types without a member rule beyond structure: serde
/// decodes them whole.
macro_rules! decode_by_serde {
    ($($ty:ty),+ $(,)?) => {
        $(impl crate::decode::DecodeRequest for $ty {
            fn decode(text: &str) -> Result<Self, crate::decode::RequestError> {
                crate::decode::wire(text)
            }
        })+
    };
}
pub(crate) use decode_by_serde;
