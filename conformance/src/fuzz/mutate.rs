//! The mutations: what a fuzz case does to its valid base frame, on three layers — the JSON
//! tree (members deleted, duplicated, retyped, nested, spliced), the bytes of the text (bit
//! flips, truncation, invalid UTF-8, a byte-order mark) and the transport (a binary message,
//! several continuation fragments).

use serde_json::Value;

use super::json::{quote, Path, J};
use super::rng::Rng;

/// One mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mutation {
    /// Flips 1 to 3 bits of the text (mostly below bit 7, so the text mostly stays UTF-8).
    BitFlip,
    /// Cuts the text short.
    Truncate,
    /// Deletes one member of one object.
    DeleteMember,
    /// Repeats a member's key in the same object (with the same or another value).
    DuplicateMember,
    /// Replaces a value by a value of another JSON type.
    TypeSwap,
    /// Replaces a value by 2^53, 2^64, 1e400, -0, 1.5 and the like.
    HugeNumber,
    /// Wraps a value in 60 to 200 arrays or objects.
    DeepNesting,
    /// Pads a string so that the frame is just under, at, or over 65536 bytes.
    LongString,
    /// Puts bytes that are not UTF-8 into the text.
    InvalidUtf8,
    /// Sends the frame as a binary message.
    Binary,
    /// Sends the frame as 2 to 6 websocket fragments.
    Fragment,
    /// Copies a subtree from elsewhere in the frame, or a member of another request type.
    Splice,
    /// Replaces a string by an escape-heavy token (lone surrogates, control characters).
    BadEscape,
    /// Shuffles the members of objects (a valid frame stays valid).
    Reorder,
    /// Adds a member no definition lists (ignored in requests, refused in signed objects).
    UnknownMember,
    /// Prefixes the text with a byte-order mark.
    Bom,
    /// Changes one leaf slightly and keeps its type: one hex digit of a key, id or signature,
    /// one character of a string, a number by one (the frame stays well-formed JSON, so its
    /// request-level rules are what gets tested: signatures, encodings, lookups).
    Tweak,
}

/// Every mutation with its weight in a plan.
pub const WEIGHTED: &[(Mutation, u64)] = &[
    (Mutation::BitFlip, 12),
    (Mutation::Truncate, 5),
    (Mutation::Tweak, 14),
    (Mutation::DeleteMember, 10),
    (Mutation::DuplicateMember, 7),
    (Mutation::TypeSwap, 12),
    (Mutation::HugeNumber, 8),
    (Mutation::DeepNesting, 5),
    (Mutation::LongString, 5),
    (Mutation::InvalidUtf8, 4),
    (Mutation::Binary, 3),
    (Mutation::Fragment, 9),
    (Mutation::Splice, 8),
    (Mutation::BadEscape, 4),
    (Mutation::Reorder, 5),
    (Mutation::UnknownMember, 6),
    (Mutation::Bom, 2),
];

impl Mutation {
    /// The name in titles and reports.
    pub fn name(self) -> &'static str {
        match self {
            Mutation::BitFlip => "bit-flip",
            Mutation::Truncate => "truncate",
            Mutation::DeleteMember => "delete-member",
            Mutation::DuplicateMember => "duplicate-member",
            Mutation::TypeSwap => "type-swap",
            Mutation::HugeNumber => "huge-number",
            Mutation::DeepNesting => "deep-nesting",
            Mutation::LongString => "long-string",
            Mutation::InvalidUtf8 => "invalid-utf8",
            Mutation::Binary => "binary",
            Mutation::Fragment => "fragment",
            Mutation::Splice => "splice",
            Mutation::BadEscape => "bad-escape",
            Mutation::Reorder => "reorder",
            Mutation::UnknownMember => "unknown-member",
            Mutation::Bom => "bom",
            Mutation::Tweak => "tweak",
        }
    }

    fn layer(self) -> u8 {
        match self {
            Mutation::BitFlip | Mutation::Truncate | Mutation::InvalidUtf8 | Mutation::Bom => 1,
            Mutation::Binary | Mutation::Fragment => 2,
            // A long string is padded last among the tree mutations so its size is the one sent.
            Mutation::LongString => 0,
            _ => 0,
        }
    }
}

