//! Issue 12 against the real `facerec-launcher` binary and a real broker (Debian's `mosquitto`,
//! started per test on a free loopback port with a password file) and real clients
//! (`mosquitto_sub`): events, retained state, Home Assistant discovery, the last will, a wrong
//! password, a broker outage and topic escaping; and the MQTT publisher alone ([`Publisher`])
//! against the same broker: names MQTT forbids in topics, oversized and foreign retained
//! messages, and a person's erasure.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::broker::*;
use common::*;

use facerec_launcher::domain::{EventKind, Presence, StoredEvent};
use facerec_launcher::metrics::Metrics;
use facerec_launcher::mqtt::{self, MqttArgs, MqttConfig, topic_level};
use facerec_launcher::sink::EventSink;

const NODE: &str = "testnode";
const TOKEN: &str = "mqtt-t0ken";
const ALEX: &str = "Alex Lacamoire";

fn t(rest: &str) -> String {
    format!("facerec/{NODE}/{rest}")
}

/// The launcher on the looped sample clip, reporting to `url` as node [`NODE`].
fn args(gallery: &Path, url: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--gallery".to_string(),
        gallery.display().to_string(),
        "--source".to_string(),
        clip_source(),
        "--mqtt".to_string(),
        url.to_string(),
        "--mqtt-node-id".to_string(),
        NODE.to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn start(gallery: &Path, url: &str, extra: &[&str]) -> Launcher {
    Launcher::start(&args(gallery, url, extra), &[("FACEREC_API_TOKEN", TOKEN)])
}

/// The launcher with its stderr collected line by line (and echoed, for a failing test).
fn start_logged(args: &[String], envs: &[(&str, &str)]) -> (Launcher, Arc<Mutex<Vec<String>>>) {
    let mut cmd = launcher_command();
    cmd.args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the launcher starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in stderr.lines() {
            let Ok(line) = line else { return };
            eprintln!("launcher: {line}");
            sink.lock().unwrap().push(line);
        }
    });
    (Launcher::wait_listening(child), lines)
}

/// The stored events, by id.
fn history(l: &Launcher) -> BTreeMap<i64, Value> {
    l.get_json("/api/history?limit=500")["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_i64().unwrap(), e.clone()))
        .collect()
}

/// The events received on `T/events`, in order.
fn events(sub: &Subscriber) -> Vec<Value> {
    sub.on(&t("events")).iter().map(Message::json).collect()
}

fn metric(l: &Launcher, name: &str) -> f64 {
    l.metric(name)
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{}", l.metrics()))
}

/// The discovery object id of a person: ASCII slug plus the first 4 bytes of SHA-256 of the
/// name, computed here with coreutils' `sha256sum` (an independent implementation).
fn person_slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let out = common::pipe_through(&mut Command::new("sha256sum"), name.as_bytes());
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("{}_{}", slug.trim_matches('_'), &hex[..8])
}

fn person_config_topic(name: &str) -> String {
    format!(
        "homeassistant/sensor/{NODE}/person_{}/config",
        person_slug(name)
    )
}

fn device() -> Value {
    json!({
        "identifiers": [format!("facerec_{NODE}")],
        "name": format!("facerec {NODE}"),
        "manufacturer": "facerec",
        "model": "facerec-launcher",
        "sw_version": env!("CARGO_PKG_VERSION"),
    })
}

/// The documented discovery payload of a gallery person.
fn person_config(name: &str) -> Value {
    let state = t(&format!("person/{}", topic_level(name)));
    json!({
        "name": name,
        "unique_id": format!("facerec_{NODE}_person_{}", person_slug(name)),
        "state_topic": state,
        "value_template": "{{ value_json.camera }}",
        "json_attributes_topic": state,
        "icon": "mdi:face-recognition",
        "availability_topic": t("status"),
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device(),
    })
}

/// The documented discovery topics and payloads of a camera.
fn camera_configs(camera: &str) -> [(String, Value); 2] {
    [
        (
            format!("homeassistant/binary_sensor/{NODE}/{camera}_unknown/config"),
            json!({
                "name": format!("{camera} unknown face"),
                "unique_id": format!("facerec_{NODE}_{camera}_unknown"),
                "state_topic": t(&format!("{camera}/unknown")),
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "occupancy",
                "availability_topic": t("status"),
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device(),
            }),
        ),
        (
            format!("homeassistant/sensor/{NODE}/{camera}_faces/config"),
            json!({
                "name": format!("{camera} faces"),
                "unique_id": format!("facerec_{NODE}_{camera}_faces"),
                "state_topic": t(&format!("{camera}/faces")),
                "state_class": "measurement",
                "unit_of_measurement": "faces",
                "icon": "mdi:account-group",
                "availability_topic": t("status"),
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device(),
            }),
        ),
    ]
}

/// The configs Home Assistant requires of any discovery message, checked field by field
/// (independently of the exact payloads above).
fn check_discovery(topic: &str, config: &Value) {
    let levels: Vec<&str> = topic.split('/').collect();
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    assert!(
        levels.len() == 5
            && levels[0] == "homeassistant"
            && ["sensor", "binary_sensor"].contains(&levels[1])
            && id_ok(levels[2])
            && id_ok(levels[3])
            && levels[4] == "config",
        "discovery topic {topic:?}"
    );
    for key in ["unique_id", "state_topic", "name"] {
        assert!(
            config[key].as_str().is_some_and(|s| !s.is_empty()),
            "{topic}: {key} in {config}"
        );
    }
    assert_eq!(config["availability_topic"], t("status"), "{topic}");
    assert!(
        config["device"]["identifiers"]
            .as_array()
            .is_some_and(|ids| !ids.is_empty()),
        "{topic}: device.identifiers in {config}"
    );
    if levels[3].starts_with("person_") {
        assert_eq!(
            config["json_attributes_topic"], config["state_topic"],
            "{topic}"
        );
    }
}

/// One JPEG from an MJPEG stream.
fn mjpeg_frame(url: &str) -> Vec<u8> {
    let response = ureq::get(url)
        .config()
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .call()
        .unwrap();
    let mut reader = BufReader::new(response.into_body().into_reader());
    let mut length = None;
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "stream ended");
        if let Some(v) = line.trim_end().strip_prefix("Content-Length: ") {
            length = v.parse::<usize>().ok();
        } else if line == "\r\n" && length.is_some() {
            break;
        }
    }
    let mut jpeg = vec![0; length.unwrap()];
    reader.read_exact(&mut jpeg).unwrap();
    jpeg
}

