//! Typed alerts: evidence of tampering or loss, and notices (things honest
//! delays also cause). The advice shown to people lives in the CLI; here
//! are only the kind, what was seen and where.

use std::fmt;

use crate::ids::{ChannelId, EpochNumber, Handle, MessageId, Seq, Timestamp};

/// Every kind of alert or notice a member can raise. The `code` of each is
/// stable: stores, the API and scripts rely on it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    /// A member has not receipted a message by the channel's deadline.
    AckOverdue,
    /// The relay served a key that cannot be right.
    BadKey,
    /// A reply was written before its author saw later messages (notice).
    CrossedMessages,
    /// An escrow release carried an offer sealed for another exchange.
    EscrowForeignOffer,
    /// An escrow release came after the deadline.
    EscrowLateRelease,
    /// An escrow release did not carry every offer.
    EscrowPartialRelease,
    /// A participant confirmed receiving another offer of this member's
    /// than the one it last sealed (an older, replaced one).
    EscrowReplacedOffer,
    /// Two versions of one position were reported.
    Fork,
    /// A ciphertext its claimed sender never sent.
    Forged,
    /// Positions of a sender's chain are missing.
    Gap,
    /// A pinned identity key changed, or a one-time key was substituted.
    KeyChanged,
    /// A withheld message arrived too late to decrypt.
    LateUndecryptable,
    /// The relay routes a channel to someone nobody agreed to.
    MembershipMismatch,
    /// A message was altered in transit.
    Modified,
    /// A message arrived after later ones.
    Reorder,
    /// A message was delivered again or in the wrong place.
    Replay,
    /// The relay served older state than this member had.
    Rollback,
    /// This member's store is older than what the relay or the other
    /// members show of it (restored from a copy), or the relay lies.
    StaleStore,
    /// A member sent a typed act it may not make (a party's finding, a
    /// lapse confirmation of another's assurance): every board ignores it.
    UnauthorizedAct,
    /// A first message names a one-time key this store does not hold, as
    /// after a restore from a backup older than the key (notice).
    UnknownOneTimeKey,
    /// An authentic body of a kind or version this client cannot read
    /// (notice: a newer client sent it).
    UnsupportedBody,
    /// A stub arrived where the policy entitles this member to the full copy.
    Withheld,
}

impl AlertKind {
    /// Every kind, for listings and round-trip tests.
    pub const ALL: [AlertKind; 22] = [
        AlertKind::AckOverdue,
        AlertKind::BadKey,
        AlertKind::CrossedMessages,
        AlertKind::EscrowForeignOffer,
        AlertKind::EscrowLateRelease,
        AlertKind::EscrowPartialRelease,
        AlertKind::EscrowReplacedOffer,
        AlertKind::Fork,
        AlertKind::Forged,
        AlertKind::Gap,
        AlertKind::KeyChanged,
        AlertKind::LateUndecryptable,
        AlertKind::MembershipMismatch,
        AlertKind::Modified,
        AlertKind::Reorder,
        AlertKind::Replay,
        AlertKind::Rollback,
        AlertKind::StaleStore,
        AlertKind::UnauthorizedAct,
        AlertKind::UnknownOneTimeKey,
        AlertKind::UnsupportedBody,
        AlertKind::Withheld,
    ];

