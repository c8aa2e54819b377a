use super::*;
use crate::payload::seal;
use crate::Identity;

fn h(s: &str) -> Handle {
    Handle::new(s).unwrap()
}

struct World {
    states: BTreeMap<Handle, ChannelState>,
    sent: Vec<(Payload, Digest)>,
}

fn proposal(reads: bool) -> Proposal {
    let member = |name: &str, role| {
        let k = Identity::new().keys();
        Member {
            handle: h(name),
            role,
            curve25519: k.curve25519,
            ed25519: k.ed25519,
        }
    };
    Proposal {
        title: "talks".into(),
        members: vec![
            member("blue", Role::Party),
            member("mediator", Role::Mediator),
            member("red", Role::Party),
        ],
        policy: Policy {
            mediator_reads: reads,
            receipt_deadline_s: 3600,
            heartbeat_interval_s: 600,
        },
        reads: BodyVersion::SUPPORTED.to_vec(),
    }
}

impl World {
    fn new() -> Self {
        let id = ChannelId([5; 16]);
        let states = ["blue", "mediator", "red"]
            .iter()
            .map(|n| (h(n), ChannelState::new(id, h(n))))
            .collect();
        World {
            states,
            sent: Vec::new(),
        }
    }

    /// `who` sends `body`; every member applies the full payload.
    fn send(&mut self, who: &str, body: Body) -> Result<(Prepared, Digest), ChannelError> {
        let n = self.sent.len() as u8;
        let prepared = self.states[&h(who)].prepare(
            &body,
            MessageId([n; 16]),
            Timestamp(i64::from(n)),
            None,
        )?;
        let body = body.for_version(prepared.header.version);
        let sealed = seal(prepared.header.clone(), [n; 16], body.clone()).unwrap();
        let payload = Payload::Full {
            header: prepared.header.clone(),
            salt: [n; 16],
            body,
        };
        for s in self.states.values_mut() {
            s.handle_payload(&payload, sealed.digest)?;
        }
        self.sent.push((payload, sealed.digest));
        Ok((prepared, sealed.digest))
    }
}

#[test]
fn a_channel_opens_when_every_party_accepts() {
    let mut w = World::new();
    let (_, creation) = w.send("mediator", Body::Creation(proposal(false))).unwrap();
    assert_eq!(
        w.states[&h("red")].status(),
        ChannelStatus::Pending {
            waiting_for: vec![h("blue"), h("red")]
        }
    );
    assert!(matches!(
        w.send("blue", Body::Text("too early".into())),
        Err(ChannelError::NotActive(_))
    ));
    w.send("blue", Body::accept(creation)).unwrap();
    w.send("red", Body::accept(creation)).unwrap();
    for s in w.states.values() {
        assert_eq!(s.status(), ChannelStatus::Active);
        assert_eq!(s.epoch().number, EpochNumber(1));
        assert_eq!(
            s.epoch().opening,
            creation,
            "epoch 1 opens with the creation digest"
        );
    }
    let (p, _) = w.send("blue", Body::Text("hello".into())).unwrap();
    assert_eq!(
        p.header.seq,
        crate::Seq(1),
        "chains restart in the new epoch"
    );
    assert_eq!(p.header.prev, creation);
    assert_eq!(
        p.recipients,
        vec![(h("mediator"), CopyKind::Stub), (h("red"), CopyKind::Full)]
    );
    assert_eq!(p.header.heads.0.len(), 3);
    let (p2, d2) = w.send("blue", Body::Text("again".into())).unwrap();
    assert_eq!(p2.header.seq, crate::Seq(2));
    let (r, _) = w.send("red", Body::Receipt).unwrap();
    assert_eq!(
        r.header.heads.0[&h("blue")],
        Head {
            seq: crate::Seq(2),
            digest: d2
        }
    );
    assert!(
        r.recipients.iter().all(|(_, k)| *k == CopyKind::Full),
        "control bodies go in full"
    );
}

#[test]
fn mediator_reads_only_when_the_policy_says_so() {
    let mut w = World::new();
    let (_, c) = w.send("mediator", Body::Creation(proposal(true))).unwrap();
    w.send("blue", Body::accept(c)).unwrap();
    w.send("red", Body::accept(c)).unwrap();
    let (p, _) = w.send("red", Body::Text("hi".into())).unwrap();
    assert!(p.recipients.iter().all(|(_, k)| *k == CopyKind::Full));
}

