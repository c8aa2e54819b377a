//! An honest run raises no alert: 2,000 messages among three members sending
//! concurrently, with random delays, identical redeliveries, WebSocket
//! reconnects and a relay restart in the middle, on a seeded virtual clock,
//! all within the receipt deadline. Then the deadline passes: still nothing,
//! since every message was receipted.

use std::cell::Cell;
use std::time::Duration;

use backchannel_client::Client;
use backchannel_protocol::{ChannelId, Envelope};
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Cast;

const MESSAGES: usize = 2000;
const SEED: u64 = 0x0bac_c4a2;

/// One member's loop: send its share with random pauses, sync now and then,
/// and (for `reconnects`) listen on the WebSocket and drop it again.
async fn member(
    c: &mut Client,
    id: ChannelId,
    share: usize,
    seed: u64,
    clock: &std::sync::atomic::AtomicI64,
    sent: &Cell<usize>,
    reconnects: bool,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut mine = 0;
    while mine < share {
        match rng.gen_range(0..10) {
            0..=5 => {
                let text = format!("{} #{mine}", c.me());
                // A failed post stays in the outbox and goes out with the next
                // command; a failure before the commit is retried.
                match c.send_text(id, &text, None).await {
                    Ok(_) => {}
                    Err(e)
                        if e.code() == "relay_unreachable"
                            && c.log(Some(id))
                                .unwrap()
                                .iter()
                                .any(|m| m.text.as_deref() == Some(text.as_str())) => {}
                    Err(e) if matches!(e.code(), "relay_unreachable" | "relay_refused") => continue,
                    Err(e) => panic!("{}: {e}", c.me()),
                }
                mine += 1;
                sent.set(sent.get() + 1);
            }
            6..=8 => {
                if let Err(e) = c.sync().await {
                    assert!(
                        matches!(e.code(), "relay_unreachable" | "relay_refused"),
                        "{}: {e}",
                        c.me()
                    );
                }
            }
            _ if reconnects => {
                if let Ok(mut stream) = c.push_stream().await {
                    let _ = tokio::time::timeout(Duration::from_millis(5), stream.next()).await;
                }
            }
            _ => {}
        }
        clock.fetch_add(rng.gen_range(0..1500), std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_micros(rng.gen_range(0..1500))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_run_of_2000_messages_raises_no_alert() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    let sent = Cell::new(0);
    let clock = cast.clock.clone();
    let Cast {
        relay,
        mediator,
        blue,
        red,
        ..
    } = &mut cast;
    let shares = [MESSAGES / 3, MESSAGES / 3, MESSAGES - 2 * (MESSAGES / 3)];
    let mut restarted = false;
    let mut redelivered = 0;
    let mut stash: Vec<Envelope> = Vec::new();
    let chaos = async {
        let mut rng = StdRng::seed_from_u64(SEED ^ 0xffff);
        while sent.get() < MESSAGES {
            tokio::time::sleep(Duration::from_millis(5)).await;
            // Identical redeliveries: copies of waiting envelopes, now and later.
            if rng.gen_bool(0.3) {
                let who = ["mediator", "blue", "red"][rng.gen_range(0..3)];
                if let Some((_, e)) = relay.hostile.mailbox(who).first().cloned() {
                    relay.hostile.deliver(&e);
                    stash.push(e);
                    redelivered += 1;
                }
            }
            if rng.gen_bool(0.1) && !stash.is_empty() {
                let e = stash.swap_remove(rng.gen_range(0..stash.len()));
                relay.hostile.deliver(&e);
                redelivered += 1;
            }
            if !restarted && sent.get() >= MESSAGES / 2 {
                relay.restart().await;
                restarted = true;
            }
        }
    };
    tokio::join!(
        member(mediator, id, shares[0], SEED, &clock, &sent, false),
        member(blue, id, shares[1], SEED + 1, &clock, &sent, false),
        member(red, id, shares[2], SEED + 2, &clock, &sent, true),
        chaos,
    );
    assert!(
        restarted && redelivered > 10,
        "the run had its restart and redeliveries ({redelivered})"
    );

    // Quiesce: sync until a whole round brings nothing new.
    loop {
        let mut news = 0;
        for c in [&mut cast.mediator, &mut cast.blue, &mut cast.red] {
            let r = c.sync().await.unwrap();
            news += r.received.len() + r.outbox_sent;
        }
        if news == 0 {
            break;
        }
    }
    // Past every deadline: every message was receipted, so still nothing.
    cast.advance_s(2 * 3600);
    for c in [&mut cast.mediator, &mut cast.blue, &mut cast.red] {
        c.sync().await.unwrap();
    }
    for c in [&cast.mediator, &cast.blue, &cast.red] {
        let alerts: Vec<_> = c
            .alerts()
            .unwrap()
            .into_iter()
            .filter(|a| !a.kind.is_notice())
            .collect();
        assert!(
            alerts.is_empty(),
            "{}: {:?}",
            c.me(),
            alerts.iter().take(3).collect::<Vec<_>>()
        );
        let log = c.log(Some(id)).unwrap();
        let texts = log.iter().filter(|e| e.kind == "text").count();
        assert_eq!(texts, MESSAGES, "{} holds every message once", c.me());
        assert!(log.iter().all(|e| !e.held_back));
    }
}
