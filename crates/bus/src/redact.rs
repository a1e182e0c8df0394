//! Secrets out of what pump says: a camera URL or NATS URL with a password (`rtsp://user:pw@cam`)
//! is shown as `rtsp://user:***@cam` in every log line, error and health report.

/// Where the userinfo of `url` lies (between `scheme://` and the `@` before the host), if any.
fn userinfo(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some(start..start + at)
}

/// `url` with the password (or a bare token) of its userinfo replaced by `***`; anything else as is.
pub fn url(url: &str) -> String {
    let Some(span) = userinfo(url) else { return url.to_string() };
    let shown = match url[span.clone()].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_string(),
    };
    format!("{}{shown}{}", &url[..span.start], &url[span.end..])
}

/// A comma-separated list of URLs (a NATS cluster's), each as [`url`] shows it.
pub fn urls(list: &str) -> String {
    list.split(',').map(url).collect::<Vec<_>>().join(",")
}

/// `text` with the secrets of every URL of a comma-separated list replaced by `***`.
pub fn secrets_of_urls_in(text: &str, list: &str) -> String {
    list.split(',').fold(text.to_string(), |text, u| secrets_in(&text, u))
}

/// `text` with any secret of `url` (its password or token) replaced by `***`: for messages from
/// libraries that echo the URL they were given.
pub fn secrets_in(text: &str, url: &str) -> String {
    let Some(span) = userinfo(url) else { return text.to_string() };
    let info = &url[span];
    let secret = info.split_once(':').map(|(_, p)| p).unwrap_or(info);
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
    fn every_url_of_a_cluster_list_is_redacted() {
        let list = "nats://pump:pw1@n1:4222,nats://pump:pw2@n2:4222,nats://n3:4222";
        assert_eq!(urls(list), "nats://pump:***@n1:4222,nats://pump:***@n2:4222,nats://n3:4222");
        assert_eq!(secrets_of_urls_in("n1 said pw1, n2 said pw2", list), "n1 said ***, n2 said ***");
    }

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
