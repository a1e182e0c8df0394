//! Everyone in view, followed from frame to frame by box overlap, so that each person's joint
//! angles form one signal. Which of them is the athlete is decided in [`crate::set`] by who
//! exercises (reps of the driving joint, in place); this module supplies the identities, the
//! zone that limits who may count, and whether a person stayed in place over a span of time (or
//! drifted and came back, as a deep squat's box does).
//!
//! All times are seconds on one camera's timeline, so the rules hold at 3 poses a second as at 60.

use std::collections::VecDeque;

use pump_types::{BBox, Pose};

/// Overlap with a person's last box needed to be that person in a new frame.
const MIN_TRACK_IOU: f32 = 0.3;
/// Seconds a person may go unseen (an occlusion, a missed detection, a pause of inference, a
/// step out of view to grab a plate) and still be the same person when they reappear where they
/// were: longer than the pauses inside a set, far shorter than the rest between sets.
pub const KEEP_LOST_SECONDS: f64 = 8.0;
/// Seconds of box positions kept per person: longer than any rep.
const POSITION_HISTORY_SECONDS: f64 = 20.0;
/// A rep is done in place: the feet and the body's centre line move less than this share of the
/// box width over it. Walking moves them a width or more a second (a slow shuffle half a width); a
/// squat, a curl or a press moves the box's centre by a tenth of it.
const MAX_DRIFT_OF_WIDTH: f32 = 0.35;

/// The part of the frame where the athlete may be, in fractions of its width and height (as
/// Frigate's zones limit who triggers an event). A person counts when the middle of the bottom of
/// their box (their feet) lies inside.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zone {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl Zone {
    /// Whether a person with this box in a `width`×`height` frame stands in the zone.
    pub fn contains(&self, b: &BBox, width: f32, height: f32) -> bool {
        let x = (b.x1 + b.x2) / 2.0 / width.max(1.0);
        let y = b.y2 / height.max(1.0);
        (self.x1..=self.x2).contains(&x) && (self.y1..=self.y2).contains(&y)
    }
}

impl std::str::FromStr for Zone {
    type Err = String;

    /// `x1,y1,x2,y2` in fractions of the frame, e.g. `0.25,0,0.75,1` for the middle half.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v: Vec<f32> = s
            .split(',')
            .map(|p| p.trim().parse::<f32>().map_err(|_| format!("zone `{s}`: `{p}` is not a number")))
            .collect::<Result<_, _>>()?;
        let [x1, y1, x2, y2] = v[..] else {
            return Err(format!("zone `{s}`: expected x1,y1,x2,y2 (fractions of the frame, 0..1)"));
        };
        if !v.iter().all(|c| (0.0..=1.0).contains(c)) || x1 >= x2 || y1 >= y2 {
            return Err(format!("zone `{s}`: need 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 (fractions of the frame)"));
        }
        Ok(Self { x1, y1, x2, y2 })
    }
}

/// A person's identity on one camera, stable while they stay in view.
pub type PersonId = u64;

#[derive(Debug, Clone)]
struct Track {
    id: PersonId,
    bbox: BBox,
    last_seen: f64,
    /// Where the person was lately.
    positions: VecDeque<Position>,
}

/// Where a person stood at one moment.
#[derive(Debug, Clone, Copy)]
struct Position {
    t: f64,
    /// The box's centre x and bottom y.
    centre: f32,
    bottom: f32,
    width: f32,
    /// The ankles' middle, when both are seen: a sit-up or a push-up reshapes the box while the
    /// feet stay put.
    feet: Option<(f32, f32)>,
}

/// The people of one camera.
#[derive(Debug, Clone, Default)]
pub struct People {
    tracks: Vec<Track>,
    next_id: PersonId,
}