    /// The stable code (`gap`, `ack_overdue`...).
    pub fn code(self) -> &'static str {
        match self {
            AlertKind::AckOverdue => "ack_overdue",
            AlertKind::BadKey => "bad_key",
            AlertKind::CrossedMessages => "crossed_messages",
            AlertKind::EscrowForeignOffer => "escrow_foreign_offer",
            AlertKind::EscrowLateRelease => "escrow_late_release",
            AlertKind::EscrowPartialRelease => "escrow_partial_release",
            AlertKind::EscrowReplacedOffer => "escrow_replaced_offer",
            AlertKind::Fork => "fork",
            AlertKind::Forged => "forged",
            AlertKind::Gap => "gap",
            AlertKind::KeyChanged => "key_changed",
            AlertKind::LateUndecryptable => "late_undecryptable",
            AlertKind::MembershipMismatch => "membership_mismatch",
            AlertKind::Modified => "modified",
            AlertKind::Reorder => "reorder",
            AlertKind::Replay => "replay",
            AlertKind::UnauthorizedAct => "unauthorized_act",
            AlertKind::UnknownOneTimeKey => "unknown_one_time_key",
            AlertKind::Rollback => "rollback",
            AlertKind::StaleStore => "stale_store",
            AlertKind::UnsupportedBody => "unsupported_body",
            AlertKind::Withheld => "withheld",
        }
    }

    /// The kind with this code.
    pub fn from_code(code: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// A notice is not evidence: honest delays or a newer client cause it.
    pub fn is_notice(self) -> bool {
        matches!(
            self,
            AlertKind::CrossedMessages | AlertKind::UnknownOneTimeKey | AlertKind::UnsupportedBody
        )
    }

    /// While open, sending in the channels concerned is refused until the
    /// user acts (re-verifies a key, or takes the way back of a rekey).
    pub fn blocks_sending(self) -> bool {
        matches!(
            self,
            AlertKind::KeyChanged | AlertKind::MembershipMismatch | AlertKind::StaleStore
        )
    }
}

/// As its code.
impl serde::Serialize for AlertKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for AlertKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        AlertKind::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown alert kind {code}")))
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An alert's number in this member's store (stable across restarts).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct AlertId(pub u64);

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why an authentic body was kept unread (`unsupported_body`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unreadable {
    /// A body version this client does not read.
    UnknownVersion,
    /// A body kind this client does not know.
    UnknownKind,
    /// A body in another encoding than its one canonical form.
    NonCanonical,
    /// A body of a known kind and version that does not decode.
    Malformed,
}

impl Unreadable {
    /// Classifies why a payload did not decode.
    pub fn of(e: &crate::DecodeError) -> Unreadable {
        match e {
            crate::DecodeError::Version { .. } => Unreadable::UnknownVersion,
            crate::DecodeError::UnknownTag {
                field: "body_kind", ..
            } => Unreadable::UnknownKind,
            crate::DecodeError::NonCanonical { .. } => Unreadable::NonCanonical,
            _ => Unreadable::Malformed,
        }
    }

    /// Its stable code.
    pub fn code(self) -> &'static str {
        match self {
            Unreadable::UnknownVersion => "unknown_version",
            Unreadable::UnknownKind => "unknown_kind",
            Unreadable::NonCanonical => "non_canonical",
            Unreadable::Malformed => "malformed",
        }
    }
}

/// One alert or notice with everything it is about.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// Its number here.
    pub id: AlertId,
    /// What kind.
    pub kind: AlertKind,
    /// The channel, when one is concerned.
    pub channel: Option<ChannelId>,
    /// The principal whose message or key it concerns (the sender).
    pub principal: Option<Handle>,
    /// The member concerned, for `ack_overdue` and `membership_mismatch`.
    pub member: Option<Handle>,
    /// The epoch of `positions`.
    pub epoch: Option<EpochNumber>,
    /// Positions in the principal's chain.
    pub positions: Vec<Seq>,
    /// Message ids involved.
    pub message_ids: Vec<MessageId>,
    /// What was seen, in plain words.
    pub detail: String,
    /// For `unsupported_body`: why the body was not read.
    #[serde(default)]
    pub reason: Option<Unreadable>,
    /// When it was raised (this member's clock).
    pub raised_at: Timestamp,
    /// Set when the evidence was answered (a late receipt, a gap filled).
    pub cleared: Option<String>,
    /// Set when the user dismissed it after reading.
    pub dismissed: bool,
}

impl Alert {
    fn base(kind: AlertKind, at: Timestamp, detail: String) -> Alert {
        Alert {
            id: AlertId::default(),
            kind,
            channel: None,
            principal: None,
            member: None,
            epoch: None,
            positions: Vec::new(),
            message_ids: Vec::new(),
            detail,
            reason: None,
            raised_at: at,
            cleared: None,
            dismissed: false,
        }
    }

    /// Open: neither dismissed nor cleared.
    pub fn is_open(&self) -> bool {
        !self.dismissed && self.cleared.is_none()
    }

