//! `/login/sso` and `/login/sso/callback`: OpenID Connect Authorization Code flow with PKCE
//! (the `openidconnect` crate). Discovery is read at start-up; a provider that is down then
//! leaves password log-in working, and is asked again at the next SSO log-in.

use std::collections::BTreeMap;

use actix_session::Session;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken, IdTokenFields, IdTokenVerifier, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::config::OidcSettings;
use crate::ops::sso::{self as ops, Identity, SsoLogIn};
use crate::web::error::AppError;
use crate::web::extractors::client_addr;
use crate::web::middleware::{PRELOGIN_CSRF_KEY, SESSION_KEY};
use crate::web::pages::auth::{login_page_with, safe_next};
use crate::web::AppState;

/// Every claim beyond the standard ones: the groups claim's name is the operator's choice.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub claims: BTreeMap<String, Value>,
}
impl AdditionalClaims for ExtraClaims {}

type TokenFields =
    IdTokenFields<ExtraClaims, EmptyExtraTokenFields, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type Tokens = StandardTokenResponse<TokenFields, CoreTokenType>;
pub type ProviderIdToken = IdToken<ExtraClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type ProviderClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a step of the protocol failed; the cause is kept for the log.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("the identity provider could not be reached or described itself wrongly")]
    Discovery(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the identity provider refused the code")]
    Exchange(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the identity provider's answer did not verify")]
    Verification(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The configured provider, and its discovered client once it answered.
pub struct Sso {
    pub settings: OidcSettings,
    redirect: String,
    http: openidconnect::reqwest::Client,
    client: RwLock<Option<Discovered>>,
}

/// The provider's metadata and keys, and when they were read: keys are read again hourly, and
/// at once when a token names a key they do not hold (the provider rotated its keys).
#[derive(Clone)]
struct Discovered {
    client: ProviderClient,
    at: std::time::Instant,
}

/// How long discovered keys are trusted before they are read again (a revoked key goes).
const KEYS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The session key of the value that binds a log-in in flight to the browser that started it.
const BROWSER_KEY: &str = "sso_browser";

/// The longest `next` kept with a log-in in flight.
const MAX_NEXT_LEN: usize = 2048;

impl Sso {
    /// Reads discovery now; a provider that is down leaves SSO unavailable, not the server.
    pub async fn start(settings: OidcSettings, base_url: &str) -> anyhow::Result<Sso> {
        // Never follow redirects: the provider's endpoints are used as discovery names them.
        let http = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        let sso = Sso { redirect: format!("{base_url}/login/sso/callback"), settings, http, client: RwLock::new(None) };
        if let Err(e) = sso.client().await {
            tracing::warn!(issuer = %sso.settings.issuer, error = ?e, "single sign-on is unavailable for now");
        }
        Ok(sso)
    }

    /// The discovered client: discovering again if the provider was down before, or if the keys
    /// are older than an hour (then the old ones serve while the provider does not answer).
    async fn client(&self) -> Result<ProviderClient, SsoError> {
        let known = self.client.read().await.clone();
        match known {
            Some(d) if d.at.elapsed() < KEYS_MAX_AGE => Ok(d.client),
            Some(d) => match self.discover().await {
                Ok(fresh) => Ok(fresh),
                Err(e) => {
                    tracing::warn!(error = ?e, "reading the identity provider's keys again failed; the known ones serve");
                    Ok(d.client)
                }
            },
            None => self.discover().await,
        }
    }

    /// Reads the provider's metadata and keys now.
    async fn discover(&self) -> Result<ProviderClient, SsoError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|e| SsoError::Discovery(e.into()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http).await.map_err(|e| SsoError::Discovery(e.into()))?;
        let redirect = RedirectUrl::new(self.redirect.clone()).map_err(|e| SsoError::Discovery(e.into()))?;
        let client = ProviderClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        )
        .set_redirect_uri(redirect);
        *self.client.write().await = Some(Discovered { client: client.clone(), at: std::time::Instant::now() });
        Ok(client)
    }

    pub async fn available(&self) -> bool {
        self.client.read().await.is_some()
    }
}

/// The identity in a verified ID token (signature, issuer, audience, expiry, nonce).
pub fn identity_of(
    token: &ProviderIdToken,
    verifier: &IdTokenVerifier<'_, CoreJsonWebKey>,
    nonce: &Nonce,
    groups_claim: &str,
) -> Result<Identity, SsoError> {
    let claims = token.claims(verifier, nonce).map_err(|e| SsoError::Verification(e.into()))?;
    let groups = match claims.additional_claims().claims.get(groups_claim) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    Ok(Identity {
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string()),
        email_verified: claims.email_verified().unwrap_or(false),
        name: claims.name().and_then(|n| n.get(None)).map(|n| n.to_string()),
        groups,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StartQuery {
    pub next: String,
}

/// `GET /login/sso`: off to the provider, with state, nonce and a PKCE challenge kept here, and
/// a value in this browser's session that the callback must bring back.
pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, AppError> {
    let next = if query.next.len() > MAX_NEXT_LEN { "/".to_string() } else { safe_next(&query.next) };
    let Some(sso) = state.sso.as_ref() else { return Err(AppError::NotFound) };
    let client = match sso.client().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = ?e, "single sign-on is unavailable");
            return login_page_with(
                &state,
                &session,
                &next,
                "Single sign-on is unavailable right now; log in with your password or try again later.",
            )
            .await;
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new(sso.settings.groups_claim.clone()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = crate::security::random_token(32);
    session.insert(BROWSER_KEY, &browser).map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context("session")))?;
    let mut conn = state.db().await?;
    let started = crate::db::models::sso::StartedLogin {
        client: &client_addr(&req, &state.trusted_proxies),
        state_hash: &crate::security::sha256_hex(csrf.secret()),
        browser_hash: &crate::security::sha256_hex(&browser),
        nonce: nonce.secret(),
        pkce_verifier: verifier.secret(),
        next: &next,
    };
    ops::begin_log_in(&mut conn, started, state.now()).await?;
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, url.to_string())).finish())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CallbackQuery {
    pub code: String,
    pub state: String,
    pub error: String,
    pub error_description: String,
}

