//! One configuration file for every service (`--config FILE` or `PUMP_CONFIG`), TOML. Each key
//! stands for a `PUMP_*` variable (`quiet_seconds` is `PUMP_QUIET_SECONDS`): the file fills in
//! what neither a flag nor the environment set, so flags beat variables beat the file beat the
//! defaults. The schema, with every key, is `deploy/pump.toml`:
//!
//! - top-level keys are what every service reads (`nats_url`, `log`, the NATS credentials, the
//!   stream limits);
//! - `[capture]`, `[infer]`, `[sets]`, `[gateway]` hold one service's own settings, `[hook]`
//!   those of `pump hook` (the PUMP logger's, which `pump up` then runs);
//! - `[streams]` the streams every service sets up (`replicas`: `PUMP_STREAMS_REPLICAS`);
//! - `[cameras.NAME]` holds a camera: `source`, `encoding` and `realtime` (capture), `exercise`
//!   and `zone` (sets).
//!
//! A key the service does not have, or a value of the wrong kind, is one line naming the key.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Value;

/// The service tables, by binary.
pub fn table_of(binary: &str) -> Option<&'static str> {
    match binary {
        "pump-capture" => Some("capture"),
        "pump-infer" => Some("infer"),
        "pump-sets" => Some("sets"),
        "pump-gateway" => Some("gateway"),
        "pump-hook" => Some("hook"),
        _ => None,
    }
}

/// The tables of the `pump` command's subcommands that run as services (`pump up` starts them).
pub fn table_of_subcommand(binary: &str, subcommand: &str) -> Option<&'static str> {
    match (binary, subcommand) {
        ("pump", "hook") => Some("hook"),
        _ => None,
    }
}

const TABLES: [&str; 5] = ["capture", "infer", "sets", "gateway", "hook"];

/// What the file says for `table`'s service: variable → values (several for a repeated flag),
/// and which of them came from the top level (every service must know those).
#[derive(Debug, Default, PartialEq)]
pub struct Settings {
    pub values: BTreeMap<String, Vec<String>>,
    /// Variables that come from top-level keys (named by their key, for the error).
    pub top_level: BTreeMap<String, String>,
    /// Variables that come from `[cameras]`: only services that read them take them.
    pub from_cameras: Vec<String>,
}

fn variable(key: &str) -> String {
    format!("PUMP_{}", key.to_ascii_uppercase())
}

/// A scalar, or an array of scalars, as the strings a flag would take.
fn strings(key: &str, v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Integer(i) => Ok(vec![i.to_string()]),
        Value::Float(f) => Ok(vec![f.to_string()]),
        Value::Boolean(b) => Ok(vec![b.to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Array(_) | Value::Table(_) => Err(format!("{key}: a list of lists or tables is not a setting")),
                other => strings(key, other).map(|mut v| v.remove(0)),
            })
            .collect(),
        Value::Table(_) => Err(format!("{key}: a table here is not a setting")),
        Value::Datetime(d) => Ok(vec![d.to_string()]),
    }
}

fn camera(name: &str, v: &Value, out: &mut Settings) -> Result<(), String> {
    let Value::Table(t) = v else { return Err(format!("cameras.{name}: expected a table (source, exercise, zone)")) };
    for (key, value) in t {
        let at = format!("cameras.{name}.{key}");
        let (var, text) = match (key.as_str(), value) {
            ("source", Value::String(s)) => ("PUMP_CAMERAS", format!("{name}={s}")),
            ("exercise", Value::String(s)) => ("PUMP_CAMERA_EXERCISE", format!("{name}={s}")),
            ("encoding", Value::String(s)) => ("PUMP_CAMERA_ENCODING", format!("{name}={s}")),
            ("realtime", Value::Boolean(b)) => ("PUMP_CAMERA_REALTIME", format!("{name}={b}")),
            ("zone", Value::Array(a)) if a.len() == 4 => {
                let v: Vec<f64> = a
                    .iter()
                    .map(|x| x.as_float().or_else(|| x.as_integer().map(|i| i as f64)))
                    .collect::<Option<_>>()
                    .ok_or(format!("{at}: expected four numbers x1, y1, x2, y2 (fractions of the frame)"))?;
                ("PUMP_ZONE", format!("{name}={},{},{},{}", v[0], v[1], v[2], v[3]))
            }
            ("source" | "exercise" | "encoding", _) => return Err(format!("{at}: expected a string")),
            ("realtime", _) => return Err(format!("{at}: expected true or false")),
            ("zone", _) => return Err(format!("{at}: expected four numbers x1, y1, x2, y2 (fractions of the frame)")),
            _ => return Err(format!("{at}: a camera has source, encoding, realtime, exercise and zone")),
        };
        out.values.entry(var.to_string()).or_default().push(text);
        if !out.from_cameras.iter().any(|c| c == var) {
            out.from_cameras.push(var.to_string());
        }
    }
    Ok(())
}

