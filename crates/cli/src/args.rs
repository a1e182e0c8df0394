//! Command-line flags. Every flag also reads a `PUMP_*` environment variable.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use pump_pose::args::EngineArgs;

#[derive(Debug, Parser)]
#[command(name = "pump", version, about = "Gym-camera pose pipeline: detect poses, count reps, close sets")]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print one JSON line of poses per frame of each image or video.
    Detect(DetectArgs),
    /// Print pose frames as they arrive on NATS (pump.poses.<camera>), one JSON line each.
    Listen(ListenArgs),
    /// Tell a web service of every set as it closes: an HTTP POST of the set as JSON, retried
    /// until it is taken, never lost (a durable consumer of the sets stream).
    Hook(Box<pump_hook::HookArgs>),
    /// Count reps and close sets in `pump detect` output; one JSON line per set.
    Sets(SetsArgs),
    /// Record a reference rep (the first rep of a clip) as a prototype file for `--prototypes`.
    Prototype(PrototypeArgs),
    /// List the cameras the gateway knows (gRPC).
    Cameras(ClientArgs),
    /// The newest poses of a camera, or follow them (gRPC).
    Poses(PosesArgs),
    /// Save the camera's newest frame as JPEG, optionally with the skeleton drawn on (gRPC).
    Snapshot(SnapshotArgs),
    /// Save a set's clip (pump-gateway --clips): Motion-JPEG AVI with the skeleton and rep count
    /// (gRPC).
    Clip(ClipArgs),
    /// Run everything on this machine from one config file: nats-server and every service;
    /// Ctrl-C stops them in order.
    Up(UpArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The config file every service reads (deploy/pump.toml shows every key).
    #[arg(env = "PUMP_CONFIG", default_value = "pump.toml")]
    pub config: PathBuf,
    /// Where NATS keeps its streams (sets survive a restart) and the services their logs.
    #[arg(long, env = "PUMP_DATA", default_value = "pump-data")]
    pub data: PathBuf,
    /// The nats-server to run (default: the one `just setup` put in .cache/nats-server under
    /// this folder, else nats-server on PATH); 2.10 or newer syncs each set to disk.
    #[arg(long, env = "PUMP_NATS_SERVER")]
    pub nats_server: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Draw the skeletons on the frame.
    #[arg(long, env = "PUMP_OVERLAY", value_parser = BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub overlay: bool,
    /// Where to write the JPEG.
    #[arg(short, long, default_value = "snapshot.jpg")]
    pub output: PathBuf,
    pub camera: String,
}

#[derive(Debug, Args)]
pub struct ClipArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Where to write it (default: SET_ID.avi).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The set's id (`pump sets CAMERA` lists them).
    pub set_id: String,
}

/// How to reach the gateway.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Gateway gRPC address (https://… for TLS).
    #[arg(long, env = "PUMP_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: String,
    /// File holding the gateway's token (or PUMP_AUTH_TOKEN, from the environment).
    #[arg(long, env = "PUMP_AUTH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    #[arg(long, env = "PUMP_AUTH_TOKEN", hide = true, hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) of a gateway serving TLS; implies https.
    #[arg(long, env = "PUMP_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// One JSON object per line instead of text.
    #[arg(long, env = "PUMP_JSON", value_parser = BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PosesArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Keep printing pose frames as they arrive.
    #[arg(long, env = "PUMP_FOLLOW", value_parser = BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub follow: bool,
    /// With --follow: wait for a camera nothing is known of yet (instead of "unknown camera").
    #[arg(long, env = "PUMP_WAIT", value_parser = BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub wait: bool,
    pub camera: String,
}

#[derive(Debug, Args)]
pub struct PrototypeArgs {
    /// The exercise the clip shows (its driving joint counts the rep).
    #[arg(long, env = "PUMP_EXERCISE", value_parser = pump_features::parse_exercise)]
    pub exercise: String,
    /// Frame rate for lines without `ts`.
    #[arg(long, env = "PUMP_FPS")]
    pub fps: Option<f64>,
    /// Where to write the prototype (default: standard output).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// `pump detect` output of the clip, or `-`.
    #[arg(value_name = "POSES.jsonl|-")]
    pub input: PathBuf,
}

