//! `loa demo`: a generated district (one Phòng, three schools of different levels, ~2,000 contacts)
//! on a fresh embedded SQLite file, two real campaigns through the local sinks, and a per-school summary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::approval;
use crate::clock::now_ms;
use crate::config::Config;
use crate::domain::access::{Principal, UserRole};
use crate::domain::campaign::{Audience, NewCampaign, NewTemplate, TemplateBodies};
use crate::domain::contact::{NewContactInput, Role};
use crate::domain::org::{NewOrg, OrgKind};
use crate::domain::{Channel, Millis};
use crate::report;
use crate::store::Store;

const FAMILY: &[&str] = &[
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Hồ", "Ngô", "Dương", "Lý", "Trương", "Đinh",
];
const MIDDLE_M: &[&str] = &[
    "Văn", "Minh", "Quốc", "Đức", "Hoàng", "Gia", "Thành", "Hữu", "Công", "Bảo",
];
const MIDDLE_F: &[&str] = &[
    "Thị", "Ngọc", "Thu", "Thanh", "Mai", "Kim", "Bảo", "Phương", "Diệu", "Hồng",
];
const GIVEN_M: &[&str] = &[
    "An", "Bình", "Dũng", "Hùng", "Khang", "Khôi", "Long", "Minh", "Nam", "Phúc", "Quân", "Sơn",
    "Tuấn", "Việt", "Đạt", "Huy", "Kiên", "Lâm",
];
const GIVEN_F: &[&str] = &[
    "Chi", "Giang", "Hà", "Hạnh", "Hương", "Lan", "Linh", "Mai", "Ngọc", "Nhung", "Phương",
    "Quỳnh", "Tâm", "Thảo", "Trang", "Uyên", "Vy", "Yến",
];
const MOBILE_PREFIXES: &[&str] = &[
    "090", "091", "093", "094", "096", "097", "098", "086", "032", "033", "034", "035", "036",
    "037", "038", "039", "070", "076", "077", "078", "079", "081", "082", "083", "084", "085",
    "056", "058", "059",
];

pub struct DemoOptions {
    pub dir: PathBuf,
    pub listen: std::net::SocketAddr,
    pub exit_when_done: bool,
}

fn pick<'a>(rng: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

fn person_name(rng: &mut StdRng, female: bool) -> String {
    let (mid, given) = if female {
        (MIDDLE_F, GIVEN_F)
    } else {
        (MIDDLE_M, GIVEN_M)
    };
    format!(
        "{} {} {}",
        pick(rng, FAMILY),
        pick(rng, mid),
        pick(rng, given)
    )
}

fn phone(rng: &mut StdRng) -> String {
    format!(
        "{}{:07}",
        pick(rng, MOBILE_PREFIXES),
        rng.random_range(0..10_000_000)
    )
}

fn email_for(name: &str, n: u32) -> String {
    let plain = crate::render::sms::unaccent(name).to_lowercase();
    let parts: Vec<&str> = plain.split_whitespace().collect();
    format!(
        "{}.{}{}@example.vn",
        parts.last().unwrap_or(&"ph"),
        parts.first().unwrap_or(&"x"),
        n
    )
}

struct Seeded {
    phong: i64,
    schools: Vec<(i64, String)>,
    contacts: usize,
}

async fn org(
    store: &dyn Store,
    parent: Option<i64>,
    kind: OrgKind,
    code: &str,
    name: &str,
) -> anyhow::Result<i64> {
    let o = NewOrg {
        parent_id: parent,
        kind,
        code: code.into(),
        name: name.into(),
    };
    Ok(store.create_org(&o, now_ms()).await?.id)
}