    fn at(mut self, channel: ChannelId, principal: &Handle) -> Alert {
        self.channel = Some(channel);
        self.principal = Some(principal.clone());
        self
    }

    fn placed(mut self, epoch: EpochNumber, positions: Vec<Seq>) -> Alert {
        self.epoch = Some(epoch);
        self.positions = positions;
        self
    }

    fn ids(mut self, ids: Vec<MessageId>) -> Alert {
        self.message_ids = ids;
        self
    }

    /// Positions of `sender` are missing: `next` arrived beyond them.
    pub fn gap(
        at: Timestamp,
        channel: ChannelId,
        sender: &Handle,
        epoch: EpochNumber,
        missing: Vec<Seq>,
        next: MessageId,
    ) -> Alert {
        let detail = format!(
            "{sender}'s message {next} arrived, but not {}: withheld, dropped or late",
            describe_positions(&missing)
        );
        Alert::base(AlertKind::Gap, at, detail)
            .at(channel, sender)
            .placed(epoch, missing)
            .ids(vec![next])
    }

    /// `sender`'s message at `seq` arrived after later ones.
    pub fn reorder(
        at: Timestamp,
        channel: ChannelId,
        sender: &Handle,
        epoch: EpochNumber,
        seq: Seq,
        message: MessageId,
    ) -> Alert {
        let detail = format!(
            "{sender}'s message #{} arrived after later ones (the gap reported for it is closed)",
            seq.0
        );
        Alert::base(AlertKind::Reorder, at, detail)
            .at(channel, sender)
            .placed(epoch, vec![seq])
            .ids(vec![message])
    }

    /// Two versions of `member`'s position `seq` were reported.
    pub fn fork(
        at: Timestamp,
        channel: ChannelId,
        member: &Handle,
        epoch: EpochNumber,
        seq: Seq,
        detail: String,
    ) -> Alert {
        Alert::base(AlertKind::Fork, at, detail)
            .at(channel, member)
            .placed(epoch, vec![seq])
    }

    /// A message was altered in transit: `failed` did not decrypt and the
    /// sender's `next` confirms a message existed at `seq`.
    pub fn modified(
        at: Timestamp,
        channel: ChannelId,
        sender: &Handle,
        epoch: EpochNumber,
        seq: Seq,
        failed: MessageId,
        next: MessageId,
    ) -> Alert {
        let detail = format!("{sender}'s message #{} failed to decrypt; its next message confirms a message existed there: it was altered in transit", seq.0);
        Alert::base(AlertKind::Modified, at, detail)
            .at(channel, sender)
            .placed(epoch, vec![seq])
            .ids(vec![failed, next])
    }

    /// A ciphertext `sender` never sent (`why` says how it shows).
    pub fn forged(
        at: Timestamp,
        channel: Option<ChannelId>,
        sender: &Handle,
        place: Option<(EpochNumber, Seq)>,
        message: MessageId,
        why: String,
    ) -> Alert {
        let mut a = Alert::base(AlertKind::Forged, at, why).ids(vec![message]);
        a.channel = channel;
        a.principal = Some(sender.clone());
        if let Some((e, s)) = place {
            a = a.placed(e, vec![s]);
        }
        a
    }

    /// A withheld message of `sender` at `seq` arrived too late to decrypt.
    pub fn late_undecryptable(
        at: Timestamp,
        channel: ChannelId,
        sender: &Handle,
        epoch: EpochNumber,
        seq: Seq,
        message: MessageId,
        why: &str,
    ) -> Alert {
        let detail = format!(
            "{sender}'s message #{}, reported missing, arrived too late to decrypt ({why})",
            seq.0
        );
        Alert::base(AlertKind::LateUndecryptable, at, detail)
            .at(channel, sender)
            .placed(epoch, vec![seq])
            .ids(vec![message])
    }

    /// A first message under a one-time key this store lacks (a notice:
    /// a restore from an older backup explains it; a relay making it up
    /// gains nothing, since the position it claims still counts as missing
    /// until the sender's genuine message fills it).
    pub fn unknown_one_time_key(
        at: Timestamp,
        channel: ChannelId,
        sender: &Handle,
        message: MessageId,
    ) -> Alert {
        let detail = format!(
            "{sender} opened a session on a one-time key this store does not hold (published after the backup this store was restored from, or never ours): its first message cannot be read here"
        );
        Alert::base(AlertKind::UnknownOneTimeKey, at, detail)
            .at(channel, sender)
            .ids(vec![message])
    }

