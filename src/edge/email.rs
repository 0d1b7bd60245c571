//! E-mail through Cloudflare Email Service: the Worker's `send_email` binding named `EMAIL`
//! (workers-rs 0.8 `Env::send_email`, the binding's `send()` with a message object: from, to,
//! subject, text) and the sender address in the var `EMAIL_FROM`. Both must be set for Clavex
//! to send anything; without them the admin API returns links and the login page tells users to
//! ask their administrator (README, "E-mail").
//!
//! Under `wrangler dev` the binding is simulated by Miniflare (miniflare
//! `workers/email/send_email.worker.js`): nothing is sent; the message's text is written to a
//! temporary file and its From, To and Subject are logged with that file's path ("send_email
//! binding called with MessageBuilder: …"), which the integration tests read
//! (tests/support/mail.mjs).

use worker::{EmailAddress, SendEmail, SendEmailBuilder};

use crate::edge::context::Ctx;

/// The binding's name in wrangler.toml (`[[send_email]] name = "EMAIL"`).
pub const BINDING: &str = "EMAIL";
/// The var naming the sender address (an address of a domain onboarded to Email Sending).
pub const FROM_VAR: &str = "EMAIL_FROM";

/// A configured sender.
pub struct Mailer {
    binding: SendEmail,
    from: String,
}

/// The deployment's sender, when both the binding and the sender address are configured.
pub fn mailer(ctx: &Ctx) -> Option<Mailer> {
    let from = ctx
        .env
        .var(FROM_VAR)
        .map(|v| v.to_string())
        .unwrap_or_default()
        .trim()
        .to_string();
    if from.is_empty() {
        return None;
    }
    let binding = ctx.env.send_email(BINDING).ok()?;
    Some(Mailer { binding, from })
}

/// Whether e-mail is configured (what the login page and the admin API offer depends on it).
pub fn configured(ctx: &Ctx) -> bool {
    mailer(ctx).is_some()
}

/// One plain-text message.
pub struct Message<'a> {
    /// The display name of the sender (the organization's name).
    pub from_name: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
}

impl Mailer {
    pub async fn send(&self, message: &Message<'_>) -> worker::Result<()> {
        let from = EmailAddress::new(&display_name(message.from_name), &self.from);
        let builder = SendEmailBuilder::builder_with_email_address_and_str(
            &from,
            message.to,
            message.subject,
        )
        .text(message.text)
        .build();
        self.binding
            .send_with_builder(&builder)
            .await
            .map(|_| ())
            .map_err(|e| {
                worker::Error::RustError(format!(
                    "the e-mail was not accepted: {}",
                    String::from(e.message())
                ))
            })
    }
}

/// A display name without the characters that would end or escape it in a header.
fn display_name(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n' | '<' | '>'))
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_names_cannot_break_the_header() {
        assert_eq!(
            super::display_name("Acme \"Corp\"\r\nBcc: x"),
            "Acme CorpBcc: x"
        );
    }
}