/// Picks 1 to 3 mutations.
pub fn pick_mutations(rng: &mut Rng) -> Vec<Mutation> {
    let n = rng.weighted(&[50, 35, 15]) + 1;
    let weights: Vec<u64> = WEIGHTED.iter().map(|(_, w)| *w).collect();
    (0..n).map(|_| WEIGHTED[rng.weighted(&weights)].0).collect()
}

/// The websocket message kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// A text message.
    Text,
    /// A binary message.
    Binary,
}

/// What goes on the wire: one message, maybe in fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireMessage {
    /// Text or binary.
    pub opcode: Opcode,
    /// The payload.
    pub bytes: Vec<u8>,
    /// Where the payload is cut into fragments (ascending; empty: one frame).
    pub cuts: Vec<usize>,
}

/// A mutated frame and what was done to it.
#[derive(Debug, Clone)]
pub struct Mutated {
    /// The message to send.
    pub message: WireMessage,
    /// One line per mutation: its name and where it landed.
    pub details: Vec<String>,
}

/// Applies `mutations` to the base frame `base`, drawing positions from `rng`; `donors` are
/// valid frames of other request types that splices may borrow from.
pub fn apply(base: &Value, mutations: &[Mutation], rng: &mut Rng, donors: &[Value]) -> Mutated {
    let mut order: Vec<Mutation> = mutations.to_vec();
    // Tree first (long strings last of those), then bytes, then transport; stable otherwise.
    order.sort_by_key(|m| (m.layer(), *m == Mutation::LongString));
    let mut root = J::from_value(base);
    let mut details = Vec::new();
    let mut bytes: Option<Vec<u8>> = None;
    let mut opcode = Opcode::Text;
    let mut cuts = Vec::new();
    for m in order {
        let detail = match m.layer() {
            0 => tree_mutation(m, &mut root, rng, donors),
            1 => {
                let b = bytes.get_or_insert_with(|| root.to_text().into_bytes());
                byte_mutation(m, b, rng)
            }
            _ => {
                let len = bytes.as_ref().map(Vec::len).unwrap_or_else(|| root.to_text().len());
                match m {
                    Mutation::Binary => {
                        opcode = Opcode::Binary;
                        "sent as a binary message".to_owned()
                    }
                    _ => {
                        let k = rng.range(2, 6) as usize;
                        cuts = (1..k).map(|_| rng.index(len + 1)).collect();
                        cuts.sort_unstable();
                        format!("sent in {k} fragments, cut at bytes {cuts:?}")
                    }
                }
            }
        };
        details.push(format!("{}: {detail}", m.name()));
    }
    let bytes = bytes.unwrap_or_else(|| root.to_text().into_bytes());
    Mutated { message: WireMessage { opcode, bytes, cuts }, details }
}

fn path_text(root: &J, path: &[usize]) -> String {
    let mut out = String::new();
    for i in 1..=path.len() {
        match root.key_at(&path[..i]) {
            Some(k) => out.push_str(&format!("/{k}")),
            None => out.push_str(&format!("/{}", path[i - 1])),
        }
    }
    if out.is_empty() {
        "the top level".into()
    } else {
        out
    }
}

/// Paths of values that satisfy `f`.
fn paths_where(root: &J, f: impl Fn(&Path, &J) -> bool) -> Vec<Path> {
    root.paths().into_iter().filter(|p| root.get(p).is_some_and(|v| f(p, v))).collect()
}

