//! Spec chapter 4, "Peers, users and certificates": a user blesses a peer key with an expiring
//! signed certificate.

#[cfg(feature = "gen")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::canonical::{CanonicalObject, CanonicalValue};
use crate::encoding::{deserialize_u53, PublicKey, Signature};
use crate::error::{ErrorCode, HasErrorCode};
use crate::signing::{signing_bytes, Context, SecretKey};

/// A user's blessing of a peer key until `expires` ([CERT-6]); these four members and no
/// others ([CERT-1]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "gen", schemars(deny_unknown_fields))]
pub struct Certificate {
    /// The blessing user's key; the signer.
    pub user: PublicKey,
    /// The blessed peer's key.
    pub peer: PublicKey,
    /// Milliseconds since the Unix epoch after which the certificate is void.
    #[serde(deserialize_with = "deserialize_u53")]
    #[cfg_attr(feature = "gen", schemars(range(max = 9007199254740991u64)))]
    pub expires: u64,
    /// The user's signature under `kith/1/cert`.
    pub sig: Signature,
}

/// Why a certificate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CertError {
    /// The signature does not verify under the user's key and the certificate context.
    #[error("certificate signature does not verify")]
    BadSignature,
    /// The certificate blesses a different peer key than the one connecting.
    #[error("certificate blesses another peer key")]
    WrongPeer,
    /// `expires` is not after the verifier's clock.
    #[error("certificate expired at {expires}, now {now}")]
    Expired {
        /// The certificate's expiry.
        expires: u64,
        /// The verifier's clock.
        now: u64,
    },
}

impl HasErrorCode for CertError {
    fn code(&self) -> ErrorCode {
        match self {
            CertError::BadSignature | CertError::WrongPeer => ErrorCode::BadCertificate,
            CertError::Expired { .. } => ErrorCode::CertExpired,
        }
    }
}

impl Certificate {
    fn unsigned(user: &PublicKey, peer: &PublicKey, expires: u64) -> CanonicalValue {
        let mut map = CanonicalObject::new();
        map.insert("user".into(), CanonicalValue::string(user.to_string()));
        map.insert("peer".into(), CanonicalValue::string(peer.to_string()));
        map.insert("expires".into(), CanonicalValue::from_u53(expires));
        CanonicalValue::Object(map)
    }

    /// The bytes the certificate's signature covers ([CERT-4], [SIGN-10]).
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(Context::Certificate, &Self::unsigned(&self.user, &self.peer, self.expires))
    }

    /// The canonical form of the whole certificate (as bound into the handshake transcript).
    pub fn canonical_value(&self) -> CanonicalValue {
        let mut value = Self::unsigned(&self.user, &self.peer, self.expires);
        if let CanonicalValue::Object(map) = &mut value {
            map.insert("sig".into(), CanonicalValue::string(self.sig.to_string()));
        }
        value
    }

    /// `user` blesses `peer` until `expires`.
    pub fn issue(user: &SecretKey, peer: PublicKey, expires: u64) -> Self {
        let user_key = user.public();
        let sig = user.sign(Context::Certificate, &Self::unsigned(&user_key, &peer, expires));
        Certificate { user: user_key, peer, expires, sig }
    }

    /// Checks the signature ([CERT-4]), that the certificate blesses `peer` ([CERT-5]) and
    /// that it has not expired at `now_ms` ([CERT-6]). The signature is checked first so that
    /// a forged certificate is always `bad_certificate`.
    pub fn verify(&self, peer: &PublicKey, now_ms: u64) -> Result<(), CertError> {
        self.user.verify_strict(&self.signing_bytes(), &self.sig).map_err(|_| CertError::BadSignature)?;
        if self.peer != *peer {
            return Err(CertError::WrongPeer);
        }
        if self.expires <= now_ms {
            return Err(CertError::Expired { expires: self.expires, now: now_ms });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_and_verify() {
        let user = SecretKey::from_seed([1; 32]);
        let peer = SecretKey::from_seed([2; 32]).public();
        let cert = Certificate::issue(&user, peer, 1000);
        assert_eq!(cert.verify(&peer, 999), Ok(()));
        assert_eq!(cert.verify(&peer, 1000).map_err(|e| e.code()), Err(ErrorCode::CertExpired));
        assert_eq!(cert.verify(&user.public(), 1).map_err(|e| e.code()), Err(ErrorCode::BadCertificate));
        let mut forged = cert.clone();
        forged.expires = 2000;
        assert_eq!(forged.verify(&peer, 1), Err(CertError::BadSignature));
    }
}
