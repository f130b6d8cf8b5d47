//! The authorization matrix: every API route x every role of a school's user x an object in scope
//! (the school), beside it (a sibling school) and above it (the Phòng), asserting the exact status and
//! that a refusal carries none of the object's data. Plus: no token / a bad token is 401 everywhere.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every fixture's names carry this, so a refusal that leaks anything shows.
const MARK: &str = "BÍMẬT";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    In,
    Beside,
    Above,
}

struct Scope {
    at: Where,
    org: i64,
    /// Whether `org` is a school (else the Phòng).
    school: bool,
}

struct World {
    in_: Scope,
    beside: Scope,
    above: Scope,
    /// A school beside the user's, for objects that only exist in schools.
    other_school: i64,
}

/// Declares the routes once: the enum and the list of all of them.
macro_rules! routes {
    ($($r:ident),* $(,)?) => {
        #[derive(Clone, Copy, Debug)]
        enum Route { $($r),* }
        const ROUTES: &[Route] = &[$(Route::$r),*];
    };
}

routes!(
    OrgCreate,
    OrgList,
    OrgGet,
    OrgPolicy,
    ContactList,
    ContactCreate,
    ContactGet,
    ContactErase,
    ContactOptOut,
    ContactConsent,
    GuardianLink,
    Import,
    TemplateCreate,
    TemplateGet,
    TemplatePublish,
    CampaignCreate,
    CampaignList,
    CampaignGet,
    CampaignEdit,
    CampaignSubmit,
    CampaignApprove,
    CampaignReject,
    CampaignStart,
    CampaignCancel,
    CampaignProgress,
    CampaignReport,
    CampaignDeliveries,
    ChannelResume,
    UserCreate,
    UserList,
    UserToken,
    TokenRevoke,
    Audit,
    CampaignRuns,
    CampaignPreview,
    CampaignPause,
    RunCancel,
    CalendarGet,
    CalendarPut,
    QuietHoursPut,
);

const ANY: &[&str] = &["admin", "author", "approver", "viewer"];

/// (roles allowed, status in scope, status out of scope for an allowed role).
fn rule(r: Route) -> (&'static [&'static str], u16, u16) {
    use Route::*;
    match r {
        // Nodes named in the body: 403; objects named in the path: 404 (existence not revealed).
        OrgCreate => (&["admin"], 201, 403),
        OrgList | OrgGet => (ANY, 200, 404),
        // Four eyes are switched off only from above the school: never by the school's own admin,
        // not even for its classes.
        OrgPolicy => (&["admin"], 403, 404),
        ContactList => (ANY, 200, 404),
        ContactCreate => (&["admin"], 201, 403),
        ContactGet | ContactErase | ContactOptOut | ContactConsent => (&["admin"], 200, 404),
        // People outside the subtree are answered as unknown, like ids that do not exist.
        GuardianLink => (&["admin"], 201, 422),
        Import => (&["admin"], 200, 403),
        TemplateCreate => (&["author"], 201, 403),
        TemplateGet => (ANY, 200, 404),
        TemplatePublish => (&["approver"], 200, 404),
        CampaignCreate => (&["author"], 201, 403),
        CampaignList | CampaignGet | CampaignProgress | CampaignReport | CampaignDeliveries => {
            (ANY, 200, 404)
        }
        CampaignEdit | CampaignSubmit => (&["author"], 200, 404),
        CampaignApprove | CampaignReject => (&["approver"], 200, 404),
        CampaignStart => (&["author", "approver"], 200, 404),
        CampaignCancel => (&["admin", "author", "approver"], 200, 404),
        // Allowed through; nothing is paused, so the move itself is a conflict.
        ChannelResume => (&["admin", "author", "approver"], 409, 404),
        UserCreate => (&["admin"], 201, 403),
        TokenRevoke => (&["admin"], 200, 404),
        CampaignRuns | CampaignPreview | CalendarGet => (ANY, 200, 404),
        // Allowed through; a draft has no open run, so there is nothing to pause or cancel.
        CampaignPause | RunCancel => (&["admin", "author", "approver"], 409, 404),
        CalendarPut | QuietHoursPut => (&["admin"], 200, 404),
        UserList | UserToken | Audit => (
            &["admin"],
            if matches!(r, UserToken) { 201 } else { 200 },
            404,
        ),
    }
}

