//! Request logging without credentials: sign-off, status and callback tokens travel in paths,
//! calendar feed tokens, single sign-on's `code` and `state` in the query, and a `next` (after
//! log-in) may itself be a sign-off or status link; the request span logs the target with them
//! redacted.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::Error;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

const TOKEN_PATHS: [&str; 3] = ["/signoff/", "/status/", "/api/v1/callbacks/"];
const REDACTED: &str = "[redacted]";
/// Query parameters whose value is a credential.
const SECRET_PARAMS: [&str; 3] = ["token", "code", "state"];

/// The path and query with every token replaced by `[redacted]`.
pub fn redact_target(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut out = path.to_string();
    for prefix in TOKEN_PATHS {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
            out = format!("{prefix}{REDACTED}{tail}");
        }
    }
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)) => format!("{k}={REDACTED}"),
                Some((k, v)) if k.eq_ignore_ascii_case("next") => {
                    let decoded: String = url::form_urlencoded::parse(format!("v={v}").as_bytes()).map(|(_, v)| v.into_owned()).collect();
                    // Only a target with something to hide changes (redacted, then encoded again).
                    match redact_target(&decoded) {
                        same if same == decoded => pair.to_string(),
                        redacted => format!("{k}={}", super::error::percent_encode(&redacted)),
                    }
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// The request span of `tracing-actix-web`, with the target redacted.
pub struct RedactedSpan;

impl RootSpanBuilder for RedactedSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let target = redact_target(request.uri().path_and_query().map(|p| p.as_str()).unwrap_or(""));
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %request.match_pattern().unwrap_or_default(),
            http.target = %target,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::redact_target;

    #[test]
    fn tokens_never_reach_the_log() {
        assert_eq!(redact_target("/signoff/abc123"), "/signoff/[redacted]");
        assert_eq!(redact_target("/api/v1/callbacks/tok-1?x=1"), "/api/v1/callbacks/[redacted]?x=1");
        assert_eq!(redact_target("/calendar.ics?token=s3cret&view=month"), "/calendar.ics?token=[redacted]&view=month");
        assert_eq!(redact_target("/status/xyz/extra"), "/status/[redacted]/extra");
        assert_eq!(redact_target("/releases/4?tab=audit"), "/releases/4?tab=audit");
        assert_eq!(redact_target("/login?next=%2Fsignoff%2Fs3cret-link"), "/login?next=/signoff/%5Bredacted%5D");
        assert_eq!(redact_target("/login?next=/status/abc"), "/login?next=/status/%5Bredacted%5D");
        assert_eq!(redact_target("/login?next=%2Freleases%2F4"), "/login?next=%2Freleases%2F4");
        assert_eq!(
            redact_target("/login/sso/callback?code=c0de&state=st4te&iss=x"),
            "/login/sso/callback?code=[redacted]&state=[redacted]&iss=x"
        );
    }
}
