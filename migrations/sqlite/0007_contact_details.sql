-- What real rosters and staff lists carry beyond the one address Loa sends to (issue 16): further
-- mobiles a cell held, a fixed line kept for the record (never sent to), and staff's position and group.
ALTER TABLE contacts ADD COLUMN other_phones TEXT;   -- JSON array of E.164 mobiles, NULL when none
ALTER TABLE contacts ADD COLUMN landline TEXT;       -- E.164 fixed line
ALTER TABLE contacts ADD COLUMN position TEXT;       -- chức vụ (staff)
ALTER TABLE contacts ADD COLUMN staff_group TEXT;    -- tổ (staff)
-- Staff lists find a node's staff again by phone, email or name.
CREATE INDEX contacts_org_staff_name ON contacts(org_id, full_name) WHERE role = 'staff';
-- Imports find a parent again by a number Loa holds as their other phone.
CREATE INDEX contacts_school_other_phones ON contacts(school_id) WHERE other_phones IS NOT NULL;
-- Imports find students without a code by class and name, or (after a promotion) by name in the
-- school: without this, each lookup read every student of the class.
CREATE INDEX contacts_school_student_name ON contacts(school_id, full_name) WHERE role = 'student';
