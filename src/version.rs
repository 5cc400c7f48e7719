//! Spec chapter 11, "Versioning".

/// The protocol version this crate implements, as it appears in `hello.version` ([VER-3]) and
/// `node_info_ok.versions` ([VER-2]).
pub const PROTOCOL_VERSION: &str = "kith/1";

/// Every version this crate can speak, most preferred first.
pub const SUPPORTED_VERSIONS: &[&str] = &[PROTOCOL_VERSION];

/// The major version number of a version string `kith/N`.
pub fn major(version: &str) -> Option<u64> {
    let n = version.strip_prefix("kith/")?;
    if n.is_empty() || (n.len() > 1 && n.starts_with('0')) || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Picks the version a client should ask for: the highest major version both sides speak
/// ([VER-4]). `None` means the two share no version.
pub fn negotiate<'a>(ours: &[&'a str], theirs: &[String]) -> Option<&'a str> {
    ours.iter().copied().filter(|v| theirs.iter().any(|t| t == v)).max_by_key(|v| major(v).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_ours_in_order() {
        let theirs = vec!["kith/2".to_owned(), "kith/1".to_owned()];
        assert_eq!(negotiate(&["kith/1"], &theirs), Some("kith/1"));
        assert_eq!(negotiate(&["kith/1", "kith/2"], &theirs), Some("kith/2"));
        assert_eq!(major("kith/01"), None);
        assert_eq!(negotiate(&["kith/3"], &theirs), None);
    }
}
