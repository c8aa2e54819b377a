//! Nothing Backchannel keeps lets an outsider prove who said what.

use backchannel_client::transcript::{self, TranscriptFile};
use backchannel_protocol::payload::{seal, Body, BodyKind, Header, Payload};
use backchannel_protocol::{Digest, MessageId, Seq, Timestamp};

use crate::{h, Cast};

const SAID: &str = "We will not strike first.";

fn payloads(file: &TranscriptFile) -> Vec<Payload> {
    file.messages
        .iter()
        .map(|m| {
            let header = Header::decode(&hex::decode(&m.header).unwrap()).unwrap();
            match (&m.salt, &m.body) {
                (Some(s), Some(b)) => Payload::Full {
                    salt: hex::decode(s).unwrap().try_into().unwrap(),
                    body: Body::decode(&hex::decode(b).unwrap(), header.version).unwrap(),
                    header,
                },
                _ => Payload::Stub {
                    header,
                    body_hash: Digest::from_hex(&m.body_hash).unwrap(),
                },
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcript_built_without_any_key_passes_verify_and_fails_against_the_store() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    cast.blue.send_text(id, SAID, None).await.unwrap();
    cast.sync_all().await;

    let real = cast.red.export_transcript(id).unwrap();
    assert!(real.notice.contains("not evidence"));
    let check = transcript::verify(&real);
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    let cmp = cast.red.check_transcript_against_store(&real).unwrap();
    assert!(cmp.problems.is_empty());
    let json = serde_json::to_string(&real).unwrap();
    assert!(
        !json.contains("ciphertext") && !json.contains("pickle"),
        "no ciphertext, no key material"
    );

    // Anyone holding the file can append a message blue never sent: the
    // chain math needs no key.
    let mut forged = payloads(&real);
    let last = forged
        .iter()
        .rfind(|p| p.header().sender == h("blue") && p.header().epoch.number.0 == 1)
        .unwrap()
        .clone();
    let header = Header {
        version: backchannel_protocol::payload::BodyVersion::V2,
        message_id: MessageId([0x66; 16]),
        seq: Seq(last.header().seq.0 + 1),
        prev: last.digest(),
        sent_at: Timestamp(last.header().sent_at.0 + 1000),
        body_kind: BodyKind::Text,
        ..last.header().clone()
    };
    let body = Body::Text("We will strike first.".into());
    let salt = [9u8; 16];
    seal(header.clone(), salt, body.clone()).unwrap();
    forged.push(Payload::Full { header, salt, body });
    let fake = transcript::transcript_of(id, "red", real.exported_at_ms, &forged);
    let check = transcript::verify(&fake);
    assert!(
        check.problems.is_empty(),
        "a fabrication is internally consistent: {:?}",
        check.problems
    );
    let against = cast
        .red
        .check_transcript_against_store(&fake)
        .unwrap()
        .problems;
    assert_eq!(against.len(), 1, "{against:?}");
    assert!(against[0].contains("never received"));

    // Editing a real message breaks its digest.
    let mut edited = real.clone();
    let i = edited
        .messages
        .iter()
        .position(|m| m.text.as_deref() == Some(SAID))
        .unwrap();
    edited.messages[i].text = Some("We will strike first.".into());
    assert!(!transcript::verify(&edited).problems.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_database_holds_no_signature_over_content() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    cast.blue.send_text(id, SAID, None).await.unwrap();
    cast.red.send_text(id, "Nor will we.", None).await.unwrap();
    let blobs = cast.relay.hostile.blobs_of_len(64);
    assert!(
        !blobs.is_empty(),
        "the scan sees the one-time-key signatures"
    );
    let keys: Vec<_> = [&cast.mediator, &cast.blue, &cast.red]
        .iter()
        .map(|c| c.keys().ed25519)
        .collect();
    for (place, sig) in &blobs {
        assert!(
            place.ends_with(".signature"),
            "a 64-byte value outside the key signatures: {place}"
        );
        let sig = vodozemac::Ed25519Signature::from_slice(sig).unwrap();
        for k in &keys {
            let k = vodozemac::Ed25519PublicKey::from_slice(k).unwrap();
            for text in [SAID.as_bytes(), b"Nor will we.".as_slice()] {
                assert!(
                    k.verify(text, &sig).is_err(),
                    "a signature over content in {place}"
                );
            }
        }
    }
}