    /// Something processed before came again (`why`: how it differs).
    pub fn replay(
        at: Timestamp,
        channel: ChannelId,
        sender: &Handle,
        place: Option<(EpochNumber, Seq)>,
        ids: Vec<MessageId>,
        why: String,
    ) -> Alert {
        let mut a = Alert::base(AlertKind::Replay, at, why)
            .at(channel, sender)
            .ids(ids);
        if let Some((e, s)) = place {
            a = a.placed(e, vec![s]);
        }
        a
    }

    /// `member` has not receipted `overdue` within `deadline_s`.
    pub fn ack_overdue(
        at: Timestamp,
        channel: ChannelId,
        member: &Handle,
        overdue: Vec<MessageId>,
        deadline_s: u32,
    ) -> Alert {
        let mut a = Alert::base(
            AlertKind::AckOverdue,
            at,
            ack_overdue_detail(member, overdue.len(), deadline_s),
        )
        .at(channel, member)
        .ids(overdue);
        a.member = Some(member.clone());
        a
    }

    /// The relay routes `channel` to `extra`, whom nobody agreed to.
    pub fn membership_mismatch(at: Timestamp, channel: ChannelId, extra: &Handle) -> Alert {
        let detail = format!("the relay routes channel {channel} to {extra}, whom no accepted proposal names; nothing is encrypted to it");
        let mut a = Alert::base(AlertKind::MembershipMismatch, at, detail).at(channel, extra);
        a.member = Some(extra.clone());
        a
    }

    /// `peer`'s key changed (`why` says how); sending to it is blocked.
    pub fn key_changed(
        at: Timestamp,
        channel: Option<ChannelId>,
        peer: &Handle,
        why: String,
    ) -> Alert {
        let mut a = Alert::base(AlertKind::KeyChanged, at, why);
        a.channel = channel;
        a.principal = Some(peer.clone());
        a
    }

    /// The relay served a bad key for `peer`.
    pub fn bad_key(at: Timestamp, channel: Option<ChannelId>, peer: &Handle, why: String) -> Alert {
        let mut a = Alert::base(AlertKind::BadKey, at, why);
        a.channel = channel;
        a.principal = Some(peer.clone());
        a
    }

    /// The relay served older state than this member had.
    pub fn rollback(
        at: Timestamp,
        channel: Option<ChannelId>,
        principal: &Handle,
        ids: Vec<MessageId>,
        why: String,
    ) -> Alert {
        let mut a = Alert::base(AlertKind::Rollback, at, why).ids(ids);
        a.channel = channel;
        a.principal = Some(principal.clone());
        a
    }

    /// A reply crossed later messages (a notice).
    pub fn crossed_messages(
        at: Timestamp,
        channel: ChannelId,
        sender: &Handle,
        ids: Vec<MessageId>,
        detail: String,
    ) -> Alert {
        Alert::base(AlertKind::CrossedMessages, at, detail)
            .at(channel, sender)
            .ids(ids)
    }

    /// An authentic body this client cannot read (a notice).
    pub fn unsupported_body(
        at: Timestamp,
        channel: ChannelId,
        sender: &Handle,
        place: Option<(EpochNumber, Seq)>,
        message: MessageId,
        what: String,
        reason: Unreadable,
    ) -> Alert {
        let advice = match reason {
            Unreadable::UnknownVersion | Unreadable::UnknownKind => "update Backchannel to read it",
            Unreadable::NonCanonical | Unreadable::Malformed => {
                "the sender's client wrote it wrongly; ask its author to fix it"
            }
        };
        let detail = format!("{sender} sent {what}, which this client cannot read ({}): the message is authentic and kept in its place; {advice}", reason.code());
        let mut a = Alert::base(AlertKind::UnsupportedBody, at, detail)
            .at(channel, sender)
            .ids(vec![message]);
        a.reason = Some(reason);
        if let Some((e, s)) = place {
            a = a.placed(e, vec![s]);
        }
        a
    }

