//! One test per behaviour of the trust core that the simulation can show
//! exactly: each names the alert or notice, who raises it, and what it
//! names. They run on the virtual clock, so they take milliseconds.

#![allow(clippy::unwrap_used)]

use backchannel_protocol::member::{Alert, AlertKind, SendError, StoredMessage, Unreadable};
use backchannel_protocol::payload::{Body, BodyVersion, Payload};
use backchannel_protocol::{Envelope, Handle, Identity, MessageId};
use backchannel_sim::world::{h, World};
use backchannel_sim::{run, setup, Attack};

/// Alerts and notices `who` raised.
fn alerts(w: &World, who: &str) -> Vec<Alert> {
    w.nodes[&h(who)].member.alerts().to_vec()
}

fn kinds(w: &World, who: &str) -> Vec<AlertKind> {
    alerts(w, who).iter().map(|a| a.kind).collect()
}

/// Every member syncs and wakes, `n` times, a few seconds apart.
fn settle(w: &mut World, n: usize) {
    for _ in 0..n {
        w.settle_step(3_000);
    }
}

fn position_of(w: &World, who: &str, id: MessageId) -> u64 {
    w.nodes[&h(who)]
        .member
        .messages()
        .iter()
        .find(|m| m.payload.header().message_id == id)
        .map(|m| m.payload.header().seq.0)
        .unwrap()
}

/// The message `id` as `who` holds it.
fn held<'w>(w: &'w World, who: &Handle, id: MessageId) -> &'w StoredMessage {
    w.nodes[who]
        .member
        .messages()
        .iter()
        .find(|m| m.payload.header().message_id == id)
        .unwrap()
}

/// `kind ‖ u32 len ‖ json`: a structured body's bytes.
fn structured_bytes(json: &[u8]) -> Vec<u8> {
    let mut body = vec![8u8];
    body.extend_from_slice(&(json.len() as u32).to_be_bytes());
    body.extend_from_slice(json);
    body
}

/// Sends raw `body` bytes under `version` from blue; every other member
/// must keep it as an authentic, unread stub at its place with a notice of
/// `reason`, and read blue's next message without any other alert.
fn unread_everywhere(version: u8, body: &[u8], reason: Unreadable, kind_named: &str) {
    let mut w = setup(3, None);
    let id = w
        .send_tampered(&h("blue"), |m, now, c, rng| {
            m.dangerous_send_raw(now, c, BodyVersion(version), body, rng)
        })
        .unwrap();
    let seq = position_of(&w, "blue", id);
    w.send(&h("blue"), Body::Text("and a readable one".into()), None);
    settle(&mut w, 3);
    let members = w.members();
    for who in members.iter().filter(|m| m.as_str() != "blue") {
        let a = alerts(&w, who.as_str());
        assert_eq!(a.len(), 1, "{who}: {a:?}");
        assert_eq!(a[0].kind, AlertKind::UnsupportedBody);
        assert_eq!(a[0].reason, Some(reason));
        assert!(a[0].kind.is_notice());
        assert_eq!(a[0].principal, Some(h("blue")));
        assert_eq!(a[0].message_ids, [id]);
        assert_eq!(
            a[0].positions.iter().map(|s| s.0).collect::<Vec<_>>(),
            [seq]
        );
        assert!(a[0].detail.contains(kind_named), "{}", a[0].detail);
        assert!(a[0].detail.contains(reason.code()), "{}", a[0].detail);
        // Never displayed or folded: it is held as a stub.
        let held = held(&w, who, id);
        assert!(held.unsupported);
        assert!(matches!(held.payload, Payload::Stub { .. }));
    }
    assert!(kinds(&w, "blue").is_empty());
}

#[test]
fn an_authentic_body_of_a_newer_schema_is_a_notice_and_keeps_its_place() {
    let json = br#"{"type":"ceasefire_map","version":7}"#;
    unread_everywhere(
        2,
        &structured_bytes(json),
        Unreadable::Malformed,
        "structured",
    );
}

#[test]
fn a_body_version_this_client_does_not_read_still_counts_in_the_chain() {
    unread_everywhere(
        9,
        b"\x01\x00\x00\x00\x02hi",
        Unreadable::UnknownVersion,
        "version 9",
    );
}