/// `pump sets FILE|-` works offline on `pump detect` output; `pump sets [CAMERA]` asks the gateway.
#[derive(Debug, Args)]
pub struct SetsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// With a CAMERA: keep printing sets as they close.
    #[arg(long, env = "PUMP_FOLLOW", value_parser = BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub follow: bool,
    /// From the gateway: CSV, one row per rep (camera, set, exercise, start and end in UTC, rep,
    /// depth in degrees, duration in seconds, pending), for a spreadsheet.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Frame rate for lines without `ts` (also overrides `ts` when given).
    #[arg(long, env = "PUMP_FPS")]
    pub fps: Option<f64>,
    /// Seconds without a rep that close a set.
    #[arg(long, env = "PUMP_QUIET_SECONDS", default_value_t = 25.0)]
    pub quiet_seconds: f64,
    /// The exercise (squat, deadlift, bench_press, curl, …); otherwise recognised from prototypes.
    #[arg(long, env = "PUMP_EXERCISE", value_parser = pump_features::parse_exercise)]
    pub exercise: Option<String>,
    /// Only a person standing in this rectangle can be the athlete: x1,y1,x2,y2 in fractions of
    /// the frame (e.g. 0.25,0,0.75,1 for the middle half).
    #[arg(long, env = "PUMP_ZONE")]
    pub zone: Option<pump_sets::Zone>,
    /// Seconds of the running median on each signal (joint angle, body height) before reps are counted.
    #[arg(long, env = "PUMP_SMOOTHING_SECONDS", default_value_t = pump_sets::RepConfig::default().smoothing)]
    pub smoothing_seconds: f64,
    /// Poses a second under which a set is pending (its count not trusted).
    #[arg(long, env = "PUMP_MIN_POSE_RATE", default_value_t = pump_sets::DEFAULT_MIN_POSE_RATE)]
    pub min_pose_rate: f64,
    /// The longest a set lasts (seconds): a set going on past it closes at its next rep, said
    /// `continued`, and that rep opens the next set (memory and what a crash can lose stay one
    /// set's, however long the athlete goes on).
    #[arg(long, env = "PUMP_MAX_SET_SECONDS", default_value_t = pump_sets::DEFAULT_MAX_SET_SECONDS)]
    pub max_set_seconds: f64,
    /// The most reps a set holds: its next rep opens the next set, as with --max-set-seconds.
    #[arg(long, env = "PUMP_MAX_SET_REPS", default_value_t = pump_sets::DEFAULT_MAX_SET_REPS)]
    pub max_set_reps: usize,
    /// Folder of prototype files (one reference rep each, exercise name inside) that recognise
    /// the exercise without --exercise; they replace the shipped ones (squats, a lunge, a curl,
    /// push-ups, sit-ups).
    #[arg(long, env = "PUMP_PROTOTYPES")]
    pub prototypes: Option<PathBuf>,
    /// Camera name carried by the sets.
    #[arg(long, env = "PUMP_CAMERA", default_value = "offline")]
    pub camera: String,
    /// `pump detect` output or `-` (offline), or a camera name (from the gateway; none: all cameras).
    #[arg(value_name = "POSES.jsonl|-|CAMERA")]
    pub input: Option<PathBuf>,
}

impl SetsArgs {
    /// The offline input, when the argument is `-` or an existing file.
    pub fn offline_input(&self) -> Option<&std::path::Path> {
        self.input.as_deref().filter(|p| p.as_os_str() == "-" || p.is_file())
    }
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// NATS server URL; a cluster's URLs comma-separated (any of them, failing over to the others).
    #[arg(long, env = "PUMP_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    #[command(flatten)]
    pub nats_auth: pump_bus::auth::NatsAuthArgs,
    /// Stop once every named camera has sent its end of stream.
    #[arg(long, env = "PUMP_UNTIL_END", value_parser = BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub until_end: bool,
    /// Cameras to follow (default: all).
    #[arg(value_name = "CAMERA")]
    pub cameras: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter for stderr (tracing's EnvFilter syntax, e.g. `info,pump_pose=debug`).
    #[arg(long, global = true, env = "PUMP_LOG", default_value = "warn")]
    pub log: String,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub model: EngineArgs,
    /// Images or video files, processed in order.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    /// Engines running side by side on alternate frames (0 = auto: one single-threaded engine
    /// per core for videos, one engine on every core for a few images).
    #[arg(long, env = "PUMP_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// FFmpeg decoding threads for videos (0 = FFmpeg's choice: one per core). One leaves the
    /// cores to the engines, which need them more (+2 % fps on vtest.avi on 2 cores). Ignored
    /// when OPENCV_FFMPEG_CAPTURE_OPTIONS is set.
    #[arg(long, env = "PUMP_DECODE_THREADS", default_value_t = 1)]
    pub decode_threads: usize,
    /// Never draw the progress bar, even on a terminal.
    #[arg(long, env = "PUMP_NO_PROGRESS", value_parser = BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub no_progress: bool,
    /// Also write the SOURCE with every pose drawn on (skeleton, keypoints, box), as
    /// Ultralytics' save=True: a video (.mp4, or .avi as MJPEG) for a video, an image for an
    /// image. One SOURCE; for several, --save-dir.
    #[arg(long, value_name = "OUT", conflicts_with = "save_dir")]
    pub save: Option<PathBuf>,
    /// Write each SOURCE drawn on into this folder, under its own name (videos as .mp4).
    #[arg(long, value_name = "DIR")]
    pub save_dir: Option<PathBuf>,
}

pub fn init_tracing(log: &LogArgs) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(&log.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
