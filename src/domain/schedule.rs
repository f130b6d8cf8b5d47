//! Time rules, without I/O: recurring schedules (cron or a friendly form) in Vietnam's time, what
//! becomes of each slot (run, missed beyond the grace period, holiday), the school calendar and
//! quiet hours.
//!
//! Vietnam has kept UTC+7 without daylight saving since 1975, so a fixed offset is exact and spares
//! a time-zone database.

use std::str::FromStr;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, TimeZone, Timelike};
use croner::Cron;
use serde::{Deserialize, Serialize};

use super::Millis;

pub fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
}

fn local(ms: Millis) -> DateTime<FixedOffset> {
    vietnam()
        .timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(|| vietnam().timestamp_millis_opt(0).unwrap())
}

/// The local (Vietnam) date of an instant.
pub fn local_date(ms: Millis) -> NaiveDate {
    local(ms).date_naive()
}

/// A recurring schedule as stored: a cron expression evaluated in Vietnam's time, between two local
/// dates (inclusive), optionally only on school days of the term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    pub cron: String,
    #[serde(default)]
    pub start: Option<NaiveDate>,
    #[serde(default)]
    pub end: Option<NaiveDate>,
    #[serde(default)]
    pub only_during_term: bool,
}

/// What staff send: a cron expression or a friendly form, with the same dates.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrenceInput {
    #[serde(default)]
    pub cron: Option<String>,
    /// "weekly on Monday at 07:00", "daily at 06:30", "monthly on day 1 at 07:00", or in
    /// Vietnamese "thứ Hai hằng tuần lúc 07:00", "hằng ngày lúc 06:30".
    #[serde(default)]
    pub every: Option<String>,
    #[serde(default)]
    pub start: Option<NaiveDate>,
    #[serde(default)]
    pub end: Option<NaiveDate>,
    #[serde(default)]
    pub only_during_term: bool,
}

impl RecurrenceInput {
    /// The stored schedule, or why not (Vietnamese, for staff).
    pub fn resolve(self) -> Result<Recurrence, String> {
        let cron = match (self.cron, self.every) {
            (Some(c), None) => c.trim().to_string(),
            (None, Some(e)) => friendly_to_cron(&e)?,
            _ => return Err("cần đúng một trong hai: cron hoặc every".into()),
        };
        Cron::from_str(&cron).map_err(|e| format!("biểu thức cron không hợp lệ ({cron}): {e}"))?;
        if cron.split_whitespace().count() != 5 {
            return Err(format!(
                "biểu thức cron cần 5 trường (phút giờ ngày tháng thứ): {cron}"
            ));
        }
        if let (Some(s), Some(e)) = (self.start, self.end)
            && e < s
        {
            return Err("ngày kết thúc phải sau ngày bắt đầu".into());
        }
        Ok(Recurrence {
            cron,
            start: self.start,
            end: self.end,
            only_during_term: self.only_during_term,
        })
    }
}

const WEEKDAYS: [(&str, &str, &[&str]); 7] = [
    ("MON", "monday", &["thứ hai", "thứ 2"]),
    ("TUE", "tuesday", &["thứ ba", "thứ 3"]),
    ("WED", "wednesday", &["thứ tư", "thứ 4"]),
    ("THU", "thursday", &["thứ năm", "thứ 5"]),
    ("FRI", "friday", &["thứ sáu", "thứ 6"]),
    ("SAT", "saturday", &["thứ bảy", "thứ 7"]),
    ("SUN", "sunday", &["chủ nhật"]),
];

