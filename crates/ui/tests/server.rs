//! The local web interface over real HTTP on loopback, with a real relay
//! and real clients: who may use it, what it refuses, what it shows.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backchannel_client::{Client, KdfParams};
use backchannel_protocol::payload::Policy;
use backchannel_protocol::{ChannelId, Handle};
use backchannel_testkit::TestRelay;
use backchannel_ui::access::Refusal;
use backchannel_ui::{Notice, Shared, Ui, UiConfig, UiError, UiHandle};
use reqwest::header;
use reqwest::StatusCode;

const PASS: &str = "test passphrase";

fn h(s: &str) -> Handle {
    Handle::new(s).unwrap()
}

/// A mediator and two parties on one relay, a channel open between them,
/// and blue's interface served.
struct World {
    relay: TestRelay,
    mediator: Client,
    red: Client,
    blue: Arc<Shared>,
    channel: ChannelId,
    ui: Served,
    _dir: tempfile::TempDir,
}

struct Served {
    base: String,
    launch: String,
    handle: UiHandle,
    /// Milliseconds added to the server's clock.
    skew: Arc<AtomicU64>,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), UiError>>,
}

impl Served {
    async fn start(shared: Arc<Shared>) -> Served {
        let skew = Arc::new(AtomicU64::new(0));
        let base_instant = Instant::now();
        let s = skew.clone();
        let config = UiConfig {
            clock: Arc::new(move || base_instant + Duration::from_millis(s.load(Ordering::SeqCst))),
            ..UiConfig::default()
        };
        let ui = Ui::bind("127.0.0.1:0".parse().unwrap(), shared, config)
            .await
            .unwrap();
        let base = format!("http://{}", ui.local_addr());
        let launch = ui.launch_url();
        let handle = ui.handle();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(ui.serve(async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Served {
            base,
            launch,
            handle,
            skew,
            http,
            stop: Some(stop),
            task,
        }
    }

    fn advance(&self, d: Duration) {
        self.skew.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Redeems the launch code: the session cookie.
    async fn session(&self) -> String {
        let r = self.http.get(&self.launch).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let cookie = r.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_string();
        cookie.split(';').next().unwrap().to_string()
    }

    async fn get(&self, path: &str, cookie: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, cookie)
            .send()
            .await
            .unwrap()
    }

    /// A GET with one more header.
    async fn get_with(
        &self,
        path: &str,
        cookie: &str,
        (name, value): (&str, &str),
    ) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, cookie)
            .header(name, value)
            .send()
            .await
            .unwrap()
    }

    async fn page(&self, path: &str, cookie: &str) -> String {
        let r = self.get(path, cookie).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.text().await.unwrap()
    }

    /// A form post from the interface's own page.
    async fn post(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, cookie)
            .header(header::ORIGIN, &self.base)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

async fn client(relay: &TestRelay, dir: &std::path::Path, name: &str) -> Client {
    Client::create(
        &dir.join(format!("{name}.store")),
        PASS,
        KdfParams::INSECURE_FOR_TESTS,
        &relay.url,
        &h(name),
    )
    .await
    .unwrap()
}

const POLICY: Policy = Policy {
    mediator_reads: true,
    receipt_deadline_s: 3600,
    heartbeat_interval_s: 600,
};

impl World {
    /// The channel proposed; red accepted; blue still to answer (in the
    /// interface) unless `open`.
    async fn new(open: bool) -> World {
        backchannel_testkit::install_ring_default();
        let relay = TestRelay::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut mediator = client(&relay, dir.path(), "mediator").await;
        let mut blue = client(&relay, dir.path(), "blue").await;
        let mut red = client(&relay, dir.path(), "red").await;
        let channel = mediator
            .create_channel("talks", &[h("blue"), h("red")], &[], POLICY)
            .await
            .unwrap();
        for p in [&mut red, &mut blue] {
            p.sync().await.unwrap();
        }
        let digest = red.consent(channel).unwrap().unwrap().digest;
        red.accept(channel, digest).await.unwrap();
        if open {
            let digest = blue.consent(channel).unwrap().unwrap().digest;
            blue.accept(channel, digest).await.unwrap();
            for c in [&mut mediator, &mut red, &mut blue] {
                c.sync().await.unwrap();
            }
        }
        let blue = Shared::new(blue);
        let ui = Served::start(blue.clone()).await;
        World {
            relay,
            mediator,
            red,
            blue,
            channel,
            ui,
            _dir: dir,
        }
    }

