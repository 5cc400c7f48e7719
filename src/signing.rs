//! Spec chapter 2, "Canonical signing bytes", second half: context strings, signing bytes and
//! the secret key wrapper.
//!
//! `signing_bytes(context, object)` = ASCII context || 0x00 || JCS(object without `sig`)
//! ([SIGN-10]). Distinct contexts make a signature on one kind of object useless as a
//! signature on any other ([SIGN-8], [SIGN-9]).

use ed25519_dalek::{Signer, SigningKey};
use rand_core::{CryptoRng, RngCore};

use crate::canonical::CanonicalValue;
use crate::encoding::{PublicKey, Signature};

/// The kinds of signed object, each with its own context string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Context {
    /// Entries on a feed (chapter 3).
    Entry,
    /// Certificates blessing a peer key (chapter 4).
    Certificate,
    /// The server's handshake signature (chapter 5).
    HandshakeServer,
    /// The client's handshake signature (chapter 5).
    HandshakeClient,
    /// Key replacements (chapter 7).
    ReplaceKey,
    /// Identity notes (chapter 9).
    IdentityNote,
}

impl Context {
    /// Every context, for tests that check they are pairwise distinct.
    pub const ALL: &'static [Context] = &[
        Context::Entry,
        Context::Certificate,
        Context::HandshakeServer,
        Context::HandshakeClient,
        Context::ReplaceKey,
        Context::IdentityNote,
    ];

    /// The context's ASCII string, without the 0x00 separator.
    pub const fn as_str(self) -> &'static str {
        match self {
            Context::Entry => "kith/1/entry",
            Context::Certificate => "kith/1/cert",
            Context::HandshakeServer => "kith/1/hs-server",
            Context::HandshakeClient => "kith/1/hs-client",
            Context::ReplaceKey => "kith/1/replace-key",
            Context::IdentityNote => "kith/1/identity-note",
        }
    }
}

/// Builds the bytes a signature of `context` covers: context || 0x00 || `payload`.
pub fn prefixed(context: Context, payload: &[u8]) -> Vec<u8> {
    let ctx = context.as_str().as_bytes();
    let mut out = Vec::with_capacity(ctx.len() + 1 + payload.len());
    out.extend_from_slice(ctx);
    out.push(0);
    out.extend_from_slice(payload);
    out
}

/// The signing bytes of an object: context || 0x00 || JCS(`unsigned`). `unsigned` is the
/// object without its signature field(s).
pub fn signing_bytes(context: Context, unsigned: &CanonicalValue) -> Vec<u8> {
    let ctx = context.as_str().as_bytes();
    let mut out = Vec::with_capacity(ctx.len() + 512);
    out.extend_from_slice(ctx);
    out.push(0);
    unsigned.write_jcs(&mut out);
    out
}

/// An Ed25519 secret key (a user's, a peer's or a node's). Only signs; never serialised.
#[derive(Clone)]
pub struct SecretKey {
    key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public: {})", self.public())
    }
}

impl SecretKey {
    /// Derives a key from its 32-byte RFC 8032 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey { key: SigningKey::from_bytes(&seed) }
    }

    /// Draws a fresh key from `rng`.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        SecretKey { key: SigningKey::generate(rng) }
    }

    /// Draws a fresh key from the operating system's generator.
    pub fn random() -> Self {
        Self::generate(&mut rand_core::OsRng)
    }

    /// The 32-byte seed (to store it; handle with care).
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        // A public key derived from a secret scalar is never of small order; the checked
        // constructor stays the only way in.
        PublicKey::from_bytes_checked(self.key.verifying_key().to_bytes())
            .expect("a derived Ed25519 public key is a valid, non-weak point")
    }

    /// Signs `message` as it is (callers pass signing bytes).
    pub fn sign_raw(&self, message: &[u8]) -> Signature {
        Signature::from_bytes(self.key.sign(message).to_bytes())
    }

    /// Signs an object under `context`.
    pub fn sign(&self, context: Context, unsigned: &CanonicalValue) -> Signature {
        self.sign_raw(&signing_bytes(context, unsigned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::encode_hex;

    #[test]
    fn contexts_are_distinct_and_none_prefixes_another() {
        for a in Context::ALL {
            for b in Context::ALL {
                if a != b {
                    assert!(!a.as_str().starts_with(b.as_str()), "{a:?} starts with {b:?}");
                }
            }
        }
    }

    #[test]
    fn pinned_signing_bytes() {
        let value = CanonicalValue::parse(r#"{"b":1,"a":"x"}"#).expect("parse");
        assert_eq!(signing_bytes(Context::Certificate, &value), b"kith/1/cert\0{\"a\":\"x\",\"b\":1}".to_vec());
    }

    /// RFC 8032 section 7.1, test 1: our wrapper signs and verifies like the RFC.
    #[test]
    fn rfc8032_test_1() {
        let seed: [u8; 32] =
            crate::encoding::decode_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .expect("hex");
        let key = SecretKey::from_seed(seed);
        assert_eq!(key.public().to_string(), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let sig = key.sign_raw(b"");
        assert_eq!(
            encode_hex(sig.as_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        key.public().verify_strict(b"", &sig).expect("verifies");
        assert!(key.public().verify_strict(b"x", &sig).is_err());
    }
}
