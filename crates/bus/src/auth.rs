//! Who a service is to NATS, and how it knows the server is the right one: credentials file,
//! NKey, user and password, or token (secrets from files or the environment, never the command
//! line), and TLS with a custom CA and client certificates. Every service flattens
//! [`NatsAuthArgs`] into its flags; `pump-bus` turns them into connect options.

use std::path::{Path, PathBuf};

use clap::Args;

/// NATS security flags, shared by every service.
#[derive(Debug, Clone, Default, Args)]
pub struct NatsAuthArgs {
    /// NATS credentials file (user JWT and NKey seed, as `nsc` writes them).
    #[arg(long, env = "PUMP_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// File holding an NKey user seed (`SU…`).
    #[arg(long, env = "PUMP_NATS_NKEY_FILE")]
    pub nats_nkey_file: Option<PathBuf>,
    /// NATS user; the password comes from --nats-password-file or PUMP_NATS_PASSWORD.
    #[arg(long, env = "PUMP_NATS_USER")]
    pub nats_user: Option<String>,
    /// File holding the NATS user's password.
    #[arg(long, env = "PUMP_NATS_PASSWORD_FILE")]
    pub nats_password_file: Option<PathBuf>,
    /// The password itself: from the environment only (a flag would show in `ps`).
    #[arg(long, env = "PUMP_NATS_PASSWORD", hide = true, hide_env_values = true)]
    pub nats_password: Option<String>,
    /// File holding a NATS token (or PUMP_NATS_TOKEN, from the environment).
    #[arg(long, env = "PUMP_NATS_TOKEN_FILE")]
    pub nats_token_file: Option<PathBuf>,
    #[arg(long, env = "PUMP_NATS_TOKEN", hide = true, hide_env_values = true)]
    pub nats_token: Option<String>,
    /// CA certificate (PEM) the server's certificate must chain to; implies TLS.
    #[arg(long, env = "PUMP_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// Client certificate (PEM), for servers that verify clients; with --nats-key.
    #[arg(long, env = "PUMP_NATS_CERT", requires = "nats_key")]
    pub nats_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "PUMP_NATS_KEY", requires = "nats_cert")]
    pub nats_key: Option<PathBuf>,
    /// Require TLS (implied by a tls:// URL, --nats-ca and --nats-cert).
    #[arg(long, env = "PUMP_NATS_TLS", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub nats_tls: bool,
}

/// How a client authenticates, with its secrets read.
#[derive(Clone, Default, PartialEq)]
pub enum Credentials {
    /// None beyond what the URL carries (`nats://user:pw@host`).
    #[default]
    None,
    CredsFile(PathBuf),
    NKey(String),
    UserPassword(String, String),
    Token(String),
}

/// Secrets are never printed, not even by `{:?}`.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => write!(f, "None"),
            Credentials::CredsFile(p) => write!(f, "CredsFile({})", p.display()),
            Credentials::NKey(_) => write!(f, "NKey(***)"),
            Credentials::UserPassword(u, _) => write!(f, "UserPassword({u}, ***)"),
            Credentials::Token(_) => write!(f, "Token(***)"),
        }
    }
}

/// What a service presents to NATS and expects of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BusAuth {
    pub credentials: Credentials,
    /// CA certificate of the server's (PEM).
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub require_tls: bool,
}

impl BusAuth {
    /// Whether the connection must be TLS.
    pub fn tls(&self) -> bool {
        self.require_tls || self.ca.is_some() || self.client_cert.is_some()
    }
}

/// A secret from a file: its first line, without the line end (files made with `echo` end in one);
/// an empty one is an error. For every secret pump reads from a file (NATS's, the gateway's token).
pub fn secret_from(path: &Path, what: &str) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))?;
    let secret = text.lines().next().unwrap_or("").trim().to_string();
    if secret.is_empty() {
        return Err(format!("the {what} file {} is empty", path.display()));
    }
    Ok(secret)
}