#[test]
fn a_body_kind_this_client_does_not_know_still_counts_in_the_chain() {
    unread_everywhere(2, b"\x2a\x00\x01", Unreadable::UnknownKind, "kind 42");
}

#[test]
fn a_non_canonical_structured_body_is_never_read() {
    // The canonical form is {"text":"hi","type":"note"}: key order differs.
    let json = br#"{"type":"note","text":"hi"}"#;
    unread_everywhere(
        2,
        &structured_bytes(json),
        Unreadable::NonCanonical,
        "structured",
    );
}

#[test]
fn a_version_1_body_is_read_as_version_1_allowed_any_json() {
    let mut w = setup(3, None);
    let json = br#"{ "type": "note", "text": "old style" }"#;
    let body = structured_bytes(json);
    let id = w
        .send_tampered(&h("blue"), |m, now, c, rng| {
            m.dangerous_send_raw(now, c, BodyVersion::V1, &body, rng)
        })
        .unwrap();
    settle(&mut w, 3);
    for who in w.members().iter().filter(|m| m.as_str() != "blue") {
        assert!(alerts(&w, who.as_str()).is_empty(), "{who}");
        let held = held(&w, who, id);
        let Payload::Full {
            body: Body::Structured(s),
            ..
        } = &held.payload
        else {
            panic!("{who} did not read it");
        };
        assert_eq!(s.json(), json, "the exact bytes are kept");
    }
}

#[test]
fn a_stub_where_the_policy_gives_the_full_copy_is_withheld() {
    let mut w = setup(4, None);
    let id = w
        .send_tampered(&h("blue"), |m, now, c, rng| {
            m.dangerous_withhold(
                now,
                c,
                Body::Text("only for the mediator".into()),
                h("red"),
                rng,
            )
        })
        .unwrap();
    let seq = position_of(&w, "blue", id);
    settle(&mut w, 2);
    let a = alerts(&w, "red");
    assert_eq!(
        a.iter().map(|a| a.kind).collect::<Vec<_>>(),
        [AlertKind::Withheld],
        "{a:?}"
    );
    assert_eq!(a[0].principal, Some(h("blue")));
    assert_eq!(a[0].message_ids, [id]);
    assert_eq!(a[0].positions[0].0, seq);
    assert_eq!(a[0].epoch.map(|e| e.0), Some(1));
    // The mediator, whatever the policy, is not wronged by an honest copy.
    assert!(!kinds(&w, "mediator").contains(&AlertKind::Withheld));
}

#[test]
fn a_pre_key_message_under_an_unknown_identity_is_forged_at_once() {
    let mut w = setup(5, None);
    let (keys, one_time, _) = w.relay.claim(&h("red")).unwrap();
    let mut session = Identity::new().outbound_session(&keys, &one_time).unwrap();
    let (olm_type, ciphertext) = session.encrypt(&[0u8; 512]).unwrap();
    let id = MessageId([7; 16]);
    let e = Envelope {
        channel_id: w.channel,
        message_id: id,
        sender: h("blue"),
        recipient: h("red"),
        seq_hint: 90,
        olm_type,
        ciphertext,
    };
    w.relay.post(&[e]).unwrap();
    // One read of the mailbox, no genuine message at position 90 ever.
    w.sync(&h("red"));
    let a = alerts(&w, "red");
    assert_eq!(
        a.iter().map(|a| a.kind).collect::<Vec<_>>(),
        [AlertKind::Forged],
        "{a:?}"
    );
    assert_eq!(a[0].message_ids, [id]);
    assert_eq!(a[0].principal, Some(h("blue")));
}

#[test]
fn a_sender_misreporting_its_own_head_is_a_fork() {
    let mut w = setup(6, None);
    w.send_tampered(&h("blue"), |m, now, c, rng| {
        m.dangerous_misreport_own_head(now, c, Body::Text("x".into()), rng)
    })
    .unwrap();
    settle(&mut w, 2);
    let a = alerts(&w, "red");
    assert!(!a.is_empty());
    assert!(
        a.iter()
            .all(|a| a.kind == AlertKind::Fork && a.principal == Some(h("blue"))),
        "{a:?}"
    );
    assert!(
        a[0].detail.contains("misreports its own head"),
        "{}",
        a[0].detail
    );
}

