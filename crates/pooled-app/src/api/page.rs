//! The dashboard page: static HTML, JS and CSS compiled into the binary (no CDN). The page holds
//! no data; its script polls `/api/performance/dashboard` (with the token from the URL fragment).

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

const HTML: &str = include_str!("../../assets/dashboard/index.html");
const JS: &str = include_str!("../../assets/dashboard/app.js");
const CSS: &str = include_str!("../../assets/dashboard/app.css");

pub async fn page() -> Html<&'static str> {
    Html(HTML)
}

pub async fn script() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        JS,
    )
        .into_response()
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}
