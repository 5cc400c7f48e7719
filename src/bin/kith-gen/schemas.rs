//! The JSON Schemas (2020-12) of every message, of a whole frame and of the signed objects.
//!
//! Shared with `tests/schemas.rs` through `#[path]`, so the snapshot test pins exactly what the
//! generator writes.

use kith_proto::account::KeyReplacement;
use kith_proto::cert::Certificate;
use kith_proto::identity::IdentityNote;
use kith_proto::{ClientFrame, Entry, ServerFrame};
use schemars::schema_for;
use serde_json::Value;

/// The schema dialect every file declares.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every schema by file stem, in a fixed order. A message type that both sides could send
/// would collide; the registries have none (checked).
pub fn all() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for (ty, schema) in ClientFrame::schemas().into_iter().chain(ServerFrame::schemas()) {
        out.push((ty.to_owned(), schema.to_value()));
    }
    out.push(("client-frame".into(), schema_for!(ClientFrame).to_value()));
    out.push(("server-frame".into(), schema_for!(ServerFrame).to_value()));
    out.push(("entry".into(), schema_for!(Entry).to_value()));
    out.push(("certificate".into(), schema_for!(Certificate).to_value()));
    out.push(("key-replacement".into(), schema_for!(KeyReplacement).to_value()));
    out.push(("identity-note".into(), schema_for!(IdentityNote).to_value()));
    for (_, schema) in &mut out {
        if let Value::Object(map) = schema {
            map.insert("$schema".into(), Value::String(DIALECT.into()));
        }
    }
    let mut names: Vec<&String> = out.iter().map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), out.len(), "two schemas share a file name");
    out
}
