//! Spec chapter 8, "Feeds": publish, subscribe, unsubscribe, heads, replicate, get.

#[cfg(feature = "gen")]
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::decode::{decode_by_serde, member, optional_member, wire, wire_borrowed, DecodeRequest, RequestError};
use crate::encoding::{
    deserialize_opt_u53, deserialize_present, deserialize_present_u53, deserialize_u53, EntryId, PublicKey,
};
use crate::entry::{Entry, EntryError, EntryWire};
use crate::envelope::RequestId;

/// Default number of stored entries a subscription replays when `backfill` is absent.
pub const DEFAULT_BACKFILL: u64 = 100;

/// `publish`: store an entry, by the session's user or by anyone else ([FEED-3], [FEED-4]).
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
    /// True when the node already held this entry (an idempotent re-publish, [FEED-4]).
    pub duplicate: bool,
}

/// What a subscription matches: an entry matches if any list matches it ([FEED-13], [FEED-16]).
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

impl Filter {
    /// A filter must be an object whose lists are arrays of strings ([FEED-7]); the lists are
    /// then decoded `authors`, `threads`, `mentions`, first element to last ([FEED-8]), whatever
    /// their order in the frame. Unknown members are ignored.
    fn from_wire(map: &BTreeMap<String, serde_json::Value>) -> Result<Self, RequestError> {
        let list = |name: &str| -> Result<Vec<String>, RequestError> {
            match map.get(name) {
                None => Ok(Vec::new()),
                Some(v) => {
                    Vec::<String>::deserialize(v).map_err(|e| RequestError::Invalid(format!("filter.{name}: {e}")))
                }
            }
        };
        let (authors, threads, mentions) = (list("authors")?, list("threads")?, list("mentions")?);
        let decode = |name: &'static str, texts: &[String]| -> Result<Vec<PublicKey>, RequestError> {
            texts.iter().map(|t| member(name, t, PublicKey::parse)).collect()
        };
        let authors = decode("filter.authors", &authors)?;
        let threads = threads.iter().map(|t| member("filter.threads", t, EntryId::parse)).collect::<Result<_, _>>()?;
        let mentions = decode("filter.mentions", &mentions)?;
        Ok(Filter { authors, threads, mentions })
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A map, not a struct: serde would also read a struct from a JSON array.
        let map = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
        Filter::from_wire(&map).map_err(serde::de::Error::custom)
    }
}

/// Most keys and ids a filter may hold in all ([FEED-9]).
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

/// `subscribe`: stored backfill, then `stored_end` ([FEED-15]), then live events ([FEED-16]).
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

/// `unsubscribe` ([FEED-18]): ends a subscription, whose pushes then stop ([FEED-19]).
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

/// `heads`: the latest position of some feeds ([FEED-22]).
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

/// Decodes `heads.authors` in the order 08 §4 fixes: an array of strings (the wire struct),
/// then at most [`MAX_FILTER_ITEMS`] of them ([FEED-20], `invalid_request`), then each decoded
/// first to last ([FEED-21]). Counting first means a frame of 1025 short strings is
/// `invalid_request`, whatever the strings hold.
fn decode_heads_authors(texts: &[Cow<'_, str>]) -> Result<Vec<PublicKey>, RequestError> {
    if texts.len() > MAX_FILTER_ITEMS {
        return Err(RequestError::Invalid(format!("{} authors, at most {MAX_FILTER_ITEMS}", texts.len())));
    }
    texts.iter().map(|t| member("authors", t, PublicKey::parse)).collect()
}

fn deserialize_heads_authors<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PublicKey>, D::Error> {
    let texts = Vec::<Cow<'de, str>>::deserialize(d)?;
    decode_heads_authors(&texts).map_err(serde::de::Error::custom)
}

/// The wire shape of a `heads`.
#[derive(Deserialize)]
struct HeadsWire<'a> {
    id: RequestId,
    #[serde(borrow)]
    authors: Vec<Cow<'a, str>>,
}

