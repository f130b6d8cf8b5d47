//! The staff pages in a real headless Chromium (Debian's chromium and chromium-driver through
//! WebDriver): a teacher submits, the principal reviews the reach and approves, the campaign runs to
//! the end on the local sinks and its page shows it; a viewer meets the 403 page; a forged form is
//! refused; a Phòng officer sees progress per school. Every step leaves screenshots, desktop and
//! phone-sized, under target/screenshots/ for a person to look at.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use loa::domain::access::UserRole;
use serde_json::json;

mod common;
use common::{peers, spawn_app, web_user};

const PASSWORD: &str = common::WEB_PASSWORD;

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh browser (its own cookies) on the WebDriver at `driver`.
async fn browser(driver: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium",
               "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--window-size=1280,900", "--lang=vi"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a Chromium session")
}

/// Saves what the page looks like on a desktop and on a phone (390 x 844, a common Android size).
async fn shoot(b: &Client, name: &str) {
    let dir = screenshots();
    b.set_window_size(1280, 900).await.unwrap();
    std::fs::write(
        dir.join(format!("{name}-desktop.png")),
        b.screenshot().await.unwrap(),
    )
    .unwrap();
    b.set_window_size(390, 844).await.unwrap();
    std::fs::write(
        dir.join(format!("{name}-phone.png")),
        b.screenshot().await.unwrap(),
    )
    .unwrap();
    b.set_window_size(1280, 900).await.unwrap();
}

async fn login(b: &Client, base: &str, path: &str, username: &str) {
    b.goto(&format!("{base}{path}")).await.unwrap();
    // Sent to the login page first, then back to `path`.
    assert!(b.current_url().await.unwrap().path().starts_with("/login"));
    b.find(Locator::Css("#username"))
        .await
        .unwrap()
        .send_keys(username)
        .await
        .unwrap();
    b.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click_button(b, "Đăng nhập").await;
    assert_eq!(b.current_url().await.unwrap().path(), path);
}