#[test]
fn alerts_of_a_later_epoch_carry_that_epoch_and_their_positions() {
    // Seed 2 amends nothing by itself: open epoch 2 with a policy change.
    let mut w = setup(2, Some(Attack::Flip));
    let policy = w.nodes[&h("mediator")]
        .member
        .channel(&w.channel)
        .and_then(|s| s.policy())
        .unwrap();
    w.amend(
        None,
        None,
        backchannel_protocol::payload::Policy {
            heartbeat_interval_s: 120,
            ..policy
        },
    );
    settle(&mut w, 4);
    assert!(w.active_members().len() >= 3);
    assert_eq!(
        w.nodes[&h("red")]
            .member
            .channel(&w.channel)
            .unwrap()
            .epoch()
            .number
            .0,
        2
    );
    // The relay flips blue's next copy to red; blue's following message
    // shows that a message existed there.
    if let Some(a) = w.attack.as_mut() {
        a.victim = Some(h("red"));
        a.sender = Some(h("blue"));
        a.at = Some(w.now);
    }
    let flipped = w
        .send(&h("blue"), Body::Text("flipped in transit".into()), None)
        .unwrap();
    let seq = position_of(&w, "blue", flipped);
    let next = w
        .send(&h("blue"), Body::Text("the next".into()), None)
        .unwrap();
    settle(&mut w, 2);
    let a: Vec<Alert> = alerts(&w, "red")
        .into_iter()
        .filter(|a| a.kind == AlertKind::Modified)
        .collect();
    assert_eq!(a.len(), 1, "{:?}", alerts(&w, "red"));
    assert_eq!(a[0].epoch.map(|e| e.0), Some(2));
    assert_eq!(
        a[0].positions.iter().map(|s| s.0).collect::<Vec<_>>(),
        [seq]
    );
    assert_eq!(a[0].message_ids, [flipped, next]);
    // A replay in epoch 2 names epoch 2 as well.
    let past = w
        .relay
        .history
        .iter()
        .rev()
        .find(|(_, e)| e.recipient == h("red"))
        .map(|(_, e)| e.clone())
        .unwrap();
    w.relay
        .post(&[Envelope {
            message_id: MessageId([9; 16]),
            ..past
        }])
        .unwrap();
    w.sync(&h("red"));
    let replay: Vec<Alert> = alerts(&w, "red")
        .into_iter()
        .filter(|a| a.kind == AlertKind::Replay)
        .collect();
    assert_eq!(replay.len(), 1);
    assert_eq!(replay[0].epoch.map(|e| e.0), Some(2));
    assert!(!replay[0].positions.is_empty());
}

/// Blue keeps using its store after a backup, then the backup is restored.
fn restored_from_backup(seed: u64) -> (World, MessageId) {
    let mut w = setup(seed, None);
    let blue = h("blue");
    // A post committed but not yet answered when the backup is taken.
    let now = w.now;
    let channel = w.channel;
    let queued = {
        let (rng, nodes) = (&mut w.rng, &mut w.nodes);
        let n = nodes.get_mut(&blue).unwrap();
        n.member
            .send(
                now,
                channel,
                Body::Text("queued at the backup".into()),
                None,
                &mut backchannel_sim::world::SimRng(rng),
            )
            .unwrap()
    };
    w.persist(&blue);
    let backup = w.nodes[&blue].store.clone();
    w.flush(&blue);
    for i in 0..3 {
        w.send(&blue, Body::Text(format!("after the backup {i}")), None);
    }
    settle(&mut w, 3);
    w.nodes.get_mut(&blue).unwrap().store = backup;
    w.crash(&blue);
    (w, queued)
}