/// A random value, of a kind other than `not_kind`.
fn random_value(rng: &mut Rng, not_kind: Option<u8>) -> J {
    let kinds: Vec<u8> = (0..6).filter(|k| Some(*k) != not_kind).collect();
    let kind = rng.pick(&kinds).copied().unwrap_or(0);
    match kind {
        0 => J::Null,
        1 => J::Bool(rng.chance(50)),
        2 => J::Num(
            rng.pick(&["0", "1", "7", "4294967296", "9007199254740991", "-1"]).copied().unwrap_or("0").to_owned(),
        ),
        3 => J::Str(match rng.below(5) {
            0 => String::new(),
            1 => "x".into(),
            2 => "node_info".into(),
            3 => rng.hex(64),
            _ => rng.hex(128),
        }),
        4 => match rng.below(3) {
            0 => J::Arr(Vec::new()),
            1 => J::Arr(vec![J::Num("1".into())]),
            _ => J::Arr(vec![J::Str(rng.hex(64))]),
        },
        _ => match rng.below(2) {
            0 => J::Obj(Vec::new()),
            _ => J::Obj(vec![("a".into(), J::Num("1".into()))]),
        },
    }
}

const HUGE: &[&str] = &[
    "9007199254740992",
    "18446744073709551616",
    "1e400",
    "-0",
    "1.5",
    "9007199254740991",
    "-9007199254740992",
    "-1",
    "0",
    "1E3",
    "10e-1",
    "1.0",
    "123456789012345678901234567890",
];

const ESCAPES: &[&str] = &[
    r#""\ud800""#,
    r#""x\udc00""#,
    r#""\ud83d\ude00""#,
    r#""\u0000""#,
    r#""\uD800\u0041""#,
    r#""\x""#,
    "\"\t\"",
    r#""\/\b\f\n\r\t\"\\""#,
    r#""\ud83d""#,
    r#""\u00e9\u00E9""#,
];

