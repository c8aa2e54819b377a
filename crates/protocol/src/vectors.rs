//! Test vectors for docs/vectors: fixed inputs, the exact bytes this
//! implementation encodes them to, and their digests, for every body kind
//! (every structured kind included), a channel's messages from creation to
//! a joiner's first epoch (stubs, receipts, heartbeats, proposals,
//! acceptances, amendments), sealed offers, and encodings a decoder must
//! refuse. Olm ciphertexts are random and are not vectors.
//!
//! [`generate`] is deterministic. The committed files are its output: a
//! test fails when they differ (`cargo run -p backchannel-protocol
//! --example vectors` rewrites them), and another test reads the files as
//! an independent client would and checks both directions (inputs encode
//! to the bytes, the bytes decode to the inputs).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::channel::{ChannelState, CopyKind};
use crate::commitments::{Structured, StructuredBody};
use crate::escrow::{offer_digest, SealedOffer};
use crate::ids::{ChannelId, Digest, EpochNumber, ExchangeId, Handle, MessageId, Seq, Timestamp};
use crate::payload::{
    body_hash, seal, Body, BodyKind, BodyVersion, Header, Member, Payload, Policy, Proposal, Role,
};
use crate::transcript::{Epoch, Head, HeadVector};

/// The vector files: name (under docs/vectors) and content.
pub fn generate() -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        ("bodies.json", bodies()),
        ("messages.json", messages()),
        ("sealed_offers.json", sealed_offers()),
    ])
}

