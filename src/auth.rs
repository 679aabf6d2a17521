//! API tokens and their scopes. A request presents `Authorization: Bearer <token>`; the token
//! is matched against the configured ones by its SHA-256 digest, compared in constant time, and
//! the request is allowed when the matched token holds the scope its route needs.
//!
//! Only digests are kept in memory: a token given in clear in the configuration is hashed when
//! read. A token's *name* is what logs and spans carry, never the token.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do. Every route needs exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Serving traffic: records, profiles and counters with `stage=online`.
    Online,
    /// A pipeline step: offline records, profiles, counters and run uploads.
    Offline,
    /// Every `GET`, and `/metrics` on the main listener.
    Read,
    /// Anything that changes what driftd believes: reference pins, silences, acknowledgements.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Online, Scope::Offline, Scope::Read, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Online => "online",
            Scope::Offline => "offline",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown scope {:?}: expected online, offline, read or admin",
                    crate::format::truncate_chars(s, 32)
                )
            })
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One configured token: its name (for logs), its scopes and the SHA-256 digest of the token.
#[derive(Clone)]
pub struct Token {
    pub name: String,
    pub scopes: Vec<Scope>,
    digest: [u8; 32],
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl Token {
    /// A token given in clear; only its digest is kept.
    pub fn from_secret(name: &str, scopes: Vec<Scope>, token: &str) -> Token {
        Token {
            name: name.to_owned(),
            scopes,
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// A token given as the hex SHA-256 of its text (`sha256: "…"` in the config file).
    pub fn from_sha256(name: &str, scopes: Vec<Scope>, hex_digest: &str) -> Result<Token, String> {
        let bytes = hex::decode(hex_digest.trim())
            .map_err(|_| "sha256 must be 64 hexadecimal digits".to_owned())?;
        let digest: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "sha256 must be 64 hexadecimal digits".to_owned())?;
        Ok(Token {
            name: name.to_owned(),
            scopes,
            digest,
        })
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// The name of the token a request came with, left in the request's extensions by the gate
/// for logs and spans (`auth.token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// The tokens a server accepts. Empty means authentication is off.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Vec<Token>);

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header, or a token no one configured: 401.
    Unauthenticated(&'static str),
    /// A known token without the route's scope: 403, naming the token and the scope.
    Forbidden { token: String, scope: Scope },
}

impl Tokens {
    pub fn new(tokens: Vec<Token>) -> Tokens {
        Tokens(tokens)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Token> {
        self.0.iter()
    }

    /// The configured token whose digest matches `presented`. Every token is compared, each
    /// in constant time, so the time taken does not tell which one matched or how closely.
    pub fn find(&self, presented: &str) -> Option<&Token> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for token in &self.0 {
            if bool::from(token.digest.ct_eq(&digest)) && found.is_none() {
                found = Some(token);
            }
        }
        found
    }

    /// The token an `Authorization` header value presents; why not, when it presents none.
    pub fn authenticate(&self, header: Option<&str>) -> Result<&Token, Refusal> {
        let Some(value) = header else {
            return Err(Refusal::Unauthenticated("a bearer token is required"));
        };
        let presented = match value.split_once(' ') {
            Some((kind, rest)) if kind.eq_ignore_ascii_case("bearer") => rest.trim().to_owned(),
            Some((kind, rest)) if kind.eq_ignore_ascii_case("basic") => basic_password(rest)?,
            _ => {
                return Err(Refusal::Unauthenticated(
                    "the Authorization header must be \"Bearer <token>\"",
                ));
            }
        };
        self.find(&presented)
            .ok_or(Refusal::Unauthenticated("the bearer token is not valid"))
    }

    /// Checks an `Authorization` header value for `scope`; the matched token on success.
    pub fn authorize(&self, header: Option<&str>, scope: Scope) -> Result<&Token, Refusal> {
        let token = self.authenticate(header)?;
        if token.allows(scope) {
            Ok(token)
        } else {
            Err(Refusal::Forbidden {
                token: token.name.clone(),
                scope,
            })
        }
    }
}

/// The password of `Basic base64(user:password)`, taken as the token (the user is ignored).
/// Clients that can be given only a URL send credentials this way: Go's HTTP client — KServe's
/// and Seldon's inference loggers — turns `http://driftd:TOKEN@host/…` into Basic.
fn basic_password(credentials: &str) -> Result<String, Refusal> {
    use base64::Engine as _;
    let malformed = Refusal::Unauthenticated("the Basic credentials are not base64 of user:token");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .map_err(|_| malformed.clone())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed.clone())?;
    let (_, password) = text.split_once(':').ok_or(malformed)?;
    Ok(password.to_owned())
}

/// The `auth:` section of a config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
}

/// One entry of `auth.tokens`: a name, scopes, and the token or its SHA-256 (one of the two).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub scopes: Vec<Scope>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
}

impl fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl AuthSection {
    /// The tokens, or every problem found (each naming the entry by position and name).
    pub fn tokens(&self) -> Result<Vec<Token>, Vec<String>> {
        let mut tokens = Vec::new();
        let mut problems = Vec::new();
        for (i, entry) in self.tokens.iter().enumerate() {
            let at = format!(
                "auth.tokens[{i}] ({:?})",
                crate::format::truncate_chars(&entry.name, 64)
            );
            if entry.name.trim().is_empty() {
                problems.push(format!("{at}: name must not be empty"));
            }
            if entry.scopes.is_empty() {
                problems.push(format!(
                    "{at}: scopes must name at least one of online, offline, read, admin"
                ));
            }
            if tokens.iter().any(|t: &Token| t.name == entry.name) {
                problems.push(format!("{at}: another token has this name"));
            }
            let token = match (&entry.token, &entry.sha256) {
                (Some(token), None) if token.len() < 16 => {
                    problems.push(format!("{at}: token must be at least 16 characters"));
                    continue;
                }
                (Some(token), None) => Token::from_secret(&entry.name, entry.scopes.clone(), token),
                (None, Some(hex)) => {
                    match Token::from_sha256(&entry.name, entry.scopes.clone(), hex) {
                        Ok(t) => t,
                        Err(e) => {
                            problems.push(format!("{at}: {e}"));
                            continue;
                        }
                    }
                }
                _ => {
                    problems.push(format!("{at}: give exactly one of token and sha256"));
                    continue;
                }
            };
            if let Some(same) = tokens.iter().find(|t| t.digest == token.digest) {
                problems.push(format!(
                    "{at}: the same token as {:?}; give each client its own",
                    same.name
                ));
                continue;
            }
            tokens.push(token);
        }
        if problems.is_empty() {
            Ok(tokens)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(vec![
            Token::from_secret("sidecar", vec![Scope::Online], "sidecar-token-0123456789"),
            Token::from_sha256(
                "pipeline",
                vec![Scope::Offline, Scope::Read],
                // sha256("pipeline-token-0123456789")
                &hex::encode(Sha256::digest(b"pipeline-token-0123456789")),
            )
            .unwrap(),
        ])
    }

    #[test]
    fn bearer_tokens_are_matched_by_digest_and_scope() {
        let t = tokens();
        let ok = t.authorize(Some("Bearer sidecar-token-0123456789"), Scope::Online);
        assert_eq!(ok.unwrap().name, "sidecar");
        let ok = t.authorize(Some("bearer pipeline-token-0123456789"), Scope::Read);
        assert_eq!(ok.unwrap().name, "pipeline");
        assert_eq!(
            t.authorize(Some("Bearer sidecar-token-0123456789"), Scope::Admin)
                .unwrap_err(),
            Refusal::Forbidden {
                token: "sidecar".into(),
                scope: Scope::Admin
            }
        );
        assert!(matches!(
            t.authorize(Some("Bearer sidecar-token-012345678"), Scope::Online),
            Err(Refusal::Unauthenticated("the bearer token is not valid"))
        ));
        // Basic: the password is the token, whatever the user.
        assert!(matches!(
            t.authorize(Some("Basic c2lkZWNhcg=="), Scope::Online),
            Err(Refusal::Unauthenticated(
                "the Basic credentials are not base64 of user:token"
            ))
        ));
        use base64::Engine as _;
        let basic = |credentials: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            )
        };
        let ok = t.authorize(
            Some(&basic("kserve:sidecar-token-0123456789")),
            Scope::Online,
        );
        assert_eq!(ok.unwrap().name, "sidecar");
        let ok = t.authorize(Some(&basic(":pipeline-token-0123456789")), Scope::Offline);
        assert_eq!(ok.unwrap().name, "pipeline");
        assert!(matches!(
            t.authorize(Some(&basic("sidecar-token-0123456789:")), Scope::Online),
            Err(Refusal::Unauthenticated("the bearer token is not valid"))
        ));
        assert!(matches!(
            t.authorize(None, Scope::Online),
            Err(Refusal::Unauthenticated("a bearer token is required"))
        ));
    }

