//! Set-based fan-out for PostgreSQL: each page of an audience becomes deliveries in one
//! `INSERT … SELECT … ON CONFLICT DO NOTHING`, so a million people never pass through Rust one row at a time.

use crate::domain::Channel;
use crate::domain::contact::Role;
use crate::domain::delivery::{DeliveryState, Reason};

/// A Zalo user id counts as an address only while the person follows the OA.
/// Parents come through their children, so that one parent with two children is one row naming both
/// (GROUP BY the parent's primary key, which lets the parent's columns be selected), and first, so
/// their row wins over a direct match. Columns of every audience query: id, the four address
/// columns, opt_out, name, students and classes (JSONB arrays, children in id order, as SQLite reads
/// them from the guardian links' primary key), attr (the school or office the person is reached
/// through). No DISTINCT: a class named twice (two children in it) is folded when the message is
/// rendered. `jsonb_agg` of no row is NULL, hence the COALESCE for classes.
const PARENT_COLS: &str = "SELECT p.id, p.phone, p.email, CASE WHEN p.zalo_following THEN p.zalo_user_id END AS zalo_user_id, \
       p.facebook_psid, p.opt_out, \
       p.full_name AS name, jsonb_agg(s.full_name ORDER BY s.id) AS students, \
       COALESCE(jsonb_agg(cls.name ORDER BY s.id) FILTER (WHERE cls.name IS NOT NULL), '[]'::jsonb) AS classes, \
       min(COALESCE(s.school_id, s.org_id)) AS attr";
/// $1 the subtree's path, $2 the classes (empty: all).
const PARENT_WHERE: &str = "LEFT JOIN orgs cls ON cls.id = s.org_id AND cls.kind = 'class' \
     WHERE s.role = 'student' AND s.org_id IN (SELECT id FROM orgs WHERE path LIKE $1 || '%') \
       AND (cardinality($2::bigint[]) = 0 OR s.org_id = ANY($2::bigint[]))";

/// Students in the subtree, counted up to the point ($3) where the scanning plan is taken.
pub const STUDENTS_CAPPED: &str = "SELECT count(*) FROM (SELECT 1 FROM contacts s \
     WHERE s.role = 'student' AND s.org_id IN (SELECT id FROM orgs WHERE path LIKE $1 || '%') \
       AND (cardinality($2::bigint[]) = 0 OR s.org_id = ANY($2::bigint[])) LIMIT $3) x";

/// The last guardian link's parent of the page that starts after `$1` and holds `$2` links (none when
/// fewer are left): pages bound the work of each statement, whatever the subtree.
pub const PAGE_END: &str = "SELECT parent_id FROM guardian_links WHERE parent_id > $1 ORDER BY parent_id LIMIT 1 OFFSET $2";

/// A small audience: find the subtree's students by index and group their parents.
pub fn parents_sorted() -> String {
    format!(
        "{PARENT_COLS} FROM contacts s JOIN guardian_links g ON g.student_id = s.id \
         JOIN contacts p ON p.id = g.parent_id {PARENT_WHERE} GROUP BY p.id"
    )
}