/// A file's exact text: pretty JSON and a final newline.
pub fn to_text(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

const T0: i64 = 1_750_000_000_000;

fn h(s: &str) -> Handle {
    Handle::new(s).unwrap_or_else(|_| unreachable!("fixed handles are valid"))
}

/// Fixed identity keys: the public keys of secret keys `SHA-256(name ‖ kind)`.
pub fn member_keys(name: &str) -> ([u8; 32], [u8; 32]) {
    let seed = |kind: &str| Digest::of(&[name.as_bytes(), kind.as_bytes()]).0;
    let curve = vodozemac::Curve25519PublicKey::from(&vodozemac::Curve25519SecretKey::from_slice(
        &seed("/curve25519"),
    ));
    let ed = vodozemac::Ed25519SecretKey::from_slice(&seed("/ed25519")).public_key();
    (curve.to_bytes(), ed.as_bytes().to_owned())
}

fn member(name: &str, role: Role) -> Member {
    let (curve25519, ed25519) = member_keys(name);
    Member {
        handle: h(name),
        role,
        curve25519,
        ed25519,
    }
}

fn proposal(title: &str, members: Vec<Member>) -> Proposal {
    Proposal {
        title: title.into(),
        members,
        policy: Policy {
            mediator_reads: false,
            receipt_deadline_s: 3600,
            heartbeat_interval_s: 600,
        },
        reads: BodyVersion::SUPPORTED.to_vec(),
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Party => "party",
        Role::Mediator => "mediator",
        Role::Observer => "observer",
    }
}

fn versions(v: &[BodyVersion]) -> Value {
    json!(v.iter().map(|v| v.0).collect::<Vec<_>>())
}

/// A body's inputs as the vector files write them.
pub fn body_inputs(body: &Body) -> Value {
    let prop = |p: &Proposal| {
        json!({
            "title": p.title,
            "members": p.members.iter().map(|m| json!({
                "handle": m.handle.as_str(),
                "role": role_name(m.role),
                "curve25519": hex::encode(m.curve25519),
                "ed25519": hex::encode(m.ed25519),
            })).collect::<Vec<_>>(),
            "policy": {
                "mediator_reads": p.policy.mediator_reads,
                "receipt_deadline_s": p.policy.receipt_deadline_s,
                "heartbeat_interval_s": p.policy.heartbeat_interval_s,
            },
            "reads": versions(&p.reads),
        })
    };
    match body {
        Body::Text(t) => json!({"kind": "text", "text": t}),
        Body::Receipt => json!({"kind": "receipt"}),
        Body::Heartbeat => json!({"kind": "heartbeat"}),
        Body::Creation(p) => json!({"kind": "creation", "proposal": prop(p)}),
        Body::Amendment(p) => json!({"kind": "amendment", "proposal": prop(p)}),
        Body::Acceptance { proposal, reads } => {
            json!({"kind": "acceptance", "proposal": proposal.to_hex(), "reads": versions(reads)})
        }
        Body::Decline { proposal, reason } => {
            json!({"kind": "decline", "proposal": proposal.to_hex(), "reason": reason})
        }
        Body::Structured(s) => json!({
            "kind": "structured",
            "json": String::from_utf8_lossy(s.json()),
        }),
    }
}

/// A header's fields as the vector files write them.
pub fn header_inputs(hd: &Header) -> Value {
    json!({
        "version": hd.version.0,
        "channel_id": hd.channel_id.to_hex(),
        "message_id": hd.message_id.to_hex(),
        "epoch": hd.epoch.number.0,
        "epoch_opening": hd.epoch.opening.to_hex(),
        "sender": hd.sender.as_str(),
        "seq": hd.seq.0,
        "prev": hd.prev.to_hex(),
        "sent_at_ms": hd.sent_at.0,
        "in_reply_to": hd.in_reply_to.map(|m| m.to_hex()),
        "body_kind": hd.body_kind.tag(),
        "heads": hd.heads.0.iter().map(|(m, head)| json!({
            "member": m.as_str(), "seq": head.seq.0, "digest": head.digest.to_hex()
        })).collect::<Vec<_>>(),
    })
}

fn body_entry(name: &str, version: BodyVersion, body: &Body) -> Value {
    json!({
        "name": name,
        "version": version.0,
        "inputs": body_inputs(body),
        "body": hex::encode(body.encode(version)),
    })
}

/// One sample of every structured kind, in its canonical JSON.
fn structured_samples() -> Vec<(&'static str, Structured)> {
    let id = MessageId([0x11; 16]).to_hex();
    let samples = [
        (
            "acknowledgement",
            json!({"type": "acknowledgement", "of": id, "text": "Received and understood."}),
        ),
        (
            "allegation",
            json!({"type": "allegation", "assurance": id, "evidence": "Shelling at dawn near the crossing.", "reply_by_ms": T0 + 86_400_000}),
        ),
        (
            "assurance",
            json!({"type": "assurance", "beneficiaries": [{"member": "red"}],
            "commitment": {"refrain": true, "action": {"kind": "ASSAULT", "modes": [], "target": {"member": "red"}}},
            "unless": [{"attacked_first_by": {"member": "red"}, "scope": {"attacker_proxies": true}}],
            "reservation": "", "valid_from_ms": T0, "until_revoked": true, "formality": "non_paper",
            "authorized_by": "the cabinet", "language": "en", "wording": "Blue will not strike Red first."}),
        ),
        (
            "confirm_lapse",
            json!({"type": "confirm_lapse", "assurance": id, "text": "It lapsed on the 3rd."}),
        ),
        (
            "conveyed",
            json!({"type": "conveyed", "original": id, "text": "Red says it is ready to talk."}),
        ),
        (
            "escrow_confirmation",
            json!({"type": "escrow_confirmation", "exchange": ExchangeId([0x44; 16]).to_hex(),
            "offers": [{"from": "red", "digest": Digest([0x55; 32]).to_hex()}, {"from": "green"}]}),
        ),
        (
            "escrow_exchange",
            json!({"type": "escrow_exchange", "exchange": ExchangeId([0x44; 16]).to_hex(),
            "participants": ["blue", "red"], "terms": "Simultaneous gestures of good faith.",
            "terms_digest": Digest::of(&[b"Simultaneous gestures of good faith."]).to_hex(), "deadline_ms": T0 + 3_600_000}),
        ),
        (
            "event",
            json!({"type": "event", "actor": {"outside": "militia"}, "action": {"kind": "ASSAULT", "modes": [], "target": {"member": "blue"}},
            "from_ms": T0, "until_ms": T0 + 3_600_000, "place": {"lat_e6": 33_888_000, "lon_e6": 35_495_000, "radius_m": 5000}, "text": "Rockets near the border."}),
        ),
        (
            "finding",
            json!({"type": "finding", "assurance": id, "breached": false, "lapsed": true, "text": "Red struck first."}),
        ),
        (
            "note",
            json!({"type": "note", "text": "Talks resume at nine."}),
        ),
        (
            "red_line",
            json!({"type": "red_line", "trigger": {"kind": "ASSAULT", "modes": [], "target": {"member": "red"}},
            "response": {"kind": "ASSAULT", "modes": [], "target": {"outside": "green"}}, "wording": "If Red is attacked, Green's bases are not secure."}),
        ),
        (
            "relate",
            json!({"type": "relate", "subject": {"outside": "militia"}, "relation": "proxy_of", "object": {"member": "red"}}),
        ),
        (
            "reply",
            json!({"type": "reply", "allegation": id, "text": "Our forces did not fire."}),
        ),
        (
            "request",
            json!({"type": "request", "about": id, "question": "Who ordered the convoy?", "reply_by_ms": T0 + 86_400_000}),
        ),
        (
            "revoke",
            json!({"type": "revoke", "assurance": id, "effective_ms": T0, "text": ""}),
        ),
        (
            "suspend",
            json!({"type": "suspend", "assurance": id, "from_ms": T0, "until_ms": T0 + 86_400_000, "text": "During the inquiry."}),
        ),
        // Body version 4.
        (
            "assurance with provisos (version 4)",
            json!({"type": "assurance", "beneficiaries": [{"member": "red"}],
            "commitment": {"refrain": true, "action": {"kind": "ASSAULT", "modes": [], "target": {"member": "red"}}},
            "unless": [{"attacked_first_by": {"member": "red"}, "scope": {}}, {"attacked_first_by": {"outside": "green"}, "scope": {}}],
            "unless_combine": "all",
            "provided": [{"actor": {"member": "red"}, "action": {"kind": "RETREAT", "modes": ["withdraw"]}, "by_ms": T0 + 30 * 86_400_000},
                         {"actor": {"member": "red"}, "action": {"kind": "RETREAT", "modes": ["disarm"]}, "by_ms": T0 + 30 * 86_400_000}],
            "provided_combine": "any",
            "reservation": "", "valid_from_ms": T0, "until_revoked": true, "formality": "non_paper",
            "authorized_by": "the cabinet", "language": "en", "wording": "Blue will not invade Red, provided the missiles are withdrawn."}),
        ),
        (
            "red_line with targets, scope, validity and place (version 4)",
            json!({"type": "red_line", "trigger_actor": {"member": "blue"}, "trigger": {"kind": "ASSAULT", "modes": []},
            "targets": [{"member": "red"}, {"outside": "ally"}], "scope": {"attacker_proxies": true},
            "valid_from_ms": T0, "valid_until_ms": T0 + 30 * 86_400_000,
            "place": {"lat_e6": 21_500_000, "lon_e6": -80_000_000, "radius_m": 50_000},
            "response": {"kind": "ASSAULT", "modes": [], "target": {"member": "blue"}}, "wording": "Any strike on the island this month."}),
        ),
        (
            "revoke of a red line (version 4)",
            json!({"type": "revoke", "red_line": id, "effective_ms": T0, "text": "Withdrawn."}),
        ),
        (
            "suspend of a red line (version 4)",
            json!({"type": "suspend", "red_line": id, "from_ms": T0, "text": "During the talks."}),
        ),
        (
            "fulfilment (version 4)",
            json!({"type": "fulfilment", "assurance": id, "proviso": 0, "fulfilled": true, "text": "The inspectors saw the sites empty."}),
        ),
        (
            "guarantee (version 4)",
            json!({"type": "guarantee", "assurance": id, "response": {"kind": "SANCTION", "modes": [], "target": {"member": "blue"}}, "wording": "Should Blue strike first, we sanction it."}),
        ),
        (
            "dispute (version 4)",
            json!({"type": "dispute", "subject": {"outside": "militia"}, "relation": "ally_of", "object": {"member": "red"}, "text": "A proxy, not an ally."}),
        ),
    ];
    samples
        .into_iter()
        .map(|(n, v)| {
            let s = serde_json::from_value(v).unwrap_or_else(|e| unreachable!("sample {n}: {e}"));
            (n, s)
        })
        .collect()
}

fn structured(s: Structured) -> Body {
    Body::Structured(Box::new(
        StructuredBody::new(s).unwrap_or_else(|e| unreachable!("{e}")),
    ))
}

fn raw_structured(json: &str) -> Vec<u8> {
    let mut b = vec![BodyKind::Structured.tag()];
    b.extend_from_slice(&(json.len() as u32).to_be_bytes());
    b.extend_from_slice(json.as_bytes());
    b
}

fn bodies() -> Value {
    let p = proposal(
        "talks",
        vec![
            member("blue", Role::Party),
            member("mediator", Role::Mediator),
            member("red", Role::Party),
        ],
    );
    let d = Digest([0x33; 32]);
    let v2 = BodyVersion::V2;
    let mut list = vec![
        body_entry("text", v2, &Body::Text("We will not strike first.".into())),
        body_entry("receipt", v2, &Body::Receipt),
        body_entry("heartbeat", v2, &Body::Heartbeat),
        body_entry("creation", v2, &Body::Creation(p.clone())),
        body_entry("acceptance", v2, &Body::accept(d)),
        body_entry(
            "decline",
            v2,
            &Body::Decline {
                proposal: d,
                reason: "Not with an observer.".into(),
            },
        ),
        body_entry("amendment", v2, &Body::Amendment(p.clone())),
    ];
    for (name, s) in structured_samples() {
        let version = s.min_version().max(v2);
        list.push(body_entry(
            &format!("structured {name}"),
            version,
            &structured(s),
        ));
    }
    // Version 1 (old transcripts): no announced versions, any JSON.
    let v1 = BodyVersion::V1;
    list.push(body_entry(
        "acceptance, version 1",
        v1,
        &Body::accept(d).for_version(v1),
    ));
    list.push(body_entry(
        "creation, version 1",
        v1,
        &Body::Creation(p).for_version(v1),
    ));
    let loose = r#"{ "text": "Talks resume at nine.", "type": "note" }"#;
    list.push(json!({
        "name": "structured note, version 1, not canonical (read under version 1 only)",
        "version": 1,
        "inputs": {"kind": "structured", "json": loose},
        "body": hex::encode(raw_structured(loose)),
    }));
    let refused: Vec<Value> = [
        (
            "keys out of order",
            r#"{"type":"note","text":"Talks resume at nine."}"#,
        ),
        (
            "whitespace",
            r#"{"text": "Talks resume at nine.","type":"note"}"#,
        ),
        (
            "an escaped character that needs no escape",
            r#"{"text":"Talks resume at nine\u002e","type":"note"}"#,
        ),
        (
            "a null member",
            r#"{"about":null,"question":"Who?","reply_by_ms":1,"type":"request"}"#,
        ),
        (
            "a number that is not an integer",
            r#"{"effective_ms":1.0,"text":"","type":"revoke"}"#,
        ),
    ]
    .iter()
    .map(|(why, json)| {
        json!({
            "name": format!("structured, version 2, refused: {why}"),
            "version": 2,
            "body": hex::encode(raw_structured(json)),
            "reason": if why.starts_with("a number") { "malformed" } else { "non_canonical" },
        })
    })
    .collect();
    json!({
        "about": "Every body kind and every structured kind: the inputs, the exact body bytes (kind tag first) under the body version, which the body hash covers. 'refused' are encodings a decoder must refuse; the receiver keeps such a message as an unread stub (unsupported_body with the reason).",
        "bodies": list,
        "refused": refused,
    })
}

/// The members' channel states and the messages sent so far.
struct Scene {
    states: BTreeMap<Handle, ChannelState>,
    out: Vec<Value>,
    digests: BTreeMap<&'static str, Digest>,
    ids: BTreeMap<&'static str, MessageId>,
}

impl Scene {
    fn send(
        &mut self,
        name: &'static str,
        rules: &str,
        who: &str,
        body: Body,
        reply: Option<&str>,
    ) {
        let n = self.out.len() as u8 + 1;
        let id = MessageId([n; 16]);
        let at = Timestamp(T0 + i64::from(n) * 1000);
        let reply = reply.map(|r| self.ids[r]);
        let prepared = self.states[&h(who)]
            .prepare(&body, id, at, reply)
            .unwrap_or_else(|e| unreachable!("{name}: {e}"));
        let body = body.for_version(prepared.header.version);
        let salt = [0x20 + n; 16];
        let sealed = seal(prepared.header.clone(), salt, body.clone())
            .unwrap_or_else(|e| unreachable!("{name}: {e}"));
        let payload = Payload::Full {
            header: prepared.header.clone(),
            salt,
            body: body.clone(),
        };
        let to: Vec<&Handle> = prepared.recipients.iter().map(|(m, _)| m).collect();
        for (m, st) in self.states.iter_mut() {
            if m.as_str() == who || to.contains(&m) {
                st.handle_payload(&payload, sealed.digest)
                    .unwrap_or_else(|e| unreachable!("{name} at {m}: {e}"));
            }
        }
        let body_bytes = body.encode(prepared.header.version);
        self.out.push(json!({
            "name": name,
            "rules": rules,
            "header_inputs": header_inputs(&prepared.header),
            "salt": hex::encode(salt),
            "body_inputs": body_inputs(&body),
            "header": hex::encode(prepared.header.encode()),
            "body": hex::encode(&body_bytes),
            "body_hash": body_hash(&salt, &body_bytes).to_hex(),
            "digest": sealed.digest.to_hex(),
            "full_plaintext": hex::encode(&sealed.full),
            "stub_plaintext": sealed.stub.as_ref().map(hex::encode),
            "recipients": prepared.recipients.iter().map(|(m, k)| json!({
                "handle": m.as_str(),
                "copy": if *k == CopyKind::Stub { "stub" } else { "full" },
            })).collect::<Vec<_>>(),
        }));
        self.digests.insert(name, sealed.digest);
        self.ids.insert(name, id);
    }
}

fn messages() -> Value {
    let channel = ChannelId(core::array::from_fn(|i| i as u8));
    let states = ["blue", "green", "mediator", "red"]
        .iter()
        .map(|n| (h(n), ChannelState::new(channel, h(n))))
        .collect();
    let mut s = Scene {
        states,
        out: Vec::new(),
        digests: BTreeMap::new(),
        ids: BTreeMap::new(),
    };
    let three = vec![
        member("blue", Role::Party),
        member("mediator", Role::Mediator),
        member("red", Role::Party),
    ];
    s.send("creation", "epoch 0, the mediator's seq 1; its own head entry is (0, the epoch-0 opening); it goes in full to every member; body version 2 (the baseline) announcing the versions the mediator reads", "mediator", Body::Creation(proposal("talks", three.clone())), None);
    let c = s.digests["creation"];
    s.send("acceptance by blue", "epoch 0, in the creation's version; the head vector covers the creation; announces the versions blue reads", "blue", Body::accept(c), None);
    s.send("acceptance by red", "the last acceptance: epoch 1 opens with the creation's digest; this message is never receipted (nothing more is sent in epoch 0)", "red", Body::accept(c), None);
    s.send("text by blue", "content starts in epoch 1: seq 1, prev = the creation's digest; the mediator (no mediator_reads) gets the stub, red the full copy, both padded to one bucket; version = the highest every member announced", "blue", Body::Text("We will not strike first.".into()), None);
    s.send(
        "receipt by red",
        "a receipt: the head vector covers blue's text; receipts are never receipted",
        "red",
        Body::Receipt,
        None,
    );
    s.send(
        "heartbeat by mediator",
        "a heartbeat carries the head vector and is receipted",
        "mediator",
        Body::Heartbeat,
        None,
    );
    let assurance = structured_samples()
        .into_iter()
        .find(|(n, _)| *n == "assurance")
        .map(|(_, a)| a)
        .unwrap_or_else(|| unreachable!());
    s.send("assurance by blue", "a structured body in canonical JSON, answering blue's text (in_reply_to); the sender's own head entry is its previous message", "blue", structured(assurance), Some("text by blue"));
    let mut four = three;
    four.insert(1, member("green", Role::Party));
    s.send(
        "amendment adding green",
        "in the open epoch, to its members and to green; its head vector lists epoch 1's members",
        "mediator",
        Body::Amendment(proposal("talks", four.clone())),
        None,
    );
    let a = s.digests["amendment adding green"];
    s.send("acceptance by green (a joiner)", "green takes epoch 1 from the amendment's header; its first head vector lists the proposal's members, each at the highest contiguous position green holds (none: the amendment is the mediator's seq 2), and its own entry (0, epoch 1's opening)", "green", Body::accept(a), None);
    s.send(
        "acceptance by blue of the amendment",
        "epoch 1; goes to epoch 1's members and to green",
        "blue",
        Body::accept(a),
        None,
    );
    s.send(
        "acceptance by red of the amendment",
        "the last acceptance: epoch 2 opens with the amendment's digest",
        "red",
        Body::accept(a),
        None,
    );
    s.send(
        "text by green",
        "epoch 2, seq 1, prev = the amendment's digest; green's first content",
        "green",
        Body::Text("Green is ready.".into()),
        None,
    );
    let mut withdrawn = proposal("talks", four);
    withdrawn.policy.receipt_deadline_s = 7200;
    s.send(
        "amendment by red (a party) changing the receipt deadline",
        "version 3: a party proposes; its own proposal counts as its acceptance, the mediator does not answer",
        "red",
        Body::Amendment(withdrawn.clone()),
        None,
    );
    let w = s.digests["amendment by red (a party) changing the receipt deadline"];
    s.send(
        "acceptance by blue of red's amendment",
        "epoch 2; red already counts as accepted",
        "blue",
        Body::accept(w),
        None,
    );
    s.send(
        "acceptance by green of red's amendment",
        "the last answer: epoch 3 opens with red's amendment's digest",
        "green",
        Body::accept(w),
        None,
    );
    let mut left = withdrawn;
    left.members.retain(|m| m.handle != h("green"));
    s.send(
        "leave by green",
        "version 3: an amendment by a party that only removes itself (same title, policy and other members) takes effect when received, with no answer: epoch 4 opens with its digest",
        "green",
        Body::Amendment(left),
        None,
    );
    s.send(
        "text by blue after green left",
        "epoch 4, seq 1: to red in full and the mediator as a stub; nothing to green",
        "blue",
        Body::Text("Noted.".into()),
        None,
    );
    json!({
        "about": "One channel's messages in order (blue, red parties; mediator; green joins by amendment), as the sender builds them: header fields and body inputs, the exact header and body bytes, the salt, body_hash = SHA-256(salt ‖ body), digest = SHA-256(header ‖ body_hash), and the padded full and stub plaintexts (Olm's input). Member keys are the public keys of fixed secret keys (SHA-256 of the handle and '/curve25519' or '/ed25519').",
        "channel_id": channel.to_hex(),
        "epoch0_opening": Epoch::genesis(channel).opening.to_hex(),
        "messages": s.out,
    })
}

fn sealed_offers() -> Value {
    let terms = "Simultaneous gestures of good faith.";
    let offer = SealedOffer {
        exchange_id: ExchangeId([0x44; 16]),
        deadline: Timestamp(T0 + 3_600_000),
        sealed_at: Timestamp(T0 + 60_000),
        terms_digest: Digest::of(&[terms.as_bytes()]),
        offer: "Blue withdraws two brigades.".into(),
    };
    let plaintext = offer.to_plaintext().unwrap_or_else(|e| unreachable!("{e}"));
    let legacy = format!(
        r#"{{"exchange_id":"{}","deadline_ms":{},"sealed_at_ms":{},"terms_digest":"{}","offer":"{}"}}"#,
        offer.exchange_id, offer.deadline.0, offer.sealed_at.0, offer.terms_digest, offer.offer
    );
    let legacy_plaintext =
        crate::payload::pad(legacy.as_bytes(), 512).unwrap_or_else(|e| unreachable!("{e}"));
    let inputs = json!({
        "exchange_id": offer.exchange_id.to_hex(),
        "deadline_ms": offer.deadline.0,
        "sealed_at_ms": offer.sealed_at.0,
        "terms": terms,
        "terms_digest": offer.terms_digest.to_hex(),
        "offer": offer.offer,
    });
    let confirm = |digest: Digest| {
        structured(Structured::EscrowConfirmation {
            exchange: offer.exchange_id,
            offers: vec![crate::commitments::ConfirmedOffer {
                from: h("blue"),
                digest: Some(digest),
            }],
        })
    };
    json!({
        "about": "Sealed offers: the inputs, the padded plaintext Olm seals (one-message session), and offer_digest = SHA-256 of that exact plaintext, which every recipient confirms in the channel (escrow_confirmation). terms_digest = SHA-256 of the UTF-8 terms. A version-1 (JSON) offer still opens; its digest is over its own bytes, never a re-encoding.",
        "offers": [
            {
                "name": "version 2",
                "inputs": inputs,
                "plaintext": hex::encode(&plaintext),
                "offer_digest": offer_digest(&plaintext).to_hex(),
                "confirmation_body": hex::encode(confirm(offer_digest(&plaintext)).encode(BodyVersion::V2)),
            },
            {
                "name": "version 1 (JSON, before protocol v1)",
                "inputs": inputs,
                "plaintext": hex::encode(&legacy_plaintext),
                "offer_digest": offer_digest(&legacy_plaintext).to_hex(),
                "confirmation_body": hex::encode(confirm(offer_digest(&legacy_plaintext)).encode(BodyVersion::V2)),
            },
        ],
    })
}

/// Rebuilds a header from its vector inputs (the other direction).
pub fn header_from_inputs(v: &Value) -> Option<Header> {
    let digest = |k: &str| Digest::from_hex(v[k].as_str()?).ok();
    let mut heads = HeadVector::default();
    for e in v["heads"].as_array()? {
        heads.0.insert(
            Handle::new(e["member"].as_str()?).ok()?,
            Head {
                seq: Seq(e["seq"].as_u64()?),
                digest: Digest::from_hex(e["digest"].as_str()?).ok()?,
            },
        );
    }
    Some(Header {
        version: BodyVersion(u8::try_from(v["version"].as_u64()?).ok()?),
        channel_id: ChannelId::from_hex(v["channel_id"].as_str()?).ok()?,
        message_id: MessageId::from_hex(v["message_id"].as_str()?).ok()?,
        epoch: Epoch {
            number: EpochNumber(u32::try_from(v["epoch"].as_u64()?).ok()?),
            opening: digest("epoch_opening")?,
        },
        sender: Handle::new(v["sender"].as_str()?).ok()?,
        seq: Seq(v["seq"].as_u64()?),
        prev: digest("prev")?,
        sent_at: Timestamp(v["sent_at_ms"].as_i64()?),
        in_reply_to: match &v["in_reply_to"] {
            Value::Null => None,
            x => Some(MessageId::from_hex(x.as_str()?).ok()?),
        },
        body_kind: BodyKind::from_tag(u8::try_from(v["body_kind"].as_u64()?).ok()?).ok()?,
        heads,
    })
}

/// Rebuilds a body from its vector inputs under `version`.
pub fn body_from_inputs(v: &Value, version: BodyVersion) -> Option<Body> {
    let reads = |x: &Value| -> Option<Vec<BodyVersion>> {
        x.as_array()?
            .iter()
            .map(|n| Some(BodyVersion(u8::try_from(n.as_u64()?).ok()?)))
            .collect()
    };
    let prop = |p: &Value| -> Option<Proposal> {
        let key = |m: &Value, k: &str| -> Option<[u8; 32]> {
            let mut out = [0u8; 32];
            hex::decode_to_slice(m[k].as_str()?, &mut out).ok()?;
            Some(out)
        };
        let members = p["members"]
            .as_array()?
            .iter()
            .map(|m| {
                Some(Member {
                    handle: Handle::new(m["handle"].as_str()?).ok()?,
                    role: match m["role"].as_str()? {
                        "party" => Role::Party,
                        "mediator" => Role::Mediator,
                        "observer" => Role::Observer,
                        _ => return None,
                    },
                    curve25519: key(m, "curve25519")?,
                    ed25519: key(m, "ed25519")?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let pol = &p["policy"];
        Some(Proposal {
            title: p["title"].as_str()?.into(),
            members,
            policy: Policy {
                mediator_reads: pol["mediator_reads"].as_bool()?,
                receipt_deadline_s: u32::try_from(pol["receipt_deadline_s"].as_u64()?).ok()?,
                heartbeat_interval_s: u32::try_from(pol["heartbeat_interval_s"].as_u64()?).ok()?,
            },
            reads: reads(&p["reads"])?,
        })
    };
    let digest = |k: &str| Digest::from_hex(v[k].as_str()?).ok();
    Some(match v["kind"].as_str()? {
        "text" => Body::Text(v["text"].as_str()?.into()),
        "receipt" => Body::Receipt,
        "heartbeat" => Body::Heartbeat,
        "creation" => Body::Creation(prop(&v["proposal"])?),
        "amendment" => Body::Amendment(prop(&v["proposal"])?),
        "acceptance" => Body::Acceptance {
            proposal: digest("proposal")?,
            reads: reads(&v["reads"])?,
        },
        "decline" => Body::Decline {
            proposal: digest("proposal")?,
            reason: v["reason"].as_str()?.into(),
        },
        "structured" => Body::Structured(Box::new(
            StructuredBody::decode(v["json"].as_str()?.as_bytes(), version).ok()?,
        )),
        _ => return None,
    })
}
