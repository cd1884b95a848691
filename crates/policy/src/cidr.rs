//! IP address ranges for `IpAddress` / `NotIpAddress`: `203.0.113.0/24`,
//! `2001:db8::/32`, or a single address. An IPv4-mapped IPv6 request address
//! (`::ffff:203.0.113.7`) is compared as the IPv4 address it carries.

use std::net::IpAddr;

/// A CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::y/n` or a bare address (a /32 or /128).
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
        };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether the address `ip` lies in the block.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(c: &str, ip: &str) -> bool {
        Cidr::parse(c).unwrap().contains(ip.parse().unwrap())
    }

    #[test]
    fn ranges() {
        assert!(has("10.0.0.0/8", "10.1.2.3"));
        assert!(!has("10.0.0.0/8", "11.0.0.1"));
        assert!(has("0.0.0.0/0", "8.8.8.8"));
        assert!(has("203.0.113.7", "203.0.113.7"));
        assert!(!has("203.0.113.7", "203.0.113.8"));
        assert!(has("203.0.113.9/24", "203.0.113.200"));
        assert!(has("2001:db8::/32", "2001:db8:1::1"));
        assert!(!has("2001:db8::/32", "2001:db9::1"));
        assert!(has("::/0", "::1"));
        assert!(!has("10.0.0.0/8", "::1"));
        assert!(has("10.0.0.0/8", "::ffff:10.0.0.1"));
    }

    #[test]
    fn invalid() {
        for bad in ["", "10.0.0.0/33", "10.0.0/8", "::/129", "10.0.0.0/", "10.0.0.0/x", "host"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }
}
