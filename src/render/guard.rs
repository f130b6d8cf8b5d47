//! What a template may contain and what one render may cost: the language subset school messages
//! need, the fuel (instructions) and output a render may spend, and filters with bounded results.
//! Authors are staff, but a template runs for every parent, so nothing in it may stop the daemon.

use std::io::Write;

use minijinja::machinery::ast::{BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::{WhitespaceConfig, parse};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error, ErrorKind};

/// Instructions one field's render may execute. A message with a loop over ten children uses a few
/// hundred; 25 nested loops (about 10^25 steps) stop here after a few milliseconds.
pub const FUEL: u64 = 50_000;

/// Longest template source per field, in bytes: an email's HTML body, or any other field.
pub const MAX_SOURCE_HTML: usize = 64 * 1024;
pub const MAX_SOURCE: usize = 8 * 1024;

/// Expression nodes in one field. Every node runs at most once per fuel unit, and an expression's
/// value grows at most with the nodes that build it, so this and the fuel bound a render's memory.
pub const MAX_NODES: usize = 2_000;

/// How deep expressions may nest. `a ~ b ~ c ...` and `x|f|g ...` parse into chains as deep as
/// they are long, and compiling or walking a chain thousands deep would overflow the stack (an
/// abort no handler catches); real messages nest a handful.
pub const MAX_DEPTH: usize = 48;

/// Longest string a filter may produce (bounded `replace`). Strings otherwise only grow by
/// concatenation, which `MAX_NODES` bounds.
pub const MAX_VALUE: usize = 64 * 1024;

/// The most a field may render to, in bytes. Beyond what any channel accepts, so a template that
/// hits it is wrong, not long: Messenger and Zalo OA take 2,000 characters (at most 4 bytes each),
/// an SMS is bounded again by its provider's `max_segments`, an email body by a few hundred kB.
pub fn max_output(field: &str) -> usize {
    match field {
        "email_html" | "email_text" => 256 * 1024,
        "email_subject" => 998,
        _ => 8 * 1024,
    }
}

/// Filters a template cannot use: their arguments size an allocation (`indent(10**18)`,
/// `format("%999999999s")`) or panic on huge values (`batch`, `slice`). Messages do not need them.
const REMOVED_FILTERS: &[&str] = &["indent", "batch", "slice", "format"];

/// Globals removed for the same reason; templates cannot call functions at all (see `check_shape`).
const REMOVED_GLOBALS: &[&str] = &["range", "dict", "namespace", "debug"];

/// Puts the limits into an environment: fuel, recursion, and only bounded filters.
pub fn install(env: &mut Environment<'static>) {
    env.set_fuel(Some(FUEL));
    // No macros, includes or recursive loops pass `check_shape`; this is the second fence.
    env.set_recursion_limit(20);
    for f in REMOVED_FILTERS {
        env.remove_filter(f);
    }
    for g in REMOVED_GLOBALS {
        env.remove_global(g);
    }
    env.add_filter("replace", bounded_replace);
}

/// `replace` whose result is refused before it is built when it would pass `MAX_VALUE`: chained
/// replacements otherwise multiply a string's length at each step.
fn bounded_replace(s: &str, from: &str, to: &str, count: Option<usize>) -> Result<String, Error> {
    // Matches as str::replace finds them; an empty pattern matches between every character.
    let hits = if from.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(from).count()
    };
    let hits = count.map_or(hits, |c| c.min(hits));
    let len = s
        .len()
        .saturating_sub(hits.saturating_mul(from.len()))
        .saturating_add(hits.saturating_mul(to.len()));
    if len > MAX_VALUE {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("replace would produce {len} bytes (at most {MAX_VALUE})"),
        ));
    }
    Ok(match count {
        Some(c) => s.replacen(from, to, c),
        None => s.replace(from, to),
    })
}

