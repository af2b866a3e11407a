//! Database credentials in the JSON format of AWS's RDS rotation functions:
//! `{"engine":"postgres","host","port","username","password","dbname"}`, plus optional
//! `sslmode` (and fields FlowForge ignores, such as `masterarn` or `dbInstanceIdentifier`).

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// Database credentials from a rotating secret.
#[derive(Clone)]
pub struct DbSecret {
    pub host: String,
    pub port: u16,
    pub username: String,
    password: SecretString,
    pub dbname: String,
    /// The secret's own `sslmode`, if it has one.
    pub sslmode: Option<PgSslMode>,
}

impl std::fmt::Debug for DbSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSecret")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"***")
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .finish()
    }
}

/// TLS to PostgreSQL, from configuration.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `sslmode` when the secret has none (`verify-full` when neither says).
    pub sslmode: Option<PgSslMode>,
    /// CA bundle to verify the server with (the RDS global bundle in production).
    pub root_cert: Option<PathBuf>,
}

impl DbSecret {
    /// Parses the RDS secret JSON. Errors name the field at fault, never a value.
    pub fn parse(raw: &SecretString) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(raw.expose_secret())
            .map_err(|e| format!("not JSON (line {}, column {})", e.line(), e.column()))?;
        if !doc.is_object() {
            return Err("expected a JSON object with host, port, username, password".into());
        }
        let text = |field: &str| -> Result<Option<String>, String> {
            match doc.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("field {field:?} must be a string")),
            }
        };
        let required = |field: &str| -> Result<String, String> {
            text(field)?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("field {field:?} is missing or empty"))
        };
        if let Some(engine) = text("engine")? {
            if !matches!(
                engine.as_str(),
                "postgres" | "postgresql" | "aurora-postgresql"
            ) {
                return Err(format!(
                    "field \"engine\" is {engine:?}; FlowForge needs PostgreSQL"
                ));
            }
        }
        let port = match doc.get("port") {
            None | Some(Value::Null) => 5432,
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .ok_or("field \"port\" is not a valid port")?,
            Some(Value::String(s)) => s
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("field \"port\" is not a valid port")?,
            Some(_) => return Err("field \"port\" must be a number".into()),
        };
        let sslmode = text("sslmode")?
            .map(|m| parse_sslmode(&m).map_err(|e| format!("field \"sslmode\": {e}")))
            .transpose()?;
        Ok(DbSecret {
            host: required("host")?,
            port,
            username: required("username")?,
            password: SecretString::from(required("password")?),
            dbname: text("dbname")?
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "postgres".into()),
            sslmode,
        })
    }

    /// Connection options for these credentials. `sslmode` comes from the secret, else from
    /// configuration, else `verify-full`.
    pub fn connect_options(&self, tls: &TlsSettings, application_name: &str) -> PgConnectOptions {
        let mode = self
            .sslmode
            .or(tls.sslmode)
            .unwrap_or(PgSslMode::VerifyFull);
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.username)
            .password(self.password.expose_secret())
            .database(&self.dbname)
            .ssl_mode(mode)
            .application_name(application_name);
        if let Some(ca) = &tls.root_cert {
            options = options.ssl_root_cert(ca);
        }
        options
    }

    /// Whether two secrets log in the same way (same user and password).
    pub fn same_login(&self, other: &DbSecret) -> bool {
        self.username == other.username
            && self.password.expose_secret() == other.password.expose_secret()
            && self.host == other.host
            && self.port == other.port
            && self.dbname == other.dbname
    }
}

/// Parses a libpq `sslmode`.
pub fn parse_sslmode(s: &str) -> Result<PgSslMode, String> {
    s.parse::<PgSslMode>().map_err(|_| {
        format!("unknown sslmode {s:?} (disable, allow, prefer, require, verify-ca, verify-full)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DbSecret, String> {
        DbSecret::parse(&SecretString::from(s.to_owned()))
    }

    #[test]
    fn reads_the_rds_rotation_format() {
        let s = parse(
            r#"{"engine":"postgres","host":"db.example.internal","port":5432,
                "username":"app_clone","password":"pw","dbname":"flowforge",
                "masterarn":"arn:aws:secretsmanager:eu-west-1:1:secret:master"}"#,
        )
        .unwrap();
        assert_eq!(s.host, "db.example.internal");
        assert_eq!(s.port, 5432);
        assert_eq!(s.username, "app_clone");
        assert_eq!(s.dbname, "flowforge");
        assert!(s.sslmode.is_none());
        let o = s.connect_options(&TlsSettings::default(), "t");
        assert_eq!(o.get_host(), "db.example.internal");
        assert_eq!(o.get_username(), "app_clone");
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
        assert!(!format!("{s:?}").contains("pw\""));
    }

    #[test]
    fn port_may_be_a_string_and_sslmode_comes_from_secret_then_config() {
        let s = parse(
            r#"{"host":"h","port":"6543","username":"u","password":"p","sslmode":"require"}"#,
        )
        .unwrap();
        assert_eq!(s.port, 6543);
        assert_eq!(s.dbname, "postgres");
        let tls = TlsSettings {
            sslmode: Some(PgSslMode::Disable),
            root_cert: None,
        };
        assert!(matches!(
            s.connect_options(&tls, "t").get_ssl_mode(),
            PgSslMode::Require
        ));
        let s = parse(r#"{"host":"h","username":"u","password":"p"}"#).unwrap();
        assert!(matches!(
            s.connect_options(&tls, "t").get_ssl_mode(),
            PgSslMode::Disable
        ));
    }

    #[test]
    fn bad_secrets_name_the_field_and_never_the_value() {
        for (doc, field) in [
            (r#"{"host":"h","username":"u"}"#, "password"),
            (r#"{"host":"h","username":"u","password":""}"#, "password"),
            (
                r#"{"host":"h","username":"u","password":["hunter2"]}"#,
                "password",
            ),
            (
                r#"{"host":"h","username":"u","password":"p","port":"hunter2"}"#,
                "port",
            ),
            (
                r#"{"host":"h","username":"u","password":"p","port":70000}"#,
                "port",
            ),
            (
                r#"{"host":"h","username":"u","password":"p","engine":"mysql"}"#,
                "engine",
            ),
            (
                r#"{"host":"h","username":"u","password":"p","sslmode":"hunter2"}"#,
                "sslmode",
            ),
            (r#"{"username":"u","password":"hunter2"}"#, "host"),
            (r#"{"password":"hunter2""#, "JSON"),
            ("hunter2", "JSON"),
        ] {
            let err = parse(doc).unwrap_err();
            assert!(err.contains(field), "{doc}: {err}");
            assert!(
                !err.contains("hunter2") || field == "sslmode",
                "{doc}: {err}"
            );
        }
    }
}