    #[test]
    fn debug_never_shows_a_token() {
        let t = tokens();
        let shown = format!("{t:?}");
        assert!(shown.contains("sidecar") && shown.contains("[redacted]"));
        assert!(!shown.contains("sidecar-token"));
        let digest = hex::encode(Sha256::digest(b"sidecar-token-0123456789"));
        assert!(!shown.contains(&digest[..16]));
    }

    #[test]
    fn config_entries_are_checked_all_at_once() {
        let section: AuthSection = serde_json::from_value(serde_json::json!({
            "tokens": [
                {"name": "a", "scopes": ["online"], "token": "short"},
                {"name": "b", "scopes": [], "sha256": "zz"},
                {"name": "c", "scopes": ["read"]},
                {"name": "d", "scopes": ["admin"], "token": "a-long-enough-token"},
                {"name": "e", "scopes": ["read"], "token": "a-long-enough-token"},
            ]
        }))
        .unwrap();
        let problems = section.tokens().unwrap_err();
        assert_eq!(
            problems,
            [
                "auth.tokens[0] (\"a\"): token must be at least 16 characters",
                "auth.tokens[1] (\"b\"): scopes must name at least one of online, offline, read, admin",
                "auth.tokens[1] (\"b\"): sha256 must be 64 hexadecimal digits",
                "auth.tokens[2] (\"c\"): give exactly one of token and sha256",
                "auth.tokens[4] (\"e\"): the same token as \"d\"; give each client its own",
            ]
        );
        let bad: Result<AuthSection, _> = serde_json::from_value(serde_json::json!({
            "tokens": [{"name": "a", "scopes": ["write"], "token": "a-long-enough-token"}]
        }));
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("unknown scope \"write\": expected online, offline, read or admin")
        );
    }
}