/// The demo district. Deterministic (seeded) so two runs print the same figures.
async fn seed(store: &dyn Store) -> anyhow::Result<Seeded> {
    let mut rng = StdRng::seed_from_u64(2026);
    let now: Millis = now_ms();
    let so = org(store, None, OrgKind::Province, "SGD-LA", "Sở GD&ĐT Long An").await?;
    let phong = org(
        store,
        Some(so),
        OrgKind::District,
        "PGD-TT",
        "Phòng GD&ĐT Thủ Thừa",
    )
    .await?;
    let school_defs: [(&str, &str, Vec<String>); 3] = [
        (
            "MN-TS",
            "Trường Mầm non Thanh Sơn",
            ["Mầm 1", "Mầm 2", "Chồi 1", "Chồi 2", "Lá 1", "Lá 2"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "TH-MP",
            "Trường Tiểu học Mỹ Phú",
            (1..=5)
                .flat_map(|g| (1..=3).map(move |k| format!("{g}A{k}")))
                .collect(),
        ),
        (
            "THCS-TT",
            "Trường THCS Thủ Thừa",
            (6..=9)
                .flat_map(|g| (1..=3).map(move |k| format!("{g}A{k}")))
                .collect(),
        ),
    ];
    let mut contacts = 0;
    let mut schools = Vec::new();
    // Parents already created, so that some children share a parent (siblings, across schools too).
    let mut parents: Vec<i64> = Vec::new();
    let mut email_n = 0u32;
    let new_contact = |org_id,
                       role,
                       full_name: String,
                       phone: Option<String>,
                       email: Option<String>,
                       zalo: Option<String>,
                       code: Option<String>| NewContactInput {
        org_id,
        role,
        full_name,
        phone,
        email,
        zalo_user_id: zalo,
        facebook_psid: None,
        student_code: code,
    };
    for (si, (code, name, classes)) in school_defs.iter().enumerate() {
        let school = org(store, Some(phong), OrgKind::School, code, name).await?;
        schools.push((school, name.to_string()));
        for s in 0..30 {
            let female = rng.random_bool(0.7);
            let n = person_name(&mut rng, female);
            email_n += 1;
            let c = new_contact(
                school,
                Role::Staff,
                n.clone(),
                Some(phone(&mut rng)),
                rng.random_bool(0.9).then(|| email_for(&n, email_n)),
                None,
                None,
            )
            .validate()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let id = store.create_contact(&c, now).await?.id;
            if s == 0 && si == 0 {
                // One staff member has stopped email: the directive reaches them by SMS instead.
                store.set_opt_out(id, Channel::Email, true, now).await?;
            }
            contacts += 1;
        }
        for (ci, class) in classes.iter().enumerate() {
            let class_id = org(
                store,
                Some(school),
                OrgKind::Class,
                &format!("{code}-{ci}"),
                class,
            )
            .await?;
            for k in 0..31 {
                let female = rng.random_bool(0.5);
                let student = person_name(&mut rng, female);
                let sc = new_contact(
                    class_id,
                    Role::Student,
                    student,
                    None,
                    None,
                    None,
                    Some(format!("{code}{ci:02}{k:02}")),
                )
                .validate()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                let student_id = store.create_contact(&sc, now).await?.id;
                contacts += 1;
                let parent_id = if !parents.is_empty() && rng.random_bool(0.12) {
                    parents[rng.random_range(0..parents.len())]
                } else {
                    let female = rng.random_bool(0.6);
                    let pn = person_name(&mut rng, female);
                    email_n += 1;
                    let has_phone = rng.random_bool(0.97);
                    let pc = new_contact(
                        school,
                        Role::Parent,
                        pn.clone(),
                        has_phone.then(|| phone(&mut rng)),
                        rng.random_bool(0.55).then(|| email_for(&pn, email_n)),
                        rng.random_bool(0.6).then(|| {
                            format!(
                                "{}",
                                3_000_000_000_000_000_000u64
                                    + rng.random_range(0..1_000_000_000_000u64)
                            )
                        }),
                        None,
                    )
                    .validate()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                    let pid = store.create_contact(&pc, now).await?.id;
                    contacts += 1;
                    let roll = rng.random_range(0..100);
                    if roll < 3 {
                        for c in Channel::ALL {
                            store.set_opt_out(pid, c, true, now).await?;
                        }
                    } else if roll < 8 {
                        store.set_opt_out(pid, Channel::Zalo, true, now).await?;
                    }
                    parents.push(pid);
                    pid
                };
                store
                    .link_guardian(
                        parent_id,
                        student_id,
                        Some(if rng.random_bool(0.5) { "mẹ" } else { "cha" }),
                    )
                    .await?;
            }
        }
    }
    for _ in 0..8 {
        let female = rng.random_bool(0.5);
        let n = person_name(&mut rng, female);
        email_n += 1;
        let c = new_contact(
            phong,
            Role::Staff,
            n.clone(),
            Some(phone(&mut rng)),
            Some(email_for(&n, email_n)),
            None,
            None,
        )
        .validate()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        store.create_contact(&c, now).await?;
        contacts += 1;
    }
    Ok(Seeded {
        phong,
        schools,
        contacts,
    })
}

/// A campaign of the demo with who wrote it and who approves it.
struct DemoCampaign {
    id: i64,
    name: String,
    author: Principal,
    approver: Principal,
}

async fn campaigns(store: &dyn Store, seeded: &Seeded) -> anyhow::Result<Vec<DemoCampaign>> {
    let school = seeded.schools[1].0;
    // Each campaign is written by one person and approved by another, as at a real school or office.
    let teacher = approval::tool_user(
        store,
        Some(school),
        "giaovien.thmp",
        "Lê Thị Thu Hà",
        &[UserRole::Author],
    )
    .await?;
    let principal = approval::tool_user(
        store,
        Some(school),
        "hieutruong.thmp",
        "Trần Văn Minh",
        &[UserRole::Approver, UserRole::Viewer],
    )
    .await?;
    let officer = approval::tool_user(
        store,
        Some(seeded.phong),
        "chuyenvien.pgd",
        "Phạm Ngọc Lan",
        &[UserRole::Author],
    )
    .await?;
    let head = approval::tool_user(
        store,
        Some(seeded.phong),
        "truongphong.pgd",
        "Võ Quốc Dũng",
        &[UserRole::Approver, UserRole::Admin],
    )
    .await?;
    let tip = store
        .create_template(
            &NewTemplate {
                org_id: school,
                name: "Mẹo an toàn trên mạng - tuần 1".into(),
                bodies: TemplateBodies {
                    email_subject: Some("[{{ school_name }}] Mẹo an toàn trên mạng tuần này".into()),
                    email_text: Some(
                        "Kính gửi Quý phụ huynh em {{ student_names }} (lớp {{ class_name }}),\n\n\
                         Mẹo tuần này: không chia sẻ mật khẩu, ảnh riêng tư hay địa chỉ nhà của con trên mạng xã hội. \
                         Hãy cùng con đặt thời gian dùng Internet hợp lý và trò chuyện khi con gặp điều lạ trên mạng.\n\n\
                         Trân trọng,\n{{ sender_name }}\n\nHuỷ nhận tin qua email: {{ unsubscribe_url }}\n"
                            .into(),
                    ),
                    email_html: None,
                    sms_text: Some("{{ sender_name }}: PH em {{ student_names }} luu y: khong chia se mat khau, anh rieng tu cua con tren mang. Tro chuyen cung con khi con gap dieu la tren mang.".into()),
                    zalo_text: Some("Kính gửi phụ huynh em {{ student_names }} (lớp {{ class_name }}): không chia sẻ mật khẩu, ảnh riêng tư của con trên mạng; hãy trò chuyện cùng con khi con gặp điều lạ trên mạng. — {{ sender_name }}".into()),
                    messenger_text: None,
                    zns: None,
                    zalo_transaction: None,
                },
            },
            Some(teacher.user_id),
            now_ms(),
        )
        .await?;
    let directive = store
        .create_template(
            &NewTemplate {
                org_id: seeded.phong,
                name: "Chỉ thị về Luật An ninh mạng".into(),
                bodies: TemplateBodies {
                    email_subject: Some("[{{ sender_name }}] Triển khai Luật An ninh mạng trong trường học".into()),
                    email_text: Some(
                        "Kính gửi thầy/cô {{ recipient_name }} ({{ school_name }}),\n\n\
                         {{ sender_name }} đề nghị các trường phổ biến Luật An ninh mạng tới toàn thể cán bộ, giáo viên \
                         và báo cáo kết quả trước ngày 10/12.\n\nTrân trọng.\n"
                            .into(),
                    ),
                    sms_text: Some("{{ sender_name }}: De nghi thay/co {{ given_name }} xem email ve trien khai Luat An ninh mang, bao cao truoc 10/12.".into()),
                    ..Default::default()
                },
            },
            Some(officer.user_id),
            now_ms(),
        )
        .await?;
    let defs = [
        (
            (&teacher, &principal),
            school,
            "Mẹo an toàn trên mạng tuần 1 - phụ huynh Trường TH Mỹ Phú",
            tip.id,
            school,
            vec![Role::Parent],
            vec![Channel::Zalo, Channel::Sms, Channel::Email],
        ),
        (
            (&officer, &head),
            seeded.phong,
            "Chỉ thị về Luật An ninh mạng - cán bộ các trường",
            directive.id,
            seeded.phong,
            vec![Role::Staff],
            vec![Channel::Email, Channel::Sms],
        ),
    ];
    // A viewer, and a second week's tip left waiting for the principal's approval, so that whoever
    // opens the pages finds something to approve.
    let viewer = approval::tool_user(
        store,
        Some(school),
        "xem.thmp",
        "Nguyễn Văn Xem",
        &[UserRole::Viewer],
    )
    .await?;
    for u in [&teacher, &principal, &officer, &head, &viewer] {
        set_demo_password(store, u.user_id).await?;
    }
    let waiting = NewCampaign {
        org_id: school,
        name: "Mẹo an toàn trên mạng tuần 2 - phụ huynh Trường TH Mỹ Phú".into(),
        template_id: tip.id,
        audience: Audience {
            org_id: school,
            roles: vec![Role::Parent],
            class_ids: vec![],
        },
        channels: vec![Channel::Zalo, Channel::Sms, Channel::Email],
        ..Default::default()
    }
    .validate()
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let waiting = store
        .create_campaign(&waiting, Some(teacher.user_id), now_ms())
        .await?;
    approval::submit(store, &teacher, waiting.id)
        .await
        .map_err(|e| anyhow::anyhow!("campaign {}: {e}", waiting.id))?;
    let mut out = Vec::new();
    for ((author, approver), org_id, name, template_id, audience_org, roles, channels) in defs {
        let c = NewCampaign {
            org_id,
            name: name.into(),
            template_id,
            audience: Audience {
                org_id: audience_org,
                roles,
                class_ids: vec![],
            },
            channels,
            messenger_tag: None,
            send_at: None,
            ..Default::default()
        }
        .validate()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        out.push(DemoCampaign {
            id: store
                .create_campaign(&c, Some(author.user_id), now_ms())
                .await?
                .id,
            name: name.to_string(),
            author: author.clone(),
            approver: approver.clone(),
        });
    }
    Ok(out)
}

/// The password of every demo user, printed by the demo: the demo is for trying Loa on one's own
/// machine, never for real data.
pub const DEMO_PASSWORD: &str = "loa-demo-2026";

async fn set_demo_password(store: &dyn Store, user_id: i64) -> anyhow::Result<()> {
    let hash = crate::auth::hash_password(DEMO_PASSWORD)?;
    store.set_password(user_id, &hash).await?;
    Ok(())
}

fn clean(dir: &Path) -> anyhow::Result<()> {
    for f in ["loa.db", "loa.db-wal", "loa.db-shm"] {
        let p = dir.join(f);
        if p.exists() {
            std::fs::remove_file(&p)?;
        }
    }
    let outbox = dir.join("outbox");
    if outbox.exists() {
        std::fs::remove_dir_all(&outbox)?;
    }
    Ok(())
}

pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.dir)?;
    clean(&opts.dir)?;
    let mut cfg = Config::embedded();
    cfg.database.url = format!("sqlite://{}", opts.dir.join("loa.db").display());
    cfg.server.listen = opts.listen;
    // 8% of Zalo ids are refused by the sink, so the demo shows people falling back to SMS.
    cfg.use_sinks(&opts.dir.join("outbox"), 80);
    // The demo shows sending now, whatever the hour; a real daemon holds phone channels 21:00-07:00.
    cfg.schedule.quiet_hours = String::new();
    let started = Instant::now();
    let app = App::build(&cfg).await?;
    let store = app.state.store.clone();
    let seeded = seed(store.as_ref()).await?;
    println!(
        "Loa demo: {} contacts in {} schools of Phòng GD&ĐT Thủ Thừa ({:.1} s)",
        seeded.contacts,
        seeded.schools.len(),
        started.elapsed().as_secs_f64()
    );
    let ids = campaigns(store.as_ref(), &seeded).await?;
    let state = app.state.clone();
    let sinks = app.state.registry.sink_locations.clone();
    let base = app.base_url();
    let shutdown = CancellationToken::new();
    let running = app.spawn(shutdown.clone());
    for c in &ids {
        approval::sign_off_and_start(
            store.as_ref(),
            &state.scheduler_wake,
            &c.author,
            &c.approver,
            c.id,
        )
        .await
        .map_err(|e| anyhow::anyhow!("campaign {}: {e}", c.id))?;
    }
    // An operator token, so whoever runs the demo can explore the API afterwards.
    let ops = approval::tool_user(
        store.as_ref(),
        None,
        "admin",
        "Quản trị hệ thống",
        &UserRole::ALL,
    )
    .await?;
    set_demo_password(store.as_ref(), ops.user_id).await?;
    let (_, token) = crate::api::users::create_token(store.as_ref(), ops.user_id, "demo").await?;
    let campaign_ids: Vec<i64> = ids.iter().map(|c| c.id).collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut all_final = false;
    while Instant::now() < deadline {
        let mut done = true;
        for id in &campaign_ids {
            let c = store.get_campaign(*id).await?;
            done &= c.state == crate::domain::campaign::CampaignState::Done;
        }
        if done && store.unsettled_count(&campaign_ids).await? == 0 {
            all_final = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for c in &ids {
        let rows = store.summary_by_org(&[c.id]).await?;
        print!(
            "{}",
            report::render_table(
                &format!(
                    "Chiến dịch #{}: {} (soạn: {}, duyệt: {})",
                    c.id, c.name, c.author.username, c.approver.username
                ),
                &report::by_org(&rows)
            )
        );
    }
    println!("\nMessages written by the local sinks:");
    for (c, p) in &sinks {
        println!("  {c:<9} {}", p.display());
    }
    println!(
        "Finished in {:.1} s. API: {base}/api/v1, operator token (shown once): {token}\n\
         e.g. curl -H 'Authorization: Bearer {token}' {base}/api/v1/campaigns/{}/progress",
        started.elapsed().as_secs_f64(),
        campaign_ids[0]
    );
    if !all_final {
        shutdown.cancel();
        running.join().await?;
        anyhow::bail!("some deliveries did not reach a final state within 5 minutes");
    }
    println!(
        "Web pages: {base}/ — log in with password {DEMO_PASSWORD} as giaovien.thmp (teacher, writes), \
         hieutruong.thmp (principal, approves: one campaign waits), xem.thmp (viewer), \
         chuyenvien.pgd / truongphong.pgd (Phòng officer / head) or admin (operator)"
    );
    if !opts.exit_when_done {
        println!("Serving the HTTP API and the web pages until Ctrl-C.");
        crate::app::shutdown_signal().await;
    }
    shutdown.cancel();
    running.join().await
}
