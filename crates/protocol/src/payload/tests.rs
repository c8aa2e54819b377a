use proptest::prelude::*;

use super::*;
use crate::envelope::{Envelope, OlmType};
use crate::identity::{self, Identity};

fn handle(s: &str) -> Handle {
    Handle::new(s).unwrap()
}

/// The fixed inputs of the worked example in docs/protocol.md.
fn worked_example() -> (Header, [u8; 16], Body) {
    let channel = ChannelId(core::array::from_fn(|i| i as u8));
    // Content starts in epoch 1, opened by the creation's digest (here a
    // fixed stand-in).
    let creation = Digest(core::array::from_fn(|i| 0x30 + i as u8));
    let epoch = Epoch::genesis(channel).successor(creation).unwrap();
    let heads = HeadVector::empty(
        &epoch,
        [&handle("blue"), &handle("mediator"), &handle("red")],
    );
    let header = Header {
        version: BodyVersion::V2,
        channel_id: channel,
        message_id: MessageId(core::array::from_fn(|i| 0x10 + i as u8)),
        epoch,
        sender: handle("blue"),
        seq: Seq(1),
        prev: epoch.opening,
        sent_at: Timestamp(1_750_000_000_000),
        in_reply_to: None,
        body_kind: BodyKind::Text,
        heads,
    };
    let salt = core::array::from_fn(|i| 0x20 + i as u8);
    (header, salt, Body::Text("We will not strike first.".into()))
}

/// Reads `name: <hex>` lines (hex possibly wrapped over several lines) from
/// the worked example block of docs/protocol.md.
fn doc_value(name: &str) -> String {
    let doc = include_str!("../../../../docs/protocol.md");
    let start = doc
        .find("<!-- worked-example -->")
        .expect("docs/protocol.md has the worked example block");
    let block = &doc[start..];
    let end = block.find("<!-- /worked-example -->").expect("block end");
    let block = &block[..end];
    let mut out = String::new();
    let mut inside = false;
    for line in block.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix(&format!("{name}:")) {
            inside = true;
            out.push_str(rest.trim());
            continue;
        }
        if inside {
            if !line.is_empty() && line.chars().all(|c| c.is_ascii_hexdigit()) {
                out.push_str(line);
            } else {
                break;
            }
        }
    }
    assert!(!out.is_empty(), "{name} missing from docs/protocol.md");
    out
}

#[test]
fn worked_example_matches_docs_byte_for_byte() {
    let (header, salt, body) = worked_example();
    let header_bytes = header.encode();
    let body_bytes = body.encode(BodyVersion::V2);
    let hash = body_hash(&salt, &body_bytes);
    let sealed = seal(header.clone(), salt, body).unwrap();
    if std::env::var_os("PRINT_WORKED_EXAMPLE").is_some() {
        println!("epoch_opening: {}", header.epoch.opening.to_hex());
        println!("header: {}", hex::encode(&header_bytes));
        println!("body: {}", hex::encode(&body_bytes));
        println!("body_hash: {}", hash.to_hex());
        println!("digest: {}", sealed.digest.to_hex());
    }
    assert_eq!(doc_value("epoch_opening"), header.epoch.opening.to_hex());
    assert_eq!(doc_value("header"), hex::encode(&header_bytes));
    assert_eq!(doc_value("body"), hex::encode(&body_bytes));
    assert_eq!(doc_value("body_hash"), hash.to_hex());
    assert_eq!(doc_value("digest"), sealed.digest.to_hex());
}

#[test]
fn stub_has_the_digest_and_size_of_the_full_copy() {
    let (header, salt, body) = worked_example();
    let sealed = seal(header, salt, body).unwrap();
    let stub_bytes = sealed
        .stub
        .as_ref()
        .expect("text is content, so it has a stub");
    assert_eq!(stub_bytes.len(), sealed.full.len(), "same padding bucket");
    let full = Payload::from_plaintext(&sealed.full).unwrap();
    let stub = Payload::from_plaintext(stub_bytes).unwrap();
    assert!(matches!(stub, Payload::Stub { .. }));
    assert_eq!(full.digest(), sealed.digest);
    assert_eq!(stub.digest(), sealed.digest);
    // The stub does not hold the text.
    let text = b"We will not strike first.";
    assert!(!stub_bytes.windows(text.len()).any(|w| w == text));
}

