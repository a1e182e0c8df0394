//! The tracker on synthetic people: sets, quiet times, sides, bystanders, zones, pose rates.
use super::*;
use pump_types::BBox;

/// A person squatting to `knee` degrees, as a body does: the ankles stay on the floor, the shins
/// and thighs fold, the hips and the shoulders above them go down by what the legs lost.
fn person(knee: f32) -> Pose {
    let mut k = [Keypoint { x: 0.0, y: 0.0, confidence: 0.9 }; NUM_KEYPOINTS];
    let a = ((180.0 - knee) / 2.0).to_radians();
    let hip_y = 400.0 - 200.0 * a.cos();
    for (hip, kn, ankle, x0) in [(11, 13, 15, 100.0f32), (12, 14, 16, 140.0)] {
        k[ankle] = Keypoint { x: x0, y: 400.0, confidence: 0.9 };
        k[kn] = Keypoint { x: x0 + 100.0 * a.sin(), y: 400.0 - 100.0 * a.cos(), confidence: 0.9 };
        k[hip] = Keypoint { x: x0, y: hip_y, confidence: 0.9 };
    }
    // Arms hang still beside the torso.
    for (shoulder, elbow, wrist, x0) in [(5, 7, 9, 100.0f32), (6, 8, 10, 140.0)] {
        k[shoulder] = Keypoint { x: x0, y: hip_y - 100.0, confidence: 0.9 };
        k[elbow] = Keypoint { x: x0, y: hip_y - 50.0, confidence: 0.9 };
        k[wrist] = Keypoint { x: x0, y: hip_y, confidence: 0.9 };
    }
    Pose { bbox: BBox { x1: 80.0, y1: hip_y - 150.0, x2: 260.0, y2: 410.0 }, score: 0.9, keypoints: k }
}

/// Knee angle at time t for `reps` 2-s squats starting at `from`.
fn knee_at(t: f64, from: f64, reps: usize) -> f32 {
    let x = t - from;
    if x < 0.0 || x > reps as f64 * 2.0 {
        175.0
    } else {
        175.0 - 85.0 * (0.5 - 0.5 * (x / 2.0 * std::f64::consts::TAU).cos()) as f32
    }
}

fn run(
    tracker: &mut SetTracker,
    from_frame: u64,
    frames: u64,
    fps: f64,
    knee: impl Fn(f64) -> f32,
) -> Vec<TrackerEvent> {
    let mut events = Vec::new();
    for i in from_frame..from_frame + frames {
        let t = i as f64 / fps;
        let p = [person(knee(t))];
        events.extend(tracker.push(FrameInput { t, frame: i, width: 400.0, height: 500.0, poses: &p }));
    }
    events
}

fn closed(events: &[TrackerEvent]) -> Vec<ClosedSet> {
    events.iter().filter_map(|e| if let TrackerEvent::Closed(s) = e { Some((**s).clone()) } else { None }).collect()
}

fn squat_cfg(quiet: f64) -> SetConfig {
    SetConfig { quiet, exercise: Some("squat".into()), ..Default::default() }
}

#[test]
fn set_closes_after_quiet_seconds_with_live_counts_on_the_way() {
    let mut t = SetTracker::new("cam", squat_cfg(5.0));
    // 4 reps from t=1, then standing until t=20.
    let events = run(&mut t, 0, 300, 15.0, |t| knee_at(t, 1.0, 4));
    let live: Vec<usize> =
        events.iter().filter_map(|e| if let TrackerEvent::Rep { reps, .. } = e { Some(*reps) } else { None }).collect();
    assert_eq!(live, vec![1, 2, 3, 4]);
    let sets = closed(&events);
    assert_eq!(sets.len(), 1);
    let s = &sets[0];
    assert_eq!(s.reps, 4);
    assert_eq!(s.rep_times.len(), 4);
    assert!((s.start - 1.0).abs() < 0.3 && (s.end - 9.0).abs() < 0.5, "{} .. {}", s.start, s.end);
    assert!(!s.pending);
    assert!(s.features.len() > 100);
    assert_eq!(s.feature_times.len(), s.features.len());
    let first = s.rep_features(0).unwrap();
    assert!((20..=40).contains(&first.len()), "one 2-s rep at 15 fps: {}", first.len());
    assert!(s.rep_features(4).is_none());
    assert!(t.finish().is_none(), "nothing left open");
}

#[test]
fn two_sets_separated_by_rest_and_the_last_one_closes_at_end_of_stream() {
    let mut t = SetTracker::new("cam", squat_cfg(5.0));
    // 30 s: the second set's last rep is under 5 s before the end, so it is still open.
    let mut events = run(&mut t, 0, 450, 15.0, |t| knee_at(t, 1.0, 3).min(knee_at(t, 25.0, 2)));
    let sets = closed(&events);
    assert_eq!(sets.iter().map(|s| s.reps).collect::<Vec<_>>(), vec![3]);
    // The second set (2 reps) is still open when the stream ends.
    let last = t.finish().unwrap();
    assert_eq!(last.reps, 2);
    assert!(last.pending, "fewer than 3 reps is pending");
    assert_ne!(last.set_id, sets[0].set_id);
    events.clear();
}

