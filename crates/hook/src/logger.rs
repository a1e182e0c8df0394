//! The PUMP workout logger's contract, as pump-cv speaks it: which of PUMP's exercise names a
//! set is logged under, and the JSON of `POST /api/sets`. Pure: the hook ([`super`]) does the
//! talking.
//!
//! PUMP stores what it is sent. Go's JSON binding matches field names in any case, so a body in
//! pump's own shape (`reps`, no `Date`, no `Name`) would be stored as a nameless, dateless
//! *manual* entry, past the athlete's switch for camera sets: every field here is PUMP's, with
//! `Source: "cv"`.

use std::collections::BTreeMap;

use pump_proto::SetEvent;
use serde_json::{json, Value};

/// A name as PUMP's exercise list and pump's exercises are compared: case, spaces, `_` and `-`
/// do not matter ("Overhead Press" is pump's `overhead_press`).
pub fn normalised(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// PUMP's exercises (as `GET /api/exercises` lists them) and the operator's own mapping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    /// PUMP's names, by their normalised form.
    pump: BTreeMap<String, String>,
    /// pump's exercise (normalised) → the PUMP name the operator chose.
    overrides: BTreeMap<String, String>,
    /// The PUMP name a set of an exercise PUMP does not have is logged under (pending).
    fallback: Option<String>,
}

/// Which name a set is logged under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logged {
    /// One of PUMP's exercises.
    As(String),
    /// PUMP has no such exercise: logged under the fallback, pending, saying what pump saw.
    Fallback(String),
    /// PUMP has no such exercise and there is no fallback: the set waits (the reason).
    Held(String),
}

impl Names {
    /// `overrides` as `pump_exercise=PUMP name` pairs (`--exercise-name`); a malformed one is
    /// named in the error.
    pub fn new(overrides: &[String], fallback: Option<String>) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for o in overrides {
            let Some((ours, theirs)) = o.split_once('=').filter(|(a, b)| !a.trim().is_empty() && !b.trim().is_empty())
            else {
                return Err(format!("--exercise-name {o:?}: expected PUMP_EXERCISE=PUMP name (squat=Back Squat)"));
            };
            map.insert(normalised(ours), theirs.trim().to_string());
        }
        Ok(Self { pump: BTreeMap::new(), overrides: map, fallback: fallback.filter(|f| !f.trim().is_empty()) })
    }

    /// Takes PUMP's answer to `GET /api/exercises`: `[{"ID": 1, "Name": "Squat", …}, …]` (any
    /// case of `Name`, as Go would write it). How many names it found, or what was wrong.
    pub fn learn(&mut self, answer: &Value) -> Result<usize, String> {
        let list = answer.as_array().ok_or("expected a JSON list of exercises")?;
        let mut pump = BTreeMap::new();
        for e in list {
            let name = e
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("name")))
                .and_then(|(_, v)| v.as_str())
                .ok_or("an exercise without a Name")?;
            pump.insert(normalised(name), name.to_string());
        }
        self.pump = pump;
        Ok(self.pump.len())
    }

    /// The name a set of pump's `exercise` is logged under: the operator's mapping first, then
    /// PUMP's own name for it, then the fallback.
    pub fn resolve(&self, exercise: &str) -> Logged {
        let key = normalised(exercise);
        let wanted = self.overrides.get(&key).map(|n| normalised(n)).unwrap_or(key);
        if let Some(name) = self.pump.get(&wanted) {
            return Logged::As(name.clone());
        }
        let mapped = self.overrides.get(&normalised(exercise));
        let what = match mapped {
            Some(m) => format!("{exercise:?} (mapped to {m:?})"),
            None => format!("{exercise:?}"),
        };
        match self.fallback.as_ref().and_then(|f| self.pump.get(&normalised(f))) {
            Some(f) => Logged::Fallback(f.clone()),
            None => Logged::Held(format!(
                "PUMP has no exercise {what} (it has: {}){}",
                self.pump.values().cloned().collect::<Vec<_>>().join(", "),
                match &self.fallback {
                    Some(f) => format!(", nor the fallback {f:?}"),
                    None => String::new(),
                }
            )),
        }
    }
}