#[test]
fn stub_of_a_big_message_pads_to_the_big_bucket() {
    let (mut header, salt, _) = worked_example();
    header.body_kind = BodyKind::Text;
    let sealed = seal(header, salt, Body::Text("x".repeat(5000))).unwrap();
    assert_eq!(sealed.full.len(), 8192);
    assert_eq!(sealed.stub.unwrap().len(), 8192);
}

#[test]
fn control_bodies_are_never_stubbed() {
    let (mut header, salt, _) = worked_example();
    header.body_kind = BodyKind::Receipt;
    let sealed = seal(header.clone(), salt, Body::Receipt).unwrap();
    assert!(sealed.stub.is_none());
    let forged_stub = Payload::Stub {
        header,
        body_hash: Digest::default(),
    };
    assert!(Payload::decode(&forged_stub.encode()).is_err());
}

#[test]
fn header_and_body_kind_must_agree() {
    let (header, salt, _) = worked_example();
    assert!(seal(header, salt, Body::Heartbeat).is_err());
}

#[test]
fn padding_must_be_a_bucket_of_zeros() {
    let padded = pad(b"abc", 512).unwrap();
    assert_eq!(unpad(&padded).unwrap(), b"abc");
    let mut bad = padded.clone();
    bad[100] = 1;
    assert!(unpad(&bad).is_err());
    assert!(unpad(&padded[..511]).is_err());
    assert!(pad(&[0; 600], 512).is_err());
    assert!(bucket_for(PAYLOAD_MAX_BYTES + 1).is_err());
}

#[test]
fn olm_session_both_ways_through_one_time_keys() {
    let mut blue = Identity::new();
    let mut red = Identity::new();
    let red_otk = red.generate_one_time_keys(3).remove(1);
    let mut blue_to_red = blue.outbound_session(&red.keys(), &red_otk).unwrap();

    let (header, salt, body) = worked_example();
    let sealed = seal(header.clone(), salt, body.clone()).unwrap();
    let (t, c) = blue_to_red.encrypt(&sealed.full).unwrap();
    assert_eq!(t, OlmType::PreKey);
    let (mut red_from_blue, plain) = red.inbound_session(&blue.keys(), t, &c).unwrap();
    assert_eq!(
        Payload::from_plaintext(&plain).unwrap(),
        Payload::Full {
            header: header.clone(),
            salt,
            body
        }
    );

    // Red answers on the same session; blue decrypts; then blue again.
    let mut reply_header = header.clone();
    reply_header.sender = handle("red");
    reply_header.message_id = MessageId([0xaa; 16]);
    reply_header.in_reply_to = Some(header.message_id);
    let reply = seal(
        reply_header.clone(),
        [3; 16],
        Body::Text("Nor will we.".into()),
    )
    .unwrap();
    let (t2, c2) = red_from_blue.encrypt(&reply.full).unwrap();
    assert_eq!(t2, OlmType::Normal);
    let got = Payload::from_plaintext(&blue_to_red.decrypt(t2, &c2).unwrap()).unwrap();
    assert_eq!(got.digest(), reply.digest);
    assert_eq!(got.header().in_reply_to, Some(header.message_id));

    let (t3, c3) = blue_to_red.encrypt(&sealed.full).unwrap();
    assert_eq!(t3, OlmType::Normal);
    assert!(red_from_blue.decrypt(t3, &c3).is_ok());
    // A second inbound session from the same one-time key is refused: the
    // key was used up.
    assert!(red.inbound_session(&blue.keys(), t, &c).is_err());
    // Fallback keys work when one-time keys are gone.
    let fb = red.generate_fallback_key().unwrap();
    assert!(fb.fallback);
    assert!(blue.outbound_session(&red.keys(), &fb).is_ok());
    let _ = &mut blue;
}

#[test]
fn bad_keys_and_signatures_are_refused() {
    let blue = Identity::new();
    let mut red = Identity::new();
    let mut otk = red.generate_one_time_keys(1).remove(0);
    // Identity point and a low-order point.
    let mut zero = otk.clone();
    zero.key = [0; 32];
    assert!(matches!(
        blue.outbound_session(&red.keys(), &zero),
        Err(crate::CryptoError::BadKey(_))
    ));
    let mut one = otk.clone();
    one.key = [0; 32];
    one.key[0] = 1;
    assert!(blue.outbound_session(&red.keys(), &one).is_err());
    // A substituted key with red's old signature.
    otk.key = Identity::new().keys().curve25519;
    assert!(matches!(
        blue.outbound_session(&red.keys(), &otk),
        Err(crate::CryptoError::BadSignature { .. })
    ));
}