#[test]
fn a_knee_the_camera_cannot_see_counts_on_the_other_side() {
    let mut t = SetTracker::new("cam", squat_cfg(5.0));
    let mut events = Vec::new();
    for i in 0..150u64 {
        let time = i as f64 / 15.0;
        let mut p = person(knee_at(time, 1.0, 4));
        // Baggy trousers: the left knee is a guess the model is unsure of, and it wanders.
        p.keypoints[13].confidence = 0.15;
        p.keypoints[13].x += ((i * 37) % 23) as f32;
        events.extend(t.push(FrameInput { t: time, frame: i, width: 400.0, height: 500.0, poses: &[p] }));
    }
    let s = closed(&events).pop().or_else(|| t.finish()).unwrap();
    assert_eq!(s.reps, 4);
    // The plot of the set is that side's knee too.
    assert!(s.trace.len() > 100 && s.trace.iter().all(|(time, deg)| (deg - knee_at(*time, 1.0, 4)).abs() < 0.5));
}

#[test]
fn a_bystander_walking_through_mid_set_does_not_change_the_count() {
    let mut t = SetTracker::new("cam", squat_cfg(5.0));
    let mut events = Vec::new();
    for i in 0..150u64 {
        let time = i as f64 / 15.0;
        let athlete = person(knee_at(time, 1.0, 4));
        // A bigger, more confident person walks across in front, knees bending as they go.
        let x = -300.0 + i as f32 * 8.0;
        let mut walker = person(if i % 10 < 5 { 120.0 } else { 175.0 });
        walker.bbox = BBox { x1: x, y1: 20.0, x2: x + 260.0, y2: 490.0 };
        // Their own skeleton, where their box is.
        for k in walker.keypoints.iter_mut() {
            k.x += x - 80.0;
        }
        walker.score = 0.97;
        let poses = if (40..110).contains(&i) { vec![walker, athlete] } else { vec![athlete] };
        events.extend(t.push(FrameInput { t: time, frame: i, width: 400.0, height: 500.0, poses: &poses }));
    }
    let s = closed(&events).pop().or_else(|| t.finish()).unwrap();
    assert_eq!(s.reps, 4);
}

#[test]
fn a_long_quiet_first_tick_closes_at_once() {
    let mut t = SetTracker::new("cam", squat_cfg(25.0));
    let events = run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 3));
    assert!(closed(&events).is_empty());
    // The camera was silent for a minute; its next frame closes the set before anything else.
    let p = [person(175.0)];
    let ev = t.push(FrameInput { t: 70.0, frame: 1050, width: 400.0, height: 500.0, poses: &p });
    assert_eq!(closed(&ev).len(), 1);
    assert_eq!(closed(&ev)[0].reps, 3);
}

#[test]
fn unknown_exercise_counts_on_the_busiest_joint_and_is_pending() {
    let mut t = SetTracker::new("cam", SetConfig { quiet: 5.0, ..Default::default() });
    run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4));
    let s = t.finish().unwrap();
    assert_eq!(s.reps, 4);
    assert_eq!((s.exercise.as_deref(), s.exercise_name()), (None, "unknown"));
    assert!(s.pending);
}

#[test]
fn prototypes_recognise_the_exercise() {
    let mut t = SetTracker::new("cam", SetConfig { quiet: 5.0, ..Default::default() });
    run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4));
    // One rep, as `pump prototype` records it.
    let reference = t.finish().unwrap().rep_features(0).unwrap();
    let squat = Prototype { exercise: "squat".into(), features: reference.clone(), max_distance: None, trunk: None };
    let still = Prototype {
        exercise: "plank".into(),
        features: FeatureMatrix { rows: vec![[175.0, 175.0, 180.0, 180.0, 180.0, 180.0]; 50] },
        max_distance: None,
        trunk: None,
    };
    let mut t = SetTracker::new("cam", SetConfig { quiet: 5.0, prototypes: vec![still, squat], ..Default::default() });
    run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4));
    let s = t.finish().unwrap();
    assert_eq!(s.exercise.as_deref(), Some("squat"));
    assert!(s.confidence > 0.75, "{}", s.confidence);
    assert_eq!(s.reps, 4);
    assert!(!s.pending);
}

#[test]
fn an_unsure_recognition_names_the_set_but_does_not_pick_the_joint_that_counts() {
    let mut t = SetTracker::new("cam", SetConfig { quiet: 5.0, ..Default::default() });
    run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4));
    let set = t.finish().unwrap();
    // A "curl" prototype that is really a squat rep with the elbows 40° off: the nearest
    // exercise, at about half its radius from each rep.
    let rep = set.rep_features(0).unwrap();
    let rows = rep.rows.iter().map(|r| [r[0], r[1], r[2] - 40.0, r[3] - 40.0, r[4], r[5]]).collect();
    let mut curl =
        Prototype { exercise: "curl".into(), features: FeatureMatrix { rows }, max_distance: None, trunk: None };
    // Measured as recognition measures it: each rep in its posture, the moving joints weighed.
    let distance = |i: usize| {
        let (rep, lean) = (set.rep_features(i).unwrap(), set.rep_leans[i]);
        pump_features::exercise_distances(&rep, lean, std::slice::from_ref(&curl), &DtwConfig::default())[0].1
    };
    let d: f32 = (0..4).map(distance).sum::<f32>() / 4.0;
    curl.max_distance = Some(2.0 * d);
    let mut t = SetTracker::new("cam", SetConfig { quiet: 5.0, prototypes: vec![curl], ..Default::default() });
    run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4));
    let s = t.finish().unwrap();
    assert_eq!(s.exercise.as_deref(), Some("curl"));
    assert!(s.confidence > 0.3 && s.confidence < 0.75 && s.pending, "{}", s.confidence);
    // Counted on the knee that moved, not on the still elbow a sure "curl" would count.
    assert_eq!(s.reps, 4);
}