/// Why the athlete should confirm the set, in words, for PUMP's `Note`.
pub fn pending_reasons(set: &SetEvent, weight_known: bool) -> Vec<String> {
    let mut why = Vec::new();
    if (set.reps as usize) < pump_sets::PENDING_MIN_REPS {
        why.push(format!("only {} rep{}", set.reps, if set.reps == 1 { "" } else { "s" }));
    }
    if set.confidence < pump_sets::PENDING_MIN_CONFIDENCE {
        why.push(format!("unsure exercise ({:.0} % sure)", 100.0 * set.confidence));
    }
    if set.longest_gap_s > pump_sets::MAX_TRUSTED_GAP_SECONDS {
        why.push(format!("a {:.1}-s gap in the poses", set.longest_gap_s));
    }
    // The pose-rate floor is pump-sets' setting: a pending set none of the above explains met it.
    if set.pending && why.is_empty() {
        why.push(format!("low pose rate ({:.1} poses/s)", set.pose_rate));
    }
    if !weight_known {
        why.push("weight not measured".into());
    }
    why
}

/// The body of `POST /api/sets` for `set`, logged under `logged` (not [`Logged::Held`]) on the
/// gym's local `date` (YYYY-MM-DD), with `weight` (PUMP's decimal string) when it is known.
pub fn body(set: &SetEvent, logged: &Logged, date: &str, weight: Option<f64>) -> Value {
    let (name, mut notes) = match logged {
        Logged::As(n) => (n.clone(), Vec::new()),
        Logged::Fallback(n) => (n.clone(), vec![format!("pump saw {:?}, which PUMP does not have", set.exercise)]),
        Logged::Held(_) => (String::new(), Vec::new()),
    };
    let reasons = pending_reasons(set, weight.is_some());
    let pending = set.pending || !reasons.is_empty() || matches!(logged, Logged::Fallback(_));
    if !reasons.is_empty() {
        notes.push(format!("to confirm: {}", reasons.join(", ")));
    }
    json!({
        "Date": date,
        "Name": name,
        "Weight": format!("{:.1}", weight.unwrap_or(0.0)),
        "Reps": set.reps,
        "Source": "cv",
        "Confidence": (f64::from(set.confidence) * 1000.0).round() / 1000.0,
        "Pending": pending,
        "Note": notes.join("; "),
    })
}

