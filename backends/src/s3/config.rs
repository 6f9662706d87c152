//! [`S3Config`]: where an S3 store lives and how to talk to it, parsed from an ArcticDB-style URI
//! `s3://<host>:<bucket>?region=&access=&secret=&path_prefix=&port=&https=true|false`.

use std::fmt;
use std::time::Duration;

use crate::error::{Result, StorageError};

/// The region used when the URI names none (any value works for moto and most S3-compatible servers).
pub const DEFAULT_REGION: &str = "us-east-1";
/// Requests kept in flight by the batched operations unless the URI sets `concurrency=`.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// Deadline of one HTTP request (connect to last body byte) unless the URI sets `timeout_secs=`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries of one failed request (with exponential backoff) unless the URI sets `max_retries=`.
pub const DEFAULT_MAX_RETRIES: usize = 10;

/// The query parameters [`S3Config::from_uri`] understands.
const KNOWN_PARAMETERS: &str =
    "region, access, secret, path_prefix, port, https, concurrency, timeout_secs, max_retries";

/// How to reach one S3 bucket and where in it Floe's objects live.
///
/// Build it with [`S3Config::new`] or [`S3Config::from_uri`]. Its `Debug` output and
/// [`S3Config::to_uri`] never show the access key or the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Host name or IP address of the endpoint (`s3.eu-west-2.amazonaws.com`, `127.0.0.1`, `[::1]`).
    pub host: String,
    /// Bucket name; the bucket must exist.
    pub bucket: String,
    /// Signing region.
    pub region: String,
    /// Access key id; with `secret`, or neither (then credentials come from the environment:
    /// `AWS_ACCESS_KEY_ID`, web identity, instance metadata).
    pub access: Option<String>,
    /// Secret access key.
    pub secret: Option<String>,
    /// Folder inside the bucket under which every library lives, without leading or trailing `/`
    /// (empty: the bucket's root).
    pub path_prefix: String,
    /// TCP port; `None` means the scheme's default.
    pub port: Option<u16>,
    /// Use `https` (default) or plain `http` (local servers such as moto).
    pub https: bool,
    /// Requests kept in flight by `get_batch`, `put_batch` and `visit_batch` (at least 1).
    pub concurrency: usize,
    /// Deadline of one HTTP request attempt.
    pub timeout: Duration,
    /// How often a failed request (network error, 5xx, throttling, timeout) is retried with
    /// exponential backoff before the operation fails with `StorageError::Unavailable`.
    pub max_retries: usize,
}

impl S3Config {
    /// A configuration for `bucket` at `host` with every other setting at its default (https,
    /// region [`DEFAULT_REGION`], credentials from the environment, no path prefix).
    pub fn new(host: impl Into<String>, bucket: impl Into<String>) -> Self {
        S3Config {
            host: host.into(),
            bucket: bucket.into(),
            region: DEFAULT_REGION.to_owned(),
            access: None,
            secret: None,
            path_prefix: String::new(),
            port: None,
            https: true,
            concurrency: DEFAULT_CONCURRENCY,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }

    /// Parses `s3://<host>:<bucket>?<parameters>` (`s3s://` means https).
    ///
    /// Parameters: `region`, `access`, `secret` (both or neither), `path_prefix`, `port`,
    /// `https=true|false`, `concurrency`, `timeout_secs`, `max_retries`. Values may be
    /// percent-encoded (`%2F`); `+` is kept as is, since AWS secrets contain it.
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] naming the bad part: wrong scheme, missing host or bucket, a
    /// bad port, number or bool, an unknown or repeated parameter, a bad path prefix.
    pub fn from_uri(uri: &str) -> Result<Self> {
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("S3 URI must look like s3://<host>:<bucket>?<parameters>".into()))?;
        let scheme_https = match scheme {
            "s3" => None,
            "s3s" => Some(true),
            other => return Err(invalid(format!("S3 URI scheme must be `s3` or `s3s`, not `{other}`"))),
        };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        let Some((host, bucket)) = authority.rsplit_once(':') else {
            return Err(invalid(format!(
                "S3 URI is missing the bucket: expected s3://<host>:<bucket>, got host part `{authority}`"
            )));
        };
        check_host(host)?;
        check_bucket(bucket)?;
        let mut config = S3Config::new(host, bucket);
        if let Some(https) = scheme_https {
            config.https = https;
        }

