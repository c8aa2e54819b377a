//! `ui`: the web interface served by the binary over a real store, as the
//! store's one writer.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::{Scene, User};

#[test]
fn ui_refuses_an_address_other_machines_can_reach() {
    let s = Scene::new();
    for addr in ["0.0.0.0", "192.0.2.7", "::"] {
        let out = s.blue.try_run(&["ui", "--bind", addr, "--no-open"]);
        assert_eq!(out.status.code(), Some(2), "{addr}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a loopback address"), "{err}");
    }
}

/// A running `backchannel ui`, its launch link redeemed.
struct Running {
    child: std::process::Child,
    base: String,
    cookie: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Running {
    fn start(user: &User) -> Running {
        let mut child = user
            .command(&["ui", "--no-open"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let link = launch_link(child.stderr.take().unwrap());
        assert!(link.starts_with("http://127.0.0.1:"), "{link}");
        let base = link.split("/launch").next().unwrap().to_string();
        backchannel_testkit::install_ring_default();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let cookie = rt.block_on(async {
            let r = http.get(&link).send().await.unwrap();
            assert_eq!(r.status(), 303);
            let c = r.headers()["set-cookie"].to_str().unwrap();
            c.split(';').next().unwrap().to_string()
        });
        Running {
            child,
            base,
            cookie,
            http,
            rt,
        }
    }

    /// A page's HTML.
    fn page(&self, path: &str) -> String {
        self.rt.block_on(async {
            let r = self
                .http
                .get(format!("{}{path}", self.base))
                .header("cookie", &self.cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.text().await.unwrap()
        })
    }
}

impl Running {
    /// A form posted from the interface's own page: status and HTML.
    fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        self.rt.block_on(async {
            let r = self
                .http
                .post(format!("{}{path}", self.base))
                .header("cookie", &self.cookie)
                .header("origin", &self.base)
                .form(form)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }
}

/// The payload a preview page shows, as JSON.
fn shown_payload(html: &str) -> serde_json::Value {
    let marker = "<pre class=\"payload\" dir=\"ltr\">";
    let start = html.find(marker).expect("a payload") + marker.len();
    let end = start + html[start..].find("</pre>").unwrap();
    let text = html[start..end]
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `open:` link the running `ui` printed.
fn launch_link(stderr: std::process::ChildStderr) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("open: ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("ui prints its launch link")
}

#[test]
fn ui_serves_the_store_and_takes_the_work_of_other_commands() {
    let s = Scene::new();
    let id = s.open_channel();
    let ui = Running::start(&s.blue);
    assert!(ui.page("/").contains("talks"));
    // Another command on the store is handed to the running ui.
    s.blue.run(&["send", &id[..8], "handed over"]);
    assert!(ui.page(&format!("/channels/{id}")).contains("handed over"));
    // Red's reply arrives by push and is on the page without blue acting.
    s.red.run(&["sync"]);
    s.red.run(&["send", &id[..8], "pushed in"]);
    let shown = crate::wait_for(Duration::from_secs(20), || {
        ui.page(&format!("/channels/{id}")).contains("pushed in")
    });
    assert!(shown, "the ui's own loop synced red's message");
}

#[test]
fn a_receipt_deadline_passing_with_no_traffic_shows_in_the_ui() {
    let s = Scene::new();
    let id = s.open_channel_with(&["--receipt-deadline", "3s"]);
    let ui = Running::start(&s.blue);
    // Handed to the ui; then red and the mediator stay silent.
    s.blue.run(&["send", &id[..8], "Are you there?"]);
    let overdue = crate::wait_for(Duration::from_secs(30), || {
        ui.page("/alerts")
            .matches("data-kind=\"ack_overdue\"")
            .count()
            == 2
    });
    assert!(
        overdue,
        "one ack_overdue per silent member, raised by the ui's own clock"
    );
}

/// A command's slug, its CLI arguments and the form's fields.
type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);

#[test]
fn the_ui_forms_build_the_payloads_the_cli_commands_build() {
    let s = Scene::new();
    let id = s.open_channel();
    let ui = Running::start(&s.blue);
    let cases: [Case<'_>; 3] = [
        (
            "assure",
            vec![
                "assure",
                &id[..8],
                "Blue will not strike Red first.",
                "--to",
                "red",
                "--refrain-from",
                "ASSAULT",
                "--unless-attacked-by",
                "red",
                "--attacker-proxies",
                "yes",
                "--until-revoked",
                "--authorized-by",
                "the cabinet",
                "--from",
                "2026-12-03T10:00Z",
                "--formality",
                "note-verbale",
            ],
            vec![
                ("wording", "Blue will not strike Red first."),
                ("to", "red"),
                ("commitment", "refrain"),
                ("action", "ASSAULT"),
                ("unless_attacked_by", "red"),
                ("attacker_proxies", "yes"),
                ("until_revoked", "yes"),
                ("authorized_by", "the cabinet"),
                ("from", "2026-12-03T10:00Z"),
                ("formality", "note_verbale"),
                ("language", "en"),
            ],
        ),
        (
            "redline",
            vec![
                "redline",
                &id[..8],
                "Any strike on Red or its ally.\n  (as agreed) ",
                "--if",
                "ASSAULT",
                "--if-by",
                "blue",
                "--if-against",
                "red",
                "--if-against",
                "outside:ally",
                "--by-proxies",
                "yes",
                "--until",
                "2027-01-01",
                "--then",
                "ASSAULT",
                "--then-against",
                "blue",
            ],
            vec![
                (
                    "wording",
                    "Any strike on Red or its ally.\r\n  (as agreed) ",
                ),
                ("trigger", "ASSAULT"),
                ("by", "blue"),
                ("against", "red, outside:ally"),
                ("by_proxies", "yes"),
                ("until", "2027-01-01"),
                ("response", "ASSAULT"),
                ("response_target", "blue"),
            ],
        ),
        (
            "report",
            vec![
                "report",
                &id[..8],
                "--actor",
                "outside:militia",
                "--action",
                "ASSAULT",
                "--target",
                "blue",
                "--from",
                "2026-11-24T02:10Z",
                "--until",
                "2026-11-24T02:40Z",
                "--lat",
                "33.312",
                "--lon",
                "44.361",
                "--radius-m",
                "2000",
                "Two drones over the depot.",
            ],
            vec![
                ("text", "Two drones over the depot."),
                ("actor", "outside:militia"),
                ("action", "ASSAULT"),
                ("target", "blue"),
                ("from", "2026-11-24T02:10Z"),
                ("until", "2026-11-24T02:40Z"),
                ("lat", "33.312"),
                ("lon", "44.361"),
                ("radius_m", "2000"),
            ],
        ),
    ];
    for (slug, mut args, form) in cases {
        args.extend(["--dry-run", "--json"]);
        let cli: serde_json::Value = serde_json::from_str(&s.blue.run(&args)).unwrap();
        let (status, html) = ui.post(&format!("/channels/{id}/act/{slug}/preview"), &form);
        assert_eq!(status, 200, "{slug}: {html}");
        assert_eq!(shown_payload(&html), cli["payload"], "{slug}");
    }
}