    /// `sender` gave this member a stub where the policy entitles it to the
    /// full copy.
    pub fn withheld(
        at: Timestamp,
        channel: ChannelId,
        sender: &Handle,
        epoch: EpochNumber,
        seq: Seq,
        message: MessageId,
    ) -> Alert {
        let detail = format!("{sender}'s message #{} came as a stub (digest only), but the channel's policy entitles you to read it: its content was withheld from you", seq.0);
        Alert::base(AlertKind::Withheld, at, detail)
            .at(channel, sender)
            .placed(epoch, vec![seq])
            .ids(vec![message])
    }

    /// This member's store is behind what the relay or another member shows
    /// of it (`what` says which).
    pub fn stale_store(
        at: Timestamp,
        channel: Option<ChannelId>,
        me: &Handle,
        ids: Vec<MessageId>,
        what: String,
    ) -> Alert {
        let detail = format!("your store is older than the relay claims, or the relay is lying: {what}. Nothing queued was sent; this store will not send on its old sessions or positions again. Ask the mediator for a rekey (`channel amend --rekey`)");
        let mut a = Alert::base(AlertKind::StaleStore, at, detail).ids(ids);
        a.channel = channel;
        a.principal = Some(me.clone());
        a
    }

    /// `sender` made an act its role or the rules do not allow (`refusal`
    /// says which): every board ignores it.
    pub fn unauthorized_act(
        at: Timestamp,
        channel: ChannelId,
        sender: &Handle,
        place: (EpochNumber, Seq),
        message: MessageId,
        refusal: &str,
    ) -> Alert {
        let detail = format!("{refusal}. Every board ignores this act: it changes nothing");
        Alert::base(AlertKind::UnauthorizedAct, at, detail)
            .at(channel, sender)
            .placed(place.0, vec![place.1])
            .ids(vec![message])
    }

    /// An escrow alert of `kind` about exchange `detail` names.
    pub fn escrow(kind: AlertKind, at: Timestamp, principal: &Handle, detail: String) -> Alert {
        let mut a = Alert::base(kind, at, detail);
        a.principal = Some(principal.clone());
        a
    }
}

pub(crate) fn ack_overdue_detail(member: &Handle, n: usize, deadline_s: u32) -> String {
    format!(
        "{member} has not confirmed receipt of {n} message(s) within {} of when you learnt of them",
        crate::duration_words(u64::from(deadline_s))
    )
}

/// `#3`, `#3 and #4`, `#3 to #7`.
pub fn describe_positions(p: &[Seq]) -> String {
    match p {
        [one] => format!("#{}", one.0),
        [a, b] => format!("#{} and #{}", a.0, b.0),
        [first, .., last] if (last.0 - first.0) as usize + 1 == p.len() => {
            format!("#{} to #{}", first.0, last.0)
        }
        _ => p
            .iter()
            .map(|x| format!("#{}", x.0))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut codes: Vec<_> = AlertKind::ALL.iter().map(|k| k.code()).collect();
        for k in AlertKind::ALL {
            assert_eq!(AlertKind::from_code(k.code()), Some(k));
        }
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), AlertKind::ALL.len());
    }

    #[test]
    fn only_key_membership_and_stale_store_block() {
        let blocking: Vec<_> = AlertKind::ALL
            .into_iter()
            .filter(|k| k.blocks_sending())
            .collect();
        assert_eq!(
            blocking,
            [
                AlertKind::KeyChanged,
                AlertKind::MembershipMismatch,
                AlertKind::StaleStore
            ]
        );
        assert!(AlertKind::UnsupportedBody.is_notice());
        assert!(!AlertKind::Withheld.is_notice());
    }

    #[test]
    fn positions_read_well() {
        assert_eq!(describe_positions(&[Seq(3)]), "#3");
        assert_eq!(describe_positions(&[Seq(3), Seq(4), Seq(5)]), "#3 to #5");
        assert_eq!(describe_positions(&[Seq(3), Seq(5), Seq(9)]), "#3, #5, #9");
    }
}
