//! Which hosts a run may send HTTP requests to: `scheme://host[:port]` patterns, as a
//! plugin's `allowed_outbound_hosts` and the operator's list of the same name give them.
//!
//! A pattern names a scheme (`http` or `https`), a host and a port (the scheme's own when
//! left out). The host is a name or an IP address, `*.example.com` (any subdomain of
//! `example.com`, not `example.com` itself) or `*` (any host). A request is allowed when a
//! pattern matches its scheme, host and port.

use std::fmt;

/// One allowed destination: scheme, host (maybe a wildcard) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: String,
    host: Host,
    port: u16,
}

/// The host part of a [`HostPattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// Any host.
    Any,
    /// Any subdomain of this domain (stored with its leading dot: `.example.com`).
    Subdomains(String),
    /// This host only (lowercase).
    Exact(String),
}

impl Host {
    fn matches(&self, host: &str) -> bool {
        match self {
            Host::Any => true,
            Host::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
            Host::Exact(name) => name == host,
        }
    }

    /// The hosts both match, as one host pattern, or `None` when they share none.
    fn intersect(&self, other: &Host) -> Option<Host> {
        match (self, other) {
            (Host::Any, host) | (host, Host::Any) => Some(host.clone()),
            (Host::Exact(name), host) | (host, Host::Exact(name)) => {
                host.matches(name).then(|| Host::Exact(name.clone()))
            }
            (Host::Subdomains(a), Host::Subdomains(b)) => {
                let (longer, shorter) = if a.len() >= b.len() { (a, b) } else { (b, a) };
                longer
                    .ends_with(shorter.as_str())
                    .then(|| Host::Subdomains(longer.clone()))
            }
        }
    }
}

/// The port a scheme uses when a URL names none.
fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

impl HostPattern {
    /// Parses `scheme://host[:port]`.
    ///
    /// # Errors
    /// A message saying what is wrong with `text` and what form is expected.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let invalid = |why: &str| {
            format!(
                "`{text}` is not a host pattern ({why}); expected scheme://host[:port], e.g. https://api.example.com or http://127.0.0.1:8080"
            )
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| invalid("no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(invalid("the scheme must be http or https"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(invalid("only a host and port, no path, query or user"));
        }
        let (host, port) = split_port(rest).map_err(|why| invalid(&why))?;
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            Host::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            valid_name(domain).map_err(|why| invalid(&why))?;
            Host::Subdomains(format!(".{domain}"))
        } else {
            valid_name(&host).map_err(|why| invalid(&why))?;
            Host::Exact(host)
        };
        Ok(HostPattern {
            host,
            port: port.unwrap_or_else(|| default_port(scheme)),
            scheme: scheme.to_owned(),
        })
    }

    /// Whether a request to `scheme://host:port` matches this pattern (`port` `None`
    /// meaning the scheme's own).
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        self.scheme == scheme
            && self.port == port.unwrap_or_else(|| default_port(scheme))
            && self.host.matches(&host.to_ascii_lowercase())
    }

    /// The destinations both patterns allow, as one pattern, or `None`.
    pub fn intersect(&self, other: &HostPattern) -> Option<HostPattern> {
        if self.scheme != other.scheme || self.port != other.port {
            return None;
        }
        Some(HostPattern {
            scheme: self.scheme.clone(),
            host: self.host.intersect(&other.host)?,
            port: self.port,
        })
    }
}

/// Splits `host[:port]` (an IPv6 address in brackets); the port must be a number.
fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = match text.strip_prefix('[') {
        Some(inner) => {
            let (address, after) = inner
                .split_once(']')
                .ok_or("an IPv6 address needs its closing bracket")?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or("junk after the address")?),
            };
            return parse_port(port).map(|port| (&text[..address.len() + 2], port));
        }
        None => match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        },
    };
    Ok((host, parse_port(port)?))
}

fn parse_port(port: Option<&str>) -> Result<Option<u16>, String> {
    port.map(|port| {
        port.parse::<u16>()
            .ok()
            .filter(|&port| port != 0)
            .ok_or_else(|| format!("port `{port}` is not a number from 1 to 65535"))
    })
    .transpose()
}

