//! Delivery statistics per school (or office) for one or more campaigns: targeted, delivered, failed,
//! skipped, by channel, with reasons. Rolls the store's grouped counts up into one row per org.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::delivery::{DeliveryState, Reason};
use crate::store::{Progress, SummaryRow};

/// One channel of a campaign, as a funnel: `sent` counts every message the provider accepted
/// (whatever happened next), `delivered` those with a delivery or read receipt, `read` those read.
/// `failed` counts people for whom this channel failed, whether they then moved on to their next
/// channel or not; `reasons` says why, by reason code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChannelSummary {
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    /// Still queued, sending or retrying on this channel.
    pub pending: i64,
    pub reasons: BTreeMap<String, i64>,
    /// Why the channel is paused for the campaign, if it is.
    pub paused: Option<String>,
}

pub fn by_channel(p: &Progress) -> BTreeMap<String, ChannelSummary> {
    let mut out: BTreeMap<String, ChannelSummary> = BTreeMap::new();
    for (channel, states) in &p.by_channel {
        if channel == "none" {
            continue;
        }
        let c = out.entry(channel.clone()).or_default();
        for (state, n) in states {
            match DeliveryState::parse(state) {
                Some(DeliveryState::Sent) => c.sent += n,
                Some(DeliveryState::Delivered) => {
                    c.sent += n;
                    c.delivered += n;
                }
                Some(DeliveryState::Read) => {
                    c.sent += n;
                    c.delivered += n;
                    c.read += n;
                }
                Some(DeliveryState::Failed) => c.failed += n,
                Some(DeliveryState::Queued | DeliveryState::Sending | DeliveryState::Retrying) => {
                    c.pending += n
                }
                _ => {}
            }
        }
    }
    for (channel, reasons) in p.failed_by_channel.iter().chain(&p.fell_back) {
        let c = out.entry(channel.clone()).or_default();
        for (code, n) in reasons {
            *c.reasons.entry(code.clone()).or_default() += n;
        }
    }
    for (channel, reasons) in &p.fell_back {
        out.entry(channel.clone()).or_default().failed += reasons.values().sum::<i64>();
    }
    for pause in &p.paused {
        if !pause.skipped {
            out.entry(pause.channel.clone()).or_default().paused = Some(pause.reason.clone());
        }
    }
    out
}

