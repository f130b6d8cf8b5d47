//! Set-based fan-out for SQLite: each page of an audience becomes deliveries in one
//! `INSERT … SELECT`, so a million people never pass through Rust one row at a time.

use crate::domain::Channel;
use crate::domain::delivery::{DeliveryState, Reason};

/// A Zalo user id counts as an address only while the person follows the OA.
/// Parents come through their children, so that one parent with two children is one row naming both
/// (GROUP BY), and first, so their row wins over a direct match. Columns of every audience query:
/// id, the four address columns, opt_out, name, students and classes (JSON arrays), attr (the school
/// or office the person is reached through). No DISTINCT: it costs a temporary table per person, and
/// a class named twice (two children in it) is folded when the message is rendered.
const PARENT_COLS: &str = "SELECT g.parent_id AS id, p.phone, p.email, CASE WHEN p.zalo_following = 1 THEN p.zalo_user_id END AS zalo_user_id, \
       p.facebook_psid, p.opt_out, \
       p.full_name AS name, json_group_array(s.full_name) AS students, \
       json_group_array(cls.name) FILTER (WHERE cls.name IS NOT NULL) AS classes, \
       min(COALESCE(s.school_id, s.org_id)) AS attr";
const PARENT_WHERE: &str = "LEFT JOIN orgs cls ON cls.id = s.org_id AND cls.kind = 'class' \
     WHERE s.role = 'student' AND s.org_id IN (SELECT id FROM orgs WHERE path LIKE ?1 || '%') \
       AND (json_array_length(?2) = 0 OR s.org_id IN (SELECT value FROM json_each(?2)))";

/// Students in the subtree, counted up to the point where the scanning plan wins.
pub const STUDENTS_CAPPED: &str = "SELECT count(*) FROM (SELECT 1 FROM contacts s \
     WHERE s.role = 'student' AND s.org_id IN (SELECT id FROM orgs WHERE path LIKE ?1 || '%') \
       AND (json_array_length(?2) = 0 OR s.org_id IN (SELECT value FROM json_each(?2))) LIMIT ?3)";

/// The last guardian link's parent of the page that starts after `?1` and holds `?2` links (none when
/// fewer are left): pages bound the work of each statement, whatever the subtree.
pub const PAGE_END: &str = "SELECT parent_id FROM guardian_links WHERE parent_id > ?1 ORDER BY parent_id LIMIT 1 OFFSET ?2";

/// A small audience: find the subtree's students by index and group their parents.
pub fn parents_sorted() -> String {
    format!(
        "{PARENT_COLS} FROM contacts s JOIN guardian_links g ON g.student_id = s.id \
         JOIN contacts p ON p.id = g.parent_id {PARENT_WHERE} GROUP BY g.parent_id"
    )
}

/// A large one: walk guardian links in primary-key (parent) order so the GROUP BY streams without
/// sorting a million rows, for parents in (`?3`, `?4`]. Both bounds are plain comparisons so that
/// SQLite walks only that range of the index (an `?4 IS NULL OR …` bound made every page read on to the end).
pub fn parents_page() -> String {
    // CROSS JOIN fixes the join order: guardian_links first, in primary-key (parent) order.
    format!(
        "{PARENT_COLS} FROM guardian_links g CROSS JOIN contacts s ON s.id = g.student_id \
         CROSS JOIN contacts p ON p.id = g.parent_id {PARENT_WHERE} \
         AND g.parent_id > ?3 AND g.parent_id <= ?4 GROUP BY g.parent_id"
    )
}

/// People of role `?3` registered in the subtree; each use adds which of them to leave out.
const DIRECT_PEOPLE: &str = "SELECT c.id, c.phone, c.email, \
       CASE WHEN c.zalo_following = 1 THEN c.zalo_user_id END AS zalo_user_id, c.facebook_psid, c.opt_out, c.full_name AS name, \
       CASE WHEN c.role = 'student' THEN json_array(c.full_name) ELSE '[]' END AS students, \
       CASE WHEN cls.name IS NOT NULL THEN json_array(cls.name) ELSE '[]' END AS classes, \
       COALESCE(c.school_id, c.org_id) AS attr \
     FROM contacts c LEFT JOIN orgs cls ON cls.id = c.org_id AND cls.kind = 'class' \
     WHERE c.role = ?3 AND c.org_id IN (SELECT id FROM orgs WHERE path LIKE ?1 || '%') \
       AND (json_array_length(?2) = 0 OR c.org_id IN (SELECT value FROM json_each(?2)))";

