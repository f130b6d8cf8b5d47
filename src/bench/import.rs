//! Part 9: a school's roster export of `--import-rows` students as management software writes it (a
//! sheet per class with title rows, a two-row header, father and mother side by side, phones typed
//! as numbers, two numbers in a cell, landlines, typos, a total and a signature), imported the way
//! staff do it: a dry run, the import, and the same file again; wall time and peak memory of each.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use rust_xlsxwriter::{Format, Workbook};
use serde_json::Value;

use super::{BenchOptions, Report};
use crate::clock::now_ms;
use crate::store::Store;

/// Students per class sheet: a big school's class is 45; an export of a whole district's schools in
/// one file is what reaches 50,000 rows, so the sheets are long.
const PER_SHEET: usize = 1_000;

/// Rows of a sheet that are not students: three title lines, two header lines, a total and a
/// signature.
const OVERHEAD: usize = 7;

/// Students in a workbook of `rows` non-blank rows (what the import's row limit counts).
pub fn students(rows: usize) -> usize {
    rows - OVERHEAD * rows.div_ceil(PER_SHEET + OVERHEAD)
}

/// The workbook: `students(rows)` students over sheets of `PER_SHEET`, named `1A`, `1B`, ...,
/// `rows` rows in all.
pub fn workbook(rows: usize) -> anyhow::Result<Vec<u8>> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let sheets = rows.div_ceil(PER_SHEET + OVERHEAD);
    let total = students(rows);
    let mut n = 0usize;
    for s in 0..sheets {
        let class = format!("{}{}", 1 + s / 26 % 9, (b'A' + (s % 26) as u8) as char);
        let class = if s >= 26 * 9 {
            format!("{class}{}", s / (26 * 9))
        } else {
            class
        };
        let ws = wb.add_worksheet().set_name(&class)?;
        ws.merge_range(0, 0, 0, 8, "SỞ GIÁO DỤC VÀ ĐÀO TẠO HÒA BÌNH", &bold)?;
        ws.merge_range(1, 0, 1, 8, "TRƯỜNG TIỂU HỌC MỸ PHÚ", &bold)?;
        ws.merge_range(
            3,
            0,
            3,
            8,
            &format!("DANH SÁCH HỌC SINH LỚP {class} - NĂM HỌC 2026-2027"),
            &bold,
        )?;
        for (c, h) in ["STT", "Họ và tên", "Ngày sinh", "Giới tính"]
            .iter()
            .enumerate()
        {
            ws.merge_range(5, c as u16, 6, c as u16, h, &bold)?;
        }
        ws.merge_range(5, 4, 5, 5, "Thông tin cha", &bold)?;
        ws.merge_range(5, 6, 5, 7, "Thông tin mẹ", &bold)?;
        ws.write_string_with_format(5, 8, "Email phụ huynh", &bold)?;
        for (c, h) in [
            (4, "Họ tên"),
            (5, "Số điện thoại"),
            (6, "Họ tên"),
            (7, "Số điện thoại"),
        ] {
            ws.write_string_with_format(6, c, h, &bold)?;
        }
        let here = PER_SHEET.min(total - n);
        for i in 0..here {
            let r = 7 + i as u32;
            let k = n + i;
            ws.write_number(r, 0, (i + 1) as f64)?;
            ws.write_string(r, 1, format!("Nguyễn Văn Học {k}"))?;
            ws.write_string(r, 2, format!("{:02}/{:02}/2017", 1 + k % 28, 1 + k % 12))?;
            ws.write_string(r, 3, if k.is_multiple_of(2) { "Nam" } else { "Nữ" })?;
            ws.write_string(r, 4, format!("Nguyễn Văn Cha {k}"))?;
            // A third of the fathers' numbers typed as numbers (Excel dropped the 0).
            let father = 912_000_000 + k as u64;
            if k.is_multiple_of(3) {
                ws.write_number(r, 5, father as f64)?;
            } else {
                ws.write_string(r, 5, format!("0{father}"))?;
            }
            ws.write_string(r, 6, format!("Trần Thị Mẹ {k}"))?;
            let mother = match k % 50 {
                // Two numbers in one cell.
                0 => format!(
                    "0987.{:03}.{:03} - 0912 555 {:03}",
                    k / 1000 % 1000,
                    k % 1000,
                    k % 1000
                ),
                // A landline.
                1 => "0218 3851 234".to_string(),
                // A typo.
                2 => "09123".to_string(),
                _ => format!("098{:07}", k),
            };
            ws.write_string(r, 7, mother)?;
            if k.is_multiple_of(4) {
                ws.write_string(r, 8, format!("ph{k}@example.vn"))?;
            }
        }
        let end = 7 + here as u32;
        ws.write_string(end, 0, format!("Tổng cộng: {here} học sinh"))?;
        ws.write_string(end + 2, 6, "HIỆU TRƯỞNG")?;
        n += here;
    }
    Ok(wb.save_to_buffer()?)
}