enum Body {
    None,
    Json(Value),
    Csv(String),
}

struct Req {
    method: Method,
    path: String,
    body: Body,
}

fn req(method: Method, path: String, body: Body) -> Req {
    Req { method, path, body }
}

struct Fixtures<'a> {
    app: &'a TestApp,
    n: std::sync::atomic::AtomicU64,
}

impl Fixtures<'_> {
    fn next(&self) -> u64 {
        self.n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    async fn contact(&self, org: i64, role: &str) -> i64 {
        let n = self.next();
        self.app
            .contact(json!({"org_id": org, "role": role, "full_name": format!("{MARK} người {n}"),
                            "phone": format!("09{:08}", 10_000_000 + n), "email": format!("bimat{n}@example.vn")}))
            .await
    }

    async fn template(&self, org: i64) -> i64 {
        self.app
            .create(
                "/api/v1/templates",
                json!({"org_id": org, "name": format!("{MARK} mẫu"), "sms_text": format!("{MARK} nội dung")}),
            )
            .await
    }

    async fn campaign(&self, org: i64) -> i64 {
        let tpl = self.template(org).await;
        self.app
            .create(
                "/api/v1/campaigns",
                json!({"org_id": org, "name": format!("{MARK} chiến dịch"), "template_id": tpl,
                       "audience": {"org_id": org, "roles": ["staff"]}, "channels": ["sms"]}),
            )
            .await
    }

    async fn submitted(&self, org: i64) -> i64 {
        let c = self.campaign(org).await;
        let (s, v) = self
            .app
            .post(&format!("/api/v1/campaigns/{c}/submit"), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        c
    }

    async fn approved(&self, org: i64) -> i64 {
        let c = self.campaign(org).await;
        self.app.approve(c).await;
        c
    }

    async fn user(&self, org: i64) -> i64 {
        let n = self.next();
        self.app
            .create(
                "/api/v1/users",
                json!({"org_id": org, "username": format!("fixture{n}"), "full_name": format!("{MARK} {n}"), "roles": ["viewer"]}),
            )
            .await
    }

    /// A node strictly below the scope's node, created by the operator.
    async fn child(&self, s: &Scope) -> i64 {
        let n = self.next();
        let kind = if s.school { "class" } else { "school" };
        self.app
            .org(
                Some(s.org),
                kind,
                &format!("CHILD{n}"),
                &format!("{MARK} {n}"),
            )
            .await
    }

    async fn build(&self, r: Route, s: &Scope, w: &World) -> Req {
        use Route::*;
        let org = s.org;
        // Objects that exist only in schools: the Phòng-level case uses a school the user cannot see.
        let school = if s.school { org } else { w.other_school };
        let n = self.next();
        match r {
            OrgCreate => {
                let kind = if s.school { "class" } else { "school" };
                req(
                    Method::POST,
                    "/api/v1/orgs".into(),
                    Body::Json(
                        json!({"parent_id": org, "kind": kind, "code": format!("NEW{n}"), "name": format!("Mới {n}")}),
                    ),
                )
            }
            OrgList => req(
                Method::GET,
                format!("/api/v1/orgs?parent_id={org}"),
                Body::None,
            ),
            OrgGet => req(Method::GET, format!("/api/v1/orgs/{org}"), Body::None),
            OrgPolicy => {
                let child = self.child(s).await;
                req(
                    Method::POST,
                    format!("/api/v1/orgs/{child}/policy"),
                    Body::Json(json!({"self_approval": true})),
                )
            }
            ContactList => req(
                Method::GET,
                format!("/api/v1/contacts?org_id={org}"),
                Body::None,
            ),
            ContactCreate => req(
                Method::POST,
                "/api/v1/contacts".into(),
                Body::Json(
                    json!({"org_id": org, "role": "staff", "full_name": "Cô Mới", "phone": "0987000111"}),
                ),
            ),
            ContactGet => {
                let c = self.contact(org, "staff").await;
                req(Method::GET, format!("/api/v1/contacts/{c}"), Body::None)
            }
            ContactErase => {
                let c = self.contact(org, "staff").await;
                req(Method::DELETE, format!("/api/v1/contacts/{c}"), Body::None)
            }
            ContactOptOut => {
                let c = self.contact(org, "staff").await;
                req(
                    Method::POST,
                    format!("/api/v1/contacts/{c}/opt-outs"),
                    Body::Json(json!({"channel": "sms"})),
                )
            }
            ContactConsent => {
                let c = self.contact(org, "staff").await;
                req(
                    Method::POST,
                    format!("/api/v1/contacts/{c}/consent"),
                    Body::Json(json!({"source": "form"})),
                )
            }
            GuardianLink => {
                let parent = self.contact(org, "parent").await;
                let student = self.contact(school, "student").await;
                req(
                    Method::POST,
                    "/api/v1/guardian-links".into(),
                    Body::Json(json!({"parent_id": parent, "student_id": student})),
                )
            }
            Import => req(
                Method::POST,
                format!("/api/v1/contacts/import?org_id={org}"),
                Body::Csv(format!(
                    "Họ tên;Mã học sinh;Lớp;Họ tên phụ huynh;SĐT phụ huynh\nEm {n};HS{n};1A;Phụ huynh {n};09{:08}\n",
                    20_000_000 + n
                )),
            ),
            TemplateCreate => req(
                Method::POST,
                "/api/v1/templates".into(),
                Body::Json(json!({"org_id": org, "name": "Mẫu", "sms_text": "Xin chào"})),
            ),
            TemplateGet => {
                let t = self.template(org).await;
                req(Method::GET, format!("/api/v1/templates/{t}"), Body::None)
            }
            TemplatePublish => {
                let t = self.template(org).await;
                req(
                    Method::POST,
                    format!("/api/v1/templates/{t}/publish"),
                    Body::Json(json!({"topics": ["an toàn mạng"]})),
                )
            }
            CampaignCreate => {
                let t = self.template(org).await;
                req(
                    Method::POST,
                    "/api/v1/campaigns".into(),
                    Body::Json(json!({"org_id": org, "name": "C", "template_id": t,
                                      "audience": {"org_id": org, "roles": ["staff"]}, "channels": ["sms"]})),
                )
            }
            CampaignList => req(
                Method::GET,
                format!("/api/v1/campaigns?org_id={org}"),
                Body::None,
            ),
            CampaignGet | CampaignProgress | CampaignReport | CampaignDeliveries => {
                let c = self.campaign(org).await;
                let suffix = match r {
                    CampaignProgress => "/progress",
                    CampaignReport => "/report",
                    CampaignDeliveries => "/deliveries",
                    _ => "",
                };
                req(
                    Method::GET,
                    format!("/api/v1/campaigns/{c}{suffix}"),
                    Body::None,
                )
            }
            CampaignEdit => {
                let c = self.campaign(org).await;
                req(
                    Method::PATCH,
                    format!("/api/v1/campaigns/{c}"),
                    Body::Json(json!({"name": "Đổi tên"})),
                )
            }
            CampaignSubmit => {
                let c = self.campaign(org).await;
                req(
                    Method::POST,
                    format!("/api/v1/campaigns/{c}/submit"),
                    Body::None,
                )
            }
            CampaignApprove => {
                let c = self.submitted(org).await;
                req(
                    Method::POST,
                    format!("/api/v1/campaigns/{c}/approve"),
                    Body::None,
                )
            }
            CampaignReject => {
                let c = self.submitted(org).await;
                req(
                    Method::POST,
                    format!("/api/v1/campaigns/{c}/reject"),
                    Body::Json(json!({"reason": "Sai chính tả"})),
                )
            }
            CampaignStart => {
                let c = self.approved(org).await;
                req(
                    Method::POST,
                    format!("/api/v1/campaigns/{c}/start"),
                    Body::None,
                )
            }
            CampaignCancel => {
                let c = self.campaign(org).await;
                req(
                    Method::POST,
                    format!("/api/v1/campaigns/{c}/cancel"),
                    Body::None,
                )
            }
            ChannelResume => {
                let c = self.campaign(org).await;
                req(
                    Method::POST,
                    format!("/api/v1/campaigns/{c}/channels/sms/resume"),
                    Body::None,
                )
            }
            UserCreate => req(
                Method::POST,
                "/api/v1/users".into(),
                Body::Json(
                    json!({"org_id": org, "username": format!("new{n}"), "full_name": "Người mới", "roles": ["viewer"]}),
                ),
            ),
            UserList => req(
                Method::GET,
                format!("/api/v1/users?org_id={org}"),
                Body::None,
            ),
            UserToken => {
                let u = self.user(org).await;
                req(
                    Method::POST,
                    format!("/api/v1/users/{u}/tokens"),
                    Body::Json(json!({"name": "máy tính phòng"})),
                )
            }
            CampaignRuns | CampaignPreview | CampaignPause | RunCancel => {
                let c = self.campaign(org).await;
                let (method, suffix) = match r {
                    CampaignRuns => (Method::GET, "/runs"),
                    CampaignPreview => (Method::POST, "/preview"),
                    CampaignPause => (Method::POST, "/pause"),
                    _ => (Method::POST, "/runs/999999/cancel"),
                };
                req(method, format!("/api/v1/campaigns/{c}{suffix}"), Body::None)
            }
            CalendarGet => req(
                Method::GET,
                format!("/api/v1/orgs/{org}/calendar"),
                Body::None,
            ),
            CalendarPut => req(
                Method::PUT,
                format!("/api/v1/orgs/{org}/calendar"),
                Body::Json(
                    json!({"calendar": {"holidays": [{"start": "2027-02-01", "end": "2027-02-10", "name": "Tết"}]}}),
                ),
            ),
            QuietHoursPut => req(
                Method::PUT,
                format!("/api/v1/orgs/{org}/quiet-hours"),
                Body::Json(json!({"quiet_hours": "21:30-06:30"})),
            ),
            TokenRevoke => {
                let u = self.user(org).await;
                let (st, v) = self
                    .app
                    .post(&format!("/api/v1/users/{u}/tokens"), json!({"name": "cũ"}))
                    .await;
                assert_eq!(st, StatusCode::CREATED, "{v}");
                let t = v["id"].as_i64().unwrap();
                req(
                    Method::DELETE,
                    format!("/api/v1/users/{u}/tokens/{t}"),
                    Body::None,
                )
            }
            Audit => req(
                Method::GET,
                format!("/api/v1/audit?org_id={org}"),
                Body::None,
            ),
        }
    }
}

async fn send(app: &TestApp, token: &str, r: Req) -> (StatusCode, String) {
    let mut b = reqwest::Client::new().request(r.method, format!("{}{}", app.base, r.path));
    if !token.is_empty() {
        b = b.bearer_auth(token);
    }
    b = match r.body {
        Body::None => b,
        Body::Json(v) => b.json(&v),
        Body::Csv(s) => b.header("content-type", "text/csv").body(s),
    };
    let resp = b.send().await.unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

/// A school user per role, with a token.
async fn school_users(app: &TestApp, school: i64) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for role in ANY {
        let id = app
            .create(
                "/api/v1/users",
                json!({"org_id": school, "username": format!("th1.{role}"), "full_name": format!("Người {role}"), "roles": [role]}),
            )
            .await;
        let (s, v) = app
            .post(
                &format!("/api/v1/users/{id}/tokens"),
                json!({"name": "test"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        out.push((*role, v["token"].as_str().unwrap().to_string()));
    }
    out
}

async fn world(app: &TestApp) -> World {
    let t = tree(app).await;
    let sibling = app
        .org(
            Some(t.district),
            "school",
            "TH2",
            &format!("{MARK} Trường bên cạnh"),
        )
        .await;
    World {
        in_: Scope {
            at: Where::In,
            org: t.school,
            school: true,
        },
        beside: Scope {
            at: Where::Beside,
            org: sibling,
            school: true,
        },
        above: Scope {
            at: Where::Above,
            org: t.district,
            school: false,
        },
        other_school: sibling,
    }
}

#[tokio::test]
async fn every_route_checks_role_and_scope() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let w = world(&app).await;
    let users = school_users(&app, w.in_.org).await;
    let fx = Fixtures {
        app: &app,
        n: 0.into(),
    };
    for &route in ROUTES {
        let (allowed, ok, out) = rule(route);
        for (role, token) in &users {
            for scope in [&w.in_, &w.beside, &w.above] {
                let expected = if !allowed.contains(role) {
                    403
                } else if scope.at == Where::In {
                    ok
                } else {
                    out
                };
                let r = fx.build(route, scope, &w).await;
                let what = format!(
                    "{route:?} as {role} {:?} ({} {})",
                    scope.at, r.method, r.path
                );
                let (status, body) = send(&app, token, r).await;
                assert_eq!(status.as_u16(), expected, "{what}: {body}");
                if status.as_u16() >= 400 {
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    assert!(
                        v["error"]["code"].is_string(),
                        "{what}: not a JSON error: {body}"
                    );
                    assert!(
                        !body.contains(MARK),
                        "{what}: the refusal leaks data: {body}"
                    );
                }
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn no_token_or_a_bad_token_is_401_on_every_route() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let w = world(&app).await;
    let fx = Fixtures {
        app: &app,
        n: 0.into(),
    };
    for &route in ROUTES {
        for token in [
            "",
            "loa_0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let r = fx.build(route, &w.in_, &w).await;
            let what = format!(
                "{route:?} {} {} token {:?}",
                r.method,
                r.path,
                !token.is_empty()
            );
            let (status, body) = send(&app, token, r).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
            assert!(!body.contains(MARK), "{what}: {body}");
        }
    }
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/me", app.base))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    app.stop().await;
}

#[tokio::test]
async fn lists_show_only_the_subtree_and_operator_routes_refuse_school_users() {
    let app = spawn_app_with(|_, _| {}, false).await;
    let w = world(&app).await;
    let users = school_users(&app, w.in_.org).await;
    let fx = Fixtures {
        app: &app,
        n: 0.into(),
    };
    let mine = fx.campaign(w.in_.org).await;
    fx.campaign(w.beside.org).await;
    fx.campaign(w.above.org).await;
    for (role, token) in &users {
        let (s, v) = app
            .call_as(token, Method::GET, "/api/v1/campaigns", None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let ids: Vec<i64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, vec![mine], "{role} sees only the school's campaigns");
        let (_, v) = app.call_as(token, Method::GET, "/api/v1/orgs", None).await;
        assert!(!v.to_string().contains(MARK), "{role}: {v}");
        let (s, v) = app.call_as(token, Method::GET, "/api/v1/me", None).await;
        assert_eq!((s, v["org_id"].as_i64()), (StatusCode::OK, Some(w.in_.org)));
        let (s, v) = app
            .call_as(token, Method::GET, "/api/v1/webhooks/stats", None)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{role}: {v}");
        // Only operators create root nodes.
        let (s, _) = app
            .call_as(
                token,
                Method::POST,
                "/api/v1/orgs",
                Some(json!({"kind": "province", "code": format!("ROOT-{role}"), "name": "Sở mới"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{role}");
    }
    let (s, v) = app.get("/api/v1/webhooks/stats").await;
    assert_eq!(s, StatusCode::OK, "operators read provider stats: {v}");
    app.stop().await;
}

/// The staff pages, like the API's routes: every page and form x every role of a school's user x
/// an object in scope, beside and above, with the statuses the API gives (a done form answers 303).
/// A refusal is a page that shows none of the object's data.
#[tokio::test]
async fn every_page_and_form_checks_role_and_scope() {
    #[derive(Clone, Copy, Debug)]
    enum Page {
        Campaign,
        Progress,
        People,
        Submit,
        Approve,
        Reject,
        Start,
        Cancel,
        Pause,
        NewTemplate,
        NewCampaign,
        Publish,
    }
    use Page::*;
    let rules: &[(Page, &[&str], u16, u16)] = &[
        (Campaign, ANY, 200, 404),
        (Progress, ANY, 200, 404),
        (People, ANY, 200, 404),
        (Submit, &["author"], 303, 404),
        (Approve, &["approver"], 303, 404),
        (Reject, &["approver"], 303, 404),
        (Start, &["author", "approver"], 303, 404),
        (Cancel, &["admin", "author", "approver"], 303, 404),
        // Allowed through; a draft has nothing to pause: the API's 409, as a page.
        (Pause, &["admin", "author", "approver"], 409, 404),
        // Nodes named in the form: the API's 403 out of scope.
        (NewTemplate, &["author"], 303, 403),
        (NewCampaign, &["author"], 303, 403),
        (Publish, &["approver"], 303, 404),
    ];
    let app = spawn_app_with(|_, _| {}, false).await;
    let w = world(&app).await;
    let fx = Fixtures {
        app: &app,
        n: 0.into(),
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A logged-in session per role: (role, cookie, CSRF token).
    let mut sessions = Vec::new();
    for role in ANY {
        let name = format!("web.{role}");
        let p = loa::approval::tool_user(
            app.state.store.as_ref(),
            Some(w.in_.org),
            &name,
            &name,
            &[loa::domain::access::UserRole::parse(role).unwrap()],
        )
        .await
        .unwrap();
        let hash = loa::auth::hash_password("mật khẩu ma trận").unwrap();
        app.state
            .store
            .set_password(p.user_id, &hash)
            .await
            .unwrap();
        let r = http
            .post(format!("{}/login", app.base))
            .form(&[
                ("username", name.as_str()),
                ("password", "mật khẩu ma trận"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{role}");
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let html = http
            .get(format!("{}/account/password", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let at = html.find("name=\"_csrf\" value=\"").unwrap() + 20;
        let csrf = html[at..at + html[at..].find('"').unwrap()].to_string();
        sessions.push((*role, cookie, csrf));
    }
    for &(page, allowed, ok, out) in rules {
        for (role, cookie, csrf) in &sessions {
            for scope in [&w.in_, &w.beside, &w.above] {
                let expected = if !allowed.contains(role) {
                    403
                } else if scope.at == Where::In {
                    ok
                } else {
                    out
                };
                let org = scope.org;
                let (method, path) = match page {
                    Campaign => (
                        Method::GET,
                        format!("/campaigns/{}", fx.campaign(org).await),
                    ),
                    Progress => (
                        Method::GET,
                        format!("/campaigns/{}/progress", fx.campaign(org).await),
                    ),
                    People => (Method::GET, format!("/people?org={org}")),
                    Submit => (
                        Method::POST,
                        format!("/campaigns/{}/submit", fx.campaign(org).await),
                    ),
                    Approve => (
                        Method::POST,
                        format!("/campaigns/{}/approve", fx.submitted(org).await),
                    ),
                    Reject => (
                        Method::POST,
                        format!("/campaigns/{}/reject", fx.submitted(org).await),
                    ),
                    Start => (
                        Method::POST,
                        format!("/campaigns/{}/start", fx.approved(org).await),
                    ),
                    Cancel => (
                        Method::POST,
                        format!("/campaigns/{}/cancel", fx.campaign(org).await),
                    ),
                    Pause => (
                        Method::POST,
                        format!("/campaigns/{}/pause", fx.campaign(org).await),
                    ),
                    NewTemplate => (Method::POST, "/templates/new".to_string()),
                    NewCampaign => (Method::POST, "/campaigns/new".to_string()),
                    Publish => (
                        Method::POST,
                        format!("/library/{}/publish", fx.template(org).await),
                    ),
                };
                let mut b = http
                    .request(method.clone(), format!("{}{path}", app.base))
                    .header("cookie", cookie);
                if matches!(page, NewTemplate | NewCampaign) {
                    let template = fx.template(org).await.to_string();
                    let org = org.to_string();
                    b = b.form(&[
                        ("_csrf", csrf.as_str()),
                        ("org_id", &org),
                        ("name", "Mẫu"),
                        ("sms_text", "Nội dung"),
                        ("template_id", &template),
                        ("role_staff", "1"),
                        ("channel_1", "sms"),
                    ]);
                } else if method == Method::POST {
                    b = b.form(&[("_csrf", csrf.as_str()), ("reason", "Chưa phù hợp")]);
                }
                let r = b.send().await.unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap();
                let what = format!("{page:?} as {role} {:?} ({method} {path})", scope.at);
                assert_eq!(status, expected, "{what}: {body}");
                if status >= 400 {
                    assert!(body.contains("<html"), "{what}: not a page: {body}");
                    assert!(
                        !body.contains(MARK),
                        "{what}: the refusal leaks data: {body}"
                    );
                }
            }
        }
    }
    // Without a session every page sends the browser to the login page, and every form too.
    for path in [
        "/",
        "/approvals",
        "/people",
        "/campaigns/1",
        "/campaigns/1/failures",
        "/account/password",
        "/import",
        "/templates/new",
        "/campaigns/new",
        "/users",
        "/users/1",
        "/audit",
        "/library",
    ] {
        let r = http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login?next=")
        );
    }
    let r = http
        .post(format!("{}/campaigns/1/approve", app.base))
        .form(&[("_csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}