#[test]
fn a_decline_keeps_the_channel_closed() {
    let mut w = World::new();
    let (_, c) = w.send("mediator", Body::Creation(proposal(false))).unwrap();
    w.send("blue", Body::accept(c)).unwrap();
    w.send(
        "red",
        Body::Decline {
            proposal: c,
            reason: "not now".into(),
        },
    )
    .unwrap();
    assert_eq!(
        w.states[&h("blue")].status(),
        ChannelStatus::Declined { by: h("red") }
    );
    assert!(w.send("blue", Body::Text("x".into())).is_err());
}

#[test]
fn misfits_are_refused_and_change_nothing() {
    let mut w = World::new();
    // Nothing before the proposal.
    assert!(matches!(
        w.send("blue", Body::Receipt),
        Err(ChannelError::NotActive(_))
    ));
    let (_, c) = w.send("mediator", Body::Creation(proposal(false))).unwrap();
    // The mediator does not accept; a party does not accept another proposal.
    assert!(matches!(
        w.send("mediator", Body::accept(c)),
        Err(ChannelError::Response(_))
    ));
    let mut red = w.states[&h("red")].clone();
    let before = format!("{red:?}");
    assert!(matches!(
        w.send("blue", Body::accept(Digest([1; 32]))),
        Err(ChannelError::Response(_))
    ));
    // A replayed payload does not extend the chain again.
    let (p, d) = w.sent[0].clone();
    assert!(matches!(
        red.handle_payload(&p, d),
        Err(ChannelError::Chain(_))
    ));
    assert_eq!(format!("{red:?}"), before);
    // A stranger's payload.
    let mut stranger = p.clone();
    if let Payload::Full { header, .. } = &mut stranger {
        header.sender = h("ghost");
    }
    assert!(red.handle_payload(&stranger, d).is_err());
    // Content for an epoch this member has not opened.
    let mut early = w.states[&h("blue")].clone();
    early.handle_payload(&w.sent[0].0, w.sent[0].1).unwrap_err();
}

