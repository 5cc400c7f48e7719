//! Decoding relaxed by exactly one rule, for the faults that make the node accept what a
//! careless implementation accepts: a host parser's `NaN` (`accept-nan`), `true` as 1
//! (`bool-as-integer`), a limit compared one past it (`content-depth-off-by-one`,
//! `entry-size-off-by-one`) and a length counted in characters (`size-in-characters`).
//!
//! The core's decoders are strict and stay so; the node calls these only after the core has
//! refused a frame or an entry, and only with the matching fault switched on.

use kith_proto::canonical::{CanonicalObject, CanonicalValue};
use kith_proto::entry::{depth, EntryError, Kind, MAX_CONTENT_DEPTH, MAX_ENTRY_BYTES};
use kith_proto::frame::{triage_client_frame, FrameError, RefusedAt};
use kith_proto::{ClientFrame, Entry, ErrorCode, VerifiedEntry};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fault::{Fault, Faults};

/// Longest profile `name` ([ENTRY-14]) and `about` ([ENTRY-15]), in bytes.
const MAX_PROFILE_NAME: usize = 64;
const MAX_PROFILE_ABOUT: usize = 1024;

/// Decodes again a frame the core refused with `e`, relaxed by the one rule the node's fault
/// breaks. `None` when no such fault is on or the frame broke some other rule: the core's
/// answer stands.
#[cfg_attr(not(feature = "faults"), allow(dead_code))]
pub(crate) fn reparse(
    text: &str,
    e: &FrameError,
    faults: Faults,
) -> Option<Result<ClientFrame, (FrameError, RefusedAt)>> {
    if faults.has(Fault::AcceptNan) {
        // The fault: the host parser's non-numbers read as 0 ([ENC-1]).
        return match e.code {
            ErrorCode::MalformedFrame => non_numbers_as_zero(text).map(|t| triage_client_frame(&t)),
            _ => None,
        };
    }
    let entry_fault = faults.has(Fault::BoolAsInteger)
        || faults.has(Fault::ContentDepthOffByOne)
        || faults.has(Fault::SizeInCharacters);
    if !entry_fault || e.code != ErrorCode::MalformedEntry {
        return None;
    }
    let mut frame: Value = serde_json::from_str(text).ok()?;
    if frame.get("type")?.as_str()? != "publish" {
        return None;
    }
    let entry = frame.get_mut("entry")?.as_object_mut()?;
    if faults.has(Fault::BoolAsInteger) {
        // The fault: a boolean read as the integer 1 or 0 ([ENTRY-4]).
        let mut changed = false;
        for member in ["seq", "timestamp"] {
            if let Some(Value::Bool(b)) = entry.get(member) {
                let n = u64::from(*b);
                entry.insert(member.into(), Value::from(n));
                changed = true;
            }
        }
        return changed.then(|| triage_client_frame(&frame.to_string()));
    }
    let CanonicalValue::Object(content) = CanonicalValue::from_json(entry.get("content")?).ok()? else {
        return None;
    };
    let relaxed = if faults.has(Fault::ContentDepthOffByOne) {
        // The fault: content depth compared one past the limit ([ENTRY-16]).
        depth(&CanonicalValue::Object(content.clone())) == MAX_CONTENT_DEPTH + 1
    } else {
        entry.get("kind").and_then(Value::as_str) == Some(Kind::PROFILE) && profile_fits_in_characters(&content)
    };
    if !relaxed {
        return None;
    }
    // Decode with a stand-in content that passes every content rule, then put the real content
    // back: the signature, size and id are computed over the real one.
    entry.insert("content".into(), serde_json::json!({ "name": "x" }));
    let mut parsed = triage_client_frame(&frame.to_string());
    if let Ok(ClientFrame::Publish(p)) = &mut parsed {
        p.entry.content = content;
    }
    Some(parsed)
}

/// Whether a profile's content passes [ENTRY-14] and [ENTRY-15] with the `name` counted in
/// characters instead of bytes: the `size-in-characters` fault's reading.
pub(crate) fn profile_fits_in_characters(content: &CanonicalObject) -> bool {
    let name_fits = matches!(content.get("name"),
        Some(CanonicalValue::String(n)) if (1..=MAX_PROFILE_NAME).contains(&n.chars().count()));
    let about_fits = match content.get("about") {
        None => true,
        Some(CanonicalValue::String(a)) => a.len() <= MAX_PROFILE_ABOUT,
        Some(_) => false,
    };
    name_fits && about_fits
}

/// [`kith_proto::verify_entry`] with the size limit compared one past it: for the
/// `entry-size-off-by-one` fault, an entry of exactly 16385 canonical bytes whose signature
/// verifies is taken as valid ([ENTRY-17]).
#[cfg_attr(not(feature = "faults"), allow(dead_code))]
pub(crate) fn verify_one_past_the_size(entry: &Entry) -> Result<VerifiedEntry, EntryError> {
    let canonical = entry.canonical_bytes();
    if canonical.len() > MAX_ENTRY_BYTES + 1 {
        return Err(EntryError::TooLarge { size: canonical.len() });
    }
    entry.author.verify_strict(&entry.signing_bytes(), &entry.sig).map_err(|_| EntryError::BadSignature)?;
    let id = kith_proto::EntryId::from_bytes(Sha256::digest(&canonical).into());
    Ok(VerifiedEntry { entry: entry.clone(), id, canonical })
}

/// The frame with every bare `NaN`, `Infinity` and `-Infinity` token outside strings replaced
/// by `0`, as a lenient host parser reads them; `None` when there is none.
#[cfg_attr(not(feature = "faults"), allow(dead_code))]
fn non_numbers_as_zero(text: &str) -> Option<String> {
    const TOKENS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut in_string = false;
    let mut changed = false;
    while let Some(c) = rest.chars().next() {
        if in_string && c == '\\' {
            // An escape and the character it escapes, so that `\"` does not end the string.
            let len = rest[1..].chars().next().map_or(1, |n| 1 + n.len_utf8());
            out.push_str(&rest[..len]);
            rest = &rest[len..];
            continue;
        }
        if c == '"' {
            in_string = !in_string;
        } else if !in_string {
            if let Some(token) = TOKENS.iter().find(|t| rest.starts_with(**t)) {
                out.push('0');
                rest = &rest[token.len()..];
                changed = true;
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_numbers_outside_strings_become_zero() {
        assert_eq!(
            non_numbers_as_zero(r#"{"a":NaN,"b":[Infinity,-Infinity],"c":"NaN \"Infinity"}"#).as_deref(),
            Some(r#"{"a":0,"b":[0,0],"c":"NaN \"Infinity"}"#)
        );
        assert_eq!(non_numbers_as_zero(r#"{"a":"NaN"}"#), None);
    }
}
