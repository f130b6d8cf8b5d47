//! Unsubscribe: GET shows a Vietnamese confirmation page (link scanners must not unsubscribe anyone),
//! POST opts the person out of that channel (also RFC 8058 one-click from mail clients). The link's
//! signature covers the channel, so a link acts on the channel it was sent for and no other.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use serde::Deserialize;

use crate::api::AppState;
use crate::clock::now_ms;
use crate::domain::Channel;

#[derive(Deserialize)]
pub struct Which {
    c: Option<String>,
}

fn channel_vi(c: Channel) -> &'static str {
    match c {
        Channel::Email => "thư điện tử (email)",
        Channel::Sms => "tin nhắn SMS",
        Channel::Zalo | Channel::ZaloZns => "Zalo",
        Channel::Messenger => "Facebook Messenger",
    }
}

fn page_html(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em;line-height:1.5}}\
         button{{font-size:1.1em;padding:.6em 1.2em}}</style></head><body><h1>{title}</h1>{body}</body></html>"
    ))
}

fn not_found() -> (StatusCode, Html<String>) {
    (
        StatusCode::NOT_FOUND,
        page_html(
            "Không tìm thấy",
            "<p>Đường dẫn huỷ đăng ký không hợp lệ hoặc đã hết hạn.</p>",
        ),
    )
}

/// The contact a signed token names for `channel` (a forged or stale token, or one signed for
/// another channel, names nobody).
async fn contact_of(
    s: &AppState,
    token: &str,
    channel: Channel,
) -> Result<crate::domain::contact::Contact, ()> {
    let id = s.links.verify_unsubscribe(token, channel).ok_or(())?;
    s.store.get_contact(id).await.map_err(|_| ())
}

fn parse_channel(w: &Which) -> Option<Channel> {
    Channel::parse(w.c.as_deref().unwrap_or("email"))
}

pub async fn page(
    State(s): State<AppState>,
    Path(token): Path<String>,
    Query(w): Query<Which>,
) -> (StatusCode, Html<String>) {
    let Some(channel) = parse_channel(&w) else {
        return not_found();
    };
    if contact_of(&s, &token, channel).await.is_err() {
        return not_found();
    }
    let body = format!(
        "<p>Bạn sẽ không nhận tin từ nhà trường qua <b>{}</b> nữa. Các kênh khác (nếu có) vẫn giữ nguyên.</p>\
         <form method=\"post\"><button type=\"submit\">Xác nhận huỷ nhận tin</button></form>",
        channel_vi(channel)
    );
    (StatusCode::OK, page_html("Huỷ nhận tin", &body))
}

pub async fn confirm(
    State(s): State<AppState>,
    Path(token): Path<String>,
    Query(w): Query<Which>,
) -> (StatusCode, Html<String>) {
    let Some(channel) = parse_channel(&w) else {
        return not_found();
    };
    let Ok(contact) = contact_of(&s, &token, channel).await else {
        return not_found();
    };
    if let Err(e) = s
        .store
        .set_opt_out(contact.id, channel, true, now_ms())
        .await
    {
        tracing::error!(error = %e, "opt-out failed");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            page_html("Có lỗi xảy ra", "<p>Xin vui lòng thử lại sau.</p>"),
        );
    }
    tracing::info!(contact = contact.id, channel = %channel, "opted out");
    let body = format!(
        "<p>Bạn đã huỷ nhận tin qua <b>{}</b>. Cảm ơn bạn.</p>",
        channel_vi(channel)
    );
    (StatusCode::OK, page_html("Đã huỷ nhận tin", &body))
}
