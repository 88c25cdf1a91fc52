//! Parsing and producing the HTTP headers the store speaks: digests
//! (RFC 9530 `Repr-Digest`/`Content-Digest`), byte ranges (RFC 9110),
//! entity tags and `Content-Disposition` file names.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters left as they are in a URL path segment or RFC 5987 value.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes a file name as one URL path segment.
pub fn encode_segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// `sha-256=:<base64>:` for a raw digest.
pub fn digest_header(digest: &[u8; 32]) -> String {
    format!("sha-256=:{}:", B64.encode(digest))
}

/// A `sha-256` digest member that is not `:<base64 of 32 bytes>:`.
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedDigest;

/// The SHA-256 in a `Repr-Digest`/`Content-Digest` value, if it has one.
pub fn parse_digest(value: &str) -> Result<Option<[u8; 32]>, MalformedDigest> {
    for member in value.split(',') {
        let Some((key, val)) = member.trim().split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("sha-256") {
            continue;
        }
        let inner = val.trim().strip_prefix(':').and_then(|v| v.strip_suffix(':')).ok_or(MalformedDigest)?;
        let bytes = B64.decode(inner).map_err(|_| MalformedDigest)?;
        return bytes.try_into().map(Some).map_err(|_| MalformedDigest);
    }
    Ok(None)
}

/// The quoted strong entity tag for a content digest.
pub fn etag(sha256_hex: &str) -> String {
    format!("\"{sha256_hex}\"")
}

/// True when an `If-None-Match`/`If-Match` list names `etag` (or is `*`).
/// Weak tags compare by their opaque part, as If-None-Match allows.
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// A byte range request, resolved against the file size.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeReq {
    /// Serve the whole file (no header, a malformed one, or several ranges).
    Full,
    /// Inclusive first and last byte.
    Part(u64, u64),
    Unsatisfiable,
}

/// Resolves a `Range` header. Several ranges are answered with the whole
/// file (allowed by RFC 9110), which also defuses many-range abuse.
pub fn parse_range(value: &str, size: u64) -> RangeReq {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeReq::Full;
    };
    if spec.contains(',') {
        return RangeReq::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeReq::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => {
            if start >= size {
                RangeReq::Unsatisfiable
            } else {
                RangeReq::Part(start, end.min(size - 1))
            }
        }
        (Ok(start), Err(_)) if b.is_empty() => {
            if start >= size {
                RangeReq::Unsatisfiable
            } else {
                RangeReq::Part(start, size - 1)
            }
        }
        (Err(_), Ok(suffix)) if a.is_empty() => {
            if suffix == 0 || size == 0 {
                RangeReq::Unsatisfiable
            } else {
                RangeReq::Part(size.saturating_sub(suffix), size - 1)
            }
        }
        _ => RangeReq::Full,
    }
}

/// The file name in a `Content-Disposition` header: `filename*` (RFC 5987,
/// UTF-8) preferred over `filename`.
pub fn disposition_filename(value: &str) -> Option<String> {
    let mut plain = None;
    for part in value.split(';').map(str::trim) {
        let Some((key, val)) = part.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let val = val.trim();
        if key == "filename*" {
            let (charset, rest) = val.split_once('\'')?;
            let (_lang, encoded) = rest.split_once('\'')?;
            if !charset.eq_ignore_ascii_case("utf-8") {
                return None;
            }
            return percent_decode_str(encoded).decode_utf8().ok().map(|s| s.into_owned());
        }
        if key == "filename" {
            let unquoted = val.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(val);
            plain = Some(unquoted.replace("\\\"", "\"").replace("\\\\", "\\"));
        }
    }
    plain
}

/// `Content-Disposition` for a download: `inline` or `attachment`, with
/// both an ASCII `filename` (for curl's `-J`, which ignores `filename*`)
/// and the exact UTF-8 `filename*` of RFC 6266/8187 (which browsers
/// prefer). In the ASCII form, anything that is not printable ASCII, and
/// the quote and backslash, become `_`.
pub fn disposition(inline: bool, name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}", encode_segment(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeReq::Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeReq::Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeReq::Part(90, 99));
        assert_eq!(parse_range("bytes=50-500", 100), RangeReq::Part(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeReq::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeReq::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeReq::Full);
        assert_eq!(parse_range("items=0-1", 100), RangeReq::Full);
        assert_eq!(parse_range("bytes=9-3", 100), RangeReq::Full);
        assert_eq!(parse_range("bytes=0-", 0), RangeReq::Unsatisfiable);
    }

    #[test]
    fn digests_round_trip_and_bad_ones_are_errors() {
        let d = [7u8; 32];
        assert_eq!(parse_digest(&digest_header(&d)), Ok(Some(d)));
        assert_eq!(parse_digest(&format!("sha-512=:AAAA:, {}", digest_header(&d))), Ok(Some(d)));
        assert_eq!(parse_digest("sha-512=:AAAA:"), Ok(None));
        assert_eq!(parse_digest("sha-256=:AAAA:"), Err(MalformedDigest));
        assert_eq!(parse_digest("sha-256=nocolons"), Err(MalformedDigest));
    }

    #[test]
    fn disposition_names() {
        assert_eq!(disposition_filename("attachment; filename=\"a b.txt\""), Some("a b.txt".into()));
        assert_eq!(
            disposition_filename("form-data; filename*=UTF-8''%C3%A9t%C3%A9.txt; filename=x"),
            Some("été.txt".into())
        );
        assert_eq!(disposition_filename("inline"), None);
    }

    #[test]
    fn dispositions_carry_both_names() {
        assert_eq!(disposition(false, "a b.txt"), "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt");
        assert_eq!(
            disposition(true, "été \"x\".png"),
            "inline; filename=\"_t_ _x_.png\"; filename*=UTF-8''%C3%A9t%C3%A9%20%22x%22.png"
        );
        // What we send, we can read back.
        assert_eq!(disposition_filename(&disposition(false, "日本.txt")), Some("日本.txt".into()));
    }

    #[test]
    fn etag_lists() {
        assert!(etag_list_matches("\"a\", \"b\"", "\"b\""));
        assert!(etag_list_matches("*", "\"x\""));
        assert!(etag_list_matches("W/\"x\"", "\"x\""));
        assert!(!etag_list_matches("\"a\"", "\"b\""));
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("a b/c%.txt"), "a%20b%2Fc%25.txt");
    }
}