/// Friendly schedules to cron. Hand-written: the forms are few and fixed, and no crate reads
/// Vietnamese.
pub fn friendly_to_cron(s: &str) -> Result<String, String> {
    let text = s.trim().to_lowercase();
    let bad = || {
        format!(
            "không hiểu lịch \"{s}\"; ví dụ: \"weekly on Monday at 07:00\", \"thứ Hai hằng tuần lúc 07:00\", \"daily at 06:30\", \"monthly on day 1 at 07:00\""
        )
    };
    let (what, time) = text
        .rsplit_once(" at ")
        .or_else(|| text.rsplit_once(" lúc "))
        .ok_or_else(bad)?;
    let t = NaiveTime::parse_from_str(time.trim(), "%H:%M").map_err(|_| bad())?;
    let (m, h) = (t.minute(), t.hour());
    let what = what.trim();
    if what == "daily" || what == "every day" || what == "hằng ngày" || what == "hàng ngày" {
        return Ok(format!("{m} {h} * * *"));
    }
    if let Some(day) = what.strip_prefix("monthly on day ") {
        let d: u32 = day.trim().parse().map_err(|_| bad())?;
        if !(1..=28).contains(&d) {
            return Err("ngày trong tháng phải từ 1 đến 28 (để tháng nào cũng có)".into());
        }
        return Ok(format!("{m} {h} {d} * *"));
    }
    let days_text = what
        .strip_prefix("weekly on ")
        .or_else(|| what.strip_suffix(" hằng tuần"))
        .or_else(|| what.strip_suffix(" hàng tuần"))
        .ok_or_else(bad)?;
    let mut days = Vec::new();
    for part in days_text.split([',', '&']).flat_map(|p| p.split(" and ")) {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        let (code, _, _) = WEEKDAYS
            .iter()
            .find(|(_, en, vi)| *en == p || vi.contains(&p))
            .ok_or_else(bad)?;
        days.push(*code);
    }
    if days.is_empty() {
        return Err(bad());
    }
    Ok(format!("{m} {h} * * {}", days.join(",")))
}

impl Recurrence {
    fn parsed(&self) -> Option<Cron> {
        Cron::from_str(&self.cron).ok()
    }

    /// The first slot strictly after `after`, within the start date (no end check).
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        let cron = self.parsed()?;
        let start = self
            .start
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|d| vietnam().from_local_datetime(&d).single())
            .map(|d| d.timestamp_millis() - 1)
            .unwrap_or(i64::MIN);
        let from = local(after.max(start));
        // Slots are whole minutes; croner keeps the start's sub-second part, so drop it.
        cron.find_next_occurrence(&from, false)
            .ok()
            .map(|t| t.timestamp() / 60 * 60_000)
    }

    /// Whether a slot falls after the end date.
    pub fn past_end(&self, slot: Millis) -> bool {
        self.end.is_some_and(|e| local_date(slot) > e)
    }

    /// Up to `n` slots after `after` that are not past the end date.
    pub fn upcoming(&self, after: Millis, n: usize) -> Vec<Millis> {
        let mut out = Vec::new();
        let mut at = after;
        while out.len() < n {
            match self.next_after(at) {
                Some(s) if !self.past_end(s) => {
                    out.push(s);
                    at = s;
                }
                _ => break,
            }
        }
        out
    }
}

/// A range of local dates, both ends included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    pub start: NaiveDate,
    pub end: NaiveDate,
    #[serde(default)]
    pub name: String,
}

impl DateRange {
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.start <= d && d <= self.end
    }
}

/// A node's school calendar: terms and holidays (Tết, summer, exam weeks).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    #[serde(default)]
    pub terms: Vec<DateRange>,
    #[serde(default)]
    pub holidays: Vec<DateRange>,
}

impl Calendar {
    /// Why a day is not a school day of the term, or `None` if it is. A calendar without terms
    /// counts every day as in term (only holidays are skipped).
    pub fn off_reason(&self, d: NaiveDate) -> Option<String> {
        if let Some(h) = self.holidays.iter().find(|h| h.contains(d)) {
            return Some(format!("holiday: {}", h.name));
        }
        if !self.terms.is_empty() && !self.terms.iter().any(|t| t.contains(d)) {
            return Some("not_in_term".into());
        }
        None
    }

    pub fn validate(&self) -> Result<(), String> {
        for r in self.terms.iter().chain(&self.holidays) {
            if r.end < r.start {
                return Err(format!(
                    "khoảng ngày {} - {} có ngày kết thúc trước ngày bắt đầu",
                    r.start, r.end
                ));
            }
        }
        Ok(())
    }
}