impl People {
    /// Matches the poses of the frame at `t` to the people seen before (greatest overlap first,
    /// each person at most once); the others are new people. Returns each pose's person, in order.
    ///
    /// People seen in the previous frame are matched first, and only then those lost for a
    /// while: a stale box (a duplicate detection, someone who left) that happens to overlap the
    /// athlete's new posture better than their own last box must not take the athlete's identity.
    pub fn update(&mut self, t: f64, poses: &[Pose]) -> Vec<PersonId> {
        self.tracks.retain(|tr| t - tr.last_seen <= KEEP_LOST_SECONDS);
        let previous = self.tracks.iter().map(|tr| tr.last_seen).fold(f64::MIN, f64::max);
        let mut ids: Vec<Option<PersonId>> = vec![None; poses.len()];
        let mut taken = vec![false; self.tracks.len()];
        for recent in [true, false] {
            let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
            for (pi, p) in poses.iter().enumerate().filter(|(pi, _)| ids[*pi].is_none()) {
                for (ti, tr) in self.tracks.iter().enumerate() {
                    if taken[ti] || (tr.last_seen >= previous) != recent {
                        continue;
                    }
                    let iou = p.bbox.iou(&tr.bbox);
                    if iou >= MIN_TRACK_IOU {
                        pairs.push((iou, pi, ti));
                    }
                }
            }
            pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (_, pi, ti) in pairs {
                if ids[pi].is_none() && !taken[ti] {
                    ids[pi] = Some(self.tracks[ti].id);
                    taken[ti] = true;
                    self.tracks[ti].see(t, &poses[pi]);
                }
            }
        }
        ids.into_iter()
            .zip(poses)
            .map(|(id, p)| {
                id.unwrap_or_else(|| {
                    let id = self.next_id;
                    self.next_id += 1;
                    let mut tr = Track { id, bbox: p.bbox, last_seen: t, positions: VecDeque::new() };
                    tr.see(t, p);
                    self.tracks.push(tr);
                    id
                })
            })
            .collect()
    }

    /// Where a followed person was last seen.
    pub fn bbox_of(&self, id: PersonId) -> Option<BBox> {
        self.tracks.iter().find(|t| t.id == id).map(|t| t.bbox)
    }

    /// Whether a person is still followed (seen within [`KEEP_LOST_SECONDS`]).
    pub fn is_followed(&self, id: PersonId) -> bool {
        self.tracks.iter().any(|t| t.id == id)
    }

    /// Where a followed person was from `from` to `to`, oldest first; None for someone unknown.
    fn positions(&self, id: PersonId, from: f64, to: f64) -> Option<Vec<&Position>> {
        let tr = self.tracks.iter().find(|t| t.id == id)?;
        Some(tr.positions.iter().filter(|p| p.t >= from && p.t <= to).collect())
    }

    /// Whether the person stayed in place from `from` to `to` (an exercise, not a walk): their
    /// box's feet and centre line, or their ankles, drifted less than a third of their box width. A
    /// walker moves both; a sit-up swings the box from lying to sitting over still feet. The box's
    /// feet may also leave where they were for a moment: at a fast squat's bottom the model loses
    /// one body's feet (its box ended 60 px higher for a few frames, while the ankles were
    /// unsure), where a walker towards the camera spends the rep on the way. A person unknown
    /// here or seen once in that span is taken as in place.
    pub fn stayed_in_place(&self, id: PersonId, from: f64, to: f64) -> bool {
        let Some(span) = self.positions(id, from, to) else { return true };
        if span.len() < 2 {
            return true;
        }
        let limit = drift_limit(&span);
        let still = |points: &[(f32, f32)]| {
            let range = |f: fn(&(f32, f32)) -> f32| {
                let (lo, hi) = points.iter().map(f).fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
                hi - lo
            };
            range(|p| p.0) <= limit && range(|p| p.1) <= limit
        };
        let boxes: Vec<(f32, f32)> = span.iter().map(|p| (p.centre, p.bottom)).collect();
        let feet: Vec<(f32, f32)> = span.iter().filter_map(|p| p.feet).collect();
        // Mostly where they started: the median of the box's feet over the span, not its last
        // one (a rep ends as the hips come back up, a frame or two before the box finds the feet).
        let back_where_they_were = |points: &[(f32, f32)]| {
            let centre_still = still(&points.iter().map(|p| (p.0, 0.0)).collect::<Vec<_>>());
            let mut bottoms: Vec<f32> = points.iter().map(|p| p.1).collect();
            bottoms.sort_by(f32::total_cmp);
            let moved = match (points.first(), bottoms.get(bottoms.len() / 2)) {
                (Some(first), Some(median)) => (median - first.1).abs(),
                _ => 0.0,
            };
            centre_still && moved <= limit / 2.0
        };
        still(&boxes) || (feet.len() * 2 >= span.len() && still(&feet)) || back_where_they_were(&boxes)
    }

