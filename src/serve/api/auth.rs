//! Who may call what. With tokens configured, every route but `/healthz` and `/readyz` needs
//! `Authorization: Bearer <token>` (401 without a valid one) and a scope (403 without it):
//! `read` for every `GET`, `admin` for anything that changes what driftd believes, and for
//! ingest the scope of the stage the request feeds (`online` or `offline`), which the handler
//! checks once it knows the stage. Without tokens (a loopback listener), everything is open.
//! A browser refused a page is also challenged for Basic credentials, so it asks for the token
//! (as the password).

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::debug;

use super::{ApiError, AppState};
use crate::auth::{Refusal, Scope, Tokens};
use crate::profile::Stage;

/// What a route needs before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Probes: never a token.
    Nothing,
    Scope(Scope),
    /// Ingest: a token with `online` or `offline`; the handler requires the stage's scope.
    Stage,
}

/// The rule for a matched route. Routes not named here that are not `GET` need `admin`, so a
/// new route is closed until it is given its scope.
pub fn needs(method: &Method, route: &str) -> Needs {
    match route {
        "/healthz" | "/readyz" => Needs::Nothing,
        _ if method == Method::GET || method == Method::HEAD => Needs::Scope(Scope::Read),
        "/v1/inference-logs" => Needs::Scope(Scope::Online),
        "/v1/datasets/{dataset}/records"
        | "/v1/datasets/{dataset}/profiles"
        | "/v1/datasets/{dataset}/counters" => Needs::Stage,
        _ => Needs::Scope(Scope::Admin),
    }
}

/// The caller, as the gate let it in: the token's name and scopes, or open (no tokens).
#[derive(Debug, Clone)]
pub struct Access {
    token: Option<(String, Vec<Scope>)>,
}

impl Access {
    /// The scope a stage's data needs.
    pub fn require_stage(&self, stage: Stage) -> Result<(), ApiError> {
        let scope = match stage {
            Stage::Online => Scope::Online,
            Stage::Offline => Scope::Offline,
        };
        match &self.token {
            Some((name, scopes)) if !scopes.contains(&scope) => {
                Err(ApiError::Forbidden(forbidden(name, scope)))
            }
            _ => Ok(()),
        }
    }
}

fn forbidden(token: &str, scope: Scope) -> String {
    format!(
        "token {:?} lacks the {scope} scope this request needs",
        crate::format::truncate_chars(token, 64)
    )
}

/// The middleware: authenticates, checks the route's scope, and leaves [`Access`] for the
/// handler.
pub async fn gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let needs = needs(request.method(), &route);
    match check(&state.tokens, &request, needs) {
        Ok(access) => {
            if let Some((name, _)) = &access.token {
                request
                    .extensions_mut()
                    .insert(crate::auth::Caller(name.clone()));
            }
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        Err(e) => {
            debug!(route, error = %e, "Request refused");
            let browser = matches!(e, ApiError::Unauthorized(_))
                && PAGES.contains(&route.as_str())
                && super::pages::prefers_html(request.headers());
            let mut response = e.into_response();
            if browser {
                // A browser asks for credentials only when challenged for a scheme it knows:
                // Basic, whose password is taken as the token.
                response.headers_mut().append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="driftd", charset="UTF-8""#),
                );
            }
            response
        }
    }
}

/// The routes that serve pages to people.
const PAGES: [&str; 2] = ["/", "/datasets/{dataset}"];

fn check(tokens: &Tokens, request: &Request, needs: Needs) -> Result<Access, ApiError> {
    if tokens.is_empty() || needs == Needs::Nothing {
        return Ok(Access { token: None });
    }
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let token = tokens
        .authenticate(header)
        .map_err(|refusal| match refusal {
            Refusal::Unauthenticated(why) => ApiError::Unauthorized(why),
            Refusal::Forbidden { token, scope } => ApiError::Forbidden(forbidden(&token, scope)),
        })?;
    let allowed = match needs {
        Needs::Nothing => true,
        Needs::Scope(scope) => token.allows(scope),
        Needs::Stage => token.allows(Scope::Online) || token.allows(Scope::Offline),
    };
    if !allowed {
        let scope = match needs {
            Needs::Scope(scope) => scope,
            _ => Scope::Online,
        };
        return Err(ApiError::Forbidden(forbidden(&token.name, scope)));
    }
    debug!(token = %token.name, "Request authorized");
    Ok(Access {
        token: Some((token.name.clone(), token.scopes.clone())),
    })
}