#[test]
fn a_store_restored_from_an_older_copy_stops_before_posting_anything() {
    let (mut w, queued) = restored_from_backup(8);
    let blue = h("blue");
    let posted_before = w.relay.history.len();
    w.sync(&blue);
    let a = alerts(&w, "blue");
    let stale: Vec<&Alert> = a
        .iter()
        .filter(|a| a.kind == AlertKind::StaleStore)
        .collect();
    assert!(!stale.is_empty(), "{a:?}");
    assert!(stale[0].kind.blocks_sending());
    assert!(
        stale[0].detail.contains("or the relay is lying"),
        "{}",
        stale[0].detail
    );
    assert!(
        !stale[0].detail.contains("init"),
        "never advises re-initialising"
    );
    assert!(
        stale.iter().any(|s| s.message_ids.contains(&queued)),
        "the queued post is listed as not sent"
    );
    // Nothing from the restored store went out: not the queued post, not a receipt.
    assert!(w.relay.history[posted_before..]
        .iter()
        .all(|(_, e)| e.sender != blue));
    assert_eq!(w.nodes[&blue].member.outbox().count(), 0);
    // It refuses to send on its old positions and sessions.
    let channel = w.channel;
    let now = w.now;
    let (rng, nodes) = (&mut w.rng, &mut w.nodes);
    let refused = nodes.get_mut(&blue).unwrap().member.send(
        now,
        channel,
        Body::Text("again".into()),
        None,
        &mut backchannel_sim::world::SimRng(rng),
    );
    assert!(
        matches!(
            refused,
            Err(SendError::Blocked {
                kind: AlertKind::StaleStore,
                ..
            })
        ),
        "{refused:?}"
    );
    settle(&mut w, 3);
    for other in ["mediator", "red"] {
        assert!(
            kinds(&w, other).iter().all(|k| k.is_notice()),
            "{other}: {:?}",
            alerts(&w, other)
        );
    }
}

#[test]
fn other_members_receipts_reveal_a_restored_store_even_if_the_relay_says_nothing() {
    let (mut w, _) = restored_from_backup(9);
    let blue = h("blue");
    // A relay that keeps no record of blue's posts (or hides it).
    w.relay.last_posts.clear();
    w.relay.acked.clear();
    w.send(
        &h("red"),
        Body::Text("red covers blue's positions".into()),
        None,
    );
    w.sync(&blue);
    let a = alerts(&w, "blue");
    let stale: Vec<&Alert> = a
        .iter()
        .filter(|a| a.kind == AlertKind::StaleStore)
        .collect();
    assert_eq!(stale.len(), 1, "{a:?}");
    assert!(
        stale[0].detail.contains("has received your message"),
        "{}",
        stale[0].detail
    );
    assert_eq!(stale[0].channel, Some(w.channel));
}

#[test]
fn a_seed_replays_the_same_schedule_and_alerts() {
    for (seed, attack) in [
        (11, None),
        (12, Some(Attack::Reorder)),
        (13, Some(Attack::Flip)),
    ] {
        let a = run(seed, attack);
        let b = run(seed, attack);
        assert_eq!(a.trace, b.trace, "seed {seed}");
        assert_eq!(a.honest_alerts, b.honest_alerts);
        assert_eq!(format!("{:?}", a.detected), format!("{:?}", b.detected));
        assert!(a.passed(), "seed {seed}: {:?}", a.detected);
    }
}

#[test]
fn every_attack_row_is_detected_on_a_few_seeds() {
    for attack in Attack::ALL {
        for seed in 0..3 {
            let o = run(seed, Some(attack));
            assert!(
                o.passed(),
                "{} seed {seed}: {:?}\n{}",
                attack.name(),
                o.detected,
                o.trace.join("\n")
            );
        }
    }
}

#[test]
fn a_rekey_epoch_brings_a_restored_store_back_with_no_alert_anywhere() {
    let (mut w, _) = restored_from_backup(8);
    let blue = h("blue");
    w.sync(&blue);
    assert!(kinds(&w, "blue").contains(&AlertKind::StaleStore));
    let epoch_at_blue = |w: &World| {
        w.nodes[&h("blue")]
            .member
            .channel(&w.channel)
            .unwrap()
            .epoch()
            .number
    };
    let before = epoch_at_blue(&w);
    // `channel amend --rekey`: the same members and policy, a new epoch.
    let policy = w.nodes[&h("mediator")]
        .member
        .channel(&w.channel)
        .and_then(|s| s.policy())
        .unwrap();
    // Blue's program restarts before the rekey arrives: the relay's
    // record is checked again, and still shows what the copy lacks.
    w.crash(&blue);
    w.amend(None, None, policy);
    settle(&mut w, 4);
    assert_eq!(w.active_members().len(), 3, "{}", w.trace.join("\n"));
    let after = epoch_at_blue(&w);
    assert!(after > before, "a new epoch opened at blue");
    assert!(w.nodes[&blue].member.blocking_alert(&w.channel).is_none());
    let sent = w.send(&blue, Body::Text("back, on new positions".into()), None);
    let answer = w.send(&h("red"), Body::Text("welcome back".into()), None);
    settle(&mut w, 3);
    let (sent, answer) = (sent.unwrap(), answer.unwrap());
    for other in ["mediator", "red"] {
        assert!(
            kinds(&w, other).is_empty(),
            "{other}: {:?}",
            alerts(&w, other)
        );
        assert!(w.nodes[&h(other)]
            .member
            .messages()
            .iter()
            .any(|m| m.payload.header().message_id == sent));
    }
    assert!(w.nodes[&blue]
        .member
        .messages()
        .iter()
        .any(|m| m.payload.header().message_id == answer));
    let at_blue: Vec<AlertKind> = kinds(&w, "blue");
    assert!(
        at_blue.iter().all(|k| *k == AlertKind::StaleStore),
        "nothing but the stale store itself: {:?}",
        alerts(&w, "blue")
    );
}

