//! Guarding HTTP exports against server-side request forgery: the host must
//! be allowlisted, every address it resolves to must be public (or
//! explicitly allowed), and the connection goes to the address that was
//! checked, so a DNS answer cannot change between check and use.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::Url;
use sfn_task::TaskError;

use crate::config::Config;

/// A URL cleared for fetching, with the address to connect to. Only
/// [`vet`] makes one (the fields are private), so holding a `Vetted` means
/// the checks ran on exactly this URL and address.
#[derive(Debug, Clone)]
pub struct Vetted {
    url: Url,
    addr: SocketAddr,
}

impl Vetted {
    /// The URL, as checked (a trailing dot of its host removed).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Its host as the URL spells it (the parser lowercases http and https
    /// hosts), IPv6 without brackets.
    pub fn host(&self) -> &str {
        self.url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
    }

    /// The checked address the connection must use.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn invalid(reason: impl std::fmt::Display) -> TaskError {
    TaskError::invalid_input(format!("source.url: {reason}"))
}

/// Parses `raw`, checks it against `BACKUP_EXPORT_HOSTS` and resolves it,
/// refusing loopback, private, link-local (169.254.169.254 included),
/// unspecified, multicast and other special addresses unless listed in
/// `BACKUP_ALLOWED_ADDRESSES`.
pub async fn vet(raw: &str, config: &Config) -> Result<Vetted, TaskError> {
    vet_with(raw, config, |host, port| async move {
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .map(Iterator::collect)
    })
    .await
}

/// [`vet`] with the name resolution passed in, so the checks on what a name
/// resolves to can be tested with any answer.
pub(crate) async fn vet_with<F, Fut>(
    raw: &str,
    config: &Config,
    resolve: F,
) -> Result<Vetted, TaskError>
where
    F: FnOnce(String, u16) -> Fut,
    Fut: Future<Output = std::io::Result<Vec<SocketAddr>>>,
{
    let mut url = Url::parse(raw).map_err(|_| invalid("not a URL"))?;
    // `name.` and `name` are one host to DNS: one allowlist entry, and the
    // URL must carry the same spelling the connection is pinned to below.
    if let Some(bare) = url
        .host_str()
        .and_then(|h| h.strip_suffix('.'))
        .map(str::to_owned)
    {
        url.set_host(Some(&bare))
            .map_err(|_| invalid("not a valid host"))?;
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("only http and https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials in the URL are not allowed"));
    }
    // The allowlist is compared with the host as the URL parser normalised
    // it (`http://2852039166/` is `169.254.169.254`, an IPv6 host is in its
    // compressed form), never with the raw text: what is compared is what
    // is resolved and connected to.
    let listed = url.host_str().ok_or_else(|| invalid("no host"))?.to_owned();
    let host = listed.trim_start_matches('[').trim_end_matches(']');
    let port = url
        .port_or_known_default()
        .ok_or_else(|| invalid("no port"))?;
    // `listed` keeps an IPv6 host's brackets, so an entry `::1:8080` (an
    // address in its own right) is never read as `[::1]:8080`, nor the
    // other way round.
    let allowed = config
        .export_hosts
        .iter()
        .any(|h| *h == listed || *h == format!("{listed}:{port}"));
    if !allowed {
        return Err(invalid("host not in BACKUP_EXPORT_HOSTS"));
    }
    let addrs: Vec<SocketAddr> = resolve(host.to_owned(), port)
        .await
        .map_err(|e| TaskError::retryable(format!("source.url: resolving the host failed: {e}")))?;
    let first = *addrs
        .first()
        .ok_or_else(|| TaskError::retryable("source.url: the host has no address"))?;
    // Every answer must pass: a name that resolves to one public and one
    // private address is refused.
    for addr in &addrs {
        if !config.allowed_addresses.contains(&addr.ip()) && is_special(addr.ip()) {
            return Err(invalid(format!(
                "the host resolves to a non-public address ({})",
                addr.ip()
            )));
        }
    }
    Ok(Vetted { url, addr: first })
}

/// Whether `ip` is anything but a public unicast address.
pub fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_special_v4(v4);
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local, incl. fd00:ec2::254
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] == 0x64 && seg[1] == 0xff9b) // NAT64 can reach IPv4 internals
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || seg[0] == 0x2002 // 6to4 embeds an IPv4 address
                || (seg[0] == 0x2001 && seg[1] == 0) // Teredo embeds one too
                || (seg[0] == 0 && seg[1] == 0 && seg[2] == 0 && seg[3] == 0 && seg[4] == 0 && seg[5] == 0) // IPv4-compatible
        }
    }
}