/// Someone standing still at `x`, `scale` times the athlete's size.
fn bystander(x: f32, scale: f32) -> Pose {
    let mut p = person(178.0);
    for k in p.keypoints.iter_mut() {
        k.x = x + (k.x - 80.0) * scale;
        k.y *= scale;
    }
    p.bbox = BBox { x1: x, y1: 50.0 * scale, x2: x + 180.0 * scale, y2: 420.0 * scale };
    p.score = 0.95;
    p
}

/// The athlete at the left edge, squatting `reps` from t = 1; others given by `others`.
fn scene(t: &mut SetTracker, reps: usize, others: impl Fn(u64) -> Vec<Pose>) -> Vec<ClosedSet> {
    let mut events = Vec::new();
    for i in 0..(15 * (2 + 2 * reps as u64)) {
        let time = i as f64 / 15.0;
        let mut poses = others(i);
        poses.push(person(knee_at(time, 1.0, reps)));
        events.extend(t.push(FrameInput { t: time, frame: i, width: 900.0, height: 500.0, poses: &poses }));
    }
    let mut sets = closed(&events);
    sets.extend(t.finish());
    sets
}

#[test]
fn the_athlete_is_who_exercises_not_the_biggest_most_central_person() {
    // Two still bystanders, bigger and more central than the athlete, in view from the start.
    let mut t = SetTracker::new("cam", squat_cfg(5.0));
    let sets = scene(&mut t, 5, |_| vec![bystander(350.0, 1.15), bystander(600.0, 1.1)]);
    assert_eq!(sets.iter().map(|s| s.reps).collect::<Vec<_>>(), vec![5]);
}

#[test]
fn a_bystander_who_moves_a_little_does_not_take_the_set() {
    // A bystander in the middle bends their knees once, by 40°, just before the athlete's
    // first rep ends: their rep opens the set, the athlete's five make it theirs.
    let mut t = SetTracker::new("cam", squat_cfg(5.0));
    let sets = scene(&mut t, 5, |i| {
        let mut b = person(if (10..25).contains(&i) { 135.0 } else { 178.0 });
        for k in b.keypoints.iter_mut() {
            k.x += 400.0;
        }
        b.bbox = BBox { x1: 480.0, y1: 50.0, x2: 660.0, y2: 420.0 };
        vec![b]
    });
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].reps, 5);
}

#[test]
fn a_zone_limits_who_can_be_the_athlete() {
    // Another person squats 3 reps on the right; the zone is the left half.
    let other = |i: u64| {
        let mut b = person(knee_at(i as f64 / 15.0, 0.5, 3));
        for k in b.keypoints.iter_mut() {
            k.x += 550.0;
        }
        b.bbox = BBox { x1: 630.0, y1: 50.0, x2: 810.0, y2: 420.0 };
        vec![b]
    };
    let cfg = SetConfig { zone: Some("0,0,0.5,1".parse().unwrap()), ..squat_cfg(5.0) };
    let mut t = SetTracker::new("cam", cfg);
    let sets = scene(&mut t, 5, other);
    assert_eq!(sets.iter().map(|s| s.reps).collect::<Vec<_>>(), vec![5]);
    // Without the zone, the right-hand person's earlier reps open the set, and the athlete,
    // with more reps, owns it.
    let mut t = SetTracker::new("cam", squat_cfg(5.0));
    let sets = scene(&mut t, 5, other);
    assert_eq!(sets[0].reps, 5);
}

/// The last set of 4 squats from t = 1, seen at these (frame, time)s.
fn squats_at(frames: impl Iterator<Item = (u64, f64)>) -> ClosedSet {
    let mut t = SetTracker::new("cam", squat_cfg(5.0));
    let mut events = Vec::new();
    for (i, time) in frames {
        let p = [person(knee_at(time, 1.0, 4))];
        events.extend(t.push(FrameInput { t: time, frame: i, width: 400.0, height: 500.0, poses: &p }));
    }
    closed(&events).pop().or_else(|| t.finish()).unwrap()
}

#[test]
fn a_set_seen_at_a_low_pose_rate_is_pending() {
    // 2.5 poses a second: counted, but under the floor.
    let s = squats_at((0..30u64).map(|i| (i, i as f64 / 2.5)));
    assert_eq!(s.reps, 4);
    assert!((s.pose_rate - 2.5).abs() < 0.01, "{}", s.pose_rate);
    assert!(s.pending);
}

#[test]
fn a_pause_that_could_hide_a_rep_makes_the_set_pending() {
    // 15 poses a second, but nothing from 4.2 s to 5.2 s (a replica lost for a second).
    let s = squats_at((0..150u64).filter(|i| !(63..78).contains(i)).map(|i| (i, i as f64 / 15.0)));
    assert!(s.longest_gap > 1.0, "{}", s.longest_gap);
    assert!(s.pending);
}

