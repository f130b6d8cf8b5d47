//! Campaigns: what is sent (a template), to whom (an audience), on which channels in which order, and
//! the campaign's state machine. Also the message template's per-channel bodies.

use serde::{Deserialize, Serialize};

use super::Channel;
use super::contact::Role;
use super::schedule::{Recurrence, RecurrenceInput};
use super::validation::ValidationError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignState {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Scheduled,
    Running,
    Done,
    Cancelled,
}

impl CampaignState {
    pub const ALL: [CampaignState; 8] = [
        CampaignState::Draft,
        CampaignState::Submitted,
        CampaignState::Approved,
        CampaignState::Rejected,
        CampaignState::Scheduled,
        CampaignState::Running,
        CampaignState::Done,
        CampaignState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Submitted => "submitted",
            CampaignState::Approved => "approved",
            CampaignState::Rejected => "rejected",
            CampaignState::Scheduled => "scheduled",
            CampaignState::Running => "running",
            CampaignState::Done => "done",
            CampaignState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<CampaignState> {
        CampaignState::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The state as staff read it in messages.
    pub fn label_vi(self) -> &'static str {
        match self {
            CampaignState::Draft => "bản nháp",
            CampaignState::Submitted => "đã trình duyệt",
            CampaignState::Approved => "đã phê duyệt",
            CampaignState::Rejected => "bị từ chối",
            CampaignState::Scheduled => "đã lên lịch",
            CampaignState::Running => "đang gửi",
            CampaignState::Done => "đã gửi xong",
            CampaignState::Cancelled => "đã huỷ",
        }
    }

    /// The allowed moves. Only an approved campaign is scheduled or runs; an edit sends an approved
    /// (or scheduled, not yet fired) campaign back to draft.
    pub fn can_move_to(self, to: CampaignState) -> bool {
        use CampaignState::*;
        matches!(
            (self, to),
            (Draft, Submitted | Cancelled)
                | (Submitted, Approved | Rejected | Draft | Cancelled)
                | (Rejected, Draft | Submitted | Cancelled)
                | (Approved, Scheduled | Running | Draft | Cancelled)
                | (Scheduled, Running | Draft | Cancelled)
                | (Running, Done | Scheduled | Cancelled)
                // A late failure report re-queues someone on their next channel.
                | (Done, Running)
        )
    }

    /// Only an approved campaign may be started (scheduled or run).
    pub fn startable(self) -> bool {
        self == CampaignState::Approved
    }

    /// States in which the campaign's content and audience may still be edited (an edit after
    /// approval returns it to draft).
    pub fn editable(self) -> bool {
        use CampaignState::*;
        matches!(self, Draft | Submitted | Rejected | Approved | Scheduled)
    }
}

/// Who a campaign reaches: everyone with one of `roles` in the subtree of `org_id`, optionally only in
/// some classes of it. Parents are reached through their children.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    pub org_id: i64,
    pub roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_ids: Vec<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Campaign {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub template_id: i64,
    pub audience: Audience,
    pub channels: Vec<Channel>,
    /// Messenger message tag (`CONFIRMED_EVENT_UPDATE` when absent).
    pub messenger_tag: Option<String>,
    pub state: CampaignState,
    pub send_at: Option<i64>,
    /// Recurring campaigns: when slots fire. `None` = once (now or at `send_at`).
    pub schedule: Option<Recurrence>,
    /// Templates taken in turn, one per run; empty = `template_id` every time.
    pub series: Vec<i64>,
    /// Sent inside quiet hours too.
    pub urgent: bool,
    /// No slot will fire any more (end date passed, series used up).
    pub schedule_ended: bool,
    /// The last slot the scheduler considered (Unix ms).
    pub schedule_cursor: Option<i64>,
    /// Held by staff: no claim, no fan-out, no new slot until resumed.
    pub paused: bool,
    pub created_by: Option<i64>,
    pub submitted_by: Option<i64>,
    pub approval: Option<Approval>,
    pub rejection_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The approval a campaign carries: who approved it when, the frozen content they approved (JSON of
/// `approval::Snapshot`) and the hash every sending door checks the campaign against.
#[derive(Clone, Debug, Serialize)]
pub struct Approval {
    pub approved_by: i64,
    pub approved_at: i64,
    pub hash: String,
    pub snapshot: serde_json::Value,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NewCampaign {
    pub org_id: i64,
    pub name: String,
    /// May be left out when `series` is given (the series' first template).
    #[serde(default)]
    pub template_id: i64,
    pub audience: Audience,
    pub channels: Vec<Channel>,
    /// Messenger message tag, one of `providers::messenger::TAGS`.
    #[serde(default)]
    pub messenger_tag: Option<String>,
    /// Unix milliseconds; absent = when started.
    #[serde(default)]
    pub send_at: Option<i64>,
    /// A recurring schedule as staff write it; `validate` resolves it into `recurrence`.
    #[serde(default)]
    pub schedule: Option<RecurrenceInput>,
    #[serde(skip)]
    pub recurrence: Option<Recurrence>,
    #[serde(default)]
    pub series: Vec<i64>,
    #[serde(default)]
    pub urgent: bool,
}

impl NewCampaign {
    /// The editable part of a stored campaign, to apply a partial edit onto.
    pub fn from_campaign(c: &Campaign) -> NewCampaign {
        NewCampaign {
            org_id: c.org_id,
            name: c.name.clone(),
            template_id: c.template_id,
            audience: c.audience.clone(),
            channels: c.channels.clone(),
            messenger_tag: c.messenger_tag.clone(),
            send_at: c.send_at,
            schedule: None,
            recurrence: c.schedule.clone(),
            series: c.series.clone(),
            urgent: c.urgent,
        }
    }

    /// Every template the campaign sends: the series, or the one template.
    pub fn template_ids(&self) -> Vec<i64> {
        if self.series.is_empty() {
            vec![self.template_id]
        } else {
            self.series.clone()
        }
    }
}

impl NewCampaign {
    /// Checks what can be checked without the store (the org tree and templates are checked by callers).
    pub fn validate(mut self) -> Result<NewCampaign, ValidationError> {
        let mut errs = ValidationError::default();
        self.name = self.name.trim().to_string();
        if self.name.is_empty() {
            errs.push("name", "tên chiến dịch không được để trống");
        }
        if self.channels.is_empty() {
            errs.push("channels", "cần ít nhất một kênh gửi");
        }
        let mut seen = Vec::new();
        for c in &self.channels {
            if seen.contains(c) {
                errs.push("channels", format!("kênh \"{c}\" bị lặp lại"));
            }
            seen.push(*c);
        }
        if self.audience.roles.is_empty() {
            errs.push(
                "audience.roles",
                "cần chọn ít nhất một đối tượng nhận (phụ huynh, học sinh, cán bộ)",
            );
        }
        if let Some(tag) = &self.messenger_tag
            && !providers::messenger::TAGS.contains(&tag.as_str())
        {
            errs.push(
                "messenger_tag",
                format!(
                    "thẻ tin Messenger không hợp lệ: {tag} (dùng được: {})",
                    providers::messenger::TAGS.join(", ")
                ),
            );
        }
        if let Some(input) = self.schedule.take() {
            match input.resolve() {
                Ok(r) => self.recurrence = Some(r),
                Err(e) => errs.push("schedule", e),
            }
        }
        if !self.series.is_empty() {
            if self.recurrence.is_none() {
                errs.push(
                    "series",
                    "chuỗi mẫu tin chỉ dùng cho chiến dịch định kỳ (cần schedule)",
                );
            }
            if self.template_id == 0 {
                self.template_id = self.series[0];
            } else if self.template_id != self.series[0] {
                errs.push(
                    "template_id",
                    "khi có chuỗi mẫu tin, template_id là mẫu đầu tiên của chuỗi (có thể bỏ trống)",
                );
            }
            if self.series.len() > 400 {
                errs.push("series", "chuỗi tối đa 400 mẫu tin");
            }
        } else if self.template_id == 0 {
            errs.push("template_id", "cần chọn mẫu tin");
        }
        if self.recurrence.is_some() && self.send_at.is_some() {
            errs.push(
                "send_at",
                "chiến dịch định kỳ dùng schedule, không dùng send_at",
            );
        }
        self.audience.roles.sort_by_key(|r| r.as_str());
        self.audience.roles.dedup();
        errs.into_result(self)
    }
}

/// A message template: one body per channel. Bodies are minijinja templates over the variables listed
/// in `render::VARIABLES`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateBodies {
    #[serde(default)]
    pub email_subject: Option<String>,
    #[serde(default)]
    pub email_text: Option<String>,
    #[serde(default)]
    pub email_html: Option<String>,
    #[serde(default)]
    pub sms_text: Option<String>,
    #[serde(default)]
    pub zalo_text: Option<String>,
    #[serde(default)]
    pub messenger_text: Option<String>,
    /// ZNS: Zalo's pre-approved template and which Loa variable fills each of its parameters.
    #[serde(default)]
    pub zns: Option<ZnsTemplate>,
    /// Zalo OA: send `zalo_text` inside a transaction message (`transaction_education`) with this
    /// header, table and button, instead of as a consultation text.
    #[serde(default)]
    pub zalo_transaction: Option<ZaloTransactionTemplate>,
}

/// The parts of a Zalo OA transaction message besides its text; header and values are templates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZaloTransactionTemplate {
    pub header: String,
    #[serde(default)]
    pub table: Vec<TableRow>,
    #[serde(default)]
    pub button: Option<LinkButton>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRow {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkButton {
    pub title: String,
    pub url: String,
}

/// A ZNS template as a Loa template names it. Zalo approves the text; Loa only fills the parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZnsTemplate {
    pub template_id: String,
    /// Zalo parameter name -> Loa variable (one of `render::VARIABLES`).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
}

impl TemplateBodies {
    /// The body that must exist for a channel to be usable.
    pub fn has_channel(&self, c: Channel) -> bool {
        let present = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
        match c {
            Channel::Email => {
                present(&self.email_subject)
                    && (present(&self.email_text) || present(&self.email_html))
            }
            Channel::Sms => present(&self.sms_text),
            Channel::Zalo => present(&self.zalo_text),
            Channel::Messenger => present(&self.messenger_text),
            Channel::ZaloZns => self
                .zns
                .as_ref()
                .is_some_and(|z| !z.template_id.trim().is_empty()),
        }
    }

    /// Every (field name, template source) pair, for compiling and validation.
    pub fn fields(&self) -> Vec<(String, &str)> {
        let mut v: Vec<(String, &str)> = [
            ("email_subject", &self.email_subject),
            ("email_text", &self.email_text),
            ("email_html", &self.email_html),
            ("sms_text", &self.sms_text),
            ("zalo_text", &self.zalo_text),
            ("messenger_text", &self.messenger_text),
        ]
        .into_iter()
        .filter_map(|(n, s)| s.as_deref().map(|s| (n.to_string(), s)))
        .collect();
        if let Some(t) = &self.zalo_transaction {
            v.push(("zalo_transaction.header".into(), &t.header));
            for (i, row) in t.table.iter().enumerate() {
                v.push((format!("zalo_transaction.table[{i}].value"), &row.value));
            }
        }
        v
    }
}

/// A stored template. Templates never change once created (a change is a new template), so a
/// template id names one exact version of the text.
#[derive(Clone, Debug, Serialize)]
pub struct Template {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    #[serde(flatten)]
    pub bodies: TemplateBodies,
    pub created_by: Option<i64>,
    /// Set once the template is in the shared library.
    pub published: Option<Publication>,
    pub created_at: i64,
}

/// A template published to the shared library: every node below its own may use it unedited.
#[derive(Clone, Debug, Serialize)]
pub struct Publication {
    pub published_by: i64,
    pub published_at: i64,
    pub topics: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct NewTemplate {
    pub org_id: i64,
    pub name: String,
    #[serde(flatten)]
    pub bodies: TemplateBodies,
}

#[cfg(test)]
mod tests {
    use super::CampaignState::*;
    use super::*;

    #[test]
    fn campaign_moves() {
        assert!(!Draft.can_move_to(Running), "nothing runs unapproved");
        assert!(!Submitted.can_move_to(Running) && !Submitted.can_move_to(Scheduled));
        assert!(Approved.can_move_to(Running) && Approved.can_move_to(Draft));
        assert!(Running.can_move_to(Done));
        assert!(Running.can_move_to(Cancelled));
        assert!(!Cancelled.can_move_to(Running));
        assert!(
            !Rejected.can_move_to(Running),
            "a rejected campaign never sends"
        );
        assert!(!Draft.can_move_to(Done));
        assert!(
            !Draft.startable()
                && Approved.startable()
                && !Done.startable()
                && !Running.startable()
                && !Rejected.startable()
        );
    }

    fn new_campaign(channels: Vec<Channel>) -> NewCampaign {
        NewCampaign {
            org_id: 1,
            name: " Tuần 1 ".into(),
            template_id: 1,
            audience: Audience {
                org_id: 1,
                roles: vec![Role::Parent, Role::Parent],
                class_ids: vec![],
            },
            channels,
            messenger_tag: None,
            send_at: None,
            schedule: None,
            recurrence: None,
            series: vec![],
            urgent: false,
        }
    }

    #[test]
    fn campaign_validation() {
        let c = new_campaign(vec![Channel::Zalo, Channel::Sms])
            .validate()
            .unwrap();
        assert_eq!(c.name, "Tuần 1");
        assert_eq!(c.audience.roles, vec![Role::Parent]);
        let e = new_campaign(vec![Channel::Sms, Channel::Sms])
            .validate()
            .unwrap_err();
        assert_eq!(e.errors[0].field, "channels");
        assert!(new_campaign(vec![]).validate().is_err());
    }

    #[test]
    fn template_channels() {
        let b = TemplateBodies {
            email_subject: Some("S".into()),
            email_text: Some("T".into()),
            sms_text: Some(" ".into()),
            ..Default::default()
        };
        assert!(b.has_channel(Channel::Email));
        assert!(!b.has_channel(Channel::Sms));
    }
}
