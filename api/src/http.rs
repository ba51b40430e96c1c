//! The HTTP boundary: everything between a TCP socket and a handler. No client input may
//! crash, wedge or silently change a request, and every refusal is the one JSON error body
//! (`{"code", "message"}`, see [`crate::error`]) with a stable code.
//!
//! From the socket in:
//! - [`serve`] accepts at most `connections_max` connections at once (beyond it, new ones wait
//!   in the kernel's accept queue until one closes) and runs HTTP/1.1 on each with hyper,
//!   with a header read timeout (which also closes keep-alive connections idle that long).
//! - hyper's own limits ([`HYPER_BUF_BYTES_MAX`], [`HYPER_HEADERS_COUNT_MAX`]) are set above
//!   the application's, so that a request over the application's limits still reaches
//!   [`check_head`] and gets a JSON answer: URI over [`URI_BYTES_MAX`] is 414 `URI_TOO_LONG`,
//!   headers over [`HEADERS_BYTES_MAX`] or [`HEADERS_COUNT_MAX`] are 431 `HEADERS_TOO_LARGE`,
//!   a path or query that is not UTF-8 once percent-decoded is 400, a query naming a
//!   parameter twice is 400, a POST body that is not JSON is 415 `UNSUPPORTED_MEDIA_TYPE`.
//! - A body announced above `body_bytes_max` is refused at once, 413 `BODY_TOO_LARGE`,
//!   without waiting for it (tower-http's `RequestBodyLimit`, which also caps a body
//!   streamed without a length).
//! - The work routes take one of `concurrency_max` slots or are shed at once, 503
//!   `OVERLOADED` (nothing applied); the health probes are not counted, so they stay
//!   answerable under load. Every request, body read included, has `request_timeout_ms`:
//!   then 503 `OUTCOME_UNKNOWN` for a write, `TIMEOUT` for a read.
//! - [`json_errors`] rewrites any remaining non-JSON error answer of the router (axum's
//!   405 with its `Allow` kept, path and query rejections) into the JSON body.
//!
//! What remains beyond hyper's hard limits, answered by hyper itself with an empty body and
//! the connection closed (it offers no hook to shape these): a request head larger than
//! [`HYPER_BUF_BYTES_MAX`] or with more than [`HYPER_HEADERS_COUNT_MAX`] headers (431), a URI
//! over 65,534 bytes (the `http` crate's limit: 414), and a request line or header that does
//! not parse (400). A head not complete within `header_read_timeout_ms` gets no answer: the
//! connection is closed.
//!
//! Known gaps: a body sent slowly holds its concurrency slot until `request_timeout_ms`
//! (buffering bodies before the limit would free it, at up to `connections_max *
//! body_bytes_max` of memory); hyper has no write timeout, so a client that never reads its
//! answer holds its connection slot (and is cut only at shutdown, after the drain time).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{from_fn_with_state, map_response_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;

use crate::error::ApiError;
use crate::ApiLimits;

/// The longest request target (path and query) the application accepts.
pub const URI_BYTES_MAX: usize = 8 * 1024;
/// The most header bytes (names, values and separators) the application accepts.
pub const HEADERS_BYTES_MAX: usize = 16 * 1024;
/// The most header lines the application accepts.
pub const HEADERS_COUNT_MAX: usize = 100;
/// hyper's read buffer: a request head must fit in it, so it sits well above
/// `URI_BYTES_MAX + HEADERS_BYTES_MAX`; it grows per connection only as far as needed.
pub const HYPER_BUF_BYTES_MAX: usize = 256 * 1024;
/// hyper's header count, above [`HEADERS_COUNT_MAX`] so the application answers first.
pub const HYPER_HEADERS_COUNT_MAX: usize = 512;
/// The most of a non-JSON error body kept as the JSON answer's message.
const ERROR_TEXT_BYTES_MAX: usize = 1024;
/// The most of a client-sent value echoed back in a message.
const ECHO_BYTES_MAX: usize = 64;
/// Pause after a failed accept (out of file descriptors, say) before accepting again.
const ACCEPT_RETRY_MS: u64 = 100;

