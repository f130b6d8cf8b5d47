//! A provider's webhook call as stored before it is processed, and what processing made of it.

/// A stored webhook event waiting to be processed.
#[derive(Clone, Debug)]
pub struct WebhookEvent {
    pub id: i64,
    pub provider: String,
    pub body: String,
}

/// What processing a webhook event did, stored with it and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    /// It named no message or person Loa knows (or nothing changed: a replay, a late receipt).
    Unknown,
    /// An event Loa does not use.
    Ignored,
    /// The body could not be read.
    Malformed,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Unknown => "unknown",
            EventOutcome::Ignored => "ignored",
            EventOutcome::Malformed => "malformed",
        }
    }
}
