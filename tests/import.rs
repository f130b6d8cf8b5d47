//! Contact import through the API: the sample CSV (BOM, `;`), an XLSX with a named sheet and a phone
//! Excel turned into a number, bad rows mixed with good ones, duplicates, re-import, and the imported
//! parents actually reachable by a campaign.

mod common;

use common::importing::*;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn sample() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/danh-sach-lop.csv"
    ))
    .unwrap()
}

#[tokio::test]
async fn the_sample_roster_imports_and_reimports_without_duplicates() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let (st, r) = import(&app, t.school, "", sample(), true).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        (r["rows"].as_u64(), r["imported"].as_u64()),
        (Some(5), Some(5)),
        "{r}"
    );
    assert_eq!(r["students_created"], 5, "{r}");
    assert_eq!(
        r["parents_created"], 4,
        "one father of two children is one parent: {r}"
    );
    assert_eq!(r["links_created"], 5, "{r}");
    assert_eq!(
        r["classes_created"], 2,
        "1A exists; 3B and 2A are created: {r}"
    );
    assert_eq!(r["rejected"], json!([]));
    assert_eq!(r["sheets"][0]["header_line"], 1, "{r}");
    assert_eq!(
        (&r["cell_errors"], &r["notes"]),
        (&json!([]), &json!([])),
        "{r}"
    );

    // Again, as a raw body: nothing new, nothing changed.
    let (st, r) = import(&app, t.school, "", sample(), false).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    for k in [
        "students_created",
        "students_updated",
        "parents_created",
        "parents_updated",
        "classes_created",
        "links_created",
    ] {
        assert_eq!(r[k], 0, "{k}: {r}");
    }

    // The school's roster is where the consent comes from; staff can record another source.
    let (_, c) = app.get("/api/v1/contacts/1").await;
    assert_eq!(c["consent_source"], "roster_import", "{c}");
    assert!(c["consent_at"].as_i64().is_some(), "{c}");
    let (st, c) = app
        .post(
            "/api/v1/contacts/1/consent",
            json!({"source": "phiếu đồng ý giấy", "at": 1_790_000_000_000i64}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    assert_eq!(
        (c["consent_source"].as_str(), c["consent_at"].as_i64()),
        (Some("phiếu đồng ý giấy"), Some(1_790_000_000_000))
    );
    let (st, _) = app
        .post("/api/v1/contacts/1/consent", json!({"source": " "}))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

    // Every phone form ends up E.164, the old 11-digit number converted.
    let phones = parent_phones(&app, t.school).await;
    assert_eq!(
        phones,
        [
            "+84372345678",
            "+84912345671",
            "+84912345672",
            "+84912345673"
        ]
    );
}

#[tokio::test]
async fn bad_rows_are_named_and_good_rows_go_in() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let csv = "full_name,student_code,class,parent_name,parent_phone,parent_email\n\
               An,HS1,1A,Ba An,0912000001,\n\
               Binh,HS2,1A,Me Binh,09-12,\n\
               ,HS3,1A,Ba Chi,0912000003,\n\
               Dung,HS4,1A,Me Dung,0912000004,not-an-email\n\
               An Updated,HS1,4B,Ba An,0912000001,ba.an@example.vn\n";
    let (st, r) = import(&app, t.school, "", csv.as_bytes().to_vec(), false).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    // A bad value loses only itself (issue 16): Bình goes in with her mother, without the phone;
    // Dung with her father, without the email. Only the row without a student is rejected.
    assert_eq!(r["imported"], 4, "{r}");
    let named = |k: &str| -> Vec<(u64, String, String, String)> {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["line"].as_u64().unwrap(),
                    e["column"].as_str().unwrap().into(),
                    e["code"].as_str().unwrap().into(),
                    e["cell"].as_str().unwrap_or("").into(),
                )
            })
            .collect()
    };
    assert_eq!(
        named("rejected"),
        [(4, "full_name".into(), "required".into(), "A4".into())]
    );
    assert_eq!(
        named("cell_errors"),
        [
            (
                3,
                "parent_phone".into(),
                "invalid_phone".into(),
                "E3".into()
            ),
            (
                5,
                "parent_email".into(),
                "invalid_email".into(),
                "F5".into()
            ),
        ]
    );
    assert_eq!(r["cell_errors"][0]["value"], "09-12", "{r}");
    // The duplicate of HS1 later in the file updates the first: one student, moved to 4B, renamed,
    // and counted once, as created (updated counts the students Loa held before).
    assert_eq!(
        (
            r["students_created"].as_u64(),
            r["students_updated"].as_u64()
        ),
        (Some(3), Some(0)),
        "{r}"
    );
    assert_eq!(
        (r["parents_created"].as_u64(), r["parents_updated"].as_u64()),
        (Some(3), Some(0)),
        "the email a later row adds to a parent created by this file is no update: {r}"
    );
    assert_eq!(
        r["figures"],
        json!({"students": 3, "with_mobile": 2, "with_email": 1, "with_zalo_id": 0,
               "reachable": 2, "unreachable": 1, "no_parent": 0, "no_address": 0,
               "landline_only": 0, "invalid_number": 1}),
        "HS1 on two rows is one student; Bình's only number was a typo: {r}"
    );
    let phones = parent_phones(&app, t.school).await;
    assert_eq!(
        phones,
        ["+84912000001", "+84912000004"],
        "nothing of the rejected row was written, nor the bad phone"
    );
}

