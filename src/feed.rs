//! Spec chapter 8, "Feeds": publish, subscribe, unsubscribe, heads, replicate, get.

#[cfg(feature = "gen")]
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::encoding::{decode_member, deserialize_opt_u53, deserialize_u53, EntryId, PublicKey};
use crate::entry::Entry;
use crate::frame::RequestId;

/// Default number of stored entries a subscription replays when `backfill` is absent.
pub const DEFAULT_BACKFILL: u64 = 100;

/// `publish`: store an entry, by the session's user or by anyone else ([FEED-1]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Publish {
    /// Request id.
    pub id: RequestId,
    /// The entry; absent is `invalid_request` ([FEED-2]), present but wrong is the entry's code.
    #[serde(deserialize_with = "Entry::deserialize")]
    pub entry: Entry,
}

/// `publish_ok`: the entry is durably stored (or already was).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct PublishOk {
    /// Echoed request id.
    pub id: RequestId,
    /// The entry's id.
    pub entry_id: EntryId,
    /// True when the node already held this entry (an idempotent re-publish, [FEED-3]).
    pub duplicate: bool,
}

/// What a subscription matches: an entry matches if any list matches it ([FEED-6]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Filter {
    /// Entries authored by these users.
    #[serde(default)]
    #[cfg_attr(feature = "gen", schemars(length(max = 1024)))]
    pub authors: Vec<PublicKey>,
    /// Entries whose `refs` contain one of these ids (replies in a thread).
    #[serde(default)]
    #[cfg_attr(feature = "gen", schemars(length(max = 1024)))]
    pub threads: Vec<EntryId>,
    /// Entries whose `mentions` contain one of these users.
    #[serde(default)]
    #[cfg_attr(feature = "gen", schemars(length(max = 1024)))]
    pub mentions: Vec<PublicKey>,
}

impl<'de> Deserialize<'de> for Filter {
    /// A filter must be an object whose lists are arrays of strings ([FEED-7]); the lists are
    /// then decoded `authors`, `threads`, `mentions`, first element to last ([FEED-8]), whatever
    /// their order in the frame. Unknown members are ignored.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // A map, not a struct: serde would also read a struct from a JSON array.
        let map = std::collections::BTreeMap::<String, serde_json::Value>::deserialize(d)?;
        let list = |name: &str| -> Result<Vec<String>, D::Error> {
            match map.get(name) {
                None => Ok(Vec::new()),
                Some(v) => serde_json::from_value::<Vec<String>>(v.clone())
                    .map_err(|e| D::Error::custom(format!("filter.{name}: {e}"))),
            }
        };
        let (authors, threads, mentions) = (list("authors")?, list("threads")?, list("mentions")?);
        let decode_keys = |texts: &[String]| -> Result<Vec<PublicKey>, D::Error> {
            texts.iter().map(|t| decode_member(t, PublicKey::parse)).collect()
        };
        let authors = decode_keys(&authors)?;
        let threads = threads.iter().map(|t| decode_member(t, EntryId::parse)).collect::<Result<Vec<_>, D::Error>>()?;
        let mentions = decode_keys(&mentions)?;
        Ok(Filter { authors, threads, mentions })
    }
}

/// Most keys and ids a filter may hold in all ([FEED-7]).
pub const MAX_FILTER_ITEMS: usize = 1024;

impl Filter {
    /// Whether `entry` matches.
    pub fn matches(&self, entry: &Entry) -> bool {
        self.authors.contains(&entry.author)
            || entry.refs.iter().any(|r| self.threads.contains(r))
            || entry.mentions.iter().any(|m| self.mentions.contains(m))
    }

    /// Total number of keys and ids.
    pub fn len(&self) -> usize {
        self.authors.len() + self.threads.len() + self.mentions.len()
    }

    /// True when the filter can match nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `subscribe`: stored backfill, then `stored_end`, then live events ([FEED-8]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Subscribe {
    /// Request id; it also names the subscription.
    pub id: RequestId,
    /// What to match.
    pub filter: Filter,
    /// How many of the most recent stored matches to replay (capped by `max_backfill`); absent
    /// means 100, `null` is refused ([FRAME-40]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::encoding::deserialize_present_u53"
    )]
    pub backfill: Option<u64>,
}

/// `subscribe_ok`: the subscription `sub` is open; its events follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct SubscribeOk {
    /// Echoed request id.
    pub id: RequestId,
    /// The subscription's name (the request id).
    pub sub: RequestId,
}

/// `event` push: an entry matching subscription `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Event {
    /// The subscription.
    pub sub: RequestId,
    /// The entry.
    pub entry: Entry,
}

/// `stored_end` push: the backfill of `sub` is complete; later events are live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct StoredEnd {
    /// The subscription.
    pub sub: RequestId,
}

