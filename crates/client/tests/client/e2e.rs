//! Mediator and two parties, end to end.

use backchannel_client::LogEntry;
use backchannel_protocol::payload::Payload;
use backchannel_testkit::contains;

use crate::alert_member;
use crate::{h, Cast};

const TEXT: &str = "We will not strike first, as long as we are not attacked first.";
const REPLY: &str = "Understood. The same holds on our side.";

fn texts(log: &[LogEntry]) -> Vec<(String, Option<String>, bool)> {
    log.iter()
        .filter(|e| e.kind == "text")
        .map(|e| (e.sender.clone(), e.text.clone(), e.stub))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_talk_through_a_mediator_who_cannot_read() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    for c in [&cast.mediator, &cast.blue, &cast.red] {
        let v = c.channels().unwrap();
        assert_eq!(v[0].status, "active", "{}", c.me());
        assert_eq!(
            v[0].members
                .iter()
                .map(|m| m.answer.as_str())
                .collect::<Vec<_>>(),
            ["accepted", "proposer", "accepted"]
        );
    }
    let red_view = &cast.red.channels().unwrap()[0];
    assert_eq!(
        red_view.members[0].key,
        "introduced by mediator, unverified"
    );

    let m1 = cast.blue.send_text(id, TEXT, None).await.unwrap();
    // What the relay holds now: feed every ciphertext to the mediator.
    let stored = cast.relay_envelopes();
    assert!(
        stored.iter().any(|e| e.recipient == h("mediator")),
        "the mediator gets a copy (a stub)"
    );
    for env in &stored {
        if let Some(plain) = cast.mediator.try_decrypt_copy(env) {
            assert!(
                !contains(&plain, TEXT.as_bytes()),
                "the mediator decrypted the text"
            );
            assert!(matches!(
                Payload::from_plaintext(&plain).unwrap(),
                Payload::Stub { .. } | Payload::Full { .. }
            ));
        }
    }
    assert!(!contains(&cast.relay.file_bytes(), TEXT.as_bytes()));

    let r = cast.red.sync().await.unwrap();
    assert_eq!(
        r.received
            .iter()
            .filter_map(|e| e.text.clone())
            .collect::<Vec<_>>(),
        [TEXT]
    );
    cast.red.send_text(id, REPLY, Some(m1)).await.unwrap();
    cast.sync_all().await;

    let blue_log = cast.blue.log(Some(id)).unwrap();
    let red_log = cast.red.log(Some(id)).unwrap();
    let med_log = cast.mediator.log(Some(id)).unwrap();
    assert_eq!(
        texts(&blue_log),
        [
            ("blue".into(), Some(TEXT.into()), false),
            ("red".into(), Some(REPLY.into()), false)
        ]
    );
    assert_eq!(texts(&red_log), texts(&blue_log));
    assert_eq!(
        texts(&med_log),
        [("blue".into(), None, true), ("red".into(), None, true)],
        "the mediator holds stubs"
    );
    let reply = red_log
        .iter()
        .find(|e| e.text.as_deref() == Some(REPLY))
        .unwrap();
    assert_eq!(reply.in_reply_to.as_deref(), Some(m1.to_hex().as_str()));
    // Every member agrees on every digest, stubs included.
    let digests = |log: &[LogEntry]| {
        log.iter()
            .filter(|e| e.kind == "text")
            .map(|e| e.digest.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(digests(&med_log), digests(&blue_log));
    // No alert anywhere; nothing held back.
    for c in [&cast.mediator, &cast.blue, &cast.red] {
        assert!(c.alerts().unwrap().is_empty(), "{}", c.me());
        assert!(c.log(None).unwrap().iter().all(|e| !e.held_back));
    }
    // The mediator's store holds no text either.
    assert!(!contains(
        &std::fs::read(cast.mediator.store_path()).unwrap(),
        TEXT.as_bytes()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mediator_reads_when_every_party_accepted_mediator_reads() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(true).await;
    cast.blue.send_text(id, TEXT, None).await.unwrap();
    let mut read = 0;
    for env in cast
        .relay_envelopes()
        .iter()
        .filter(|e| e.recipient == h("mediator"))
    {
        let plain = cast.mediator.try_decrypt_copy(env).unwrap();
        read += usize::from(contains(&plain, TEXT.as_bytes()));
    }
    assert_eq!(read, 1);
    cast.sync_all().await;
    let log = cast.mediator.log(Some(id)).unwrap();
    assert_eq!(texts(&log), [("blue".into(), Some(TEXT.into()), false)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_the_relay_adds_gets_nothing() {
    let mut cast = Cast::new().await;
    backchannel_testkit::Principal::join(&cast.relay.url, "ghost", 2).await;
    let id = cast.open_channel(false).await;
    // A relay that lies about routing: it adds ghost to the channel.
    cast.relay.add_routing_member(id, &h("ghost"));
    let routing = cast.relay.store().channel(&id).unwrap().unwrap();
    assert!(routing.members.contains(&h("ghost")));

    // Every member notices at its next sync, and sending is blocked.
    for c in [&mut cast.mediator, &mut cast.blue, &mut cast.red] {
        let r = c.sync().await.unwrap();
        let kinds: Vec<_> = r
            .alerts
            .iter()
            .map(|a| (a.kind.code(), alert_member(a)))
            .collect();
        assert_eq!(kinds, [("membership_mismatch", "ghost")], "{}", c.me());
    }
    let err = cast.blue.send_text(id, TEXT, None).await.unwrap_err();
    assert_eq!(err.code(), "blocked");
    // The user reads the alert and acts (dismisses it); still nothing goes to ghost.
    let alert_id = cast.blue.open_alerts()[0].id;
    assert!(cast.blue.dismiss_alert(alert_id).unwrap());
    cast.blue.send_text(id, TEXT, None).await.unwrap();
    cast.red.sync().await.unwrap();
    assert!(cast
        .relay
        .store()
        .mailbox(&h("ghost"), 0, 100)
        .unwrap()
        .is_empty());
    assert_eq!(
        cast.relay.posted_to(&h("ghost")),
        0,
        "nothing was ever encrypted to ghost"
    );
    for c in [&cast.mediator, &cast.blue, &cast.red] {
        let members: Vec<_> = c.channels().unwrap()[0]
            .members
            .iter()
            .map(|m| m.handle.clone())
            .collect();
        assert_eq!(
            members,
            ["blue", "mediator", "red"],
            "membership comes from the creation payload"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_proposal_keeps_the_channel_closed() {
    let mut cast = Cast::new().await;
    let policy = backchannel_protocol::payload::Policy {
        mediator_reads: false,
        receipt_deadline_s: 60,
        heartbeat_interval_s: 60,
    };
    let id = cast
        .mediator
        .create_channel("t", &[h("blue"), h("red")], &[], policy)
        .await
        .unwrap();
    cast.blue.sync().await.unwrap();
    cast.red.sync().await.unwrap();
    cast.blue
        .accept(id, crate::proposal(&cast.blue, id))
        .await
        .unwrap();
    cast.red
        .decline(id, "not through this intermediary")
        .await
        .unwrap();
    cast.sync_all().await;
    for c in [&cast.mediator, &cast.blue, &cast.red] {
        assert_eq!(c.channels().unwrap()[0].status, "declined by red");
    }
    let err = cast.blue.send_text(id, "hello?", None).await.unwrap_err();
    assert_eq!(err.code(), "channel_refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_and_a_leave_open_a_new_epoch_and_raise_no_alert() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    let path = cast.dir.path().join("green.store");
    let mut green = backchannel_client::Client::create(
        &path,
        crate::PASS,
        backchannel_client::KdfParams::INSECURE_FOR_TESTS,
        &cast.relay.url,
        &h("green"),
    )
    .await
    .unwrap();
    let t = cast.clock.clone();
    green.set_clock(std::sync::Arc::new(move || {
        backchannel_protocol::Timestamp(t.load(std::sync::atomic::Ordering::SeqCst))
    }));
    cast.blue
        .send_text(id, "before the change", None)
        .await
        .unwrap();
    cast.sync_all().await;

    // Green joins, red leaves, and the mediator will read.
    let policy = backchannel_protocol::payload::Policy {
        mediator_reads: true,
        receipt_deadline_s: 3600,
        heartbeat_interval_s: 600,
    };
    cast.mediator
        .amend(id, &[h("green")], &[], &[h("red")], policy)
        .await
        .unwrap();
    assert!(
        cast.red.send_text(id, "still talking", None).await.is_ok(),
        "the old epoch goes on until the change is accepted"
    );
    for c in [&mut cast.blue, &mut green] {
        let r = c.sync().await.unwrap();
        assert!(r.alerts.is_empty(), "{}: {:?}", c.me(), r.alerts);
        c.accept(id, crate::proposal(c, id)).await.unwrap();
    }
    for _ in 0..2 {
        for c in [
            &mut cast.mediator,
            &mut cast.blue,
            &mut cast.red,
            &mut green,
        ] {
            let r = c.sync().await.unwrap();
            assert!(r.alerts.is_empty(), "{}: {:?}", c.me(), r.alerts);
        }
    }
    for c in [&cast.mediator, &cast.blue, &green] {
        let v = &c.channels().unwrap()[0];
        assert_eq!((v.status.as_str(), v.epoch), ("active", 2), "{}", c.me());
        assert_eq!(
            v.members
                .iter()
                .map(|m| m.handle.as_str())
                .collect::<Vec<_>>(),
            ["blue", "green", "mediator"]
        );
        assert!(v.mediator_reads);
    }
    assert!(cast.red.channels().unwrap()[0].status.starts_with("left"));
    assert!(cast.red.send_text(id, "hello?", None).await.is_err());

    cast.blue
        .send_text(id, "after the change", None)
        .await
        .unwrap();
    for c in [&mut cast.mediator, &mut green, &mut cast.red] {
        c.sync().await.unwrap();
    }
    for c in [&cast.mediator, &green] {
        assert!(
            c.log(Some(id))
                .unwrap()
                .iter()
                .any(|e| e.text.as_deref() == Some("after the change")),
            "{} reads it",
            c.me()
        );
    }
    assert!(!cast
        .red
        .log(Some(id))
        .unwrap()
        .iter()
        .any(|e| e.text.as_deref() == Some("after the change")));
    // Past every deadline: receipts were due only from the new epoch's members.
    cast.advance_s(2 * 3600);
    for c in [
        &mut cast.mediator,
        &mut cast.blue,
        &mut cast.red,
        &mut green,
    ] {
        c.sync().await.unwrap();
        assert!(
            c.open_alerts().is_empty(),
            "{}: {:?}",
            c.me(),
            c.open_alerts()
        );
    }
}