/// The work routes and the health routes with every boundary layer, as one router.
pub fn layered(work: Router, health: Router, limits: ApiLimits) -> Router {
    let request_timeout = Duration::from_millis(limits.request_timeout_ms);
    let timeout_ms = limits.request_timeout_ms;
    let work = work.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(
                move |method: Method, uri: Uri, error: BoxError| {
                    layer_error(method, uri, error, timeout_ms)
                },
            ))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::new(limits.concurrency_max))
            .timeout(request_timeout),
    );
    let health = health.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(
                move |method: Method, uri: Uri, error: BoxError| {
                    layer_error(method, uri, error, timeout_ms)
                },
            ))
            .timeout(request_timeout),
    );
    health
        .merge(work)
        .layer(RequestBodyLimitLayer::new(limits.body_bytes_max))
        .layer(from_fn_with_state(limits, check_head))
        .layer(map_response_with_state(limits, json_errors))
}

/// The answer to a tower layer's refusal: load shed, or the request timeout.
async fn layer_error(method: Method, uri: Uri, error: BoxError, timeout_ms: u64) -> ApiError {
    if error.is::<tower::load_shed::error::Overloaded>() {
        return ApiError::Unavailable {
            code: "OVERLOADED",
            message: "too many requests in flight; nothing was applied, resend".into(),
        };
    }
    if error.is::<tower::timeout::error::Elapsed>() {
        if is_write(&method, uri.path()) {
            return ApiError::Unavailable {
                code: "OUTCOME_UNKNOWN",
                message: format!(
                    "no answer within {timeout_ms} ms; the outcome is unknown: resend the same \
                     request (same transactionId or Idempotency-Key) to learn it"
                ),
            };
        }
        return ApiError::Unavailable {
            code: "TIMEOUT",
            message: format!("no answer within {timeout_ms} ms; nothing was changed, retry"),
        };
    }
    ApiError::Internal(format!("middleware error: {error}"))
}

/// Whether a request may change state: any unsafe method except the one read-only POST.
fn is_write(method: &Method, path: &str) -> bool {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    !safe && path != crate::QUERY_ACCOUNTS_PATH
}

/// Refuses, before any routing work, a request whose head breaks a limit or whose body is
/// not JSON.
async fn check_head(State(limits): State<ApiLimits>, request: Request, next: Next) -> Response {
    match head_problem(request.method(), request.uri(), request.headers(), &limits) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    }
}

fn head_problem(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    limits: &ApiLimits,
) -> Option<ApiError> {
    uri_problem(uri)
        .or_else(|| headers_problem(headers))
        .or_else(|| body_length_problem(headers, limits))
        .or_else(|| content_type_problem(method, headers))
}

fn uri_problem(uri: &Uri) -> Option<ApiError> {
    let length = uri
        .path_and_query()
        .map_or(0, |target| target.as_str().len())
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len());
    if length > URI_BYTES_MAX {
        return Some(ApiError::refused(
            StatusCode::URI_TOO_LONG,
            "URI_TOO_LONG",
            format!("the request target is {length} bytes; at most {URI_BYTES_MAX}"),
        ));
    }
    if percent_encoding::percent_decode_str(uri.path())
        .decode_utf8()
        .is_err()
    {
        return Some(ApiError::bad_request(
            "INVALID_PATH",
            "the path is not valid UTF-8 once percent-decoded",
        ));
    }
    uri.query().and_then(query_problem)
}

/// A query must decode to UTF-8 and name each parameter once: the handlers read it as a
/// map, where a bad byte would become U+FFFD and a repeated name would silently win.
fn query_problem(query: &str) -> Option<ApiError> {
    let invalid = |message: String| Some(ApiError::bad_request("INVALID_QUERY", message));
    let plus_free = query.replace('+', " ");
    if percent_encoding::percent_decode_str(&plus_free)
        .decode_utf8()
        .is_err()
    {
        return invalid("the query string is not valid UTF-8 once percent-decoded".into());
    }
    let mut seen = Vec::new();
    for (name, _) in form_urlencoded::parse(query.as_bytes()) {
        if seen.contains(&name) {
            return invalid(format!("query parameter '{}' appears twice", echo(&name)));
        }
        seen.push(name);
    }
    None
}

