//! A small `multipart/form-data` reader (RFC 7578) for the text fields of an OAuth request,
//! as `curl -F name=value` sends them. Files are read as text too; nothing else is supported.
//!
//! Error texts name the problem, never a value.

/// Why the body is not readable multipart form data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("the multipart Content-Type has no boundary")]
    NoBoundary,
    #[error("the multipart body does not contain its boundary")]
    NoDelimiter,
    #[error("a multipart part is not terminated")]
    Unterminated,
    #[error("a multipart part has no Content-Disposition name")]
    NoName,
    #[error("the multipart field `{0}` is not UTF-8 text")]
    NotText(String),
}

/// The boundary named in a `multipart/form-data; boundary=…` content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim().trim_matches('"');
        (!value.is_empty()).then(|| value.to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| at + from)
}

/// The `name` parameter of a `Content-Disposition: form-data; name="…"` header.
fn field_name(headers: &str) -> Option<String> {
    headers.lines().find_map(|line| {
        let (header, value) = line.split_once(':')?;
        if !header.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        value.split(';').skip(1).find_map(|parameter| {
            let (name, value) = parameter.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("name")
                .then(|| value.trim().trim_matches('"').to_owned())
        })
    })
}

/// Every field of the body, in order, as (name, value).
pub fn fields(content_type: &str, body: &[u8]) -> Result<Vec<(String, String)>, MultipartError> {
    let boundary = boundary(content_type).ok_or(MultipartError::NoBoundary)?;
    let delimiter = format!("--{boundary}").into_bytes();
    let next_delimiter = format!("\r\n--{boundary}").into_bytes();
    let mut at = find(body, &delimiter, 0).ok_or(MultipartError::NoDelimiter)? + delimiter.len();
    let mut fields = Vec::new();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Ok(fields);
        }
        // The rest of the delimiter line (transport padding, then CRLF).
        let line_end = find(body, b"\r\n", at).ok_or(MultipartError::Unterminated)?;
        let part_start = line_end + 2;
        let part_end =
            find(body, &next_delimiter, part_start).ok_or(MultipartError::Unterminated)?;
        let part = body
            .get(part_start..part_end)
            .ok_or(MultipartError::Unterminated)?;
        let (head, value) = match find(part, b"\r\n\r\n", 0) {
            Some(split) => (
                part.get(..split).unwrap_or_default(),
                part.get(split + 4..).unwrap_or_default(),
            ),
            None => return Err(MultipartError::Unterminated),
        };
        let head = String::from_utf8_lossy(head);
        let name = field_name(&head).ok_or(MultipartError::NoName)?;
        let value =
            String::from_utf8(value.to_vec()).map_err(|_| MultipartError::NotText(name.clone()))?;
        fields.push((name, value));
        at = part_end + next_delimiter.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_as_curl_sends_them() {
        let body = "--------------------------abc123\r\n\
            Content-Disposition: form-data; name=\"grant_type\"\r\n\r\n\
            client_credentials\r\n\
            --------------------------abc123\r\n\
            Content-Disposition: form-data; name=\"client_id\"\r\n\
            Content-Type: text/plain\r\n\r\n\
            id with spaces\r\n\
            --------------------------abc123--\r\n";
        let fields = fields(
            "multipart/form-data; boundary=------------------------abc123",
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            fields,
            [
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("client_id".to_owned(), "id with spaces".to_owned())
            ]
        );
    }

    #[test]
    fn quoted_boundaries_preambles_and_empty_values() {
        let body = "preamble\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--b\r\n\
            content-disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n\r\nline1\r\nline2\r\n--b--";
        let fields = fields(
            "multipart/form-data; charset=utf-8; boundary=\"b\"",
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            fields,
            [
                ("a".to_owned(), String::new()),
                ("f".to_owned(), "line1\r\nline2".to_owned())
            ]
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert_eq!(
            fields("multipart/form-data", b"--b--"),
            Err(MultipartError::NoBoundary)
        );
        assert_eq!(
            fields("multipart/form-data; boundary=b", b"nothing"),
            Err(MultipartError::NoDelimiter)
        );
        assert_eq!(
            fields(
                "multipart/form-data; boundary=b",
                b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue without end"
            ),
            Err(MultipartError::Unterminated)
        );
        assert_eq!(
            fields(
                "multipart/form-data; boundary=b",
                b"--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--"
            ),
            Err(MultipartError::NoName)
        );
    }
}
