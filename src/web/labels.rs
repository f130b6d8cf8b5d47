//! The Vietnamese words the pages use for the domain's codes (roles, node kinds, channels, states).

use crate::domain::Channel;
use crate::domain::access::UserRole;
use crate::domain::contact::Role;
use crate::domain::org::OrgKind;

pub fn user_role(r: UserRole) -> &'static str {
    match r {
        UserRole::Admin => "Quản trị",
        UserRole::Author => "Soạn tin",
        UserRole::Approver => "Phê duyệt",
        UserRole::Viewer => "Xem",
    }
}

pub fn contact_role(r: Role) -> &'static str {
    match r {
        Role::Parent => "Phụ huynh",
        Role::Student => "Học sinh",
        Role::Staff => "Cán bộ, giáo viên",
    }
}

pub fn org_kind(k: OrgKind) -> &'static str {
    match k {
        OrgKind::Ministry => "Bộ GD&ĐT",
        OrgKind::Province => "Sở GD&ĐT",
        OrgKind::District => "Phòng GD&ĐT",
        OrgKind::School => "Trường",
        OrgKind::Class => "Lớp",
    }
}

/// What the children of a node are called.
pub fn children_of(k: OrgKind) -> &'static str {
    match k {
        OrgKind::Ministry => "Các Sở",
        OrgKind::Province => "Các Phòng GD&ĐT và trường trực thuộc",
        OrgKind::District => "Các trường",
        OrgKind::School => "Các lớp",
        OrgKind::Class => "",
    }
}

pub fn channel(c: Channel) -> &'static str {
    match c {
        Channel::Email => "Email",
        Channel::Sms => "SMS",
        Channel::Zalo => "Zalo OA",
        Channel::ZaloZns => "Zalo ZNS",
        Channel::Messenger => "Messenger",
    }
}

pub fn channel_code(code: &str) -> String {
    if code == "none" {
        return "Không có kênh nào".into();
    }
    Channel::parse(code)
        .map(|c| channel(c).to_string())
        .unwrap_or_else(|| code.to_string())
}

pub fn delivery_state(code: &str) -> &'static str {
    match code {
        "queued" => "Chờ gửi",
        "sending" => "Đang gửi",
        "retrying" => "Chờ gửi lại",
        "sent" => "Đã gửi",
        "delivered" => "Đã nhận",
        "read" => "Đã đọc",
        "failed" => "Lỗi",
        "skipped" => "Bỏ qua",
        "cancelled" => "Đã huỷ",
        _ => "Khác",
    }
}