        let mut seen: Vec<&str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, raw) = pair
                .split_once('=')
                .ok_or_else(|| invalid(format!("S3 URI parameter `{name}` has no value", name = pair)))?;
            if seen.contains(&name) {
                return Err(invalid(format!("S3 URI parameter `{name}` is given twice")));
            }
            seen.push(name);
            let value = percent_decode(name, raw)?;
            match name {
                "region" => config.region = non_empty(name, value)?,
                "access" => config.access = Some(non_empty(name, value)?),
                "secret" => config.secret = Some(non_empty(name, value)?),
                "path_prefix" => config.path_prefix = clean_path_prefix(&value)?,
                "port" => config.port = Some(parse_port(&value)?),
                "https" => {
                    let https = parse_bool(name, &value)?;
                    if scheme_https == Some(true) && !https {
                        return Err(invalid("S3 URI says `s3s://` (https) but also `https=false`".into()));
                    }
                    config.https = https;
                }
                "concurrency" => config.concurrency = parse_count(name, &value, 1)?,
                "timeout_secs" => config.timeout = Duration::from_secs(parse_count(name, &value, 1)? as u64),
                "max_retries" => config.max_retries = parse_count(name, &value, 0)?,
                other => {
                    return Err(invalid(format!(
                        "unknown S3 URI parameter `{other}` (known parameters: {KNOWN_PARAMETERS})"
                    )));
                }
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the fields that [`S3Config::new`] and direct field edits could have left wrong.
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        check_host(&self.host)?;
        check_bucket(&self.bucket)?;
        if self.access.is_some() != self.secret.is_some() {
            return Err(invalid("S3 credentials need both `access` and `secret` (or neither)".into()));
        }
        if clean_path_prefix(&self.path_prefix)? != self.path_prefix {
            return Err(invalid(format!("S3 path prefix `{}` must not start or end with `/`", self.path_prefix)));
        }
        if self.concurrency == 0 {
            return Err(invalid("S3 `concurrency` must be at least 1".into()));
        }
        if self.port == Some(0) {
            return Err(invalid("S3 `port` must be between 1 and 65535, not 0".into()));
        }
        Ok(())
    }

    /// The endpoint URL: `http[s]://<host>[:<port>]`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match self.port {
            Some(port) => format!("{scheme}://{}:{port}", self.host),
            None => format!("{scheme}://{}", self.host),
        }
    }

    /// The object-name prefix of everything Floe stores: `<path_prefix>/`, or empty.
    pub(crate) fn root(&self) -> String {
        if self.path_prefix.is_empty() { String::new() } else { format!("{}/", self.path_prefix) }
    }

    /// The URI of this configuration without `access` and `secret`; parameters at their default
    /// are left out.
    pub fn to_uri(&self) -> String {
        let mut params = vec![format!("region={}", encode_value(&self.region))];
        if !self.path_prefix.is_empty() {
            params.push(format!("path_prefix={}", encode_value(&self.path_prefix)));
        }
        if let Some(port) = self.port {
            params.push(format!("port={port}"));
        }
        params.push(format!("https={}", self.https));
        if self.concurrency != DEFAULT_CONCURRENCY {
            params.push(format!("concurrency={}", self.concurrency));
        }
        if self.timeout != DEFAULT_TIMEOUT {
            params.push(format!("timeout_secs={}", self.timeout.as_secs()));
        }
        if self.max_retries != DEFAULT_MAX_RETRIES {
            params.push(format!("max_retries={}", self.max_retries));
        }
        format!("s3://{}:{}?{}", self.host, self.bucket, params.join("&"))
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("S3Config")
            .field("host", &self.host)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access", &redacted(&self.access))
            .field("secret", &redacted(&self.secret))
            .field("path_prefix", &self.path_prefix)
            .field("port", &self.port)
            .field("https", &self.https)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

fn invalid(message: String) -> StorageError {
    StorageError::InvalidConfig(message)
}

fn check_host(host: &str) -> Result<()> {
    if host.is_empty() {
        return Err(invalid("S3 URI is missing the host: expected s3://<host>:<bucket>".into()));
    }
    let bracketed_ipv6 = host.starts_with('[') && host.ends_with(']');
    if host.contains(':') && !bracketed_ipv6 {
        return Err(invalid(format!(
            "S3 host `{host}` contains `:`; give the port as the `port=` parameter: s3://<host>:<bucket>?port=<port>"
        )));
    }
    if let Some(c) = host.chars().find(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '#')) {
        return Err(invalid(format!("S3 host `{host}` contains the invalid character {c:?}")));
    }
    Ok(())
}

