//! The pages' stylesheet and script, compiled into the binary (nothing is fetched from elsewhere)
//! and cached by browsers for a day; the pages link them with the build's version, so a new
//! release is fetched at once.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::api::error::AppError;

const FILES: &[(&str, &str, &str)] = &[
    (
        "loa.css",
        "text/css; charset=utf-8",
        include_str!("static/loa.css"),
    ),
    (
        "loa.js",
        "text/javascript; charset=utf-8",
        include_str!("static/loa.js"),
    ),
];

pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => (
            [
                (CONTENT_TYPE, *kind),
                (CACHE_CONTROL, "public, max-age=86400"),
            ],
            *body,
        )
            .into_response(),
        None => AppError::not_found("file").into_response(),
    }
}
