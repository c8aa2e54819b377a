//! What a person should do about each kind of alert, in plain words: the
//! CLI and the local web interface show the same advice.

use backchannel_protocol::member::AlertKind;

/// What a person should do about each kind of alert.
pub fn advice(kind: AlertKind) -> &'static str {
    use AlertKind as K;
    match kind {
        K::AckOverdue => "the member has not confirmed receipt in time: reach it by another path, and do not read silence as assent",
        K::BadKey => "the relay served a key that cannot be right: do not use this relay for this principal until checked",
        K::EscrowReplacedOffer => "a participant received an offer of yours that you had replaced (or never sealed): the intermediary released the wrong one; treat the exchange as failed and tell the others",
        K::EscrowForeignOffer => "an offer sealed for another exchange was released in this one: the intermediary moved it; treat the exchange as failed",
        K::EscrowLateRelease => "the release came after the deadline (or an offer was sealed after it): the intermediary was not fair; treat the exchange as failed",
        K::EscrowPartialRelease => "not every offer was released together: the intermediary was not fair; treat the exchange as failed",
        K::CrossedMessages => "not evidence: the reply was written before its author saw your later messages; read it in that light",
        K::Fork => "two members hold different versions of one message: compare the transcripts with the mediator and the other members",
        K::Forged => "a ciphertext its claimed sender never sent: the relay (or someone in front of it) injected it; nothing was shown",
        K::Gap => "messages were withheld or lost: ask the sender to resend, and tell the mediator",
        K::KeyChanged => "sending to this principal is blocked: compare the safety number again in person, then re-verify with `backchannel trust verify`",
        K::LateUndecryptable => "a withheld message arrived too late to decrypt: ask the sender to resend it",
        K::MembershipMismatch => "the relay lists a member nobody agreed to: sending in this channel is blocked; tell the mediator",
        K::Modified => "a message was altered in transit and could not be read: ask the sender to resend it",
        K::Reorder => "a message arrived after later ones: it is shown in its place; the relay delayed it",
        K::UnauthorizedAct => "a member sent an act its role does not allow (a party's finding, a lapse confirmation of another's assurance): every board ignores it, so nothing changed; tell the mediator, and read it as that member's claim, never as a ruling",
        K::UnknownOneTimeKey => "a peer's first message was written to a one-time key this store does not hold (after a restore from an older backup, keys published after it are lost): ask that peer to send again; if this store was never restored, the relay may be feeding you made-up messages, and a missing position will still show as a gap",
        K::Replay => "the relay delivered an old message again or in the wrong place: it was not shown twice",
        K::Rollback => "the relay served older state than you had: it may have been restored from backup, or is lying",
        K::StaleStore => "sending is stopped: your store looks older than what you sent (restored from a copy?), or the relay lies. Keep this store; ask the mediator for a rekey (`backchannel channel amend CHANNEL --rekey`) and accept it",
        K::UnsupportedBody => "not evidence: an authentic message of a newer kind; update Backchannel to read it",
        K::Withheld => "the sender gave you only a digest of a message you may read: ask the sender and the mediator for the full text",
        _ => "read the detail, then dismiss it with `backchannel verify --dismiss ID`",
    }
}
