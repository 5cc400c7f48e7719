//! Fault injection: each fault makes the node break exactly one spec rule, observable over the
//! wire, so that the conformance suite can prove that its cases catch the break.
//!
//! The table is always compiled (so that the node's code paths need no `cfg`), but a fault can
//! only be switched on in a build with the `faults` feature, through `--fault NAME`.

/// One injectable fault: its flag name, the requirement it violates, and its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultInfo {
    /// The name given to `--fault`.
    pub name: &'static str,
    /// The spec requirement the fault violates, e.g. `"ENTRY-10"`.
    pub requirement: &'static str,
    /// What the node does wrong.
    pub description: &'static str,
}

/// A fault the node can be told to commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[allow(dead_code)] // without the `faults` feature no variant is ever constructed
pub(crate) enum Fault {
    AcceptExpiredCert,
    AcceptBadTranscriptSig,
    AcceptUnknownUser,
    SkipEntrySignature,
    SkipChainLink,
    AcceptFork,
    DuplicateCharged,
    PruneNewestFirst,
    IgnoreBudget,
    LoseFeedHead,
    IgnoreInviteAllowance,
    IgnorePublishAllowance,
    NonAncestorRemoves,
    OldKeySurvives,
    DropLiveEvents,
    SkipBackfill,
    NoConnectionLimit,
    NoHandshakeLimit,
    NoRateLimit,
    NoSubscriptionLimit,
    NoQueueLimit,
    NoFrameLimit,
    NoDepthLimit,
    NoHandshakeTimeout,
    IgnoreHello,
    RejectEqualTimestamp,
    EntryChecksOutOfOrder,
    FrameAfterFinalError,
    ClosingBeforeReplaceOk,
    WelcomeAccountExtraMember,
    FollowsAnsweredTwice,
    AcceptNan,
    BoolAsInteger,
    ContentDepthOffByOne,
    EntrySizeOffByOne,
    SizeInCharacters,
    HeadsDecodeBeforeCount,
    SessionOutlivesCert,
    InviteesChildrenOnly,
    InviteesMoreFalse,
    AdminNumericAllowances,
    StaleAccount,
    IgnoreKeyTaken,
    InviteChargesPublish,
    ChildExtraInvite,
    ReplacementAnyNode,
    AdminReplacesKey,
    ReplacementAnyOld,
    ReplaceIgnoresKeyTaken,
    ChildrenKeepOldParent,
    RemoveUnknownOk,
    OrphansKeepParent,
    RemovalRefundsChildren,
    RemovalRefundsParent,
    PublishedBytesOffByOne,
    ChargeDuplicates,
    ChargeRejected,
    PruneRefunds,
    DuplicateSubAccepted,
    UnsubscribeUnknownOk,
    UnsubscribeKeepsSub,
    GetIdNotFound,
    GetPositionOffByOne,
    GetMissingPruned,
    ReplicateOneShort,
    AnyNoteAuthor,
    FirstNoteDropped,
    NewerNoteDropped,
    OlderNoteReplaces,
    DiscardedNoteError,
    IdentitiesDescending,
    NotesDescending,
    FollowTwiceError,
    UnfollowUnknownError,
    ReplaceDropsFollows,
    VersionsTwice,
    NodeInfoWrongKey,
    NodeInfoMidHandshake,
    AdminUnknownUser,
    HeadsBeforeWelcome,
    PruneAtBudget,
    SkipPruneAtStart,
    ReuseEphemeral,
    ShutdownClose1000,
    RateBucketShort,
    SlowConsumerAtHalf,
    GetDropsEmptyLists,
    EventPerList,
    CountPlusOne,
    DeleteRemovedEntries,
    ReportShortHandshakeTimeout,
    CloseAfterNotAuthenticated,
    CloseOnBinary,
    CloseAfterMalformed,
    DenyUnknownMember,
    EchoIdOnMalformed,
    DiscardPush,
    AnswersOutOfOrder,
    ChallengeSigByOtherKey,
    SkipNoteSignature,
    IgnoreNameTaken,
    AcceptExpiredReplacement,
    BackfillNewestFirst,
    FollowsDescending,
    // Canonical-form and bookkeeping bug classes (issue 11).
    CanonicalEscapesNonAscii,
    CanonicalKeysByCodePoint,
    ReplicateBeyondMax,
    BackfillBeyondMax,
    AnchorPrunedThroughZero,
    PrunedThroughOffByOne,
    LenientAddressForms,
    NoteExtraMember,
    HeadsSorted,
    // Issue 12 (connections that end while the peer is not reading).
    NoCloseDeadline,
    NoUpgradeLimit,
    NoUpgradeDeadline,
    LongErrorMessage,
    NotesUnbounded,
    FollowsUnbounded,
    IdentitiesUnpaged,
    FollowsUnpaged,
    RemovedNotesKept,
    ReplacedNotesKept,
    IdentitiesMoreFalse,
    // Issue 12, Medium 2 (subscription memory).
    NoFilterItemLimit,
    FilterItemsNotReleased,
    ReportSmallTotalFilterItems,
}

