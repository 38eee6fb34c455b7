//! The one cookie rempart reads: the challenge pass, found in the `Cookie`
//! header without copying or allocating.

/// The name of the challenge's pass cookie.
pub const PASS_COOKIE: &str = "rempart_pass";

/// The value of cookie `name` in one `Cookie` header (`a=1; b=2`), if there.
pub fn find<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let value = pair.strip_prefix(name)?.strip_prefix(b"=")?;
        // RFC 6265 allows a quoted value.
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        Some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pass_is_found_among_cookies() {
        let n = PASS_COOKIE.as_bytes();
        assert_eq!(find(b"rempart_pass=ab.cd", n), Some(&b"ab.cd"[..]));
        assert_eq!(find(b"a=1; rempart_pass=x; b=2", n), Some(&b"x"[..]));
        assert_eq!(find(b"a=1;rempart_pass=\"x\"", n), Some(&b"x"[..]));
        assert_eq!(find(b"xrempart_pass=1; rempart_passy=2", n), None);
        assert_eq!(find(b"", n), None);
        assert_eq!(find(b"\xff;;; =", n), None);
    }
}
