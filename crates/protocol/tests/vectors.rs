//! docs/vectors as an independent client reads them: every vector decodes
//! and re-encodes to the same bytes, the inputs encode to the bytes, the
//! refused encodings are refused, and the files are exactly what the
//! generator writes (so they cannot drift from the code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use backchannel_protocol::commitments::Structured;
use backchannel_protocol::escrow::{offer_digest, SealedOffer};
use backchannel_protocol::member::Unreadable;
use backchannel_protocol::payload::{body_hash, Body, BodyVersion, Header, Payload};
use backchannel_protocol::vectors::{
    body_from_inputs, body_inputs, generate, header_from_inputs, header_inputs, to_text,
};
use backchannel_protocol::{Digest, ExchangeId, Timestamp};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors")
}

fn file(name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn version(v: &Value) -> BodyVersion {
    BodyVersion(v.as_u64().unwrap() as u8)
}

#[test]
fn the_committed_vectors_are_what_the_generator_writes() {
    for (name, value) in generate() {
        let committed = std::fs::read_to_string(dir().join(name)).unwrap_or_default();
        assert!(
            committed == to_text(&value),
            "docs/vectors/{name} differs from the generator's output: if the change is meant, run `cargo run -p backchannel-protocol --example vectors` and commit the files (and say so in docs/protocol.md)"
        );
    }
}

/// Decodes `encoded` under `v`, checks it re-encodes to the same bytes, and
/// that the inputs encode to them and are what the bytes decode to.
fn check_body(name: &str, v: BodyVersion, inputs: &Value, encoded: &[u8]) -> Body {
    let decoded = Body::decode(encoded, v).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(decoded.encode(v), encoded, "{name}: re-encoding");
    let built = body_from_inputs(inputs, v).unwrap_or_else(|| panic!("{name}: inputs"));
    assert_eq!(built.encode(v), encoded, "{name}: inputs → bytes");
    assert_eq!(&body_inputs(&decoded), inputs, "{name}: bytes → inputs");
    decoded
}

#[test]
fn every_body_vector_decodes_and_re_encodes_to_the_same_bytes() {
    let f = file("bodies.json");
    let mut structured_kinds = Vec::new();
    for b in f["bodies"].as_array().unwrap() {
        let name = b["name"].as_str().unwrap();
        let body = check_body(
            name,
            version(&b["version"]),
            &b["inputs"],
            &bytes(&b["body"]),
        );
        if let Body::Structured(s) = &body {
            let kind = serde_json::to_value(s.value()).unwrap()["type"].clone();
            structured_kinds.push(kind.as_str().unwrap().to_string());
        }
    }
    // Every kind of body, every structured kind.
    let kinds: Vec<&str> = f["bodies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["inputs"]["kind"].as_str().unwrap())
        .collect();
    for k in [
        "text",
        "receipt",
        "heartbeat",
        "creation",
        "acceptance",
        "decline",
        "amendment",
        "structured",
    ] {
        assert!(kinds.contains(&k), "no {k} vector");
    }
    structured_kinds.sort();
    structured_kinds.dedup();
    assert_eq!(
        structured_kinds.len(),
        19,
        "one vector per structured kind: {structured_kinds:?}"
    );
}

#[test]
fn a_non_canonical_structured_body_is_refused_with_its_reason() {
    let f = file("bodies.json");
    let refused = f["refused"].as_array().unwrap();
    assert!(refused.len() >= 4);
    for r in refused {
        let name = r["name"].as_str().unwrap();
        let err = Body::decode(&bytes(&r["body"]), version(&r["version"])).expect_err(name);
        assert_eq!(Unreadable::of(&err).code(), r["reason"], "{name}: {err}");
        // The same bytes read under version 1 (old transcripts) where JSON
        // of the schema was all that was asked.
        if r["reason"] == "non_canonical" {
            assert!(
                Body::decode(&bytes(&r["body"]), BodyVersion::V1).is_ok(),
                "{name}"
            );
        }
    }
}

#[test]
fn every_message_vector_decodes_verifies_and_follows_the_chain_rules() {
    let f = file("messages.json");
    let epoch0 = Digest::from_hex(f["epoch0_opening"].as_str().unwrap()).unwrap();
    // (epoch, sender) → (seq, digest) of the last message seen.
    let mut chains: std::collections::BTreeMap<(u32, String), (u64, Digest)> = Default::default();
    let mut openings = vec![epoch0];
    let mut proposals = Vec::new();
    for m in f["messages"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let header_bytes = bytes(&m["header"]);
        let header = Header::decode(&header_bytes).unwrap();
        assert_eq!(header.encode(), header_bytes, "{name}");
        assert_eq!(
            header_inputs(&header),
            m["header_inputs"],
            "{name}: bytes → inputs"
        );
        assert_eq!(
            header_from_inputs(&m["header_inputs"]).unwrap().encode(),
            header_bytes,
            "{name}: inputs → bytes"
        );
        let body_bytes = bytes(&m["body"]);
        let body = check_body(name, header.version, &m["body_inputs"], &body_bytes);
        assert_eq!(body.kind(), header.body_kind, "{name}");
        let salt: [u8; 16] = bytes(&m["salt"]).try_into().unwrap();
        let hash = body_hash(&salt, &body_bytes);
        assert_eq!(hash.to_hex(), m["body_hash"], "{name}");
        let digest = header.digest_with(&hash);
        assert_eq!(digest.to_hex(), m["digest"], "{name}");
        // The padded plaintexts: the full copy, and the stub in the same bucket.
        let full = bytes(&m["full_plaintext"]);
        let Payload::Full {
            header: fh,
            body: fb,
            salt: fs,
        } = Payload::from_plaintext(&full).unwrap()
        else {
            panic!("{name}: not a full copy")
        };
        assert_eq!((fh, fb, fs), (header.clone(), body.clone(), salt), "{name}");
        match &m["stub_plaintext"] {
            Value::Null => assert!(!header.body_kind.is_content(), "{name}: content has a stub"),
            s => {
                let stub = bytes(s);
                assert_eq!(stub.len(), full.len(), "{name}: one bucket");
                let p = Payload::from_plaintext(&stub).unwrap();
                assert!(matches!(p, Payload::Stub { .. }));
                assert_eq!(p.digest(), digest, "{name}: the stub's digest");
            }
        }
        // Content starts in epoch 1; each chain restarts at 1 with the
        // epoch's opening; the sender's own head entry is its previous message.
        let e = header.epoch.number.0;
        if header.body_kind.is_content() {
            assert!(e >= 1, "{name}: content in epoch 0");
        }
        // A new epoch opens with the digest of a proposal sent before it.
        if e as usize == openings.len() {
            assert!(
                proposals.contains(&header.epoch.opening),
                "{name}: epoch {e} opens with no proposal's digest"
            );
            openings.push(header.epoch.opening);
        }
        assert_eq!(
            header.epoch.opening, openings[e as usize],
            "{name}: opening"
        );
        let key = (e, header.sender.to_string());
        let (prev_seq, prev) = chains
            .get(&key)
            .copied()
            .unwrap_or((0, header.epoch.opening));
        assert_eq!(
            (header.seq.0, header.prev),
            (prev_seq + 1, prev),
            "{name}: chain"
        );
        let own = header.heads.0[&header.sender];
        assert_eq!(
            (own.seq.0, own.digest),
            (prev_seq, prev),
            "{name}: own head entry"
        );
        chains.insert(key, (header.seq.0, digest));
        if matches!(body, Body::Creation(_) | Body::Amendment(_)) {
            proposals.push(digest);
        }
    }
    assert_eq!(
        openings.len(),
        5,
        "the vectors reach epoch 4 (a join, a party's amendment, a leave)"
    );
}

#[test]
fn every_sealed_offer_vector_opens_and_confirms_by_its_exact_bytes() {
    let f = file("sealed_offers.json");
    for o in f["offers"].as_array().unwrap() {
        let name = o["name"].as_str().unwrap();
        let i = &o["inputs"];
        let plaintext = bytes(&o["plaintext"]);
        let offer = SealedOffer::from_plaintext(&plaintext).unwrap();
        let expected = SealedOffer {
            exchange_id: ExchangeId::from_hex(i["exchange_id"].as_str().unwrap()).unwrap(),
            deadline: Timestamp(i["deadline_ms"].as_i64().unwrap()),
            sealed_at: Timestamp(i["sealed_at_ms"].as_i64().unwrap()),
            terms_digest: Digest::from_hex(i["terms_digest"].as_str().unwrap()).unwrap(),
            offer: i["offer"].as_str().unwrap().into(),
        };
        assert_eq!(offer, expected, "{name}");
        assert_eq!(
            expected.terms_digest,
            Digest::of(&[i["terms"].as_str().unwrap().as_bytes()]),
            "{name}: terms digest"
        );
        let digest = offer_digest(&plaintext);
        assert_eq!(digest.to_hex(), o["offer_digest"], "{name}");
        if name.starts_with("version 2") {
            assert_eq!(
                expected.to_plaintext().unwrap(),
                plaintext,
                "{name}: inputs → bytes"
            );
        } else {
            assert_ne!(
                expected.to_plaintext().unwrap(),
                plaintext,
                "{name}: another encoding"
            );
        }
        let Body::Structured(c) =
            Body::decode(&bytes(&o["confirmation_body"]), BodyVersion::V2).unwrap()
        else {
            panic!("{name}: the confirmation is not structured")
        };
        let Structured::EscrowConfirmation { exchange, offers } = c.value() else {
            panic!("{name}: not a confirmation")
        };
        assert_eq!(*exchange, expected.exchange_id);
        assert_eq!(
            offers[0].digest,
            Some(digest),
            "{name}: confirms the exact bytes"
        );
    }
}
