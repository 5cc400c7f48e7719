//! Spec chapter 11, "Versioning".

/// The protocol version this crate implements, as it appears in `hello.version` and
/// `node_info_ok.versions` ([VER-1]).
pub const PROTOCOL_VERSION: &str = "kith/1";

/// Every version this crate can speak, most preferred first.
pub const SUPPORTED_VERSIONS: &[&str] = &[PROTOCOL_VERSION];

/// Picks the version a client should ask for: its most preferred one that the node offers
/// ([VER-3]). `None` means the two share no version.
pub fn negotiate<'a>(ours: &[&'a str], theirs: &[String]) -> Option<&'a str> {
    ours.iter().copied().find(|v| theirs.iter().any(|t| t == v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_ours_in_order() {
        let theirs = vec!["kith/2".to_owned(), "kith/1".to_owned()];
        assert_eq!(negotiate(&["kith/1"], &theirs), Some("kith/1"));
        assert_eq!(negotiate(&["kith/3"], &theirs), None);
    }
}
