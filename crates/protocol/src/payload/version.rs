//! Body versions: the first header byte says by which rules the body is
//! written. The header layout after that byte is the same in every version,
//! so a message of a version a client cannot read still verifies and keeps
//! its place in its sender's chain.

use std::fmt;

/// A body version (the first byte of every header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BodyVersion(pub u8);

impl BodyVersion {
    /// The first rules: structured bodies are any JSON of the schema. Read
    /// (old transcripts, channels opened before protocol v1) and written
    /// only where a member has announced nothing newer.
    pub const V1: BodyVersion = BodyVersion(1);
    /// Protocol v1's rules: structured bodies in canonical JSON (enforced),
    /// and acceptances and proposals announce the versions their sender reads.
    pub const V2: BodyVersion = BodyVersion(2);
    /// Version 2's encoding, plus consent that can be withdrawn: a party of
    /// the open epoch may propose an amendment (its own answer counts as an
    /// acceptance), and a member's amendment that only removes itself (it
    /// leaves) takes effect when received, with no answer awaited. Only
    /// sent in epochs whose every member announced it.
    pub const V3: BodyVersion = BodyVersion(3);
    /// Version 3, plus the richer commitments of docs/commitments.md: red
    /// lines with readings, several targets, a validity window and a place,
    /// revoked or suspended; provisos on the other side's act and their
    /// fulfilment; combined conditions; guarantees; disputed relations.
    /// A version 3 client would keep firing a revoked red line, so these
    /// are only sent in epochs whose every member announced 4, and refused
    /// in a body of an earlier version.
    pub const V4: BodyVersion = BodyVersion(4);
    /// What this implementation reads, ascending.
    pub const SUPPORTED: [BodyVersion; 4] = [
        BodyVersion::V1,
        BodyVersion::V2,
        BodyVersion::V3,
        BodyVersion::V4,
    ];
    /// What a proposal is written in when nobody has announced anything yet
    /// (a creation): every protocol-v1 client reads it.
    pub const BASELINE: BodyVersion = BodyVersion::V2;

    /// Whether this implementation reads it.
    pub fn is_supported(self) -> bool {
        BodyVersion::SUPPORTED.contains(&self)
    }

    /// The highest version every member reads, given what each announced.
    /// `None` if they share none (cannot happen between protocol-v1 clients:
    /// every one reads version 1).
    ///
    /// ```
    /// use backchannel_protocol::payload::BodyVersion;
    /// let new = BodyVersion::SUPPORTED.to_vec();
    /// let old = vec![BodyVersion::V1];
    /// assert_eq!(BodyVersion::common([&new[..], &new[..]]), Some(BodyVersion::V4));
    /// assert_eq!(BodyVersion::common([&new[..], &old[..]]), Some(BodyVersion::V1));
    /// ```
    pub fn common<'a>(announced: impl IntoIterator<Item = &'a [BodyVersion]>) -> Option<Self> {
        let mut shared: Vec<BodyVersion> = BodyVersion::SUPPORTED.to_vec();
        for list in announced {
            shared.retain(|v| list.contains(v));
        }
        shared.into_iter().max()
    }
}

impl fmt::Display for BodyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