macro_rules! fault_table {
    ($( $variant:ident = $name:literal, $req:literal, $desc:literal; )+) => {
        /// Every fault, in table order.
        pub const ALL: &[FaultInfo] = &[
            $( FaultInfo { name: $name, requirement: $req, description: $desc }, )+
        ];

        impl Fault {
            /// Looks a fault up by its flag name.
            #[allow(dead_code)]
            pub(crate) fn from_name(name: &str) -> Option<Fault> {
                match name { $( $name => Some(Fault::$variant), )+ _ => None }
            }
        }
    };
}

fault_table! {
    AcceptExpiredCert = "accept-expired-cert", "CERT-6",
        "accepts a certificate whose `expires` is not after the node's clock";
    AcceptBadTranscriptSig = "accept-bad-transcript-sig", "HS-33",
        "accepts an `auth` whose transcript signature does not verify";
    AcceptUnknownUser = "accept-unknown-user", "HS-34",
        "welcomes a certificate's user that has no account, instead of `unknown_user`";
    SkipEntrySignature = "skip-entry-signature", "ENTRY-18",
        "stores entries without checking their signature";
    SkipChainLink = "skip-chain-link", "ENTRY-25",
        "accepts an entry at head+1 whose `prev` is not the head's id";
    AcceptFork = "accept-fork", "ENTRY-32",
        "answers `publish_ok` (storing nothing) to an entry that differs from the held entry below the head";
    DuplicateCharged = "duplicate-not-flagged", "FEED-4",
        "answers a re-published entry with `duplicate:false`";
    PruneNewestFirst = "prune-newest-first", "PRUNE-4",
        "when over budget, prunes the newest entries instead of the oldest";
    IgnoreBudget = "ignore-budget", "PRUNE-4",
        "never prunes: the counted bytes grow past `storage_bytes`";
    LoseFeedHead = "lose-feed-head", "PRUNE-8",
        "forgets a feed's state when its last held entry is pruned";
    IgnoreInviteAllowance = "ignore-invite-allowance", "ACCT-12",
        "creates users although the inviter's invite allowance is below 1 + N";
    IgnorePublishAllowance = "ignore-publish-allowance", "ACCT-49",
        "stores entries although the publisher's publish allowance is 0";
    NonAncestorRemoves = "non-ancestor-removes", "ACCT-38",
        "lets any user remove any other user, not only a strict ancestor";
    OldKeySurvives = "old-key-survives", "ACCT-34",
        "after a key replacement, sessions of the old key are neither told `closing` nor closed";
    DropLiveEvents = "drop-live-events", "FEED-16",
        "never sends live events after `stored_end`";
    SkipBackfill = "skip-backfill", "FEED-13",
        "sends `stored_end` without replaying stored matches";
    NoConnectionLimit = "no-connection-limit", "FRAME-42",
        "never refuses a connection for the count of open connections from its address";
    NoHandshakeLimit = "no-handshake-limit", "FRAME-43",
        "never refuses a connection for the node-wide count of connections without `welcome`";
    NoRateLimit = "no-rate-limit", "FRAME-46",
        "never answers `rate_limited`: a request over the rate is processed as if it had found a token";
    NoSubscriptionLimit = "no-subscription-limit", "FEED-11",
        "accepts subscriptions beyond `max_subscriptions`";
    NoQueueLimit = "no-queue-limit", "FRAME-35",
        "never closes a slow consumer: its outbound queue grows without bound";
    NoFrameLimit = "no-frame-limit", "FRAME-5",
        "reads and processes frames up to 1 MiB as if they were within 65536 bytes, instead of `frame_too_large`";
    NoDepthLimit = "no-depth-limit", "ENC-8",
        "processes a frame nested deeper than 64 as if the depth rule did not exist, instead of `malformed_frame`";
    NoHandshakeTimeout = "no-handshake-timeout", "HS-40",
        "never times a handshake out: a connection without `welcome` stays open past `handshake_timeout_ms`";
    IgnoreHello = "ignore-hello", "HS-28",
        "never answers `hello`: no `challenge`, no error, the connection stays open and silent";
    RejectEqualTimestamp = "reject-equal-timestamp", "ENTRY-27",
        "refuses with `bad_timestamp` an entry whose timestamp equals its predecessor's";
    EntryChecksOutOfOrder = "entry-checks-out-of-order", "ENTRY-5",
        "checks an entry's `kind` (ENTRY-9) before decoding its `author` (ENTRY-5): an entry breaking both is `malformed_entry`, not `bad_encoding`";
    FrameAfterFinalError = "frame-after-final-error", "FRAME-32",
        "sends the error that ends a connection (a refused `hello` or `auth`, `handshake_timeout`, `frame_too_large`) twice before closing";
    ClosingBeforeReplaceOk = "closing-before-replace-ok", "ACCT-33",
        "on a successful `replace_key` sends `closing` before `replace_key_ok`, and `closing` again after it, then closes";
    WelcomeAccountExtraMember = "welcome-account-extra-member", "ACCT-1",
        "the account in `welcome` carries an eighth member (`\"admin\": false`)";
    FollowsAnsweredTwice = "follows-answered-twice", "FRAME-18",
        "answers every `follows` request twice";
    AcceptNan = "accept-nan", "ENC-1",
        "reads the bare tokens `NaN`, `Infinity` and `-Infinity` (a host JSON parser's default) as the number 0, instead of `malformed_frame`";
    BoolAsInteger = "bool-as-integer", "ENTRY-4",
        "reads `true` / `false` in an entry's `seq` or `timestamp` as 1 / 0, instead of `malformed_entry`";
    ContentDepthOffByOne = "content-depth-off-by-one", "ENTRY-16",
        "accepts entry `content` nested 33 deep (the depth limit compared one past it); 34 and deeper are still refused";
    EntrySizeOffByOne = "entry-size-off-by-one", "ENTRY-17",
        "accepts an entry of 16385 canonical bytes (the size limit compared one past it); larger ones are still `entry_too_large`";
    SizeInCharacters = "size-in-characters", "ENTRY-14",
        "counts a profile `name` in characters, not UTF-8 bytes: a name of at most 64 multi-byte characters but more than 64 bytes is accepted";
    HeadsDecodeBeforeCount = "heads-decode-before-count", "FEED-20",
        "decodes `heads.authors` before counting them: 1025 undecodable strings get `bad_encoding`, not `invalid_request`";
    SessionOutlivesCert = "session-outlives-cert", "HS-55",
        "keeps a session open after its certificate expires: no `closing` `cert_expired`, requests still answered";
    InviteesChildrenOnly = "invitees-children-only", "ACCT-54",
        "lists only the accounts the user created itself in `invitees_ok`, not their descendants";
    InviteesMoreFalse = "invitees-more-false", "ACCT-55",
        "answers `invitees_ok` with `more: false` even when a full page leaves descendants unlisted";
    AdminNumericAllowances = "admin-numeric-allowances", "ACCT-3",
        "shows the admin's `invite_allowance` and `publish_allowance` as 2^53−1 instead of `null` in `welcome` and `account_ok`";
    StaleAccount = "stale-account", "ACCT-6",
        "answers `account` with the account as it was at `welcome`, not as it is when the request is processed";
    IgnoreKeyTaken = "ignore-key-taken", "ACCT-10",
        "creates a user whose key is the node key or a current account's key (overwriting it), instead of `key_taken`";
    InviteChargesPublish = "invite-charges-publish", "ACCT-15",
        "also reduces the inviter's `publish_allowance` by the child's M when creating a user";
    ChildExtraInvite = "child-extra-invite", "ACCT-16",
        "creates the child with `invite_allowance` N+1 instead of the requested N";
    ReplacementAnyNode = "replacement-any-node", "ACCT-24",
        "accepts a key replacement whose `node` is another node's key";
    AdminReplacesKey = "admin-replaces-key", "ACCT-25",
        "lets an admin session replace its key, instead of `forbidden`";
    ReplacementAnyOld = "replacement-any-old", "ACCT-26",
        "accepts a key replacement whose `old` is not the session's key (and replaces the session's key)";
    ReplaceIgnoresKeyTaken = "replace-ignores-key-taken", "ACCT-30",
        "accepts a key replacement whose `new` is the node key or a current account's key, instead of `key_taken`";
    ChildrenKeepOldParent = "children-keep-old-parent", "ACCT-32",
        "after a key replacement, leaves the children's `parent` at the old key";
    RemoveUnknownOk = "remove-unknown-ok", "ACCT-37",
        "answers `remove_user_ok` for a key that has no account, instead of `not_found`";
    OrphansKeepParent = "orphans-keep-parent", "ACCT-40",
        "after removing R, leaves R's children's `parent` at R's key instead of R's parent";
    RemovalRefundsChildren = "removal-refunds-children", "ACCT-41",
        "on removing R, adds R's remaining invite allowance to each of R's children";
    RemovalRefundsParent = "removal-refunds-parent", "ACCT-42",
        "on removing R, adds R's remaining invite and publish allowances to R's parent";
    PublishedBytesOffByOne = "published-bytes-off-by-one", "ACCT-48",
        "adds size(E) + 1 (a trailing newline) to `published_bytes` for each newly stored entry";
    ChargeDuplicates = "charge-duplicates", "ACCT-50",
        "charges the publish allowance and counts `published_entries`/`published_bytes` for a duplicate (answered `duplicate: true`)";
    ChargeRejected = "charge-rejected", "ENTRY-33",
        "charges the publish allowance and counts the entry when it rejects an entry at the chain step (`bad_prev`, `fork`, ...)";
    PruneRefunds = "prune-refunds", "ACCT-51",
        "on pruning an entry, lowers its author's `published_entries` by one";
    DuplicateSubAccepted = "duplicate-sub-accepted", "FEED-10",
        "accepts a `subscribe` whose `id` is the `sub` of an active subscription on the connection, instead of `invalid_request`";
    UnsubscribeUnknownOk = "unsubscribe-unknown-ok", "FEED-18",
        "answers `unsubscribe_ok` for a `sub` that is not an active subscription, instead of `not_found`";
    UnsubscribeKeepsSub = "unsubscribe-keeps-sub", "FEED-19",
        "answers `unsubscribe_ok` but keeps the subscription: its events go on";
    GetIdNotFound = "get-id-not-found", "FEED-30",
        "answers every `get` by `entry_id` with `not_found`";
    GetPositionOffByOne = "get-position-off-by-one", "FEED-31",
        "answers a `get` by `author` and `seq` > 1 with the entry at `seq − 1`";
    GetMissingPruned = "get-missing-pruned", "FEED-33",
        "answers `pruned` instead of `not_found` to a `get` by position above the head or of an unknown feed";
    ReplicateOneShort = "replicate-one-short", "FEED-25",
        "returns one entry fewer than min(`limit`, `max_replicate`, held) in `replicate_ok`";
    AnyNoteAuthor = "any-note-author", "IDENT-9",
        "stores identity notes whose `author` is not the session's key, instead of `forbidden`";
    FirstNoteDropped = "first-note-dropped", "IDENT-11",
        "answers `add_identity_ok` without storing a note when it holds none by that author about that subject";
    NewerNoteDropped = "newer-note-dropped", "IDENT-12",
        "keeps a held note when a newer one by the same author about the same subject arrives";
    OlderNoteReplaces = "older-note-replaces", "IDENT-13",
        "replaces a held note by one with an equal or smaller `updated`";
    DiscardedNoteError = "discarded-note-error", "IDENT-14",
        "answers `invalid_request` instead of `add_identity_ok` to a valid note it discards as not newer";
    IdentitiesDescending = "identities-descending", "IDENT-16",
        "answers `identities` with the identity objects in descending subject order";
    NotesDescending = "notes-descending", "IDENT-17",
        "orders the notes within an identity object by `author` descending";
    FollowTwiceError = "follow-twice-error", "IDENT-20",
        "answers `invalid_request` to a `follow` of a key already followed";
    UnfollowUnknownError = "unfollow-unknown-error", "IDENT-21",
        "answers `not_found` to an `unfollow` of a key not followed";
    ReplaceDropsFollows = "replace-drops-follows", "IDENT-23",
        "drops the account's follow set when its key is replaced";
    VersionsTwice = "versions-twice", "VER-2",
        "lists `kith/1` twice in `node_info_ok.versions`";
    NodeInfoWrongKey = "node-info-wrong-key", "HS-5",
        "reports the Ed25519 base point, not its node key, in `node_info_ok.node`";
    NodeInfoMidHandshake = "node-info-mid-handshake", "HS-4",
        "answers `node_info` between `challenge` and `auth` with `not_authenticated`";
    AdminUnknownUser = "admin-unknown-user", "HS-37",
        "answers `unknown_user` to a certificate whose user is the node key";
    HeadsBeforeWelcome = "heads-before-welcome", "HS-38",
        "answers `heads` before `welcome` with `heads_ok`, instead of `not_authenticated`";
    PruneAtBudget = "prune-at-budget", "PRUNE-5",
        "prunes while the counted bytes are at (not only above) `storage_bytes`";
    SkipPruneAtStart = "skip-prune-at-start", "PRUNE-10",
        "does not prune at start: a node restarted with a lower `storage_bytes` keeps counted bytes above it until the next publish";
    ReuseEphemeral = "reuse-ephemeral", "HS-14",
        "uses one X25519 key pair (from a fixed seed) for every handshake instead of a fresh one";
    ShutdownClose1000 = "shutdown-close-1000", "FRAME-29",
        "closes with 1000 instead of 1001 after the `closing` `shutting_down` push";
    RateBucketShort = "rate-bucket-short", "FRAME-47",
        "gives each connection a token bucket of `max_requests_per_second` − 1 tokens: the R-th message of a burst is `rate_limited` although it found a token";
    SlowConsumerAtHalf = "slow-consumer-at-half", "FRAME-48",
        "closes a connection as a slow consumer once its queue would pass half of `max_queued_bytes`";
    GetDropsEmptyLists = "get-drops-empty-lists", "FEED-1",
        "sends the entry in `get_ok` without its empty `refs` and `mentions` members (a changed value whose id no longer verifies)";
    EventPerList = "event-per-list", "FEED-17",
        "pushes a live entry once per filter list it matches (author, thread, mention), not once per subscription";
    CountPlusOne = "count-plus-one", "PRUNE-1",
        "counts size(E) + 1 per held entry (a trailing newline) toward `storage_bytes`";
    DeleteRemovedEntries = "delete-removed-entries", "ACCT-45",
        "deletes the stored entries of a removed account's feed along with the account";
    ReportShortHandshakeTimeout = "report-short-handshake-timeout", "HS-8",
        "reports `handshake_timeout_ms` 999 in `node_info_ok.limits` (the timer itself is unchanged)";
    CloseAfterNotAuthenticated = "close-after-not-authenticated", "HS-39",
        "closes the connection (1008) after answering a well-formed request before `welcome` with `not_authenticated`";
    CloseOnBinary = "close-on-binary", "FRAME-2",
        "closes the connection (1008) after answering a binary message with `malformed_frame`";
    CloseAfterMalformed = "close-after-malformed", "FRAME-10",
        "closes the connection (1008) after answering `malformed_frame` to a text message";
    DenyUnknownMember = "deny-unknown-member", "FRAME-15",
        "answers `invalid_request` to an `account` request that carries a member its definition does not list";
    EchoIdOnMalformed = "echo-id-on-malformed", "FRAME-17",
        "puts the `id` a lenient JSON parser reads into the `malformed_frame` error of a frame that fails step 3 (say a float), instead of `null`";
    DiscardPush = "discard-push", "FRAME-36",
        "discards a push or response that does not fit the queue instead of closing the connection as a slow consumer";
    AnswersOutOfOrder = "answers-out-of-order", "FRAME-20",
        "answers a request without waiting for the answers to earlier pipelined `publish` requests: a fast answer can overtake a `publish_ok`";
    ChallengeSigByOtherKey = "challenge-sig-by-other-key", "HS-18",
        "puts in `challenge.sig` a signature by a fresh key instead of the node key's signature over the transcript";
    SkipNoteSignature = "skip-note-signature", "IDENT-10",
        "stores identity notes without checking their signature";
    IgnoreNameTaken = "ignore-name-taken", "ACCT-11",
        "creates a user whose name is the name of a current account, instead of `name_taken`";
    AcceptExpiredReplacement = "accept-expired-replacement", "ACCT-27",
        "accepts a key replacement whose `expires` is not after the node's clock";
    BackfillNewestFirst = "backfill-newest-first", "FEED-14",
        "sends a subscription's backfill events newest first";
    FollowsDescending = "follows-descending", "IDENT-22",
        "answers `follows` with the follow set in descending order";
    CanonicalEscapesNonAscii = "canonical-escapes-non-ascii", "SIGN-3",
        "verifies entries over canonical bytes that write non-ASCII characters as `\\uXXXX` escapes instead of raw UTF-8";
    CanonicalKeysByCodePoint = "canonical-keys-by-code-point", "SIGN-6",
        "verifies entries over canonical bytes whose object keys are sorted by code point instead of UTF-16 code units";
    ReplicateBeyondMax = "replicate-beyond-max", "FEED-25",
        "answers `replicate` with up to `limit` entries, ignoring the `max_replicate` it reports";
    BackfillBeyondMax = "backfill-beyond-max", "FEED-13",
        "replays up to `backfill` stored entries, ignoring the `max_backfill` it reports";
    AnchorPrunedThroughZero = "anchor-pruned-through-zero", "ENTRY-23",
        "anchors a feed at seq n with `pruned_through` 0 instead of n - 1";
    PrunedThroughOffByOne = "pruned-through-off-by-one", "PRUNE-6",
        "when it prunes a feed's head entry at seq s, sets `pruned_through` to s - 1, as if the head were still held";
    LenientAddressForms = "lenient-address-forms", "IDENT-7",
        "accepts identity-note addresses in a non-canonical spelling (IPv6 not in RFC 5952 form, DNS names with capitals)";
    NoteExtraMember = "note-extra-member", "IDENT-15",
        "every note in `identities_ok` carries an eighth member (`\"stored\": true`)";
    HeadsSorted = "heads-sorted", "FEED-22",
        "answers `heads` sorted by author key instead of in the order of the request";
    NoCloseDeadline = "no-close-deadline", "FRAME-50",
        "keeps a connection it has ended for as long as the peer does not read: no close deadline, so the socket, its queued bytes and its place in the per-address count stay";
    NoUpgradeLimit = "no-upgrade-limit", "FRAME-51",
        "never ends a TCP connection for the counts of upgrades under way: sockets that have not finished the upgrade are bounded only by the upgrade deadline";
    NoUpgradeDeadline = "no-upgrade-deadline", "FRAME-52",
        "gives a TCP connection the whole handshake timeout, not the upgrade deadline, to finish its WebSocket upgrade";
    LongErrorMessage = "long-error-message", "FRAME-53",
        "quotes the whole `type` of an unknown request, debug-escaped, in its `unknown_type` error";
    NotesUnbounded = "notes-unbounded", "IDENT-25",
        "stores identity notes beyond the author's `max_notes` and `max_note_bytes`";
    FollowsUnbounded = "follows-unbounded", "IDENT-26",
        "adds keys to a follow set beyond `max_follows`";
    IdentitiesUnpaged = "identities-unpaged", "IDENT-28",
        "answers `identities` with every note in one `identities_ok`, however many bytes they take";
    FollowsUnpaged = "follows-unpaged", "IDENT-30",
        "answers `follows` with the whole follow set in one `follows_ok`, beyond 256 keys";
    RemovedNotesKept = "removed-notes-kept", "IDENT-31",
        "keeps a removed account's identity notes, so an account later created with the same key lists them again";
    ReplacedNotesKept = "replaced-notes-kept", "IDENT-32",
        "keeps the identity notes signed by a replaced key, so an account later created with that key lists them again";
    IdentitiesMoreFalse = "identities-more-false", "IDENT-29",
        "sets `more` to `false` in every `identities_ok`, also when notes follow the last one listed";
    NoFilterItemLimit = "no-filter-item-limit", "FEED-34",
        "accepts a `subscribe` after which the connection's subscriptions hold more than `max_filter_items` filter items";
    FilterItemsNotReleased = "filter-items-not-released", "FEED-36",
        "keeps an unsubscribed subscription's filter items counted against its connection until the connection ends";
    ReportSmallTotalFilterItems = "report-small-total-filter-items", "HS-57",
        "reports `max_total_filter_items` one below 4 × `max_connections_per_address` × `max_filter_items`";
}