/// A secret given as a file or as a value from the environment: the file's, when there is one.
pub fn secret(file: Option<&Path>, value: Option<&str>, what: &str) -> Result<Option<String>, String> {
    match (file, value) {
        (Some(path), _) => secret_from(path, what).map(Some),
        (None, v) => Ok(v.map(str::to_string)),
    }
}

fn readable(path: &Path, what: &str) -> Result<PathBuf, String> {
    std::fs::metadata(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    Ok(path.to_path_buf())
}

impl NatsAuthArgs {
    /// Reads the secrets and checks the files, or says in one line what is wrong.
    pub fn resolve(&self) -> Result<BusAuth, String> {
        let password = secret(self.nats_password_file.as_deref(), self.nats_password.as_deref(), "NATS password")?;
        let token = secret(self.nats_token_file.as_deref(), self.nats_token.as_deref(), "NATS token")?;
        let mut chosen = Vec::new();
        if let Some(p) = &self.nats_creds {
            chosen.push(Credentials::CredsFile(readable(p, "NATS credentials file")?));
        }
        if let Some(p) = &self.nats_nkey_file {
            chosen.push(Credentials::NKey(secret_from(p, "NKey seed")?));
        }
        match (&self.nats_user, password) {
            (Some(user), Some(pw)) => chosen.push(Credentials::UserPassword(user.clone(), pw)),
            (Some(user), None) => {
                return Err(format!(
                    "NATS user {user:?} has no password: set PUMP_NATS_PASSWORD_FILE (or PUMP_NATS_PASSWORD)"
                ))
            }
            (None, Some(_)) => return Err("a NATS password without a user: set PUMP_NATS_USER".into()),
            (None, None) => {}
        }
        if let Some(t) = token {
            chosen.push(Credentials::Token(t));
        }
        if chosen.len() > 1 {
            let names: Vec<String> = chosen.iter().map(|c| format!("{c:?}")).collect();
            return Err(format!("give NATS one way to authenticate, not {}", names.join(" and ")));
        }
        let client_cert = match (&self.nats_cert, &self.nats_key) {
            (Some(c), Some(k)) => Some((readable(c, "NATS client certificate")?, readable(k, "NATS client key")?)),
            _ => None,
        };
        Ok(BusAuth {
            credentials: chosen.pop().unwrap_or_default(),
            ca: self.nats_ca.as_deref().map(|p| readable(p, "NATS CA certificate")).transpose()?,
            client_cert,
            require_tls: self.nats_tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p
    }

    #[test]
    fn secrets_come_from_files_and_never_show() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let args = NatsAuthArgs {
            nats_user: Some("capture".into()),
            nats_password_file: Some(file(dir.path(), "pw", "s3cret\n")),
            nats_ca: Some(file(dir.path(), "ca.pem", "x")),
            ..Default::default()
        };
        let auth = args.resolve().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(auth.credentials, Credentials::UserPassword("capture".into(), "s3cret".into()));
        assert!(auth.tls());
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn what_cannot_work_is_said_in_one_line() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let no_pw = NatsAuthArgs { nats_user: Some("u".into()), ..Default::default() };
        assert!(no_pw.resolve().unwrap_err().contains("has no password"));
        let two = NatsAuthArgs {
            nats_token: Some("t".into()),
            nats_nkey_file: Some(file(dir.path(), "seed", "SUAB\n")),
            ..Default::default()
        };
        assert!(two.resolve().unwrap_err().contains("one way"));
        let missing = NatsAuthArgs { nats_ca: Some(dir.path().join("none.pem")), ..Default::default() };
        assert!(missing.resolve().unwrap_err().contains("CA certificate"));
        let empty = NatsAuthArgs { nats_token_file: Some(file(dir.path(), "t", "\n")), ..Default::default() };
        assert!(empty.resolve().unwrap_err().contains("is empty"));
        assert_eq!(NatsAuthArgs::default().resolve(), Ok(BusAuth::default()));
    }
}
