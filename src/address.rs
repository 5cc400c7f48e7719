//! Spec chapter 5, "Node addresses": `/ip4/127.0.0.1/ws/7777/<node key>`, after the design
//! notes' `/ipv4/ws/port/$server`. The address carries the node's peer key so a client knows
//! whose challenge signature to accept ([HS-*]).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use thiserror::Error;

use crate::encoding::PublicKey;

/// The host part of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// `/ip4/<dotted quad>`
    Ip4(Ipv4Addr),
    /// `/ip6/<RFC 5952 text>`
    Ip6(Ipv6Addr),
    /// `/dns/<name>`
    Dns(String),
}

/// A parsed node address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    /// Where to connect.
    pub host: Host,
    /// `wss` (true) or `ws` (false).
    pub secure: bool,
    /// TCP port.
    pub port: u16,
    /// The node's peer key: the only key whose challenge the client accepts.
    pub node: PublicKey,
}

/// Why an address text was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid node address: {0}")]
pub struct AddressError(String);

impl NodeAddress {
    /// The websocket URL to dial: `ws://host:port/` or `wss://host:port/`.
    pub fn url(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        match &self.host {
            Host::Ip4(a) => format!("{scheme}://{a}:{}/", self.port),
            Host::Ip6(a) => format!("{scheme}://[{a}]:{}/", self.port),
            Host::Dns(n) => format!("{scheme}://{n}:{}/", self.port),
        }
    }
}

impl FromStr for NodeAddress {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |m: &str| AddressError(format!("{m}: {}", crate::envelope::quote(text)));
        let parts: Vec<&str> = text.split('/').collect();
        let [empty, family, host, scheme, port, key] = parts[..] else {
            return Err(err("expected /FAMILY/HOST/ws|wss/PORT/NODEKEY"));
        };
        if !empty.is_empty() {
            return Err(err("must start with /"));
        }
        let host = match family {
            "ip4" => Host::Ip4(host.parse().map_err(|_| err("bad IPv4 address"))?),
            "ip6" => Host::Ip6(host.parse().map_err(|_| err("bad IPv6 address"))?),
            "dns" => {
                if !is_dns_name(host) {
                    return Err(err("bad DNS name (labels of 1-63 lowercase letters, digits, inner '-')"));
                }
                Host::Dns(host.to_owned())
            }
            _ => return Err(err("family must be ip4, ip6 or dns")),
        };
        let secure = match scheme {
            "ws" => false,
            "wss" => true,
            _ => return Err(err("scheme must be ws or wss")),
        };
        if port.is_empty() || port.starts_with('0') || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("port must be decimal without leading zeros"));
        }
        let port: u16 = port.parse().map_err(|_| err("port out of range"))?;
        if port == 0 {
            return Err(err("port must not be 0"));
        }
        let node = PublicKey::parse(key).map_err(|e| err(&format!("node key: {e}")))?;
        let canonical = NodeAddress { host, secure, port, node };
        if canonical.to_string() != text {
            return Err(err("not in canonical form"));
        }
        Ok(canonical)
    }
}

/// A DNS name as chapter 5 §2.1 allows it: at most 253 characters, dot-separated labels of 1
/// to 63 characters of `a-z 0-9 -`, no label starting or ending with `-`.
fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "wss" } else { "ws" };
        match &self.host {
            Host::Ip4(a) => write!(f, "/ip4/{a}")?,
            Host::Ip6(a) => write!(f, "/ip6/{a}")?,
            Host::Dns(n) => write!(f, "/dns/{n}")?,
        }
        write!(f, "/{scheme}/{}/{}", self.port, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    #[test]
    fn parses_and_maps_to_urls() {
        let a: NodeAddress = format!("/ip4/127.0.0.1/ws/7777/{KEY}").parse().expect("ip4");
        assert_eq!(a.url(), "ws://127.0.0.1:7777/");
        let a: NodeAddress = format!("/ip6/::1/wss/443/{KEY}").parse().expect("ip6");
        assert_eq!(a.url(), "wss://[::1]:443/");
        let a: NodeAddress = format!("/dns/kith.example/wss/443/{KEY}").parse().expect("dns");
        assert_eq!(a.url(), "wss://kith.example:443/");
    }

    #[test]
    fn refuses_other_forms() {
        for bad in [
            format!("/ip4/127.0.0.1/ws/07777/{KEY}"),
            format!("/ip4/127.0.0.1/http/7777/{KEY}"),
            format!("/ip6/0:0:0:0:0:0:0:1/ws/7777/{KEY}"),
            format!("/dns/Kith.Example/ws/7777/{KEY}"),
            format!("/ip4/127.0.0.1/ws/7777/{}", KEY.to_uppercase()),
            format!("ip4/127.0.0.1/ws/7777/{KEY}"),
            format!("/ip4/127.0.0.1/ws/7777/{KEY}/"),
            format!("/dns/a..b/ws/7777/{KEY}"),
            format!("/dns/-a.org/ws/7777/{KEY}"),
            format!("/dns/a-.org/ws/7777/{KEY}"),
            format!("/dns/org./ws/7777/{KEY}"),
            format!("/dns/{}.org/ws/7777/{KEY}", "a".repeat(64)),
        ] {
            assert!(bad.parse::<NodeAddress>().is_err(), "{bad}");
        }
    }
}