/// What becomes of a due slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotFate {
    Run,
    /// Recorded as a skipped run with this reason; a series does not advance.
    Skip(String),
}

/// A slot due at `slot`, seen at `now`: run it, unless it is older than the grace period (the daemon
/// was down) or falls outside the school term when the campaign runs only during term.
pub fn slot_fate(
    r: &Recurrence,
    slot: Millis,
    now: Millis,
    grace_ms: Millis,
    calendar: &Calendar,
) -> SlotFate {
    if now - slot > grace_ms {
        return SlotFate::Skip("missed".into());
    }
    if r.only_during_term
        && let Some(why) = calendar.off_reason(local_date(slot))
    {
        return SlotFate::Skip(why);
    }
    SlotFate::Run
}

/// Quiet hours, local time: `start` to `end`, crossing midnight when `end` <= `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl FromStr for QuietHours {
    type Err = String;
    /// "21:00-07:00".
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("giờ yên lặng có dạng 21:00-07:00, nhận được {s:?}"))?;
        let t = |x: &str| {
            NaiveTime::parse_from_str(x.trim(), "%H:%M")
                .map_err(|_| format!("giờ không hợp lệ: {x:?}"))
        };
        Ok(QuietHours {
            start: t(a)?,
            end: t(b)?,
        })
    }
}

impl std::fmt::Display for QuietHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

impl QuietHours {
    /// When the window holding `now` ends, or `None` if `now` is outside it.
    pub fn release_at(&self, now: Millis) -> Option<Millis> {
        if self.start == self.end {
            return None;
        }
        let t = local(now);
        let time = t.time();
        let inside = if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        };
        if !inside {
            return None;
        }
        let mut day = t.date_naive();
        if self.start > self.end && time >= self.start {
            day = day.succ_opt()?;
        }
        let end = vietnam()
            .from_local_datetime(&day.and_time(self.end))
            .single()?;
        Some(end.timestamp_millis())
    }
}