#[test]
fn gaps_reorders_and_forks_are_events() {
    let mut w = World::new();
    let (_, c) = w.send("mediator", Body::Creation(proposal(false))).unwrap();
    w.send("blue", Body::accept(c)).unwrap();
    w.send("red", Body::accept(c)).unwrap();
    // Blue writes three messages; only blue's own state applies them here.
    let mut blue = w.states[&h("blue")].clone();
    let mut sent = Vec::new();
    for i in 0..3u8 {
        let body = Body::Text(format!("m{i}"));
        let p = blue
            .prepare(&body, MessageId([0x40 + i; 16]), Timestamp(100), None)
            .unwrap();
        let sealed = seal(p.header.clone(), [i; 16], body.clone()).unwrap();
        let payload = Payload::Full {
            header: p.header,
            salt: [i; 16],
            body,
        };
        blue.handle_payload(&payload, sealed.digest).unwrap();
        sent.push((payload, sealed.digest));
    }
    let mut red = w.states[&h("red")].clone();
    red.handle_payload(&sent[0].0, sent[0].1).unwrap();
    let ev = red.handle_payload(&sent[2].0, sent[2].1).unwrap();
    assert!(
        ev.iter().any(
            |e| matches!(e, ChannelEvent::Gap { missing, .. } if *missing == vec![crate::Seq(2)])
        ),
        "{ev:?}"
    );
    assert!(red.is_gap(&h("blue"), 2));
    let ev = red.handle_payload(&sent[1].0, sent[1].1).unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, ChannelEvent::Reorder { seq, .. } if *seq == crate::Seq(2))),
        "{ev:?}"
    );
    assert!(!red.is_gap(&h("blue"), 2));

    // The mediator's head vector claims another digest for blue's #1.
    let mut mediator = w.states[&h("mediator")].clone();
    let body = Body::Receipt;
    let mut p = mediator
        .prepare(&body, MessageId([0x50; 16]), Timestamp(101), None)
        .unwrap();
    p.header.heads.0.insert(
        h("blue"),
        Head {
            seq: crate::Seq(1),
            digest: Digest([9; 32]),
        },
    );
    let sealed = seal(p.header.clone(), [7; 16], body.clone()).unwrap();
    let payload = Payload::Full {
        header: p.header,
        salt: [7; 16],
        body,
    };
    mediator.handle_payload(&payload, sealed.digest).unwrap();
    let ev = red.handle_payload(&payload, sealed.digest).unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, ChannelEvent::Fork { member, claimed_by, .. } if *member == h("blue") && *claimed_by == h("mediator"))),
        "{ev:?}"
    );
    assert_eq!(red.covered(EpochNumber(1), &h("mediator"), &h("blue")), 1);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// An active channel and an honest history: blue writes `n` texts, the
    /// mediator receipts each as it arrives.
    fn honest_history(n: usize) -> (ChannelState, Vec<(Payload, Digest)>) {
        let mut w = World::new();
        let (_, c) = w.send("mediator", Body::Creation(proposal(false))).unwrap();
        w.send("blue", Body::accept(c)).unwrap();
        w.send("red", Body::accept(c)).unwrap();
        let red = w.states[&h("red")].clone();
        let mut blue = w.states[&h("blue")].clone();
        let mut mediator = w.states[&h("mediator")].clone();
        let mut history = Vec::new();
        for i in 0..n {
            for who in ["blue", "mediator"] {
                let (sender, other, body) = if who == "blue" {
                    (&mut blue, &mut mediator, Body::Text(format!("m{i}")))
                } else {
                    (&mut mediator, &mut blue, Body::Receipt)
                };
                let id = MessageId([history.len() as u8; 16]);
                let p = sender
                    .prepare(&body, id, Timestamp(1000 + i as i64), None)
                    .unwrap();
                let salt = [i as u8; 16];
                let sealed = seal(p.header.clone(), salt, body.clone()).unwrap();
                let payload = Payload::Full {
                    header: p.header,
                    salt,
                    body,
                };
                sender.handle_payload(&payload, sealed.digest).unwrap();
                other.handle_payload(&payload, sealed.digest).unwrap();
                history.push((payload, sealed.digest));
            }
        }
        (red, history)
    }

    proptest! {
        /// Any subset of honest messages, delivered in any order, raises only
        /// gaps and reorders: never a fork, never a refusal.
        #[test]
        fn honest_deliveries_in_any_order_raise_only_gaps_and_reorders(
            n in 1usize..10,
            order in proptest::collection::vec(any::<u32>(), 20),
            keep in proptest::collection::vec(any::<bool>(), 20),
        ) {
            let (mut red, history) = honest_history(n);
            let mut picks: Vec<usize> = (0..history.len()).filter(|i| keep[*i]).collect();
            picks.sort_by_key(|i| order[*i]);
            for i in &picks {
                let (p, d) = &history[*i];
                let events = red.handle_payload(p, *d).unwrap();
                for e in events {
                    prop_assert!(
                        matches!(e, ChannelEvent::Gap { .. } | ChannelEvent::Reorder { .. } | ChannelEvent::Message { .. }),
                        "{e:?}"
                    );
                }
            }
            // What is missing is exactly what was not delivered, below the highest held.
            let log = red.sender_log(EpochNumber(1), &h("blue"));
            let delivered: Vec<u64> = picks.iter().map(|i| history[*i].0.header()).filter(|h| h.sender.as_str() == "blue").map(|h| h.seq.0).collect();
            if let Some(log) = log {
                let max = delivered.iter().copied().max().unwrap_or(0);
                let expected: Vec<Seq> = (1..max).filter(|s| !delivered.contains(s)).map(Seq).collect();
                prop_assert_eq!(log.missing(), expected);
            }
        }
    }
}

/// Sends `body` from `who` to exactly the recipients `prepare` names.
fn send_to_recipients(
    states: &mut BTreeMap<Handle, ChannelState>,
    who: &str,
    body: Body,
    n: u8,
) -> Result<Digest, ChannelError> {
    let p = states[&h(who)].prepare(&body, MessageId([n; 16]), Timestamp(i64::from(n)), None)?;
    let sealed = seal(p.header.clone(), [n; 16], body.clone()).unwrap();
    let payload = Payload::Full {
        header: p.header,
        salt: [n; 16],
        body,
    };
    states
        .get_mut(&h(who))
        .unwrap()
        .handle_payload(&payload, sealed.digest)?;
    for (r, _) in &p.recipients {
        if let Some(s) = states.get_mut(r) {
            s.handle_payload(&payload, sealed.digest)?;
        }
    }
    Ok(sealed.digest)
}