/// Refuses what a message template has no use for and what would let one render grow without bound:
/// assignments and blocks that bind values (`set`, `with`), macros, includes and inheritance,
/// function calls, recursive loops, and `*` (string and list repetition). Messages in Vietnamese.
pub fn check_shape(field: &str, src: &str) -> Result<(), String> {
    let max = if field == "email_html" {
        MAX_SOURCE_HTML
    } else {
        MAX_SOURCE
    };
    if src.len() > max {
        return Err(format!(
            "mẫu tin dài {} byte, tối đa {max} byte cho trường này",
            src.len()
        ));
    }
    let ast = parse(src, field, SyntaxConfig, WhitespaceConfig::default())
        .map_err(|e| format!("lỗi cú pháp mẫu tin: {e}"))?;
    let mut nodes = 0usize;
    stmt(&ast, &mut nodes)
}

fn refuse(what: &str) -> String {
    format!("mẫu tin không được dùng {what}: chỉ dùng biến, bộ lọc, {{% if %}} và {{% for %}}")
}

fn stmts(list: &[Stmt], n: &mut usize) -> Result<(), String> {
    list.iter().try_for_each(|s| stmt(s, n))
}

fn stmt(s: &Stmt, n: &mut usize) -> Result<(), String> {
    match s {
        Stmt::Template(t) => stmts(&t.children, n),
        Stmt::EmitExpr(e) => expr(&e.expr, n),
        Stmt::EmitRaw(_) => Ok(()),
        Stmt::ForLoop(f) => {
            if f.recursive {
                return Err(refuse("vòng lặp đệ quy (recursive)"));
            }
            expr(&f.target, n)?;
            expr(&f.iter, n)?;
            if let Some(e) = &f.filter_expr {
                expr(e, n)?;
            }
            stmts(&f.body, n)?;
            stmts(&f.else_body, n)
        }
        Stmt::IfCond(c) => {
            expr(&c.expr, n)?;
            stmts(&c.true_body, n)?;
            stmts(&c.false_body, n)
        }
        Stmt::AutoEscape(a) => {
            expr(&a.enabled, n)?;
            stmts(&a.body, n)
        }
        Stmt::WithBlock(_) => Err(refuse("{% with %}")),
        Stmt::Set(_) | Stmt::SetBlock(_) => Err(refuse("{% set %}")),
        Stmt::FilterBlock(_) => Err(refuse("{% filter %}")),
        Stmt::Block(_) | Stmt::Extends(_) => Err(refuse("{% block %} hay {% extends %}")),
        Stmt::Import(_) | Stmt::FromImport(_) | Stmt::Include(_) => {
            Err(refuse("{% include %} hay {% import %}"))
        }
        Stmt::Macro(_) | Stmt::CallBlock(_) => Err(refuse("{% macro %} hay {% call %}")),
        Stmt::Do(_) => Err(refuse("{% do %}")),
    }
}

fn args(list: &[CallArg], n: &mut usize, depth: usize) -> Result<(), String> {
    list.iter().try_for_each(|a| match a {
        CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => {
            walk(e, n, depth + 1)
        }
    })
}

fn expr(e: &Expr, n: &mut usize) -> Result<(), String> {
    walk(e, n, 0)
}

