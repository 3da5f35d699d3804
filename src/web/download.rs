//! File downloads that pages and the API both answer with.

use actix_web::http::header;
use actix_web::HttpResponse;

/// A process version as a YAML file.
pub fn yaml_download(def: &crate::domain::process::Definition, id: i64, version: i32) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"process-{id}-v{version}.yaml\"")))
        .body(def.to_yaml())
}

/// A spreadsheet would run a cell that starts with one of these as a formula; a leading `'`
/// makes it text (formula injection, DESIGN §8). Tab and carriage return are in the same family.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// Rows as CSV text (RFC 4180 quoting), every cell neutralised.
pub fn csv_bytes<R, C>(rows: impl IntoIterator<Item = R>) -> Vec<u8>
where
    R: IntoIterator<Item = C>,
    C: AsRef<str>,
{
    let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    for row in rows {
        let cells: Vec<String> = row.into_iter().map(|c| neutralise(c.as_ref()).into_owned()).collect();
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(&cells);
    }
    writer.into_inner().unwrap_or_default()
}

fn csv_response(name: &str) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::Ok();
    builder
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.csv\"")));
    builder
}

/// A whole CSV file in one body.
pub fn csv_download(name: &str, body: Vec<u8>) -> HttpResponse {
    csv_response(name).body(body)
}

/// A CSV file written as its rows arrive: the header first, then each batch.
pub fn csv_stream<S, E>(name: &str, header_row: &[&str], batches: S) -> HttpResponse
where
    S: futures_util::Stream<Item = Result<Vec<u8>, E>> + 'static,
    E: Into<Box<dyn std::error::Error>> + 'static,
{
    use futures_util::StreamExt;
    let first = futures_util::stream::once(std::future::ready(Ok::<_, E>(csv_bytes([header_row]))));
    csv_response(name).streaming(first.chain(batches).map(|chunk| chunk.map(actix_web::web::Bytes::from)))
}