#[tokio::test]
async fn xlsx_named_sheet_and_refusals() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let xlsx = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/danh-sach-4b.xlsx"
    ))
    .unwrap();
    // The first sheet is a note without a name column: passed over with the reason, and the roster
    // sheet read.
    let (st, r) = import(&app, t.school, "&dry_run=true", xlsx.clone(), true).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["sheets"][0]["kind"], Value::Null, "{r}");
    assert!(
        r["sheets"][0]["skipped"]
            .as_str()
            .is_some_and(|s| s.contains("không tìm thấy dòng tiêu đề")),
        "{r}"
    );
    assert_eq!(r["sheets"][1]["name"], "Lớp 4B", "{r}");
    assert_eq!(r["sheets"][1]["kind"], "roster", "{r}");
    assert_eq!(r["imported"], 3, "{r}");
    // Only a named sheet that holds no table is refused.
    let first = r["sheets"][0]["name"].as_str().unwrap().to_string();
    let (st, r) = import(
        &app,
        t.school,
        &format!(
            "&sheet={}",
            url::form_urlencoded::byte_serialize(first.as_bytes()).collect::<String>()
        ),
        xlsx.clone(),
        true,
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert_eq!(r["error"]["details"][0]["field"], "file");
    let (st, r) = import(
        &app,
        t.school,
        "&sheet=L%E1%BB%9Bp%204B",
        xlsx.clone(),
        true,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["imported"], 3, "the bad phone loses only itself: {r}");
    assert_eq!(r["rejected"], json!([]), "{r}");
    assert_eq!(r["cell_errors"][0]["line"], 4, "{r}");
    assert_eq!(r["cell_errors"][0]["column"], "Số điện thoại", "{r}");
    assert_eq!(r["cell_errors"][0]["sheet"], "Lớp 4B", "{r}");
    let (st, r) = import(&app, t.school, "&sheet=Kh%C3%B4ng%20c%C3%B3", xlsx, true).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{r}");

    // Not a school; not a roster at all.
    let (st, r) = import(&app, t.district, "", sample(), false).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert_eq!(r["error"]["details"][0]["field"], "org_id");
    let (st, r) = import(&app, t.school, "", vec![0xff, 0xfe, 0, 1], false).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    let (st, _) = import(&app, 999_999, "", sample(), false).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

    let phones = parent_phones(&app, t.school).await;
    assert_eq!(
        phones,
        ["+84912345681", "+84912345682"],
        "Excel's number lost its 0; Loa puts it back"
    );
}