#[test]
fn an_amendment_opens_a_new_epoch_when_every_remaining_party_accepts() {
    let mut w = World::new();
    let (_, c) = w.send("mediator", Body::Creation(proposal(false))).unwrap();
    w.send("blue", Body::accept(c)).unwrap();
    w.send("red", Body::accept(c)).unwrap();
    let mut states = w.states;
    states.insert(
        h("green"),
        ChannelState::new(ChannelId([5; 16]), h("green")),
    );
    send_to_recipients(&mut states, "blue", Body::Text("before".into()), 10).unwrap();

    // Green joins, red leaves, the mediator may now read.
    let mut amended = states[&h("mediator")].setup().unwrap().proposal.clone();
    amended.members.retain(|m| m.handle != h("red"));
    let k = Identity::new().keys();
    amended.members.push(Member {
        handle: h("green"),
        role: Role::Party,
        curve25519: k.curve25519,
        ed25519: k.ed25519,
    });
    amended.members.sort_by(|a, b| a.handle.cmp(&b.handle));
    amended.policy.mediator_reads = true;
    assert!(
        send_to_recipients(&mut states, "blue", Body::Amendment(amended.clone()), 11).is_err(),
        "only the mediator amends"
    );
    let a = send_to_recipients(&mut states, "mediator", Body::Amendment(amended), 12).unwrap();
    assert_eq!(
        states[&h("green")].status(),
        ChannelStatus::Pending {
            waiting_for: vec![h("blue"), h("green")]
        }
    );
    assert!(
        states[&h("red")]
            .prepare(&Body::accept(a), MessageId([1; 16]), Timestamp(1), None)
            .is_err(),
        "a leaver does not answer"
    );
    // Messages still flow in epoch 1 while the amendment is pending.
    send_to_recipients(&mut states, "red", Body::Text("still here".into()), 13).unwrap();
    send_to_recipients(&mut states, "blue", Body::accept(a), 14).unwrap();
    send_to_recipients(&mut states, "green", Body::accept(a), 15).unwrap();
    for who in ["blue", "green", "mediator"] {
        let s = &states[&h(who)];
        assert_eq!(s.status(), ChannelStatus::Active, "{who}");
        assert_eq!(s.epoch().number, EpochNumber(2), "{who}");
        assert_eq!(s.epoch().opening, a);
        assert_eq!(s.members().len(), 3);
        assert!(s.policy().unwrap().mediator_reads);
    }
    assert_eq!(states[&h("red")].status(), ChannelStatus::Left);
    assert_eq!(states[&h("blue")].former_members(), &[h("red")]);
    // Chains restart; red is no longer a recipient; the mediator reads.
    let p = states[&h("blue")]
        .prepare(
            &Body::Text("after".into()),
            MessageId([16; 16]),
            Timestamp(16),
            None,
        )
        .unwrap();
    assert_eq!(p.header.seq, crate::Seq(1));
    assert_eq!(p.header.prev, a);
    assert_eq!(
        p.recipients,
        vec![
            (h("green"), CopyKind::Full),
            (h("mediator"), CopyKind::Full)
        ]
    );
    assert!(states[&h("red")]
        .prepare(
            &Body::Text("x".into()),
            MessageId([17; 16]),
            Timestamp(17),
            None
        )
        .is_err());
}

#[test]
fn members_write_the_highest_version_every_member_announced() {
    let mut w = World::new();
    let (p, creation) = w.send("mediator", Body::Creation(proposal(false))).unwrap();
    assert_eq!(p.header.version, BodyVersion::BASELINE, "a creation");
    let (a, _) = w.send("blue", Body::accept(creation)).unwrap();
    assert_eq!(a.header.version, BodyVersion::BASELINE, "an answer");
    // Red's client reads only version 1 (as a client older than protocol
    // v1 would): nobody may write version 2 to it.
    w.send(
        "red",
        Body::Acceptance {
            proposal: creation,
            reads: vec![BodyVersion::V1],
        },
    )
    .unwrap();
    for s in w.states.values() {
        assert_eq!(s.version(), Some(BodyVersion::V1));
    }
    let (t, _) = w.send("blue", Body::Text("hello".into())).unwrap();
    assert_eq!(t.header.version, BodyVersion::V1);
    let (r, _) = w.send("mediator", Body::Receipt).unwrap();
    assert_eq!(r.header.version, BodyVersion::V1);
}