/// A large one, one page of it: guardian links of parents in (`$3`, `$4`], the same columns as
/// `PARENT_COLS`. Every per-link lookup goes by key and is kept apart by `OFFSET 0`, so no plan can
/// start anywhere else: each link's student (sqlx reuses the prepared statement, and from its sixth
/// execution PostgreSQL had switched to a generic plan that guessed a handful of orgs for the path
/// prefix, started from them, read all 1.1 million students and probed the links of each, 5.5-8.8 s
/// a page instead of 0.4 s), then, once the page's children are grouped, each parent. The subtree
/// and class checks join `orgs` outside the walk, once per page: inside it (as until 2026-12-03),
/// with a district of 222 orgs PostgreSQL hashed and scanned all of them again for every link, 1.1 s
/// for a page of 20,000 families where 0.2 s does.
pub fn parents_page() -> String {
    "SELECT p.id, p.phone, p.email, CASE WHEN p.zalo_following THEN p.zalo_user_id END AS zalo_user_id, \
       p.facebook_psid, p.opt_out, p.full_name AS name, k.students, k.classes, k.attr \
     FROM (SELECT l.parent_id, jsonb_agg(l.full_name ORDER BY l.id) AS students, \
             COALESCE(jsonb_agg(cls.name ORDER BY l.id) FILTER (WHERE cls.name IS NOT NULL), '[]'::jsonb) AS classes, \
             min(COALESCE(l.school_id, l.org_id)) AS attr \
           FROM (SELECT g.parent_id, s.id, s.full_name, s.org_id, s.school_id FROM guardian_links g \
                 CROSS JOIN LATERAL (SELECT s.id, s.full_name, s.org_id, s.school_id FROM contacts s \
                   WHERE s.id = g.student_id AND s.role = 'student' OFFSET 0) s \
                 WHERE g.parent_id > $3 AND g.parent_id <= $4 OFFSET 0) l \
           JOIN orgs sub ON sub.id = l.org_id AND sub.path LIKE $1 || '%' \
           LEFT JOIN orgs cls ON cls.id = l.org_id AND cls.kind = 'class' \
           WHERE cardinality($2::bigint[]) = 0 OR l.org_id = ANY($2::bigint[]) \
           GROUP BY l.parent_id) k \
     CROSS JOIN LATERAL (SELECT * FROM contacts p WHERE p.id = k.parent_id OFFSET 0) p"
        .to_string()
}

/// Every guardian link at once, for a preview of a large audience (one statement, no pages):
/// here PostgreSQL's own join order is the faster (2.8-3.3 s over 1.1 million links against
/// 4.8-5.5 s for the page form).
fn parents_scan_all() -> String {
    format!(
        "{PARENT_COLS} FROM guardian_links g JOIN contacts s ON s.id = g.student_id \
         JOIN contacts p ON p.id = g.parent_id {PARENT_WHERE} \
         AND g.parent_id > $3 AND g.parent_id <= $4 GROUP BY p.id"
    )
}

/// People of role `$3` registered in the subtree; each use adds which of them to leave out.
const DIRECT_PEOPLE: &str = "SELECT c.id, c.phone, c.email, \
       CASE WHEN c.zalo_following THEN c.zalo_user_id END AS zalo_user_id, c.facebook_psid, c.opt_out, c.full_name AS name, \
       CASE WHEN c.role = 'student' THEN jsonb_build_array(c.full_name) ELSE '[]'::jsonb END AS students, \
       CASE WHEN cls.name IS NOT NULL THEN jsonb_build_array(cls.name) ELSE '[]'::jsonb END AS classes, \
       COALESCE(c.school_id, c.org_id) AS attr \
     FROM contacts c LEFT JOIN orgs cls ON cls.id = c.org_id AND cls.kind = 'class' \
     WHERE c.role = $3 AND c.org_id IN (SELECT id FROM orgs WHERE path LIKE $1 || '%') \
       AND (cardinality($2::bigint[]) = 0 OR c.org_id = ANY($2::bigint[]))";

/// For a run's fan-out, after the pass through children: those with no delivery of run `$4` yet, by
/// one lookup in the run's (run, contact) unique index. (The insert would ignore them anyway; the
/// lookup spares building their rows.)
pub fn direct_unreached() -> String {
    format!(
        "{DIRECT_PEOPLE} AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.run_id = $4 AND x.contact_id = c.id)"
    )
}

/// For a preview, where nothing is inserted: parents with no child in the subtree (those with one
/// are counted through their children).
fn direct_childless() -> String {
    format!(
        "{DIRECT_PEOPLE} AND (c.role <> 'parent' OR NOT EXISTS (SELECT 1 FROM guardian_links g \
           JOIN contacts s ON s.id = g.student_id \
           WHERE g.parent_id = c.id AND s.org_id IN (SELECT id FROM orgs WHERE path LIKE $1 || '%')))"
    )
}

/// The contacts column holding a channel's address; mirrors `Addresses::for_channel`.
fn address_column(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Sms | Channel::ZaloZns => "phone",
        Channel::Zalo => "zalo_user_id",
        Channel::Messenger => "facebook_psid",
    }
}