/// The set of faults a node runs with (at most one; empty in normal builds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Faults(Option<Fault>);

impl Faults {
    /// No fault.
    pub(crate) const NONE: Faults = Faults(None);

    /// Exactly `fault`.
    #[allow(dead_code)]
    pub(crate) fn one(fault: Fault) -> Faults {
        Faults(Some(fault))
    }

    /// Whether `fault` is switched on. Without the `faults` feature this is always false.
    #[inline]
    pub(crate) fn has(self, fault: Fault) -> bool {
        cfg!(feature = "faults") && self.0 == Some(fault)
    }
}

/// The canonical bytes of `value` as a faulty implementation computes them
/// ([`Fault::CanonicalEscapesNonAscii`], [`Fault::CanonicalKeysByCodePoint`]); with neither
/// fault switched on they equal the core's RFC 8785 bytes. This lives in the node, behind the
/// faults, so that the core keeps exactly one canonical encoder.
#[cfg_attr(not(feature = "faults"), allow(dead_code))]
pub(crate) fn faulty_jcs(faults: Faults, value: &kith_proto::canonical::CanonicalValue, out: &mut Vec<u8>) {
    use kith_proto::canonical::CanonicalValue;
    match value {
        CanonicalValue::String(s) => write_faulty_string(faults, s, out),
        CanonicalValue::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                faulty_jcs(faults, item, out);
            }
            out.push(b']');
        }
        CanonicalValue::Object(map) => {
            // The map iterates in byte order, which is code point order: the faulty order.
            let mut members: Vec<_> = map.iter().collect();
            if !faults.has(Fault::CanonicalKeysByCodePoint) {
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            }
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_faulty_string(faults, k, out);
                out.push(b':');
                faulty_jcs(faults, v, out);
            }
            out.push(b'}');
        }
        scalar => scalar.write_jcs(out),
    }
}

