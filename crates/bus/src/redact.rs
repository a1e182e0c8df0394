//! Secrets out of what pump says: a camera URL or NATS URL with a password (`rtsp://user:pw@cam`)
//! is shown as `rtsp://user:***@cam` in every log line, error and health report.

/// `url` with the password (or a bare token) of its userinfo replaced by `***`; anything else as is.
pub fn url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_string() };
    let userinfo = &rest[..at];
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_string(),
    };
    format!("{}{shown}{}", &url[..scheme_end], &rest[at..])
}

/// `text` with any secret of `url` (its password or token) replaced by `***`: for messages from
/// libraries that echo the URL they were given.
pub fn secrets_in(text: &str, url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return text.to_string() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return text.to_string() };
    let userinfo = &rest[..at];
    let secret = userinfo.split_once(':').map(|(_, p)| p).unwrap_or(userinfo);
    if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, "***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_are_hidden_and_the_rest_kept() {
        assert_eq!(url("rtsp://admin:s3cret@10.0.0.7:554/stream1"), "rtsp://admin:***@10.0.0.7:554/stream1");
        assert_eq!(url("nats://tok3n@nats:4222"), "nats://***@nats:4222");
        assert_eq!(url("http://cam/x?next=a@b"), "http://cam/x?next=a@b", "an @ after the host is not userinfo");
        assert_eq!(url("/videos/squat.mp4"), "/videos/squat.mp4");
        assert_eq!(url("rtsp://cam/stream"), "rtsp://cam/stream");
        assert_eq!(secrets_in("bad url nats://u:pw@h: pw", "nats://u:pw@h"), "bad url nats://u:***@h: ***");
    }
}
