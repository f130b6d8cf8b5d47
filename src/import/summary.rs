//! An import report as the lines a school's staff read in a terminal: sheets read or passed over,
//! what went in (or would, in a dry run), the roster figures, then every rejected row, dropped cell
//! and note, each naming its place.

use std::fmt::Write;

use super::ImportReport;
use super::roster::ListKind;

pub fn text(node: &str, r: &ImportReport) -> String {
    let mut out = String::new();
    if r.dry_run {
        out.push_str("CHẠY THỬ: chưa ghi gì vào Loa. Nhập thật sẽ cho đúng kết quả dưới đây.\n");
    }
    if let Some(e) = r.encoding.filter(|e| *e != "utf-8") {
        let _ = writeln!(out, "Bảng mã của tệp: {e}.");
    }
    for s in &r.sheets {
        let name = s
            .name
            .as_deref()
            .map(|n| format!("Trang \"{n}\""))
            .unwrap_or_else(|| "Tệp".into());
        match (&s.skipped, s.header_line) {
            (Some(why), _) => {
                let _ = writeln!(out, "{name}: bỏ qua ({why}).");
            }
            (None, Some(line)) => {
                let what = match s.kind {
                    Some(ListKind::Staff) => "danh sách cán bộ",
                    _ => "danh sách học sinh",
                };
                let class = s
                    .class_from_title
                    .as_deref()
                    .map(|c| format!(", lớp {c} lấy từ tên trang hoặc tiêu đề"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{name}: {what}, dòng tiêu đề của bảng là dòng {line}{class}; {}/{} dòng được nhập.",
                    s.imported, s.rows
                );
            }
            (None, None) => {}
        }
    }
    let c = &r.counts;
    let verb = if r.dry_run {
        "sẽ nhập"
    } else {
        "đã nhập"
    };
    let _ = write!(out, "{node}: {verb} {}/{} dòng.", r.imported, r.rows);
    if r.figures.students > 0 || c.students_created + c.students_updated > 0 {
        let _ = write!(
            out,
            " Học sinh: {} mới, {} cập nhật ({} chuyển lớp). Phụ huynh: {} mới, {} cập nhật. Lớp mới: {}. Liên kết mới: {}.",
            c.students_created,
            c.students_updated,
            c.students_moved,
            c.parents_created,
            c.parents_updated,
            c.classes_created,
            c.links_created
        );
    }
    if c.staff_created + c.staff_updated > 0 {
        let _ = write!(
            out,
            " Cán bộ: {} mới, {} cập nhật.",
            c.staff_created, c.staff_updated
        );
    }
    out.push('\n');
    let f = &r.figures;
    if f.students > 0 {
        let _ = writeln!(
            out,
            "Theo tệp: {} học sinh; {} có phụ huynh liên lạc được (số di động: {}, email: {}, Zalo: {}); {} chưa liên lạc được (không có phụ huynh: {}, phụ huynh không có số/email: {}, chỉ có số máy bàn: {}, số sai: {}).",
            f.students,
            f.reachable,
            f.with_mobile,
            f.with_email,
            f.with_zalo_id,
            f.unreachable,
            f.no_parent,
            f.no_address,
            f.landline_only,
            f.invalid_number
        );
    }
    // Each message already names its place (sheet, line, column letter and header).
    for (list, title) in [
        (&r.rejected, "dòng bị từ chối (không được nhập)"),
        (
            &r.cell_errors,
            "ô bị bỏ qua (phần còn lại của dòng vẫn được nhập)",
        ),
        (&r.notes, "lưu ý"),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "{} {title}:", list.len());
            for e in list {
                let _ = writeln!(out, "  {}", e.message);
            }
        }
    }
    out
}