/// `verify_entry` as a node with a canonicalisation fault does it: signature and id over
/// [`faulty_jcs`] bytes, so that an entry whose canonical bytes the fault changes is refused
/// with `bad_signature` ([SIGN-20]), the canonical form being that of [SIGN-3], [SIGN-6] and
/// [SIGN-10].
#[cfg_attr(not(feature = "faults"), allow(dead_code))]
pub(crate) fn verify_entry_faulty(
    faults: Faults,
    entry: &kith_proto::Entry,
) -> Result<kith_proto::entry::VerifiedEntry, kith_proto::entry::EntryError> {
    use kith_proto::canonical::CanonicalValue;
    use kith_proto::signing::{prefixed, Context};
    use sha2::{Digest, Sha256};

    let unsigned = entry.unsigned_value();
    let mut unsigned_bytes = Vec::new();
    faulty_jcs(faults, &unsigned, &mut unsigned_bytes);
    let message = prefixed(Context::Entry, &unsigned_bytes);
    entry.author.verify_strict(&message, &entry.sig).map_err(|_| kith_proto::entry::EntryError::BadSignature)?;
    let CanonicalValue::Object(mut signed) = unsigned else {
        return Err(kith_proto::entry::EntryError::Malformed("entry is not an object".into()));
    };
    signed.insert("sig".into(), CanonicalValue::string(entry.sig.to_string()));
    let mut canonical = Vec::new();
    faulty_jcs(faults, &CanonicalValue::Object(signed), &mut canonical);
    let id = kith_proto::EntryId::from_bytes(Sha256::digest(&canonical).into());
    Ok(kith_proto::entry::VerifiedEntry { entry: entry.clone(), id, canonical })
}