/// `GET /login/sso/callback`: the state names a log-in this server started (once); the code is
/// exchanged with its PKCE verifier; the ID token must verify with its nonce.
pub async fn callback(state: web::Data<AppState>, session: Session, query: web::Query<CallbackQuery>) -> Result<HttpResponse, AppError> {
    let Some(sso) = state.sso.as_ref() else { return Err(AppError::NotFound) };
    if !query.error.is_empty() {
        tracing::info!(error = %query.error, description = %query.error_description, "the identity provider returned an error");
        return login_page_with(&state, &session, "/", "Your identity provider did not sign you in.").await;
    }
    // Only the browser that started this log-in can finish it: a callback URL sent to someone
    // else (log-in CSRF) or read from a log or history finds no matching value there.
    let browser = session.get::<String>(BROWSER_KEY).ok().flatten().unwrap_or_default();
    let mut conn = state.db().await?;
    let now = state.now();
    let (state_hash, browser_hash) = (crate::security::sha256_hex(&query.state), crate::security::sha256_hex(&browser));
    let taken = match browser.is_empty() {
        true => None,
        false => crate::db::models::sso::take_login(&mut conn, &state_hash, &browser_hash, now).await?,
    };
    let Some((nonce, verifier, next)) = taken.filter(|_| !query.code.is_empty()) else {
        tracing::info!("an SSO callback with an unknown, used or expired state, or from another browser, was refused");
        return login_page_with(&state, &session, "/", "This sign-in has expired or was already used; start again.").await;
    };
    let identity = match exchange(sso, &query.code, verifier, Nonce::new(nonce)).await {
        Ok(identity) => identity,
        Err(e) => {
            tracing::warn!(error = ?e, "an SSO callback was refused");
            return login_page_with(&state, &session, "/", "Single sign-on failed: your identity provider's answer could not be verified.")
                .await;
        }
    };
    match ops::log_in(&mut conn, (&sso.settings.account, &sso.settings.issuer), &identity, now).await? {
        SsoLogIn::Session { token } => {
            session.renew();
            session.remove(BROWSER_KEY);
            session.remove(PRELOGIN_CSRF_KEY);
            session.insert(SESSION_KEY, token).map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context("session")))?;
            Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, safe_next(&next))).finish())
        }
        SsoLogIn::Refused(message) => login_page_with(&state, &session, "/", &message).await,
    }
}

