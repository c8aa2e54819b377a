//! Commitments: the typed payloads (assurances, red lines, breach handling,
//! events), their lifecycle folded from the transcript, and what-if
//! cascades. All pure: the evaluation time is an argument.

pub mod actors;
pub mod authority;
pub mod canonical;
pub mod fold;
pub mod graph;
pub mod plover;
pub mod provisos;
pub mod readings;
pub mod structured;
pub mod terms;
pub mod whatif;

pub use canonical::StructuredBody;
pub use structured::{Action, Actor, Assurance, ConfirmedOffer, Structured};
