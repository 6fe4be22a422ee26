//! The server under test: its URL, checked to be on this machine before anything is sent.
//!
//! A load test opens thousands of connections; pointed at someone else's server it is an
//! attack. So only loopback hosts are accepted (127.0.0.0/8, ::1, `localhost`), and
//! `localhost` must also resolve to loopback addresses only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use anyhow::{bail, Result};

/// A parsed `http://host[:port][/base]` URL whose host is loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as written (`127.0.0.1`, `localhost`, `::1`), for the `Host` header.
    pub host: Host,
    /// The port (80 when absent).
    pub port: u16,
    /// Path prefix before `/api/v1/...`, without a trailing slash (usually empty).
    pub base_path: String,
}

/// A loopback host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A literal loopback address.
    Ip(IpAddr),
    /// `localhost`, resolved at connect time.
    Localhost,
}

impl Target {
    /// Parses and checks `url`. Only `http` (the server speaks plain HTTP on loopback).
    ///
    /// # Errors
    /// Another scheme, a malformed authority, or a host that is not loopback.
    pub fn parse(url: &str) -> Result<Self> {
        let refuse = |why: &str| -> anyhow::Error { anyhow::anyhow!("--url {url:?}: {why}") };
        let trimmed = url.trim();
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return Err(refuse("expected http://HOST[:PORT]"));
        };
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(refuse(
                "only http:// is supported (the server under test is on loopback)",
            ));
        }
        if rest.contains(['?', '#']) {
            return Err(refuse(
                "no query or fragment expected: give the server's base URL",
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(refuse("credentials in the URL are not supported"));
        }
        let (host_text, port_text) = split_host_port(authority).map_err(|e| refuse(&e))?;
        let host = loopback_host(host_text).map_err(|e| refuse(&e))?;
        let port = match port_text {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| refuse(&format!("bad port {p:?}")))?,
        };
        Ok(Self {
            host,
            port,
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        match self.host {
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            Host::Ip(IpAddr::V4(ip)) => format!("{ip}:{}", self.port),
            Host::Localhost => format!("localhost:{}", self.port),
        }
    }

    /// The address to connect to. `localhost` is resolved once and must give only loopback
    /// addresses (IPv4 preferred, as servers usually bind 127.0.0.1).
    ///
    /// # Errors
    /// `localhost` resolving to a non-loopback address.
    pub fn resolve(&self) -> Result<SocketAddr> {
        let ip = match self.host {
            Host::Ip(ip) => ip,
            Host::Localhost => {
                let addrs: Vec<SocketAddr> = match ("localhost", self.port).to_socket_addrs() {
                    Ok(a) => a.collect(),
                    // No resolver answer: localhost is 127.0.0.1 by definition (RFC 6761).
                    Err(_) => Vec::new(),
                };
                if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                    bail!(
                        "--url: localhost resolves to {}, which is not a loopback address",
                        bad.ip()
                    );
                }
                addrs
                    .iter()
                    .map(SocketAddr::ip)
                    .find(IpAddr::is_ipv4)
                    .or_else(|| addrs.first().map(SocketAddr::ip))
                    .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
        };
        Ok(SocketAddr::new(ip, self.port))
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.is_empty() {
        return Err("no host".into());
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed [ in the host".to_owned())?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected {after:?} after the host")),
            },
        };
    }
    match authority.split_once(':') {
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port))),
        Some(_) => Err("an IPv6 address must be in brackets, e.g. http://[::1]:8080".into()),
        None => Ok((authority, None)),
    }
}

/// Accepts only loopback: an address in 127.0.0.0/8, `::1`, or the name `localhost`.
fn loopback_host(host: &str) -> Result<Host, String> {
    let refused = || {
        format!(
            "refusing to load-test {host}: only loopback hosts are allowed \
             (127.0.0.0/8, [::1] or localhost)"
        )
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if ip.is_loopback() {
            Ok(Host::Ip(ip))
        } else {
            Err(refused())
        };
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.eq_ignore_ascii_case("localhost") {
        Ok(Host::Localhost)
    } else {
        Err(refused())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accepts_loopback() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(t.host, Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(t.port, 8080);
        assert_eq!(t.base_path, "");
        assert_eq!(t.host_header(), "127.0.0.1:8080");
        assert_eq!(t.resolve().unwrap(), "127.0.0.1:8080".parse().unwrap());

        let t = Target::parse("http://localhost:9000/").unwrap();
        assert_eq!(t.host, Host::Localhost);
        assert_eq!(t.host_header(), "localhost:9000");
        assert!(t.resolve().unwrap().ip().is_loopback());

        let t = Target::parse("http://[::1]:8080/prefix/").unwrap();
        assert_eq!(t.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(t.base_path, "/prefix");
        assert_eq!(t.host_header(), "[::1]:8080");

        let t = Target::parse("HTTP://127.1.2.3").unwrap();
        assert_eq!(t.port, 80);
        assert!(Target::parse("http://LOCALHOST.:1").is_ok());
    }

    #[test]
    fn refuses_other_hosts() {
        for url in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "http://example.com:8080/api",
            "http://192.168.1.1",
            "http://[2001:db8::1]:80",
            "http://0.0.0.0:8080",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            let err = Target::parse(url).unwrap_err().to_string();
            assert!(err.contains("only loopback hosts"), "{url}: {err}");
        }
    }

    #[test]
    fn refuses_malformed() {
        for url in [
            "127.0.0.1:8080",
            "https://127.0.0.1",
            "ftp://127.0.0.1",
            "http://",
            "http://127.0.0.1:notaport",
            "http://127.0.0.1:0",
            "http://127.0.0.1:70000",
            "http://user@127.0.0.1",
            "http://::1",
            "http://[::1",
            "http://127.0.0.1/?x=1",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }
}