async fn exchange(sso: &Sso, code: &str, verifier: String, nonce: Nonce) -> Result<Identity, SsoError> {
    let client = sso.client().await?;
    let tokens: Tokens = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| SsoError::Exchange(e.into()))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&sso.http)
        .await
        .map_err(|e| SsoError::Exchange(e.into()))?;
    let id_token = tokens.id_token().ok_or_else(|| SsoError::Verification("the token answer had no ID token".into()))?;
    // A key the known set does not hold: the provider rotated its keys. Read them again once.
    let rotated =
        matches!(id_token.signing_key(&client.id_token_verifier()), Err(openidconnect::SignatureVerificationError::NoMatchingKey));
    let client = if rotated {
        tracing::info!("an ID token names a key not known yet; reading the identity provider's keys again");
        sso.discover().await?
    } else {
        client
    };
    let id_verifier = client.id_token_verifier();
    let identity = identity_of(id_token, &id_verifier, &nonce, &sso.settings.groups_claim)?;
    // The access token must be the one the ID token was issued with, when it says so.
    let claims = id_token.claims(&id_verifier, &nonce).map_err(|e| SsoError::Verification(e.into()))?;
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token.signing_alg().map_err(|e| SsoError::Verification(e.into()))?;
        let key = id_token.signing_key(&id_verifier).map_err(|e| SsoError::Verification(e.into()))?;
        let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key).map_err(|e| SsoError::Verification(e.into()))?;
        if actual != *expected {
            return Err(SsoError::Verification("the access token does not match the ID token".into()));
        }
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openidconnect::core::{CoreJsonWebKeySet, CoreRsaPrivateSigningKey};
    use openidconnect::{Audience, EndUserEmail, IdTokenClaims, JsonWebKeyId, PrivateSigningKey, StandardClaims, SubjectIdentifier};

    const ISSUER: &str = "http://127.0.0.1:1";

    fn key(pem: &str) -> CoreRsaPrivateSigningKey {
        CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new("k1".into()))).expect("a test key")
    }

    /// A token as a provider would sign it, with `key`, for `audience`, expiring in `seconds`.
    fn token(key: &CoreRsaPrivateSigningKey, audience: &str, seconds: i64) -> ProviderIdToken {
        let now = chrono::Utc::now();
        let mut extra = ExtraClaims::default();
        extra.claims.insert("roles_from_idp".into(), serde_json::json!(["release-managers"]));
        let claims = IdTokenClaims::new(
            IssuerUrl::new(ISSUER.into()).unwrap(),
            vec![Audience::new(audience.into())],
            now + chrono::TimeDelta::seconds(seconds),
            now - chrono::TimeDelta::seconds(10),
            StandardClaims::new(SubjectIdentifier::new("alice".into()))
                .set_email(Some(EndUserEmail::new("alice@acme.example.com".into())))
                .set_email_verified(Some(true)),
            extra,
        )
        .set_nonce(Some(Nonce::new("the-nonce".into())));
        let signed = ProviderIdToken::new(claims, key, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, None, None).unwrap();
        // Through the compact form, as it arrives from the provider.
        signed.to_string().parse().unwrap()
    }

    #[test]
    fn forged_tokens_are_refused_another_key_expired_wrong_audience_wrong_nonce() {
        let good = key(include_str!("../../tests/fixtures/oidc-test-key-1.pem"));
        let other = key(include_str!("../../tests/fixtures/oidc-test-key-2.pem"));
        let jwks = CoreJsonWebKeySet::new(vec![good.as_verification_key()]);
        let verifier = IdTokenVerifier::new_public_client(ClientId::new("railyard".into()), IssuerUrl::new(ISSUER.into()).unwrap(), jwks)
            .set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
        let nonce = Nonce::new("the-nonce".into());

        let who = identity_of(&token(&good, "railyard", 300), &verifier, &nonce, "roles_from_idp").expect("a good token verifies");
        assert_eq!((who.email.as_deref(), who.email_verified), (Some("alice@acme.example.com"), true));
        assert_eq!(who.groups, ["release-managers"], "the configured groups claim");

        for (case, forged, nonce) in [
            ("another signing key", token(&other, "railyard", 300), nonce.clone()),
            ("expired", token(&good, "railyard", -60), nonce.clone()),
            ("wrong audience", token(&good, "someone-else", 300), nonce.clone()),
            ("wrong nonce", token(&good, "railyard", 300), Nonce::new("another".into())),
        ] {
            let refused = identity_of(&forged, &verifier, &nonce, "groups");
            assert!(matches!(refused, Err(SsoError::Verification(_))), "{case} must be refused");
        }
    }
}
