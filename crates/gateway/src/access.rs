//! Who may ask, and over what. With a token set, every PoseQuery RPC (and reflection) needs
//! `authorization: Bearer <token>` (else UNAUTHENTICATED), and the preview, snapshots and camera
//! API need the same token (the header, or for a browser the session cookie that one visit to
//! `/?token=<token>` sets; else 401). The cookie is not the token: it is a signed expiry
//! (HMAC-SHA256 keyed by the token), so a cookie that leaks (a browser profile, a proxy log) opens
//! only the preview, only until it expires, never gRPC; a new token ends every session. Health (gRPC and `/healthz`, `/readyz`) and `/metrics` stay
//! open for probes and scrapers. With a certificate, both ports speak TLS only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

/// The cookie a browser keeps its session in.
const COOKIE: &str = "pump_session";
/// How long a session lasts: a week of training without typing the token again.
const SESSION_SECONDS: u64 = 7 * 24 * 3600;

/// The token clients must present, if any.
#[derive(Clone, Default)]
pub struct Access {
    token: Option<Arc<str>>,
    /// Served over TLS: the cookie is marked Secure.
    tls: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("token", &self.token.as_ref().map(|_| "***")).field("tls", &self.tls).finish()
    }
}

/// Equal, in a time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

impl Access {
    /// Anyone may ask (a gateway on localhost).
    pub fn open() -> Self {
        Self::default()
    }

    /// Clients must present `token`.
    pub fn with_token(token: impl Into<Arc<str>>, tls: bool) -> Self {
        Self { token: Some(token.into()), tls }
    }

    pub fn is_open(&self) -> bool {
        self.token.is_none()
    }

    /// A session cookie's value that expires at `expiry` (Unix seconds): `<expiry>.<tag>`.
    fn session(&self, expiry: u64) -> Option<String> {
        let token = self.token.as_ref()?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token.as_bytes());
        let tag = ring::hmac::sign(&key, format!("pump session until {expiry}").as_bytes());
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Some(format!("{expiry}.{hex}"))
    }

    /// Whether `presented` is a session this token signed that has not expired at `now`.
    fn session_allows(&self, presented: Option<&str>, now: u64) -> bool {
        let Some((expiry, _)) = presented.and_then(|p| p.split_once('.')) else { return false };
        let Ok(expiry) = expiry.parse::<u64>() else { return false };
        let expected = self.session(expiry);
        expiry > now && expected.zip(presented).is_some_and(|(e, p)| same(e.as_bytes(), p.as_bytes()))
    }

    fn allows(&self, presented: Option<&str>) -> bool {
        match &self.token {
            None => true,
            Some(t) => presented.is_some_and(|p| same(p.as_bytes(), t.as_bytes())),
        }
    }

    /// The gRPC interceptor: UNAUTHENTICATED without the token.
    pub fn grpc(&self) -> impl tonic::service::Interceptor + Clone + Send + Sync + 'static {
        let access = self.clone();
        move |req: tonic::Request<()>| {
            let presented = req.metadata().get("authorization").and_then(|v| v.to_str().ok());
            if access.allows(presented.and_then(|v| v.strip_prefix("Bearer "))) {
                Ok(req)
            } else {
                Err(tonic::Status::unauthenticated("a bearer token is required (authorization: Bearer <token>)"))
            }
        }
    }

    /// `routes` behind the token: 401 without it; `?token=` (right) sets the cookie and comes
    /// back without it, so the page's own requests carry it.
    pub fn http(&self, routes: Router) -> Router {
        if self.is_open() {
            return routes;
        }
        let access = self.clone();
        routes.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            let access = access.clone();
            async move { access.guard(req, next).await }
        }))
    }

    async fn guard(&self, req: Request, next: Next) -> Response {
        let query_token = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(|t| t.to_string()));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Some(session) =
            query_token.filter(|t| self.allows(Some(t))).and_then(|_| self.session(now + SESSION_SECONDS))
        {
            let secure = if self.tls { "; Secure" } else { "" };
            let set =
                format!("{COOKIE}={session}; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict; Path=/{secure}");
            let back = req.uri().path().to_string();
            return (StatusCode::SEE_OTHER, [(header::SET_COOKIE, set), (header::LOCATION, back)]).into_response();
        }
        let headers = req.headers();
        if self.allows(bearer(headers)) || self.session_allows(cookie(headers), now) {
            return next.run(req).await;
        }
        let why = "a token is required: open /?token=<token> once, or send authorization: Bearer <token>\n";
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], why).into_response()
    }
}

/// A certificate chain and its key (PEM), for both of the gateway's ports.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the TLS {what} {}: {e}", path.display()))
}

impl TlsFiles {
    /// For tonic.
    pub fn grpc(&self) -> Result<tonic::transport::ServerTlsConfig, String> {
        let identity = tonic::transport::Identity::from_pem(read(&self.cert, "certificate")?, read(&self.key, "key")?);
        Ok(tonic::transport::ServerTlsConfig::new().identity(identity))
    }

    /// For the HTTP port.
    pub fn http(&self) -> Result<tokio_rustls::TlsAcceptor, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(&read(&self.cert, "certificate")?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("TLS certificate {}: {e}", self.cert.display()))?;
        let key = PrivateKeyDer::from_pem_slice(&read(&self.key, "key")?)
            .map_err(|e| format!("TLS key {}: {e}", self.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
            .map_err(|e| format!("TLS certificate {} with key {}: {e}", self.cert.display(), self.key.display()))?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    /// Checks both files now, so a bad one is a usage error at start.
    pub fn check(&self) -> Result<(), String> {
        self.grpc()?;
        self.http().map(|_| ())
    }
}

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `app` over TLS on `listener` until `shutdown`, then lets open requests finish (long
/// ones, like an MJPEG stream, end at `shutdown` themselves).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    acceptor: tokio_rustls::TlsAcceptor,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let tcp = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, app, shutdown) = (acceptor.clone(), app.clone(), shutdown.clone());
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_compared_whole_and_found_in_header_or_cookie() {
        let a = Access::with_token("s3cret", false);
        assert!(a.allows(Some("s3cret")));
        assert!(!a.allows(Some("s3cre")) && !a.allows(Some("s3cret!")) && !a.allows(None));
        assert!(Access::open().allows(None));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "theme=dark; pump_session=abc.def".parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(cookie(&h), Some("abc.def"));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(bearer(&h), Some("abc"));
        assert!(!format!("{a:?}").contains("s3cret"));
    }

    #[test]
    fn a_session_is_signed_by_the_token_and_ends() {
        let a = Access::with_token("s3cret", false);
        let s = a.session(2000).unwrap_or_else(|| panic!("a session"));
        assert!(!s.contains("s3cret"));
        assert!(a.session_allows(Some(&s), 1999));
        assert!(!a.session_allows(Some(&s), 2000), "expired");
        assert!(!a.session_allows(Some("s3cret"), 1999), "the token itself is not a session");
        let forged = s.replacen("2000", "9999", 1);
        assert!(!a.session_allows(Some(&forged), 1999), "a later expiry with the same tag");
        assert!(!Access::with_token("other", false).session_allows(Some(&s), 1999), "another token's session");
        assert!(!a.session_allows(None, 0) && !a.session_allows(Some("x.y"), 0));
        assert_eq!(Access::open().session(1), None);
    }
}