#[test]
fn a_channel_whose_set_up_announced_nothing_stays_on_version_1() {
    // As a store from before protocol v1 holds it: version 1 proposal and
    // acceptances carry no announcement.
    let mut w = World::new();
    let mut p = proposal(false);
    p.reads = vec![BodyVersion::V1];
    let (_, creation) = w.send("mediator", Body::Creation(p)).unwrap();
    w.send("blue", Body::accept(creation)).unwrap();
    w.send("red", Body::accept(creation)).unwrap();
    assert_eq!(w.states[&h("red")].version(), Some(BodyVersion::V1));
    let (t, _) = w.send("red", Body::Text("hello".into())).unwrap();
    assert_eq!(t.header.version, BodyVersion::V1);

    let mut w = World::new();
    let (_, creation) = w.send("mediator", Body::Creation(proposal(false))).unwrap();
    w.send("blue", Body::accept(creation)).unwrap();
    w.send("red", Body::accept(creation)).unwrap();
    let (t, _) = w.send("red", Body::Text("hello".into())).unwrap();
    assert_eq!(t.header.version, BodyVersion::V4);
}

#[test]
fn an_answer_repeated_with_other_versions_is_refused_and_unshared_versions_write_nothing() {
    let mut w = World::new();
    let (_, creation) = w.send("mediator", Body::Creation(proposal(false))).unwrap();
    w.send("blue", Body::accept(creation)).unwrap();
    let again = Body::Acceptance {
        proposal: creation,
        reads: vec![BodyVersion::V1],
    };
    assert!(matches!(
        w.send("blue", again),
        Err(ChannelError::Response(_))
    ));
    // Red announces only a version nobody else reads: the channel opens,
    // but nothing can be written to all of them.
    w.send(
        "red",
        Body::Acceptance {
            proposal: creation,
            reads: vec![BodyVersion(7)],
        },
    )
    .unwrap();
    assert_eq!(w.states[&h("blue")].version(), None);
    assert!(matches!(
        w.send("blue", Body::Text("hello".into())),
        Err(ChannelError::NotActive(_))
    ));
}

#[test]
fn a_malformed_list_of_versions_is_never_written() {
    let w = World::new();
    let mut p = proposal(false);
    p.reads = vec![BodyVersion::V2, BodyVersion::V1];
    let header = w.states[&h("mediator")]
        .prepare(
            &Body::Creation(p.clone()),
            MessageId([1; 16]),
            Timestamp(1),
            None,
        )
        .unwrap()
        .header;
    assert!(seal(header, [0; 16], Body::Creation(p)).is_err());
}

/// An open channel whose members all announced version 3.
fn open_v3() -> (World, Proposal) {
    let mut w = World::new();
    let p = proposal(true);
    let (_, creation) = w.send("mediator", Body::Creation(p.clone())).unwrap();
    w.send("blue", Body::accept(creation)).unwrap();
    w.send("red", Body::accept(creation)).unwrap();
    assert_eq!(w.states[&h("red")].version(), Some(BodyVersion::V4));
    (w, p)
}

#[test]
fn a_party_proposes_an_amendment_in_version_3_and_its_proposal_counts_as_its_acceptance() {
    let (mut w, mut p) = open_v3();
    p.policy.mediator_reads = false;
    let (_, amendment) = w.send("blue", Body::Amendment(p)).unwrap();
    let pending = w.states[&h("mediator")].pending().unwrap();
    assert_eq!(
        pending.responses.keys().collect::<Vec<_>>(),
        [&h("blue")],
        "blue's own proposal counts as its acceptance; the mediator does not answer"
    );
    assert_eq!(w.states[&h("mediator")].epoch().number, EpochNumber(1));
    w.send("red", Body::accept(amendment)).unwrap();
    for s in w.states.values() {
        assert_eq!(s.epoch().number, EpochNumber(2));
        assert_eq!(s.policy().map(|p| p.mediator_reads), Some(false));
        assert_eq!(
            s.version(),
            Some(BodyVersion::V4),
            "the mediator's earlier announcement still counts"
        );
    }
    // The mediator still amends afterwards.
    let mut again = w.states[&h("mediator")].setup().unwrap().proposal.clone();
    again.policy.heartbeat_interval_s = 60;
    w.send("mediator", Body::Amendment(again)).unwrap();
}

