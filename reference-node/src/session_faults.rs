//! The faults that act inside the core's session ([`kith_proto::session::server`]): the
//! switches that turn one of its checks off, and the hooks through which the node's faulty
//! checks (`relax.rs`, the entry faults of `fault.rs`) replace the core's. Apart from `fault.rs`
//! and `relax.rs` so that neither imports the other in a circle.

use crate::fault::{verify_entry_faulty, Fault, Faults};

/// The faults that act in the core's session ([`kith_proto::session::server`]): the checks it
/// switches off, and the re-decoding with one rule relaxed (`relax.rs`) for the JSON and
/// boundary faults.
pub(crate) fn session_faults(faults: Faults) -> kith_proto::session::server::SessionFaults {
    use kith_proto::session::server::{RelaxHook, SessionFaults, Switches};
    let relaxing = [Fault::AcceptNan, Fault::BoolAsInteger, Fault::ContentDepthOffByOne, Fault::SizeInCharacters]
        .into_iter()
        .any(|f| faults.has(f));
    let relax: Option<RelaxHook> = relaxing.then(|| {
        let hook: RelaxHook = std::sync::Arc::new(move |text: &str, e: &kith_proto::frame::FrameError| {
            crate::relax::reparse(text, e, faults)
        });
        hook
    });
    SessionFaults {
        switches: Switches {
            no_frame_limit: faults.has(Fault::NoFrameLimit),
            no_depth_limit: faults.has(Fault::NoDepthLimit),
            no_rate_limit: faults.has(Fault::NoRateLimit),
            rate_bucket_short: faults.has(Fault::RateBucketShort),
            accept_expired_cert: faults.has(Fault::AcceptExpiredCert),
            accept_bad_transcript_sig: faults.has(Fault::AcceptBadTranscriptSig),
            accept_unknown_user: faults.has(Fault::AcceptUnknownUser),
            no_handshake_timeout: faults.has(Fault::NoHandshakeTimeout),
            skip_entry_signature: faults.has(Fault::SkipEntrySignature),
            replacement_any_node: faults.has(Fault::ReplacementAnyNode),
            admin_replaces_key: faults.has(Fault::AdminReplacesKey),
            replacement_any_old: faults.has(Fault::ReplacementAnyOld),
            accept_expired_replacement: faults.has(Fault::AcceptExpiredReplacement),
            any_note_author: faults.has(Fault::AnyNoteAuthor),
            skip_note_signature: faults.has(Fault::SkipNoteSignature),
        },
        relax,
        entry_checks: entry_checks(faults),
        note_fields: faults.has(Fault::LenientAddressForms).then(|| {
            let hook: kith_proto::session::server::NoteHook =
                std::sync::Arc::new(|note: &kith_proto::identity::IdentityNote| lenient_addresses(note).check_fields());
            hook
        }),
    }
}

/// The note as the `lenient-address-forms` fault checks it: each IPv6 address re-spelt in RFC
/// 5952 form and each DNS name lower-cased, so that non-canonical spellings pass.
fn lenient_addresses(note: &kith_proto::identity::IdentityNote) -> kith_proto::identity::IdentityNote {
    let mut note = note.clone();
    for a in &mut note.addresses {
        let mut parts: Vec<String> = a.split('/').map(str::to_owned).collect();
        if parts.len() > 2 {
            if parts[1] == "ip6" {
                if let Ok(ip) = parts[2].parse::<std::net::Ipv6Addr>() {
                    parts[2] = ip.to_string();
                }
            } else if parts[1] == "dns" {
                parts[2] = parts[2].to_ascii_lowercase();
            }
        }
        *a = parts.join("/");
    }
    note
}

/// The stateless checks of a published entry with the node's entry faults: the size limit one
/// past it ([ENTRY-17]), the faulty canonical forms (`faulty_jcs`), a
/// profile `name` counted in characters ([ENTRY-14]). `None` with none of them on.
fn entry_checks(faults: Faults) -> Option<kith_proto::session::server::EntryHook> {
    use kith_proto::entry::{verify_entry, EntryError, Kind, ProfileContent};
    use kith_proto::{ErrorCode, HasErrorCode};
    let canonical = faults.has(Fault::CanonicalEscapesNonAscii) || faults.has(Fault::CanonicalKeysByCodePoint);
    let on = canonical || faults.has(Fault::EntrySizeOffByOne) || faults.has(Fault::SizeInCharacters);
    if !on {
        return None;
    }
    Some(std::sync::Arc::new(move |entry: &kith_proto::Entry| {
        let checked = match verify_entry(entry) {
            Err(EntryError::TooLarge { .. }) if faults.has(Fault::EntrySizeOffByOne) => {
                crate::relax::verify_one_past_the_size(entry)
            }
            Ok(_) if canonical => verify_entry_faulty(faults, entry),
            checked => checked,
        };
        let verified = match checked {
            Ok(v) => v,
            Err(e) => return Some(Err((e.code(), e.to_string()))),
        };
        let in_characters =
            faults.has(Fault::SizeInCharacters) && crate::relax::profile_fits_in_characters(&verified.entry.content);
        if verified.entry.kind.as_str() == Kind::PROFILE && !in_characters {
            if let Err(e) = ProfileContent::check(&verified.entry.content) {
                return Some(Err((ErrorCode::MalformedEntry, format!("profile content: {e}"))));
            }
        }
        Some(Ok(verified))
    }))
}