/// Fails unless `m` was published with QoS 1 and with the retain flag `retained` (as seen by a
/// [`Broker::subscribe_as_published`] subscriber, or in a [`Broker::retained`] snapshot).
fn assert_published(m: &Message, retained: bool) {
    assert!(
        m.qos == 1 && m.retain == retained,
        "{} {:?} came with QoS {} and retain {}; expected QoS 1 and retain {retained}",
        m.topic,
        m.payload,
        m.qos,
        m.retain
    );
}

/// A camera's state topics at one moment: `faces`, `people` and `unknown`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct View {
    faces: u64,
    people: Vec<String>,
    unknown: String,
}

/// The views of `camera` that the subscriber saw hold for at least half a second, each with how
/// often. One change of view is up to three messages published back to back, so a view that
/// held that long is one the launcher reported, not a mix of an old and a new one.
fn settled_views(sub: &Subscriber, camera: &str) -> BTreeMap<View, usize> {
    const HOLD: Duration = Duration::from_millis(500);
    let [faces_topic, people_topic, unknown_topic] =
        ["faces", "people", "unknown"].map(|what| t(&format!("{camera}/{what}")));
    let messages: Vec<Message> = sub
        .messages()
        .into_iter()
        .filter(|m| [&faces_topic, &people_topic, &unknown_topic].contains(&&m.topic))
        .collect();
    let (mut faces, mut people, mut unknown) = (None, None, None);
    let mut views = BTreeMap::new();
    for (i, m) in messages.iter().enumerate() {
        if m.topic == faces_topic {
            faces = Some(m.text().parse::<u64>().unwrap());
        } else if m.topic == people_topic {
            people = Some(serde_json::from_value::<Vec<String>>(m.json()).unwrap());
        } else {
            unknown = Some(m.text().to_string());
        }
        let until = messages
            .get(i + 1)
            .map_or_else(Instant::now, |n| n.received);
        if let (Some(faces), Some(people), Some(unknown)) = (faces, &people, &unknown)
            && until.duration_since(m.received) >= HOLD
        {
            let view = View {
                faces,
                people: people.clone(),
                unknown: unknown.clone(),
            };
            *views.entry(view).or_default() += 1;
        }
    }
    views
}

/// The helpers themselves, against mosquitto alone: a persistent QoS 1 subscriber gets what was
/// published while it was away, and retained messages (and their clearing) survive a restart.
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