/// `unsubscribe`: ends a subscription ([FEED-11]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Unsubscribe {
    /// Request id.
    pub id: RequestId,
    /// The subscription to end.
    pub sub: RequestId,
}

/// `unsubscribe_ok`: no event for `sub` follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct UnsubscribeOk {
    /// Echoed request id.
    pub id: RequestId,
}

/// `heads`: the latest position of some feeds ([FEED-13]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Heads {
    /// Request id.
    pub id: RequestId,
    /// The feeds asked about: counted ([FEED-20]) before they are decoded ([FEED-21]).
    #[serde(deserialize_with = "deserialize_heads_authors")]
    #[cfg_attr(feature = "gen", schemars(length(max = 1024)))]
    pub authors: Vec<PublicKey>,
}

/// Reads `heads.authors` in the order 08 §4 fixes: an array of strings, then at most
/// [`MAX_FILTER_ITEMS`] of them ([FEED-20], `invalid_request`), then each decoded first to last
/// ([FEED-21]). Counting first means a frame of 1025 short strings is `invalid_request`, whatever
/// the strings hold.
fn deserialize_heads_authors<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PublicKey>, D::Error> {
    use serde::de::Error;
    let texts = Vec::<String>::deserialize(d)?;
    if texts.len() > MAX_FILTER_ITEMS {
        return Err(D::Error::custom(crate::error::tagged(
            crate::ErrorCode::InvalidRequest,
            format_args!("{} authors, at most {MAX_FILTER_ITEMS}", texts.len()),
        )));
    }
    texts.iter().map(|t| decode_member(t, PublicKey::parse)).collect()
}

/// One feed's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct HeadInfo {
    /// The feed's author.
    pub author: PublicKey,
    /// The highest seq the node accepted.
    #[serde(deserialize_with = "deserialize_u53")]
    pub seq: u64,
    /// Its id.
    pub entry_id: EntryId,
    /// Every seq at or below this was pruned (0 = none).
    #[serde(deserialize_with = "deserialize_u53")]
    pub pruned_through: u64,
}

/// `heads_ok`: the heads of the known feeds among those asked (unknown ones are omitted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct HeadsOk {
    /// Echoed request id.
    pub id: RequestId,
    /// Heads, in the order asked.
    pub heads: Vec<HeadInfo>,
}

/// `replicate`: a feed's entries after a seq ([FEED-15]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Replicate {
    /// Request id.
    pub id: RequestId,
    /// The feed.
    pub author: PublicKey,
    /// Return entries with seq greater than this.
    #[serde(deserialize_with = "deserialize_u53")]
    pub after: u64,
    /// At most this many (capped by `max_replicate`); at least 1.
    #[serde(deserialize_with = "deserialize_u53")]
    #[cfg_attr(feature = "gen", schemars(range(min = 1, max = 9007199254740991u64)))]
    pub limit: u64,
}

/// `replicate_ok`: entries in ascending seq, without gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct ReplicateOk {
    /// Echoed request id.
    pub id: RequestId,
    /// The entries.
    pub entries: Vec<Entry>,
    /// The feed's head seq, null when the node holds nothing of the feed.
    #[cfg_attr(feature = "gen", schemars(with = "crate::encoding::Nullable<u64>"))]
    #[serde(deserialize_with = "deserialize_opt_u53")]
    pub head: Option<u64>,
    /// Every seq at or below this was pruned (0 = none).
    #[serde(deserialize_with = "deserialize_u53")]
    pub pruned_through: u64,
}

/// `get`: one entry, by id or by (author, seq) ([FEED-18]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct Get {
    /// Request id.
    pub id: RequestId,
    /// The entry id (exclusive with author/seq).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::encoding::deserialize_present"
    )]
    pub entry_id: Option<EntryId>,
    /// The feed (with `seq`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::encoding::deserialize_present"
    )]
    pub author: Option<PublicKey>,
    /// The position (with `author`), at least 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::encoding::deserialize_present_u53"
    )]
    pub seq: Option<u64>,
}

/// What a `get` asks for, once its fields are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetTarget {
    /// By entry id.
    Id(EntryId),
    /// By feed position.
    Position(PublicKey, u64),
}

impl Get {
    /// The target, or `None` when the fields are not exactly one of the two forms
    /// (`invalid_request`).
    pub fn target(&self) -> Option<GetTarget> {
        match (self.entry_id, self.author, self.seq) {
            (Some(id), None, None) => Some(GetTarget::Id(id)),
            (None, Some(author), Some(seq)) => Some(GetTarget::Position(author, seq)),
            _ => None,
        }
    }
}

/// `get_ok`: the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "gen", derive(JsonSchema))]
pub struct GetOk {
    /// Echoed request id.
    pub id: RequestId,
    /// The entry.
    pub entry: Entry,
}