/// `INSERT … SELECT` of the deliveries for one audience query (`people`, with its parameters; the
/// time is `$time`). Each person's first channel is chosen in SQL by the rule of
/// `domain::channel_choice` (first in order with an address and no opt-out; none usable: skipped if
/// some address was opted out of, failed otherwise); a store test holds the two to the same answers.
/// Run, campaign and channels are Loa's own values, written as literals so the text is the same from
/// page to page and the prepared statement is reused.
///
/// The vars are `{"n": name, "s": [students], "c": [classes], "o": school}` (`render::PersonVars`),
/// written by `jsonb_build_object` (keys in jsonb's order; the shape is what is read).
///
/// Rows go in in contact order: two instances fanning out the same run at once then meet on the
/// (run, contact) unique index in the same order, so one waits for the other's row and skips it
/// (ON CONFLICT DO NOTHING) instead of the two waiting on each other (a deadlock). Each person is
/// counted by the one insert that stored them.
pub fn insert(
    run_id: i64,
    campaign_id: i64,
    order: &[Channel],
    people: &str,
    time: &str,
) -> String {
    let has = |c: Channel| format!("COALESCE(a.{}, '') <> ''", address_column(c));
    let (pick, reachable, channel) = if order.is_empty() {
        (
            "-1".to_string(),
            "FALSE".to_string(),
            "NULL::text".to_string(),
        )
    } else {
        let mut pick = String::from("CASE");
        for (i, &c) in order.iter().enumerate() {
            pick += &format!(
                " WHEN {} AND (a.opt_out & {}::bigint) = 0 THEN {i}",
                has(c),
                c.bit()
            );
        }
        pick += " ELSE -1 END";
        let reachable = order
            .iter()
            .map(|&c| has(c))
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut channel = String::from("CASE b.pick");
        for (i, c) in order.iter().enumerate() {
            channel += &format!(" WHEN {i} THEN '{}'", c.as_str());
        }
        channel += " END";
        (pick, reachable, channel)
    };
    let (queued, skipped, failed) = (
        DeliveryState::Queued.as_str(),
        DeliveryState::Skipped.as_str(),
        DeliveryState::Failed.as_str(),
    );
    let (opted_out, no_address) = (Reason::OptedOut.as_str(), Reason::NoAddress.as_str());
    format!(
        "INSERT INTO deliveries (run_id, campaign_id, contact_id, org_id, channel, channel_index, \
           state, reason_code, vars, next_attempt_at, updated_at) \
         SELECT {run_id}, {campaign_id}, b.id, b.attr, {channel}, GREATEST(b.pick, 0), \
           CASE WHEN b.pick >= 0 THEN '{queued}' WHEN b.reachable THEN '{skipped}' ELSE '{failed}' END, \
           CASE WHEN b.pick >= 0 THEN NULL WHEN b.reachable THEN '{opted_out}' ELSE '{no_address}' END, \
           jsonb_build_object('n', b.name, 's', b.students, 'c', b.classes, 'o', COALESCE(o.name, ''))::text, {time}, {time} \
         FROM (SELECT a.id, a.attr, a.name, a.students, a.classes, {pick} AS pick, ({reachable}) AS reachable \
               FROM ({people}) a) b \
         LEFT JOIN orgs o ON o.id = b.attr \
         ORDER BY b.id \
         ON CONFLICT (run_id, contact_id) DO NOTHING"
    )
}

/// A preview's query: the audience columns, the two lists as JSON text (as the reader takes them).
fn as_text(people: &str) -> String {
    format!(
        "SELECT a.id, a.phone, a.email, a.zalo_user_id, a.facebook_psid, a.opt_out, a.name, \
           a.students::text AS students, a.classes::text AS classes, a.attr FROM ({people}) a"
    )
}

/// The queries that read an audience for a preview: parents through their children, then each role
/// registered directly (`$3`), with the same columns and rules as the fan-out.
/// `scan` walks every guardian link in order (bound $3 = 0, $4 = max) instead of sorting the
/// subtree's parents.
pub fn preview_queries(roles: &[Role], scan: bool) -> Vec<(String, Option<&'static str>)> {
    let mut q = Vec::new();
    if roles.contains(&Role::Parent) {
        let parents = if scan {
            parents_scan_all()
        } else {
            parents_sorted()
        };
        q.push((as_text(&parents), None));
    }
    for r in roles {
        q.push((as_text(&direct_childless()), Some(r.as_str())));
    }
    q
}
