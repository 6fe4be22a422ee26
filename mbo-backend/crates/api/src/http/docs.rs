//! The OpenAPI document, an offline docs page that renders it, and the status page served
//! at `/` when no dashboard build is present. Both pages are self-contained (no CDN, no
//! external font): they work on a machine with no internet.

use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use utoipa::OpenApi;

use crate::http::{control, history, mbo_stream, observe, rest, stream, venues};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "mbo", description = "Exact market-by-order books from Databento MBO data, and crypto L2 books from Binance, Bybit, Kraken and Coinbase (`venue=` on books and streams): REST, SSE streams, replay control and metrics. Prices are integers in 1e-9 units with exact decimal-string twins. Errors are {\"error\":{\"code\",\"message\"}}."),
    paths(
        rest::live, rest::ready, rest::instruments, rest::book, rest::level,
        control::status, control::command,
        stream::stream, mbo_stream::stream, venues::stream_all, venues::status,
        history::summary, history::book_at, history::trades, history::bars, history::history_mbo,
        observe::metrics,
    ),
    components(schemas(
        rest::Live, rest::Ready, rest::Instrument, rest::BookDoc, rest::LevelDoc,
        rest::LevelQueueJson, rest::QueueOrder, control::StatusJson, control::CommandJson,
        history::HistorySummary,
    )),
    tags(
        (name = "health"), (name = "books"), (name = "streams"), (name = "replay"),
        (name = "history"), (name = "observability"), (name = "venues"),
    )
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`.
pub async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// `GET /api/docs`: renders `/api/openapi.json` in the browser, offline.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("../../assets/docs.html"))
}

/// `GET /` without a dashboard build: what is running, and where to look.
pub async fn status_page() -> Html<&'static str> {
    Html(include_str!("../../assets/status.html"))
}