#[test]
fn frames_from_the_past_are_ignored_and_segments_name_the_sets() {
    let mut t = SetTracker::for_segment("cam", "s42", squat_cfg(5.0));
    let mut events = run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4));
    // A replayed clip whose time starts again at 0 on the same tracker changes nothing.
    events.extend(run(&mut t, 0, 150, 15.0, |t| knee_at(t, 1.0, 4)));
    let mut sets = closed(&events);
    sets.extend(t.finish());
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].reps, 4);
    assert!(sets[0].set_id.starts_with("cam-s42-"), "{}", sets[0].set_id);
}

#[test]
fn the_trace_is_the_counted_knee_over_the_set_live_and_closed() {
    let mut t = SetTracker::new("cam", squat_cfg(5.0));
    let events = run(&mut t, 0, 300, 15.0, |t| knee_at(t, 1.0, 4));
    let live: Vec<&Vec<(f64, f32)>> = events
        .iter()
        .filter_map(|e| if let TrackerEvent::Rep { trace, .. } = e { Some(trace) } else { None })
        .collect();
    assert_eq!(live.len(), 4);
    // Each live count carries the set so far: longer at each rep, from the same start.
    for w in live.windows(2) {
        assert!(w[1].len() > w[0].len() && w[1][0] == w[0][0], "{} then {}", w[0].len(), w[1].len());
    }
    let s = &closed(&events)[0];
    let (first, last) = (s.trace[0], s.trace[s.trace.len() - 1]);
    assert!(
        (first.0 - s.start).abs() < 0.1 && (last.0 - s.end).abs() < 0.1,
        "{first:?} .. {last:?} for {} .. {}",
        s.start,
        s.end
    );
    // The knee's own angle at each point, in time order, reaching each rep's depth.
    for (time, deg) in &s.trace {
        assert!((deg - knee_at(*time, 1.0, 4)).abs() < 0.5, "{deg} at {time}");
    }
    assert!(s.trace.windows(2).all(|w| w[1].0 > w[0].0));
    let lowest = s.trace.iter().map(|p| p.1).fold(f32::MAX, f32::min);
    let deepest = s.rep_depths.iter().copied().fold(f32::MAX, f32::min);
    // A rep's depth is read on the counter's smoothed angle, the trace is the raw one.
    assert!((lowest - deepest).abs() < 3.0, "trace {lowest} vs deepest rep {deepest}");
    // Under the limit, every frame of the set's span is a point: about 7.5 s at 15 fps.
    let frames = ((s.end - s.start) * 15.0).round() as usize;
    assert!(s.trace.len().abs_diff(frames) <= 1 && s.trace.len() > 100, "{} for {frames}", s.trace.len());
}

#[test]
fn the_trace_of_a_long_set_is_thinned_and_still_ends_where_the_set_ends() {
    let mut t = SetTracker::new("cam", squat_cfg(5.0));
    // 20 reps at 30 poses a second: 1200 points in the set.
    let events = run(&mut t, 0, 1500, 30.0, |t| knee_at(t, 1.0, 20));
    let s = &closed(&events)[0];
    assert_eq!(s.reps, 20);
    assert!(s.trace.len() <= crate::events::MAX_TRACE_POINTS && s.trace.len() > 200, "{}", s.trace.len());
    assert!((s.trace[s.trace.len() - 1].0 - s.end).abs() < 0.05);
    assert!(thin((0..1000).map(|i| (i as f64, 0.0)).collect(), 240).len() <= 240);
    assert_eq!(thin((0..10).map(|i| (i as f64, 0.0)).collect(), 240).len(), 10);
}

#[test]
fn a_rep_far_shallower_than_the_sets_is_said_partial_not_counted() {
    // Four squats to 90°, then one to 131°: the hips drop a third as far, under 40 % of the
    // set's median swing — a bob, said, not a rep.
    let mut t = SetTracker::new("cam", squat_cfg(5.0));
    let knee = |time: f64| {
        if time < 9.0 {
            knee_at(time, 1.0, 4)
        } else {
            let x = ((time - 9.0) / 2.0).min(1.0) * std::f64::consts::TAU;
            175.0 - 44.0 * (0.5 - 0.5 * x.cos()) as f32
        }
    };
    // The bob keeps no set open: quiet is counted from the last rep that counts (8 s), so the
    // set closes at 13 s, with the bob in it.
    let mut sets = closed(&run(&mut t, 0, 200, 15.0, knee));
    sets.extend(t.finish());
    assert_eq!(sets.len(), 1, "{sets:?}");
    let s = &sets[0];
    assert_eq!(s.reps, 4, "{:?}", s.rep_times);
    assert_eq!(s.partial_reps.len(), 1, "{:?}", s.partial_reps);
    assert!((s.partial_reps[0] - 10.0).abs() < 0.3, "{:?}", s.partial_reps);
    assert!(matches!(s.signal.name(), "hip_height" | "shoulder_height"), "{:?}", s.signal);
}