    /// Whether the person, having drifted from `from` on (see [`People::stayed_in_place`]), is
    /// back by `to` where they were at `from` and never went far: a deep squat's box shifts on
    /// the way down and comes back up, where a walker ends elsewhere and a pacer goes a width or
    /// more out before turning. Where they were at either end is the median of the positions of
    /// its [`END_SECONDS`], so a flicker there decides nothing.
    pub fn came_back(&self, id: PersonId, from: f64, to: f64) -> bool {
        let Some(span) = self.positions(id, from, to) else { return false };
        let (Some(first), Some(last)) = (span.first(), span.last()) else { return false };
        if span.len() < 3 || last.t - first.t < 2.0 * END_SECONDS {
            return false;
        }
        let median = |mut v: Vec<f32>| {
            v.sort_by(f32::total_cmp);
            v[v.len() / 2]
        };
        let limit = drift_limit(&span);
        let at = |near: f64| {
            let end: Vec<&&Position> = span.iter().filter(|p| (p.t - near).abs() <= END_SECONDS).collect();
            (median(end.iter().map(|p| p.centre).collect()), median(end.iter().map(|p| p.bottom).collect()))
        };
        let (start, back) = (at(first.t), at(last.t));
        let furthest =
            span.iter().map(|p| (p.centre - start.0).abs().max((p.bottom - start.1).abs())).fold(0.0, f32::max);
        (back.0 - start.0).abs() <= limit && (back.1 - start.1).abs() <= limit && furthest <= MAX_EXCURSION * limit
    }
}

/// How far a person may drift over a span and still be in place: [`MAX_DRIFT_OF_WIDTH`] of their
/// median box width over it.
fn drift_limit(span: &[&Position]) -> f32 {
    let mut widths: Vec<f32> = span.iter().map(|p| p.width).collect();
    widths.sort_by(f32::total_cmp);
    MAX_DRIFT_OF_WIDTH * widths.get(widths.len() / 2).copied().unwrap_or(0.0).max(1.0)
}

/// Seconds at each end of a span whose positions say where a person was then.
const END_SECONDS: f64 = 0.3;
/// How much further than [`MAX_DRIFT_OF_WIDTH`] a person who came back may have gone: a deep
/// squat's box shifts by up to half a width (the trunk leans over the frame's edge), a pacer
/// turns a width or more out.
const MAX_EXCURSION: f32 = 2.0;

impl Track {
    fn see(&mut self, t: f64, p: &Pose) {
        let b = p.bbox;
        self.bbox = b;
        self.last_seen = t;
        let (l, r) = (p.keypoints[15], p.keypoints[16]);
        let feet = (l.confidence >= 0.5 && r.confidence >= 0.5).then(|| ((l.x + r.x) / 2.0, (l.y + r.y) / 2.0));
        self.positions.push_back(Position { t, centre: (b.x1 + b.x2) / 2.0, bottom: b.y2, width: b.x2 - b.x1, feet });
        while self.positions.front().is_some_and(|p| t - p.t > POSITION_HISTORY_SECONDS) {
            self.positions.pop_front();
        }
    }
}

/// A second pose of one body: its box lies at least this much inside a surer pose's box…
const DUPLICATE_BOX_INSIDE: f32 = 0.8;
/// …and its confident keypoints lie, at the median, within this share of that box's diagonal.
const DUPLICATE_KEYPOINT_SHARE: f32 = 0.1;