#[test]
fn a_party_adds_nobody_removes_nobody_else_and_displaces_no_pending_proposal() {
    let (mut w, p) = open_v3();
    let mut adds = p.clone();
    let k = Identity::new().keys();
    adds.members.push(Member {
        handle: h("green"),
        role: Role::Party,
        curve25519: k.curve25519,
        ed25519: k.ed25519,
    });
    adds.members.sort_by(|a, b| a.handle.cmp(&b.handle));
    assert!(matches!(
        w.send("blue", Body::Amendment(adds)),
        Err(ChannelError::Proposal(_))
    ));
    let mut no_mediator = p.clone();
    no_mediator.members.retain(|m| m.role != Role::Mediator);
    assert!(matches!(
        w.send("blue", Body::Amendment(no_mediator)),
        Err(ChannelError::Proposal(_))
    ));
    // Nor does it expel another party (with two parties it would take
    // effect at once, red unasked).
    let mut expels = p.clone();
    expels.members.retain(|m| m.handle != h("red"));
    assert!(matches!(
        w.send("blue", Body::Amendment(expels)),
        Err(ChannelError::Proposal(_))
    ));
    // Nor does it displace a proposal awaiting answers.
    let mut first = p.clone();
    first.policy.heartbeat_interval_s = 60;
    w.send("blue", Body::Amendment(first)).unwrap();
    let mut second = p;
    second.policy.heartbeat_interval_s = 120;
    assert!(matches!(
        w.send("red", Body::Amendment(second)),
        Err(ChannelError::Proposal(_))
    ));
}

#[test]
fn a_leave_takes_effect_when_received_with_no_answer() {
    let (mut w, mut p) = open_v3();
    p.members.retain(|m| m.handle != h("blue"));
    w.send("blue", Body::Amendment(p)).unwrap();
    for (who, s) in &w.states {
        assert_eq!(s.epoch().number, EpochNumber(2), "{who}");
        assert!(s.member(&h("blue")).is_none());
    }
    assert_eq!(w.states[&h("blue")].status(), ChannelStatus::Left);
    assert_eq!(w.states[&h("red")].status(), ChannelStatus::Active);
    assert!(w.send("blue", Body::Text("after".into())).is_err());
}

#[test]
fn a_party_proposes_nothing_where_a_member_reads_only_version_2() {
    let mut w = World::new();
    let mut p = proposal(true);
    p.reads = vec![BodyVersion::V1, BodyVersion::V2];
    let (_, creation) = w.send("mediator", Body::Creation(p.clone())).unwrap();
    w.send("blue", Body::accept(creation)).unwrap();
    w.send("red", Body::accept(creation)).unwrap();
    assert_eq!(w.states[&h("red")].version(), Some(BodyVersion::V2));
    p.policy.mediator_reads = false;
    assert!(matches!(
        w.send("blue", Body::Amendment(p)),
        Err(ChannelError::Proposal(_))
    ));
}

/// A red line's revocation, with a member that reads up to version 3.
fn red_line_revocation() -> Body {
    Body::structured(crate::commitments::Structured::Revoke {
        assurance: None,
        red_line: Some("ab".repeat(16)),
        effective_ms: 0,
        text: "withdrawn".into(),
    })
    .unwrap()
}

#[test]
fn version_4_terms_are_sent_only_where_every_member_reads_version_4() {
    let mut w = World::new();
    let mut p = proposal(true);
    p.reads = vec![BodyVersion::V1, BodyVersion::V2, BodyVersion::V3];
    let (_, creation) = w.send("mediator", Body::Creation(p)).unwrap();
    w.send("blue", Body::accept(creation)).unwrap();
    w.send("red", Body::accept(creation)).unwrap();
    assert_eq!(w.states[&h("red")].version(), Some(BodyVersion::V3));
    // A version 3 client would keep firing the revoked red line.
    assert!(matches!(
        w.send("red", red_line_revocation()),
        Err(ChannelError::Version {
            needed: BodyVersion::V4,
            open: BodyVersion::V3
        })
    ));
    // An assurance without version 4 terms still goes.
    w.send("red", Body::Text("still talking".into())).unwrap();

    let (mut w, _) = open_v3();
    let (sent, _) = w.send("red", red_line_revocation()).unwrap();
    assert_eq!(sent.header.version, BodyVersion::V4);
}

#[test]
fn a_version_4_term_in_an_earlier_body_version_does_not_decode() {
    let body = red_line_revocation();
    let bytes = body.encode(BodyVersion::V4);
    assert!(Body::decode(&bytes, BodyVersion::V4).is_ok());
    for v in [BodyVersion::V2, BodyVersion::V3] {
        assert!(
            Body::decode(&bytes, v).is_err(),
            "a red line's revocation in version {v}"
        );
    }
}