/// A string as [`faulty_jcs`] writes it: the core's form, then every non-ASCII character as
/// `\uXXXX` (UTF-16 code units) under [`Fault::CanonicalEscapesNonAscii`].
#[cfg_attr(not(feature = "faults"), allow(dead_code))]
fn write_faulty_string(faults: Faults, s: &str, out: &mut Vec<u8>) {
    let mut plain = Vec::with_capacity(s.len() + 2);
    kith_proto::canonical::write_jcs_string(s, &mut plain);
    if !faults.has(Fault::CanonicalEscapesNonAscii) {
        out.extend_from_slice(&plain);
        return;
    }
    // JCS output is UTF-8 and escapes only ASCII, so every non-ASCII character here is literal.
    for c in String::from_utf8_lossy(&plain).chars() {
        if c.is_ascii() {
            out.push(c as u8);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.extend_from_slice(format!("\\u{u:04x}").as_bytes());
            }
        }
    }
}

/// Prints the fault table (for `--fault list`).
#[allow(dead_code)]
pub(crate) fn print_table() {
    println!("{:<28} {:<10} effect", "fault", "violates");
    for f in ALL {
        println!("{:<28} {:<10} {}", f.name, f.requirement, f.description);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_a_distinct_name_and_parses() {
        let mut names = std::collections::BTreeSet::new();
        for f in ALL {
            assert!(names.insert(f.name), "duplicate {}", f.name);
            assert!(Fault::from_name(f.name).is_some());
            assert!(f.requirement.contains('-'));
        }
        assert!(ALL.len() >= 23);
    }
}