/// [`person`], with the torso the model sees growing by `stretch` of its length at a squat's
/// bottom (the shoulders rise over the hips), as one side-on body's does.
fn stretching_person(knee: f32, stretch: f32) -> Pose {
    let mut p = person(knee);
    let depth = (175.0 - knee).max(0.0) / 85.0;
    for s in [5, 6] {
        p.keypoints[s].y -= 100.0 * stretch * depth;
    }
    p
}

#[test]
fn a_torso_seen_longer_at_the_bottom_neither_shrinks_the_reps_nor_drifts_the_rest() {
    // Five squats whose torso looks 40 % longer at the bottom, then 15 s standing still: five
    // reps, and the set ends when the last rep is back up, not when a size that shrinks back at
    // rest has stopped lifting the heights.
    for fps in [15.0, 4.0] {
        let mut t = SetTracker::new("cam", squat_cfg(8.0));
        let mut events = Vec::new();
        for i in 0..(27.0 * fps) as u64 {
            let time = i as f64 / fps;
            let p = [stretching_person(knee_at(time, 1.0, 5), 0.4)];
            events.extend(t.push(FrameInput { t: time, frame: i, width: 400.0, height: 500.0, poses: &p }));
        }
        events.extend(t.finish().map(|s| TrackerEvent::Closed(Box::new(s))));
        let sets = closed(&events);
        assert_eq!(sets.len(), 1, "{fps}/s: {sets:?}");
        assert_eq!(sets[0].reps, 5, "{fps}/s: {:?}", sets[0].rep_times);
        assert!(sets[0].end < 11.8, "{fps}/s: the set ends at {} (last rep up at 11)", sets[0].end);
    }
}

/// A rep of a signal: from `start` s down to its bottom a second later and back up to `end`,
/// swinging `swing`.
fn rep(start: f64, end: f64, swing: f32) -> Rep {
    Rep {
        start,
        bottom: (start + end) / 2.0,
        end,
        depth: 100.0 - swing,
        top: 100.0,
        recovery: 100.0,
        path: 2.0 * swing,
    }
}

#[test]
fn a_rep_far_quicker_than_the_sets_is_a_hitch_said_partial() {
    // Three-second reps, and a 0.6-s dip on the way up from the first: a hitch, not a rep.
    let reps = [rep(0.0, 3.0, 40.0), rep(3.0, 3.6, 30.0), rep(4.0, 7.0, 40.0), rep(7.5, 10.5, 40.0)];
    let (full, partial) = full_reps(&reps, false);
    assert_eq!(full.len(), 3);
    assert_eq!(partial, vec![reps[1]]);
    // Slowing down by half over a set is no hitch; nor is the last rep of a live set, on its way.
    let slowing = [rep(0.0, 1.2, 40.0), rep(1.5, 2.9, 40.0), rep(3.0, 5.0, 40.0), rep(5.5, 8.0, 40.0)];
    assert_eq!(full_reps(&slowing, false).0.len(), 4);
    let live = [rep(0.0, 3.0, 40.0), rep(3.2, 6.2, 40.0), rep(6.5, 6.9, 40.0)];
    assert_eq!(full_reps(&live, true).0.len(), 3);
}

#[test]
fn told_the_exercise_a_near_tie_in_travel_goes_to_the_count_the_body_agrees_on() {
    let mut family_reps = vec![Vec::new(); SIGNALS.len()];
    // The hips' three reps, and shoulders that lost one in flicker but travel as far in two.
    family_reps[Signal::HipHeight.index()] = (0..3).map(|i| rep(i as f64 * 2.0, i as f64 * 2.0 + 1.6, 30.0)).collect();
    family_reps[Signal::ShoulderHeight.index()] = vec![rep(0.0, 1.6, 46.0), rep(2.0, 5.6, 46.0)];
    // The knee and the hands of the same body count three.
    family_reps[Signal::KneeAngle.index()] = family_reps[Signal::HipHeight.index()].clone();
    family_reps[Signal::WristHeight.index()] =
        (0..3).map(|i| rep(i as f64 * 2.0, i as f64 * 2.0 + 1.6, 20.0)).collect();
    assert_eq!(counting_family(Some("squat"), &family_reps), Signal::HipHeight.index());
    // Far apart in travel, the longest counts whatever agrees; not told, travel alone decides.
    family_reps[Signal::ShoulderHeight.index()] = vec![rep(0.0, 1.6, 80.0), rep(2.0, 5.6, 80.0)];
    assert_eq!(counting_family(Some("squat"), &family_reps), Signal::ShoulderHeight.index());
    family_reps[Signal::ShoulderHeight.index()] = vec![rep(0.0, 1.6, 46.0), rep(2.0, 5.6, 46.0)];
    assert_eq!(counting_family(None, &family_reps), Signal::ShoulderHeight.index());
}

#[test]
fn told_the_exercise_a_body_split_evenly_between_two_counts_counts_the_larger() {
    // Five squats: the shoulders' keypoints unseen at one bottom (four), the hips, the knee and
    // the hands five; the hip angle and the elbows four as well. Three signals each way, the
    // shoulders travelling further: the five count, told; not told, travel decides as before.
    let mut family_reps = vec![Vec::new(); SIGNALS.len()];
    let reps = |n: usize, swing: f32| (0..n).map(|i| rep(i as f64 * 2.0, i as f64 * 2.0 + 1.6, swing)).collect();
    family_reps[Signal::HipHeight.index()] = reps(5, 28.0);
    family_reps[Signal::ShoulderHeight.index()] = reps(4, 45.0);
    family_reps[Signal::KneeAngle.index()] = reps(5, 80.0);
    family_reps[Signal::WristHeight.index()] = reps(5, 70.0);
    family_reps[Signal::HipAngle.index()] = reps(4, 50.0);
    family_reps[Signal::ElbowAngle.index()] = reps(4, 90.0);
    assert_eq!(counting_family(Some("squat"), &family_reps), Signal::HipHeight.index());
    assert_eq!(counting_family(None, &family_reps), Signal::WristHeight.index());
}

