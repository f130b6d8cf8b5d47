//! People Loa reaches: parents, students and staff, their addresses per channel and their opt-outs.

use serde::{Deserialize, Serialize};

use super::Channel;
use super::phone::normalize_vn_phone;
use super::validation::ValidationError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Parent,
    Student,
    Staff,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Parent, Role::Student, Role::Staff];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Parent => "parent",
            Role::Student => "student",
            Role::Staff => "staff",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Where a person can be reached, one field per channel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addresses {
    pub phone: Option<String>,
    pub email: Option<String>,
    pub zalo_user_id: Option<String>,
    pub facebook_psid: Option<String>,
}

impl Addresses {
    /// Every address and id the person is known by, for masking them in texts (`mask_personal`).
    pub fn known(&self) -> Vec<&str> {
        [
            &self.phone,
            &self.email,
            &self.zalo_user_id,
            &self.facebook_psid,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect()
    }

    /// The address used on a channel. Zalo OA reaches a follower by user id; ZNS reaches a phone.
    pub fn for_channel(&self, c: Channel) -> Option<&str> {
        match c {
            Channel::Email => self.email.as_deref(),
            Channel::Sms | Channel::ZaloZns => self.phone.as_deref(),
            Channel::Zalo => self.zalo_user_id.as_deref(),
            Channel::Messenger => self.facebook_psid.as_deref(),
        }
        .filter(|s| !s.is_empty())
    }
}

/// Set of channels a person has stopped, one bit per channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOuts(pub i64);

impl OptOuts {
    pub fn contains(self, c: Channel) -> bool {
        self.0 & c.bit() != 0
    }
    pub fn with(self, c: Channel, out: bool) -> OptOuts {
        if out {
            OptOuts(self.0 | c.bit())
        } else {
            OptOuts(self.0 & !c.bit())
        }
    }
    pub fn channels(self) -> Vec<Channel> {
        Channel::ALL
            .into_iter()
            .filter(|c| self.contains(*c))
            .collect()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Contact {
    pub id: i64,
    pub org_id: i64,
    pub role: Role,
    pub full_name: String,
    pub student_code: Option<String>,
    #[serde(flatten)]
    pub addresses: Addresses,
    pub opted_out: Vec<Channel>,
    /// Where the consent to message this person comes from (`roster_import`, `form`, ...), and when.
    pub consent_source: Option<String>,
    pub consent_at: Option<i64>,
    pub created_at: i64,
    #[serde(flatten)]
    pub details: ContactDetails,
}

/// What a roster or staff list says about a person beyond the addresses Loa sends to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ContactDetails {
    /// Further mobiles (E.164) the file gave beyond the one Loa sends to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_phones: Vec<String>,
    /// A fixed line (E.164), kept for the record: it cannot receive SMS or Zalo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landline: Option<String>,
    /// Staff: position (chức vụ) and group (tổ).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Contact {
    /// The contact as shown to staff who may not read addresses in full (everyone but the node's
    /// admins): every address masked as in logs and delivery lists (`+8490****567`).
    pub fn masked(mut self) -> Contact {
        let a = &mut self.addresses;
        for field in [
            &mut a.phone,
            &mut a.email,
            &mut a.zalo_user_id,
            &mut a.facebook_psid,
        ] {
            if let Some(v) = field.as_mut() {
                *v = providers::mask_address(v);
            }
        }
        let d = &mut self.details;
        for v in d.other_phones.iter_mut().chain(d.landline.as_mut()) {
            *v = providers::mask_address(v);
        }
        self
    }
}

/// A name folded for search: lower case, without Vietnamese diacritics (`Đặng Thị Ánh` ->
/// `dang thi anh`), spaces collapsed, so staff find people however they type the name.
pub fn fold_name(s: &str) -> String {
    let folded = super::text::unaccent(s).to_lowercase();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A contact as it arrives through a door, before validation.
#[derive(Clone, Debug, Deserialize)]
pub struct NewContactInput {
    pub org_id: i64,
    pub role: Role,
    pub full_name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub zalo_user_id: Option<String>,
    pub facebook_psid: Option<String>,
    pub student_code: Option<String>,
}

/// A validated contact, phone in E.164, email lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewContact {
    pub org_id: i64,
    pub role: Role,
    pub full_name: String,
    pub student_code: Option<String>,
    pub addresses: Addresses,
}

fn blank_to_none(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl NewContactInput {
    pub fn validate(self) -> Result<NewContact, ValidationError> {
        let mut errs = ValidationError::default();
        let full_name = self
            .full_name
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if full_name.is_empty() {
            errs.push("full_name", "họ tên không được để trống");
        } else if full_name.chars().count() > 200 {
            errs.push("full_name", "họ tên quá dài (tối đa 200 ký tự)");
        }
        let phone = match blank_to_none(self.phone) {
            Some(p) => match normalize_vn_phone(&p) {
                Ok(p) => Some(p),
                Err(m) => {
                    errs.push("phone", m);
                    None
                }
            },
            None => None,
        };
        let email = match blank_to_none(self.email) {
            Some(e) => match e.parse::<lettre::Address>() {
                Ok(_) => Some(e.to_lowercase()),
                Err(_) => {
                    errs.push("email", format!("địa chỉ email \"{e}\" không hợp lệ"));
                    None
                }
            },
            None => None,
        };
        let student_code = blank_to_none(self.student_code);
        if self.role == Role::Student
            && student_code.is_none()
            && phone.is_none()
            && email.is_none()
        {
            // A student with nothing to find them by again makes re-imports create duplicates.
            errs.push("student_code", "học sinh cần có mã học sinh");
        }
        errs.into_result(NewContact {
            org_id: self.org_id,
            role: self.role,
            full_name,
            student_code,
            addresses: Addresses {
                phone,
                email,
                zalo_user_id: blank_to_none(self.zalo_user_id),
                facebook_psid: blank_to_none(self.facebook_psid),
            },
        })
    }
}

/// The given name a Vietnamese message addresses someone by: the last word of the full name.
pub fn given_name(full_name: &str) -> &str {
    full_name.split_whitespace().last().unwrap_or(full_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> NewContactInput {
        NewContactInput {
            org_id: 1,
            role: Role::Parent,
            full_name: "  Nguyễn   Thị Lan ".into(),
            phone: Some("0912 345 678".into()),
            email: Some("Lan.Nguyen@Example.vn".into()),
            zalo_user_id: Some("".into()),
            facebook_psid: None,
            student_code: None,
        }
    }

    #[test]
    fn normalises_fields() {
        let c = input().validate().unwrap();
        assert_eq!(c.full_name, "Nguyễn Thị Lan");
        assert_eq!(c.addresses.phone.as_deref(), Some("+84912345678"));
        assert_eq!(c.addresses.email.as_deref(), Some("lan.nguyen@example.vn"));
        assert_eq!(c.addresses.zalo_user_id, None);
    }

    #[test]
    fn names_every_bad_field() {
        let mut i = input();
        i.full_name = " ".into();
        i.phone = Some("12ab".into());
        i.email = Some("not-an-email".into());
        let e = i.validate().unwrap_err();
        let fields: Vec<_> = e.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["full_name", "phone", "email"]);
    }

    #[test]
    fn names_fold_for_search() {
        assert_eq!(fold_name("  Đặng  Thị Ánh "), "dang thi anh");
        assert!(fold_name("Nguyễn Văn Bình").contains(&fold_name("van binh")));
        assert!(fold_name("Nguyễn Văn Bình").contains(&fold_name("VĂN BÌNH")));
    }

    #[test]
    fn masked_contacts_show_no_address_in_full() {
        let c = Contact {
            id: 1,
            org_id: 2,
            role: Role::Parent,
            full_name: "Mẹ".into(),
            student_code: None,
            addresses: Addresses {
                phone: Some("+84901234567".into()),
                email: Some("nguyen.lan@example.vn".into()),
                zalo_user_id: Some("4455667788990011".into()),
                facebook_psid: None,
            },
            opted_out: vec![],
            consent_source: None,
            consent_at: None,
            created_at: 0,
            details: ContactDetails {
                other_phones: vec!["+84987654321".into()],
                landline: Some("+842183851234".into()),
                ..Default::default()
            },
        }
        .masked();
        assert_eq!(c.addresses.phone.as_deref(), Some("+8490****567"));
        assert_eq!(c.details.other_phones, ["+8498****321"]);
        assert_eq!(c.details.landline.as_deref(), Some("+8421****234"));
        assert_eq!(c.addresses.email.as_deref(), Some("ng***@example.vn"));
        assert_eq!(c.addresses.zalo_user_id.as_deref(), Some("44556****011"));
        assert_eq!(c.addresses.facebook_psid, None);
    }

    #[test]
    fn opt_out_bits() {
        let o = OptOuts::default()
            .with(Channel::Sms, true)
            .with(Channel::Email, true)
            .with(Channel::Email, false);
        assert!(o.contains(Channel::Sms));
        assert!(!o.contains(Channel::Email));
        assert_eq!(o.channels(), vec![Channel::Sms]);
    }

    #[test]
    fn given_name_is_last_word() {
        assert_eq!(given_name("Nguyễn Thị Lan"), "Lan");
    }
}

/// Which contacts `Store::list_contacts` returns.
#[derive(Clone, Debug, Default)]
pub struct ContactFilter {
    /// The subtree: contacts of every node whose path starts with this ("" = the whole tree).
    pub org_path: String,
    /// A class (by path): its students, and the parents of its students.
    pub class_path: Option<String>,
    pub role: Option<crate::domain::contact::Role>,
    /// Only people with an address for this channel.
    pub has: Option<Channel>,
    /// Folded as `domain::contact::fold_name`; a contact matches when its folded name contains it.
    pub search: Option<String>,
    /// Contacts with an id above this one.
    pub after_id: Option<i64>,
    pub limit: i64,
}

/// A page of contacts and, when more may follow, the id to continue after (the last one looked at,
/// which a name search may have passed over).
#[derive(Clone, Debug, Serialize)]
pub struct ContactPage {
    pub contacts: Vec<Contact>,
    pub next_after: Option<i64>,
}
