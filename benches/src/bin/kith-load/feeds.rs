//! Entries, pre-signed before any timed phase.

use kith_client::{counted_id, now_ms};
use kith_proto::canonical::CanonicalValue;
use kith_proto::entry::{EntryDraft, Kind};
use kith_proto::feed::Publish;
use kith_proto::{ClientFrame, Entry, SecretKey};

/// One author's feed, signed in advance: publish frames and canonical sizes.
pub(crate) struct Feed {
    pub(crate) author: SecretKey,
    pub(crate) frames: Vec<String>,
    pub(crate) sizes: Vec<usize>,
}

/// The body of a typical short post (about 200 characters).
pub(crate) fn post_text(author: usize, seq: u64) -> String {
    let mut t = format!("post {seq} by author {author}: ");
    while t.len() < 200 {
        t.push_str("small nodes carry whole communities. ");
    }
    t.truncate(200);
    t
}

/// Signs entries `first_seq..first_seq + n` of `author`'s feed, continuing after `prev`
/// (the entry at `first_seq - 1`, if any).
pub(crate) fn sign_feed(
    author: &SecretKey,
    index: usize,
    prev: Option<&Entry>,
    first_seq: u64,
    n: usize,
) -> (Vec<String>, Vec<usize>, Option<Entry>) {
    let mut frames = Vec::with_capacity(n);
    let mut sizes = Vec::with_capacity(n);
    let mut prev: Option<Entry> = prev.cloned();
    let kind = Kind::new("post").ok();
    for i in 0..n as u64 {
        let seq = first_seq + i;
        let timestamp = now_ms().max(prev.as_ref().map_or(0, |p| p.timestamp));
        let mut content = kith_proto::canonical::CanonicalObject::new();
        content.insert("text".into(), CanonicalValue::string(post_text(index, seq)));
        let draft = EntryDraft {
            seq,
            prev: prev.as_ref().map(Entry::id),
            timestamp,
            kind: kind.clone().unwrap_or_else(|| EntryDraft::first(0).kind),
            content,
            mentions: Vec::new(),
            refs: Vec::new(),
        };
        let entry = draft.sign(author);
        sizes.push(entry.canonical_bytes().len());
        frames.push(ClientFrame::Publish(Publish { id: counted_id(seq), entry: entry.clone() }).to_text());
        prev = Some(entry);
    }
    (frames, sizes, prev)
}

/// Signs `per_author` entries for each author, spread over every core.
pub(crate) fn sign_feeds(authors: &[SecretKey], per_author: usize) -> Vec<Feed> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = authors.len().div_ceil(cores).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = authors
            .chunks(chunk)
            .enumerate()
            .map(|(c, keys)| {
                s.spawn(move || {
                    keys.iter()
                        .enumerate()
                        .map(|(i, k)| {
                            let (frames, sizes, _) = sign_feed(k, c * chunk + i, None, 1, per_author);
                            Feed { author: k.clone(), frames, sizes }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}
