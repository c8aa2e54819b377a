//! "Provided Y does Z by T": the provisos of an assurance, and when a red
//! line is in force. A proviso is decided only by a `fulfilment` from the
//! assurance's issuer (confirming) or the mediator (finding); a member's
//! event report that Y did Z is a claim, and so is T passing undecided
//! (then a decision is awaited). Failed provisos, combined as the assurance
//! says (all must hold, or any one suffices), lapse it.

use serde::Serialize;

use super::fold::{Msg, Scheduled, State};
use super::structured::{Action, Actor, Assurance, Combine, Proviso, Structured};
use crate::Handle;

/// Whether a proviso was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisoState {
    /// Not decided.
    Open,
    /// Found or confirmed done.
    Fulfilled,
    /// Found or confirmed not done.
    Failed,
}

/// One proviso of an assurance on the board.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProvisoView {
    /// Its index in `provided` (0-based; shown from 1).
    pub index: usize,
    /// The proviso.
    pub proviso: Proviso,
    /// Decided or not.
    pub state: ProvisoState,
    /// The decision that counts (the mediator's latest finding, else the
    /// issuer's latest word), hex, and who made it.
    pub decision: Option<(String, String)>,
    /// Event reports that say it was done (claims), hex, with reporter.
    pub claims: Vec<(String, String)>,
    /// Its time passed undecided: a decision is awaited.
    pub overdue: bool,
}

/// Does `actor` doing `action` do what `p` asks (same type; one of its
/// modes if it names any; against its target if it names one)?
pub fn fulfils(p: &Proviso, actor: &Actor, action: &Action) -> bool {
    p.actor == *actor && p.action.covers(action)
}

/// The provisos of assurance `a` (sent as `m`) at `at`. `reported` are
/// the event reports (message, actor, action), canonical.
pub(crate) fn provisos(
    m: &Msg<'_>,
    a: &Assurance,
    msgs: &[Msg<'_>],
    reported: &[(&Msg<'_>, i64, Actor, Action)],
    canon: &dyn Fn(&Actor) -> Actor,
    mediator: Option<&Handle>,
    at: i64,
) -> Vec<ProvisoView> {
    let (id, sent) = (m.id.to_hex(), m.sent_at);
    let list = a.provided.as_deref().unwrap_or_default();
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            let p = Proviso {
                actor: canon(&p.actor),
                action: Action {
                    target: p.action.target.as_ref().map(canon),
                    ..p.action.clone()
                },
                by_ms: p.by_ms,
            };
            // The mediator's finding prevails over the issuer's word, the
            // latest of each counts, and the issuer cannot fail the other
            // side's proviso before its time (it would walk away from its
            // own assurance); the mediator may find it failed at any time.
            let decision = msgs
                .iter()
                .filter(|x| x.sent_at <= at)
                .filter_map(|x| match x.body {
                    Some(Structured::Fulfilment {
                        assurance,
                        proviso,
                        fulfilled,
                        ..
                    }) if *assurance == id && usize::try_from(*proviso) == Ok(i) => {
                        let finding = Some(&x.sender) == mediator;
                        let counts = *fulfilled || finding || x.sent_at >= p.by_ms;
                        counts.then_some(((finding, x.sent_at, x.id), x, *fulfilled))
                    }
                    _ => None,
                })
                .max_by_key(|(k, _, _)| *k);
            let claims = reported
                .iter()
                .filter(|(x, from, who, what)| {
                    x.sent_at <= at && (sent..p.by_ms).contains(from) && fulfils(&p, who, what)
                })
                .map(|(x, _, _, _)| (x.id.to_hex(), x.sender.to_string()))
                .collect();
            let state = match decision {
                Some((_, _, true)) => ProvisoState::Fulfilled,
                Some((_, _, false)) => ProvisoState::Failed,
                None => ProvisoState::Open,
            };
            ProvisoView {
                index: i,
                overdue: state == ProvisoState::Open && at >= p.by_ms,
                decision: decision.map(|(_, x, _)| (x.id.to_hex(), x.sender.to_string())),
                proviso: p,
                state,
                claims,
            }
        })
        .collect()
}

/// When the provisos, combined, failed: all must hold (the default), so
/// one failure lapses it; or any suffices, so only every one failing does.
pub(crate) fn failed_at(a: &Assurance, views: &[ProvisoView], msgs: &[Msg<'_>]) -> Option<i64> {
    let time = |v: &ProvisoView| {
        let (id, _) = v.decision.as_ref()?;
        msgs.iter()
            .find(|m| m.id.to_hex() == *id)
            .map(|m| m.sent_at)
    };
    let failed: Vec<i64> = views
        .iter()
        .filter(|v| v.state == ProvisoState::Failed)
        .filter_map(time)
        .collect();
    match a.provided_combine {
        Some(Combine::Any) if failed.len() == views.len() => failed.into_iter().max(),
        Some(Combine::Any) => None,
        _ => failed.into_iter().min(),
    }
}

/// A red line's state at `at`: not yet valid, expired, revoked or
/// suspended by its issuer (a `revoke` or `suspend` naming it), or in force.
pub(crate) fn red_line_state(
    m: &Msg<'_>,
    valid: (Option<i64>, Option<i64>),
    msgs: &[Msg<'_>],
    at: i64,
) -> (State, Option<i64>, Vec<Scheduled>) {
    let id = m.id.to_hex();
    let mine = |x: &&Msg<'_>| x.sender == m.sender && x.sent_at <= at;
    let mut revoked = None;
    let mut suspended = None;
    let mut schedule = Vec::new();
    for x in msgs.iter().filter(mine) {
        match x.body {
            Some(Structured::Revoke {
                red_line: Some(r),
                effective_ms,
                ..
            }) if *r == id => {
                let from = (*effective_ms).max(x.sent_at);
                if from <= at {
                    revoked = Some(revoked.map_or(from, |t: i64| t.min(from)));
                }
            }
            Some(Structured::Suspend {
                red_line: Some(r),
                from_ms,
                until_ms,
                ..
            }) if *r == id => {
                let from = (*from_ms).max(x.sent_at);
                if from <= at && until_ms.is_none_or(|u| at < u) {
                    suspended.get_or_insert(from);
                }
            }
            _ => continue,
        }
        schedule.extend(Scheduled::of(x, at));
    }
    let start = valid.0.unwrap_or(m.sent_at).max(m.sent_at);
    let expired = valid.1.filter(|u| *u <= at);
    let (state, since) = match (revoked, expired, suspended) {
        (Some(r), e, _) if e.is_none_or(|e| r <= e) => (State::Revoked, Some(r)),
        (_, Some(e), _) => (State::Expired, Some(e)),
        (_, _, Some(s)) => (State::Suspended, Some(s)),
        _ if start > at => (State::Proposed, Some(m.sent_at)),
        _ => (State::Active, Some(start)),
    };
    (state, since, schedule)
}
