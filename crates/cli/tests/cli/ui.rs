//! `ui`: the web interface served by the binary over a real store, as the
//! store's one writer.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::Scene;

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
    let mut ui = s
        .blue
        .command(&["ui", "--no-open"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let link = launch_link(ui.stderr.take().unwrap());
    assert!(link.starts_with("http://127.0.0.1:"), "{link}");
    let base = link.split("/launch").next().unwrap().to_string();
    backchannel_testkit::install_ring_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |url: String, cookie: String| {
        let http = http.clone();
        rt.block_on(async move {
            let r = http.get(url).header("cookie", cookie).send().await.unwrap();
            let cookie = r
                .headers()
                .get("set-cookie")
                .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string());
            (r.status().as_u16(), cookie, r.text().await.unwrap())
        })
    };
    let (status, cookie, _) = get(link.clone(), String::new());
    assert_eq!(status, 303);
    let cookie = cookie.expect("a session cookie");
    let (status, _, page) = get(format!("{base}/"), cookie.clone());
    assert_eq!(status, 200);
    assert!(page.contains("talks"), "{page}");
    // Another command on the store is handed to the running ui.
    s.blue.run(&["send", &id[..8], "handed over"]);
    let (_, _, page) = get(format!("{base}/channels/{id}"), cookie.clone());
    assert!(page.contains("handed over"), "{page}");
    // Red's reply arrives by push and is on the page without blue acting.
    s.red.run(&["sync"]);
    s.red.run(&["send", &id[..8], "pushed in"]);
    let shown = crate::wait_for(Duration::from_secs(20), || {
        get(format!("{base}/channels/{id}"), cookie.clone())
            .2
            .contains("pushed in")
    });
    ui.kill().unwrap();
    ui.wait().unwrap();
    assert!(shown, "the ui's own loop synced red's message");
}