#[test]
fn a_header_naming_another_sender_than_the_olm_peer_is_a_replay() {
    for broken in [false, true] {
        let mut w = setup(3, None);
        if broken {
            w.nodes
                .get_mut(&h("red"))
                .unwrap()
                .member
                .dangerous_break(backchannel_protocol::member::Rule::SenderIsPeer);
        }
        let id = w
            .send_tampered(&h("blue"), |m, now, c, rng| {
                m.dangerous_send_as(
                    now,
                    c,
                    &h("mediator"),
                    &h("red"),
                    Body::Text("in the mediator's name".into()),
                    rng,
                )
            })
            .unwrap();
        settle(&mut w, 2);
        let held = w.nodes[&h("red")]
            .member
            .messages()
            .iter()
            .any(|m| m.payload.header().message_id == id);
        if broken {
            // A client without the check takes it into the mediator's chain
            // (here a second version of a held position): blue is never named.
            let a = alerts(&w, "red");
            assert!(
                held || a.iter().all(|x| x.principal == Some(h("mediator"))),
                "{a:?}"
            );
            assert!(!kinds(&w, "red").contains(&AlertKind::Replay), "{a:?}");
            continue;
        }
        assert!(!held, "refused, not kept");
        let a = alerts(&w, "red");
        assert_eq!(kinds(&w, "red"), [AlertKind::Replay], "{a:?}");
        assert_eq!(a[0].principal, Some(h("blue")));
        assert!(kinds(&w, "mediator").is_empty());
    }
}

#[test]
fn content_in_epoch_0_is_forged() {
    let mut w = setup(3, None);
    w.nodes
        .get_mut(&h("blue"))
        .unwrap()
        .member
        .dangerous_break(backchannel_protocol::member::Rule::Epoch1Content);
    w.send(&h("blue"), Body::Text("too early".into()), None);
    settle(&mut w, 2);
    for who in ["mediator", "red"] {
        assert_eq!(kinds(&w, who), [AlertKind::Forged], "{who}");
        assert_eq!(
            alerts(&w, who)[0].epoch,
            Some(backchannel_protocol::EpochNumber(0))
        );
    }
}

#[test]
fn a_proposal_introducing_a_key_no_client_accepts_is_bad_key_and_nothing_is_pinned() {
    use backchannel_protocol::payload::{Member as ProposalMember, Role};
    let mut w = setup(3, None);
    let mut p = w.nodes[&h("mediator")]
        .member
        .channel(&w.channel)
        .and_then(|s| s.setup())
        .unwrap()
        .proposal
        .clone();
    let ed25519 = Identity::new().keys().ed25519;
    p.members.push(ProposalMember {
        handle: h(backchannel_sim::JOINER),
        role: Role::Observer,
        curve25519: [0; 32], // the identity point
        ed25519,
    });
    p.members.sort_by(|a, b| a.handle.cmp(&b.handle));
    w.relay.routing.insert(
        w.channel,
        p.members.iter().map(|m| m.handle.clone()).collect(),
    );
    w.send(&h("mediator"), Body::Amendment(p), None);
    settle(&mut w, 2);
    for who in ["blue", "red"] {
        let a = alerts(&w, who);
        assert!(
            a.iter()
                .any(|a| a.kind == AlertKind::BadKey
                    && a.principal == Some(h(backchannel_sim::JOINER))),
            "{who}: {a:?}"
        );
        assert!(w.nodes[&h(who)]
            .member
            .peer(&h(backchannel_sim::JOINER))
            .is_none_or(|p| p.keys.curve25519 != [0; 32]));
    }
}