impl DecodeRequest for Heads {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let w: HeadsWire<'_> = wire_borrowed(text)?;
        Ok(Heads { id: w.id, authors: decode_heads_authors(&w.authors)? })
    }
}

/// The wire shape of a `publish`. The frame decoder calls it only on a frame that passed
/// steps 1 to 6 of 06 §3: an object of chapter 1's grammar whose `id` is a valid request id,
/// whose unknown members serde skips. So the one member serde can refuse is `entry`, and what
/// it refuses is the entry's structure, `malformed_entry` ([ENTRY-2] .. [ENTRY-4]); an absent
/// `entry` is no error here but `invalid_request` below ([FEED-2]).
#[derive(Deserialize)]
struct PublishWire<'a> {
    id: RequestId,
    #[serde(borrow, default, deserialize_with = "deserialize_present")]
    entry: Option<EntryWire<'a>>,
}

impl DecodeRequest for Publish {
    /// One parse of the frame's text: the entry's members are read here, its field rules then
    /// run on the borrowed texts ([`Entry`]'s order, 03 §3).
    fn decode(text: &str) -> Result<Self, RequestError> {
        let w: PublishWire<'_> = serde_json::from_str(text).map_err(|e| EntryError::Malformed(e.to_string()))?;
        let entry = w.entry.ok_or_else(|| RequestError::Invalid("missing field `entry`".into()))?;
        Ok(Publish { id: w.id, entry: Entry::from_wire(entry)? })
    }
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

/// `replicate` ([FEED-23], [FEED-24]): a feed's entries after a seq ([FEED-25]).
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

/// `get` ([FEED-27]): one entry, by id ([FEED-30]) or by (author, seq) ([FEED-31]).
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

/// The wire shape of a `subscribe`: `filter` an object ([FEED-7]), `backfill` absent or an
/// integer ([FRAME-40]).
#[derive(Deserialize)]
struct SubscribeWire {
    id: RequestId,
    // A map, not a struct: serde would also read a struct from a JSON array.
    filter: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "deserialize_present_u53")]
    backfill: Option<u64>,
}

impl DecodeRequest for Subscribe {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let w: SubscribeWire = wire(text)?;
        Ok(Subscribe { id: w.id, filter: Filter::from_wire(&w.filter)?, backfill: w.backfill })
    }
}

/// The wire shape of a `replicate`.
#[derive(Deserialize)]
struct ReplicateWire<'a> {
    id: RequestId,
    #[serde(borrow)]
    author: Cow<'a, str>,
    #[serde(deserialize_with = "deserialize_u53")]
    after: u64,
    #[serde(deserialize_with = "deserialize_u53")]
    limit: u64,
}

impl DecodeRequest for Replicate {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let w: ReplicateWire<'_> = wire_borrowed(text)?;
        Ok(Replicate {
            id: w.id,
            author: member("author", &w.author, PublicKey::parse)?,
            after: w.after,
            limit: w.limit,
        })
    }
}

/// The wire shape of a `get`: each member absent or of its kind ([FRAME-40]).
#[derive(Deserialize)]
struct GetWire {
    id: RequestId,
    #[serde(default, deserialize_with = "deserialize_present")]
    entry_id: Option<String>,
    #[serde(default, deserialize_with = "deserialize_present")]
    author: Option<String>,
    #[serde(default, deserialize_with = "deserialize_present_u53")]
    seq: Option<u64>,
}

impl DecodeRequest for Get {
    fn decode(text: &str) -> Result<Self, RequestError> {
        let w: GetWire = wire(text)?;
        Ok(Get {
            id: w.id,
            entry_id: optional_member("entry_id", w.entry_id.as_deref(), EntryId::parse)?,
            author: optional_member("author", w.author.as_deref(), PublicKey::parse)?,
            seq: w.seq,
        })
    }
}

decode_by_serde!(Unsubscribe);