fn check_bucket(bucket: &str) -> Result<()> {
    if bucket.is_empty() {
        return Err(invalid("S3 URI is missing the bucket: expected s3://<host>:<bucket>".into()));
    }
    if let Some(c) = bucket.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))) {
        return Err(invalid(format!(
            "S3 bucket `{bucket}` contains {c:?}; bucket names use letters, digits, `.`, `-` and `_`"
        )));
    }
    Ok(())
}

fn non_empty(name: &str, value: String) -> Result<String> {
    if value.is_empty() {
        return Err(invalid(format!("S3 URI parameter `{name}` is empty")));
    }
    Ok(value)
}

fn parse_port(value: &str) -> Result<u16> {
    match value.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(invalid(format!("S3 URI parameter `port={value}` is not a port number (1-65535)"))),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(invalid(format!("S3 URI parameter `{name}={value}` must be `true` or `false`"))),
    }
}

fn parse_count(name: &str, value: &str, min: usize) -> Result<usize> {
    match value.parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(invalid(format!("S3 URI parameter `{name}={value}` must be a whole number of at least {min}"))),
    }
}

/// Strips leading and trailing `/` and checks that what is left is a usable object-name prefix.
fn clean_path_prefix(value: &str) -> Result<String> {
    let trimmed = value.trim_matches('/');
    for segment in trimmed.split('/').filter(|_| !trimmed.is_empty()) {
        let problem = if segment.is_empty() {
            Some("an empty segment (`//`)")
        } else if segment == "." || segment == ".." {
            Some("a `.` or `..` segment")
        } else if segment.chars().any(char::is_control) {
            Some("a control character")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(invalid(format!("S3 path_prefix `{value}` contains {problem}")));
        }
    }
    Ok(trimmed.to_owned())
}