/// Peak RSS of a process that runs `command`: the kernel keeps, across exec, the larger of the
/// new program's peak and the RSS of the process that exec'd, and a child spawned straight from
/// the benchmark (hundreds of MiB after generating the workbook) would report that. So the
/// benchmark starts `loa bench-measure -- <command>`, a fresh small process, which runs the
/// command, waits for it with wait4 and prints `maxrss_kib <n>` after the command's output.
pub fn measure(command: &[String]) -> anyhow::Result<()> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("bench-measure: no command"))?;
    let child = Command::new(program).args(args).spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid with valid pointers; `child` is not waited on again.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        anyhow::bail!("bench-measure: {program} failed ({status})");
    }
    println!("\nmaxrss_kib {}", usage.ru_maxrss);
    Ok(())
}

/// One import as staff run it, `loa import contacts FILE --org CODE [--dry-run] --json` in its own
/// process (so that its peak memory is the import's alone): the report, wall seconds, and the
/// import's peak RSS (MiB).
fn timed(db: &str, file: &Path, org: &str, dry_run: bool) -> anyhow::Result<(Value, f64, f64)> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(&exe);
    cmd.args(["bench-measure", "--"])
        .arg(&exe)
        .args(["import", "contacts"])
        .arg(file)
        .args(["--org", org, "--json"])
        .env_remove("LOA_CONFIG")
        .env("LOA__DATABASE__URL", db)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if dry_run {
        cmd.arg("--dry-run");
    }
    let started = Instant::now();
    let out = cmd.output()?;
    let took = started.elapsed().as_secs_f64();
    if !out.status.success() {
        anyhow::bail!(
            "import bench: `loa import contacts` failed ({})",
            out.status
        );
    }
    let out = String::from_utf8_lossy(&out.stdout);
    let (report, rss) = out
        .trim()
        .rsplit_once("\nmaxrss_kib ")
        .ok_or_else(|| anyhow::anyhow!("import bench: no peak RSS in the output"))?;
    let report: Value = serde_json::from_str(report.trim())?;
    Ok((report, took, rss.trim().parse::<f64>()? / 1024.0))
}

/// Part 9.
pub async fn import(opts: &BenchOptions, r: &mut Report) -> anyhow::Result<()> {
    let dir = opts.dir.join("import");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = super::database_url(opts, &dir).await?;
    let store: Arc<dyn Store> = crate::store::open(&db).await?;
    store.migrate().await?;
    let d = super::seed::district(&store, 1, 1, now_ms()).await?;
    let school = store.get_org(d.classes[0].1).await?.code;
    let path = dir.join("roster-export.xlsx");
    let bytes = workbook(opts.import_rows)?;
    std::fs::write(&path, &bytes)?;
    let want = students(opts.import_rows) as u64;
    r.import_rows = opts.import_rows;
    r.import_students = want as usize;
    r.import_file_mib = Some(bytes.len() as f64 / (1024.0 * 1024.0));
    drop(bytes);
    let (dry, dry_s, dry_peak) = timed(&db, &path, &school, true)?;
    let (first, first_s, first_peak) = timed(&db, &path, &school, false)?;
    let (again, again_s, again_peak) = timed(&db, &path, &school, false)?;
    let n = |r: &Value, k: &str| r[k].as_u64().unwrap_or(u64::MAX);
    if n(&dry, "imported") != want || n(&first, "students_created") != want {
        anyhow::bail!(
            "import bench: {} of {want} students imported ({} created)",
            n(&first, "imported"),
            n(&first, "students_created")
        );
    }
    let counts = |r: &Value| {
        let mut r = r.clone();
        if let Some(o) = r.as_object_mut() {
            o.remove("dry_run");
        }
        r
    };
    if counts(&dry) != counts(&first) {
        anyhow::bail!("import bench: the dry run's report differs from the import's");
    }
    if n(&first, "parents_created") != 2 * want {
        anyhow::bail!(
            "import bench: {} parents created for {want} students with a father and a mother each",
            n(&first, "parents_created")
        );
    }
    let changed: u64 = [
        "students_created",
        "students_updated",
        "parents_created",
        "parents_updated",
        "links_created",
    ]
    .iter()
    .map(|k| n(&again, k))
    .sum();
    if changed != 0 {
        anyhow::bail!("import bench: importing the same file again changed {changed} things");
    }
    (r.import_dry_s, r.import_first_s, r.import_again_s) =
        (Some(dry_s), Some(first_s), Some(again_s));
    (
        r.import_dry_peak_mib,
        r.import_first_peak_mib,
        r.import_again_peak_mib,
    ) = (Some(dry_peak), Some(first_peak), Some(again_peak));
    Ok(())
}
