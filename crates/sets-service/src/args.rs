//! `pump-sets`' flags, and the service's configuration they make.

use std::path::PathBuf;

use clap::Parser;

use pump_bus::args::CommonArgs;
use pump_sets_service::Config;

#[derive(Debug, Parser)]
#[command(name = "pump-sets", version, about = "Counts reps and closes sets from pump.poses.<camera>")]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Seconds without a rep that close a set.
    #[arg(long, env = "PUMP_QUIET_SECONDS", default_value_t = 25.0)]
    quiet_seconds: f64,
    /// The exercise for every camera (squat, deadlift, bench_press, curl, …); otherwise
    /// recognised from prototypes.
    #[arg(long, env = "PUMP_EXERCISE", value_parser = pump_features::parse_exercise)]
    exercise: Option<String>,
    /// The exercise of one camera, CAMERA=NAME (repeat the flag; in the environment, comma-separated).
    #[arg(long = "camera-exercise", env = "PUMP_CAMERA_EXERCISE", value_delimiter = ',', value_parser = parse_camera_exercise)]
    camera_exercise: Vec<(String, String)>,
    /// Where a camera's athlete stands, CAMERA=x1,y1,x2,y2 in fractions of the frame (e.g.
    /// rack1=0.25,0,0.75,1): people elsewhere are never counted. Repeat the flag; in the
    /// environment, separate cameras with `;`.
    #[arg(long, env = "PUMP_ZONE", value_delimiter = ';', value_parser = parse_zone)]
    zone: Vec<(String, pump_sets::Zone)>,
    /// Poses a second (on the camera's timeline) under which counts are not trusted: a warning,
    /// `below_pose_rate_floor` in /healthz, and the camera's sets are pending.
    #[arg(long, env = "PUMP_MIN_POSE_RATE", default_value_t = pump_sets::DEFAULT_MIN_POSE_RATE)]
    min_pose_rate: f64,
    /// The longest a set lasts (seconds): a set going on past it closes at its next rep, said
    /// `continued`, and that rep opens the next set (memory and what a crash can lose stay one
    /// set's, however long the athlete goes on).
    #[arg(long, env = "PUMP_MAX_SET_SECONDS", default_value_t = pump_sets::DEFAULT_MAX_SET_SECONDS)]
    max_set_seconds: f64,
    /// The most reps a set holds: its next rep opens the next set, as with --max-set-seconds.
    #[arg(long, env = "PUMP_MAX_SET_REPS", default_value_t = pump_sets::DEFAULT_MAX_SET_REPS)]
    max_set_reps: usize,
    /// How long (ms of the camera's time) a pose waits for older ones that a slower inference
    /// replica has not delivered yet, so that the replicas' poses add up in frame order; live
    /// counts come that much later. A pose later than this is dropped and counted
    /// (`out_of_order`). 0: counted as they arrive.
    #[arg(long, env = "PUMP_REORDER_MS", default_value_t = 500)]
    reorder_ms: u64,
    /// The counting loop not turning for this many seconds: /healthz answers 503 ("stuck"), and
    /// a liveness probe restarts the service.
    #[arg(long, env = "PUMP_STUCK_AFTER_S", default_value_t = 300)]
    stuck_after_s: u64,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "PUMP_HTTP_ADDR", default_value = "127.0.0.1:9103")]
    pub http_addr: std::net::SocketAddr,
    /// Folder of prototype files (`{"exercise": …, "frames": [[6 angles], …], "max_distance": …,
    /// "trunk": …}`, from `pump prototype`) that recognise the exercise of a camera without one;
    /// they replace the shipped ones (squats, a lunge, a curl, push-ups, sit-ups).
    #[arg(long, env = "PUMP_PROTOTYPES")]
    prototypes: Option<PathBuf>,
}

fn parse_camera_exercise(s: &str) -> Result<(String, String), String> {
    let (camera, exercise) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected CAMERA=EXERCISE"))?;
    let camera = pump_bus::subject::CameraId::new(camera).map_err(|e| e.to_string())?;
    Ok((camera.to_string(), pump_features::parse_exercise(exercise)?))
}

fn parse_zone(s: &str) -> Result<(String, pump_sets::Zone), String> {
    let (camera, zone) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected CAMERA=x1,y1,x2,y2"))?;
    let camera = pump_bus::subject::CameraId::new(camera).map_err(|e| e.to_string())?;
    Ok((camera.to_string(), zone.parse()?))
}

impl Args {
    /// The service's configuration; what is wrong with the flags, in one line.
    pub fn config(&self) -> Result<Config, String> {
        let mut config = Config::new(self.common.bus("pump-sets")?);
        config.limits = self.common.stream_limits();
        config.sets.quiet = self.quiet_seconds;
        config.sets.exercise = self.exercise.clone();
        config.sets.min_pose_rate = self.min_pose_rate;
        config.sets.max_seconds = self.max_set_seconds;
        config.sets.max_reps = self.max_set_reps;
        if let Some(why) = config.sets.check() {
            return Err(why.to_string());
        }
        config.reorder = std::time::Duration::from_millis(self.reorder_ms);
        config.stuck_after = std::time::Duration::from_secs(self.stuck_after_s.max(1));
        for (camera, exercise) in self.camera_exercise.clone() {
            config.cameras.entry(camera).or_default().exercise = Some(exercise);
        }
        for (camera, zone) in self.zone.clone() {
            config.cameras.entry(camera).or_default().zone = Some(zone);
        }
        config.sets.prototypes = match &self.prototypes {
            Some(dir) => pump_features::load_prototypes(dir).map_err(|e| e.to_string())?,
            None => pump_features::builtin_prototypes(),
        };
        Ok(config)
    }
}