/// Per-channel lines for the terminal, labels in Vietnamese for school staff.
pub fn render_channels(rows: &BTreeMap<String, ChannelSummary>) -> String {
    let mut s = format!(
        "{:<12} {:>8} {:>9} {:>8} {:>6} {:>8}\n",
        "Kênh", "Đã gửi", "Đã nhận", "Đã xem", "Lỗi", "Đang gửi"
    );
    for (channel, c) in rows {
        s.push_str(&format!(
            "{channel:<12} {:>8} {:>9} {:>8} {:>6} {:>8}\n",
            c.sent, c.delivered, c.read, c.failed, c.pending
        ));
        for (code, n) in &c.reasons {
            s.push_str(&format!("{:<12}   - {}: {n}\n", "", Reason::label_vi(code)));
        }
        if let Some(why) = &c.paused {
            s.push_str(&format!("{:<12}   ! tạm dừng: {why}\n", ""));
        }
    }
    s
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct OrgSummary {
    pub org_id: i64,
    pub org_name: String,
    pub targeted: i64,
    /// Delivered or read.
    pub delivered: i64,
    /// Accepted by the provider, no receipt yet.
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
    pub cancelled: i64,
    /// Still queued, sending or retrying.
    pub pending: i64,
    /// channel -> reached (sent, delivered or read) on that channel.
    pub reached_by_channel: BTreeMap<String, i64>,
    /// reason code -> count, for failed and skipped.
    pub reasons: BTreeMap<String, i64>,
}

pub fn by_org(rows: &[SummaryRow]) -> Vec<OrgSummary> {
    let mut out: Vec<OrgSummary> = Vec::new();
    for r in rows {
        let idx = match out.iter().position(|o| o.org_id == r.org_id) {
            Some(i) => i,
            None => {
                out.push(OrgSummary {
                    org_id: r.org_id,
                    org_name: r.org_name.clone(),
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        let o = &mut out[idx];
        o.targeted += r.count;
        let state = DeliveryState::parse(&r.state);
        match state {
            Some(DeliveryState::Delivered | DeliveryState::Read) => o.delivered += r.count,
            Some(DeliveryState::Sent) => o.sent += r.count,
            Some(DeliveryState::Failed) => o.failed += r.count,
            Some(DeliveryState::Skipped) => o.skipped += r.count,
            Some(DeliveryState::Cancelled) => o.cancelled += r.count,
            _ => o.pending += r.count,
        }
        if matches!(
            state,
            Some(DeliveryState::Delivered | DeliveryState::Read | DeliveryState::Sent)
        ) && let Some(c) = &r.channel
        {
            *o.reached_by_channel.entry(c.clone()).or_default() += r.count;
        }
        if matches!(state, Some(DeliveryState::Failed | DeliveryState::Skipped)) {
            let code = r.reason_code.clone().unwrap_or_else(|| "unknown".into());
            *o.reasons.entry(code).or_default() += r.count;
        }
    }
    out
}

/// A plain-text table for the terminal, labels in Vietnamese for school staff.
pub fn render_table(title: &str, rows: &[OrgSummary]) -> String {
    let mut s = format!("\n{title}\n");
    s.push_str(&format!(
        "{:<40} {:>8} {:>9} {:>6} {:>8} {:>7}  {}\n",
        "Đơn vị", "Mục tiêu", "Đã nhận", "Lỗi", "Bỏ qua", "Đang gửi", "Theo kênh"
    ));
    let mut total = OrgSummary {
        org_name: "TỔNG".into(),
        ..Default::default()
    };
    for r in rows {
        s.push_str(&line(r));
        total.targeted += r.targeted;
        total.delivered += r.delivered + r.sent;
        total.failed += r.failed;
        total.skipped += r.skipped;
        total.pending += r.pending;
        for (c, n) in &r.reached_by_channel {
            *total.reached_by_channel.entry(c.clone()).or_default() += n;
        }
        for (c, n) in &r.reasons {
            *total.reasons.entry(c.clone()).or_default() += n;
        }
        for (code, n) in &r.reasons {
            s.push_str(&format!("{:<40}   - {}: {n}\n", "", Reason::label_vi(code)));
        }
    }
    s.push_str(&line(&total));
    s
}

fn line(r: &OrgSummary) -> String {
    let channels: Vec<String> = r
        .reached_by_channel
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let name: String = r.org_name.chars().take(40).collect();
    format!(
        "{:<40} {:>8} {:>9} {:>6} {:>8} {:>7}  {}\n",
        name,
        r.targeted,
        r.delivered + r.sent,
        r.failed,
        r.skipped,
        r.pending,
        channels.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        org: i64,
        channel: Option<&str>,
        state: &str,
        reason: Option<&str>,
        n: i64,
    ) -> SummaryRow {
        SummaryRow {
            org_id: org,
            org_name: format!("T{org}"),
            channel: channel.map(str::to_string),
            state: state.into(),
            reason_code: reason.map(str::to_string),
            count: n,
        }
    }

    #[test]
    fn channel_funnel_counts_fallbacks_as_failures() {
        let mut p = Progress::default();
        let states = |v: &[(&str, i64)]| v.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        p.by_channel.insert(
            "sms".into(),
            states(&[("delivered", 3), ("sent", 1), ("read", 1)]),
        );
        p.by_channel
            .insert("zalo_zns".into(), states(&[("read", 2), ("failed", 1)]));
        p.failed_by_channel
            .insert("zalo_zns".into(), states(&[("retries_exhausted", 1)]));
        p.fell_back
            .insert("zalo_zns".into(), states(&[("provider_rejected", 5)]));
        let c = by_channel(&p);
        assert_eq!(
            (c["sms"].sent, c["sms"].delivered, c["sms"].read),
            (5, 4, 1)
        );
        let z = &c["zalo_zns"];
        assert_eq!((z.sent, z.delivered, z.read, z.failed), (2, 2, 2, 6));
        assert_eq!(z.reasons["provider_rejected"], 5);
        assert_eq!(z.reasons["retries_exhausted"], 1);
    }

    #[test]
    fn rolls_up_per_org() {
        let rows = [
            row(1, Some("zalo"), "delivered", None, 5),
            row(1, Some("sms"), "sent", None, 2),
            row(1, None, "skipped", Some("opted_out"), 1),
            row(2, Some("email"), "failed", Some("provider_rejected"), 3),
        ];
        let s = by_org(&rows);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].targeted, s[0].delivered, s[0].sent, s[0].skipped),
            (8, 5, 2, 1)
        );
        assert_eq!(s[0].reached_by_channel["zalo"], 5);
        assert_eq!(s[1].reasons["provider_rejected"], 3);
    }
}
