//! A JSON tree that can hold what `serde_json::Value` cannot: duplicate members, raw number
//! tokens (`1e400`, `-0`, `2^64`) and raw string tokens (lone surrogate escapes), written back
//! to text exactly as built.

use serde_json::Value;

/// One JSON value as the fuzzer writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, written as this raw token.
    Num(String),
    /// A string, escaped when written.
    Str(String),
    /// A string written as this raw token, quotes included (e.g. `"\ud800"`).
    RawStr(String),
    /// An array.
    Arr(Vec<J>),
    /// An object; members keep their order and may repeat a key.
    Obj(Vec<(String, J)>),
}

/// Where a value sits in a tree: the child index at each level.
pub type Path = Vec<usize>;

impl J {
    /// The tree of a `serde_json` value.
    pub fn from_value(v: &Value) -> J {
        match v {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => J::Num(n.to_string()),
            Value::String(s) => J::Str(s.clone()),
            Value::Array(a) => J::Arr(a.iter().map(J::from_value).collect()),
            Value::Object(o) => J::Obj(o.iter().map(|(k, v)| (k.clone(), J::from_value(v))).collect()),
        }
    }

    /// The JSON text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s) => out.push_str(&quote(s)),
            J::RawStr(s) => out.push_str(s),
            J::Arr(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.write(out);
                }
                out.push(']');
            }
            J::Obj(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&quote(k));
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    /// The JSON kind, for type swaps: 0 null, 1 bool, 2 number, 3 string, 4 array, 5 object.
    pub fn kind(&self) -> u8 {
        match self {
            J::Null => 0,
            J::Bool(_) => 1,
            J::Num(_) => 2,
            J::Str(_) | J::RawStr(_) => 3,
            J::Arr(_) => 4,
            J::Obj(_) => 5,
        }
    }

    /// Every path in the tree, root (the empty path) first, in document order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, here: &mut Path, out: &mut Vec<Path>) {
        out.push(here.clone());
        let children: Vec<&J> = match self {
            J::Arr(items) => items.iter().collect(),
            J::Obj(members) => members.iter().map(|(_, v)| v).collect(),
            _ => Vec::new(),
        };
        for (i, c) in children.into_iter().enumerate() {
            here.push(i);
            c.collect(here, out);
            here.pop();
        }
    }

    /// The value at `path`.
    pub fn get(&self, path: &[usize]) -> Option<&J> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        match self {
            J::Arr(items) => items.get(*first)?.get(rest),
            J::Obj(members) => members.get(*first)?.1.get(rest),
            _ => None,
        }
    }

    /// The value at `path`, mutably.
    pub fn get_mut(&mut self, path: &[usize]) -> Option<&mut J> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        match self {
            J::Arr(items) => items.get_mut(*first)?.get_mut(rest),
            J::Obj(members) => members.get_mut(*first)?.1.get_mut(rest),
            _ => None,
        }
    }

    /// The member key of the value at `path`, if its parent is an object.
    pub fn key_at(&self, path: &[usize]) -> Option<&str> {
        let (last, parent) = path.split_last()?;
        match self.get(parent)? {
            J::Obj(members) => members.get(*last).map(|(k, _)| k.as_str()),
            _ => None,
        }
    }
}

/// A string as a JSON string token.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_holds_what_values_cannot() {
        let v: Value = serde_json::from_str(r#"{"a":[1,{"b":"x\"y"}],"c":null,"d":true}"#).expect("json");
        let j = J::from_value(&v);
        assert_eq!(serde_json::from_str::<Value>(&j.to_text()).expect("json"), v);
        assert_eq!(j.paths().len(), 7);
        assert_eq!(j.key_at(&[0]), Some("a"));
        assert_eq!(j.get(&[0, 1, 0]), Some(&J::Str("x\"y".into())));
        let dup = J::Obj(vec![("a".into(), J::Num("1e400".into())), ("a".into(), J::RawStr(r#""\ud800""#.into()))]);
        assert_eq!(dup.to_text(), r#"{"a":1e400,"a":"\ud800"}"#);
    }
}