fn tree_mutation(m: Mutation, root: &mut J, rng: &mut Rng, donors: &[Value]) -> String {
    let non_root = paths_where(root, |p, _| !p.is_empty());
    let objects = paths_where(root, |_, v| matches!(v, J::Obj(_)));
    let full_objects = paths_where(root, |_, v| matches!(v, J::Obj(m) if !m.is_empty()));
    match m {
        Mutation::DeleteMember => {
            let Some(p) = rng.pick(&full_objects).cloned() else { return "nothing to delete".into() };
            let where_ = path_text(root, &p);
            if let Some(J::Obj(members)) = root.get_mut(&p) {
                let i = rng.index(members.len());
                let (k, _) = members.remove(i);
                return format!("deleted member {} of {where_}", quote(&k));
            }
            "nothing to delete".into()
        }
        Mutation::DuplicateMember => {
            let Some(p) = rng.pick(&full_objects).cloned() else { return "nothing to duplicate".into() };
            let where_ = path_text(root, &p);
            let same = rng.chance(50);
            let other = random_value(rng, None);
            if let Some(J::Obj(members)) = root.get_mut(&p) {
                let i = rng.index(members.len());
                let (k, v) = members[i].clone();
                let v = if same { v } else { other };
                let at = rng.index(members.len() + 1);
                members.insert(at, (k.clone(), v));
                return format!(
                    "member {} of {where_} repeated ({})",
                    quote(&k),
                    if same { "same value" } else { "other value" }
                );
            }
            "nothing to duplicate".into()
        }
        Mutation::TypeSwap => {
            let Some(p) = rng.pick(&non_root).cloned() else { return "nothing to retype".into() };
            let where_ = path_text(root, &p);
            let kind = root.get(&p).map(J::kind);
            let v = random_value(rng, kind);
            let text = v.to_text();
            if let Some(slot) = root.get_mut(&p) {
                *slot = v;
            }
            format!("{where_} replaced by {text}")
        }
        Mutation::HugeNumber => {
            let numbers = paths_where(root, |p, v| !p.is_empty() && matches!(v, J::Num(_)));
            let pool = if !numbers.is_empty() && rng.chance(70) { &numbers } else { &non_root };
            let Some(p) = rng.pick(pool).cloned() else { return "nothing to replace".into() };
            let where_ = path_text(root, &p);
            let n = rng.pick(HUGE).copied().unwrap_or("1e400");
            if let Some(slot) = root.get_mut(&p) {
                *slot = J::Num(n.into());
            }
            format!("{where_} replaced by {n}")
        }
        Mutation::DeepNesting => {
            let Some(p) = rng.pick(&non_root).cloned() else { return "nothing to nest".into() };
            let where_ = path_text(root, &p);
            // Half of the time land near the 64-level limit, else anywhere in 60..=200.
            let layers = if rng.chance(50) {
                (64 + rng.range(0, 6)).saturating_sub(3 + p.len() as u64)
            } else {
                rng.range(60, 200)
            };
            let layers = layers.clamp(60, 200);
            let style = rng.below(3);
            if let Some(slot) = root.get_mut(&p) {
                let mut v = std::mem::replace(slot, J::Null);
                for i in 0..layers {
                    let array = match style {
                        0 => true,
                        1 => false,
                        _ => i % 2 == 0,
                    };
                    v = if array { J::Arr(vec![v]) } else { J::Obj(vec![("n".into(), v)]) };
                }
                *slot = v;
            }
            let style = ["arrays", "objects", "arrays and objects"][style as usize];
            format!("{where_} wrapped in {layers} {style}")
        }
        Mutation::LongString => {
            let strings = paths_where(root, |p, v| !p.is_empty() && matches!(v, J::Str(_)));
            let target = match rng.below(6) {
                0 => 65536 - rng.range(1, 40),
                1 => 65536,
                2 => 65537,
                3 => 65536 + rng.range(1, 40),
                4 => 70000,
                _ => 131072,
            } as usize;
            let path = if !strings.is_empty() && rng.chance(70) {
                rng.pick(&strings).cloned()
            } else {
                let Some(p) = rng.pick(&objects).cloned() else { return "no place for a string".into() };
                if let Some(J::Obj(members)) = root.get_mut(&p) {
                    members.push(("pad".into(), J::Str(String::new())));
                    let mut p = p;
                    p.push(members.len() - 1);
                    Some(p)
                } else {
                    None
                }
            };
            let Some(p) = path else { return "no place for a string".into() };
            let wide = rng.chance(20);
            if let Some(slot) = root.get_mut(&p) {
                *slot = J::Str(String::new());
            }
            let need = target.saturating_sub(root.to_text().len());
            let s = if wide { format!("{}{}", "é".repeat(need / 2), "x".repeat(need % 2)) } else { "x".repeat(need) };
            if let Some(slot) = root.get_mut(&p) {
                *slot = J::Str(s);
            }
            format!("{} padded to make the frame {} bytes", path_text(root, &p), root.to_text().len())
        }
        Mutation::Splice => {
            if donors.is_empty() || rng.chance(40) {
                let (Some(src), Some(dst)) = (rng.pick(&non_root).cloned(), rng.pick(&non_root).cloned()) else {
                    return "nothing to splice".into();
                };
                let v = root.get(&src).cloned().unwrap_or(J::Null);
                let (s, d) = (path_text(root, &src), path_text(root, &dst));
                if let Some(slot) = root.get_mut(&dst) {
                    *slot = v;
                }
                format!("{s} copied over {d}")
            } else {
                let Some(donor) = rng.pick(donors) else { return "no donor".into() };
                let donor = J::from_value(donor);
                let dpaths = paths_where(&donor, |p, _| !p.is_empty());
                let Some(src) = rng.pick(&dpaths).cloned() else { return "empty donor".into() };
                let key = donor.key_at(&src).unwrap_or("x").to_owned();
                let v = donor.get(&src).cloned().unwrap_or(J::Null);
                let Some(p) = rng.pick(&objects).cloned() else { return "no object".into() };
                let where_ = path_text(root, &p);
                if let Some(J::Obj(members)) = root.get_mut(&p) {
                    match members.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = v,
                        None => members.push((key.clone(), v)),
                    }
                }
                let ty = J::from_value(&donor_type(&donor)).to_text();
                format!("member {} of a {ty} frame spliced into {where_}", quote(&key))
            }
        }
        Mutation::BadEscape => {
            let strings = paths_where(root, |p, v| !p.is_empty() && matches!(v, J::Str(_)));
            let pool = if strings.is_empty() { &non_root } else { &strings };
            let Some(p) = rng.pick(pool).cloned() else { return "nothing to escape".into() };
            let token = rng.pick(ESCAPES).copied().unwrap_or(ESCAPES[0]);
            let where_ = path_text(root, &p);
            if let Some(slot) = root.get_mut(&p) {
                *slot = J::RawStr(token.into());
            }
            format!("{where_} replaced by the token {token}")
        }
        Mutation::Reorder => {
            let all = rng.chance(50);
            let targets: Vec<Path> =
                if all { objects.clone() } else { rng.pick(&objects).cloned().into_iter().collect() };
            for p in &targets {
                if let Some(J::Obj(members)) = root.get_mut(p) {
                    for i in (1..members.len()).rev() {
                        let j = rng.index(i + 1);
                        members.swap(i, j);
                    }
                }
            }
            format!("members of {} object(s) shuffled", targets.len())
        }
        Mutation::UnknownMember => {
            let Some(p) = rng.pick(&objects).cloned() else { return "no object".into() };
            let key = rng.pick(&["x_fuzz", "extra", "_", "ID", "Type", "type ", "\u{e9}"]).copied().unwrap_or("x");
            let v = random_value(rng, None);
            let text = v.to_text();
            let where_ = path_text(root, &p);
            if let Some(J::Obj(members)) = root.get_mut(&p) {
                let at = rng.index(members.len() + 1);
                members.insert(at, (key.to_owned(), v));
            }
            format!("member {}: {text} added to {where_}", quote(key))
        }
        Mutation::Tweak => {
            let leaves = paths_where(root, |p, v| !p.is_empty() && matches!(v, J::Str(_) | J::Num(_)));
            let Some(p) = rng.pick(&leaves).cloned() else { return "no leaf to tweak".into() };
            let where_ = path_text(root, &p);
            let new = match root.get(&p) {
                Some(J::Str(s)) => J::Str(tweak_string(s, rng)),
                Some(J::Num(n)) => {
                    let v: u64 = n.parse().unwrap_or(0);
                    let t = match rng.below(4) {
                        0 => v.saturating_add(1),
                        1 => v.saturating_sub(1),
                        2 => 0,
                        _ => v.saturating_mul(2),
                    };
                    J::Num(t.to_string())
                }
                _ => return "no leaf to tweak".into(),
            };
            let text = new.to_text();
            let shown = if text.len() > 80 { format!("{}...", &text[..text.floor_char_boundary(80)]) } else { text };
            if let Some(slot) = root.get_mut(&p) {
                *slot = new;
            }
            format!("{where_} tweaked to {shown}")
        }
        _ => "not a tree mutation".into(),
    }
}