/// Weekday name in Vietnamese, for listings of upcoming slots.
pub fn weekday_vi(ms: Millis) -> &'static str {
    match local(ms).weekday() {
        chrono::Weekday::Mon => "Thứ Hai",
        chrono::Weekday::Tue => "Thứ Ba",
        chrono::Weekday::Wed => "Thứ Tư",
        chrono::Weekday::Thu => "Thứ Năm",
        chrono::Weekday::Fri => "Thứ Sáu",
        chrono::Weekday::Sat => "Thứ Bảy",
        chrono::Weekday::Sun => "Chủ Nhật",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Millis {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn friendly_forms() {
        assert_eq!(
            friendly_to_cron("weekly on Monday at 07:00").unwrap(),
            "0 7 * * MON"
        );
        assert_eq!(
            friendly_to_cron("Thứ Hai hằng tuần lúc 07:00").unwrap(),
            "0 7 * * MON"
        );
        assert_eq!(
            friendly_to_cron("weekly on monday, thursday at 16:30").unwrap(),
            "30 16 * * MON,THU"
        );
        assert_eq!(friendly_to_cron("daily at 06:05").unwrap(), "5 6 * * *");
        assert_eq!(
            friendly_to_cron("monthly on day 1 at 07:00").unwrap(),
            "0 7 1 * *"
        );
        assert!(friendly_to_cron("monthly on day 31 at 07:00").is_err());
        assert!(friendly_to_cron("weekly on Funday at 07:00").is_err());
        assert!(friendly_to_cron("sometimes").is_err());
        assert!(friendly_to_cron("daily at 25:00").is_err());
    }

    #[test]
    fn monday_0700_in_vietnam_is_monday_0000_utc() {
        let r = Recurrence {
            cron: "0 7 * * MON".into(),
            start: None,
            end: None,
            only_during_term: false,
        };
        // Sunday 2026-11-29 23:59 UTC is Monday 06:59 in Vietnam: the slot is one minute later.
        let next = r.next_after(utc("2026-11-29T23:59:00Z")).unwrap();
        assert_eq!(next, utc("2026-11-30T00:00:00Z"));
        // From the slot itself, the next is a week on.
        assert_eq!(r.next_after(next).unwrap(), utc("2026-12-07T00:00:00Z"));
        // Monday 07:00 UTC is already 14:00 in Vietnam: that Monday's slot has passed.
        assert_eq!(
            r.next_after(utc("2026-11-30T07:00:00Z")).unwrap(),
            utc("2026-12-07T00:00:00Z")
        );
    }

    #[test]
    fn weekly_slots_across_a_month_within_dates() {
        let r = Recurrence {
            cron: "0 7 * * MON".into(),
            start: Some(d("2026-12-01")),
            end: Some(d("2026-12-28")),
            only_during_term: false,
        };
        let slots = r.upcoming(utc("2026-11-01T00:00:00Z"), 10);
        let days: Vec<NaiveDate> = slots.iter().map(|s| local_date(*s)).collect();
        assert_eq!(
            days,
            vec![
                d("2026-12-07"),
                d("2026-12-14"),
                d("2026-12-21"),
                d("2026-12-28")
            ]
        );
        assert!(slots.iter().all(|s| weekday_vi(*s) == "Thứ Hai"));
    }

    #[test]
    fn slot_fates() {
        let r = Recurrence {
            cron: "0 7 * * MON".into(),
            start: None,
            end: None,
            only_during_term: true,
        };
        let cal = Calendar {
            terms: vec![DateRange {
                start: d("2026-09-05"),
                end: d("2027-01-15"),
                name: "HK1".into(),
            }],
            holidays: vec![DateRange {
                start: d("2026-12-21"),
                end: d("2026-12-27"),
                name: "Thi học kỳ".into(),
            }],
        };
        let hour = 3_600_000;
        let slot = utc("2026-12-07T00:00:00Z");
        assert_eq!(
            slot_fate(&r, slot, slot + 5 * hour, 6 * hour, &cal),
            SlotFate::Run
        );
        assert_eq!(
            slot_fate(&r, slot, slot + 7 * hour, 6 * hour, &cal),
            SlotFate::Skip("missed".into())
        );
        let exam = utc("2026-12-21T00:00:00Z");
        assert_eq!(
            slot_fate(&r, exam, exam, 6 * hour, &cal),
            SlotFate::Skip("holiday: Thi học kỳ".into())
        );
        let summer = utc("2027-06-07T00:00:00Z");
        assert_eq!(
            slot_fate(&r, summer, summer, 6 * hour, &cal),
            SlotFate::Skip("not_in_term".into())
        );
        let any = Recurrence {
            only_during_term: false,
            ..r
        };
        assert_eq!(slot_fate(&any, exam, exam, 6 * hour, &cal), SlotFate::Run);
    }

    #[test]
    fn quiet_hours_cross_midnight() {
        let q: QuietHours = "21:00-07:00".parse().unwrap();
        assert_eq!(q.to_string(), "21:00-07:00");
        // 22:30 in Vietnam (15:30 UTC) -> released 07:00 next morning (00:00 UTC).
        assert_eq!(
            q.release_at(utc("2026-11-24T15:30:00Z")),
            Some(utc("2026-11-25T00:00:00Z"))
        );
        // 05:00 in Vietnam -> 07:00 the same morning.
        assert_eq!(
            q.release_at(utc("2026-11-24T22:00:00Z")),
            Some(utc("2026-11-25T00:00:00Z"))
        );
        // 07:00 sharp and noon are outside.
        assert_eq!(q.release_at(utc("2026-11-25T00:00:00Z")), None);
        assert_eq!(q.release_at(utc("2026-11-25T05:00:00Z")), None);
        let day: QuietHours = "12:00-13:30".parse().unwrap();
        assert_eq!(
            day.release_at(utc("2026-11-25T05:10:00Z")),
            Some(utc("2026-11-25T06:30:00Z"))
        );
        assert!("21h-7h".parse::<QuietHours>().is_err());
    }
}