fn headers_problem(headers: &HeaderMap) -> Option<ApiError> {
    let count = headers.len();
    if count > HEADERS_COUNT_MAX {
        return Some(ApiError::refused(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            format!("{count} header lines; at most {HEADERS_COUNT_MAX}"),
        ));
    }
    // Each line is `name: value\r\n`.
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if bytes > HEADERS_BYTES_MAX {
        return Some(ApiError::refused(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            format!("{bytes} bytes of headers; at most {HEADERS_BYTES_MAX}"),
        ));
    }
    None
}

/// Also done by `RequestBodyLimit` below; here it comes before the media type check, so an
/// oversized form body is told the size first.
fn body_length_problem(headers: &HeaderMap, limits: &ApiLimits) -> Option<ApiError> {
    let length = headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()?;
    let limit = u64::try_from(limits.body_bytes_max).unwrap_or(u64::MAX);
    (length > limit).then(|| body_too_large(limits))
}

fn body_too_large(limits: &ApiLimits) -> ApiError {
    ApiError::refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        "BODY_TOO_LARGE",
        format!(
            "request body exceeds {} bytes; nothing was read or applied",
            limits.body_bytes_max
        ),
    )
}

/// Bodies are JSON: `application/json` (charset, if named, utf-8), `application/*+json`, or
/// no Content-Type at all. Anything else is refused rather than guessed at.
fn content_type_problem(method: &Method, headers: &HeaderMap) -> Option<ApiError> {
    if !matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        return None;
    }
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let value = values.next()?;
    let unsupported = |got: &str| {
        Some(ApiError::refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!(
                "Content-Type must be application/json (or application/*+json), charset \
                 utf-8 if named; got '{}'",
                echo(got)
            ),
        ))
    };
    if values.next().is_some() {
        return unsupported("several Content-Type headers");
    }
    let Ok(text) = value.to_str() else {
        return unsupported("a non-ASCII value");
    };
    if is_json_media_type(text) {
        None
    } else {
        unsupported(text)
    }
}

/// `application/json` or `application/*+json`, with parameters allowed except a charset
/// other than utf-8 (JSON is UTF-8, RFC 8259).
pub fn is_json_media_type(text: &str) -> bool {
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = match essence.split_once('/') {
        Some(("application", "json")) => true,
        Some(("application", subtype)) => {
            subtype.len() > "+json".len() && subtype.ends_with("+json")
        }
        _ => false,
    };
    json && parts.all(|parameter| match parameter.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    })
}

