//! Message rendering: per-channel minijinja templates compiled once per campaign, the variables a
//! template may use, and the checks made when a template or campaign is created.

pub mod guard;
pub mod sms;

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use crate::domain::Channel;
use crate::domain::campaign::TemplateBodies;
use crate::domain::validation::ValidationError;

/// The variables a template may use. Anything else is refused when the template is created.
pub const VARIABLES: &[&str] = &[
    "recipient_name",
    "given_name",
    "students",
    "student_names",
    "class_name",
    "school_name",
    "sender_name",
    "campaign_name",
    "unsubscribe_url",
];

/// What varies per person, stored with each delivery when the audience is fanned out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonVars {
    /// Full name.
    #[serde(rename = "n")]
    pub name: String,
    /// Children in the audience (parents), or the student themself.
    #[serde(rename = "s", default, skip_serializing_if = "Vec::is_empty")]
    pub students: Vec<String>,
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    #[serde(rename = "o", default, skip_serializing_if = "String::is_empty")]
    pub school: String,
}

/// The full context one message is rendered with.
#[derive(Serialize)]
struct Context<'a> {
    recipient_name: &'a str,
    given_name: &'a str,
    students: &'a [String],
    student_names: String,
    class_name: String,
    school_name: &'a str,
    sender_name: &'a str,
    campaign_name: &'a str,
    unsubscribe_url: &'a str,
}

/// "An", "An và Bình", "An, Bình và Chi".
fn join_vi(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} và {}", init.join(", "), last),
    }
}

/// Classes in first-seen order without repeats: two children in one class name it once. (Done here,
/// per message, rather than with DISTINCT at fan-out, where it cost a temporary table per person.)
fn class_names(classes: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::with_capacity(classes.len());
    for c in classes {
        if !seen.contains(&c.as_str()) {
            seen.push(c);
        }
    }
    seen.join(", ")
}

/// Text rendered for one channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
    /// ZNS: the template's parameters filled for this person.
    pub zns: Option<std::collections::BTreeMap<String, String>>,
    /// Zalo OA transaction message parts, filled for this person.
    pub zalo_transaction: Option<providers::ZaloTransaction>,
}

/// A template's bodies compiled once, shared by every delivery of a campaign.
pub struct CompiledTemplate {
    env: Environment<'static>,
    pub sender_name: String,
    pub campaign_name: String,
    pub zns: Option<crate::domain::campaign::ZnsTemplate>,
    pub zalo_transaction: Option<crate::domain::campaign::ZaloTransactionTemplate>,
    /// Channels whose bodies show `unsubscribe_url`: only their messages need the signed link.
    unsubscribe_in: Vec<Channel>,
}

/// The channel a template field belongs to, by its name.
fn field_channel(field: &str) -> Option<Channel> {
    [
        ("email_", Channel::Email),
        ("sms_", Channel::Sms),
        ("zalo_", Channel::Zalo),
        ("messenger_", Channel::Messenger),
    ]
    .into_iter()
    .find_map(|(prefix, c)| field.starts_with(prefix).then_some(c))
}

fn new_env() -> Environment<'static> {
    let mut env = Environment::new();
    // An unknown variable must be an error, never an empty gap in a message to a parent.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    guard::install(&mut env);
    env
}