fn is_special_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16: instance metadata
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert!(is_special(ip), "{ip} must be refused");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert!(!is_special(ip), "{ip} is public");
        }
    }

    fn config(hosts: &str, allowed: &str) -> Config {
        Config::from_lookup(|k| match k {
            "BACKUP_BUCKET" => Some("b".into()),
            "BACKUP_EXPORT_HOSTS" => Some(hosts.into()),
            "BACKUP_ALLOWED_ADDRESSES" => Some(allowed.into()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Panics unless `result` is `InvalidInput` saying `why`; `what` names
    /// the case in the message.
    #[track_caller]
    fn assert_invalid(result: &Result<Vetted, TaskError>, why: &str, what: &str) {
        match result {
            Err(TaskError::InvalidInput(m)) => assert!(m.contains(why), "{what}: {m}"),
            other => panic!("{what}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn allowlist_and_addresses() {
        let c = config("localhost, 127.0.0.1:8080, 169.254.169.254", "");
        for (url, why) in [
            ("http://example.org/x", "not in"),
            ("ftp://localhost/x", "only http"),
            ("http://user:pw@localhost/x", "credentials"),
            ("http://127.0.0.1:8081/x", "not in"),
            ("http://localhost/x", "non-public"),
            ("http://127.0.0.1:8080/x", "non-public"),
            ("http://169.254.169.254/latest/meta-data/", "non-public"),
            ("not a url", "not a URL"),
        ] {
            assert_invalid(&vet(url, &c).await, why, url);
        }
        let allowed = config("127.0.0.1:8080", "127.0.0.1");
        let vetted = vet("http://127.0.0.1:8080/export", &allowed)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(vetted.addr.to_string(), "127.0.0.1:8080");
    }

    /// A resolver that answers every name with `answer`.
    fn resolving_to(
        answer: &'static [&'static str],
    ) -> impl FnOnce(String, u16) -> std::future::Ready<std::io::Result<Vec<SocketAddr>>> {
        move |_, port| {
            std::future::ready(Ok(answer
                .iter()
                .map(|ip| SocketAddr::new(ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}")), port))
                .collect()))
        }
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        let c = config("exports.example.com", "");
        let url = "https://exports.example.com/billing.ndjson";
        for answer in [
            &["169.254.169.254"][..],
            &["10.0.0.7"],
            &["127.0.0.1"],
            &["fd00:ec2::254"],
            &["fe80::1"],
            &["::ffff:169.254.169.254"],
            &["::ffff:10.0.0.1"],
            &["100.100.100.200"],
            // One public and one internal answer: a rebinding attempt.
            &["93.184.216.34", "169.254.169.254"],
            &["2606:4700:4700::1111", "::1"],
        ] {
            let refused = vet_with(url, &c, resolving_to(answer)).await;
            assert_invalid(&refused, "non-public", &format!("{answer:?}"));
        }
        let vetted = vet_with(url, &c, resolving_to(&["93.184.216.34"]))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(vetted.addr.to_string(), "93.184.216.34:443");
        assert_eq!(vetted.host(), "exports.example.com");
        // The connection is pinned to the checked address by host name: the
        // URL must spell the host exactly so, trailing dot or not.
        let dotted = vet_with(
            "https://exports.example.com./x",
            &c,
            resolving_to(&["93.184.216.34"]),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dotted.url().host_str(), Some("exports.example.com"));

        let failing = |_: String, _: u16| {
            std::future::ready(Err::<Vec<SocketAddr>, _>(std::io::Error::other(
                "no such host",
            )))
        };
        assert!(matches!(
            vet_with(url, &c, failing).await,
            Err(TaskError::Retryable(_))
        ));
        let empty = resolving_to(&[]);
        assert!(matches!(
            vet_with(url, &c, empty).await,
            Err(TaskError::Retryable(_))
        ));
    }

    /// A resolver that answers IP literals with themselves and names with
    /// `names`, as a real one would, without touching the network.
    fn literal_or(
        names: &'static [&'static str],
    ) -> impl FnOnce(String, u16) -> std::future::Ready<std::io::Result<Vec<SocketAddr>>> {
        move |host, port| match host.parse::<IpAddr>() {
            Ok(ip) => std::future::ready(Ok(vec![SocketAddr::new(ip, port)])),
            Err(_) => resolving_to(names)(host, port),
        }
    }

    /// Every way of writing the metadata address (and loopback) a URL
    /// parser accepts.
    const SPELLINGS: &[&str] = &[
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://0xA9.0xFE.0xA9.0xFE/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://169.0xfe.43518/",
        "http://169.254.169.254./",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[0:0:0:0:0:ffff:a9fe:a9fe]/",
        "http://[::FFFF:A9FE:A9FE]/",
        "http://[fd00:ec2::254]/",
        "http://[FD00:EC2:0:0:0:0:0:254]/",
        "http://[::1]/",
        "http://[::]/",
        "http://0/",
        "http://127.1/",
        "http://LOCALHOST/",
        "http://localhost./",
        "http://LocalHost.:80/",
        "https://169.254.169.254:443/",
    ];

    #[tokio::test]
    async fn other_spellings_of_the_metadata_address_are_refused() {
        // Allowlisted in the form the URL parser normalises them to, every
        // spelling passes the allowlist and must be refused for its address.
        let normalised = config(
            "169.254.169.254, [::ffff:a9fe:a9fe], [fd00:ec2::254], [::1], [::], 0.0.0.0, \
             127.0.0.1, localhost",
            "",
        );
        for url in SPELLINGS {
            let refused = vet_with(url, &normalised, literal_or(&["127.0.0.1"])).await;
            assert_invalid(&refused, "non-public", url);
            // And the same through the real resolver (IP literals and
            // `localhost` resolve without a network).
            assert_invalid(&vet(url, &normalised).await, "non-public", url);
        }
        // Allowlisted as written, no spelling matches: the allowlist is
        // compared with the normalised host, never with the raw text, so an
        // entry `2852039166` cannot smuggle the metadata address in.
        let as_written = config(
            "2852039166, 0xa9fea9fe, 0xa9.0xfe.0xa9.0xfe, ::ffff:169.254.169.254, \
             [::ffff:169.254.169.254], [0:0:0:0:0:ffff:a9fe:a9fe]",
            "",
        );
        for url in [
            "http://2852039166/",
            "http://0xa9fea9fe/",
            "http://0xA9.0xFE.0xA9.0xFE/",
            "http://[::ffff:169.254.169.254]/",
            "http://[0:0:0:0:0:ffff:a9fe:a9fe]/",
        ] {
            let refused = vet_with(url, &as_written, literal_or(&[])).await;
            assert_invalid(&refused, "not in BACKUP_EXPORT_HOSTS", url);
        }
        // Even with the metadata address explicitly allowed as an address,
        // an unlisted spelling of it is still not an allowlisted host.
        let numeric = config("2852039166", "169.254.169.254");
        let url = "http://2852039166/";
        assert_invalid(&vet(url, &numeric).await, "not in BACKUP_EXPORT_HOSTS", url);
        // IPv6 zone ids are not something the URL parser accepts, in any
        // encoding.
        for url in [
            "http://[fe80::1%25eth0]/",
            "http://[fe80::1%eth0]/",
            "http://[fe80::a9fe:a9fe%251]/",
        ] {
            assert_invalid(&vet(url, &normalised).await, "not a URL", url);
        }
    }

    #[tokio::test]
    async fn names_that_embed_an_address_are_resolved_like_any_name() {
        // `169.254.169.254.nip.io` answers with the address it embeds: it is
        // a name like any other, resolved and refused for what it resolves to.
        let c = config("169.254.169.254.nip.io, a9fea9fe.nip.io", "");
        for url in [
            "http://169.254.169.254.nip.io/",
            "http://169.254.169.254.NIP.IO./latest",
            "http://a9fea9fe.nip.io/",
        ] {
            let refused = vet_with(url, &c, resolving_to(&["169.254.169.254"])).await;
            assert_invalid(&refused, "non-public", url);
            // Here (no network) the real lookup fails: retryable, never a pass.
            let real = vet(url, &c).await;
            assert!(
                matches!(
                    &real,
                    Err(TaskError::Retryable(_) | TaskError::InvalidInput(_))
                ),
                "{url}: {real:?}"
            );
        }
    }

    #[tokio::test]
    async fn ipv6_allowlist_entries_are_bracketed() {
        let c = config("[::1]:8080, ::1:9090", "::1, ::1:9090");
        let pinned = vet_with("http://[::1]:8080/x", &c, literal_or(&[]))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pinned.addr().to_string(), "[::1]:8080");
        assert_eq!(pinned.host(), "::1");
        for url in [
            // `[::1]:8080` allows port 8080 only.
            "http://[::1]:8081/x",
            "http://[::1]/x",
            // `::1:9090` is not read as `[::1]:9090`, nor as the address
            // `::1:9090` on any port.
            "http://[::1]:9090/x",
            "http://[::1:9090]/x",
        ] {
            let refused = vet_with(url, &c, literal_or(&[])).await;
            assert_invalid(&refused, "not in BACKUP_EXPORT_HOSTS", url);
        }
    }
}