#[tokio::test]
async fn students_without_codes_are_found_by_class_and_name_and_changes_update() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let v1 = "Họ tên,Lớp,Phụ huynh,SĐT\nAn,1A,Ba An,0912000001\nAn,4B,Ba An 2,0912000002\nBình,1A,Ba An,0912000001\n";
    let (_, r) = import(&app, t.school, "", v1.as_bytes().to_vec(), false).await;
    assert_eq!(
        (
            r["students_created"].as_u64(),
            r["parents_created"].as_u64(),
            r["links_created"].as_u64()
        ),
        (Some(3), Some(2), Some(3)),
        "{r}"
    );
    // The same people, one parent renamed and given an email: one update, nothing created.
    let v2 = "Họ tên,Lớp,Phụ huynh,SĐT,Email\nAn,1A,Trần Văn An,0912000001,an@example.vn\nAn,4B,Ba An 2,0912000002,\nBình,1A,Trần Văn An,0912000001,\n";
    let (_, r) = import(&app, t.school, "", v2.as_bytes().to_vec(), false).await;
    for (k, want) in [
        ("students_created", 0),
        ("students_updated", 0),
        ("parents_created", 0),
        ("parents_updated", 1),
        ("links_created", 0),
    ] {
        assert_eq!(r[k], want, "{k}: {r}");
    }
    let phones = parent_phones(&app, t.school).await;
    assert_eq!(phones, ["+84912000001", "+84912000002"]);
}