/// Checks a host name or address: letters, digits, `-`, `.` (and `:` in brackets).
fn valid_name(name: &str) -> Result<(), String> {
    let bracketed = name.starts_with('[') && name.ends_with(']');
    let ok = !name.is_empty()
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || c == '-' || c == '.' || (bracketed && "[]:".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` is not a host name or address"))
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            Host::Any => "*".to_owned(),
            Host::Subdomains(suffix) => format!("*{suffix}"),
            Host::Exact(name) => name.clone(),
        };
        write!(f, "{}://{host}:{}", self.scheme, self.port)
    }
}

/// Parses every pattern of a list, naming the setting in the error.
///
/// # Errors
/// The first pattern that does not parse.
pub fn parse_all(setting: &str, patterns: &[String]) -> Result<Vec<HostPattern>, String> {
    patterns
        .iter()
        .map(|text| HostPattern::parse(text).map_err(|e| format!("{setting}: {e}")))
        .collect()
}

/// What a plugin may reach under the operator's list: every pattern of `plugin`
/// intersected with the operator's, and the plugin's patterns that the operator's do not
/// cover whole (reached only in part, or not at all).
pub fn capped(plugin: &[HostPattern], operator: &[HostPattern]) -> (Vec<HostPattern>, Vec<String>) {
    let mut allowed = Vec::new();
    let mut refused = Vec::new();
    for wanted in plugin {
        let within: Vec<HostPattern> = operator
            .iter()
            .filter_map(|o| wanted.intersect(o))
            .collect();
        if !within.contains(wanted) {
            refused.push(wanted.to_string());
        }
        for pattern in within {
            if !allowed.contains(&pattern) {
                allowed.push(pattern);
            }
        }
    }
    (allowed, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> HostPattern {
        HostPattern::parse(text).unwrap()
    }

    #[test]
    fn patterns_match_scheme_host_and_port() {
        let local = pattern("http://127.0.0.1:8080");
        assert!(local.allows("http", "127.0.0.1", Some(8080)));
        assert!(!local.allows("http", "127.0.0.1", Some(8081)));
        assert!(!local.allows("https", "127.0.0.1", Some(8080)));
        assert!(!local.allows("http", "127.0.0.2", Some(8080)));
        let api = pattern("https://API.example.com/");
        assert!(api.allows("https", "api.example.com", None));
        assert!(api.allows("https", "Api.Example.com", Some(443)));
        assert!(!api.allows("https", "api.example.com", Some(8443)));
        let subdomains = pattern("https://*.example.com");
        assert!(subdomains.allows("https", "a.b.example.com", None));
        assert!(!subdomains.allows("https", "example.com", None));
        assert!(!subdomains.allows("https", "badexample.com", None));
        assert!(pattern("http://*:80").allows("http", "anything", None));
        assert!(pattern("http://[::1]:9000").allows("http", "[::1]", Some(9000)));
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        for (text, expected) in [
            ("example.com", "no scheme"),
            ("ftp://example.com", "http or https"),
            ("https://example.com/path", "no path"),
            ("https://user@example.com", "no path"),
            ("https://example.com:0", "port"),
            ("https://example.com:http", "port"),
            ("https://", "not a host name"),
            ("https://exa mple.com", "not a host name"),
            ("https://*.", "not a host name"),
            ("https://a.*.com", "not a host name"),
        ] {
            let error = HostPattern::parse(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains("scheme://host[:port]"), "{error}");
        }
        let error = parse_all("allowed_outbound_hosts", &["nope".into()]).unwrap_err();
        assert!(
            error.starts_with("allowed_outbound_hosts: `nope`"),
            "{error}"
        );
    }

    #[test]
    fn the_operators_list_caps_the_plugins() {
        let plugin = [
            pattern("https://api.example.com"),
            pattern("https://*.corp.net"),
            pattern("http://127.0.0.1:8080"),
            pattern("https://evil.org"),
        ];
        let operator = [
            pattern("https://*.example.com"),
            pattern("https://build.corp.net"),
            pattern("http://*:8080"),
        ];
        let (allowed, refused) = capped(&plugin, &operator);
        let allowed: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        assert_eq!(
            allowed,
            [
                "https://api.example.com:443",
                "https://build.corp.net:443",
                "http://127.0.0.1:8080"
            ]
        );
        assert_eq!(refused, ["https://*.corp.net:443", "https://evil.org:443"]);
        assert_eq!(capped(&plugin, &[]).0, []);
        assert_eq!(capped(&[], &operator), (vec![], vec![]));
    }
}
