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
