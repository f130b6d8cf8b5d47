//! A campaign's runs as the dispatcher and reports see them: fan-out steps, progress, summaries, audiences.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Millis;
use super::contact::{Addresses, OptOuts};

/// Where a fan-out stands. Each `Store::fan_out_step` does one bounded step and says the next, so the
/// caller can wake the dispatcher between steps and sending starts before the fan-out ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanOutStep {
    Start,
    /// Parents through their children, continuing after this parent id.
    ParentsAfter(i64),
    /// People registered directly in the subtree: the audience's n-th such role.
    Direct(usize),
    Done,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Progress {
    pub total: i64,
    pub by_state: BTreeMap<String, i64>,
    /// channel -> state -> count (`none` for deliveries that never had a channel).
    pub by_channel: BTreeMap<String, BTreeMap<String, i64>>,
    pub by_reason: BTreeMap<String, i64>,
    /// channel -> reason code -> deliveries that ended failed on that channel.
    pub failed_by_channel: BTreeMap<String, BTreeMap<String, i64>>,
    /// channel -> reason code -> people who left that channel for their next one.
    pub fell_back: BTreeMap<String, BTreeMap<String, i64>>,
    /// Channels paused for the campaign because every send would fail the same way.
    pub paused: Vec<ChannelPause>,
}

/// `parents` parents spread over `classes` (class id, its school id) in turn, each registered at the
/// school with a phone `+8491` + 7 digits and one child in the class; with `siblings`, every tenth parent
/// has a second child seven classes further on.
#[derive(Clone, Debug)]
pub struct SyntheticAudience {
    pub classes: Vec<(i64, i64)>,
    pub parents: usize,
    pub siblings: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelPause {
    pub channel: String,
    pub reason: String,
    pub paused_at: Millis,
    /// Staff chose to move the waiting people on to their next channel.
    pub skipped: bool,
}

/// Counts by org (school), channel, state and reason, for reports.
#[derive(Clone, Debug, Serialize)]
pub struct SummaryRow {
    pub org_id: i64,
    pub org_name: String,
    pub channel: Option<String>,
    pub state: String,
    pub reason_code: Option<String>,
    pub count: i64,
}

/// A run to record for a due slot of a recurring campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotRun {
    /// Fan out and send this template.
    Pending { template_id: i64 },
    /// Recorded, not sent (missed beyond the grace period, holiday, not in term).
    Skipped { reason: String },
}

/// A run as listed: its slot, state and delivery counts by state.
#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub slot: String,
    pub slot_at: Option<Millis>,
    pub state: String,
    pub reason: Option<String>,
    pub template_id: Option<i64>,
    pub paused: bool,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
    pub deliveries: BTreeMap<String, i64>,
}

/// One person of an audience as the preview sees them (what the fan-out would queue).
#[derive(Clone, Debug)]
pub struct AudiencePerson {
    pub addresses: Addresses,
    pub opt_out: OptOuts,
    pub name: String,
    pub students: Vec<String>,
    pub classes: Vec<String>,
    /// The school or office they are reached through.
    pub org_id: i64,
}
