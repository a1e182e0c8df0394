//! Stream set-up against a real nats-server: idempotent, and the frames stream keeps only the
//! newest frame of each camera.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use pump_bus::streams::{ensure_streams, StreamLimits, FRAMES_STREAM, MAX_MESSAGE_BYTES, POSES_STREAM, SETS_STREAM};
use pump_tests::services::client;
use pump_tests::NatsServer;

#[tokio::test]
async fn second_set_up_changes_nothing_and_frames_keep_only_the_newest() {
    let nats = NatsServer::start();
    let c = client(&nats, "setup").await;
    let js = async_nats::jetstream::new(c.clone());
    let limits = StreamLimits { poses_max_age: Duration::from_secs(120), ..Default::default() };
    let t = Duration::from_secs(30);
    tokio::time::timeout(t, ensure_streams(&js, &limits)).await.unwrap().unwrap();
    let mut frames = js.get_stream(FRAMES_STREAM).await.unwrap();
    let mut poses = js.get_stream(POSES_STREAM).await.unwrap();
    let before = (frames.info().await.unwrap().config.clone(), poses.info().await.unwrap().config.clone());
    for i in 0..4u8 {
        c.publish("pump.frames.a", vec![i].into()).await.unwrap();
        c.publish("pump.frames.b", vec![i].into()).await.unwrap();
    }
    // The last of each is acknowledged, so the stream has stored everything before we count it.
    for camera in ["pump.frames.a", "pump.frames.b"] {
        let ack = js.publish(camera, vec![4u8].into()).await.unwrap();
        tokio::time::timeout(t, ack).await.unwrap().unwrap();
    }
    // A second service starting changes nothing, and loses no data.
    tokio::time::timeout(t, ensure_streams(&js, &limits)).await.unwrap().unwrap();
    let after_frames = frames.info().await.unwrap().clone();
    let after_poses = poses.info().await.unwrap().config.clone();
    assert_eq!(before.0, after_frames.config);
    assert_eq!(before.1, after_poses);
    assert_eq!(after_poses.max_age, Duration::from_secs(120));
    assert_eq!(after_frames.state.messages, 2, "one frame per camera");
    let last = frames.get_last_raw_message_by_subject("pump.frames.a").await.unwrap();
    assert_eq!(&last.payload[..], &[4]);
    // Every stream is capped: sets by size too (the oldest go), no message beyond its kind's size.
    let sets = js.get_stream(SETS_STREAM).await.unwrap().info().await.unwrap().config.clone();
    assert_eq!((sets.max_bytes, sets.max_message_size), (256 << 20, MAX_MESSAGE_BYTES));
    assert_eq!(sets.discard, async_nats::jetstream::stream::DiscardPolicy::Old);
    assert_eq!(after_poses.max_message_size, MAX_MESSAGE_BYTES);
}

#[tokio::test]
async fn a_service_started_later_with_other_limits_leaves_the_streams_as_they_are() {
    // An operator made the sets stream 1 GiB; a gateway started with the defaults (256 MiB) must
    // not shrink it (and drop the oldest sets to fit), nor change the poses' history.
    let nats = NatsServer::start();
    let js = async_nats::jetstream::new(client(&nats, "setup").await);
    let t = Duration::from_secs(30);
    let big = StreamLimits { sets_max_bytes: 1 << 30, poses_max_age: Duration::from_secs(7200), ..Default::default() };
    tokio::time::timeout(t, ensure_streams(&js, &big)).await.unwrap().unwrap();
    tokio::time::timeout(t, ensure_streams(&js, &StreamLimits::default())).await.unwrap().unwrap();
    let sets = js.get_stream(SETS_STREAM).await.unwrap().info().await.unwrap().config.clone();
    let poses = js.get_stream(POSES_STREAM).await.unwrap().info().await.unwrap().config.clone();
    assert_eq!(sets.max_bytes, 1 << 30);
    assert_eq!(poses.max_age, Duration::from_secs(7200));
    // What differs is said: the warning names each setting.
    let said = pump_bus::streams::differences(&sets, &pump_bus::streams::sets_config(&StreamLimits::default()));
    assert_eq!(said, vec![format!("max_bytes {} (this service: {})", 1u64 << 30, 256u64 << 20)]);
    // On one server a stream has one copy, whatever a cluster's config asks: asking for three
    // is the server's refusal, in one line naming the stream.
    let nats2 = NatsServer::start();
    let js2 = async_nats::jetstream::new(client(&nats2, "setup").await);
    let three = StreamLimits { replicas: 3, ..Default::default() };
    let e = tokio::time::timeout(t, ensure_streams(&js2, &three)).await.unwrap().unwrap_err().to_string();
    assert!(e.contains("PUMP_FRAMES"), "{e}");
}

#[tokio::test]
async fn a_flood_of_camera_names_cannot_fill_the_servers_memory() {
    // Anyone who may publish frames could name a new camera per message, each keeping up to
    // 8 MiB in nats-server's memory for ever: the frames stream had no byte or message cap.
    let nats = NatsServer::start();
    let c = client(&nats, "flood").await;
    let js = async_nats::jetstream::new(c.clone());
    let t = Duration::from_secs(30);
    let defaults = StreamLimits::default();
    let limits = StreamLimits { frames_max_bytes: 2 << 20, max_cameras: 16, ..defaults };
    tokio::time::timeout(t, ensure_streams(&js, &limits)).await.unwrap().unwrap();
    let mut frames = js.get_stream(FRAMES_STREAM).await.unwrap();
    for i in 0..500u32 {
        c.publish(format!("pump.frames.flood{i}"), vec![0u8; 1 << 10].into()).await.unwrap();
    }
    for i in 0..8u32 {
        c.publish(format!("pump.frames.big{i}"), vec![0u8; 512 << 10].into()).await.unwrap();
    }
    // A real camera, sending after the flood: its newest frame is there. It is published with an
    // acknowledgement, so the stream has stored it (and everything before it) before we look: a
    // flush says only that the server has the bytes, not that the stream has taken them in, and on
    // a busy machine the look came first.
    let ack = js.publish("pump.frames.rack1", vec![7u8; 1 << 10].into()).await.unwrap();
    tokio::time::timeout(t, ack).await.unwrap().unwrap();
    let state = frames.info().await.unwrap().state.clone();
    assert!(state.messages <= 16, "{} frames kept", state.messages);
    assert!(state.bytes <= 2 << 20, "{} bytes kept", state.bytes);
    let last = frames.get_last_raw_message_by_subject("pump.frames.rack1").await.unwrap();
    assert_eq!(last.payload[0], 7);
    // The shipped defaults cap it too: 256 cameras, 1 GiB.
    let cfg = pump_bus::streams::frames_config(&defaults);
    assert_eq!((cfg.max_messages, cfg.max_bytes), (256, 1 << 30));
}
