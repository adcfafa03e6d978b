//! Who may use the RPC: HTTP basic credentials when configured, and without them only
//! requests whose `Host` is this machine's (a web page elsewhere cannot reach a loopback
//! daemon through a DNS name it controls: the rebinding attack Transmission's host
//! whitelist stops). Pure functions over header values.

use base64::Engine as _;

/// A user name and password for HTTP basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.user)
    }
}

impl std::str::FromStr for Credentials {
    type Err = String;

    /// `USER:PASS` (the password may hold colons; neither part may be empty).
    fn from_str(s: &str) -> Result<Credentials, String> {
        match s.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => Ok(Credentials {
                user: user.into(),
                password: password.into(),
            }),
            _ => Err("expected USER:PASS with neither part empty".into()),
        }
    }
}

/// Compares without stopping at the first difference (the time taken tells nothing about
/// how much of a guess was right).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether an `Authorization` header value carries these credentials.
pub fn authorized(header: Option<&[u8]>, credentials: &Credentials) -> bool {
    let Some(value) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", credentials.user, credentials.password);
    same(&decoded, expected.as_bytes())
}

/// Whether a `Host` header names this machine by address or as `localhost` (any port).
/// A request without one (HTTP/1.0) passes: no browser sends such a request.
pub fn local_host(header: Option<&[u8]>) -> bool {
    let Some(host) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
        return header.is_none();
    };
    let host = host.trim();
    // "[::1]:9091", "127.0.0.1:9091", "localhost", "localhost.:9091".
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, _)) => inside,
            None => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || name.eq_ignore_ascii_case("localhost.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(text: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }

    #[test]
    fn basic_auth_takes_exactly_the_credentials() {
        let c: Credentials = "admin:se:cret".parse().unwrap();
        assert_eq!(c.password, "se:cret");
        assert!(authorized(Some(basic("admin:se:cret").as_bytes()), &c));
        assert!(authorized(Some(b"basic YWRtaW46c2U6Y3JldA=="), &c));
        assert!(!authorized(Some(basic("admin:se:cre").as_bytes()), &c));
        assert!(!authorized(Some(basic("admin:se:crett").as_bytes()), &c));
        assert!(!authorized(Some(b"Bearer YWRtaW46c2U6Y3JldA=="), &c));
        assert!(!authorized(Some(b"Basic !!!"), &c));
        assert!(!authorized(Some(&[0xff, 0xfe]), &c));
        assert!(!authorized(None, &c));
        assert!("admin:".parse::<Credentials>().is_err());
        assert!(":pw".parse::<Credentials>().is_err());
        assert!("nopassword".parse::<Credentials>().is_err());
        assert!(!format!("{c:?}").contains("cret"));
    }

    #[test]
    fn only_local_names_pass_the_host_check() {
        for ok in [
            "127.0.0.1:9091",
            "localhost",
            "LOCALHOST:9091",
            "[::1]:9091",
            "192.168.1.5:9091",
        ] {
            assert!(local_host(Some(ok.as_bytes())), "{ok}");
        }
        for bad in [
            "evil.example:9091",
            "evil.example",
            "[::1",
            "127.0.0.1.evil.example",
        ] {
            assert!(!local_host(Some(bad.as_bytes())), "{bad}");
        }
        assert!(local_host(None));
    }
}
