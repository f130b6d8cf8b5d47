//! Issue 16, the files schools really have: a whole school in one workbook (a class per sheet, a
//! notes sheet, a hidden list), a dry run that reports exactly what the import then does, next
//! year's file promoting classes without duplicating anyone, staff lists, CSV in legacy encodings,
//! and the copy of the upload with an error column.

mod common;

use calamine::{Reader, Xlsx};
use common::importing::*;
use common::*;
use reqwest::StatusCode;
use rust_xlsxwriter::{Format, Workbook, Worksheet};
use serde_json::{Value, json};

/// Writes a class sheet as management software exports it: ministry and school lines, the list's
/// title (naming the class), a header on line 4, the rows, a total and a signature.
fn class_sheet(ws: &mut Worksheet, title: &str, header: &[&str], rows: &[&[&str]]) {
    let bold = Format::new().set_bold();
    ws.merge_range(0, 0, 0, 5, "SỞ GIÁO DỤC VÀ ĐÀO TẠO HÒA BÌNH", &bold)
        .unwrap();
    ws.merge_range(1, 0, 1, 5, title, &bold).unwrap();
    for (c, h) in header.iter().enumerate() {
        ws.write_string(3, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            // A phone typed as a number: Excel drops its 0.
            match v.strip_prefix('#') {
                Some(n) => ws
                    .write_number(4 + r as u32, c as u16, n.parse::<f64>().unwrap())
                    .unwrap(),
                None => ws.write_string(4 + r as u32, c as u16, *v).unwrap(),
            };
        }
    }
    let end = 4 + rows.len() as u32;
    ws.write_string(end, 0, format!("Tổng cộng: {} học sinh", rows.len()))
        .unwrap();
    ws.write_string(end + 2, 4, "HIỆU TRƯỞNG").unwrap();
}

const HEADER: &[&str] = &[
    "STT",
    "Họ và tên",
    "Họ tên cha",
    "SĐT cha",
    "Họ tên mẹ",
    "SĐT mẹ",
];

/// A school's workbook: 4A and "Lớp 4B" with their students, a notes sheet, a hidden list.
fn school_workbook() -> Vec<u8> {
    let mut wb = Workbook::new();
    class_sheet(
        wb.add_worksheet().set_name("4A").unwrap(),
        "DANH SÁCH HỌC SINH LỚP 4A - NĂM HỌC 2026-2027",
        HEADER,
        &[
            &[
                "1",
                "Nguyễn Văn An",
                "Nguyễn Văn Ba",
                "#912000001",
                "Lê Thị Cúc",
                "0987 000 002",
            ],
            // Two numbers in one cell: the first is the one Loa sends to, the second is kept.
            &[
                "2",
                "Trần Thị Bình",
                "Trần Văn Dũng",
                "0912.000.003 - 0912000004",
                "",
                "",
            ],
            // Only a landline: kept for the record, never sent to; the family is not reachable.
            &["3", "Lê Văn Cường", "Lê Văn Em", "0218 3851 234", "", ""],
        ],
    );
    class_sheet(
        wb.add_worksheet().set_name("Lớp 4B").unwrap(),
        "DANH SÁCH HỌC SINH - NĂM HỌC 2026-2027",
        HEADER,
        &[
            &["1", "Phạm Thị Dung", "", "", "Vũ Thị Gấm", "0912000005"],
            // A typo in the mother's number loses only that number.
            &[
                "2",
                "Hoàng Văn Giang",
                "Hoàng Văn Hải",
                "0912000006",
                "Đỗ Thị Hoa",
                "09123",
            ],
            // No parent at all: imported, counted as not reachable.
            &["3", "Đinh Thị Hương", "", "", "", ""],
        ],
    );
    let notes = wb.add_worksheet().set_name("Ghi chú").unwrap();
    notes
        .write_string(0, 0, "Danh sách cập nhật ngày 05/09/2026")
        .unwrap();
    notes
        .write_string(1, 0, "Liên hệ cô Lan nếu có sai sót")
        .unwrap();
    let hidden = wb.add_worksheet().set_name("DM").unwrap();
    hidden.write_string(0, 0, "Họ và tên").unwrap();
    hidden.write_string(1, 0, "Không phải học sinh").unwrap();
    hidden.set_hidden(true);
    wb.save_to_buffer().unwrap()
}

