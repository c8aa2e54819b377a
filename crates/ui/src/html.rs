//! HTML by hand: escaping, the page frame, error pages and the assets.
//! Every string from a message, a handle or the relay goes through
//! [`esc`]; text a person wrote is marked `dir="auto"` or wrapped in
//! `<bdi>` so right-to-left scripts read correctly beside ids.

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use backchannel_client::Client;
use backchannel_protocol::Timestamp;

/// Escapes text for an element or a quoted attribute.
pub fn esc(s: &str) -> String {
    backchannel_protocol::commitments::graph::escape(s)
}

/// A name or other short text a person chose, isolated from its
/// surroundings' direction.
pub fn bdi(s: &str) -> String {
    format!("<bdi>{}</bdi>", esc(s))
}

/// An id, always left to right, shortened to `n` digits with the whole in
/// its title.
pub fn id(hex: &str, n: usize) -> String {
    let short = hex.get(..n).unwrap_or(hex);
    format!(
        r#"<code dir="ltr" title="{}">{}</code>"#,
        esc(hex),
        esc(short)
    )
}

/// A time in UTC; the page's script adds the local time beside it.
pub fn time(t: Timestamp) -> String {
    match jiff::Timestamp::from_millisecond(t.0) {
        Ok(ts) => format!(
            r#"<time datetime="{}">{} UTC</time>"#,
            ts,
            ts.strftime("%Y-%m-%d %H:%M:%S")
        ),
        Err(_) => format!("<time>{} ms</time>", t.0),
    }
}

/// Every typed term of `body`, in words, as a definition list.
pub fn terms(body: &backchannel_protocol::commitments::Structured) -> String {
    let mut rows = String::from("<dl class=\"terms\">\n");
    for t in backchannel_protocol::commitments::terms::terms(body) {
        rows.push_str(&format!(
            "<dt>{}</dt><dd dir=\"auto\">{}</dd>\n",
            esc(&t.label),
            esc(&t.value)
        ));
    }
    rows.push_str("</dl>");
    rows
}

/// What the frame shows on every page.
pub struct Frame {
    me: String,
    relay: String,
    alerts: usize,
    outbox: usize,
}

impl Frame {
    /// Read from the client.
    pub fn of(c: &Client) -> Frame {
        Frame {
            me: c.me().to_string(),
            relay: c.relay_url().to_string(),
            alerts: c.open_alerts().len(),
            outbox: c.queued().len(),
        }
    }
}

/// A whole page: the navigation (live: its counts update) and `main`.
pub fn page(title: &str, frame: &Frame, main: &str) -> Html<String> {
    let alerts = if frame.alerts > 0 {
        format!(r#" <span class="count alert">{}</span>"#, frame.alerts)
    } else {
        String::new()
    };
    let outbox = if frame.outbox > 0 {
        format!(r#" <span class="count">{}</span>"#, frame.outbox)
    } else {
        String::new()
    };
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Backchannel</title>
<link rel="stylesheet" href="/assets/style.css">
<script src="/assets/app.js" defer></script>
</head>
<body>
<header>
<nav id="live-nav" data-live aria-label="Sections">
<a href="/">Channels</a>
<a href="/alerts">Alerts{alerts}</a>
<a href="/safety">Safety numbers</a>
<a href="/outbox">Outbox{outbox}</a>
</nav>
<p class="who">You are {me} on <code dir="ltr">{relay}</code>. Plaintext stays on this machine.</p>
</header>
<main>
{main}
</main>
</body>
</html>
"#,
        title = esc(title),
        me = bdi(&frame.me),
        relay = esc(&frame.relay),
    ))
}

/// A refusal or failure, as a page with its stable code and the next step.
#[derive(Debug)]
pub struct Refused {
    status: StatusCode,
    code: &'static str,
    title: String,
    words: String,
}

impl Refused {
    /// A page with `status`.
    pub fn new(status: StatusCode, code: &'static str, title: &str, words: &str) -> Refused {
        Refused {
            status,
            code,
            title: title.to_string(),
            words: words.to_string(),
        }
    }

    /// The client refused the work: its words, and its code. A refusal
    /// of what was asked is 409 (or 400, 404); the store or the relay
    /// failing is 500 or 502.
    pub fn client(e: &backchannel_client::ClientError) -> Refused {
        let status = match e.code() {
            "store" | "crypto" | "decode" => StatusCode::INTERNAL_SERVER_ERROR,
            "relay_unreachable" | "relay_refused" => StatusCode::BAD_GATEWAY,
            "invalid_input" | "bad_id" | "ambiguous_id" => StatusCode::BAD_REQUEST,
            "not_found" | "unknown_channel" => StatusCode::NOT_FOUND,
            "unauthorized" => StatusCode::FORBIDDEN,
            _ => StatusCode::CONFLICT,
        };
        Refused::new(status, e.code(), "Not done", &e.to_string())
    }

    /// A bad id or field in the request.
    pub fn input(words: &str) -> Refused {
        Refused::new(
            StatusCode::BAD_REQUEST,
            "bad_input",
            "Not understood",
            words,
        )
    }
}

impl From<backchannel_client::ClientError> for Refused {
    fn from(e: backchannel_client::ClientError) -> Refused {
        Refused::client(&e)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = format!(
            r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Backchannel</title><link rel="stylesheet" href="/assets/style.css"></head>
<body><main class="refused" data-code="{code}">
<h1>{title}</h1>
<p dir="auto">{words}</p>
<p><a href="/">Back to the channels</a></p>
</main></body></html>
"#,
            title = esc(&self.title),
            code = self.code,
            words = esc(&self.words),
        );
        (self.status, Html(body)).into_response()
    }
}

/// `/assets/app.js`.
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../assets/app.js"),
    )
        .into_response()
}

/// `/assets/style.css`.
pub async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../assets/style.css"),
    )
        .into_response()
}

/// `/favicon.ico`: none (browsers ask for it; a 204 keeps the log clean).
pub async fn icon() -> StatusCode {
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &apos;y&apos;"
        );
        assert_eq!(bdi("<b>"), "<bdi>&lt;b&gt;</bdi>");
    }

    #[test]
    fn a_time_is_shown_in_utc_with_a_machine_readable_stamp() {
        let t = time(Timestamp(1_765_000_000_000));
        assert!(t.contains(r#"datetime="2025-12-06T05:46:40Z""#), "{t}");
        assert!(t.contains("2025-12-06 05:46:40 UTC"), "{t}");
    }
}