#[test]
fn not_told_a_hand_that_shakes_through_the_reps_is_not_the_dominant_motion() {
    let mut family_reps = vec![Vec::new(); SIGNALS.len()];
    // Quarter squats: hips and shoulders drop 15 px four times, cleanly.
    let trunk: Vec<Rep> = (0..4).map(|i| rep(i as f64 * 2.5, i as f64 * 2.5 + 2.0, 15.0)).collect();
    family_reps[Signal::HipHeight.index()] = trunk.clone();
    family_reps[Signal::ShoulderHeight.index()] = trunk;
    // A wrist keypoint that jumps about at the top: six "reps" of 30 px, each walking 110 px.
    let shaking = |i: usize| Rep { path: 110.0, ..rep(i as f64 * 1.6, i as f64 * 1.6 + 1.2, 30.0) };
    family_reps[Signal::WristHeight.index()] = (0..6).map(shaking).collect();
    assert_eq!(counting_family(None, &family_reps), Signal::HipHeight.index());
    // The same hands moving cleanly (a curl beside a swaying trunk) are the motion.
    family_reps[Signal::WristHeight.index()] =
        (0..6).map(|i| rep(i as f64 * 1.6, i as f64 * 1.6 + 1.2, 30.0)).collect();
    assert_eq!(counting_family(None, &family_reps), Signal::WristHeight.index());
}

/// The reps of each set a squat tracker (quiet 8 s) closes over `seconds` of `pose` at `fps`.
fn reps_of(fps: f64, seconds: f64, pose: impl Fn(f64) -> Pose) -> Vec<usize> {
    let mut t = SetTracker::new("cam", squat_cfg(8.0));
    let mut events = Vec::new();
    for i in 0..(seconds * fps) as u64 {
        let time = i as f64 / fps;
        let p = [pose(time)];
        events.extend(t.push(FrameInput { t: time, frame: i, width: 400.0, height: 500.0, poses: &p }));
    }
    events.extend(t.finish().map(|s| TrackerEvent::Closed(Box::new(s))));
    closed(&events).iter().map(|s| s.reps).collect()
}

/// [`person`] standing, the knees and ankles out of view, its hips dropped by `hips` and its
/// shoulders by `shoulders` pixels (its torso is 100 px).
fn trunk(hips: f32, shoulders: f32) -> Pose {
    let mut p = person(175.0);
    for k in [13, 14, 15, 16] {
        p.keypoints[k].confidence = 0.05;
    }
    for k in [11, 12] {
        p.keypoints[k].y += hips;
    }
    for k in [5, 6, 7, 8, 9, 10] {
        p.keypoints[k].y += shoulders;
    }
    p
}

#[test]
fn quarter_squats_count_when_the_hips_and_shoulders_both_drop_and_never_on_one_alone() {
    // Four 2.5-s quarter squats that drop the body a tenth of its torso, under the floor of one
    // signal alone (an eighth), at full and live pose rates: the hips and the shoulders seen going
    // down together count them; the hips alone (a keypoint that slides) count nothing.
    let dip = |t: f64| {
        let x = t - 1.0;
        if !(0.0..=10.0).contains(&x) {
            0.0
        } else {
            10.0 * (0.5 - 0.5 * (x / 2.5 * std::f64::consts::TAU).cos()) as f32
        }
    };
    // The shoulders also count them when the hips, seen falling with each rep, stay under their
    // own floor (half of it: 0.05 of the torso); a hip keypoint that shakes by a fiftieth with the
    // shoulders still confirms nothing.
    for fps in [15.0, 6.0, 4.0] {
        for (shoulders, reps) in [(1.0, vec![4]), (0.0, vec![]), (0.5, vec![4]), (0.2, vec![])] {
            let got = reps_of(fps, 16.0, |time| trunk(dip(time), shoulders * dip(time)));
            assert_eq!(got, reps, "{fps}/s, the shoulders dropping {shoulders} of the hips' drop");
        }
    }
}

#[test]
fn a_hip_keypoint_that_flickers_just_before_the_set_is_no_rep_when_the_shoulders_then_go_down() {
    // A body at the frame's edge: its hip keypoint jumps down a tenth of the torso for 0.65 s at
    // rest (the torso the model sees growing: the shoulders rise as the hips drop), back, and the
    // first of four quarter squats begins at once. The shoulders fall straight after the
    // flicker, with the first rep, not with it: four reps, not five (five at 6 poses a second
    // while a partner's fall into the next rep confirmed the flicker).
    let dip = |t: f64| {
        let x = t - 2.0;
        if !(0.0..=10.0).contains(&x) {
            0.0
        } else {
            10.0 * (0.5 - 0.5 * (x / 2.5 * std::f64::consts::TAU).cos()) as f32
        }
    };
    let flicker = |t: f64| if (1.3..1.95).contains(&t) { 10.0 } else { 0.0 };
    for fps in [15.0, 6.0, 4.0] {
        let got = reps_of(fps, 20.0, |time| trunk(dip(time) + flicker(time), dip(time) - 0.8 * flicker(time)));
        assert_eq!(got, vec![4], "{fps}/s");
    }
}