/// The poses that are distinct people, surest first kept. The model can see one body twice (a
/// lying athlete as one box with the knees and one without): two tracks of one body would split
/// its reps between them, each counting some. Someone standing beside or behind another has a
/// skeleton of their own, far from the other's, and stays.
pub fn distinct(poses: &[Pose]) -> Vec<Pose> {
    let mut order: Vec<usize> = (0..poses.len()).collect();
    order.sort_by(|a, b| poses[*b].score.total_cmp(&poses[*a].score));
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if !kept.iter().any(|&k| same_body(&poses[k], &poses[i])) {
            kept.push(i);
        }
    }
    kept.sort_unstable();
    kept.into_iter().map(|i| poses[i].clone()).collect()
}

/// Whether `other` is a second pose of `sure`'s body.
fn same_body(sure: &Pose, other: &Pose) -> bool {
    let (a, b) = (&sure.bbox, &other.bbox);
    let iw = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let ih = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let smaller = a.area().min(b.area());
    if smaller <= 0.0 || iw * ih < DUPLICATE_BOX_INSIDE * smaller {
        return false;
    }
    let mut d: Vec<f32> = sure
        .keypoints
        .iter()
        .zip(&other.keypoints)
        .filter(|(p, q)| p.confidence >= 0.3 && q.confidence >= 0.3)
        .map(|(p, q)| ((p.x - q.x).powi(2) + (p.y - q.y).powi(2)).sqrt())
        .collect();
    if d.len() < 4 {
        return false;
    }
    d.sort_by(f32::total_cmp);
    let diagonal = ((a.x2 - a.x1).powi(2) + (a.y2 - a.y1).powi(2)).sqrt().max((b.x2 - b.x1).hypot(b.y2 - b.y1));
    d[d.len() / 2] < DUPLICATE_KEYPOINT_SHARE * diagonal
}