/// Clicks what the locator finds (a button that submits a form, a link) and waits for the page it
/// leads to (a new document, fully loaded), so that what is read next is that page, not the one
/// being left.
async fn click_and_wait(b: &Client, what: Locator<'_>, label: &str) {
    b.execute("window.__loaOld = true;", vec![]).await.unwrap();
    b.find(what)
        .await
        .unwrap_or_else(|e| panic!("nothing to click for {label:?}: {e}"))
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let loaded = b
            .execute(
                "return window.__loaOld !== true && document.readyState === 'complete';",
                vec![],
            )
            .await
            .map(|v| v == serde_json::Value::Bool(true))
            .unwrap_or(false);
        if loaded {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{label:?} led to no new page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click_button(b: &Client, label: &str) {
    let xpath = format!("//button[normalize-space()='{label}']");
    click_and_wait(b, Locator::XPath(&xpath), label).await;
}

async fn text(b: &Client) -> String {
    b.find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn staff_work_through_the_pages_in_a_real_browser() {
    if !peers::have_chromium() {
        return;
    }
    let (_driver, driver) = peers::chromedriver();
    let app = spawn_app(|_, _| {}).await;
    let base = app.base.clone();
    let t = common::tree(&app).await;
    common::parents_with_children(&app, &t, 4).await;
    web_user(&app, Some(t.school), "gv.lan", &[UserRole::Author]).await;
    web_user(&app, Some(t.school), "ht.minh", &[UserRole::Approver]).await;
    web_user(&app, Some(t.school), "xem.hoa", &[UserRole::Viewer]).await;
    web_user(&app, Some(t.district), "cv.pgd", &[UserRole::Viewer]).await;

    // The school's secretary (its admin) imports a class list with two bad rows: the dry run names
    // each bad cell, the confirmation imports the rest.
    web_user(&app, Some(t.school), "vt.thu", &[UserRole::Admin]).await;
    let roster = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    std::fs::write(
        roster.path(),
        "full_name,student_code,class,parent_name,parent_phone,parent_email\n\
         Nguyễn Văn An,HS101,1A,Nguyễn Văn Ba,0912000101,\n\
         Trần Thị Bình,HS102,1A,Trần Văn Bốn,09-12,\n\
         ,HS103,1A,Lê Văn Chín,0912000103,\n",
    )
    .unwrap();
    let secretary = browser(&driver).await;
    login(&secretary, &base, "/import", "vt.thu").await;
    secretary
        .find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(roster.path().to_str().unwrap())
        .await
        .unwrap();
    click_button(&secretary, "Chạy thử").await;
    let dry = text(&secretary).await;
    assert!(
        dry.contains("Kết quả chạy thử") && dry.contains("A4") && dry.contains("parent_phone"),
        "{dry}"
    );
    shoot(&secretary, "0-import-dry-run").await;
    click_button(&secretary, "Nhập chính thức 2 dòng").await;
    let done = text(&secretary).await;
    assert!(done.contains("Đã nhập xong"), "{done}");
    secretary.close().await.unwrap();

    // The teacher writes a template (the SMS counter shows parts and encoding as she types), builds
    // the campaign, reads the preview and submits.
    let teacher = browser(&driver).await;
    login(&teacher, &base, "/templates/new", "gv.lan").await;
    let fill = |id: &'static str, v: &'static str| {
        let teacher = &teacher;
        async move {
            teacher
                .find(Locator::Css(id))
                .await
                .unwrap()
                .send_keys(v)
                .await
                .unwrap();
        }
    };
    fill("#name", "Mẹo an toàn tuần 2").await;
    fill(
        "#zalo_text",
        "Kính gửi phụ huynh em {{ student_names }}: không chia sẻ mật khẩu của con.",
    )
    .await;
    fill(
        "#sms_text",
        "PH em {{ student_names }}: khong chia se mat khau cua con.",
    )
    .await;
    let counter = teacher
        .find(Locator::Css("#sms_info"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        counter.contains("1 tin") && counter.contains("GSM-7"),
        "{counter}"
    );
    shoot(&teacher, "1-teacher-template").await;
    click_button(&teacher, "Lưu mẫu tin").await;
    assert_eq!(
        teacher.current_url().await.unwrap().path(),
        "/campaigns/new"
    );
    fill("#name", "Tuần 2 - phụ huynh lớp 1A").await;
    teacher
        .find(Locator::XPath(
            "//select[@id='template_id']/option[normalize-space()='Mẹo an toàn tuần 2']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    teacher
        .find(Locator::XPath(
            "//select[@id='channel_3']/option[@value='']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shoot(&teacher, "2-teacher-campaign-form").await;
    click_button(&teacher, "Tạo bản nháp và xem trước").await;
    let url = teacher.current_url().await.unwrap();
    let c: i64 = url
        .path()
        .trim_start_matches("/campaigns/")
        .parse()
        .expect("the new campaign's page");
    let page = text(&teacher).await;
    assert!(
        page.contains("Xem trước phạm vi gửi") && page.contains("Zalo OA → SMS"),
        "{page}"
    );
    shoot(&teacher, "3-teacher-campaign-draft").await;
    click_button(&teacher, "Trình duyệt").await;
    assert!(text(&teacher).await.contains("Đã trình duyệt"));
    teacher.close().await.unwrap();

    // The principal finds it in the queue, sees the reach, approves and starts it.
    let principal = browser(&driver).await;
    login(&principal, &base, "/approvals", "ht.minh").await;
    shoot(&principal, "4-principal-approval-queue").await;
    click_and_wait(
        &principal,
        Locator::LinkText("Tuần 2 - phụ huynh lớp 1A"),
        "the campaign in the queue",
    )
    .await;
    let page = text(&principal).await;
    assert!(
        page.contains("Xem trước phạm vi gửi") && page.contains("6 người nhận"),
        "{page}"
    );
    shoot(&principal, "5-principal-preview").await;

    // A forged form (its CSRF token replaced) is refused and changes nothing.
    principal
        .execute(
            "document.querySelectorAll('input[name=_csrf]').forEach(function (i) { i.value = 'loa_forged'; });",
            vec![],
        )
        .await
        .unwrap();
    click_button(&principal, "Phê duyệt").await;
    let refused = text(&principal).await;
    assert!(refused.contains("mã chống giả mạo"), "{refused}");
    shoot(&principal, "6-forged-form-refused").await;
    let (_, v) = app.get(&format!("/api/v1/campaigns/{c}")).await;
    assert_eq!(v["state"], "submitted");

    principal
        .goto(&format!("{base}/campaigns/{c}"))
        .await
        .unwrap();
    click_button(&principal, "Phê duyệt").await;
    assert!(text(&principal).await.contains("Đã phê duyệt"));
    click_button(&principal, "Bắt đầu gửi").await;
    app.wait_done(c).await;
    principal
        .goto(&format!("{base}/campaigns/{c}"))
        .await
        .unwrap();
    let done = text(&principal).await;
    assert!(done.contains("đã gửi xong"), "{done}");
    assert!(done.contains("6 người trong đợt gửi"), "{done}");
    shoot(&principal, "7-campaign-done").await;
    principal.close().await.unwrap();

    // A viewer cannot reach the approvers' queue, nor act.
    let viewer = browser(&driver).await;
    login(&viewer, &base, "/", "xem.hoa").await;
    let home = text(&viewer).await;
    assert!(home.contains("Trường Tiểu học Mỹ Phú"), "{home}");
    assert!(
        viewer
            .find(Locator::Css("a[href='/approvals']"))
            .await
            .is_err(),
        "a viewer's menu has no approval queue"
    );
    viewer.goto(&format!("{base}/approvals")).await.unwrap();
    let denied = text(&viewer).await;
    assert!(denied.contains("Không có quyền truy cập"), "{denied}");
    shoot(&viewer, "8-viewer-403").await;
    viewer.goto(&format!("{base}/campaigns/{c}")).await.unwrap();
    assert!(
        viewer
            .find(Locator::XPath(
                "//button[normalize-space()='Huỷ chiến dịch']"
            ))
            .await
            .is_err(),
        "a viewer is offered no action"
    );
    viewer.close().await.unwrap();

    // The Phòng officer: a directive to the staff of two schools, progress per school.
    let other = app
        .org(
            Some(t.district),
            "school",
            "TH2",
            "Trường Tiểu học Bình Thạnh",
        )
        .await;
    for (i, school) in [t.school, other].into_iter().enumerate() {
        app.contact(
            json!({"org_id": school, "role": "staff", "full_name": format!("Cô giáo {i}"),
                           "phone": format!("09130000{i:02}")}),
        )
        .await;
    }
    let dtpl = common::template(&app, t.district).await;
    let d = common::campaign(&app, t.district, dtpl, &["staff"], &["sms"]).await;
    app.start(d).await;
    app.wait_done(d).await;
    let officer = browser(&driver).await;
    login(&officer, &base, &format!("/campaigns/{d}"), "cv.pgd").await;
    let page = text(&officer).await;
    assert!(
        page.contains("Theo trường")
            && page.contains("Trường Tiểu học Mỹ Phú")
            && page.contains("Trường Tiểu học Bình Thạnh"),
        "{page}"
    );
    shoot(&officer, "9-phong-per-school").await;
    // People: the tree down to the class.
    officer
        .goto(&format!("{base}/people?org={}", t.class_a))
        .await
        .unwrap();
    assert!(text(&officer).await.contains("Phụ huynh"));
    shoot(&officer, "10-people-class").await;
    officer.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    app.stop().await;
}
