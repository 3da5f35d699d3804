//! E-mail over SMTP (lettre) with plain-text and HTML bodies, and the Slack-compatible chat post.

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{json, Value};

use crate::config::Settings;

/// Subjects stay on one line whatever users typed into names.
pub fn single_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn field(payload: &Value, key: &str) -> String {
    payload.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// (subject, plain text, HTML) of a message.
pub fn compose(base_url: &str, payload: &Value) -> (String, String, String) {
    let subject = single_line(&field(payload, "subject"));
    let body = field(payload, "body");
    let link = field(payload, "link");
    let url = if link.is_empty() { String::new() } else { format!("{base_url}{link}") };
    let text = if url.is_empty() { format!("{body}\n") } else { format!("{body}\n\nOpen: {url}\n") };
    let mut html = format!("<!doctype html><html><body><h1>{}</h1>", escape_html(&subject));
    for line in body.lines() {
        html.push_str(&format!("<p>{}</p>", escape_html(line)));
    }
    if !url.is_empty() {
        html.push_str(&format!("<p><a href=\"{0}\">{0}</a></p>", escape_html(&url)));
    }
    html.push_str("</body></html>");
    (subject, text, html)
}

/// Why a message could not be delivered (kept in the outbox's `last_error`, then retried).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("recipient: {0}")]
    Recipient(#[source] lettre::address::AddressError),
    #[error("sender: {0}")]
    Sender(#[source] lettre::address::AddressError),
    #[error("message: {0}")]
    Message(#[source] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[source] lettre::transport::smtp::Error),
    #[error("chat webhook: {0}")]
    Http(#[source] reqwest::Error),
    #[error("chat webhook answered {0}")]
    Status(reqwest::StatusCode),
    #[error("chat webhook refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Store(#[source] diesel::result::Error),
}

pub async fn send(smtp_url: &str, settings: &Settings, payload: &Value) -> Result<(), DeliveryError> {
    let to: Mailbox = field(payload, "to").parse().map_err(DeliveryError::Recipient)?;
    let from: Mailbox = settings.mail_from.parse().map_err(DeliveryError::Sender)?;
    let (subject, text, html) = compose(&settings.base_url, payload);
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
        )
        .map_err(DeliveryError::Message)?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
        .map_err(DeliveryError::Smtp)?
        .timeout(Some(std::time::Duration::from_secs(10)))
        .build();
    transport.send(message).await.map(|_| ()).map_err(DeliveryError::Smtp)
}

/// A Slack-compatible incoming-webhook post, under the same address rules as process webhooks
/// (DESIGN §9); errors never carry the URL (it is a credential).
pub async fn post_chat(
    url: &str,
    base_url: &str,
    payload: &Value,
    private_allow: &[crate::domain::network::PrivateAllow],
    account_slug: &str,
) -> Result<(), DeliveryError> {
    let (subject, _, _) = compose(base_url, payload);
    let link = field(payload, "link");
    let text = if link.is_empty() { subject } else { format!("{subject} <{base_url}{link}>") };
    let parsed = reqwest::Url::parse(url).map_err(|_| DeliveryError::Refused("the chat webhook URL is not a URL".into()))?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    let client = crate::outbound::checked_client(&parsed, &host, private_allow, account_slug, std::time::Duration::from_secs(10))
        .await
        .map_err(|e| DeliveryError::Refused(e.to_string()))?;
    let res = client.post(parsed).json(&json!({"text": text})).send().await.map_err(|e| DeliveryError::Http(e.without_url()))?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status(res.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped_and_subjects_stay_on_one_line() {
        let payload = json!({"subject": "Release <script>alert(1)</script>\r\nBcc: evil@x.io", "body": "line <b>one</b>\nline two", "link": "/releases/1"});
        let (subject, text, html) = compose("https://r.example.com", &payload);
        assert_eq!(subject, "Release <script>alert(1)</script> Bcc: evil@x.io");
        assert!(!subject.contains('\n') && !subject.contains('\r'));
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert!(html.contains("<p>line &lt;b&gt;one&lt;/b&gt;</p><p>line two</p>"));
        assert!(text.contains("Open: https://r.example.com/releases/1"));
    }
}
