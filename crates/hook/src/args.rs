//! `pump hook`'s flags (each with its `PUMP_HOOK_*` variable; `[hook]` in the config file).

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct HookArgs {
    /// NATS server URL; a cluster's URLs comma-separated (any of them, failing over to the others).
    #[arg(long, env = "PUMP_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    #[command(flatten)]
    pub nats_auth: pump_bus::auth::NatsAuthArgs,
    /// Where to POST each set as pump's JSON (http:// or https://); or --pump.
    #[arg(long, env = "PUMP_HOOK_URL", conflicts_with = "pump")]
    pub url: Option<String>,
    /// The PUMP workout logger's address (http://HOST:PORT): each set is logged there in PUMP's
    /// own contract (POST /api/sets under one of PUMP's exercise names, then PATCH its ClipPath),
    /// exactly once across restarts.
    #[arg(long, env = "PUMP_HOOK_PUMP", value_name = "BASE_URL")]
    pub pump: Option<String>,
    /// pump's exercise to PUMP's name, where the two differ by more than case, spaces and `_`
    /// (`curl=Bicep Curl`); repeat it, or comma-separate them.
    #[arg(long = "exercise-name", env = "PUMP_HOOK_EXERCISE_NAME", value_delimiter = ',', requires = "pump")]
    pub exercise_names: Vec<String>,
    /// PUMP's exercise a set is logged under when PUMP has none of its name (pending, with a note
    /// of what pump saw); without it such a set waits until PUMP has the exercise or a mapping.
    #[arg(long, env = "PUMP_HOOK_FALLBACK_EXERCISE", requires = "pump")]
    pub fallback_exercise: Option<String>,
    /// The gym's time zone (IANA, e.g. Europe/Berlin): the Date a set is logged on. Default: this
    /// machine's (TZ, /etc/localtime), else UTC.
    #[arg(long, env = "PUMP_HOOK_TIME_ZONE")]
    pub time_zone: Option<String>,
    /// The weight on the bar logged with every set (PUMP's units), for a station whose load is
    /// known; without it a set is logged with weight 0 and pending ("weight not measured").
    #[arg(long, env = "PUMP_HOOK_WEIGHT")]
    pub weight: Option<f64>,
    /// The gateway's preview address as PUMP's users reach it (http://HOST:PORT): each set's
    /// ClipPath is its clip there (pump-gateway --clips). Without it clips are not linked.
    #[arg(long, env = "PUMP_HOOK_CLIP_BASE", value_name = "URL", requires = "pump")]
    pub clip_base: Option<String>,
    /// Seconds between readings of PUMP's exercise list (also read again when a set's exercise
    /// is not on it).
    #[arg(long, env = "PUMP_HOOK_EXERCISES_REFRESH_S", default_value_t = 300)]
    pub exercises_refresh_s: u64,
    /// Wake the gym's wall display through PUMP (`POST /api/wall/wake`) once someone has been in
    /// view of a camera for --wall-wake-after-s, and put it to sleep (`/api/wall/sleep`) after
    /// --wall-sleep-after-s with nobody. With --pump only.
    #[arg(long, env = "PUMP_HOOK_WALL", value_parser = clap::builder::BoolishValueParser::new(), default_value = "true")]
    pub wall: bool,
    /// Seconds someone must be in view before the wall wakes.
    #[arg(long, env = "PUMP_HOOK_WALL_WAKE_AFTER_S", default_value_t = 1.0)]
    pub wall_wake_after_s: f64,
    /// Seconds with nobody in view before the wall sleeps.
    #[arg(long, env = "PUMP_HOOK_WALL_SLEEP_AFTER_S", default_value_t = 600.0)]
    pub wall_sleep_after_s: f64,
    /// Replicas of the bucket that remembers which sets PUMP has (as `[streams] replicas`).
    #[arg(long, env = "PUMP_STREAMS_REPLICAS", default_value_t = 1)]
    pub streams_replicas: usize,
    /// This hook's name: where it is in the sets stream is kept under it, so a restart goes on
    /// from the first set it has not delivered. Two hooks with different names each get every set.
    #[arg(long, env = "PUMP_HOOK_NAME", default_value = "default")]
    pub name: String,
    /// A file holding an API key sent as X-Api-Key (the PUMP workout logger's POST /api/sets).
    #[arg(long, env = "PUMP_HOOK_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Longest wait between retries of a set the receiver did not take (it doubles from 1 s).
    #[arg(long, env = "PUMP_HOOK_MAX_BACKOFF_S", default_value_t = 30)]
    pub max_backoff_s: u64,
    /// Seconds a set the receiver keeps failing (5xx, no answer) is tried before it is set aside
    /// on `pump.hook.<NAME>.aside` (stream PUMP_HOOK) and the next set goes on.
    #[arg(long = "set-aside-after", env = "PUMP_HOOK_SET_ASIDE_AFTER_S", default_value_t = 600)]
    pub set_aside_after_s: u64,
}