#[test]
fn slow_quarter_squats_whose_hips_the_model_hardly_sees_move_count_on_the_shoulders_and_the_knee() {
    // Four 3-s quarter squats (the knee 175° → 145°): the shoulders drop 9 px of a 100-px torso,
    // under one signal's floor; the hips, as the model sees them, stay put. The knee bending 30°
    // with each rep confirms the shoulders', though the knee's rep ends a moment after the
    // shoulders' (each shoulder rep waits for it).
    let knee = |t: f64| {
        let x = t - 1.0;
        if !(0.0..=12.0).contains(&x) {
            175.0
        } else {
            175.0 - 30.0 * (0.5 - 0.5 * (x / 3.0 * std::f64::consts::TAU).cos()) as f32
        }
    };
    let standing_hips = person(175.0).keypoints[11].y;
    for fps in [15.0, 6.0, 4.0] {
        let got = reps_of(fps, 22.0, |time| {
            let mut p = person(knee(time));
            for k in [11, 12] {
                p.keypoints[k].y = standing_hips;
            }
            p
        });
        assert_eq!(got, vec![4], "{fps}/s");
    }
}

#[test]
fn a_long_set_of_quarter_squats_keeps_the_reps_its_partner_confirmed_early() {
    // Twelve 2.5-s quarter squats (30 s, longer than a counter keeps its recent values): the
    // hips under their own floor, each confirmed by the shoulders falling with it by half theirs,
    // stay confirmed when the set closes, long after the first of them.
    let dip = |t: f64| {
        let x = t - 1.0;
        if !(0.0..=30.0).contains(&x) {
            0.0
        } else {
            10.0 * (0.5 - 0.5 * (x / 2.5 * std::f64::consts::TAU).cos()) as f32
        }
    };
    for fps in [15.0, 6.0, 4.0] {
        let got = reps_of(fps, 40.0, |time| trunk(dip(time), 0.5 * dip(time)));
        assert_eq!(got, vec![12], "{fps}/s");
    }
}

/// Squats every 2 s for `minutes` without a pause at 15 poses a second: the sets closed on the
/// way, the tracker's largest frame buffer and largest count of remembered reps.
fn endless_squats(cfg: SetConfig, minutes: u64) -> (Vec<ClosedSet>, usize, usize, SetTracker) {
    let mut t = SetTracker::new("cam", cfg);
    let (mut sets, mut most_frames, mut most_reps) = (Vec::new(), 0, 0);
    let reps = (minutes * 30) as usize;
    for i in 0..minutes * 60 * 15 {
        let time = i as f64 / 15.0;
        let p = [person(knee_at(time, 1.0, reps))];
        sets.extend(closed(&t.push(FrameInput { t: time, frame: i, width: 400.0, height: 500.0, poses: &p })));
        most_frames = most_frames.max(t.frames.len());
        let remembered = t.persons.values().flat_map(|p| p.families.iter().map(|f| f.counter.reps().len())).sum();
        most_reps = most_reps.max(remembered);
    }
    sets.extend(t.finish());
    (sets, most_frames, most_reps, t)
}

#[test]
fn a_set_that_never_ends_is_closed_at_its_most_reps_and_continued_with_no_rep_lost() {
    let (sets, most_frames, most_reps, _) = endless_squats(squat_cfg(25.0), 30);
    let counts: Vec<usize> = sets.iter().map(|s| s.reps).collect();
    // 900 reps from t = 1 to 1801; the last ends as the stream does.
    assert!((899..=900).contains(&counts.iter().sum::<usize>()), "{counts:?}");
    assert!(counts[..counts.len() - 1].iter().all(|&n| n == DEFAULT_MAX_SET_REPS), "{counts:?}");
    let (continued, last) = sets.split_at(sets.len() - 1);
    assert!(continued.iter().all(|s| s.continued) && !last[0].continued);
    assert!(sets.iter().all(|s| s.partial_reps.is_empty()), "a cut leaves no rep half in one set");
    // Each set begins where the one before it ended, and its reps are its own.
    for w in sets.windows(2) {
        assert!(w[1].start >= w[0].end && w[1].start - w[0].end < 2.0, "{} then {}", w[0].end, w[1].start);
        assert!(w[1].rep_times[0] > *w[0].rep_times.last().unwrap() + 1.5);
        assert_ne!(w[0].set_id, w[1].set_id);
    }
    // What the tracker holds is one set's, not the half hour's: 100 reps of 2 s at 15 fps and
    // the pre-roll, a few reps per signal.
    assert!(most_frames <= (200.0 + PRE_ROLL_SECONDS + 5.0) as usize * 15, "{most_frames} frames held");
    assert!(most_reps <= SIGNALS.len() * (DEFAULT_MAX_SET_REPS + 5), "{most_reps} reps remembered");
}