/// How athlete-like a person looks when several exercise at once: area share (square-rooted, so
/// size does not swamp the rest) × closeness to the frame centre × score.
pub fn presence(p: &Pose, width: f32, height: f32) -> f32 {
    let b = &p.bbox;
    let area = (b.area() / (width * height).max(1.0)).clamp(0.0, 1.0);
    let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    let (dx, dy) = ((cx - width / 2.0) / (width / 2.0).max(1.0), (cy - height / 2.0) / (height / 2.0).max(1.0));
    let centrality = (1.0 - (dx * dx + dy * dy).sqrt() / std::f32::consts::SQRT_2).clamp(0.0, 1.0);
    let v = area.sqrt() * (0.25 + 0.75 * centrality) * p.score;
    // A pose off the bus with non-finite numbers weighs nothing, rather than everything.
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pump_types::Keypoint;

    fn person(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Pose {
        Pose { bbox: BBox { x1, y1, x2, y2 }, score, keypoints: [Keypoint::default(); 17] }
    }

    #[test]
    fn presence_prefers_the_large_central_confident_person() {
        let (w, h) = (800.0, 600.0);
        let small_corner = presence(&person(0.0, 0.0, 40.0, 80.0, 0.9), w, h);
        let big_centre = presence(&person(300.0, 100.0, 500.0, 500.0, 0.85), w, h);
        assert!(big_centre > 3.0 * small_corner);
        let poisoned = presence(&person(f32::NAN, 0.0, 1e30, f32::INFINITY, 0.9), w, h);
        assert_eq!(poisoned, 0.0);
    }

    #[test]
    fn people_keep_their_identity_and_a_crossing_walker_does_not_take_it() {
        let mut people = People::default();
        let athlete = person(300.0, 100.0, 500.0, 500.0, 0.8);
        let a = people.update(0.0, std::slice::from_ref(&athlete))[0];
        let mut walker_ids = std::collections::BTreeSet::new();
        for step in 1..20 {
            let x = 100.0 + step as f32 * 30.0;
            let walker = person(x, 50.0, x + 260.0, 580.0, 0.95);
            let ids = people.update(step as f64 * 0.25, &[walker, athlete.clone()]);
            assert_eq!(ids[1], a, "step {step}");
            walker_ids.insert(ids[0]);
        }
        assert!(!walker_ids.contains(&a));
    }

    #[test]
    fn a_stale_box_does_not_take_the_identity_of_someone_seen_a_frame_ago() {
        let mut people = People::default();
        let standing = person(100.0, 100.0, 200.0, 400.0, 0.9);
        let squatting = person(90.0, 220.0, 215.0, 400.0, 0.9);
        let a = people.update(0.0, std::slice::from_ref(&standing))[0];
        // A duplicate detection of the standing athlete, once.
        let dup = people.update(0.25, &[standing.clone(), person(102.0, 98.0, 198.0, 402.0, 0.5)])[1];
        assert_ne!(dup, a);
        assert_eq!(people.update(0.5, std::slice::from_ref(&squatting))[0], a);
        // Standing again: the duplicate's stale box overlaps better than the squat box, but the
        // athlete was seen a frame ago.
        assert_eq!(people.update(0.75, std::slice::from_ref(&standing))[0], a);
    }

    #[test]
    fn a_short_occlusion_keeps_the_person_a_long_one_does_not() {
        let mut people = People::default();
        let p = person(100.0, 100.0, 200.0, 400.0, 0.9);
        let a = people.update(0.0, std::slice::from_ref(&p))[0];
        people.update(1.0, &[]);
        assert_eq!(people.update(7.5, std::slice::from_ref(&p))[0], a, "7.5 s unseen: same person");
        people.update(8.0, &[]);
        assert_ne!(people.update(16.0, std::slice::from_ref(&p))[0], a, "8.5 s unseen: someone new");
    }

    #[test]
    fn in_place_or_walking() {
        let mut people = People::default();
        // Squatting: the box top goes down and up, the feet stay.
        let mut id = 0;
        for i in 0..40 {
            let t = i as f64 * 0.1;
            let top = 100.0 + 80.0 * (t as f32).sin().abs();
            id = people.update(t, &[person(100.0, top, 200.0, 400.0, 0.9)])[0];
        }
        assert!(people.stayed_in_place(id, 0.0, 4.0));
        // Walking at 1.5 widths a second.
        let mut people = People::default();
        for i in 0..40 {
            let t = i as f64 * 0.1;
            let x = 100.0 + 150.0 * t as f32;
            id = people.update(t, &[person(x, 100.0, x + 100.0, 400.0, 0.9)])[0];
        }
        assert!(!people.stayed_in_place(id, 2.0, 3.0));
        // Walking towards the camera: the centre line stays, the feet come down the frame.
        let mut people = People::default();
        for i in 0..40 {
            let t = i as f64 * 0.1;
            let bottom = 300.0 + 60.0 * t as f32;
            id = people.update(t, &[person(100.0, bottom - 300.0, 200.0, bottom, 0.9)])[0];
        }
        assert!(!people.stayed_in_place(id, 1.0, 2.5));
    }

    #[test]
    fn a_box_that_loses_the_feet_at_a_squats_bottom_and_finds_them_again_is_in_place() {
        // A 1.2-s squat: for the frames at the bottom the model's box ends 60 px higher (the feet
        // lost, the ankles unsure), then where it was.
        let mut people = People::default();
        let mut id = 0;
        for i in 0..13 {
            let t = i as f64 * 0.1;
            let bottom = if (0.4..0.8).contains(&t) { 340.0 } else { 400.0 };
            id = people.update(t, &[person(100.0, 100.0 + 100.0 * (t as f32 * 2.6).sin(), 245.0, bottom, 0.9)])[0];
        }
        assert!(people.stayed_in_place(id, 0.0, 1.2));
    }

    #[test]
    fn a_squat_whose_box_shifts_on_the_way_down_came_back_a_walker_and_a_pacer_did_not() {
        // 2.5-s squats at 15 poses/s: the box shifts right by up to 0.45 of its width at the
        // bottom (the trunk leaning over the frame's edge) and back.
        let track = |x_at: &dyn Fn(f64) -> f32| {
            let mut people = People::default();
            for i in 0..45 {
                let t = i as f64 / 15.0;
                let x = x_at(t);
                people.update(t, &[person(x, 100.0, x + 120.0, 400.0, 0.9)]);
            }
            people
        };
        let squat = track(&|t| 100.0 + 54.0 * (t as f32 / 2.5 * std::f32::consts::PI).sin().max(0.0));
        assert!(!squat.stayed_in_place(0, 0.0, 1.5), "over its way down it drifted");
        assert!(squat.came_back(0, 0.0, 2.8));
        assert!(!squat.came_back(0, 0.0, 1.5), "not back yet");
        // A slow walker ends elsewhere; a pacer comes back from a width away.
        let walker = track(&|t| 100.0 + 40.0 * t as f32);
        assert!(!walker.came_back(0, 0.0, 2.8));
        let pacer = track(&|t| 100.0 + 130.0 * (t as f32 / 2.8 * std::f32::consts::PI).sin());
        assert!(!pacer.came_back(0, 0.0, 2.8));
        assert!(!People::default().came_back(7, 0.0, 2.8), "someone unknown did not");
    }

    #[test]
    fn zones_parse_and_hold_feet() {
        let z: Zone = "0.25,0,0.75,1".parse().unwrap();
        assert!(z.contains(&BBox { x1: 300.0, y1: 0.0, x2: 500.0, y2: 500.0 }, 800.0, 600.0));
        assert!(!z.contains(&BBox { x1: 0.0, y1: 0.0, x2: 100.0, y2: 500.0 }, 800.0, 600.0));
        for bad in ["", "1,2,3", "0.5,0,0.2,1", "0,0,1,1.5", "a,b,c,d"] {
            assert!(bad.parse::<Zone>().is_err(), "{bad}");
        }
    }

    fn skeleton(x: f32, score: f32) -> Pose {
        let mut p = person(x, 100.0, x + 100.0, 400.0, score);
        for (i, k) in p.keypoints.iter_mut().enumerate() {
            *k = Keypoint { x: x + 10.0 + (i % 5) as f32 * 20.0, y: 110.0 + i as f32 * 17.0, confidence: 0.9 };
        }
        p
    }

    #[test]
    fn one_body_seen_twice_is_one_person_and_two_people_side_by_side_are_two() {
        let athlete = skeleton(100.0, 0.9);
        // The same skeleton a few pixels off, in a shorter box inside the athlete's.
        let mut twice = skeleton(103.0, 0.6);
        twice.bbox.y1 = 180.0;
        let kept = distinct(&[twice.clone(), athlete.clone()]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].score, 0.9, "the surer pose stays");
        // Someone beside them, or behind in an overlapping box with a skeleton of their own.
        let beside = skeleton(180.0, 0.8);
        assert_eq!(distinct(&[athlete.clone(), beside]).len(), 2);
        let mut behind = skeleton(100.0, 0.5);
        for k in behind.keypoints.iter_mut() {
            k.x += 60.0;
            k.y -= 40.0;
        }
        assert_eq!(distinct(&[athlete, behind]).len(), 2);
    }

    /// Four seconds of sit-ups: lying (a wide box) to sitting (a narrow one, its centre far off)
    /// and back, the ankles where `feet_x` puts them lying and sitting. Whether they stayed in place.
    fn sit_ups_in_place(feet_x: impl Fn(bool) -> f32) -> bool {
        let mut people = People::default();
        let mut id = None;
        for i in 0..40 {
            let sitting = i % 10 >= 3;
            let mut p =
                if sitting { person(140.0, 100.0, 300.0, 300.0, 0.9) } else { person(0.0, 200.0, 300.0, 300.0, 0.9) };
            let x = feet_x(sitting);
            p.keypoints[15] = Keypoint { x, y: 295.0, confidence: 0.9 };
            p.keypoints[16] = Keypoint { x: x + 2.0, y: 296.0, confidence: 0.9 };
            id = people.update(i as f64 / 10.0, &[p]).first().copied();
        }
        people.stayed_in_place(id.unwrap(), 0.0, 4.0)
    }

    #[test]
    fn a_sit_up_that_reshapes_the_box_over_still_feet_is_in_place() {
        assert!(sit_ups_in_place(|_| 290.0));
        // The same boxes with the feet moving as far: a walk.
        assert!(!sit_ups_in_place(|sitting| if sitting { 250.0 } else { 50.0 }));
    }
}