#[test]
fn login_signature_never_verifies_as_a_one_time_key_signature() {
    // ATTACKS.md #13: a relay picks challenge bytes equal to a one-time-key
    // signing payload. The login prefix keeps the two apart.
    let mut red = Identity::new();
    let otk = red.generate_one_time_keys(1).remove(0);
    let otk_msg = identity::one_time_key_message(&otk.key, false);
    // A 32-byte challenge equal to the prefix-free part is impossible (33
    // bytes); the relay's best is the key itself.
    let challenge = otk.key;
    let sig = red.sign_login_challenge(&challenge).unwrap();
    assert!(identity::verify(
        identity::SignPurpose::Login,
        &red.keys().ed25519,
        &challenge,
        &sig
    )
    .is_ok());
    assert!(identity::verify(
        identity::SignPurpose::OneTimeKey,
        &red.keys().ed25519,
        &otk_msg,
        &sig
    )
    .is_err());
    assert!(identity::verify(
        identity::SignPurpose::OneTimeKey,
        &red.keys().ed25519,
        &challenge,
        &sig
    )
    .is_err());
    // Whatever the relay sends, only 32-byte challenges are signed.
    assert!(red.sign_login_challenge(&otk_msg).is_err());
    let full = identity::signing_input(identity::SignPurpose::OneTimeKey, &otk_msg);
    assert!(red.sign_login_challenge(&full).is_err());
}

#[test]
fn identity_debug_shows_no_secret() {
    let id = Identity::new();
    let shown = format!("{id:?}");
    let pickle = serde_json::to_string(&id.pickle()).unwrap();
    assert!(shown.contains("IdentityKeys"));
    assert!(!shown.contains(&pickle[..20.min(pickle.len())]) || pickle.len() < 20);
    assert!(!shown.to_lowercase().contains("secret"));
}

fn arb_handle() -> impl Strategy<Value = Handle> {
    "[a-z0-9][a-z0-9_-]{0,31}".prop_map(|s| Handle::new(s).unwrap())
}

fn arb_digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn arb_header() -> impl Strategy<Value = Header> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u32>(),
        arb_digest(),
        arb_handle(),
        1u64..,
        arb_digest(),
        any::<i64>(),
        proptest::option::of(any::<[u8; 16]>()),
        proptest::collection::btree_map(arb_handle(), (any::<u64>(), arb_digest()), 0..6),
    )
        .prop_map(|(c, m, e, o, sender, seq, prev, t, reply, heads)| Header {
            version: BodyVersion::V2,
            channel_id: ChannelId(c),
            message_id: MessageId(m),
            epoch: Epoch {
                number: crate::EpochNumber(e),
                opening: o,
            },
            sender,
            seq: Seq(seq),
            prev,
            sent_at: Timestamp(t),
            in_reply_to: reply.map(MessageId),
            body_kind: BodyKind::Text,
            heads: HeadVector(
                heads
                    .into_iter()
                    .map(|(h, (s, d))| {
                        (
                            h,
                            Head {
                                seq: Seq(s),
                                digest: d,
                            },
                        )
                    })
                    .collect(),
            ),
        })
}

fn arb_proposal() -> impl Strategy<Value = Proposal> {
    (
        ".{0,40}",
        proptest::collection::btree_map(
            arb_handle(),
            (0u8..3, any::<[u8; 32]>(), any::<[u8; 32]>()),
            0..5,
        ),
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(title, members, reads, deadline, beat)| Proposal {
            title,
            members: members
                .into_iter()
                .map(|(handle, (r, c, e))| Member {
                    handle,
                    role: [Role::Party, Role::Mediator, Role::Observer][r as usize],
                    curve25519: c,
                    ed25519: e,
                })
                .collect(),
            policy: Policy {
                mediator_reads: reads,
                receipt_deadline_s: deadline,
                heartbeat_interval_s: beat,
            },
            reads: BodyVersion::SUPPORTED.to_vec(),
        })
}

fn arb_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        ".{0,200}".prop_map(Body::Text),
        ".{0,80}".prop_map(
            |text| Body::structured(crate::commitments::Structured::Note { text }).unwrap()
        ),
        Just(Body::Receipt),
        Just(Body::Heartbeat),
        arb_proposal().prop_map(Body::Creation),
        arb_proposal().prop_map(Body::Amendment),
        arb_digest().prop_map(Body::accept),
        (arb_digest(), ".{0,50}").prop_map(|(proposal, reason)| Body::Decline { proposal, reason }),
    ]
}