    /// How blue trusts `peer`'s key.
    async fn trust(&self, peer: &str) -> String {
        self.blue
            .lock()
            .await
            .safety_number(&h(peer))
            .unwrap()
            .1
            .label()
    }

    async fn sync_blue(&self) {
        self.blue.lock().await.sync().await.unwrap();
    }
}

async fn next_notice(rx: &mut tokio::sync::broadcast::Receiver<Notice>) -> Notice {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a notice in time")
        .unwrap()
}

#[tokio::test]
async fn the_launch_code_works_once_and_a_second_try_is_reported() {
    let w = World::new(true).await;
    let mut notices = w.ui.handle.notices();
    let r = w.ui.http.get(&w.ui.launch).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        "/",
        "the redirect drops the code from the address bar"
    );
    let cookie = r.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let port = w.ui.base.rsplit(':').next().unwrap();
    assert!(
        cookie.starts_with(&format!("backchannel_ui_{port}=")),
        "named after its port: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    assert_eq!(w.ui.get("/", &session).await.status(), StatusCode::OK);
    assert_eq!(next_notice(&mut notices).await, Notice::Redeemed);

    let again = w.ui.http.get(&w.ui.launch).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    assert!(again.headers().get(header::SET_COOKIE).is_none());
    assert!(again.text().await.unwrap().contains("used already"));
    assert_eq!(
        next_notice(&mut notices).await,
        Notice::Refused(Refusal::Used)
    );
    assert!(Notice::Refused(Refusal::Used)
        .to_string()
        .starts_with("REFUSED"));
    // Whoever redeemed it first may have raced the browser: that session
    // is over too.
    assert_eq!(
        w.ui.get("/", &session).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_request_another_site_made_the_browser_send_is_refused() {
    let w = World::new(true).await;
    let cookie = w.ui.session().await;
    for site in ["cross-site", "same-site"] {
        let r = w.ui.get_with("/", &cookie, ("sec-fetch-site", site)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{site}");
        assert!(!r.text().await.unwrap().contains("talks"));
    }
    for site in ["same-origin", "none"] {
        let r = w.ui.get_with("/", &cookie, ("sec-fetch-site", site)).await;
        assert_eq!(r.status(), StatusCode::OK, "{site}");
    }
}

#[tokio::test]
async fn live_refreshes_do_not_keep_an_idle_session_alive() {
    let w = World::new(true).await;
    let cookie = w.ui.session().await;
    for _ in 0..4 {
        w.ui.advance(Duration::from_secs(10 * 60));
        let r =
            w.ui.get_with("/", &cookie, ("x-backchannel-refresh", "1"))
                .await;
        if r.status() == StatusCode::UNAUTHORIZED {
            return;
        }
    }
    panic!("40 minutes of refreshes alone kept a 30-minute idle session alive");
}

#[tokio::test]
async fn stopping_ends_open_live_streams() {
    let mut w = World::new(true).await;
    let cookie = w.ui.session().await;
    let events = w.ui.get("/events", &cookie).await;
    assert_eq!(events.status(), StatusCode::OK);
    drop(w.ui.stop.take());
    let stopped = tokio::time::timeout(Duration::from_secs(5), &mut w.ui.task).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the server stopped with a stream open: {stopped:?}"
    );
    drop(events);
}

#[tokio::test]
async fn a_launch_code_older_than_a_minute_is_refused_and_a_new_link_works() {
    let w = World::new(true).await;
    w.ui.advance(Duration::from_secs(61));
    let r = w.ui.http.get(&w.ui.launch).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("expired"));
    let fresh = w.ui.handle.new_launch_url();
    assert_ne!(fresh, w.ui.launch);
    let r = w.ui.http.get(&fresh).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_request_without_the_session_or_for_another_host_is_refused() {
    let w = World::new(true).await;
    let r = w.ui.get("/", "").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = r.text().await.unwrap();
    assert!(body.contains("data-code=\"no_session\""), "{body}");
    assert!(!body.contains("talks"), "no data without a session");
    let forged =
        w.ui.get(
            "/",
            &format!(
                "backchannel_ui_{}=00000000000000000000000000000000",
                w.ui.base.rsplit(':').next().unwrap()
            ),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let cookie = w.ui.session().await;
    assert_eq!(w.ui.get("/", &cookie).await.status(), StatusCode::OK);
    let port = w.ui.base.rsplit(':').next().unwrap().to_string();
    // DNS rebinding: a page on another name resolved to 127.0.0.1.
    for host in [
        format!("evil.example:{port}"),
        format!("localhost:{port}"),
        "127.0.0.1".into(),
    ] {
        let r =
            w.ui.http
                .get(format!("{}/", w.ui.base))
                .header(header::HOST, &host)
                .header(header::COOKIE, &cookie)
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert!(!r.text().await.unwrap().contains("talks"));
    }
    // The launch exchange checks the Host too.
    let fresh = w.ui.handle.new_launch_url();
    let r =
        w.ui.http
            .get(&fresh)
            .header(header::HOST, format!("evil.example:{port}"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test]
async fn a_form_from_another_origin_or_none_changes_nothing() {
    let mut w = World::new(true).await;
    let cookie = w.ui.session().await;
    let path = format!("/channels/{}/send", w.channel.to_hex());
    for origin in [Some("http://evil.example"), Some("null"), None] {
        let mut req =
            w.ui.http
                .post(format!("{}{path}", w.ui.base))
                .header(header::COOKIE, &cookie)
                .form(&[("text", "forged"), ("reply_to", "")]);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin:?}");
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("data-code=\"wrong_origin\""));
    }
    let r =
        w.ui.post(
            &path,
            &cookie,
            &[("text", "from the\r\npage"), ("reply_to", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let report = w.red.sync().await.unwrap();
    let texts: Vec<_> = report
        .received
        .iter()
        .filter_map(|e| e.text.clone())
        .collect();
    assert_eq!(
        texts,
        ["from the\npage"],
        "only the form from the page was sent, its lines ending as the CLI's do"
    );
}

#[tokio::test]
async fn every_response_forbids_inline_script_framing_caching_and_cors() {
    let w = World::new(true).await;
    let cookie = w.ui.session().await;
    let paths = [
        "/",
        "/alerts",
        "/safety",
        "/outbox",
        "/assets/app.js",
        "/nowhere",
    ];
    for (path, cookie) in paths
        .iter()
        .map(|p| (*p, cookie.as_str()))
        .chain([("/", "")])
    {
        let r =
            w.ui.http
                .get(format!("{}{path}", w.ui.base))
                .header(header::COOKIE, cookie)
                .header(header::ORIGIN, "http://evil.example")
                .send()
                .await
                .unwrap();
        let hd = r.headers();
        let csp = hd[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert_eq!(hd[header::CACHE_CONTROL], "no-store", "{path}");
        assert_eq!(hd[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert!(
            hd.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
            "{path}"
        );
    }
    let page = w.ui.page("/", &cookie).await;
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "no inline script or style"
    );
    assert!(
        !page.contains("http://") || !page.replace(&w.relay.url, "").contains("http://"),
        "nothing fetched from elsewhere"
    );
}

#[tokio::test]
async fn a_non_loopback_address_is_refused() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let shared = Shared::new(client(&relay, dir.path(), "blue").await);
    for addr in ["0.0.0.0:0", "192.0.2.1:0", "[::]:0"] {
        let got = Ui::bind(addr.parse().unwrap(), shared.clone(), UiConfig::default()).await;
        assert!(matches!(got, Err(UiError::NotLoopback(_))), "{addr}");
    }
}

#[tokio::test]
async fn an_idle_session_ends_and_the_terminal_is_told() {
    let w = World::new(true).await;
    let cookie = w.ui.session().await;
    let mut notices = w.ui.handle.notices();
    w.ui.advance(Duration::from_secs(25 * 60));
    assert_eq!(w.ui.get("/", &cookie).await.status(), StatusCode::OK);
    w.ui.advance(Duration::from_secs(31 * 60));
    let r = w.ui.get("/", &cookie).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("session_idle"));
    assert!(matches!(
        next_notice(&mut notices).await,
        Notice::SessionEnded(_)
    ));
    assert_eq!(
        w.ui.get("/", &cookie).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn consent_is_given_to_exactly_the_proposal_shown() {
    let w = World::new(false).await;
    let cookie = w.ui.session().await;
    let path = format!("/channels/{}", w.channel.to_hex());
    let page = w.ui.page(&path, &cookie).await;
    let digest = w.blue.lock().await.consent(w.channel).unwrap().unwrap();
    assert!(
        page.contains(&format!("value=\"{}\"", digest.digest.to_hex())),
        "the accept form names the digest shown"
    );
    for line in &digest.lines {
        assert!(
            page.contains(&backchannel_protocol::commitments::graph::escape(line)),
            "the statement is shown: {line}"
        );
    }
    assert!(page.contains("Accept exactly this proposal"));
    let wrong = "ab".repeat(32);
    let r =
        w.ui.post(&format!("{path}/accept"), &cookie, &[("proposal", &wrong)])
            .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        w.blue
            .lock()
            .await
            .consent(w.channel)
            .unwrap()
            .unwrap()
            .awaits_you,
        "nothing accepted"
    );
    let r =
        w.ui.post(
            &format!("{path}/accept"),
            &cookie,
            &[("proposal", &digest.digest.to_hex())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    w.sync_blue().await;
    let page = w.ui.page(&path, &cookie).await;
    assert!(page.contains("Nothing awaits an answer"), "{page}");
    assert!(page.contains("id=\"compose\""));
}

#[tokio::test]
async fn a_decline_needs_a_reason_and_ends_the_proposal() {
    let mut w = World::new(false).await;
    let cookie = w.ui.session().await;
    let path = format!("/channels/{}/decline", w.channel.to_hex());
    let r = w.ui.post(&path, &cookie, &[("reason", "  ")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        w.blue
            .lock()
            .await
            .consent(w.channel)
            .unwrap()
            .unwrap()
            .awaits_you
    );
    let r =
        w.ui.post(&path, &cookie, &[("reason", "not with this observer")])
            .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    w.mediator.sync().await.unwrap();
    let status = w.mediator.channels().unwrap()[0].status.clone();
    assert_eq!(status, "declined by blue");
}

#[tokio::test]
async fn messages_keep_their_direction_replies_thread_and_receipts_show() {
    let mut w = World::new(true).await;
    let cookie = w.ui.session().await;
    let arabic = "نقترح وقف إطلاق النار عند منتصف الليل";
    let first = w.red.send_text(w.channel, arabic, None).await.unwrap();
    w.sync_blue().await;
    let path = format!("/channels/{}", w.channel.to_hex());
    // Blue replies through the preview, then the send.
    let preview =
        w.ui.post(
            &format!("{path}/preview"),
            &cookie,
            &[("text", "<b>agreed</b>"), ("reply_to", &first.to_hex())],
        )
        .await;
    assert_eq!(preview.status(), StatusCode::OK);
    let shown = preview.text().await.unwrap();
    assert!(
        shown.contains("&lt;b&gt;agreed&lt;/b&gt;"),
        "the preview shows the text, escaped"
    );
    assert!(shown.contains("red</bdi> (party) gets the text"), "{shown}");
    let sent =
        w.ui.post(
            &format!("{path}/send"),
            &cookie,
            &[("text", "<b>agreed</b>"), ("reply_to", &first.to_hex())],
        )
        .await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let page = w.ui.page(&path, &cookie).await;
    assert!(
        page.contains(&format!("<p class=\"text\" dir=\"auto\">{arabic}</p>")),
        "{page}"
    );
    assert!(page.contains("<code dir=\"ltr\""), "ids run left to right");
    let thread = &page[page.find(&format!("id=\"m-{}\"", first.to_hex())).unwrap()..];
    let reply_at = thread.find("&lt;b&gt;agreed").unwrap();
    let replies_at = thread.find("<ol class=\"replies\">").unwrap();
    assert!(
        replies_at < reply_at,
        "the reply sits under the message it answers"
    );
    assert!(
        page.contains("data-member=\"red\">") && page.contains("red</bdi> awaiting"),
        "red has not receipted yet"
    );
    // Red and the mediator sync, and receipt; blue learns it.
    w.red.sync().await.unwrap();
    w.mediator.sync().await.unwrap();
    for c in [&mut w.red, &mut w.mediator] {
        c.send_receipt(w.channel).await.unwrap();
    }
    w.sync_blue().await;
    let page = w.ui.page(&path, &cookie).await;
    assert!(
        page.contains("class=\"receipt received\" data-member=\"red\""),
        "{page}"
    );
    assert!(
        page.contains("class=\"receipt received\" data-member=\"mediator\""),
        "{page}"
    );
}

#[tokio::test]
async fn an_alert_is_shown_with_what_to_do_and_dismissed() {
    let mut w = World::new(true).await;
    let cookie = w.ui.session().await;
    let dropped = w.red.send_text(w.channel, "one", None).await.unwrap();
    w.relay.hostile.take(dropped, "blue");
    w.red.send_text(w.channel, "two", None).await.unwrap();
    w.sync_blue().await;
    let page = w.ui.page("/alerts", &cookie).await;
    assert!(page.contains("data-kind=\"gap\""), "{page}");
    assert!(
        page.contains("What to do:</strong> messages were withheld or lost"),
        "{page}"
    );
    let nav = w.ui.page("/", &cookie).await;
    assert!(
        nav.contains("Alerts <span class=\"count alert\">1</span>"),
        "{nav}"
    );
    let id = w.blue.lock().await.open_alerts()[0].id.0;
    let r =
        w.ui.post(&format!("/alerts/{id}/dismiss"), &cookie, &[])
            .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(w.blue.lock().await.open_alerts().is_empty());
    let page = w.ui.page("/alerts", &cookie).await;
    assert!(
        page.contains("No open alerts") && page.contains("1 dismissed or cleared"),
        "{page}"
    );
    let unknown =
        w.ui.post(&format!("/alerts/{}/dismiss", id + 100), &cookie, &[])
            .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_key_is_marked_verified_only_with_the_comparison_confirmed() {
    let w = World::new(true).await;
    let cookie = w.ui.session().await;
    let page = w.ui.page("/safety", &cookie).await;
    let (number, _) = w.blue.lock().await.safety_number(&h("red")).unwrap();
    let first_line = number.to_string().lines().next().unwrap().to_string();
    assert!(page.contains(&first_line), "{page}");
    let r =
        w.ui.post("/safety/verify", &cookie, &[("peer", "red")])
            .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_ne!(w.trust("red").await, "verified");
    let r =
        w.ui.post(
            "/safety/verify",
            &cookie,
            &[("peer", "red"), ("compared", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(w.trust("red").await, "verified");
    let channel =
        w.ui.page(&format!("/channels/{}", w.channel.to_hex()), &cookie)
            .await;
    assert!(
        channel.contains("data-key=\"verified\">verified"),
        "{channel}"
    );
}

#[tokio::test]
async fn an_open_page_is_told_when_something_changes() {
    let w = World::new(true).await;
    let cookie = w.ui.session().await;
    let mut events = w.ui.get("/events", &cookie).await;
    assert_eq!(events.status(), StatusCode::OK);
    assert!(events.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    w.blue.changed();
    let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await
        .expect("an event in time")
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&chunk).contains("event: changed"),
        "{chunk:?}"
    );
    // Without the session, no stream.
    assert_eq!(
        w.ui.get("/events", "").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Blue's assurance to red, as the form sends it.
const ASSURANCE: &[(&str, &str)] = &[
    ("wording", "Blue will not strike Red first."),
    ("to", "red"),
    ("commitment", "refrain"),
    ("action", "ASSAULT"),
    ("unless_attacked_by", "red"),
    ("from", "now"),
    ("until_revoked", "yes"),
    ("formality", "non_paper"),
    ("authorized_by", "the cabinet"),
    ("language", "en"),
];

impl World {
    /// Blue gives its assurance through the form: its id.
    async fn assure(&self, cookie: &str) -> String {
        let path = format!("/channels/{}/act/assure", self.channel.to_hex());
        let sent = self
            .ui
            .post(&format!("{path}/send"), cookie, ASSURANCE)
            .await;
        assert_eq!(sent.status(), StatusCode::SEE_OTHER);
        let to = sent.headers()[header::LOCATION].to_str().unwrap();
        to.rsplit("#c-").next().unwrap().to_string()
    }
}

#[tokio::test]
async fn an_assurance_given_in_its_form_is_previewed_checked_and_on_every_board() {
    let mut w = World::new(true).await;
    let cookie = w.ui.session().await;
    let path = format!("/channels/{}/act/assure", w.channel.to_hex());
    let form = w.ui.page(&path, &cookie).await;
    assert!(form.contains("name=\"wording\"") && form.contains("<option value=\"ASSAULT\">"));
    // Checked as the CLI checks: no silent forever, no unknown actor;
    // the form comes back with what was typed.
    let mut open_ended: Vec<(&str, &str)> = ASSURANCE.to_vec();
    open_ended.retain(|(n, _)| *n != "until_revoked");
    let r =
        w.ui.post(&format!("{path}/preview"), &cookie, &open_ended)
            .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(page.contains("no silent forever"), "{page}");
    assert!(page.contains("Blue will not strike Red first.</textarea>"));
    let mut unknown: Vec<(&str, &str)> = ASSURANCE.to_vec();
    unknown.retain(|(n, _)| *n != "to");
    unknown.push(("to", "rde"));
    let r =
        w.ui.post(&format!("{path}/preview"), &cookie, &unknown)
            .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text().await.unwrap().contains("red"),
        "the near name is suggested"
    );
    // The preview: the terms and the payload exactly as sent.
    let r =
        w.ui.post(&format!("{path}/preview"), &cookie, ASSURANCE)
            .await;
    assert_eq!(r.status(), StatusCode::OK);
    let preview = r.text().await.unwrap();
    assert!(
        preview.contains("&quot;type&quot;: &quot;assurance&quot;"),
        "{preview}"
    );
    assert!(preview.contains("the cabinet") && preview.contains("red</bdi> (party) gets the text"));
    assert!(
        !preview.contains("name=\"confirm\""),
        "an assurance can be revoked: no confirmation"
    );
    let id = w.assure(&cookie).await;
    let board =
        w.ui.page(&format!("/channels/{}/board", w.channel.to_hex()), &cookie)
            .await;
    assert!(board.contains(&format!("id=\"c-{id}\"")), "{board}");
    assert!(
        board.contains("state-active") || board.contains("state-proposed"),
        "{board}"
    );
    w.red.sync().await.unwrap();
    let reds = w.red.board(w.channel, w.red.now()).unwrap();
    assert_eq!(reds.assurances.len(), 1);
    assert_eq!(reds.assurances[0].id, id);
    assert_eq!(reds.assurances[0].assurance.authorized_by, "the cabinet");
}

#[tokio::test]
async fn a_party_is_not_offered_the_mediators_finding_and_a_forged_one_is_refused() {
    let mut w = World::new(true).await;
    let cookie = w.ui.session().await;
    let id = w.assure(&cookie).await;
    let base = format!("/channels/{}/act", w.channel.to_hex());
    let acts = w.ui.page(&base, &cookie).await;
    assert!(acts.contains(&format!("{base}/revoke")), "{acts}");
    let board =
        w.ui.page(&format!("/channels/{}/board", w.channel.to_hex()), &cookie)
            .await;
    assert!(
        board.contains(&format!("{base}/revoke?about={id}")),
        "its issuer may revoke it: {board}"
    );
    assert!(!acts.contains(&format!("{base}/find\"")), "{acts}");
    assert!(
        !acts.contains(&format!("{base}/convey\"")),
        "only the mediator conveys"
    );
    assert_eq!(
        w.ui.get(&format!("{base}/find"), &cookie).await.status(),
        StatusCode::FORBIDDEN
    );
    let forged = [
        ("assurance", id.as_str()),
        ("breached", "yes"),
        ("text", "blue fired first"),
        ("confirm", "yes"),
    ];
    let r =
        w.ui.post(&format!("{base}/find/send"), &cookie, &forged)
            .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // An act that cannot be undone needs its box ticked.
    let revoke = [
        ("which", &*format!("assurance:{id}")),
        ("text", "withdrawn"),
        ("effective", "now"),
    ];
    let r =
        w.ui.post(&format!("{base}/revoke/send"), &cookie, &revoke)
            .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    w.mediator.sync().await.unwrap();
    let board = w.mediator.board(w.channel, w.mediator.now()).unwrap();
    assert!(board.assurances[0].findings.is_empty() && board.assurances[0].schedule.is_empty());
    assert!(
        board.unauthorized.is_empty(),
        "nothing forged reached the others"
    );
    assert_ne!(
        board.assurances[0].state,
        backchannel_protocol::commitments::fold::State::Revoked
    );
}

#[tokio::test]
async fn a_what_if_shows_the_cascade_in_words_and_as_a_graph() {
    let mut w = World::new(true).await;
    let cookie = w.ui.session().await;
    w.assure(&cookie).await;
    w.red.sync().await.unwrap();
    let line = backchannel_protocol::commitments::structured::RedLine::new(
        None,
        backchannel_protocol::commitments::structured::Action {
            kind: backchannel_protocol::commitments::plover::EventType::parse("ASSAULT").unwrap(),
            modes: vec![],
            target: Some(
                backchannel_protocol::commitments::structured::Actor::Member("red".into()),
            ),
        },
        backchannel_protocol::commitments::structured::Action {
            kind: backchannel_protocol::commitments::plover::EventType::parse("ASSAULT").unwrap(),
            modes: vec![],
            target: Some(
                backchannel_protocol::commitments::structured::Actor::Member("blue".into()),
            ),
        },
        "If Red is struck, it strikes back.".into(),
    );
    w.red
        .send_structured(
            w.channel,
            backchannel_protocol::commitments::Structured::RedLine(line),
            None,
        )
        .await
        .unwrap();
    w.sync_blue().await;
    let path = format!(
        "/channels/{}/whatif?e1_actor=blue&e1_action=ASSAULT&e1_target=red",
        w.channel.to_hex()
    );
    let page = w.ui.page(&path, &cookie).await;
    assert!(page.contains("<svg"), "{page}");
    assert!(!page.contains("<?xml"));
    assert!(page.contains("The cascade: 2 steps"), "{page}");
    let bad =
        w.ui.page(
            &format!(
                "/channels/{}/whatif?e1_actor=nobody&e1_action=ASSAULT",
                w.channel.to_hex()
            ),
            &cookie,
        )
        .await;
    assert!(bad.contains("class=\"error\""), "{bad}");
}

#[tokio::test]
async fn an_exchange_opened_in_the_interface_completes_and_shows_the_offers() {
    let mut w = World::new(true).await;
    let cookie = w.ui.session().await;
    let path = format!("/channels/{}/exchanges", w.channel.to_hex());
    let r =
        w.ui.post(
            &path,
            &cookie,
            &[
                ("with", "red"),
                ("terms", "Simultaneous gestures."),
                ("deadline", "+1h"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let x = w.blue.lock().await.exchanges()[0].exchange_id;
    let r =
        w.ui.post(
            &format!("{path}/{}/submit", x.to_hex()),
            &cookie,
            &[("offer", "Blue withdraws two brigades.")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("your offer is in"));
    w.red.sync().await.unwrap();
    w.red
        .exchange_submit(x, "Red releases the prisoners.")
        .await
        .unwrap();
    let r =
        w.ui.post(&format!("{path}/{}/status", x.to_hex()), &cookie, &[])
            .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("Red releases the prisoners."), "{page}");
    assert!(page.contains("<strong>released</strong>"), "{page}");
}

/// The hidden field a preview page carries, by name.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect(name) + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn an_act_is_sent_with_the_times_its_preview_showed() {
    let w = World::new(true).await;
    let cookie = w.ui.session().await;
    let path = format!("/channels/{}/act/assure", w.channel.to_hex());
    let preview =
        w.ui.post(&format!("{path}/preview"), &cookie, ASSURANCE)
            .await;
    let preview = preview.text().await.unwrap();
    let at = hidden(&preview, "previewed_at");
    // Ten minutes pass on blue's clock between the preview and the send.
    let shown: i64 = at.parse().unwrap();
    let later = backchannel_protocol::Timestamp(shown + 600_000);
    w.blue.lock().await.set_clock(Arc::new(move || later));
    let mut form: Vec<(&str, &str)> = ASSURANCE.to_vec();
    form.push(("previewed_at", &at));
    let sent = w.ui.post(&format!("{path}/send"), &cookie, &form).await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let c = w.blue.lock().await;
    let board = c.board(w.channel, later).unwrap();
    assert_eq!(
        board.assurances[0].assurance.valid_from_ms, shown,
        "\"now\" is the preview's now, as it showed"
    );
    drop(c);
    // A preview older than half an hour is not sent.
    let much_later = backchannel_protocol::Timestamp(shown + 31 * 60_000);
    w.blue.lock().await.set_clock(Arc::new(move || much_later));
    let stale = w.ui.post(&format!("{path}/send"), &cookie, &form).await;
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    assert_eq!(
        w.blue
            .lock()
            .await
            .board(w.channel, much_later)
            .unwrap()
            .assurances
            .len(),
        1
    );
}

#[tokio::test]
async fn a_form_naming_what_it_may_not_is_refused_as_the_cli_refuses_it() {
    let w = World::new(true).await;
    let cookie = w.ui.session().await;
    let id = w.assure(&cookie).await;
    let base = format!("/channels/{}/act", w.channel.to_hex());
    // A message of no channel here.
    let r =
        w.ui.post(
            &format!("{base}/acknowledge/preview"),
            &cookie,
            &[("message", &"ab".repeat(16)), ("text", "ok")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // One's own assurance as the one reciprocated: not offered, and refused.
    let mut own: Vec<(&str, &str)> = ASSURANCE.to_vec();
    own.push(("of", &id));
    let r =
        w.ui.post(&format!("{base}/reciprocate/send"), &cookie, &own)
            .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Half a proviso is not silently dropped.
    let mut half: Vec<(&str, &str)> = ASSURANCE.to_vec();
    half.push(("provided_action", "RETREAT"));
    let r =
        w.ui.post(&format!("{base}/assure/preview"), &cookie, &half)
            .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("a proviso needs who is to act"));
    let c = w.blue.lock().await;
    assert_eq!(
        c.board(w.channel, c.now()).unwrap().assurances.len(),
        1,
        "nothing more was sent"
    );
}

#[tokio::test]
async fn a_mediator_that_cannot_read_sees_how_much_it_holds_as_stubs_and_is_offered_no_finding() {
    backchannel_testkit::install_ring_default();
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut mediator = client(&relay, dir.path(), "mediator").await;
    let mut blue = client(&relay, dir.path(), "blue").await;
    let mut red = client(&relay, dir.path(), "red").await;
    let blind = Policy {
        mediator_reads: false,
        ..POLICY
    };
    let channel = mediator
        .create_channel("blind", &[h("blue"), h("red")], &[], blind)
        .await
        .unwrap();
    for p in [&mut red, &mut blue] {
        p.sync().await.unwrap();
        let digest = p.consent(channel).unwrap().unwrap().digest;
        p.accept(channel, digest).await.unwrap();
    }
    for c in [&mut mediator, &mut red, &mut blue] {
        c.sync().await.unwrap();
    }
    let values = backchannel_ui::forms::Values(
        ASSURANCE
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    );
    let body = backchannel_ui::forms::build(
        &blue,
        channel,
        backchannel_ui::forms::form("assure").unwrap(),
        &values,
        blue.now(),
    )
    .unwrap();
    blue.send_structured(channel, body, None).await.unwrap();
    mediator.sync().await.unwrap();
    let ui = Served::start(Shared::new(mediator)).await;
    let cookie = ui.session().await;
    let board = ui
        .page(&format!("/channels/{}/board", channel.to_hex()), &cookie)
        .await;
    assert!(board.contains("you hold only as stubs"), "{board}");
    assert!(board.contains("Assurances (0)"), "{board}");
    let acts = ui
        .page(&format!("/channels/{}/act", channel.to_hex()), &cookie)
        .await;
    assert!(
        !acts.contains("/act/find\""),
        "no finding where the mediator cannot read: {acts}"
    );
    assert!(acts.contains("/act/report\""), "it still reports: {acts}");
    assert!(
        !acts.contains("/act/convey\""),
        "it reads nothing to convey: {acts}"
    );
    drop(red);
}
