//! The pages' templates, compiled into the binary, and the filters that write dates, times and
//! numbers the Vietnamese way (`dd/mm/yyyy`, 24-hour time in Asia/Ho_Chi_Minh, `1.234`).

use std::sync::OnceLock;

use axum::response::Html;
use chrono::{FixedOffset, TimeZone};
use minijinja::{Environment, Value};

use crate::api::error::AppError;

/// Every template by name; `.html` names are auto-escaped by minijinja.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("password.html", include_str!("templates/password.html")),
    ("home.html", include_str!("templates/home.html")),
    ("campaign.html", include_str!("templates/campaign.html")),
    ("progress.html", include_str!("templates/progress.html")),
    ("approvals.html", include_str!("templates/approvals.html")),
    ("people.html", include_str!("templates/people.html")),
    ("import.html", include_str!("templates/import.html")),
    (
        "template_form.html",
        include_str!("templates/template_form.html"),
    ),
    (
        "campaign_form.html",
        include_str!("templates/campaign_form.html"),
    ),
    ("users.html", include_str!("templates/users.html")),
    ("user.html", include_str!("templates/user.html")),
    ("failures.html", include_str!("templates/failures.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("person.html", include_str!("templates/person.html")),
    ("library.html", include_str!("templates/library.html")),
    (
        "person_form.html",
        include_str!("templates/person_form.html"),
    ),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut e = Environment::new();
        for (name, src) in TEMPLATES {
            // Our own templates, checked by the tests that render each page: a broken one is a
            // bug of this build, reported when it is rendered.
            if let Err(err) = e.add_template(name, src) {
                tracing::error!(template = name, error = %err, "page template does not compile");
            }
        }
        e.add_filter("vndate", vn_date);
        e.add_filter("vndatetime", vn_datetime);
        e.add_filter("num", vn_number);
        e.add_global("asset_version", env!("CARGO_PKG_VERSION"));
        e
    })
}

/// Vietnam keeps UTC+7 all year (no daylight saving), so a fixed offset is exact.
fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
}

fn at(ms: i64) -> Option<chrono::DateTime<FixedOffset>> {
    vietnam().timestamp_millis_opt(ms).single()
}

/// `31/12/2026`.
pub fn vn_date(ms: Option<i64>) -> String {
    ms.and_then(at)
        .map(|t| t.format("%d/%m/%Y").to_string())
        .unwrap_or_default()
}

/// `31/12/2026 14:05`.
pub fn vn_datetime(ms: Option<i64>) -> String {
    ms.and_then(at)
        .map(|t| t.format("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_default()
}

/// `1.234.567` (dots group thousands in Vietnamese).
pub fn vn_number(n: Option<i64>) -> String {
    let Some(n) = n else {
        return String::new();
    };
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(ch);
    }
    out
}

pub fn render(name: &str, ctx: Value) -> Result<Html<String>, AppError> {
    let t = env().get_template(name).map_err(AppError::internal)?;
    t.render(ctx).map(Html).map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vietnamese_dates_and_numbers() {
        // 2026-12-31 17:05 UTC is 1 January 2027, 00:05 in Hà Nội.
        let ms = 1_798_736_700_000;
        assert_eq!(vn_datetime(Some(ms)), "01/01/2027 00:05");
        assert_eq!(vn_date(Some(ms)), "01/01/2027");
        assert_eq!(vn_number(Some(1_234_567)), "1.234.567");
        assert_eq!(vn_number(Some(999)), "999");
        assert_eq!(vn_number(Some(-1000)), "-1.000");
        assert_eq!(vn_number(None), "");
    }

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(env().get_template(name).is_ok(), "{name}");
        }
    }
}