/// Class codes belong to their school: another school creating a class with the code this school's
/// import generates (`<school code>-<class>`) must not block the import.
#[tokio::test]
async fn another_schools_class_code_does_not_block_an_import() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let other = app
        .org(
            Some(t.district),
            "school",
            "TH2",
            "Trường Tiểu học Bình Phong",
        )
        .await;
    // TH1's import of class 3B generates the code TH1-3B; TH2 takes it first.
    let squat = app.org(Some(other), "class", "TH1-3B", "3B").await;
    // Within TH1, staff gave the code of class 2A to another class: the import takes the next one.
    app.org(Some(t.school), "class", "TH1-2A", "2A chiều").await;
    let (st, r) = import(&app, t.school, "", sample(), true).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["imported"], 5, "{r}");
    assert_eq!(r["classes_created"], 2, "{r}");
    let (_, classes) = app
        .get(&format!("/api/v1/orgs?parent_id={}", t.school))
        .await;
    let codes: Vec<&str> = classes
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["code"].as_str())
        .collect();
    assert!(codes.contains(&"TH1-3B"), "{classes}");
    assert!(codes.contains(&"TH1-2A-2"), "{classes}");
    let (_, o) = app.get(&format!("/api/v1/orgs/{squat}")).await;
    assert_eq!(o["parent_id"], other, "{o}");
    // Within one school a class code is still unique, and school codes across the tree.
    let (st, v) = app
        .post(
            "/api/v1/orgs",
            json!({"parent_id": t.school, "kind": "class", "code": "TH1-3B", "name": "3B bis"}),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{v}"
    );
    let (st, _) = app
        .post(
            "/api/v1/orgs",
            json!({"parent_id": t.district, "kind": "school", "code": "TH2", "name": "Trùng"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    app.stop().await;
}

/// A minimal XLSX with one sheet of the given name and `<sheetData>` rows.
fn xlsx(sheet: &str, sheet_data: &str) -> Vec<u8> {
    xlsx::build(sheet, None, sheet_data, None)
}

/// One `<row>`: `(column letter, value)`; a value of digits only is a number cell, as Excel stores a
/// phone typed without care.
fn xrow(line: usize, cells: &[(&str, &str)]) -> String {
    let mut s = format!(r#"<row r="{line}">"#);
    for (col, v) in cells {
        if !v.is_empty() && !v.starts_with('0') && v.chars().all(|c| c.is_ascii_digit()) {
            s.push_str(&format!(r#"<c r="{col}{line}"><v>{v}</v></c>"#));
        } else {
            s.push_str(&format!(
                r#"<c r="{col}{line}" t="inlineStr"><is><t>{v}</t></is></c>"#
            ));
        }
    }
    s.push_str("</row>");
    s
}

/// Issue 16: a management-software export as it is: title rows, a two-row header with merged
/// "Thông tin cha" / "Thông tin mẹ" groups, an STT column, father and mother side by side, a phone
/// Excel turned into a number, two numbers in a cell, a landline, a typo, a name in decomposed
/// Unicode, the class only in the title, and a total and a signature block after the table.
#[tokio::test]
async fn a_real_export_with_title_rows_two_row_header_and_parents_side_by_side() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let decomposed = "Nguye\u{302}\u{303}n Va\u{306}n An ";
    let data = [
        xrow(1, &[("A", "SỞ GIÁO DỤC VÀ ĐÀO TẠO HÀ NỘI")]),
        xrow(2, &[("A", "TRƯỜNG TIỂU HỌC KIM ĐỒNG")]),
        xrow(4, &[("A", "DANH SÁCH HỌC SINH LỚP 4B - NĂM HỌC 2026-2027")]),
        xrow(
            6,
            &[
                ("A", "STT"),
                ("B", "Họ và tên"),
                ("C", "Thông tin cha"),
                ("E", "Thông tin mẹ"),
                ("G", "SĐT liên hệ"),
                ("H", "Email phụ huynh"),
            ],
        ),
        xrow(
            7,
            &[
                ("C", "Họ tên"),
                ("D", "Số điện thoại"),
                ("E", "Họ tên"),
                ("F", "Số điện thoại"),
            ],
        ),
        xrow(
            8,
            &[
                ("A", "1"),
                ("B", decomposed),
                ("C", "Nguyễn Văn Ba"),
                ("D", "912345678"),
                ("E", "Trần Thị Mai"),
                ("F", "0987.654.321 - 0912 000 111"),
                ("H", "Me.An@Example.vn"),
            ],
        ),
        xrow(
            9,
            &[
                ("A", "2"),
                ("B", "Lê Thị Bình"),
                ("C", "Lê Văn Cường"),
                ("D", "0218 3851 234"),
                ("E", "Phạm Thị Dung"),
                ("F", "09123"),
            ],
        ),
        xrow(
            10,
            &[
                ("A", "3"),
                ("B", "Hoàng Minh Châu"),
                ("G", "(+84) 0903 111 222"),
            ],
        ),
        xrow(11, &[("A", "Tổng cộng: 3 học sinh")]),
        xrow(13, &[("F", "HIỆU TRƯỞNG")]),
        xrow(15, &[("B", "Nguyễn Thị Hiệu"), ("F", "Đỗ Văn Trưởng")]),
    ]
    .concat();
    let (st, r) = import(&app, t.school, "", xlsx("DS", &data), true).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["sheets"][0]["header_line"], 7, "{r}");
    assert_eq!(r["sheets"][0]["name"], "DS", "{r}");
    assert_eq!(r["sheets"][0]["class_from_title"], "4B", "{r}");
    assert_eq!(
        (r["rows"].as_u64(), r["imported"].as_u64()),
        (Some(3), Some(3)),
        "{r}"
    );
    assert_eq!(r["students_created"], 3, "{r}");
    assert_eq!(r["parents_created"], 5, "{r}");
    assert_eq!(r["links_created"], 5, "{r}");
    assert_eq!(r["rejected"], json!([]), "{r}");
    // The mother's typo loses only that number, named by sheet, cell, header and value.
    assert_eq!(
        cells(&r, "cell_errors"),
        [(9, "F9".into(), "invalid_phone".into())],
        "{r}"
    );
    let e = &r["cell_errors"][0];
    assert_eq!(e["sheet"], "DS");
    assert_eq!(e["column"], "Thông tin mẹ / Số điện thoại");
    assert_eq!(e["value"], "09123");
    let m = e["message"].as_str().unwrap();
    assert!(
        m.starts_with(
            "trang \"DS\", dòng 9, cột F (Thông tin mẹ / Số điện thoại): số điện thoại \"09123\""
        ),
        "{m}"
    );
    assert_eq!(
        cells(&r, "notes"),
        [
            (8, "F8".into(), "extra_phone".into()),
            (9, "D9".into(), "landline".into()),
            (9, "D9".into(), "no_address".into()),
            (9, "F9".into(), "no_address".into()),
        ],
        "{r}"
    );
    assert!(
        r["notes"][1]["message"]
            .as_str()
            .unwrap()
            .contains("số máy bàn"),
        "{r}"
    );
    let mut want = vec![
        l(
            "Nguyễn Văn An",
            "4B",
            "Nguyễn Văn Ba",
            Some("+84912345678"),
            Some("me.an@example.vn"),
            "cha",
        ),
        l(
            "Nguyễn Văn An",
            "4B",
            "Trần Thị Mai",
            Some("+84987654321"),
            None,
            "mẹ",
        ),
        l("Lê Thị Bình", "4B", "Lê Văn Cường", None, None, "cha"),
        l("Lê Thị Bình", "4B", "Phạm Thị Dung", None, None, "mẹ"),
        l(
            "Hoàng Minh Châu",
            "4B",
            "Phụ huynh em Hoàng Minh Châu",
            Some("+84903111222"),
            None,
            "",
        ),
    ];
    want.sort();
    assert_eq!(links(&app).await, want);
    // Again: nobody new, not even the parents Loa has no address for.
    let (_, r) = import(&app, t.school, "", xlsx("DS", &data), true).await;
    for k in [
        "students_created",
        "parents_created",
        "links_created",
        "students_updated",
        "parents_updated",
    ] {
        assert_eq!(r[k], 0, "{k}: {r}");
    }
    // The landline is never sent an SMS.
    let phones = parent_phones(&app, t.school).await;
    assert_eq!(phones, ["+84903111222", "+84912345678", "+84987654321"]);
}

/// Issue 16: one sheet for the whole school with a class column, guardians side by side in one-row
/// headers (CSV with title rows, `;`), numbers with `/`; and a class taken from the sheet name.
#[tokio::test]
async fn guardian_columns_side_by_side_and_the_class_from_the_sheet_name() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let csv = "TRƯỜNG TIỂU HỌC KIM ĐỒNG;;;;;;;;;\n\
               DANH SÁCH HỌC SINH TOÀN TRƯỜNG;;;;;;;;;\n\
               ;;;;;;;;;\n\
               STT;Mã HS;Họ và tên học sinh;Lớp;Họ tên cha;SĐT cha;Nghề nghiệp cha;Họ tên mẹ;SĐT mẹ;Người giám hộ;SĐT người giám hộ\n\
               1;HS01;  Trần   Văn Khoa ;1A;Trần Văn Lâm;0912345678/0987654321;Kỹ sư;;;;\n\
               2;HS02;Vũ Thị Lan;2A;;;;Đặng Thị Mơ;84 98 765 4322;;\n\
               3;HS03;Bùi Văn Nam;2A;;;;;;Bùi Văn Ông;+84 91 234 5679\n\
               4;;;;;;;;;;\n\
               5;;;2A;Ai Đó;0912000009;;;;;\n\
               Tổng số: 3 học sinh;;;;;;;;;\n";
    let (st, r) = import(&app, t.school, "", csv.as_bytes().to_vec(), false).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["sheets"][0]["header_line"], 4, "{r}");
    assert_eq!(r["imported"], 3, "{r}");
    assert_eq!(r["sheets"][0].get("name"), None, "a CSV has no sheet: {r}");
    assert_eq!(
        cells(&r, "rejected"),
        [(9, "C9".into(), "required".into())],
        "a row with a parent and no student is rejected, an STT alone is skipped: {r}"
    );
    assert_eq!(cells(&r, "cell_errors"), [], "{r}");
    assert_eq!(
        cells(&r, "notes"),
        [(5, "F5".into(), "extra_phone".into())],
        "{r}"
    );
    let mut want = vec![
        l(
            "Trần Văn Khoa",
            "1A",
            "Trần Văn Lâm",
            Some("+84912345678"),
            None,
            "cha",
        ),
        l(
            "Vũ Thị Lan",
            "2A",
            "Đặng Thị Mơ",
            Some("+84987654322"),
            None,
            "mẹ",
        ),
        l(
            "Bùi Văn Nam",
            "2A",
            "Bùi Văn Ông",
            Some("+84912345679"),
            None,
            "người giám hộ",
        ),
    ];
    want.sort();
    assert_eq!(links(&app).await, want);

    // One class per sheet: the sheet "Lớp 5C" gives the class when there is no class column.
    let data = [
        xrow(1, &[("A", "Họ tên"), ("B", "SĐT liên hệ")]),
        xrow(2, &[("A", "Đinh Văn Phúc"), ("B", "0912 111 333")]),
    ]
    .concat();
    let (st, r) = import(&app, t.school, "", xlsx("Lớp 5C", &data), true).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        (
            r["sheets"][0]["class_from_title"].as_str(),
            r["classes_created"].as_u64()
        ),
        (Some("5C"), Some(1)),
        "{r}"
    );
    let got = links(&app).await;
    assert!(
        got.contains(&l(
            "Đinh Văn Phúc",
            "5C",
            "Phụ huynh em Đinh Văn Phúc",
            Some("+84912111333"),
            None,
            ""
        )),
        "{got:?}"
    );
}