#[test]
fn topic_levels_escape_what_mqtt_reserves_and_keep_the_rest() {
    for (name, level) in [
        ("Lin-Manuel Miranda", "Lin-Manuel Miranda"),
        ("Zoë", "Zoë"),
        ("日本 語", "日本 語"),
        ("a/b", "a%2Fb"),
        ("C++", "C%2B%2B"),
        ("#hash", "%23hash"),
        ("100%", "100%25"),
        // Escaping the escape keeps names apart: "a%2Fb" is not "a/b".
        ("a%2Fb", "a%252Fb"),
        ("tab\there", "tab%09here"),
        ("nul\0", "nul%00"),
        ("line\n", "line%0A"),
        ("\u{1f}x", "%1Fx"),
        ("del\u{7f}", "del%7F"),
        ("+/#%", "%2B%2F%23%25"),
    ] {
        assert_eq!(topic_level(name), level, "topic_level({name:?})");
    }
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn events_state_and_discovery_reach_a_real_broker() {
    if !ready() || !mosquitto_ready() {
        return;
    }
    let _serial = serial();
    let broker = Broker::start("events");
    let sub = broker.subscribe_as_published("events-sub", &["facerec/#", "homeassistant/#"]);
    let launcher = start(&gallery(), &broker.url(), &[]);

    let named = sub.wait("naming Miranda", Duration::from_secs(60), |m| {
        m.topic == t("events") && m.json()["name"] == MIRANDA
    });
    assert_published(&named, false);
    let named = named.json();
    assert_eq!(named["camera"], "clip");

    // Naming him updates his state topic; a subscriber that connects now gets it at once.
    let person = t(&format!("person/{MIRANDA}"));
    let sighting = sub.wait("Miranda's last sighting", Duration::from_secs(10), |m| {
        m.topic == person && m.json()["event_id"].as_i64() >= named["id"].as_i64()
    });
    assert_published(&sighting, true);
    assert_eq!(sighting.json()["name"], MIRANDA);
    let snapshot = broker.retained(&format!("facerec/{NODE}/#"));
    for m in snapshot.values() {
        assert_published(m, true);
    }
    let seen = snapshot
        .get(&person)
        .unwrap_or_else(|| panic!("{person} not retained: {:?}", snapshot.keys()))
        .json();
    assert_eq!(snapshot[&t("status")].text(), "online");
    assert_eq!(seen["name"], MIRANDA);
    assert_eq!(seen["camera"], "clip");
    humantime::parse_rfc3339(seen["last_seen"].as_str().unwrap()).unwrap();
    assert!(seen["event_id"].as_i64().unwrap() >= named["id"].as_i64().unwrap());
    let faces = &snapshot[&t("clip/faces")];
    faces.text().parse::<u64>().unwrap();
    assert!(["ON", "OFF"].contains(&snapshot[&t("clip/unknown")].text()));

    sub.wait(
        "Miranda among the people in view",
        Duration::from_secs(30),
        |m| {
            m.topic == t("clip/people")
                && m.json().as_array().unwrap().contains(&Value::from(MIRANDA))
        },
    );
    // The clip's known moments (testdata/expected/hamilton_reference.json), as the camera's
    // state reports them: the audience (frames 211-275, four or five strangers, and the pianist,
    // whom the reference names Alex Lacamoire on frames 224-241) is `unknown` ON with nobody
    // but him named; Miranda alone (frames 119-210) is OFF with one face, his. Polled over
    // loops of the clip rather than looked at once, so the machine's speed does not matter.
    // (Frames 38-80 hold one or two strangers with gaps of no face, too short to settle; until
    // issue 28 the pianist went unnamed at the old default threshold, so the audience showed
    // nobody named.)
    let strangers = |v: &View| {
        v.unknown == "ON" && v.faces >= 4 && v.people.iter().all(|p| p == "Alex Lacamoire")
    };
    let miranda_alone = |v: &View| v.unknown == "OFF" && v.people == [MIRANDA] && v.faces == 1;
    let start = Instant::now();
    loop {
        let views = settled_views(&sub, "clip");
        if views.keys().any(strangers) && views.keys().any(miranda_alone) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no settled view of the audience (unknown ON) and of Miranda alone (OFF) in \
             60 s; the views seen, with how often: {views:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let received_before_metric = sub.messages().len();
    std::thread::sleep(Duration::from_secs(1));
    let published = metric(&launcher, "facerec_mqtt_published_total");
    std::thread::sleep(Duration::from_secs(1));
    let received_after_metric = sub.messages().len();
    let stored = history(&launcher);
    let messages = sub.messages();

    // Events: the history's JSON exactly, each once, in order, and none missing.
    let events = events(&sub);
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "event ids {ids:?}");
    for event in &events {
        assert_eq!(Some(event), stored.get(&event["id"].as_i64().unwrap()));
    }
    let last = *ids.last().unwrap();
    let expected: Vec<i64> = stored.keys().copied().filter(|id| *id <= last).collect();
    assert_eq!(ids, expected, "events stored but not published");
    let kinds: BTreeSet<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();

    // Person updates name events of that person (named, renamed or ended), newest last.
    for name in [MIRANDA, ALEX] {
        let updates: Vec<i64> = sub
            .on(&t(&format!("person/{name}")))
            .iter()
            .map(|m| {
                let v = m.json();
                assert_eq!(v["name"], name);
                let id = v["event_id"].as_i64().unwrap();
                let event = &stored[&id];
                assert_eq!(event["name"], name);
                assert_ne!(event["kind"], "unknown");
                assert_eq!(v["camera"], event["camera"]);
                assert_eq!(v["last_seen"], event["last_seen"], "{m:?}");
                id
            })
            .collect();
        assert!(
            updates.windows(2).all(|w| w[0] < w[1]),
            "{name}: {updates:?}"
        );
        if name == MIRANDA {
            assert!(!updates.is_empty());
        }
    }

    // People in view: sorted distinct names, never "unknown"; faces a count; unknown ON/OFF.
    for m in sub.on(&t("clip/people")) {
        let names: Vec<String> = serde_json::from_value(m.json()).unwrap();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        assert!(names.iter().all(|n| n == MIRANDA || n == ALEX), "{names:?}");
    }
    let counts: Vec<u64> = sub
        .on(&t("clip/faces"))
        .iter()
        .map(|m| m.text().parse().unwrap())
        .collect();
    assert!(counts.iter().any(|c| *c > 0), "faces {counts:?}");
    let unknown: Vec<&str> = messages
        .iter()
        .filter(|m| m.topic == t("clip/unknown"))
        .map(Message::text)
        .collect();
    assert!(
        unknown.iter().all(|v| ["ON", "OFF"].contains(v)),
        "{unknown:?}"
    );

    // Discovery: exactly the documented configs, each valid, naming topics really published.
    let discovery = broker.retained("homeassistant/#");
    let mut expected: BTreeMap<String, Value> = [MIRANDA, ALEX]
        .iter()
        .map(|n| (person_config_topic(n), person_config(n)))
        .collect();
    expected.extend(camera_configs("clip"));
    assert_eq!(
        discovery.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let topics: BTreeSet<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
    // Events are QoS 1 and not retained (a new subscriber must not take an old one for new);
    // state and discovery are QoS 1 and retained.
    for m in &messages {
        assert_published(m, m.topic != t("events"));
    }
    for (topic, message) in &discovery {
        assert_published(message, true);
        let config = message.json();
        check_discovery(topic, &config);
        assert_eq!(config, expected[topic], "{topic}");
        let state = config["state_topic"].as_str().unwrap();
        // Alex is named in few frames: his topic is only checked when he was.
        if state != t(&format!("person/{ALEX}")) || events.iter().any(|e| e["name"] == ALEX) {
            assert!(
                topics.contains(state),
                "{topic} names {state}, never published"
            );
        }
    }

    assert_eq!(metric(&launcher, "facerec_mqtt_connected"), 1.0);
    assert_eq!(metric(&launcher, "facerec_mqtt_dropped_total"), 0.0);
    // Every message the subscriber got was acknowledged to the launcher, and nothing else.
    assert!(
        received_before_metric as f64 <= published && published <= received_after_metric as f64,
        "published_total {published}, received {received_before_metric}..{received_after_metric}"
    );
    eprintln!(
        "{} events ({kinds:?}), {} messages, {} discovery configs, published_total {published}",
        events.len(),
        messages.len(),
        discovery.len()
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_wrong_password_is_one_log_line_and_nothing_else_stops() {
    if !ready() || !mosquitto_ready() {
        return;
    }
    let _serial = serial();
    let broker = Broker::start("password");
    let wrong = "Wr0ng-pa55word-x9";
    let (launcher, log) = start_logged(
        &args(&gallery(), &broker.url_with_password(wrong), &[]),
        &[],
    );
    launcher.wait_for("ready", Duration::from_secs(30), |l| {
        l.request("GET", "/readyz", None, "").0 == 200
    });
    let frames = launcher.frames("clip");
    // Several reconnect attempts (0.5 s doubling: 5 within 8 s).
    std::thread::sleep(Duration::from_secs(9));

    let refused = broker
        .log()
        .lines()
        .filter(|l| l.contains("disconnected, not authorised"))
        .count();
    assert!(
        refused >= 3,
        "{refused} refused attempts:\n{}",
        broker.log()
    );
    let lines = log.lock().unwrap().clone();
    let refusals: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("refused the connection"))
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert!(
        refusals[0].contains(&format!(
            "MQTT broker mqtt://{USER}@127.0.0.1:{} refused the connection: not authorized \
             (check the user name and password)",
            broker.port
        )),
        "{}",
        refusals[0]
    );
    assert!(
        !lines.iter().any(|l| l.contains(wrong)),
        "the password is in the log"
    );

    // HTTP and video go on.
    assert_eq!(launcher.request("GET", "/readyz", None, "").0, 200);
    assert_eq!(launcher.request("GET", "/healthz", None, "").0, 200);
    assert!(launcher.frames("clip") > frames);
    let jpeg = mjpeg_frame(&launcher.url("/cameras/clip/stream.mjpg"));
    assert!(
        jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9]),
        "not a JPEG"
    );
    assert!(!history(&launcher).is_empty(), "no events stored");
    assert_eq!(metric(&launcher, "facerec_mqtt_connected"), 0.0);
    assert_eq!(metric(&launcher, "facerec_mqtt_published_total"), 0.0);
    assert_eq!(metric(&launcher, "facerec_mqtt_dropped_total"), 0.0);
    assert!(
        broker.retained("#").is_empty(),
        "{:?}",
        broker.retained("#")
    );
    eprintln!(
        "{refused} attempts refused by the broker, logged once: {}",
        refusals[0]
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_broker_outage_delivers_the_newest_events_and_counts_the_rest() {
    if !ready() || !mosquitto_ready() {
        return;
    }
    const BUFFER: usize = 3;
    let _serial = serial();
    let mut broker = Broker::start("outage");
    let sub = broker.subscribe("outage-sub", &[&t("events")]);
    let launcher = start(&gallery(), &broker.url(), &["--mqtt-buffer", "3"]);
    sub.wait("a first event", Duration::from_secs(60), |_| true);
    // One loop of the clip (275 frames) at the rate the camera plays it on this machine.
    let input_fps = || launcher.camera("clip")["input_fps"].as_f64().unwrap();
    // The median of three one-second rates: the first ones cover the pipeline's start.
    let mut rates: Vec<f64> = (0..3)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(1100));
            input_fps()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let input_fps = rates[1];
    assert!(input_fps > 0.0, "input fps {rates:?}");
    let clip_loop = Duration::from_secs_f64(275.0 / input_fps);

    broker.stop();
    let stopped = Instant::now();
    launcher.wait_for("the lost connection", Duration::from_secs(10), |l| {
        metric(l, "facerec_mqtt_connected") == 0.0
    });
    // The pipeline never waits for the broker: while it is down, every read of the frame
    // counter (about one a second) is higher than the one before. A camera's bus thread hands
    // MQTT its state; had it blocked, the clip would stop at its end, as that thread restarts
    // it: so the reads go on for more than one loop (and for the 10 s the buffer needs).
    let outage = (clip_loop + Duration::from_secs(3))
        .clamp(Duration::from_secs(12), Duration::from_secs(30));
    let mut frames = vec![launcher.frames("clip")];
    while stopped.elapsed() < outage {
        std::thread::sleep(Duration::from_secs(1));
        let previous = *frames.last().unwrap();
        let since = Instant::now();
        loop {
            let now = launcher.frames("clip");
            if now > previous {
                frames.push(now);
                break;
            }
            assert!(
                since.elapsed() < Duration::from_secs(3),
                "the frame counter stopped while the broker was down: {frames:?}, then {now} \
                 for 3 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(metric(&launcher, "facerec_mqtt_connected"), 0.0);
    broker.restart();
    launcher.wait_for("the reconnection", Duration::from_secs(30), |l| {
        metric(l, "facerec_mqtt_connected") == 1.0
    });
    // The newest events when it reconnected were in the buffer, or came after it.
    let at_reconnection = history(&launcher);

    // The account: every stored event was delivered or counted as dropped. The drops stop once
    // connected, so wait for the rest to arrive.
    let stored = history(&launcher);
    let dropped = metric(&launcher, "facerec_mqtt_dropped_total") as usize;
    let received = || -> BTreeSet<i64> {
        events(&sub)
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .filter(|id| stored.contains_key(id))
            .collect()
    };
    let start = Instant::now();
    while received().len() + dropped < stored.len() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let received = received();
    let missing: Vec<i64> = stored
        .keys()
        .copied()
        .filter(|id| !received.contains(id))
        .collect();
    eprintln!(
        "{} events stored, {} received, {dropped} dropped (missing {missing:?}); \
         frames during the {outage:?} outage {frames:?} (input {input_fps:.1} fps)",
        stored.len(),
        received.len()
    );
    assert!(dropped >= 1, "the outage overflowed no buffer of {BUFFER}");
    assert_eq!(
        received.len() + dropped,
        stored.len(),
        "missing {missing:?}"
    );
    // The oldest of the outage were dropped: one run of consecutive events, all older than the
    // newest BUFFER events at reconnection, which were all delivered.
    let ids: Vec<i64> = stored.keys().copied().collect();
    let first = ids.iter().position(|id| *id == missing[0]).unwrap();
    assert_eq!(missing, ids[first..first + missing.len()], "not one run");
    let newest: Vec<i64> = at_reconnection.keys().rev().take(BUFFER).copied().collect();
    assert!(
        newest.iter().all(|id| received.contains(id)),
        "newest {newest:?} not all delivered"
    );
    assert!(missing.iter().all(|id| id < newest.last().unwrap()));
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn the_last_will_says_offline_when_the_launcher_is_killed() {
    if !ready() || !mosquitto_ready() {
        return;
    }
    let _serial = serial();
    let broker = Broker::start("will");
    let sub = broker.subscribe_as_published("will-sub", &[&t("status")]);
    // Waits for `value` after the first `from` status messages; returns how many there are then.
    let status = |from: usize, value: &str| {
        let start = Instant::now();
        loop {
            let all = sub.on(&t("status"));
            if let Some(i) = all.iter().skip(from).position(|m| m.text() == value) {
                return from + i + 1;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "no {value:?} after {:?}",
                all.iter().map(Message::text).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut launcher = start(&gallery(), &broker.url(), &[]);
    let n = status(0, "online");
    launcher.child.kill().unwrap();
    launcher.child.wait().unwrap();
    let n = status(n, "offline");
    let will = &broker.retained(&t("status"))[&t("status")];
    assert_eq!(will.text(), "offline");
    assert_published(will, true);

    // Again, with the password from a file (a mounted Secret), which has a trailing newline.
    let secret_dir = temp_dir("will-secret");
    let secret = secret_dir.path().join("password");
    std::fs::write(&secret, format!("{PASSWORD}\n")).unwrap();
    let url = format!("mqtt://{USER}@127.0.0.1:{}", broker.port);
    let mut launcher = Launcher::start(
        &args(&gallery(), &url, &[]),
        &[("FACEREC_MQTT_PASSWORD_FILE", secret.to_str().unwrap())],
    );
    let n = status(n, "online");
    assert_eq!(broker.retained(&t("status"))[&t("status")].text(), "online");
    // A clean stop says so too.
    let (exit, _) = launcher.terminate();
    assert!(exit.success(), "{exit:?}");
    status(n, "offline");
    assert_eq!(
        broker.retained(&t("status"))[&t("status")].text(),
        "offline"
    );
    let values: Vec<String> = sub
        .on(&t("status"))
        .iter()
        .map(|m| m.text().to_string())
        .collect();
    assert_eq!(values, ["online", "offline", "online", "offline"]);
    // The will, and the status the launcher publishes itself, are QoS 1 and retained.
    for m in sub.on(&t("status")) {
        assert_published(&m, true);
    }
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn names_with_reserved_characters_are_escaped_in_topics() {
    if !ready() || !mosquitto_ready() {
        return;
    }
    let _serial = serial();
    let name = "Zoë +Lin/#1 100%";
    let escaped = "Zoë %2BLin%2F%231 100%25";
    assert_eq!(topic_level(name), escaped);
    let gallery = make_gallery(
        "escaped",
        &[
            (name, "lin-manuel-miranda.png"),
            (ALEX, "alex-lacamoire.png"),
        ],
    );
    let broker = Broker::start("escape");
    let sub = broker.subscribe("escape-sub", &["facerec/#"]);
    let _launcher = start(&gallery, &broker.url(), &[]);
    let event = sub
        .wait("naming him", Duration::from_secs(60), |m| {
            m.topic == t("events") && m.json()["name"] == name
        })
        .json();
    let retained = broker.retained(&t("person/#"));
    let person = retained
        .get(&t(&format!("person/{escaped}")))
        .unwrap_or_else(|| panic!("not retained: {retained:?}"))
        .json();
    assert_eq!(person["name"], name);
    assert!(person["event_id"].as_i64().unwrap() >= event["id"].as_i64().unwrap());
    // The escaped level is the only person topic of his (a wildcard never matched).
    let persons: BTreeSet<String> = sub
        .messages()
        .into_iter()
        .filter(|m| m.topic.starts_with(&t("person/")) && !m.topic.ends_with(ALEX))
        .map(|m| m.topic)
        .collect();
    assert_eq!(
        persons.into_iter().collect::<Vec<_>>(),
        [t(&format!("person/{escaped}"))]
    );
    sub.wait("him in view", Duration::from_secs(10), |m| {
        m.topic == t("clip/people") && m.json().as_array().unwrap().contains(&Value::from(name))
    });
    let config_topic = format!("homeassistant/sensor/{NODE}/person_zo_lin_1_100_");
    let discovery = broker.retained("homeassistant/#");
    let (topic, config) = discovery
        .iter()
        .find(|(topic, _)| topic.starts_with(&config_topic))
        .unwrap_or_else(|| panic!("no {config_topic}…: {:?}", discovery.keys()));
    assert_eq!(*topic, person_config_topic(name));
    let config = config.json();
    check_discovery(topic, &config);
    assert_eq!(config, person_config(name));
    assert_eq!(config["state_topic"], t(&format!("person/{escaped}")));
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn removed_people_are_cleared_from_the_broker() {
    if !ready() || !mosquitto_ready() {
        return;
    }
    let _serial = serial();
    let broker = Broker::start("removed");
    let sub = broker.subscribe("removed-sub", &["facerec/#", "homeassistant/#"]);
    // The discovery topics a late subscriber gets, once they are `expected`.
    let configs = |expected: Vec<String>| {
        let start = Instant::now();
        loop {
            let topics: Vec<String> = broker.retained("homeassistant/#").into_keys().collect();
            if topics == expected || start.elapsed() > Duration::from_secs(15) {
                assert_eq!(topics, expected);
                return;
            }
        }
    };
    let cameras: Vec<String> = camera_configs("clip").into_iter().map(|c| c.0).collect();
    let expect = |people: &[&str]| -> Vec<String> {
        let mut topics: Vec<String> = people.iter().map(|p| person_config_topic(p)).collect();
        topics.extend(cameras.iter().cloned());
        topics.sort();
        topics
    };
    // Waits for an empty payload on `topic` among the messages after the first `from`.
    let cleared = |from: usize, topic: String| {
        let start = Instant::now();
        while !sub.messages()[from..]
            .iter()
            .any(|m| m.topic == topic && m.payload.is_none())
        {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{topic} not cleared"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // Deleted through the face library.
    let mut launcher = start(&gallery(), &broker.url(), &[]);
    sub.wait("Miranda named", Duration::from_secs(60), |m| {
        m.topic == t(&format!("person/{MIRANDA}"))
    });
    configs(expect(&[MIRANDA, ALEX]));
    let from = sub.messages().len();
    let (status, body) =
        launcher.request("DELETE", "/api/people/Alex%20Lacamoire", Some(TOKEN), "");
    assert_eq!(status, 204, "{body}");
    cleared(from, person_config_topic(ALEX));
    cleared(from, t(&format!("person/{ALEX}")));
    configs(expect(&[MIRANDA]));
    // Not brought back by the end of a track that was still named after him (ended events
    // repeat a track's last name): looked at once such tracks have ended, checked at the end.
    std::thread::sleep(Duration::from_secs(3));
    let after_delete = broker.retained(&t("person/#"));
    launcher.terminate();

    // Absent at start-up: Miranda's config and last sighting, retained from the last run.
    let only_alex = make_gallery("only-alex", &[(ALEX, "alex-lacamoire.png")]);
    let from = sub.messages().len();
    let launcher = start(&only_alex, &broker.url(), &[]);
    cleared(from, person_config_topic(MIRANDA));
    cleared(from, t(&format!("person/{MIRANDA}")));
    configs(expect(&[ALEX]));
    assert!(
        !broker
            .retained(&t("person/#"))
            .contains_key(&t(&format!("person/{MIRANDA}")))
    );

    // A gallery reload with fewer people.
    let only_miranda = make_gallery("only-miranda", &[(MIRANDA, "lin-manuel-miranda.png")]);
    std::fs::copy(only_miranda, &only_alex).unwrap();
    let from = sub.messages().len();
    let (status, body) = launcher.request("POST", "/api/gallery/reload", Some(TOKEN), "");
    assert_eq!(status, 200, "{body}");
    cleared(from, person_config_topic(ALEX));
    cleared(from, t(&format!("person/{ALEX}")));
    configs(expect(&[MIRANDA]));
    std::thread::sleep(Duration::from_secs(3));
    let after_reload = broker.retained(&t("person/#"));

    let alex = t(&format!("person/{ALEX}"));
    let back: Vec<String> = [("deleted", after_delete), ("reloaded", after_reload)]
        .into_iter()
        .filter_map(|(when, people)| Some(format!("after he was {when}: {:?}", people.get(&alex)?)))
        .collect();
    assert!(back.is_empty(), "{alex} retained again {back:#?}");
}

/// Runs the launcher with `args` and `envs`; returns its exit code and stderr.
fn fails(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let stderr_dir = temp_dir("fails");
    let stderr = stderr_dir.path().join("stderr");
    let mut child = launcher_command()
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("{args:?} still runs after 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), std::fs::read_to_string(&stderr).unwrap())
}

#[test]
fn misconfigured_mqtt_stops_the_launcher_with_one_line() {
    let secret_dir = temp_dir("misconfigured");
    let secret = secret_dir.path().join("password");
    std::fs::write(&secret, "Secr3tPw\n").unwrap();
    let secret = secret.to_str().unwrap();
    for (args, envs, says) in [
        (
            vec!["--mqtt", "ftp://x"],
            vec![],
            "facerec-launcher: --mqtt: unsupported scheme ftp://; use mqtt:// or mqtts://",
        ),
        (
            vec!["--mqtt", "mqtt://u:Secr3tPw@broker:1883/facerec"],
            vec![],
            "facerec-launcher: --mqtt: the URL must be only mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]",
        ),
        (
            vec!["--mqtt", "mqtt://u:Secr3tPw@broker:1883?x=1"],
            vec![],
            "facerec-launcher: --mqtt: the URL must be only mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]",
        ),
        (
            vec!["--mqtt", "mqtt://u@broker", "--mqtt-node-id", ""],
            vec![],
            "facerec-launcher: --mqtt-node-id must be 1 to 253 characters (default: the host name)",
        ),
        (
            vec!["--mqtt", "mqtt://u@broker"],
            vec![("FACEREC_MQTT_PASSWORD_FILE", "/nonexistent/mqtt-password")],
            "facerec-launcher: cannot read the MQTT password file /nonexistent/mqtt-password: ",
        ),
        (
            vec!["--mqtt", "mqtt://broker"],
            vec![("FACEREC_MQTT_PASSWORD_FILE", secret)],
            "facerec-launcher: --mqtt: a password needs a user name: mqtt://USER@HOST",
        ),
        (
            vec!["--mqtt", "mqtt://u:Secr3tPw@broker", "--mqtt-buffer", "0"],
            vec![],
            "facerec-launcher: mqtt-buffer 0 is out of range: it must be 1 to 1000000",
        ),
        (
            vec!["--mqtt", "mqtt://u:Secr3tPw@broker", "--mqtt-prefix", "a/+"],
            vec![],
            "facerec-launcher: --mqtt-prefix \"a/+\" is not a valid topic prefix: use levels separated by '/', none empty, without '+', '#' or a leading '$'",
        ),
    ] {
        let (code, stderr) = fails(&args, &envs);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(lines[0].starts_with(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("Secr3tPw"), "{args:?}: {stderr}");
    }
}

/// The launcher's MQTT publisher alone, as `main.rs` starts it but without cameras or models:
/// the test tells it what happened through its [`mqtt::Handle`] (an `EventSink`). It runs on
/// its own thread and runtime, reporting to a broker as node [`NODE`] (client id
/// `facerec-testnode`), with its log collected.
struct Publisher {
    handle: mqtt::Handle,
    metrics: Arc<Metrics>,
    shutdown: tokio_util::sync::CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    log: Arc<Mutex<Vec<u8>>>,
}

const CLIENT: &str = "facerec-testnode";

/// Where a [`Publisher`]'s log goes.
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        eprint!("publisher: {}", String::from_utf8_lossy(buf));
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Publisher {
    fn start(broker: &Broker, people: &[&str]) -> Publisher {
        let args = MqttArgs {
            mqtt_url: Some(broker.url()),
            mqtt_password_file: None,
            mqtt_ca_file: None,
            mqtt_client_id: None,
            mqtt_node_id: Some(NODE.into()),
            mqtt_prefix: "facerec".into(),
            mqtt_buffer: 100,
            mqtt_discovery: true,
            mqtt_discovery_prefix: "homeassistant".into(),
        };
        let config = MqttConfig::from_args(&args).unwrap().unwrap();
        let mut metrics = Metrics::new();
        metrics.register_mqtt();
        let metrics = Arc::new(metrics);
        let people: BTreeSet<String> = people.iter().map(|p| p.to_string()).collect();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let (metrics, shutdown, log) = (metrics.clone(), shutdown.clone(), log.clone());
            std::thread::spawn(move || {
                let subscriber = tracing_subscriber::fmt()
                    .with_ansi(false)
                    .with_writer(move || LogWriter(log.clone()))
                    .finish();
                let _log = tracing::subscriber::set_default(subscriber);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let (handle, task) = mqtt::start(config, people, metrics, shutdown).unwrap();
                    tx.send(handle).unwrap();
                    task.await.unwrap();
                });
            })
        };
        let publisher = Publisher {
            handle: rx.recv().unwrap(),
            metrics,
            shutdown,
            thread: Some(thread),
            log,
        };
        publisher.wait_connected();
        publisher
    }

    fn wait_connected(&self) {
        let start = Instant::now();
        while self.metrics.mqtt.connected.get() != 1 {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "not connected; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// The log's lines that hold `text`.
    fn logged(&self, text: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(text))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A `named` event of `name` on camera `clip`, as the recorder stores it.
fn stored(id: i64, name: &str) -> StoredEvent {
    let ms = 1_780_000_000_000 + id * 1000;
    StoredEvent {
        id,
        camera: "clip".into(),
        kind: EventKind::Named,
        name: name.into(),
        stranger: None,
        distance: Some(0.31),
        confidence: Some(0.9),
        quality: Some(0.8),
        track_id: id as u64,
        bbox: [10, 20, 110, 140],
        first_seen_ms: ms - 500,
        last_seen_ms: ms,
        time_ms: ms,
        has_crop: false,
    }
}

/// Sends event `id` naming `name` and waits until the subscriber has it.
fn event_arrives(publisher: &Publisher, sub: &Subscriber, id: i64, name: &str) -> Value {
    publisher.handle.event(&stored(id, name));
    sub.wait(&format!("event {id}"), Duration::from_secs(15), |m| {
        m.topic == t("events") && m.json()["id"] == id
    })
    .json()
}

/// Waits until a late subscriber's retained messages under `filter` are `wanted`; returns them.
fn retained_until(
    broker: &Broker,
    filter: &str,
    what: &str,
    wanted: impl Fn(&BTreeMap<String, Message>) -> bool,
) -> BTreeMap<String, Message> {
    let start = Instant::now();
    loop {
        let retained = broker.retained(filter);
        if wanted(&retained) {
            return retained;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what}: retained under {filter}: {:#?}",
            retained
                .iter()
                .map(|(k, v)| (
                    k,
                    v.payload
                        .as_deref()
                        .map(|p| p.chars().take(80).collect::<String>())
                ))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Noncharacters (U+FFFF, U+FDD0, U+FDEF, U+1FFFE) and a C1 control (U+0085) in a person's name:
/// mosquitto closes the connection on such a topic as a malformed packet, and the launcher used
/// to send it again after every reconnect (retained state goes first), forever, while events
/// were dropped. The topic level escapes them; the payloads keep the name as it is.
#[test]
fn names_with_characters_mqtt_forbids_in_topics_keep_the_connection() {
    if !mosquitto_ready() {
        return;
    }
    let name = "Zoë\u{FFFF}\u{FDD0}";
    let escaped = "Zoë%EF%BF%BF%EF%B7%90";
    assert_eq!(topic_level(name), escaped);
    let other = "Ana \u{85}\u{FDEF}\u{1FFFE}";
    let other_escaped = "Ana %C2%85%EF%B7%AF%F0%9F%BF%BE";
    assert_eq!(topic_level(other), other_escaped);
    let broker = Broker::start("nonchar");
    let sub = broker.subscribe_as_published("nonchar-sub", &["facerec/#", "homeassistant/#"]);
    let publisher = Publisher::start(&broker, &[name, other, ALEX]);
    publisher.handle.presence(
        "clip",
        &Presence {
            people: [name, other].iter().map(|p| p.to_string()).collect(),
            unknown: false,
            faces: 2,
        },
    );
    for (id, who) in [(1, name), (2, other), (3, ALEX)] {
        publisher.handle.event(&stored(id, who));
    }
    event_arrives(&publisher, &sub, 4, name);

    // Every event, once, in order, naming the person as they are called.
    let events = events(&sub);
    let names: Vec<(i64, &str)> = events
        .iter()
        .map(|e| (e["id"].as_i64().unwrap(), e["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [(1, name), (2, other), (3, ALEX), (4, name)]);
    // The escaped levels, retained, with the names as they are.
    let people = retained_until(&broker, &t("person/#"), "three sightings", |r| r.len() == 3);
    for (who, level, id) in [
        (name, escaped, 4),
        (other, other_escaped, 2),
        (ALEX, ALEX, 3),
    ] {
        let seen = people
            .get(&t(&format!("person/{level}")))
            .unwrap_or_else(|| panic!("person/{level} not retained: {:?}", people.keys()))
            .json();
        assert_eq!(
            (seen["name"].as_str(), seen["event_id"].as_i64()),
            (Some(who), Some(id))
        );
    }
    let discovery = broker.retained("homeassistant/#");
    for who in [name, other] {
        let config = discovery[&person_config_topic(who)].json();
        check_discovery(&person_config_topic(who), &config);
        assert_eq!(config, person_config(who));
    }
    let in_view = broker.retained(&t("clip/people"))[&t("clip/people")].json();
    let mut expected = vec![name, other];
    expected.sort();
    assert_eq!(in_view, json!(expected));

    // Never disconnected: one connection, nothing malformed, nothing dropped or refused.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(broker.connections(CLIENT), 1, "{}", broker.log());
    assert!(!broker.log().contains("malformed"), "{}", broker.log());
    assert_eq!(publisher.metrics.mqtt.connected.get(), 1);
    assert_eq!(publisher.metrics.mqtt.dropped.get(), 0);
    assert!(publisher.logged("WARN").is_empty(), "{}", publisher.log());
}

/// Anyone who may publish to the broker could knock the launcher off it: a retained message
/// over rumqttc's default 10 KiB limit on a topic it subscribes to (`person/+`) made it
/// reconnect, get it again, forever; and every foreign retained topic it saw was kept and
/// cleared again after every reconnect.
#[test]
fn big_and_foreign_retained_messages_do_not_knock_the_publisher_off() {
    if !mosquitto_ready() {
        return;
    }
    let mut broker = Broker::start("oversized");
    let big = vec![b'x'; 64 * 1024];
    broker.publish_bytes(&t("person/x"), &big, true);
    broker.publish(&t("person/ghost"), Some("{\"name\":\"ghost\"}"), true);
    let sub = broker.subscribe_as_published("oversized-sub", &["facerec/#"]);
    let publisher = Publisher::start(&broker, &[ALEX]);
    event_arrives(&publisher, &sub, 1, ALEX);
    // Left by no run of this gallery: both cleared, the 64 KiB message read like any other.
    let cleared = |topic: String| {
        sub.wait(&format!("{topic} cleared"), Duration::from_secs(10), |m| {
            m.topic == topic && m.payload.is_none()
        });
    };
    cleared(t("person/x"));
    cleared(t("person/ghost"));
    retained_until(&broker, &t("person/#"), "only Alex", |r| {
        r.keys().eq([&t(&format!("person/{ALEX}"))])
    });
    assert_eq!(broker.connections(CLIENT), 1, "{}", broker.log());
    // A 64 KiB message published while it runs: no reconnection either.
    broker.publish_bytes(&t("person/y"), &big, true);
    event_arrives(&publisher, &sub, 2, ALEX);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(broker.connections(CLIENT), 1, "{}", broker.log());
    assert!(publisher.logged("WARN").is_empty(), "{}", publisher.log());

    // A new connection: the clears are not sent again (they were not kept), person/y (retained
    // while it ran) is cleared once.
    broker.stop();
    broker.restart();
    let start = Instant::now();
    while broker.connections(CLIENT) < 2 {
        assert!(start.elapsed() < Duration::from_secs(20), "no reconnection");
        std::thread::sleep(Duration::from_millis(100));
    }
    publisher.wait_connected();
    cleared(t("person/y"));
    event_arrives(&publisher, &sub, 3, ALEX);
    std::thread::sleep(Duration::from_secs(1));
    let clears = |topic: String| {
        sub.on(&topic)
            .iter()
            .filter(|m| m.payload.is_none())
            .count()
    };
    assert_eq!(
        [
            clears(t("person/x")),
            clears(t("person/ghost")),
            clears(t("person/y"))
        ],
        [1, 1, 1]
    );

    // Over the 256 KiB limit, published while it runs: it cannot be skipped, so the connection
    // ends once; the launcher says so once and no longer reads what it subscribes to.
    let connections = broker.connections(CLIENT);
    let huge = vec![b'y'; 1024 * 1024];
    broker.publish_bytes(&t("person/huge"), &huge, true);
    let start = Instant::now();
    while publisher.logged("cannot read").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            publisher.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    publisher.wait_connected();
    event_arrives(&publisher, &sub, 4, ALEX);
    std::thread::sleep(Duration::from_secs(4));
    event_arrives(&publisher, &sub, 5, ALEX);
    assert_eq!(
        broker.connections(CLIENT),
        connections + 1,
        "{}",
        broker.log()
    );
    let said = publisher.logged("cannot read");
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(
        said[0].contains("payload size limit exceeded: 1048") && said[0].contains("262144"),
        "{}",
        said[0]
    );
    assert_eq!(publisher.metrics.mqtt.dropped.get(), 0);
    drop(publisher);

    // A new run with it retained: once again, one reconnection and one line.
    let connections = broker.connections(CLIENT);
    let publisher = Publisher::start(&broker, &[ALEX]);
    event_arrives(&publisher, &sub, 6, ALEX);
    std::thread::sleep(Duration::from_secs(3));
    event_arrives(&publisher, &sub, 7, ALEX);
    assert_eq!(
        broker.connections(CLIENT),
        connections + 2,
        "{}",
        broker.log()
    );
    assert_eq!(
        publisher.logged("cannot read").len(),
        1,
        "{}",
        publisher.log()
    );
    assert_eq!(publisher.metrics.mqtt.connected.get(), 1);
}

/// A person's erasure: everything retained about them goes (their last sighting and their Home
/// Assistant entity, with empty retained messages; their name from the cameras' `people`), and
/// a reconnection does not bring them back.
#[test]
fn an_erased_person_is_cleared_from_the_broker_and_not_announced_again() {
    if !mosquitto_ready() {
        return;
    }
    let erased = "Zoë /+Erased#";
    let level = "Zoë %2F%2BErased%23";
    assert_eq!(topic_level(erased), level);
    let mut broker = Broker::start("erased");
    let sub = broker.subscribe_as_published("erased-sub", &["facerec/#", "homeassistant/#"]);
    let publisher = Publisher::start(&broker, &[erased, ALEX]);
    publisher.handle.camera_added("clip");
    publisher.handle.presence(
        "clip",
        &Presence {
            people: [erased, ALEX].iter().map(|p| p.to_string()).collect(),
            unknown: true,
            faces: 3,
        },
    );
    event_arrives(&publisher, &sub, 1, erased);
    event_arrives(&publisher, &sub, 2, ALEX);
    let state = t(&format!("person/{level}"));
    let config = person_config_topic(erased);
    retained_until(&broker, "#", "both people announced", |r| {
        r.contains_key(&state)
            && r.contains_key(&config)
            && r.contains_key(&person_config_topic(ALEX))
            && r.contains_key(&t(&format!("person/{ALEX}")))
    });
    let before: BTreeSet<String> = broker.retained("#").into_keys().collect();

    // Events naming them that still wait are dropped with the rest (the broker is away).
    broker.stop();
    let start = Instant::now();
    while publisher.metrics.mqtt.connected.get() != 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "still connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    publisher.handle.event(&stored(3, erased));
    publisher.handle.event(&stored(4, ALEX));
    EventSink::person_erased(&publisher.handle, erased);
    broker.restart();
    publisher.wait_connected();
    event_arrives(&publisher, &sub, 5, ALEX);

    // Exactly their two retained topics were cleared (config first), and their name left the
    // camera's `people`.
    let from_publisher = |m: &Message| m.topic != t("status");
    let after = retained_until(&broker, "#", "their topics cleared", |r| {
        !r.contains_key(&state) && !r.contains_key(&config)
    });
    let gone: Vec<&String> = before.iter().filter(|t| !after.contains_key(*t)).collect();
    assert_eq!(
        gone,
        [&state, &config]
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    let clears: Vec<String> = sub
        .messages()
        .into_iter()
        .filter(|m| m.payload.is_none() && from_publisher(m))
        .map(|m| m.topic)
        .collect();
    assert_eq!(clears, [config.clone(), state.clone()]);
    assert_eq!(after[&t("clip/people")].json(), json!([ALEX]));
    let ids: Vec<i64> = events(&sub)
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 4, 5], "event 3 named them and waited");

    // An event naming them (a track that ends) does not bring their sighting back, nor does a
    // new connection their entity.
    publisher.handle.event(&StoredEvent {
        kind: EventKind::Ended,
        ..stored(6, erased)
    });
    event_arrives(&publisher, &sub, 7, ALEX);
    broker.stop();
    broker.restart();
    let start = Instant::now();
    while broker.connections(CLIENT) < 3 {
        assert!(start.elapsed() < Duration::from_secs(20), "no reconnection");
        std::thread::sleep(Duration::from_millis(100));
    }
    publisher.wait_connected();
    event_arrives(&publisher, &sub, 8, ALEX);
    std::thread::sleep(Duration::from_secs(1));
    let now = broker.retained("#");
    assert!(
        !now.contains_key(&state) && !now.contains_key(&config),
        "{:?}",
        now.keys()
    );
    assert!(now.contains_key(&person_config_topic(ALEX)));
    let announced: Vec<String> = sub
        .messages()
        .into_iter()
        .skip_while(|m| !(m.topic == t("events") && m.json()["id"] == 5))
        .filter(|m| (m.topic == state || m.topic == config) && m.payload.is_some())
        .map(|m| m.topic)
        .collect();
    assert!(announced.is_empty(), "announced again: {announced:?}");
    assert_eq!(publisher.metrics.mqtt.dropped.get(), 0);
}

/// A 64 KiB retained message on `person/x` before the launcher starts and while it runs, and one
/// over the limit: the real launcher stays connected (the first two), says it once (the last),
/// and its events keep coming.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn big_retained_messages_do_not_knock_the_launcher_off_the_broker() {
    if !ready() || !mosquitto_ready() {
        return;
    }
    let _serial = serial();
    let broker = Broker::start("big");
    let big = vec![b'x'; 64 * 1024];
    broker.publish_bytes(&t("person/x"), &big, true);
    let sub = broker.subscribe_as_published("big-sub", &["facerec/#"]);
    let (launcher, log) = start_logged(
        &args(&gallery(), &broker.url(), &[]),
        &[("FACEREC_API_TOKEN", TOKEN)],
    );
    let first = sub
        .wait("a first event", Duration::from_secs(60), |m| {
            m.topic == t("events")
        })
        .json();
    sub.wait("person/x cleared", Duration::from_secs(10), |m| {
        m.topic == t("person/x") && m.payload.is_none()
    });
    broker.publish_bytes(&t("person/y"), &big, true);
    // Events after it keep coming, on the first connection.
    let later = |after: i64| {
        sub.wait(
            &format!("an event after {after}"),
            Duration::from_secs(60),
            |m| m.topic == t("events") && m.json()["id"].as_i64() > Some(after),
        )
        .json()["id"]
            .as_i64()
            .unwrap()
    };
    let id = later(first["id"].as_i64().unwrap());
    assert_eq!(broker.connections(CLIENT), 1, "{}", broker.log());
    assert_eq!(metric(&launcher, "facerec_mqtt_connected"), 1.0);

    broker.publish_bytes(&t("person/huge"), &vec![b'y'; 1024 * 1024], true);
    let id = later(id);
    std::thread::sleep(Duration::from_secs(4));
    later(id);
    assert_eq!(broker.connections(CLIENT), 2, "{}", broker.log());
    assert_eq!(metric(&launcher, "facerec_mqtt_connected"), 1.0);
    let lines = log.lock().unwrap().clone();
    let said: Vec<&String> = lines.iter().filter(|l| l.contains("cannot read")).collect();
    assert_eq!(said.len(), 1, "{said:#?}");
    assert_eq!(metric(&launcher, "facerec_mqtt_dropped_total"), 0.0);
}
