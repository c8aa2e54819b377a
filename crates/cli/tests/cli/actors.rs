//! One actor namespace per channel, did-you-mean for actors and modes, and
//! local aliases across channels.

use crate::authority::refused;
use crate::commitments::log_len;
use crate::{Scene, User};

#[test]
fn a_member_is_never_named_as_an_outside_actor_and_typos_are_caught() {
    let s = Scene::new();
    let id = s.open_channel();
    refused(
        &s.red,
        &id,
        &["relate", &id, "outside:blue", "ally-of", "red"],
        "blue is a member of this channel: write blue, not outside:blue",
    );
    refused(
        &s.red,
        &id,
        &[
            "report",
            &id,
            "Seen.",
            "--actor",
            "outside:blue",
            "--action",
            "ASSAULT",
            "--from",
            "-1h",
            "--until",
            "now",
        ],
        "blue is a member of this channel",
    );
    // A new outside actor is named explicitly, then by its name.
    s.red
        .run(&["relate", &id, "outside:militia", "proxy-of", "blue"]);
    refused(
        &s.red,
        &id,
        &["relate", &id, "militai", "ally-of", "blue"],
        "unknown actor \"militai\" in this channel: did you mean militia? \
         (members: blue, mediator, red; outside actors: militia)",
    );
    refused(
        &s.red,
        &id,
        &["relate", &id, "militai", "ally-of", "blue"],
        &format!("hint: nothing was sent; `backchannel actors list {id}` lists"),
    );
    // A mode typo in a commitment, as in the what-if below.
    refused(
        &s.red,
        &id,
        &[
            "redline",
            &id,
            "No air strikes.",
            "--if",
            "ASSAULT",
            "--if-mode",
            "aeriel",
            "--then",
            "ASSAULT",
        ],
        "did you mean aerial?",
    );
    let whatif = |args: &[&str]| {
        let mut all = vec!["whatif", id.as_str()];
        all.extend_from_slice(args);
        s.red.try_run(&all)
    };
    let out = whatif(&[
        "--actor", "militai", "--action", "ASSAULT", "--target", "red",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown actor \"militai\"")
            && err.contains("did you mean militia?")
            && err.contains("write outside:militai"),
        "{err}"
    );
    let out = whatif(&[
        "--actor", "militia", "--action", "ASSAULT", "--target", "rde",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did you mean red?"),
        "{out:?}"
    );
    let out = whatif(&[
        "--actor", "militia", "--action", "ASSAULT", "--mode", "aeriel", "--target", "red",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("did you mean aerial?"), "{err}");
    let ok = s.red.run(&[
        "whatif", &id, "--actor", "militia", "--action", "ASSAULT", "--mode", "aerial", "--target",
        "red",
    ]);
    assert!(ok.contains("step 1: militia (outside the channel)"), "{ok}");

    // Across channels, a plain name must be known in one of them.
    let out = s.red.try_run(&[
        "whatif",
        "--all-channels",
        "--actor",
        "militai",
        "--action",
        "ASSAULT",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown actor \"militai\" in any of your channels: did you mean militia?")
            && err.contains("hint: `backchannel actors list` lists"),
        "{err}"
    );

    // Where each outside actor was first named.
    let listed = s.red.run(&["actors", "list", &id]);
    assert!(
        listed.contains("members: blue, mediator, red")
            && listed.contains("    militia (named once, first by red in "),
        "{listed}"
    );
    let listed = s.red.json(&["actors", "list", &id]);
    let militia = &listed[0]["outside"][0];
    assert_eq!(militia["name"], "militia", "{listed}");
    assert_eq!(militia["named"], 1, "{listed}");
    assert_eq!(militia["first_named"]["sender"], "red", "{listed}");
    let first = militia["first_named"]["message_id"].as_str().unwrap();
    assert!(
        s.red
            .json(&["log", &id])
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["message_id"] == first),
        "{listed}"
    );
}

#[test]
fn an_alias_joins_actors_across_channels_in_this_store_only() {
    let s = Scene::new();
    let talks = s.open_channel();
    // A second channel, without red, whose commitments name red as an
    // outside actor.
    let out = s
        .mediator
        .json(&["channel", "create", "--title", "side", "--party", "blue"]);
    let side = out["channel_id"].as_str().unwrap().to_string();
    s.blue.run(&["sync"]);
    s.blue.accept(&side[..8]);
    for u in [&s.mediator, &s.blue] {
        u.run(&["sync"]);
    }
    s.blue.run(&[
        "assure",
        &side,
        "Blue will not strike Red first.",
        "--to",
        "outside:red",
        "--refrain-from",
        "ASSAULT",
        "--unless-attacked-by",
        "outside:red",
        "--attacker-allies",
        "no",
        "--attacker-proxies",
        "no",
        "--attacked-allies",
        "no",
        "--attacked-proxies",
        "no",
        "--until-revoked",
        "--authorized-by",
        "the cabinet",
    ]);
    let whatif = || {
        s.blue.run(&[
            "whatif",
            "--all-channels",
            "--actor",
            "red",
            "--action",
            "ASSAULT",
            "--target",
            "blue",
        ])
    };
    let before = whatif();
    assert!(
        before.contains(&format!(
            "note: outside:red in channel {} has the name of member red of channel {}: \
             treated as different actors; `backchannel actors same {} red` makes them one",
            &side[..8],
            &talks[..8],
            &side[..8]
        )),
        "{before}"
    );
    assert!(!before.contains("lapses: blue's assurance"), "{before}");
    let listed = s.blue.run(&["actors", "list"]);
    assert!(
        listed.contains("    red (named once, first by blue in ")
            && listed.contains(&format!("note: outside:red in channel {}", &side[..8])),
        "{listed}"
    );

    let logs = |u: &User| (log_len(u, &talks), log_len(u, &side));
    for u in [&s.mediator, &s.red, &s.blue] {
        u.run(&["sync"]);
    }
    let (mediator, red) = (logs(&s.mediator), log_len(&s.red, &talks));
    let said = s.blue.run(&["actors", "same", &side[..8], "red"]);
    assert!(
        said.contains(&format!(
            "declared: outside:red of channel {} is the member red of channel {}",
            &side[..8],
            &talks[..8]
        )) && said.contains("nothing was sent"),
        "{said}"
    );
    let after = whatif();
    assert!(!after.contains("treated as different actors"), "{after}");
    assert!(
        after.contains("lapses: blue's assurance")
            && after.contains(&format!("in channel {}", &side[..8])),
        "{after}"
    );
    let listed = s.blue.json(&["actors", "list", &side[..8]]);
    assert_eq!(listed[0]["same_as_member"][0], "red", "{listed}");
    let listed = s.blue.run(&["actors", "list", &side[..8]]);
    assert!(
        listed.contains("outside:red is the member red of another channel (in this store only)")
            && !listed.contains("note:"),
        "{listed}"
    );
    for u in [&s.mediator, &s.red, &s.blue] {
        u.run(&["sync"]);
    }
    assert_eq!(logs(&s.mediator), mediator, "the alias is never sent");
    assert_eq!(log_len(&s.red, &talks), red, "the alias is never sent");
    // An alias needs a member of that name elsewhere.
    let out = s.blue.try_run(&["actors", "same", &side[..8], "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("no other channel of yours has a member nobody"));
    let forgot = s.blue.run(&["actors", "forget", &side[..8], "red"]);
    assert!(forgot.contains("forgotten"), "{forgot}");
    assert!(whatif().contains("treated as different actors"));
}