/// One character of `s` changed: a hex digit to another (now and then to upper case), any
/// other character to `x`; an empty string becomes `a`.
fn tweak_string(s: &str, rng: &mut Rng) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return "a".into();
    }
    let i = rng.index(chars.len());
    let c = chars[i];
    let new = if c.is_ascii_hexdigit() {
        if c.is_ascii_alphabetic() && rng.chance(10) {
            c.to_ascii_uppercase()
        } else {
            let digits: Vec<char> = "0123456789abcdef".chars().filter(|d| *d != c).collect();
            rng.pick(&digits).copied().unwrap_or('0')
        }
    } else if c == 'x' {
        'y'
    } else {
        'x'
    };
    let mut out = chars;
    out[i] = new;
    out.into_iter().collect()
}

fn donor_type(donor: &J) -> Value {
    match donor {
        J::Obj(members) => members
            .iter()
            .find(|(k, _)| k == "type")
            .and_then(|(_, v)| match v {
                J::Str(s) => Some(Value::String(s.clone())),
                _ => None,
            })
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

const BAD_UTF8: &[&[u8]] = &[
    &[0xff],
    &[0xfe],
    &[0xc0, 0xaf],
    &[0xed, 0xa0, 0x80],
    &[0xe2, 0x82],
    &[0x80],
    &[0xf4, 0x90, 0x80, 0x80],
    &[0xf8, 0x88, 0x80, 0x80, 0x80],
];

fn byte_mutation(m: Mutation, bytes: &mut Vec<u8>, rng: &mut Rng) -> String {
    match m {
        Mutation::BitFlip => {
            let n = rng.range(1, 3);
            let mut done = Vec::new();
            for _ in 0..n {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.index(bytes.len());
                let bit = if rng.chance(90) { rng.below(7) } else { 7 };
                bytes[at] ^= 1 << bit;
                done.push(format!("bit {bit} of byte {at}"));
            }
            format!("flipped {}", done.join(", "))
        }
        Mutation::Truncate => {
            let cut = rng.index(bytes.len());
            bytes.truncate(cut);
            format!("cut to {cut} bytes")
        }
        Mutation::InvalidUtf8 => {
            let seq = rng.pick(BAD_UTF8).copied().unwrap_or(&[0xff]);
            let at = rng.index(bytes.len() + 1);
            let overwrite = rng.chance(50);
            if overwrite {
                let end = (at + seq.len()).min(bytes.len());
                bytes.splice(at..end, seq.iter().copied());
            } else {
                bytes.splice(at..at, seq.iter().copied());
            }
            format!("{} {seq:02x?} at byte {at}", if overwrite { "wrote" } else { "inserted" })
        }
        Mutation::Bom => {
            bytes.splice(0..0, [0xef, 0xbb, 0xbf]);
            "byte-order mark prepended".into()
        }
        _ => "not a byte mutation".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::rng::Stream;

    fn base() -> Value {
        serde_json::json!({"type": "heads", "id": 5, "authors": ["d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"]})
    }

    #[test]
    fn same_rng_same_bytes() {
        for i in 0..200 {
            let muts = pick_mutations(&mut Rng::for_case(1, i, Stream::Plan));
            let a = apply(&base(), &muts, &mut Rng::for_case(1, i, Stream::Mutate), &[base()]);
            let b = apply(&base(), &muts, &mut Rng::for_case(1, i, Stream::Mutate), &[base()]);
            assert_eq!(a.message, b.message);
            assert_eq!(a.details, b.details);
        }
    }

    #[test]
    fn each_mutation_does_what_it_says() {
        let b = base();
        for (m, _) in WEIGHTED {
            for i in 0..20 {
                let out = apply(&b, &[*m], &mut Rng::for_case(2, i, Stream::Mutate), std::slice::from_ref(&b));
                let text = String::from_utf8_lossy(&out.message.bytes).into_owned();
                match m {
                    Mutation::Binary => assert_eq!(out.message.opcode, Opcode::Binary),
                    Mutation::Fragment => assert!(!out.message.cuts.is_empty()),
                    Mutation::LongString => {
                        let n = out.message.bytes.len();
                        assert!((65496..=131072).contains(&n), "{n}");
                    }
                    Mutation::DuplicateMember => {
                        assert!(kith_proto::frame::check_frame_json(&text).is_err(), "{text}")
                    }
                    Mutation::Reorder => {
                        assert_eq!(serde_json::from_str::<Value>(&text).expect("json"), b)
                    }
                    Mutation::Bom => assert!(out.message.bytes.starts_with(&[0xef, 0xbb, 0xbf])),
                    Mutation::Tweak => {
                        assert!(kith_proto::frame::check_frame_json(&text).is_ok(), "{text}");
                        assert_ne!(serde_json::from_str::<Value>(&text).expect("json"), b);
                    }
                    Mutation::InvalidUtf8 => assert!(std::str::from_utf8(&out.message.bytes).is_err()),
                    _ => {}
                }
            }
        }
    }
}