/// For a run's fan-out, after the pass through children: those with no delivery of run `?4` yet, by
/// one lookup in the run's (run, contact) index. (The insert would ignore them anyway; asking instead
/// whether a parent has a child in the subtree took 1.5 s of a million-parent fan-out that inserted
/// nothing here.)
pub fn direct_unreached() -> String {
    format!(
        "{DIRECT_PEOPLE} AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.run_id = ?4 AND x.contact_id = c.id)"
    )
}

/// For a preview, where nothing is inserted: parents with no child in the subtree (those with one
/// are counted through their children).
fn direct_childless() -> String {
    format!(
        "{DIRECT_PEOPLE} AND (c.role <> 'parent' OR NOT EXISTS (SELECT 1 FROM guardian_links g \
           JOIN contacts s ON s.id = g.student_id \
           WHERE g.parent_id = c.id AND s.org_id IN (SELECT id FROM orgs WHERE path LIKE ?1 || '%')))"
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

/// `INSERT … SELECT` of the deliveries for one audience query (`people`, with parameters ?1 to ?4;
/// the time is ?5). Each person's first channel is chosen in SQL by the rule of
/// `domain::channel_choice` (first in order with an address and no opt-out; none usable: skipped if
/// some address was opted out of, failed otherwise); a store test holds the two to the same answers.
/// Run, campaign and channels are Loa's own values, written as literals so the text is the same from
/// page to page and the prepared statement is reused.
pub fn insert(run_id: i64, campaign_id: i64, order: &[Channel], people: &str) -> String {
    let has = |c: Channel| format!("COALESCE(a.{}, '') <> ''", address_column(c));
    let mut pick = String::from("CASE");
    for (i, &c) in order.iter().enumerate() {
        pick += &format!(
            " WHEN {} AND (a.opt_out & {}) = 0 THEN {i}",
            has(c),
            c.bit()
        );
    }
    pick += " ELSE -1 END";
    let reachable = if order.is_empty() {
        "0".to_string()
    } else {
        order
            .iter()
            .map(|&c| has(c))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let mut channel = String::from("CASE b.pick");
    for (i, c) in order.iter().enumerate() {
        channel += &format!(" WHEN {i} THEN '{}'", c.as_str());
    }
    channel += " END";
    let (queued, skipped, failed) = (
        DeliveryState::Queued.as_str(),
        DeliveryState::Skipped.as_str(),
        DeliveryState::Failed.as_str(),
    );
    let (opted_out, no_address) = (Reason::OptedOut.as_str(), Reason::NoAddress.as_str());
    format!(
        "INSERT OR IGNORE INTO deliveries (run_id, campaign_id, contact_id, org_id, channel, channel_index, \
           state, reason_code, vars, next_attempt_at, updated_at) \
         SELECT {run_id}, {campaign_id}, b.id, b.attr, {channel}, max(b.pick, 0), \
           CASE WHEN b.pick >= 0 THEN '{queued}' WHEN b.reachable THEN '{skipped}' ELSE '{failed}' END, \
           CASE WHEN b.pick >= 0 THEN NULL WHEN b.reachable THEN '{opted_out}' ELSE '{no_address}' END, \
           json_object('n', b.name, 's', json(b.students), 'c', json(b.classes), 'o', COALESCE(o.name, '')), ?5, ?5 \
         FROM (SELECT a.id, a.attr, a.name, a.students, a.classes, {pick} AS pick, ({reachable}) AS reachable \
               FROM ({people}) a) b \
         LEFT JOIN orgs o ON o.id = b.attr"
    )
}

/// The queries that read an audience for a preview: parents through their children, then each role
/// registered directly (`?3`), with the same columns and rules as the fan-out.
/// `scan` walks every guardian link in order (bound ?3 = 0, ?4 = max) instead of sorting the
/// subtree's parents.
pub fn preview_queries(
    roles: &[crate::domain::contact::Role],
    scan: bool,
) -> Vec<(String, Option<&'static str>)> {
    use crate::domain::contact::Role;
    let mut q = Vec::new();
    if roles.contains(&Role::Parent) {
        q.push((
            if scan {
                parents_page()
            } else {
                parents_sorted()
            },
            None,
        ));
    }
    for r in roles {
        q.push((direct_childless(), Some(r.as_str())));
    }
    q
}