#[test]
fn a_set_that_never_ends_is_closed_at_its_longest() {
    let cfg = SetConfig { max_reps: usize::MAX, max_seconds: 120.0, ..squat_cfg(25.0) };
    let (sets, most_frames, _, _) = endless_squats(cfg, 10);
    let counts: Vec<usize> = sets.iter().map(|s| s.reps).collect();
    assert!((299..=300).contains(&counts.iter().sum::<usize>()), "{counts:?}");
    for s in &sets[..sets.len() - 1] {
        assert!(s.partial_reps.is_empty());
        assert!(s.continued && (119.0..124.0).contains(&(s.end - s.start)), "{} .. {}", s.start, s.end);
    }
    assert!(most_frames <= (124.0 + PRE_ROLL_SECONDS) as usize * 15, "{most_frames} frames held");
}

#[test]
fn a_counter_forgets_old_reps_but_the_amplitude_of_the_set_in_progress() {
    let mut c = crate::RepCounter::new(RepConfig::default());
    for i in 0..700 {
        let t = i as f64 / 15.0;
        c.push(t, Some(knee_at(t, 1.0, 20)));
    }
    assert_eq!(c.count(), 20);
    // Bottoms every 2 s from 2 s.
    assert_eq!(c.forget_before(21.0), 10, "the reps that turned before 21 s");
    assert!(c.reps()[0].bottom > 21.0);
    // Forgetting everything keeps the set's last five, whose swings say what counts next.
    assert_eq!(c.forget_before(f64::INFINITY), 5);
    assert_eq!(c.reps().len(), 5);
}

#[test]
fn settings_out_of_range_are_named_by_their_flag() {
    assert_eq!(SetConfig::default().check(), None);
    let bad = |f: fn(&mut SetConfig)| {
        let mut c = SetConfig::default();
        f(&mut c);
        c.check().unwrap_or_default()
    };
    assert!(bad(|c| c.quiet = 0.0).contains("--quiet-seconds"));
    assert!(bad(|c| c.quiet = f64::NAN).contains("--quiet-seconds"));
    assert!(bad(|c| c.reps.smoothing = -1.0).contains("--smoothing-seconds"));
    assert!(bad(|c| c.min_pose_rate = f64::INFINITY).contains("--min-pose-rate"));
    assert!(bad(|c| c.max_seconds = 0.0).contains("--max-set-seconds"));
    assert!(bad(|c| c.max_reps = 0).contains("--max-set-reps"));
    let zero_rate = SetConfig { min_pose_rate: 0.0, ..Default::default() };
    assert_eq!(zero_rate.check(), None, "0 turns the floor off");
}

#[test]
fn deep_squats_whose_box_shifts_on_the_way_down_count_once_the_athlete_is_back() {
    // Filmed tightly, a deep squat's body leans over the frame's edge: the box and the keypoints
    // shift right by 0.6 of the box's width at the bottom and come back as the athlete stands.
    // Over the way down alone that is a drift; over the rep and its return it is no walk.
    let shifted = |t: f64| {
        let knee = knee_at(t, 1.0, 5);
        let mut p = person(knee);
        let dx = 0.6 * 180.0 * (175.0 - knee) / 85.0;
        for k in p.keypoints.iter_mut() {
            k.x += dx;
        }
        (p.bbox.x1, p.bbox.x2) = (p.bbox.x1 + dx, p.bbox.x2 + dx);
        p
    };
    for fps in [15.0, 5.0, 4.0] {
        assert_eq!(reps_of(fps, 20.0, shifted), vec![5], "{fps} poses/s");
    }
    // The same drift kept, not returned (a walk while bending): no set.
    let walking = |t: f64| {
        let mut p = shifted(t);
        let dx = 40.0 * t as f32;
        for k in p.keypoints.iter_mut() {
            k.x += dx;
        }
        (p.bbox.x1, p.bbox.x2) = (p.bbox.x1 + dx, p.bbox.x2 + dx);
        p
    };
    assert_eq!(reps_of(15.0, 20.0, walking), Vec::<usize>::new());
}

#[test]
fn a_view_the_model_loses_at_each_bottom_is_no_rise_and_no_rep() {
    // Framed tightly, a deep squat's bottom loses the body for half a second: the model draws
    // another one, standing, every keypoint unsure (0.35, above the 0.3 a keypoint is read at).
    let lost_at_bottoms = |t: f64| {
        let at_bottom = (1..=5).any(|k| (t - (2.0 * k as f64)).abs() < 0.25);
        if at_bottom {
            let mut p = person(175.0);
            for k in p.keypoints.iter_mut() {
                k.confidence = 0.35;
            }
            p
        } else {
            person(knee_at(t, 1.0, 5))
        }
    };
    for fps in [15.0, 10.0, 6.0, 4.0] {
        assert_eq!(reps_of(fps, 20.0, lost_at_bottoms), vec![5], "{fps} poses/s");
    }
    // A person the model is always that unsure of is judged by that: their reps count.
    let unsure = |t: f64| {
        let mut p = person(knee_at(t, 1.0, 5));
        for k in p.keypoints.iter_mut() {
            k.confidence = 0.35;
        }
        p
    };
    assert_eq!(reps_of(15.0, 20.0, unsure), vec![5]);
}