/// The report without what differs between a dry run and the import it announces.
fn outcome(r: &Value) -> Value {
    let mut r = r.clone();
    r.as_object_mut().unwrap().remove("dry_run");
    r
}

#[tokio::test]
async fn a_whole_school_in_one_workbook_with_a_dry_run_first() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let file = school_workbook();

    let (st, dry) = import(&app, t.school, "&dry_run=true", file.clone(), true).await;
    assert_eq!(st, StatusCode::OK, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(links(&app).await, vec![], "a dry run writes nothing");
    let (_, c) = app
        .get(&format!("/api/v1/contacts?org_id={}", t.school))
        .await;
    assert_eq!(c["contacts"], json!([]), "{c}");

    let (st, r) = import(&app, t.school, "", file.clone(), true).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["dry_run"], false);
    assert_eq!(outcome(&dry), outcome(&r), "the dry run said exactly this");

    let sheets: Vec<(Value, Value, Value, Value)> = r["sheets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].clone(),
                s["kind"].clone(),
                s["header_line"].clone(),
                s["class_from_title"].clone(),
            )
        })
        .collect();
    assert_eq!(
        sheets,
        [
            (json!("4A"), json!("roster"), json!(4), json!("4A")),
            (json!("Lớp 4B"), json!("roster"), json!(4), json!("4B")),
            (json!("Ghi chú"), Value::Null, Value::Null, Value::Null),
            (json!("DM"), Value::Null, Value::Null, Value::Null),
        ],
        "{r}"
    );
    assert_eq!(r["sheets"][3]["skipped"], "trang tính bị ẩn", "{r}");
    assert_eq!(
        (r["rows"].as_u64(), r["imported"].as_u64()),
        (Some(6), Some(6)),
        "{r}"
    );
    assert_eq!(r["students_created"], 6, "{r}");
    assert_eq!(r["classes_created"], 1, "4B exists, 4A is created: {r}");
    assert_eq!(
        r["figures"],
        json!({"students": 6, "with_mobile": 4, "with_email": 0, "with_zalo_id": 0,
               "reachable": 4, "unreachable": 2, "no_parent": 1, "no_address": 0,
               "landline_only": 1, "invalid_number": 0}),
        "{r}"
    );
    assert_eq!(
        cells(&r, "cell_errors"),
        [(6, "F6".into(), "invalid_phone".into())],
        "{r}"
    );
    assert_eq!(r["cell_errors"][0]["sheet"], "Lớp 4B");
    let notes = cells(&r, "notes");
    assert!(notes.contains(&(7, "D7".into(), "landline".into())), "{r}");
    assert!(
        notes.contains(&(6, "D6".into(), "extra_phone".into())),
        "{r}"
    );

    let mut want = vec![
        l(
            "Nguyễn Văn An",
            "4A",
            "Nguyễn Văn Ba",
            Some("+84912000001"),
            None,
            "cha",
        ),
        l(
            "Nguyễn Văn An",
            "4A",
            "Lê Thị Cúc",
            Some("+84987000002"),
            None,
            "mẹ",
        ),
        l(
            "Trần Thị Bình",
            "4A",
            "Trần Văn Dũng",
            Some("+84912000003"),
            None,
            "cha",
        ),
        l("Lê Văn Cường", "4A", "Lê Văn Em", None, None, "cha"),
        l(
            "Phạm Thị Dung",
            "4B",
            "Vũ Thị Gấm",
            Some("+84912000005"),
            None,
            "mẹ",
        ),
        l(
            "Hoàng Văn Giang",
            "4B",
            "Hoàng Văn Hải",
            Some("+84912000006"),
            None,
            "cha",
        ),
        l("Hoàng Văn Giang", "4B", "Đỗ Thị Hoa", None, None, "mẹ"),
    ];
    want.sort();
    assert_eq!(links(&app).await, want);

    // The second number and the landline are kept on the person, and shown to admins.
    let (_, c) = app
        .get(&format!(
            "/api/v1/contacts?org_id={}&role=parent&q=dung",
            t.school
        ))
        .await;
    assert_eq!(
        c["contacts"][0]["other_phones"],
        json!(["+84912000004"]),
        "{c}"
    );
    let (_, c) = app
        .get(&format!(
            "/api/v1/contacts?org_id={}&role=parent&q=le van em",
            t.school
        ))
        .await;
    assert_eq!(c["contacts"][0]["landline"], "+842183851234", "{c}");
    assert_eq!(c["contacts"][0]["phone"], Value::Null, "{c}");

    // Only mobiles get SMS: neither the landline nor the second number is sent to.
    assert_eq!(
        parent_phones(&app, t.school).await,
        [
            "+84912000001",
            "+84912000003",
            "+84912000005",
            "+84912000006",
            "+84987000002"
        ]
    );

    // The same workbook again changes nothing, and a dry run of it says so.
    let (_, again) = import(&app, t.school, "&dry_run=true", file, true).await;
    for k in [
        "students_created",
        "students_updated",
        "parents_created",
        "parents_updated",
        "links_created",
    ] {
        assert_eq!(again[k], 0, "{k}: {again}");
    }
}