/// The id PUMP gave a set it took: `201 {"id": N}` (any case of `id`).
pub fn created_id(answer: &Value) -> Option<u64> {
    let o = answer.as_object()?;
    o.iter().find(|(k, _)| k.eq_ignore_ascii_case("id")).and_then(|(_, v)| v.as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(overrides: &[&str], fallback: Option<&str>) -> Names {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let mut n = Names::new(&o, fallback.map(str::to_string)).unwrap();
        let list = json!([{"ID": 1, "Name": "Squat"}, {"ID": 2, "Name": "Overhead Press"},
                          {"id": 3, "name": "Bicep Curl"}, {"ID": 4, "Name": "Other"}]);
        assert_eq!(n.learn(&list), Ok(4));
        n
    }

    #[test]
    fn names_match_whatever_their_case_spaces_and_underscores() {
        let n = names(&[], None);
        assert_eq!(n.resolve("squat"), Logged::As("Squat".into()));
        assert_eq!(n.resolve("overhead_press"), Logged::As("Overhead Press".into()));
        assert_eq!(n.resolve("BICEP-CURL"), Logged::As("Bicep Curl".into()));
    }

    #[test]
    fn the_operators_mapping_comes_first_and_an_unknown_exercise_falls_back_or_waits() {
        let n = names(&["curl=Bicep Curl", "squat = overhead press"], Some("other"));
        assert_eq!(n.resolve("curl"), Logged::As("Bicep Curl".into()));
        assert_eq!(n.resolve("squat"), Logged::As("Overhead Press".into()));
        assert_eq!(n.resolve("situp"), Logged::Fallback("Other".into()));
        let held = names(&[], None).resolve("situp");
        assert!(matches!(&held, Logged::Held(w) if w.contains("\"situp\"") && w.contains("Bicep Curl")), "{held:?}");
        // A fallback PUMP does not have is no fallback.
        let held = names(&[], Some("Cardio")).resolve("situp");
        assert!(matches!(&held, Logged::Held(w) if w.contains("nor the fallback \"Cardio\"")), "{held:?}");
    }

    #[test]
    fn a_malformed_mapping_or_list_is_said() {
        assert!(Names::new(&["squat".into()], None).unwrap_err().contains("PUMP_EXERCISE=PUMP name"));
        assert!(Names::new(&["=Squat".into()], None).is_err());
        let mut n = Names::default();
        assert!(n.learn(&json!({"error": "x"})).is_err());
        assert!(n.learn(&json!([{"ID": 1}])).is_err());
    }

    fn set(reps: u32, confidence: f32, pending: bool) -> SetEvent {
        SetEvent {
            set_id: "rack1-1".into(),
            exercise: "squat".into(),
            reps,
            confidence,
            pending,
            pose_rate: 12.0,
            ..Default::default()
        }
    }

    #[test]
    fn the_body_is_pumps_contract_field_for_field() {
        let b = body(&set(5, 0.9312, false), &Logged::As("Squat".into()), "2026-12-04", Some(102.5));
        assert_eq!(
            b,
            json!({"Date": "2026-12-04", "Name": "Squat", "Weight": "102.5", "Reps": 5, "Source": "cv",
                   "Confidence": 0.931, "Pending": false, "Note": ""})
        );
    }

    #[test]
    fn a_set_to_confirm_is_pending_and_says_why() {
        let b = body(&set(2, 0.5, true), &Logged::As("Squat".into()), "2026-12-04", Some(60.0));
        assert_eq!(b["Pending"], true);
        assert_eq!(b["Note"], "to confirm: only 2 reps, unsure exercise (50 % sure)");
        let mut slow = set(5, 0.9, true);
        slow.pose_rate = 2.5;
        assert_eq!(
            body(&slow, &Logged::As("Squat".into()), "d", Some(60.0))["Note"],
            "to confirm: low pose rate (2.5 poses/s)"
        );
        let mut gap = set(5, 0.9, true);
        gap.longest_gap_s = 1.5;
        assert_eq!(
            body(&gap, &Logged::As("Squat".into()), "d", Some(60.0))["Note"],
            "to confirm: a 1.5-s gap in the poses"
        );
        // No weight: PUMP gets 0 and the athlete is asked.
        let b = body(&set(5, 0.9, false), &Logged::As("Squat".into()), "d", None);
        assert_eq!((b["Weight"].as_str(), b["Pending"].as_bool()), (Some("0.0"), Some(true)));
        assert_eq!(b["Note"], "to confirm: weight not measured");
        // An exercise PUMP lacks: under the fallback, pending, saying what pump saw.
        let mut situp = set(8, 0.9, false);
        situp.exercise = "situp".into();
        let b = body(&situp, &Logged::Fallback("Other".into()), "d", Some(0.0));
        assert_eq!((b["Name"].as_str(), b["Pending"].as_bool()), (Some("Other"), Some(true)));
        assert_eq!(b["Note"], "pump saw \"situp\", which PUMP does not have");
    }

    #[test]
    fn the_id_pump_gave_is_read_in_any_case() {
        assert_eq!(created_id(&json!({"id": 7})), Some(7));
        assert_eq!(created_id(&json!({"ID": 8})), Some(8));
        assert_eq!(created_id(&json!({"error": "x"})), None);
    }
}
