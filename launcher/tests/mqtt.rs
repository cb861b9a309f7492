//! Issue 12 against the real `facerec-launcher` binary and a real broker (Debian's `mosquitto`,
//! started per test on a free loopback port with a password file) and real clients
//! (`mosquitto_sub`): events, retained state, Home Assistant discovery, the last will, a wrong
//! password and a broker outage.

use std::time::Duration;

mod common;
use common::broker::*;

/// The helpers themselves, against mosquitto alone: a persistent QoS 1 subscriber gets what was
/// published while the broker was down and restarted, and retained messages (and their
/// clearing) survive the restart.
#[test]
fn the_test_broker_keeps_sessions_and_retained_messages_over_a_restart() {
    if !mosquitto_ready() {
        return;
    }
    let mut broker = Broker::start("selftest");
    let sub = broker.subscribe("selftest-sub", &["t/#"]);
    broker.publish("t/kept", Some("{\"a\": 1}"), true);
    broker.publish("t/cleared", Some("x"), true);
    broker.publish("t/cleared", None, true);
    sub.wait("t/kept", Duration::from_secs(5), |m| m.topic == "t/kept");
    broker.stop();
    drop(sub);
    broker.restart();
    // Published while the subscriber is away: kept for its session.
    broker.publish("t/while away", Some("queued"), false);
    let sub = broker.subscribe("selftest-sub", &["t/#"]);
    let queued = sub.wait("queued", Duration::from_secs(5), |m| {
        m.topic == "t/while away"
    });
    assert_eq!(queued.payload.as_deref(), Some("queued"));
    let retained = broker.retained("t/#");
    assert_eq!(retained.keys().collect::<Vec<_>>(), ["t/kept"]);
    assert_eq!(retained["t/kept"].json()["a"], 1);
    assert_eq!(retained["t/kept"].qos, 1);
}