#[tokio::test]
async fn next_years_file_promotes_classes_without_duplicating_anyone() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let year1 = "Họ và tên;Lớp;Họ tên cha;SĐT cha;Họ tên mẹ;SĐT mẹ\n\
                 Nguyễn Văn An;4B;Nguyễn Văn Ba;0912000001;;\n\
                 Trần Thị Bình;4B;;;Lê Thị Cúc;0912000002\n\
                 Nguyễn Văn An;1A;Phạm Văn Đức;0912000009;;\n";
    let (st, r) = import(&app, t.school, "", year1.as_bytes().to_vec(), false).await;
    assert_eq!(
        (st, r["students_created"].as_u64()),
        (StatusCode::OK, Some(3)),
        "{r}"
    );

    // A year later: An and Bình are in 5B, found by their name and a parent's number; the other
    // An (another family) stays in 1A; Cường is new, and so is a third An (5A) with no shared parent.
    let year2 = "Họ và tên;Lớp;Họ tên cha;SĐT cha;Họ tên mẹ;SĐT mẹ\n\
                 Nguyễn Văn An;5B;Nguyễn Văn Ba;0912000001;;\n\
                 Trần Thị Bình;5B;;;Lê Thị Cúc;0912 000 002\n\
                 Lê Văn Cường;5B;Lê Văn Em;0912000003;;\n\
                 Nguyễn Văn An;5A;Hồ Văn Giàu;0912000010;;\n";
    let (_, dry) = import(
        &app,
        t.school,
        "&dry_run=true",
        year2.as_bytes().to_vec(),
        false,
    )
    .await;
    let (_, r) = import(&app, t.school, "", year2.as_bytes().to_vec(), false).await;
    assert_eq!(outcome(&dry), outcome(&r));
    assert_eq!(
        (
            r["students_created"].as_u64(),
            r["students_updated"].as_u64(),
            r["students_moved"].as_u64(),
            r["classes_created"].as_u64()
        ),
        (Some(2), Some(2), Some(2), Some(2)),
        "{r}"
    );
    let mut got = links(&app).await;
    got.sort();
    let mut want = vec![
        l(
            "Nguyễn Văn An",
            "5B",
            "Nguyễn Văn Ba",
            Some("+84912000001"),
            None,
            "cha",
        ),
        l(
            "Trần Thị Bình",
            "5B",
            "Lê Thị Cúc",
            Some("+84912000002"),
            None,
            "mẹ",
        ),
        l(
            "Nguyễn Văn An",
            "1A",
            "Phạm Văn Đức",
            Some("+84912000009"),
            None,
            "cha",
        ),
        l(
            "Lê Văn Cường",
            "5B",
            "Lê Văn Em",
            Some("+84912000003"),
            None,
            "cha",
        ),
        l(
            "Nguyễn Văn An",
            "5A",
            "Hồ Văn Giàu",
            Some("+84912000010"),
            None,
            "cha",
        ),
    ];
    want.sort();
    assert_eq!(got, want);

    // A family in common says more than a class and a name: Loa holds Khánh in 1A; the new file has
    // a new pupil Khánh in 1A (another family) and Khánh moved to 4B with the old family's number,
    // now second in the cell after a new one. The old Khánh moves; the 1A row is a new pupil; the
    // mother is found again by the number she had, not created twice.
    let v1 = "Họ và tên;Lớp;Họ tên mẹ;SĐT mẹ\nĐào Minh Khánh;1A;Mai Thị Lụa;0912000020\n";
    import(&app, t.school, "", v1.as_bytes().to_vec(), false).await;
    let v2 = "Họ và tên;Lớp;Họ tên mẹ;SĐT mẹ\n\
              Đào Minh Khánh;1A;Tạ Thị Nhung;0912000030\n\
              Đào Minh Khánh;4B;Mai Thị Lụa;0912000021 / 0912000020\n";
    let (_, r) = import(&app, t.school, "", v2.as_bytes().to_vec(), false).await;
    assert_eq!(
        (
            r["students_created"].as_u64(),
            r["students_moved"].as_u64(),
            r["parents_created"].as_u64(),
            r["parents_updated"].as_u64()
        ),
        (Some(1), Some(1), Some(1), Some(1)),
        "{r}"
    );
    let got: Vec<Link> = links(&app)
        .await
        .into_iter()
        .filter(|l| l.0 == "Đào Minh Khánh")
        .collect();
    assert_eq!(
        got,
        [
            l(
                "Đào Minh Khánh",
                "4B",
                "Mai Thị Lụa",
                Some("+84912000021"),
                None,
                "mẹ"
            ),
            l(
                "Đào Minh Khánh",
                "1A",
                "Tạ Thị Nhung",
                Some("+84912000030"),
                None,
                "mẹ"
            ),
        ]
    );

    // With student codes the code decides, whatever the name and class.
    let v1 = "Mã HS;Họ và tên;Lớp;SĐT phụ huynh\nHS9;Vũ Văn Khoa;4B;0912000011\n";
    let v2 = "Mã HS;Họ và tên;Lớp;SĐT phụ huynh\nHS9;Vũ Văn Khoa;5B;0912000011\n";
    import(&app, t.school, "", v1.as_bytes().to_vec(), false).await;
    let (_, r) = import(&app, t.school, "", v2.as_bytes().to_vec(), false).await;
    assert_eq!(
        (r["students_created"].as_u64(), r["students_moved"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );
}

#[tokio::test]
async fn staff_lists_import_into_a_school_or_a_phong() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet().set_name("CBGVNV").unwrap();
    let rows: &[&[&str]] = &[
        &[
            "1",
            "Nguyễn Thị Lan",
            "Hiệu trưởng",
            "Tổ Văn phòng",
            "0912 100 001",
            "lan.nt@th-myphu.edu.vn",
        ],
        &[
            "2",
            "Trần Văn Minh",
            "Giáo viên",
            "Tổ 4-5",
            "0912100002",
            "not-an-email",
        ],
        &[
            "3",
            "Lê Thị Nga",
            "Kế toán",
            "Tổ Văn phòng",
            "0218 3851 000",
            "",
        ],
    ];
    let header = [
        "STT",
        "Họ và tên",
        "Chức vụ",
        "Tổ chuyên môn",
        "Số điện thoại",
        "Email",
    ];
    ws.write_string(0, 0, "DANH SÁCH CÁN BỘ, GIÁO VIÊN, NHÂN VIÊN")
        .unwrap();
    for (c, h) in header.iter().enumerate() {
        ws.write_string(2, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                ws.write_string(3 + r as u32, c as u16, *v).unwrap();
            }
        }
    }
    let file = wb.save_to_buffer().unwrap();

    let (st, r) = import(&app, t.school, "", file.clone(), true).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["sheets"][0]["kind"], "staff", "the columns say so: {r}");
    assert_eq!(
        (r["staff_created"].as_u64(), r["students_created"].as_u64()),
        (Some(3), Some(0)),
        "{r}"
    );
    assert_eq!(
        cells(&r, "cell_errors"),
        [(5, "F5".into(), "invalid_email".into())],
        "{r}"
    );
    let (_, c) = app
        .get(&format!("/api/v1/contacts?org_id={}&role=staff", t.school))
        .await;
    let staff: Vec<(Value, Value, Value, Value, Value)> = c["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["full_name"].clone(),
                p["position"].clone(),
                p["group"].clone(),
                p["phone"].clone(),
                p["landline"].clone(),
            )
        })
        .collect();
    assert_eq!(
        staff,
        [
            (
                json!("Nguyễn Thị Lan"),
                json!("Hiệu trưởng"),
                json!("Tổ Văn phòng"),
                json!("+84912100001"),
                Value::Null
            ),
            (
                json!("Trần Văn Minh"),
                json!("Giáo viên"),
                json!("Tổ 4-5"),
                json!("+84912100002"),
                Value::Null
            ),
            (
                json!("Lê Thị Nga"),
                json!("Kế toán"),
                json!("Tổ Văn phòng"),
                Value::Null,
                json!("+842183851000")
            ),
        ],
        "{c}"
    );

    // Again: nobody new; a new position is one update.
    let (_, r) = import(&app, t.school, "", file, true).await;
    assert_eq!(
        (r["staff_created"].as_u64(), r["staff_updated"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    let csv = "Họ và tên;Chức vụ;SĐT\nTrần Văn Minh;Tổ trưởng;0912100002\n";
    let (_, r) = import(&app, t.school, "", csv.as_bytes().to_vec(), false).await;
    assert_eq!(
        (r["staff_created"].as_u64(), r["staff_updated"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );

    // Two teachers of one name without numbers, and two sharing the office phone, are four people.
    let csv = "Họ và tên;Tổ;SĐT\nNguyễn Thị Hương;Tổ Văn;\nNguyễn Thị Hương;Tổ Toán;\n\
               Bùi Văn Quang;Tổ Văn phòng;0912 999 000\nHà Thị Quế;Tổ Văn phòng;0912 999 000\n";
    let (_, r) = import(&app, t.school, "", csv.as_bytes().to_vec(), false).await;
    assert_eq!(
        (r["staff_created"].as_u64(), r["staff_updated"].as_u64()),
        (Some(4), Some(0)),
        "{r}"
    );

    // A Phòng's own staff: a list without position columns, told by `kind=staff`.
    let csv = "Họ và tên,Điện thoại\nĐỗ Văn Phong,0912100009\n";
    let (st, r) = import(
        &app,
        t.district,
        "&kind=staff",
        csv.as_bytes().to_vec(),
        false,
    )
    .await;
    assert_eq!(
        (st, r["staff_created"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{r}"
    );
    // Into a Phòng a list is its staff unless it names classes or parents: the same list again,
    // without `kind`, is the same person.
    let (st, r) = import(&app, t.district, "", csv.as_bytes().to_vec(), false).await;
    assert_eq!(
        (st, r["staff_created"].as_u64(), r["staff_updated"].as_u64()),
        (StatusCode::OK, Some(0), Some(0)),
        "{r}"
    );
    let (st, r) = import(
        &app,
        t.district,
        "&kind=teachers",
        csv.as_bytes().to_vec(),
        false,
    )
    .await;
    assert_eq!(
        (st, &r["error"]["details"][0]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("kind")),
        "{r}"
    );
}

/// `Nguyễn Thị Ánh` in Windows-1258: base letters with the combining tone marks of the code page
/// (acute 0xEC, tilde 0xDE, dot below 0xF2), and the letters with hats precomposed (ê 0xEA).
const CP1258: &[u8] = b"H\x6F\xF2 v\x61\xCC t\xEAn;L\xF5\xECp;S\xD0T\n\
    Nguy\xEA\xDEn Thi\xF2 A\xECnh;4B;0912000001\n\
    Tr\xE2\xCC\x6E V\xE3n \xD0\xF4ng;4B;0912000002\n";

/// The same file in TCVN3 (ABC), where each letter with its tone is one byte: ọ 0xE4, à 0xB5,
/// ê 0xAA, ớ 0xED, Đ 0xA7, ễ 0xD4, ị 0xDE, á 0xB8 (TCVN3 has no capital Á: old files write á).
const TCVN3: &[u8] = b"H\xE4 v\xB5 t\xAAn;L\xEDp;S\xA7T\n\
    Nguy\xD4n Th\xDE \xB8nh;4B;0912000001\n";

#[tokio::test]
async fn csv_from_old_tools_in_legacy_encodings() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let (st, r) = import(&app, t.school, "", CP1258.to_vec(), false).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["encoding"], "windows-1258", "{r}");
    assert_eq!(r["imported"], 2, "{r}");
    let (st, r) = import(&app, t.school, "", TCVN3.to_vec(), false).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["encoding"], "tcvn3", "{r}");
    let names: Vec<String> = links(&app).await.into_iter().map(|l| l.0).collect();
    assert_eq!(
        names,
        ["Nguyễn Thị Ánh", "Nguyễn Thị ánh", "Trần Văn Đông"],
        "decoded and stored NFC (the decomposed Windows-1258 text composed)"
    );
    // Told the encoding, Loa does not guess; an unknown name is refused with the field.
    let (st, r) = import(&app, t.school, "&encoding=tcvn3", CP1258.to_vec(), false).await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "read as TCVN3 the header is gibberish: {r}"
    );
    let (st, r) = import(&app, t.school, "&encoding=latin9", CP1258.to_vec(), false).await;
    assert_eq!(
        (st, &r["error"]["details"][0]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("encoding")),
        "{r}"
    );
    // An old .xls is named as such, with what to do.
    let mut xls = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
    xls.resize(512, 0);
    let (st, r) = import(&app, t.school, "", xls, false).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(r.to_string().contains(".xlsx"), "{r}");
}

/// Reads every sheet of a workbook as rows of text.
fn read_back(bytes: &[u8]) -> Vec<(String, Vec<Vec<String>>)> {
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names = book.sheet_names();
    names
        .into_iter()
        .map(|n| {
            let range = book.worksheet_range(&n).unwrap();
            let (r0, c0) = range.start().unwrap_or((0, 0));
            let mut rows = vec![vec![]; r0 as usize];
            for row in range.rows() {
                let mut cells = vec![String::new(); c0 as usize];
                cells.extend(row.iter().map(|d| d.to_string()));
                rows.push(cells);
            }
            (n, rows)
        })
        .collect()
}

#[tokio::test]
async fn the_rejected_cells_come_back_as_a_copy_of_the_upload_with_an_error_column() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let (st, ctype, body) = import_raw(
        &app,
        t.school,
        "&dry_run=true&format=xlsx",
        school_workbook(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(ctype.contains("spreadsheetml"), "{ctype}");
    let book = read_back(&body);
    let names: Vec<&str> = book.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["4A", "Lớp 4B", "Ghi chú", "DM"],
        "every sheet, in order"
    );
    let (_, b) = &book[1];
    // Line 4 is the header, line 6 Giang's with the mother's typo; the error column is G.
    assert_eq!(b[3][1], "Họ và tên");
    assert_eq!(b[3][6], "Lỗi cần sửa");
    assert_eq!(b[5][1], "Hoàng Văn Giang", "the cells are the upload's");
    assert!(
        b[5][6].contains("\"09123\"") && b[5][6].contains("cột F"),
        "the mother's typo, by value and column: {:?}",
        b[5]
    );
    assert!(
        b[4].get(6).is_none_or(|c| c.is_empty()),
        "a good row has no message: {:?}",
        b[4]
    );
    assert_eq!(links(&app).await, vec![], "a dry run's copy wrote nothing");

    // A CSV comes back as a workbook too, its rejected row named.
    let csv = "Họ tên;Lớp;SĐT\n;4B;0912000001\nAn;4B;12ab\n";
    let (st, _, body) = import_raw(
        &app,
        t.school,
        "&dry_run=true&format=xlsx",
        csv.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let book = read_back(&body);
    let (_, rows) = &book[0];
    assert_eq!(rows[0][3], "Lỗi cần sửa");
    assert!(rows[1][3].contains("thiếu họ tên"), "{:?}", rows[1]);
    assert!(rows[2][3].contains("12ab"), "{:?}", rows[2]);
    let (st, r) = import(
        &app,
        t.school,
        "&format=pdf",
        csv.as_bytes().to_vec(),
        false,
    )
    .await;
    assert_eq!(
        (st, &r["error"]["details"][0]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("format")),
        "{r}"
    );
}

#[tokio::test]
async fn a_second_number_several_families_share_never_merges_them() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    // The grandmother's number after each mother's own: two mothers, each with that other phone.
    let csv = "Họ và tên;Lớp;Họ tên mẹ;SĐT mẹ\n\
               Lý Văn An;1A;Lý Thị Hạnh;0912000041 / 0912000049\n\
               Mạc Thị Bình;1A;Mạc Thị Hiền;0912000042 - 0912000049\n";
    let (_, r) = import(&app, t.school, "", csv.as_bytes().to_vec(), false).await;
    assert_eq!(r["parents_created"], 2, "{r}");
    let mut got = links(&app).await;
    got.sort();
    assert_eq!(
        got,
        [
            l(
                "Lý Văn An",
                "1A",
                "Lý Thị Hạnh",
                Some("+84912000041"),
                None,
                "mẹ"
            ),
            l(
                "Mạc Thị Bình",
                "1A",
                "Mạc Thị Hiền",
                Some("+84912000042"),
                None,
                "mẹ"
            ),
        ]
    );
    // Again, nothing changes; and a mother who now gives only her second number is still herself.
    let (_, r) = import(&app, t.school, "", csv.as_bytes().to_vec(), false).await;
    assert_eq!(
        (r["parents_created"].as_u64(), r["parents_updated"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    let csv = "Họ và tên;Lớp;Họ tên mẹ;SĐT mẹ\nLý Văn An;1A;Lý Thị Hạnh;0912000049 / 0912000041\n";
    let (_, r) = import(&app, t.school, "", csv.as_bytes().to_vec(), false).await;
    assert_eq!(
        (r["parents_created"].as_u64(), r["links_created"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
}

#[tokio::test]
async fn father_and_mother_giving_the_family_number_stay_two_people() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let csv = "Họ và tên;Lớp;Họ tên cha;SĐT cha;Họ tên mẹ;SĐT mẹ\n\
               Lê Thị Bình;1A;Lê Văn Cường;0913000111;Phạm Thị Dung;0913000111\n\
               Lê Văn Hà;1A;;;Vũ Thị Lan;0913000111\n";
    let (_, dry) = import(
        &app,
        t.school,
        "&dry_run=true",
        csv.as_bytes().to_vec(),
        false,
    )
    .await;
    let (_, r) = import(&app, t.school, "", csv.as_bytes().to_vec(), false).await;
    assert_eq!(outcome(&dry), outcome(&r));
    assert_eq!(r["parents_created"], 3, "{r}");
    let shared: Vec<(u64, String, String)> = cells(&r, "notes")
        .into_iter()
        .filter(|n| n.2 == "shared_phone")
        .collect();
    assert_eq!(
        shared,
        [
            (2, "F2".into(), "shared_phone".into()),
            (3, "F3".into(), "shared_phone".into())
        ],
        "{r}"
    );
    let mut got = links(&app).await;
    got.sort();
    assert_eq!(
        got,
        [
            l(
                "Lê Thị Bình",
                "1A",
                "Lê Văn Cường",
                Some("+84913000111"),
                None,
                "cha"
            ),
            l("Lê Thị Bình", "1A", "Phạm Thị Dung", None, None, "mẹ"),
            l("Lê Văn Hà", "1A", "Vũ Thị Lan", None, None, "mẹ"),
        ]
    );
    // Again: nobody renamed, nothing new.
    let (_, r) = import(&app, t.school, "", csv.as_bytes().to_vec(), false).await;
    assert_eq!(
        (r["parents_created"].as_u64(), r["parents_updated"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
}

#[tokio::test]
async fn last_years_codes_and_this_years_export_without_them() {
    let app = spawn_app(|_, _| {}).await;
    let t = tree(&app).await;
    let v1 =
        "Mã HS;Họ và tên;Lớp;Họ tên cha;SĐT cha\nHS1;Nguyễn Văn An;4B;Nguyễn Văn Ba;0912345678\n";
    let v2 = "Họ và tên;Lớp;Họ tên cha;SĐT cha\nNguyễn Văn An;Lớp 5b;Nguyễn Văn Ba;0912345678\n";
    import(&app, t.school, "", v1.as_bytes().to_vec(), false).await;
    let (_, r) = import(&app, t.school, "", v2.as_bytes().to_vec(), false).await;
    assert_eq!(
        (r["students_created"].as_u64(), r["students_moved"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );
    assert_eq!(
        links(&app).await,
        [l(
            "Nguyễn Văn An",
            "5B",
            "Nguyễn Văn Ba",
            Some("+84912345678"),
            None,
            "cha"
        )],
        "the class cell \"Lớp 5b\" is class 5B"
    );
}