impl CompiledTemplate {
    pub fn compile(
        bodies: &TemplateBodies,
        sender_name: &str,
        campaign_name: &str,
    ) -> Result<Self, ValidationError> {
        check_template(bodies)?;
        let mut env = new_env();
        // Auto-escaping only where the output is HTML. minijinja fixes it when a template is added,
        // so the callback must be in place first.
        env.set_auto_escape_callback(|name| {
            if name == "email_html" {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        let mut unsubscribe_in = Vec::new();
        for (name, src) in bodies.fields() {
            env.add_template_owned(name.clone(), src.to_string())
                .map_err(|e| ValidationError::one(&name, e.to_string()))?;
            let uses = env
                .get_template(&name)
                .map(|t| t.undeclared_variables(false).contains("unsubscribe_url"))
                .unwrap_or(true);
            if let Some(c) = field_channel(&name).filter(|_| uses) {
                unsubscribe_in.push(c);
            }
        }
        if let Some(z) = &bodies.zns
            && z.params.values().any(|v| v == "unsubscribe_url")
        {
            unsubscribe_in.push(Channel::ZaloZns);
        }
        Ok(CompiledTemplate {
            unsubscribe_in,
            env,
            sender_name: sender_name.into(),
            campaign_name: campaign_name.into(),
            zns: bodies.zns.clone(),
            zalo_transaction: bodies.zalo_transaction.clone(),
        })
    }

    /// Whether this channel's bodies show the unsubscribe link.
    pub fn shows_unsubscribe(&self, channel: Channel) -> bool {
        self.unsubscribe_in.contains(&channel)
    }

    /// One field, within its fuel and output limits. A panic inside the engine (none is known once
    /// `check_shape` has passed) fails this message, not the dispatcher.
    fn render_one(&self, name: &str, ctx: &Context) -> Result<Option<String>, String> {
        let Ok(t) = self.env.get_template(name) else {
            return Ok(None);
        };
        let limit = guard::max_output(name);
        let run = std::panic::AssertUnwindSafe(|| {
            let mut out = guard::Capped::new(limit);
            let r = t.render_captured_to(ctx, &mut out).map(|_| ());
            (r, out)
        });
        let (result, out) = std::panic::catch_unwind(run)
            .map_err(|_| format!("{name}: the template engine failed"))?;
        match result {
            Ok(_) => String::from_utf8(out.buf)
                .map(Some)
                .map_err(|_| format!("{name}: output is not UTF-8")),
            Err(_) if out.overflowed => Err(format!(
                "{name}: nội dung dài quá {limit} byte (giới hạn của trường này)"
            )),
            Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(format!(
                "{name}: mẫu tin cần quá nhiều bước để soạn (giới hạn {} bước)",
                guard::FUEL
            )),
            Err(e) => Err(format!("{name}: {e}")),
        }
    }

    /// Renders the bodies of one channel for one person.
    pub fn render(
        &self,
        channel: Channel,
        p: &PersonVars,
        unsubscribe_url: &str,
    ) -> Result<Rendered, String> {
        let ctx = Context {
            recipient_name: &p.name,
            given_name: crate::domain::contact::given_name(&p.name),
            students: &p.students,
            student_names: join_vi(&p.students),
            class_name: class_names(&p.classes),
            school_name: &p.school,
            sender_name: &self.sender_name,
            campaign_name: &self.campaign_name,
            unsubscribe_url,
        };
        let text = |name: &str| self.render_one(name, &ctx).map(|s| s.unwrap_or_default());
        Ok(match channel {
            Channel::Email => Rendered {
                subject: self
                    .render_one("email_subject", &ctx)?
                    .map(|s| s.trim().to_string()),
                text: text("email_text")?,
                html: self.render_one("email_html", &ctx)?,
                ..Default::default()
            },
            Channel::Sms => Rendered {
                text: text("sms_text")?.trim().to_string(),
                ..Default::default()
            },
            Channel::Zalo => Rendered {
                text: text("zalo_text")?,
                zalo_transaction: match &self.zalo_transaction {
                    None => None,
                    Some(t) => Some(providers::ZaloTransaction {
                        header: text("zalo_transaction.header")?.trim().to_string(),
                        table: t
                            .table
                            .iter()
                            .enumerate()
                            .map(|(i, row)| {
                                let v = text(&format!("zalo_transaction.table[{i}].value"))?;
                                Ok((row.key.clone(), v.trim().to_string()))
                            })
                            .collect::<Result<_, String>>()?,
                        button: t.button.as_ref().map(|b| (b.title.clone(), b.url.clone())),
                    }),
                },
                ..Default::default()
            },
            Channel::Messenger => Rendered {
                text: text("messenger_text")?,
                ..Default::default()
            },
            Channel::ZaloZns => {
                let zns = self.zns.as_ref().ok_or("no ZNS template")?;
                let vars = serde_json::to_value(&ctx).map_err(|e| e.to_string())?;
                let mut data = std::collections::BTreeMap::new();
                for (param, var) in &zns.params {
                    let value = match &vars[var.as_str()] {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Array(items) => join_vi(
                            &items
                                .iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect::<Vec<_>>(),
                        ),
                        _ => return Err(format!("ZNS parameter {param}: unknown variable {var}")),
                    };
                    data.insert(param.clone(), value);
                }
                Rendered {
                    text: format!("ZNS {}", zns.template_id),
                    zns: Some(data),
                    ..Default::default()
                }
            }
        })
    }
}

/// Syntax and variable names of every body; each error names the body field.
pub fn check_template(bodies: &TemplateBodies) -> Result<(), ValidationError> {
    let mut errs = ValidationError::default();
    let env = new_env();
    for (name, src) in bodies.fields() {
        if let Err(m) = guard::check_shape(&name, src) {
            errs.push(name, m);
            continue;
        }
        match env.template_from_str(src) {
            Ok(t) => {
                let mut unknown: Vec<String> = t
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| !VARIABLES.contains(&v.as_str()))
                    .collect();
                unknown.sort();
                if !unknown.is_empty() {
                    errs.push(
                        name,
                        format!(
                            "biến không tồn tại: {} (được dùng: {})",
                            unknown.join(", "),
                            VARIABLES.join(", ")
                        ),
                    );
                }
            }
            Err(e) => errs.push(name, format!("lỗi cú pháp mẫu tin: {e}")),
        }
    }
    if let Some(t) = &bodies.zalo_transaction {
        if t.header.trim().is_empty() {
            errs.push("zalo_transaction.header", "tin giao dịch Zalo cần tiêu đề");
        }
        if let Some(b) = &t.button
            && !b.url.starts_with("https://")
        {
            errs.push(
                "zalo_transaction.button.url",
                "đường dẫn của nút phải bắt đầu bằng https://",
            );
        }
    }
    if let Some(zns) = &bodies.zns {
        if zns.template_id.trim().is_empty() {
            errs.push("zns.template_id", "thiếu mã mẫu ZNS do Zalo cấp");
        }
        for (param, var) in &zns.params {
            if param.trim().is_empty() {
                errs.push("zns.params", "tên tham số ZNS không được để trống");
            } else if !VARIABLES.contains(&var.as_str()) {
                errs.push(
                    "zns.params",
                    format!(
                        "tham số ZNS {param}: biến {var} không tồn tại (dùng được: {})",
                        VARIABLES.join(", ")
                    ),
                );
            }
        }
    }
    errs.into_result(())
}

/// Renders every channel of a template for the people it must work for (the most children and
/// longest names a roster holds, a typical parent, a staff member with no children), within the
/// render limits: a template that would fail at send time is refused when it is created, whatever
/// branch (`{% if students|length > 2 %}`) hides the failure.
pub fn check_renders(bodies: &TemplateBodies) -> Result<(), ValidationError> {
    let t = CompiledTemplate::compile(bodies, &"Trường Trung học cơ sở ".repeat(4), "Chiến dịch")?;
    let url = format!("https://loa.invalid/u/{}", "x".repeat(120));
    let people = [
        worst_person(),
        sample_person(),
        PersonVars {
            name: "Lê Văn Tám".into(),
            ..Default::default()
        },
    ];
    let mut errs = ValidationError::default();
    for ch in Channel::ALL.iter().filter(|c| bodies.has_channel(**c)) {
        for p in &people {
            if let Err(e) = t.render(*ch, p, &url) {
                errs.push(
                    channel_field(*ch),
                    format!("không soạn được nội dung kênh {ch}: {e}"),
                );
                break;
            }
        }
    }
    errs.into_result(())
}

/// The body field a channel's render error is reported on.
fn channel_field(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email_text",
        Channel::Sms => "sms_text",
        Channel::Zalo => "zalo_text",
        Channel::ZaloZns => "zns",
        Channel::Messenger => "messenger_text",
    }
}

/// The heaviest person a roster produces: many children with long names in many classes.
fn worst_person() -> PersonVars {
    let long = "Nguyễn Hoàng Bảo Ngọc Thiên Hương Phương Thảo";
    PersonVars {
        name: long.into(),
        students: (1..=8).map(|i| format!("{long} {i}")).collect(),
        classes: (1..=8).map(|i| format!("{i}A{i}")).collect(),
        school: "Trường Trung học cơ sở và Trung học phổ thông Nguyễn Văn Trỗi".into(),
    }
}

/// A plausible long-ish person, used to check lengths when a campaign is created.
pub fn sample_person() -> PersonVars {
    PersonVars {
        name: "Nguyễn Thị Phương Thảo".into(),
        students: vec![
            "Nguyễn Hoàng Bảo Ngọc".into(),
            "Nguyễn Hoàng Minh Khôi".into(),
        ],
        classes: vec!["5A1".into(), "2A3".into()],
        school: "Trường Tiểu học Nguyễn Văn Trỗi".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_named_twice_is_named_once() {
        let classes = ["3A".to_string(), "3A".into(), "5B".into()];
        assert_eq!(class_names(&classes), "3A, 5B");
    }

    fn bodies() -> TemplateBodies {
        TemplateBodies {
            email_subject: Some("Thông báo từ {{ sender_name }}".into()),
            email_text: Some(
                "Kính gửi phụ huynh em {{ student_names }} ({{ class_name }}), {{ school_name }}."
                    .into(),
            ),
            email_html: Some("<p>Phụ huynh em {{ student_names }}</p>".into()),
            sms_text: Some("PH em {{ student_names }}: {{ campaign_name }}".into()),
            ..Default::default()
        }
    }

    #[test]
    fn knows_which_channels_show_the_unsubscribe_link() {
        let mut b = bodies();
        b.zalo_text = Some("Huỷ nhận tin: {% if true %}{{ unsubscribe_url }}{% endif %}".into());
        let t = CompiledTemplate::compile(&b, "Trường", "Tuần 1").unwrap();
        assert!(t.shows_unsubscribe(Channel::Zalo));
        assert!(!t.shows_unsubscribe(Channel::Sms));
        assert!(!t.shows_unsubscribe(Channel::Email));
    }

    #[test]
    fn renders_both_children() {
        let t = CompiledTemplate::compile(&bodies(), "Trường TH Mỹ Phú", "Tuần 1").unwrap();
        let p = PersonVars {
            name: "Trần Văn Hùng".into(),
            students: vec!["Trần Minh An".into(), "Trần Thu Bình".into()],
            classes: vec!["1A".into(), "4B".into()],
            school: "Trường TH Mỹ Phú".into(),
        };
        let r = t.render(Channel::Email, &p, "http://x/u/1").unwrap();
        assert_eq!(r.subject.as_deref(), Some("Thông báo từ Trường TH Mỹ Phú"));
        assert_eq!(
            r.text,
            "Kính gửi phụ huynh em Trần Minh An và Trần Thu Bình (1A, 4B), Trường TH Mỹ Phú."
        );
        let sms = t.render(Channel::Sms, &p, "").unwrap();
        assert_eq!(sms.text, "PH em Trần Minh An và Trần Thu Bình: Tuần 1");
    }

    #[test]
    fn html_is_escaped_text_is_not() {
        let t = CompiledTemplate::compile(&bodies(), "S", "C").unwrap();
        let p = PersonVars {
            name: "A".into(),
            students: vec!["<b>X</b>".into()],
            ..Default::default()
        };
        assert_eq!(
            t.render(Channel::Email, &p, "").unwrap().html.as_deref(),
            Some("<p>Phụ huynh em &lt;b&gt;X&lt;&#x2f;b&gt;</p>")
        );
        assert_eq!(
            t.render(Channel::Sms, &p, "").unwrap().text,
            "PH em <b>X</b>: C"
        );
    }

    #[test]
    fn rejects_unknown_variables_and_bad_syntax() {
        let b = TemplateBodies {
            sms_text: Some("{{ parent_phone }}".into()),
            zalo_text: Some("{% if %}".into()),
            ..Default::default()
        };
        let e = check_template(&b).unwrap_err();
        assert_eq!(e.errors.len(), 2);
        assert_eq!(e.errors[0].field, "sms_text");
        assert!(e.errors[0].message.contains("parent_phone"));
        assert_eq!(e.errors[1].field, "zalo_text");
    }

    #[test]
    fn odd_expressions_fail_or_render_but_never_panic() {
        for src in [
            "{{ students[::0] }}",
            "{{ students[::-1] }}",
            "{{ student_names[99999999999999] }}",
            "{{ 1 / 0 }}{{ 1 // 0 }}{{ 1 % 0 }}",
            "{{ 2 ** 99999 }}",
            "{{ 2.0 ** 99999 }}",
            "{{ students|join(student_names) }}",
            "{{ students|sum }}",
            "{{ (students + students + students)|length }}",
            "{{ students|round(999999999) }}",
            "{{ student_names|int }}",
            "{{ student_names|replace('', '-', 99999999999) }}",
            "{{ students|map('upper')|join }}",
            "{{ students|sort|unique|reverse|list|first }}",
            "{{ 9223372036854775807 + 1 }}{{ -9223372036854775808 - 1 }}",
        ] {
            let b = TemplateBodies {
                sms_text: Some(src.into()),
                ..Default::default()
            };
            if check_template(&b).is_err() {
                continue;
            }
            // Either outcome is fine; a panic would fail the test (render catches the engine's own,
            // so this also asserts the message says what failed).
            if let Ok(t) = CompiledTemplate::compile(&b, "S", "C")
                && let Err(e) = t.render(Channel::Sms, &worst_person(), "")
            {
                assert!(!e.contains("engine failed"), "{src}: {e}");
            }
        }
    }

    #[test]
    fn joins_names_in_vietnamese() {
        assert_eq!(join_vi(&["A".into(), "B".into(), "C".into()]), "A, B và C");
    }
}