/// Decodes `%XX` escapes; the error names only the parameter, so a bad secret is never echoed.
fn percent_decode(name: &str, raw: &str) -> Result<String> {
    let bad = || invalid(format!("S3 URI parameter `{name}` has a bad %-escape or is not UTF-8"));
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

fn encode_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(uri: &str) -> String {
        match S3Config::from_uri(uri) {
            Err(StorageError::InvalidConfig(m)) => m,
            other => panic!("{uri}: expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn parses_every_parameter() {
        let c = S3Config::from_uri(
            "s3://127.0.0.1:floe-test?region=eu-west-2&access=AK&secret=s%2Fe+c&path_prefix=/team/floe/&port=9000&https=false&concurrency=8&timeout_secs=5&max_retries=0",
        )
        .expect("valid");
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.bucket, "floe-test");
        assert_eq!(c.region, "eu-west-2");
        assert_eq!(c.access.as_deref(), Some("AK"));
        assert_eq!(c.secret.as_deref(), Some("s/e+c"));
        assert_eq!(c.path_prefix, "team/floe");
        assert_eq!(c.root(), "team/floe/");
        assert_eq!(c.port, Some(9000));
        assert!(!c.https);
        assert_eq!(c.concurrency, 8);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.max_retries, 0);
        assert_eq!(c.endpoint(), "http://127.0.0.1:9000");
    }

    #[test]
    fn defaults_and_s3s() {
        let c = S3Config::from_uri("s3://s3.eu-west-2.amazonaws.com:bucket").expect("valid");
        assert_eq!(c, S3Config::new("s3.eu-west-2.amazonaws.com", "bucket"));
        assert!(c.https);
        assert_eq!(c.root(), "");
        assert_eq!(c.endpoint(), "https://s3.eu-west-2.amazonaws.com");
        let s = S3Config::from_uri("s3s://[::1]:b?https=true&port=443").expect("valid");
        assert_eq!(s.host, "[::1]");
        assert_eq!(s.endpoint(), "https://[::1]:443");
        assert!(!S3Config::from_uri("s3://h:b?https=FALSE").expect("valid").https);
    }

    #[test]
    fn errors_name_the_bad_part() {
        assert!(err("http://h:b").contains("scheme"));
        assert!(err("s3:/h:b").contains("s3://<host>:<bucket>"));
        assert!(err("s3://justahost").contains("missing the bucket"));
        assert!(err("s3://host:").contains("missing the bucket"));
        assert!(err("s3://:bucket").contains("missing the host"));
        assert!(err("s3://host:9000:bucket").contains("`port=`"));
        assert!(err("s3://h:my/bucket").contains("bucket"));
        assert!(err("s3://h:b?port=http").contains("port=http"));
        assert!(err("s3://h:b?port=0").contains("port=0"));
        assert!(err("s3://h:b?port=70000").contains("port=70000"));
        assert!(err("s3://h:b?https=yes").contains("https=yes"));
        assert!(err("s3s://h:b?https=false").contains("https=false"));
        assert!(err("s3://h:b?colour=red").contains("unknown S3 URI parameter `colour`"));
        assert!(err("s3://h:b?region=a&region=b").contains("twice"));
        assert!(err("s3://h:b?region").contains("`region` has no value"));
        assert!(err("s3://h:b?region=").contains("`region` is empty"));
        assert!(err("s3://h:b?access=a").contains("both `access` and `secret`"));
        assert!(err("s3://h:b?path_prefix=a//b").contains("empty segment"));
        assert!(err("s3://h:b?path_prefix=a/../b").contains("`..`"));
        assert!(err("s3://h:b?concurrency=0").contains("concurrency=0"));
        assert!(err("s3://h:b?max_retries=-1").contains("max_retries=-1"));
    }

    #[test]
    fn secrets_never_printed() {
        let uri = "s3://h:b?access=AKIAEXAMPLE&secret=TOPSECRET&path_prefix=p";
        let c = S3Config::from_uri(uri).expect("valid");
        for shown in [format!("{c:?}"), c.to_uri()] {
            assert!(!shown.contains("TOPSECRET") && !shown.contains("AKIAEXAMPLE"), "{shown}");
        }
        assert!(format!("{c:?}").contains("<redacted>"));
        let bad = err("s3://h:b?access=a&secret=TOP%ZZSECRET");
        assert!(bad.contains("`secret`") && !bad.contains("TOP"), "{bad}");
    }

    #[test]
    fn to_uri_round_trips_without_credentials() {
        let c = S3Config::from_uri("s3://h:b?region=r&path_prefix=a%20b/c&port=81&https=false&concurrency=4")
            .expect("valid");
        let back = S3Config::from_uri(&c.to_uri()).expect("printed URIs parse");
        assert_eq!(back, c);
        assert_eq!(c.to_uri(), "s3://h:b?region=r&path_prefix=a%20b/c&port=81&https=false&concurrency=4");
    }
}