fn echo(text: &str) -> String {
    match text.char_indices().nth(ECHO_BYTES_MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// Rewrites an error answer that is not JSON (axum's 405 and extractor rejections,
/// tower-http's 413) into the one error body, keeping its status and headers (`Allow`).
async fn json_errors(
    State(limits): State<ApiLimits>,
    method: Method,
    response: Response,
) -> Response {
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    if !is_error || is_json_response(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = read_error_text(body).await;
    let error = refusal_for(status, &method, &text, &limits);
    let mut answer = error.into_response();
    for name in parts.headers.keys() {
        let replaced = matches!(
            *name,
            header::CONTENT_TYPE | header::CONTENT_LENGTH | header::TRANSFER_ENCODING
        );
        if !replaced && !answer.headers().contains_key(name) {
            for value in parts.headers.get_all(name) {
                answer.headers_mut().append(name.clone(), value.clone());
            }
        }
    }
    answer
}

fn is_json_response(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(is_json_media_type)
}

async fn read_error_text(body: Body) -> String {
    match axum::body::to_bytes(body, ERROR_TEXT_BYTES_MAX).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    }
}

/// The stable code and message of an error answer the router produced as plain text.
fn refusal_for(status: StatusCode, method: &Method, text: &str, limits: &ApiLimits) -> ApiError {
    let message = |default: &str| {
        if text.is_empty() {
            default.to_owned()
        } else {
            text.to_owned()
        }
    };
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => (bad_request_code(text), message("bad request")),
        StatusCode::NOT_FOUND => ("ROUTE_NOT_FOUND", "no such route".to_owned()),
        // axum adds `Allow` after this layer has run; it is kept on the answer.
        StatusCode::METHOD_NOT_ALLOWED => (
            "METHOD_NOT_ALLOWED",
            format!(
                "method {} is not allowed on this route; the Allow header lists those that are",
                echo(method.as_str())
            ),
        ),
        StatusCode::REQUEST_TIMEOUT => ("TIMEOUT", message("request timed out")),
        StatusCode::PAYLOAD_TOO_LARGE => return body_too_large(limits),
        StatusCode::URI_TOO_LONG => ("URI_TOO_LONG", message("URI too long")),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("UNSUPPORTED_MEDIA_TYPE", message("unsupported media type"))
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ("HEADERS_TOO_LARGE", message("headers too large"))
        }
        StatusCode::TOO_MANY_REQUESTS => ("RATE_LIMITED", message("too many requests")),
        StatusCode::SERVICE_UNAVAILABLE => (
            "UNAVAILABLE",
            "unavailable; nothing was applied, resend".to_owned(),
        ),
        status if status.is_client_error() => ("INVALID_REQUEST", message("invalid request")),
        // A server error's text is not for clients: logged and hidden as in `ApiError`.
        _ => return ApiError::Internal(format!("{status}: {text}")),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return ApiError::Unavailable { code, message };
    }
    ApiError::Refused {
        status,
        code,
        message,
    }
}

/// axum's rejection texts say which part of the request was wrong.
fn bad_request_code(text: &str) -> &'static str {
    const PATH: [&str; 4] = [
        "Invalid URL",
        "Invalid UTF-8",
        "Wrong number of path arguments",
        "No paths parameters",
    ];
    if PATH.iter().any(|prefix| text.starts_with(prefix)) {
        "INVALID_PATH"
    } else if text.starts_with("Failed to deserialize query string") {
        "INVALID_QUERY"
    } else {
        "INVALID_REQUEST"
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish
/// (for at most `request_timeout_ms + header_read_timeout_ms`).
/// Each connection holds one of `connections_max` slots; with none free, accepting pauses.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ApiLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_buf_size(HYPER_BUF_BYTES_MAX)
        .max_headers(HYPER_HEADERS_COUNT_MAX);
    let slots = Arc::new(Semaphore::new(limits.connections_max));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the slots are never closed"),
        };
        let tcp = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
        };
        // Small JSON answers must not wait on Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    // Idle connections close at once and requests in flight end within their timeout; a
    // client that stops reading its answer must not hold the node up past that.
    let drain_ms = limits
        .request_timeout_ms
        .saturating_add(limits.header_read_timeout_ms);
    if tokio::time::timeout(Duration::from_millis(drain_ms), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_ms,
            "connections still open after the drain time; leaving them"
        );
    }
}

