//! Guarded egress: where a delivery may go and how it is sent.
//!
//! - Only `https`; plain `http` only to hosts an operator lists for development
//!   ([`EgressPolicy::insecure_hosts`]). No user info in the URL, at most
//!   [`MAX_URL_CHARS`] characters.
//! - The host is resolved here and every address must be public: loopback, private,
//!   link-local (cloud metadata at 169.254.169.254), shared, documentation,
//!   multicast, unspecified and reserved addresses are refused (SSRF). The request then
//!   goes to the addresses checked, not to a second lookup (DNS rebinding).
//! - Redirects are not followed; the whole exchange has a timeout; at most
//!   [`EgressPolicy::max_response_bytes`] of the response are read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use url::Url;

/// The longest URL an endpoint may have.
pub const MAX_URL_CHARS: usize = 2_048;

/// Where deliveries may go and how long they may take.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    /// Hosts (as written in URLs, e.g. `127.0.0.1`, `localhost`) that may be reached over
    /// plain `http` and at non-public addresses: development and tests only.
    pub insecure_hosts: Vec<String>,
    /// The whole exchange's budget.
    pub timeout: Duration,
    /// Bytes of a response read (the rest is not waited for).
    pub max_response_bytes: usize,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            insecure_hosts: Vec::new(),
            timeout: Duration::from_secs(10),
            max_response_bytes: 1_024,
        }
    }
}

/// Why a URL is refused (its reason is what a client is told).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status, when one came back.
    pub status: Option<u16>,
    /// How long it took.
    pub latency: Duration,
    /// The first bytes of the body (lossy UTF-8).
    pub excerpt: Option<String>,
    /// Why there was no status (refused, unreachable, timed out).
    pub error: Option<String>,
}

impl Response {
    /// A 2xx answer.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

impl EgressPolicy {
    fn insecure(&self, host: &str) -> bool {
        self.insecure_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Checks an endpoint's URL as written (no lookup): what `createWebhookEndpoint`
    /// refuses at once.
    pub fn check_url(&self, raw: &str) -> Result<Url, Refused> {
        if raw.chars().count() > MAX_URL_CHARS {
            return Err(Refused(format!("at most {MAX_URL_CHARS} characters")));
        }
        if raw.chars().any(char::is_control) {
            return Err(Refused("control characters are not allowed".into()));
        }
        let url = Url::parse(raw).map_err(|e| Refused(format!("not a URL: {e}")))?;
        let host = url
            .host_str()
            .ok_or_else(|| Refused("the URL needs a host".into()))?
            .to_owned();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused("credentials in the URL are not allowed".into()));
        }
        if url.fragment().is_some() {
            return Err(Refused("a fragment is not sent: leave it out".into()));
        }
        match url.scheme() {
            "https" => {}
            "http" if self.insecure(&host) => {}
            _ => return Err(Refused("only https URLs are allowed".into())),
        }
        if !self.insecure(&host) {
            if let Some(ip) = literal_ip(&url)
                && !is_public(ip)
            {
                return Err(Refused("the address is not public".into()));
            }
            if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
                return Err(Refused("the address is not public".into()));
            }
        }
        Ok(url)
    }

    /// The addresses a delivery to `url` may connect to: all of the host's, if every one
    /// is public (or the host is listed as insecure).
    pub async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, Refused> {
        let host = url
            .host_str()
            .ok_or_else(|| Refused("the URL needs a host".into()))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Refused("the URL needs a port".into()))?;
        let addrs: Vec<SocketAddr> = match literal_ip(url) {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => tokio::time::timeout(self.timeout, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| Refused("the host name did not resolve in time".into()))?
                .map_err(|_| Refused("the host name does not resolve".into()))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Refused("the host name does not resolve".into()));
        }
        if !self.insecure(host) && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(Refused(
                "the host resolves to an address that is not public".into(),
            ));
        }
        Ok(addrs)
    }

    /// POSTs `body` with `headers` to `url` under this policy.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Response {
        let started = Instant::now();
        let refused = |reason: String| Response {
            status: None,
            latency: started.elapsed(),
            excerpt: None,
            error: Some(reason),
        };
        let url = match self.check_url(url) {
            Ok(url) => url,
            Err(Refused(reason)) => return refused(reason),
        };
        let addrs = match self.resolve(&url).await {
            Ok(addrs) => addrs,
            Err(Refused(reason)) => return refused(reason),
        };
        let host = url.host_str().unwrap_or_default().to_owned();
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .no_proxy()
            .resolve_to_addrs(&host, &addrs)
            .user_agent("platform-webhooks/1")
            .build()
        {
            Ok(client) => client,
            Err(e) => return refused(format!("client: {e}")),
        };
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let exchange = async {
            let mut response = request.send().await?;
            let status = response.status().as_u16();
            let mut read = Vec::new();
            while read.len() < self.max_response_bytes {
                match response.chunk().await {
                    Ok(Some(chunk)) => read.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
            read.truncate(self.max_response_bytes);
            Ok::<_, reqwest::Error>((status, read))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((status, read))) => Response {
                status: Some(status),
                latency: started.elapsed(),
                excerpt: (!read.is_empty()).then(|| String::from_utf8_lossy(&read).into_owned()),
                error: None,
            },
            Ok(Err(e)) => refused(describe(&e)),
            Err(_) => refused("timed out".into()),
        }
    }
}

/// A reqwest error without the URL (which may carry a token in its query).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "the exchange failed".into()
    }
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Whether a delivery may go to `ip`: a globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // NAT64 64:ff9b::/96 can reach IPv4 private space.
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)
        // IPv4-compatible ::/96 (deprecated).
        || ip.segments()[..6].iter().all(|s| *s == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "::a00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_https_public_and_without_credentials() {
        let policy = EgressPolicy::default();
        assert!(policy.check_url("https://hooks.example.com/in?t=1").is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/",
            "https://a.localhost/",
            "https://hooks.example.com/#x",
            "https://hooks.example.com/\u{0}",
            "not a url",
        ] {
            assert!(policy.check_url(bad).is_err(), "{bad}");
        }
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(policy.check_url(&long).is_err());
        let dev = EgressPolicy {
            insecure_hosts: vec!["127.0.0.1".into()],
            ..EgressPolicy::default()
        };
        assert!(dev.check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(dev.check_url("http://127.0.0.2/hook").is_err());
    }

    #[tokio::test]
    async fn a_private_address_is_refused_before_any_connection() {
        let policy = EgressPolicy::default();
        let url = Url::parse("https://10.0.0.1/hook").unwrap();
        assert!(policy.resolve(&url).await.is_err());
        let sent = policy.post("https://10.0.0.1/hook", &[], Vec::new()).await;
        assert_eq!(sent.status, None);
        assert_eq!(sent.error.as_deref(), Some("the address is not public"));
    }
}
