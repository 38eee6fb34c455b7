//! Writing rempart's own answers on the client connection.

use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

use crate::decide::Extra;
use crate::respond::pages::Page;

/// Writes a whole response from rempart itself, keeping the connection open
/// (unlike `respond_error`, which closes it).
pub async fn page(session: &mut Session, status: u16, page: &Page, extra: &Extra) -> Result<()> {
    let head_only = session.req_header().method == http::Method::HEAD;
    // No case map and static values: the header costs one map, not one
    // allocation per field. Sized for our four fields, the extras and the
    // two pingora adds as it writes the head (`Date`, `Connection`), so that
    // the map never grows and rehashes on the way out.
    const ADDED_BY_PINGORA: usize = 2;
    let fields = 4 + extra.iter().count() + ADDED_BY_PINGORA;
    let mut resp = ResponseHeader::build_no_case(status, Some(fields))?;
    resp.insert_header(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(page.content_type),
    )?;
    resp.insert_header(http::header::CONTENT_LENGTH, page.body.len())?;
    resp.insert_header(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    )?;
    resp.insert_header(
        http::header::VARY,
        http::HeaderValue::from_static("accept, accept-language"),
    )?;
    for (name, value) in extra.iter() {
        resp.insert_header(*name, value.clone())?;
    }
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(page.body.clone()), true)
            .await?;
    }
    Ok(())
}