fn walk(e: &Expr, n: &mut usize, depth: usize) -> Result<(), String> {
    *n += 1;
    if depth > MAX_DEPTH {
        return Err(format!(
            "biểu thức lồng hơn {MAX_DEPTH} tầng (chuỗi ~ hay | quá dài): hãy rút gọn"
        ));
    }
    if *n > MAX_NODES {
        return Err(format!("mẫu tin có hơn {MAX_NODES} biểu thức: hãy rút gọn"));
    }
    let expr = |e: &Expr, n: &mut usize| walk(e, n, depth + 1);
    let args = |a: &[CallArg], n: &mut usize| args(a, n, depth);
    match e {
        Expr::Var(_) | Expr::Const(_) => Ok(()),
        Expr::Slice(s) => {
            expr(&s.expr, n)?;
            for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                expr(part, n)?;
            }
            Ok(())
        }
        Expr::UnaryOp(u) => expr(&u.expr, n),
        Expr::BinOp(b) => {
            if matches!(b.op, BinOpKind::Mul) {
                return Err(refuse("phép nhân (*)"));
            }
            expr(&b.left, n)?;
            expr(&b.right, n)
        }
        Expr::Compare(c) => {
            expr(&c.expr, n)?;
            c.ops.iter().try_for_each(|o| expr(&o.expr, n))
        }
        Expr::IfExpr(i) => {
            expr(&i.test_expr, n)?;
            expr(&i.true_expr, n)?;
            match &i.false_expr {
                Some(f) => expr(f, n),
                None => Ok(()),
            }
        }
        Expr::Filter(f) => {
            if REMOVED_FILTERS.contains(&f.name) {
                return Err(refuse(&format!("bộ lọc {}", f.name)));
            }
            if let Some(inner) = &f.expr {
                expr(inner, n)?;
            }
            args(&f.args, n)
        }
        Expr::Test(t) => {
            expr(&t.expr, n)?;
            args(&t.args, n)
        }
        Expr::GetAttr(g) => expr(&g.expr, n),
        Expr::GetItem(g) => {
            expr(&g.expr, n)?;
            expr(&g.subscript_expr, n)
        }
        Expr::Call(_) => Err(refuse("lời gọi hàm")),
        Expr::List(l) => l.items.iter().try_for_each(|i| expr(i, n)),
        Expr::Map(m) => {
            m.keys.iter().try_for_each(|k| expr(k, n))?;
            m.values.iter().try_for_each(|v| expr(v, n))
        }
    }
}

/// Collects a render's output and fails the render once it passes `limit` bytes.
pub struct Capped {
    pub buf: Vec<u8>,
    limit: usize,
    pub overflowed: bool,
}

impl Capped {
    pub fn new(limit: usize) -> Self {
        Capped {
            buf: Vec::new(),
            limit,
            overflowed: false,
        }
    }
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.overflowed = true;
            return Err(std::io::Error::other("render output over its limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_binds_calls_or_repeats() {
        for src in [
            "{% set a = 'x' %}{{ a }}",
            "{% with a = 'x' %}{{ a }}{% endwith %}",
            "{% macro m() %}x{% endmacro %}{{ m() }}",
            "{% include 'x' %}",
            "{{ range(10) }}",
            "{{ 'x' * 1000 }}",
            "{{ students|indent(9223372036854775807) }}",
            "{{ students|batch(9999999999) }}",
            "{% for s in students recursive %}{{ loop(s) }}{% endfor %}",
        ] {
            assert!(check_shape("sms_text", src).is_err(), "{src}");
        }
    }

    #[test]
    fn accepts_what_messages_use() {
        let src = "Kính gửi {{ recipient_name|title }}, {% for s in students %}{{ loop.index }}. {{ s|upper }}{% if not loop.last %}, {% endif %}{% endfor %} {{ class_name ~ '!' }} {{ student_names|replace('a', 'b') }}";
        check_shape("sms_text", src).unwrap();
    }

    #[test]
    fn replace_refuses_to_grow_past_the_limit() {
        let big = "x".repeat(1000);
        assert!(bounded_replace(&big, "", &big, None).is_err());
        assert_eq!(bounded_replace("aXa", "a", "b", None).unwrap(), "bXb");
        assert_eq!(bounded_replace("aXa", "a", "b", Some(1)).unwrap(), "bXa");
    }

    #[test]
    fn counts_nodes_and_depth() {
        let wide = "{{ a }}".repeat(MAX_NODES + 5);
        assert!(
            check_shape("email_html", &wide)
                .unwrap_err()
                .contains("biểu thức")
        );
        let deep = format!("{{{{ {} }}}}", vec!["a"; 4000].join(" ~ "));
        assert!(
            check_shape("email_html", &deep)
                .unwrap_err()
                .contains("tầng")
        );
        let filters = format!("{{{{ a{} }}}}", "|upper".repeat(3000));
        assert!(check_shape("email_html", &filters).is_err());
    }
}
