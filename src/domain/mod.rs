//! Plain types and rules of Loa, without I/O: the org tree, contacts, campaigns, deliveries and the
//! state machines that say which moves are allowed.

pub mod access;
pub mod campaign;
pub mod channel_choice;
pub mod contact;
pub mod delivery;
pub mod org;
pub mod phone;
pub mod roster;
pub mod run;
pub mod schedule;
pub mod session;
pub mod text;
pub mod validation;
pub mod webhook_event;

pub use providers::Channel;

/// Milliseconds since the Unix epoch: the one time unit stored in the database.
pub type Millis = i64;
