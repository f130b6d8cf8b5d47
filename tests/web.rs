//! The staff pages over HTTP, as a browser without JavaScript uses them: login with a password and
//! its throttle, the session cookie's flags, CSRF on every form, roles and scope as in the API,
//! password changes ending other sessions. (The same in a real browser: tests/browser.rs.)

use loa::domain::access::UserRole;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

mod common;
use common::{TestApp, spawn_app, web_user};

const PASSWORD: &str = common::WEB_PASSWORD;

/// A browser without JavaScript: follows no redirect by itself, keeps the session cookie.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            base: app.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> (StatusCode, String, String) {
        let req = match &self.cookie {
            Some(c) => req.header(COOKIE, c.clone()),
            None => req,
        };
        let r = req.send().await.unwrap();
        for v in r.headers().get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap().to_string();
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        let status = r.status();
        let location = r
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, location, r.text().await.unwrap())
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, String) {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, String) {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    async fn upload(
        &mut self,
        path: &str,
        form: reqwest::multipart::Form,
    ) -> (StatusCode, String, String) {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .multipart(form);
        self.send(req).await
    }

    async fn login(&mut self, username: &str, password: &str) -> (StatusCode, String, String) {
        self.post(
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("next", "/"),
            ],
        )
        .await
    }

    /// The CSRF token the page at `path` puts in its forms.
    async fn csrf(&mut self, path: &str) -> String {
        let (s, _, html) = self.get(path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {html}");
        let at = html
            .find("name=\"_csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &html[at + 20..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

#[tokio::test]
async fn login_sets_a_safe_cookie_and_failed_logins_are_throttled() {
    let app =
        spawn_app(|cfg, _| cfg.server.public_url = Some("https://loa.example.vn".into())).await;
    let t = common::tree(&app).await;
    web_user(&app, Some(t.school), "gv.a", &[UserRole::Author]).await;
    web_user(&app, Some(t.school), "gv.b", &[UserRole::Author]).await;
    let mut b = Browser::new(&app);
    // Not logged in: to the login page, then back where they were.
    let (s, to, _) = b.get("/campaigns/1").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(to, "/login?next=%2Fcampaigns%2F1");
    let (s, _, html) = b.get("/login?next=%2Fcampaigns%2F1").await;
    assert_eq!(s, StatusCode::OK);
    // minijinja escapes "/" in attributes as &#x2f;.
    assert!(
        html.contains("Đăng nhập") && html.contains("value=\"&#x2f;campaigns&#x2f;1\""),
        "{html}"
    );

    // Five wrong passwords, then the right one is refused too, with a time to come back.
    for _ in 0..5 {
        let (s, _, html) = b.login("gv.a", "sai mật khẩu").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(html.contains("Tên đăng nhập hoặc mật khẩu không đúng"));
    }
    let (s, _, html) = b.login("gv.a", PASSWORD).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{html}");
    assert!(html.contains("Đăng nhập sai quá nhiều lần"), "{html}");
    assert!(b.cookie.is_none());
    // An unknown user is answered like a wrong password (and counted the same).
    let (s, _, _) = b.login("khong.co", PASSWORD).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A login posted from another site is refused (no session yet, so no CSRF token: the Origin).
    let r = reqwest::Client::new()
        .post(format!("{}/login", app.base))
        .header("origin", "https://evil.example")
        .form(&[("username", "gv.b"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Pages are not cached, not framed, and run only Loa's own scripts.
    let r = reqwest::Client::new()
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    // Another account from the same address still logs in; the cookie is HttpOnly, SameSite and,
    // behind https, Secure.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", app.base))
        .form(&[
            ("username", "gv.b"),
            ("password", PASSWORD),
            ("next", "//evil.example/x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Never sent off to another site after logging in.
    assert_eq!(r.headers()[LOCATION], "/");
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    app.stop().await;
}

async fn campaign_state(app: &TestApp, c: i64) -> String {
    let (_, v) = app.get(&format!("/api/v1/campaigns/{c}")).await;
    v["state"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn forms_need_their_csrf_token_and_roles_and_scope_are_the_apis() {
    let app = spawn_app(|_, _| {}).await;
    let t = common::tree(&app).await;
    common::parents_with_children(&app, &t, 3).await;
    let other = app
        .org(Some(t.district), "school", "TH2", "Trường khác")
        .await;
    web_user(&app, Some(t.school), "gv", &[UserRole::Author]).await;
    web_user(&app, Some(t.school), "ht", &[UserRole::Approver]).await;
    web_user(&app, Some(t.school), "xem", &[UserRole::Viewer]).await;
    web_user(&app, Some(other), "ht.khac", &[UserRole::Approver]).await;
    let tpl = common::template(&app, t.school).await;
    let c = common::campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;

    // The author submits from the campaign's page.
    let mut author = Browser::new(&app);
    assert_eq!(author.login("gv", PASSWORD).await.0, StatusCode::SEE_OTHER);
    let (s, _, home) = author.get("/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        home.contains("Trường Tiểu học Mỹ Phú") && home.contains("Tuần 1"),
        "{home}"
    );
    let token = author.csrf(&format!("/campaigns/{c}")).await;
    // Without its token, or with another's, nothing happens.
    let (s, _, html) = author.post(&format!("/campaigns/{c}/submit"), &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(html.contains("mã chống giả mạo"), "{html}");
    let (s, _, _) = author
        .post(
            &format!("/campaigns/{c}/submit"),
            &[("_csrf", "loa_forged")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(campaign_state(&app, c).await, "draft");
    let (s, to, _) = author
        .post(&format!("/campaigns/{c}/submit"), &[("_csrf", &token)])
        .await;
    assert_eq!(
        (s, to.as_str()),
        (
            StatusCode::SEE_OTHER,
            &*format!("/campaigns/{c}?done=submit")
        )
    );
    assert_eq!(campaign_state(&app, c).await, "submitted");
    // An author cannot approve, even with a valid token: the API's 403, as a page.
    let (s, _, html) = author
        .post(&format!("/campaigns/{c}/approve"), &[("_csrf", &token)])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(html.contains("Không có quyền"), "{html}");

    // A viewer reads the campaign but has no approval queue and cannot act.
    let mut viewer = Browser::new(&app);
    viewer.login("xem", PASSWORD).await;
    assert_eq!(viewer.get("/approvals").await.0, StatusCode::FORBIDDEN);
    let vt = viewer.csrf(&format!("/campaigns/{c}")).await;
    for action in ["approve", "start", "cancel", "pause"] {
        let (s, _, _) = viewer
            .post(&format!("/campaigns/{c}/{action}"), &[("_csrf", &vt)])
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{action}");
    }
    // An approver of another school does not even see it.
    let mut stranger = Browser::new(&app);
    stranger.login("ht.khac", PASSWORD).await;
    assert_eq!(
        stranger.get(&format!("/campaigns/{c}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, _, queue) = stranger.get("/approvals").await;
    assert!(!queue.contains(&format!("/campaigns/{c}\"")));
    assert_eq!(
        stranger.get(&format!("/people?org={}", t.school)).await.0,
        StatusCode::NOT_FOUND
    );

    // The principal finds it in the queue, sees the reach, rejects with a reason the author reads.
    let mut principal = Browser::new(&app);
    principal.login("ht", PASSWORD).await;
    let (_, _, queue) = principal.get("/approvals").await;
    assert!(queue.contains(&format!("/campaigns/{c}\"")), "{queue}");
    let (_, _, page) = principal.get(&format!("/campaigns/{c}")).await;
    assert!(
        page.contains("Xem trước phạm vi gửi") && page.contains("<b>3</b> người nhận"),
        "{page}"
    );
    let pt = principal.csrf(&format!("/campaigns/{c}")).await;
    let (s, _, _) = principal
        .post(
            &format!("/campaigns/{c}/reject"),
            &[("_csrf", &pt), ("reason", "")],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _, _) = principal
        .post(
            &format!("/campaigns/{c}/reject"),
            &[("_csrf", &pt), ("reason", "Sửa lại lời chào")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, page) = author.get(&format!("/campaigns/{c}")).await;
    assert!(page.contains("Sửa lại lời chào"), "{page}");

    // Submitted again, approved and started from the pages, it runs to the end and shows it.
    author
        .post(&format!("/campaigns/{c}/submit"), &[("_csrf", &token)])
        .await;
    let (s, _, _) = principal
        .post(&format!("/campaigns/{c}/approve"), &[("_csrf", &pt)])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, _) = principal
        .post(&format!("/campaigns/{c}/start"), &[("_csrf", &pt)])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    app.wait_done(c).await;
    let (_, _, progress) = viewer.get(&format!("/campaigns/{c}/progress")).await;
    assert!(
        progress.contains("<b>3</b> người trong đợt gửi"),
        "{progress}"
    );
    assert!(progress.contains("Đã nhận: 3"), "{progress}");

    // People: the class's contacts, masked for a non-admin.
    let (s, _, people) = viewer.get(&format!("/people?org={}", t.class_a)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(people.contains("Phụ huynh"), "{people}");
    assert!(
        !people.contains("0912000000") && !people.contains("+84912000000"),
        "{people}"
    );
    app.stop().await;
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_and_logout_ends_this_one() {
    let app = spawn_app(|_, _| {}).await;
    let t = common::tree(&app).await;
    web_user(&app, Some(t.school), "gv", &[UserRole::Author]).await;
    let mut here = Browser::new(&app);
    let mut there = Browser::new(&app);
    here.login("gv", PASSWORD).await;
    there.login("gv", PASSWORD).await;
    assert_eq!(there.get("/").await.0, StatusCode::OK);
    let token = here.csrf("/account/password").await;
    let new = "mật khẩu mới dài hơn";
    let (s, _, html) = here
        .post(
            "/account/password",
            &[
                ("_csrf", &token),
                ("current", "sai"),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{html}");
    let (s, _, _) = here
        .post(
            "/account/password",
            &[
                ("_csrf", &token),
                ("current", PASSWORD),
                ("new", "ngắn"),
                ("confirm", "ngắn"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _, html) = here
        .post(
            "/account/password",
            &[
                ("_csrf", &token),
                ("current", PASSWORD),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Đã đổi mật khẩu"));
    assert_eq!(here.get("/").await.0, StatusCode::OK);
    assert_eq!(there.get("/").await.0, StatusCode::SEE_OTHER);
    let mut again = Browser::new(&app);
    assert_eq!(
        again.login("gv", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(again.login("gv", new).await.0, StatusCode::SEE_OTHER);
    // Logging out ends the session in the store, not only the cookie.
    let kept = here.cookie.clone();
    let (s, to, _) = here.post("/logout", &[("_csrf", &token)]).await;
    assert_eq!((s, to.as_str()), (StatusCode::SEE_OTHER, "/login?bye=1"));
    here.cookie = kept;
    assert_eq!(here.get("/").await.0, StatusCode::SEE_OTHER);
    // Both audited.
    let (_, audit) = app.get("/api/v1/audit").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        actions.contains(&"user.login") && actions.contains(&"user.password_change"),
        "{audit}"
    );
    let _ = json!({});
    app.stop().await;
}

#[tokio::test]
async fn a_roster_is_dry_run_on_the_import_page_then_confirmed_and_bad_cells_are_named() {
    let app = spawn_app(|_, _| {}).await;
    let t = common::tree(&app).await;
    web_user(&app, Some(t.school), "admin.th", &[UserRole::Admin]).await;
    web_user(&app, Some(t.school), "gv", &[UserRole::Author]).await;
    let csv = "full_name,student_code,class,parent_name,parent_phone,parent_email\n\
               An,HS1,1A,Ba An,0912000001,\n\
               Binh,HS2,1A,Me Binh,09-12,\n\
               ,HS3,1A,Ba Chi,0912000003,\n";
    let form = |csrf: &str| {
        reqwest::multipart::Form::new()
            .text("_csrf", csrf.to_string())
            .text("org_id", t.school.to_string())
            .text("kind", "roster")
            .part(
                "file",
                reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("lop-1a.csv"),
            )
    };
    // An author is not an admin: no import page, no upload.
    let mut author = Browser::new(&app);
    author.login("gv", PASSWORD).await;
    assert_eq!(author.get("/import").await.0, StatusCode::FORBIDDEN);
    let author_token = author.csrf("/account/password").await;
    assert_eq!(
        author.upload("/import", form(&author_token)).await.0,
        StatusCode::FORBIDDEN
    );

    let mut b = Browser::new(&app);
    b.login("admin.th", PASSWORD).await;
    let token = b.csrf("/import").await;
    // Without the form's token: refused, nothing read.
    assert_eq!(
        b.upload("/import", form("forged")).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, _, html) = b.upload("/import", form(&token)).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Kết quả chạy thử"), "{html}");
    // The bad cells, each named by line, column and cell.
    assert!(html.contains("<td data-label=\"Dòng\">4</td><td data-label=\"Cột\">full_name</td><td data-label=\"Ô\">A4</td>"), "{html}");
    assert!(
        html.contains("<td data-label=\"Dòng\">3</td><td data-label=\"Cột\">parent_phone</td>"),
        "{html}"
    );
    // A dry run writes nothing.
    let (_, v) = app
        .get(&format!("/api/v1/contacts?org_id={}", t.school))
        .await;
    assert_eq!(v["contacts"].as_array().unwrap().len(), 0, "{v}");
    let at = html.find("action=\"/import/").expect("a confirm form") + 16;
    let stash = html[at..at + html[at..].find("/confirm").unwrap()].to_string();
    // The error workbook of the upload.
    let r = reqwest::Client::new()
        .get(format!("{}/import/{stash}/errors.xlsx", app.base))
        .header(COOKIE, b.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("spreadsheetml")
    );
    assert!(r.bytes().await.unwrap().starts_with(b"PK"));
    // Somebody else's session cannot confirm it.
    assert_eq!(
        author
            .post(
                &format!("/import/{stash}/confirm"),
                &[("_csrf", &author_token)]
            )
            .await
            .0,
        StatusCode::GONE
    );
    let (s, _, html) = b
        .post(&format!("/import/{stash}/confirm"), &[("_csrf", &token)])
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("Đã nhập xong") && html.contains("đã nhập <b>2</b>"),
        "{html}"
    );
    let (_, v) = app
        .get(&format!("/api/v1/contacts?org_id={}", t.school))
        .await;
    assert_eq!(
        v["contacts"].as_array().unwrap().len(),
        4,
        "two students and two parents: {v}"
    );
    // Once imported, the stash is gone: a second confirmation imports nothing twice.
    let (s, _, _) = b
        .post(&format!("/import/{stash}/confirm"), &[("_csrf", &token)])
        .await;
    assert_eq!(s, StatusCode::GONE);
    // A file that is no roster is answered on the form, in Vietnamese.
    let junk = reqwest::multipart::Form::new()
        .text("_csrf", token.clone())
        .text("org_id", t.school.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"\x00\x01garbage".to_vec()).file_name("x.xlsx"),
        );
    let (s, _, html) = b.upload("/import", junk).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("Không nhập được tệp này"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn a_refused_template_or_campaign_comes_back_on_its_form_with_what_was_typed() {
    let app = spawn_app(|_, _| {}).await;
    let t = common::tree(&app).await;
    web_user(&app, Some(t.school), "gv", &[UserRole::Author]).await;
    let mut b = Browser::new(&app);
    b.login("gv", PASSWORD).await;
    let token = b.csrf("/templates/new").await;
    let school = t.school.to_string();
    // A template that does not compile: refused with the API's reason, the text kept.
    let (s, _, html) = b
        .post(
            "/templates/new",
            &[
                ("_csrf", &token),
                ("org_id", &school),
                ("name", "Mẫu hỏng"),
                ("sms_text", "PH em {{ student_names"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(
        html.contains("sms_text") && html.contains("PH em {{ student_names"),
        "{html}"
    );
    let (s, to, _) = b
        .post(
            "/templates/new",
            &[
                ("_csrf", &token),
                ("org_id", &school),
                ("name", "Mẫu tốt"),
                ("sms_text", "PH em {{ student_names }}"),
            ],
        )
        .await;
    assert_eq!(
        (s, to.as_str()),
        (StatusCode::SEE_OTHER, "/campaigns/new?template=created")
    );
    let (_, _, form) = b.get("/campaigns/new").await;
    assert!(form.contains("Mẫu tốt"), "{form}");
    let at = form.find(">Mẫu tốt<").unwrap();
    let value = &form[form[..at].rfind("value=\"").unwrap() + 7..];
    let tpl = value[..value.find('"').unwrap()].to_string();
    // Nobody to send to: refused, the name kept.
    let (s, _, html) = b
        .post(
            "/campaigns/new",
            &[
                ("_csrf", &token),
                ("org_id", &school),
                ("name", "Tuần 3 của lớp"),
                ("template_id", &tpl),
                ("channel_1", "sms"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("value=\"Tuần 3 của lớp\""), "{html}");
    let (s, to, _) = b
        .post(
            "/campaigns/new",
            &[
                ("_csrf", &token),
                ("org_id", &school),
                ("name", "Tuần 3 của lớp"),
                ("template_id", &tpl),
                ("role_parent", "1"),
                ("channel_1", "sms"),
                ("send_date", "2027-01-04"),
                ("send_time", "07:30"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let id: i64 = to.trim_start_matches("/campaigns/").parse().unwrap();
    let (_, c) = app.get(&format!("/api/v1/campaigns/{id}")).await;
    assert_eq!(c["state"], "draft");
    // 07:30 on 4 January 2027 in Hà Nội is 00:30 UTC.
    assert_eq!(c["send_at"], 1_799_022_600_000i64, "{c}");
    assert_eq!(c["channels"], serde_json::json!(["sms"]));
    app.stop().await;
}

/// Behind a trusted proxy failed logins count against the client's address (the proxy's last
/// X-Forwarded-For entry), not the proxy's; without the setting the header is ignored.
#[tokio::test]
async fn failed_logins_count_against_the_forwarded_address_only_behind_a_trusted_proxy() {
    use loa::domain::session::address_key;
    for trusted in [true, false] {
        let app = spawn_app(|cfg, _| cfg.web.trust_forwarded_for = trusted).await;
        let r = reqwest::Client::new()
            .post(format!("{}/login", app.base))
            .header("x-forwarded-for", "203.0.113.9, 198.51.100.7")
            .form(&[("username", "ai.do"), ("password", "sai")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let keys = vec![
            address_key("198.51.100.7"),
            address_key("127.0.0.1"),
            address_key("203.0.113.9"),
        ];
        let counted: Vec<String> = app
            .state
            .store
            .login_failures(&keys)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let expected = if trusted {
            "addr:198.51.100.7"
        } else {
            "addr:127.0.0.1"
        };
        assert_eq!(counted, vec![expected.to_string()], "trusted: {trusted}");
        app.stop().await;
    }
}

#[tokio::test]
async fn an_admin_resets_a_password_ends_sessions_and_makes_a_token_within_the_subtree() {
    let app = spawn_app(|_, _| {}).await;
    let t = common::tree(&app).await;
    let other = app
        .org(Some(t.district), "school", "TH2", "Trường khác")
        .await;
    web_user(&app, Some(t.school), "admin.th", &[UserRole::Admin]).await;
    let gv = web_user(&app, Some(t.school), "gv", &[UserRole::Author]).await;
    let far = web_user(&app, Some(other), "gv.khac", &[UserRole::Author]).await;
    let mut teacher = Browser::new(&app);
    teacher.login("gv", PASSWORD).await;
    let mut admin = Browser::new(&app);
    admin.login("admin.th", PASSWORD).await;
    let (s, _, list) = admin.get("/users").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert!(list.contains(">gv<") && !list.contains("gv.khac"), "{list}");
    let token = admin.csrf(&format!("/users/{gv}")).await;
    // Out of the subtree: as if it did not exist.
    assert_eq!(
        admin.get(&format!("/users/{far}")).await.0,
        StatusCode::NOT_FOUND
    );
    let new = "mật khẩu do quản trị đặt";
    assert_eq!(
        admin
            .post(
                &format!("/users/{far}/password"),
                &[("_csrf", &token), ("new", new), ("confirm", new)]
            )
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (s, to, _) = admin
        .post(
            &format!("/users/{gv}/password"),
            &[("_csrf", &token), ("new", new), ("confirm", new)],
        )
        .await;
    assert_eq!(
        (s, to),
        (StatusCode::SEE_OTHER, format!("/users/{gv}?done=password"))
    );
    // The teacher's session ended; the new password is the one that works.
    assert_eq!(teacher.get("/").await.0, StatusCode::SEE_OTHER);
    assert_eq!(
        teacher.login("gv", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(teacher.login("gv", new).await.0, StatusCode::SEE_OTHER);
    // A teacher manages nobody else.
    let tt = teacher.csrf("/account/password").await;
    assert_eq!(teacher.get("/users").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        teacher
            .post(&format!("/users/{far}/sessions"), &[("_csrf", &tt)])
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // Logging out every session of the teacher.
    let (s, _, _) = admin
        .post(&format!("/users/{gv}/sessions"), &[("_csrf", &token)])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(teacher.get("/").await.0, StatusCode::SEE_OTHER);
    // An API token, shown once, that works on the API.
    let (s, _, html) = admin
        .post(
            &format!("/users/{gv}/tokens"),
            &[("_csrf", &token), ("name", "phần mềm trường")],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{html}");
    let at = html.find("<code>loa_").expect("the token") + 6;
    let api_token = &html[at..at + 68];
    let (s, me) = app
        .call_as(api_token, reqwest::Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["username"], "gv");
    let (_, again, html) = admin.get(&format!("/users/{gv}")).await;
    assert!(
        again.is_empty() && !html.contains(api_token),
        "shown once only"
    );
    // Listed by name (never the token), and revoked from the page: the API refuses it at once.
    assert!(html.contains("phần mềm trường"), "{html}");
    let at = html.find("/tokens/").expect("a revoke form") + 8;
    let token_id = html[at..at + html[at..].find('/').unwrap()].to_string();
    let (s, to, _) = admin
        .post(
            &format!("/users/{gv}/tokens/{token_id}/revoke"),
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(
        (s, to),
        (StatusCode::SEE_OTHER, format!("/users/{gv}?done=revoked"))
    );
    let (s, _) = app
        .call_as(api_token, reqwest::Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, _, html) = admin.get(&format!("/users/{gv}")).await;
    assert!(!html.contains("phần mềm trường"), "{html}");
    // What the admin did is in the audit log, filtered by the action's start; not for a teacher.
    let (s, _, log) = admin.get("/audit?action=user.password").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        log.contains("user.password_set") && !log.contains("token.create"),
        "{log}"
    );
    let (_, _, log) = admin.get("/audit?user=admin.th").await;
    assert!(
        log.contains("token.create") && log.contains("user.sessions_end"),
        "{log}"
    );
    teacher.login("gv", new).await;
    assert_eq!(teacher.get("/audit").await.0, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn the_people_not_reached_are_listed_with_their_reason_and_downloadable_as_text_cells() {
    use calamine::Reader;
    let app = spawn_app(|_, _| {}).await;
    let t = common::tree(&app).await;
    common::parents_with_children(&app, &t, 2).await;
    // A name that Excel would run as a formula if it were written as one.
    let s = app
        .contact(json!({"org_id": t.class_a, "role": "student", "full_name": "Em Ba", "student_code": "HS9"}))
        .await;
    let p = app
        .contact(json!({"org_id": t.school, "role": "parent", "full_name": "=HYPERLINK(\"http://x\")", "phone": "0912999999"}))
        .await;
    app.link(p, s).await;
    web_user(&app, Some(t.school), "xem", &[UserRole::Viewer]).await;
    let tpl = common::template(&app, t.school).await;
    // Nobody has a Zalo id: every parent fails with no address.
    let c = common::campaign(&app, t.school, tpl, &["parent"], &["zalo"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    let mut b = Browser::new(&app);
    b.login("xem", PASSWORD).await;
    let (s, _, html) = b.get(&format!("/campaigns/{c}/failures")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        html.matches("không có địa chỉ liên lạc cho kênh nào")
            .count(),
        3,
        "{html}"
    );
    assert!(
        html.contains("Phụ Huynh 1") && html.contains("=HYPERLINK(&quot;"),
        "{html}"
    );
    let (_, _, skipped) = b
        .get(&format!("/campaigns/{c}/failures?state=skipped"))
        .await;
    assert!(skipped.contains("Không có ai"), "{skipped}");
    let r = reqwest::Client::new()
        .get(format!(
            "{}/campaigns/{c}/failures.xlsx?state=failed",
            app.base
        ))
        .header(COOKIE, b.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap().to_vec();
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let sheet = book.worksheet_range("Chưa nhận được tin").unwrap();
    let names: Vec<String> = sheet.rows().skip(3).map(|r| r[0].to_string()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names.contains(&"=HYPERLINK(\"http://x\")".to_string()),
        "{names:?}"
    );
    let formulas = book.worksheet_formula("Chưa nhận được tin").unwrap();
    assert!(
        formulas.used_cells().all(|(_, _, f)| f.is_empty()),
        "no cell is a formula"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_admin_sees_a_persons_page_and_erases_them_only_after_confirming() {
    let app = spawn_app(|_, _| {}).await;
    let t = common::tree(&app).await;
    let parents = common::parents_with_children(&app, &t, 2).await;
    web_user(&app, Some(t.school), "admin.th", &[UserRole::Admin]).await;
    web_user(&app, Some(t.school), "xem", &[UserRole::Viewer]).await;
    let tpl = common::template(&app, t.school).await;
    let c = common::campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.start(c).await;
    app.wait_done(c).await;
    let p = parents[0];
    let mut viewer = Browser::new(&app);
    viewer.login("xem", PASSWORD).await;
    assert_eq!(
        viewer.get(&format!("/people/{p}")).await.0,
        StatusCode::FORBIDDEN
    );
    let mut b = Browser::new(&app);
    b.login("admin.th", PASSWORD).await;
    let (s, _, html) = b.get(&format!("/people/{p}")).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    // In full for an admin; the child; the campaign's message and how it ended.
    assert!(
        html.contains("+84912000000") && html.contains("Học Sinh 0"),
        "{html}"
    );
    assert!(
        html.contains(&format!("/campaigns/{c}\"")) && html.contains("Đã nhận"),
        "{html}"
    );
    let token = b.csrf(&format!("/people/{p}")).await;
    let (s, _, _) = b
        .post(&format!("/people/{p}/erase"), &[("_csrf", &token)])
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v) = app.get(&format!("/api/v1/contacts/{p}")).await;
    assert_eq!(
        v["full_name"], "Phụ Huynh 0",
        "not erased without the confirmation"
    );
    let (s, to, _) = b
        .post(
            &format!("/people/{p}/erase"),
            &[("_csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(to.starts_with("/people?org="), "{to}");
    let (_, v) = app.get(&format!("/api/v1/contacts/{p}")).await;
    assert_ne!(v["full_name"], "Phụ Huynh 0", "{v}");
    assert!(v["phone"].is_null(), "{v}");
    app.stop().await;
}

#[tokio::test]
async fn a_paused_channel_is_shown_and_skipped_from_the_campaign_page() {
    let app = spawn_app(|_, _| {}).await;
    let t = common::tree(&app).await;
    web_user(&app, Some(t.school), "ht", &[UserRole::Approver]).await;
    web_user(&app, Some(t.school), "xem", &[UserRole::Viewer]).await;
    let tpl = common::template(&app, t.school).await;
    let c = common::campaign(&app, t.school, tpl, &["parent"], &["sms", "email"]).await;
    // What a provider's "no balance" does (tests/channels.rs drives it through the eSMS double).
    assert!(
        app.state
            .store
            .pause_channel(c, loa::domain::Channel::Sms, "no_balance", 1)
            .await
            .unwrap()
    );
    let mut viewer = Browser::new(&app);
    viewer.login("xem", PASSWORD).await;
    let (_, _, page) = viewer.get(&format!("/campaigns/{c}")).await;
    assert!(page.contains("Tạm dừng:"), "{page}");
    assert!(
        !page.contains("Bỏ qua, chuyển kênh sau"),
        "a viewer gets no button: {page}"
    );
    let mut b = Browser::new(&app);
    b.login("ht", PASSWORD).await;
    let (_, _, page) = b.get(&format!("/campaigns/{c}")).await;
    assert!(page.contains("Bỏ qua, chuyển kênh sau"), "{page}");
    let token = b.csrf(&format!("/campaigns/{c}")).await;
    let (s, to, _) = b
        .post(
            &format!("/campaigns/{c}/channels/sms/skip"),
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(
        (s, to),
        (
            StatusCode::SEE_OTHER,
            format!("/campaigns/{c}?done=channel_skip")
        )
    );
    let (_, p) = app.get(&format!("/api/v1/campaigns/{c}/progress")).await;
    assert_eq!(p["progress"]["paused"][0]["skipped"], true, "{p}");
    // Twice is the API's 409, as a page.
    let (s, _, _) = b
        .post(
            &format!("/campaigns/{c}/channels/sms/skip"),
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn library_content_published_above_is_found_by_topic_and_copied_into_a_campaign() {
    let app = spawn_app(|_, _| {}).await;
    let t = common::tree(&app).await;
    web_user(&app, Some(t.district), "pgd.duyet", &[UserRole::Approver]).await;
    web_user(&app, Some(t.school), "gv", &[UserRole::Author]).await;
    let tpl = common::template(&app, t.district).await;
    let mut officer = Browser::new(&app);
    officer.login("pgd.duyet", PASSWORD).await;
    let (_, _, page) = officer.get("/library").await;
    assert!(page.contains("Đưa vào thư viện dùng chung"), "{page}");
    let token = officer.csrf("/library").await;
    let (s, to, _) = officer
        .post(
            &format!("/library/{tpl}/publish"),
            &[
                ("_csrf", &token),
                ("topics", "An toàn trên mạng, phụ huynh"),
            ],
        )
        .await;
    assert_eq!(
        (s, to.as_str()),
        (StatusCode::SEE_OTHER, "/library?done=published")
    );
    let mut teacher = Browser::new(&app);
    teacher.login("gv", PASSWORD).await;
    let (_, _, page) = teacher
        .get("/library?topic=an+to%C3%A0n+tr%C3%AAn+m%E1%BA%A1ng")
        .await;
    assert!(
        page.contains(&format!("/campaigns/new?template_id={tpl}")),
        "{page}"
    );
    let (_, _, other) = teacher.get("/library?topic=kh%C3%A1c").await;
    assert!(!other.contains(&format!("template_id={tpl}\"")), "{other}");
    // Read from above, never republished (nor by an author).
    let tt = teacher.csrf("/library").await;
    assert_eq!(
        teacher
            .post(
                &format!("/library/{tpl}/publish"),
                &[("_csrf", &tt), ("topics", "x")]
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (_, _, form) = teacher
        .get(&format!("/campaigns/new?template_id={tpl}"))
        .await;
    assert!(
        form.contains(&format!("<option value=\"{tpl}\" selected>")),
        "{form}"
    );
    assert!(form.contains("(thư viện)"), "{form}");
    app.stop().await;
}

#[tokio::test]
async fn an_admin_adds_a_person_and_a_bad_number_comes_back_on_the_form() {
    let app = spawn_app(|_, _| {}).await;
    let t = common::tree(&app).await;
    web_user(&app, Some(t.school), "admin.th", &[UserRole::Admin]).await;
    web_user(&app, Some(t.school), "xem", &[UserRole::Viewer]).await;
    let mut viewer = Browser::new(&app);
    viewer.login("xem", PASSWORD).await;
    assert_eq!(
        viewer.get(&format!("/people/new?org={}", t.school)).await.0,
        StatusCode::FORBIDDEN
    );
    let mut b = Browser::new(&app);
    b.login("admin.th", PASSWORD).await;
    let token = b.csrf(&format!("/people/new?org={}", t.school)).await;
    let school = t.school.to_string();
    let form = |phone: &'static str| {
        vec![
            ("_csrf", token.clone()),
            ("org_id", school.clone()),
            ("role", "parent".to_string()),
            ("full_name", "Nguyễn Thị Mới".to_string()),
            ("phone", phone.to_string()),
        ]
    };
    let bad = form("09-12");
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, _, html) = b.post("/people/new", &bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(
        html.contains("value=\"Nguyễn Thị Mới\"") && html.contains("value=\"09-12\""),
        "{html}"
    );
    let good = form("0912 345 678");
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, to, _) = b.post("/people/new", &good).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, page) = b.get(&to).await;
    assert!(
        page.contains("Nguyễn Thị Mới") && page.contains("+84912345678"),
        "{page}"
    );
    app.stop().await;
}