async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    // A connection that failed between the handshake and accept is the client's problem.
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(%error, "accepting a connection failed; retrying");
    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(error: Option<ApiError>) -> Option<&'static str> {
        match error? {
            ApiError::BadRequest { code, .. } | ApiError::Refused { code, .. } => Some(code),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn json_media_types() {
        for accepted in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/vnd.ledger+json",
            "application/problem+json; version=2",
        ] {
            assert!(is_json_media_type(accepted), "{accepted}");
        }
        for refused in [
            "application/x-www-form-urlencoded",
            "text/plain",
            "text/json",
            "application/+json",
            "application/jsonp",
            "application/json; charset=latin1",
            "multipart/form-data; boundary=x",
            "",
        ] {
            assert!(!is_json_media_type(refused), "{refused}");
        }
    }

    #[test]
    fn content_type_checked_on_bodies_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(code(content_type_problem(&Method::POST, &headers)), None);
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(
            code(content_type_problem(&Method::POST, &headers)),
            Some("UNSUPPORTED_MEDIA_TYPE")
        );
        assert_eq!(code(content_type_problem(&Method::GET, &headers)), None);
        headers.append(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert_eq!(
            code(content_type_problem(&Method::POST, &headers)),
            Some("UNSUPPORTED_MEDIA_TYPE")
        );
    }

    #[test]
    fn uri_limits_and_encoding() {
        let uri = |text: &str| text.parse::<Uri>().unwrap();
        assert_eq!(
            code(uri_problem(&uri("/api/v1/accounts/a%20b?limit=5"))),
            None
        );
        assert_eq!(
            code(uri_problem(&uri("/api/v1/accounts/%FF"))),
            Some("INVALID_PATH")
        );
        assert_eq!(
            code(uri_problem(&uri("/a?consistency=%FF"))),
            Some("INVALID_QUERY")
        );
        assert_eq!(
            code(uri_problem(&uri("/a?limit=1&limit=2"))),
            Some("INVALID_QUERY")
        );
        let long = format!("/{}", "a".repeat(URI_BYTES_MAX));
        assert_eq!(code(uri_problem(&uri(&long))), Some("URI_TOO_LONG"));
        let longest = format!("/{}", "a".repeat(URI_BYTES_MAX - 1));
        assert_eq!(code(uri_problem(&uri(&longest))), None);
    }

    #[test]
    fn header_limits() {
        let mut headers = HeaderMap::new();
        for i in 0..HEADERS_COUNT_MAX {
            headers.insert(
                header::HeaderName::try_from(format!("x-h{i}")).unwrap(),
                "v".parse().unwrap(),
            );
        }
        assert_eq!(code(headers_problem(&headers)), None);
        headers.insert("x-one-more", "v".parse().unwrap());
        assert_eq!(code(headers_problem(&headers)), Some("HEADERS_TOO_LARGE"));
        let mut headers = HeaderMap::new();
        headers.insert("x-big", "v".repeat(HEADERS_BYTES_MAX).parse().unwrap());
        assert_eq!(code(headers_problem(&headers)), Some("HEADERS_TOO_LARGE"));
    }

    #[test]
    fn announced_body_over_the_limit() {
        let limits = ApiLimits::default();
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "65536".parse().unwrap());
        assert_eq!(code(body_length_problem(&headers, &limits)), None);
        headers.insert(header::CONTENT_LENGTH, "65537".parse().unwrap());
        assert_eq!(
            code(body_length_problem(&headers, &limits)),
            Some("BODY_TOO_LARGE")
        );
    }

    #[test]
    fn writes_are_unsafe_methods_except_the_query() {
        assert!(is_write(&Method::POST, "/api/v1/transactions/process"));
        assert!(is_write(&Method::DELETE, "/api/v1/accounts/a"));
        assert!(!is_write(&Method::POST, crate::QUERY_ACCOUNTS_PATH));
        assert!(!is_write(&Method::GET, "/api/v1/accounts/a"));
    }

    #[test]
    fn plain_text_errors_get_codes() {
        let limits = ApiLimits::default();
        let code_of = |status, text: &str| match refusal_for(status, &Method::PUT, text, &limits) {
            ApiError::Refused { code, .. } | ApiError::Unavailable { code, .. } => code,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            code_of(StatusCode::BAD_REQUEST, "Invalid URL: Cannot parse"),
            "INVALID_PATH"
        );
        assert_eq!(
            code_of(
                StatusCode::BAD_REQUEST,
                "Failed to deserialize query string: x"
            ),
            "INVALID_QUERY"
        );
        assert_eq!(code_of(StatusCode::BAD_REQUEST, ""), "INVALID_REQUEST");
        assert_eq!(
            code_of(StatusCode::METHOD_NOT_ALLOWED, ""),
            "METHOD_NOT_ALLOWED"
        );
        assert_eq!(
            code_of(StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded"),
            "BODY_TOO_LARGE"
        );
        assert_eq!(code_of(StatusCode::SERVICE_UNAVAILABLE, ""), "UNAVAILABLE");
        assert!(matches!(
            refusal_for(StatusCode::BAD_GATEWAY, &Method::GET, "secret", &limits),
            ApiError::Internal(_)
        ));
    }
}