fn arb_payload() -> impl Strategy<Value = Payload> {
    (
        arb_header(),
        any::<[u8; 16]>(),
        arb_body(),
        any::<bool>(),
        arb_digest(),
    )
        .prop_map(|(mut header, salt, body, stub, hash)| {
            header.body_kind = body.kind();
            if stub && body.kind().is_content() {
                Payload::Stub {
                    header,
                    body_hash: hash,
                }
            } else {
                Payload::Full { header, salt, body }
            }
        })
}

fn arb_envelope() -> impl Strategy<Value = Envelope> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        arb_handle(),
        arb_handle(),
        any::<u64>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(c, m, s, r, hint, pre, ct)| Envelope {
            channel_id: ChannelId(c),
            message_id: MessageId(m),
            sender: s,
            recipient: r,
            seq_hint: hint,
            olm_type: if pre {
                OlmType::PreKey
            } else {
                OlmType::Normal
            },
            ciphertext: ct,
        })
}

proptest! {
    #[test]
    fn payload_round_trips(p in arb_payload()) {
        let bytes = p.encode();
        let back = Payload::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &p);
        prop_assert_eq!(back.encode(), bytes.clone());
        let padded = pad(&p.encode(), bucket_for(bytes.len()).unwrap()).unwrap();
        prop_assert_eq!(Payload::from_plaintext(&padded).unwrap(), p);
    }

    #[test]
    fn envelope_round_trips(e in arb_envelope()) {
        let bytes = e.encode();
        prop_assert_eq!(Envelope::decode(&bytes).unwrap(), e.clone());
        let json = crate::api::EnvelopeJson::from(&e);
        prop_assert_eq!(Envelope::try_from(&json).unwrap(), e);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Payload::decode(&bytes);
        let _ = Payload::from_plaintext(&bytes);
        let _ = Envelope::decode(&bytes);
        let _ = Body::decode(&bytes, BodyVersion::V1);
        let _ = Body::decode(&bytes, BodyVersion::V2);
    }

    #[test]
    fn mutated_payloads_never_panic(p in arb_payload(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = p.encode();
        let i = at % bytes.len();
        bytes[i] = byte;
        let _ = Payload::decode(&bytes);
        bytes.truncate(i);
        let _ = Payload::decode(&bytes);
    }
}

/// Replays the fuzz corpora (`fuzz/corpus/*`) as a unit test: every input
/// must decode without panicking, and what decodes must be canonical. With
/// `WRITE_FUZZ_SEEDS=1` it first writes the seed inputs.
#[test]
#[allow(clippy::disallowed_methods)] // test-only file access
fn fuzz_corpus_replays() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    if std::env::var_os("WRITE_FUZZ_SEEDS").is_some() {
        let (header, salt, body) = worked_example();
        let full = Payload::Full {
            header: header.clone(),
            salt,
            body,
        };
        let stub = Payload::Stub {
            header,
            body_hash: full.body_hash(),
        };
        std::fs::write(root.join("payload/worked-example-full"), full.encode()).unwrap();
        std::fs::write(root.join("payload/worked-example-stub"), stub.encode()).unwrap();
        let env = Envelope {
            channel_id: ChannelId([1; 16]),
            message_id: MessageId([2; 16]),
            sender: handle("blue"),
            recipient: handle("red"),
            seq_hint: 1,
            olm_type: OlmType::PreKey,
            ciphertext: vec![0xab; 40],
        };
        std::fs::write(root.join("envelope/seed"), env.encode()).unwrap();
    }
    let mut seen = 0;
    for (target, check) in [
        (
            "payload",
            (|b: &[u8]| Payload::decode(b).map(|p| p.encode()))
                as fn(&[u8]) -> Result<Vec<u8>, DecodeError>,
        ),
        ("envelope", |b: &[u8]| {
            Envelope::decode(b).map(|e| e.encode())
        }),
    ] {
        for entry in std::fs::read_dir(root.join(target)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(again) = check(&bytes) {
                assert_eq!(again, bytes, "{target}: decoding is not canonical");
            }
            seen += 1;
        }
    }
    for entry in std::fs::read_dir(root.join("sealed_offer")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(o) = crate::escrow::SealedOffer::from_plaintext(&bytes) {
            let again = o.to_plaintext().unwrap();
            assert_eq!(
                crate::escrow::SealedOffer::from_plaintext(&again).unwrap(),
                o
            );
        }
        seen += 1;
    }
    assert!(seen >= 5, "the seed corpus is missing");
}