/// Reads `text` for the service of `table`.
pub fn settings(text: &str, table: &str) -> Result<Settings, String> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_string())?;
    let mut out = Settings::default();
    for (key, value) in &doc {
        match (key.as_str(), value) {
            ("cameras", Value::Table(cams)) => {
                for (name, cam) in cams {
                    camera(name, cam, &mut out)?;
                }
            }
            ("cameras", _) => return Err("cameras: expected tables [cameras.NAME]".into()),
            // The streams every service sets up: `[streams] replicas` is PUMP_STREAMS_REPLICAS.
            ("streams", Value::Table(own)) => {
                for (k, v) in own {
                    let var = format!("PUMP_STREAMS_{}", k.to_ascii_uppercase());
                    out.values.insert(var.clone(), strings(&format!("streams.{k}"), v)?);
                    out.top_level.insert(var, format!("streams.{k}"));
                }
            }
            (t, Value::Table(own)) if TABLES.contains(&t) => {
                if t != table {
                    continue;
                }
                for (k, v) in own {
                    // `pump hook`'s variables are PUMP_HOOK_*: `[hook] pump` is PUMP_HOOK_PUMP.
                    let var = if t == "hook" { format!("PUMP_HOOK_{}", k.to_ascii_uppercase()) } else { variable(k) };
                    out.values.insert(var, strings(&format!("{t}.{k}"), v)?);
                }
            }
            (_, Value::Table(_)) => {
                return Err(format!("[{key}]: no such table (capture, infer, sets, gateway, hook, cameras, streams)"));
            }
            _ => {
                let var = variable(key);
                out.values.entry(var.clone()).or_insert(strings(key, value)?);
                out.top_level.insert(var, key.clone());
            }
        }
    }
    Ok(out)
}

/// Reads the file at `path` for `table`.
pub fn load(path: &Path, table: &str) -> Result<Settings, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    settings(&text, table)
}

/// The config file named by `--config FILE` / `--config=FILE` on the command line, or `PUMP_CONFIG`.
pub fn path_from(args: &[std::ffi::OsString]) -> Option<std::path::PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--config" {
            return it.next().map(Into::into);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(p.into());
        }
    }
    std::env::var_os("PUMP_CONFIG").filter(|p| !p.is_empty()).map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
nats_url = "nats://nats:4222"
log = "info"

[cameras.rack1]
source = "rtsp://cam1/stream"
exercise = "squat"
zone = [0.1, 0.2, 0.8, 1]

[cameras.rack2]
source = "http://h/x?a=1,b=2"
encoding = "jpeg:80"
realtime = false

[capture]
encoding = "jpeg"
realtime = true

[sets]
quiet_seconds = 20
log = "debug"
"#;

    #[test]
    fn each_service_gets_its_table_the_top_level_and_its_cameras() {
        let capture = settings(EXAMPLE, "capture").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(capture.values["PUMP_CAMERAS"], ["rack1=rtsp://cam1/stream", "rack2=http://h/x?a=1,b=2"]);
        assert_eq!(capture.values["PUMP_ENCODING"], ["jpeg"]);
        assert_eq!(capture.values["PUMP_REALTIME"], ["true"]);
        assert_eq!(capture.values["PUMP_CAMERA_ENCODING"], ["rack2=jpeg:80"]);
        assert_eq!(capture.values["PUMP_CAMERA_REALTIME"], ["rack2=false"]);
        assert!(!capture.values.contains_key("PUMP_QUIET_SECONDS"));
        let sets = settings(EXAMPLE, "sets").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sets.values["PUMP_QUIET_SECONDS"], ["20"]);
        assert_eq!(sets.values["PUMP_CAMERA_EXERCISE"], ["rack1=squat"]);
        assert_eq!(sets.values["PUMP_ZONE"], ["rack1=0.1,0.2,0.8,1"]);
        // The service's own table beats the top level.
        assert_eq!(sets.values["PUMP_LOG"], ["debug"]);
        assert_eq!(sets.top_level["PUMP_NATS_URL"], "nats_url");
    }

    #[test]
    fn the_streams_table_is_every_service_s_and_a_cluster_is_a_list() {
        let text = "nats_url = [\"nats://n1:4222\", \"nats://n2:4222\"]\n[streams]\nreplicas = 3\n";
        for table in ["capture", "infer", "sets", "gateway"] {
            let s = settings(text, table).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.values["PUMP_STREAMS_REPLICAS"], ["3"]);
            assert_eq!(s.values["PUMP_NATS_URL"], ["nats://n1:4222", "nats://n2:4222"]);
        }
    }

    #[test]
    fn what_cannot_be_a_setting_names_its_key() {
        for (text, says) in [
            ("[cameras.a]\nsorce = \"x\"", "cameras.a.sorce"),
            ("[cameras.a]\nzone = [1, 2]", "cameras.a.zone"),
            ("[cameras.a]\nsource = 3", "cameras.a.source"),
            ("[setts]\nx = 1", "[setts]"),
            ("nats_url = ", "string"),
            ("[sets]\nquiet_seconds = [[1]]", "sets.quiet_seconds"),
        ] {
            let e = settings(text, "sets").unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_path_comes_from_the_flag_or_the_environment() {
        let args = |v: &[&str]| v.iter().map(Into::into).collect::<Vec<std::ffi::OsString>>();
        assert_eq!(path_from(&args(&["x", "--config", "a.toml"])), Some("a.toml".into()));
        assert_eq!(path_from(&args(&["x", "--config=b.toml"])), Some("b.toml".into()));
    }
}
