//! MQTT: recognition events, who is in view, and Home Assistant entities, for the systems people
//! already run (Home Assistant, Node-RED, a site's central broker).
//!
//! Cameras and the recorder never wait on the broker: they hand messages to a [`Handle`], which
//! queues events in a bounded buffer (the oldest dropped and counted) and keeps retained state
//! as the latest value per topic. One task publishes them with QoS 1, one message in flight at a
//! time, so that a message is only gone from the queue once the broker has acknowledged it: a
//! connection lost mid-flight loses nothing. Retained state is published again on every
//! (re)connect, so a broker restarted without persistence still gets it.
//!
//! The [`Handle`] is an [`EventSink`]. Services layer: imports the domain, the sink interface
//! and the metrics.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Outgoing, Packet, QoS, StateError, TlsConfiguration, Transport,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::config::mqtt::is_topic_text;
pub use crate::config::mqtt::{MqttArgs, MqttConfig};
#[cfg(test)]
use crate::config::mqtt::{check_prefix, is_plain_id};
use crate::domain::event::rfc3339_ms;
use crate::domain::{EventKind, Presence, StoredEvent, lock};
use crate::metrics::Metrics;
use crate::sink::EventSink;

const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(15);
/// How long a clean shutdown waits for the broker to acknowledge `offline`.
const OFFLINE_ACK_WAIT: Duration = Duration::from_secs(1);
/// The largest MQTT packet read or written, in bytes. The launcher's own messages are far
/// smaller (a discovery config is under 3 KiB, an event under 1 KiB, a camera's `people` a few
/// names), so this is headroom, not a limit on them; a message over it is dropped with a
/// warning rather than sent. A bigger message from the broker cannot be skipped in MQTT 3.1.1:
/// it ends the connection once, and the launcher then stops reading what it subscribed to.
const MAX_PACKET: usize = 256 * 1024;
/// The longest topic MQTT can carry (its length is a 16-bit number).
const MAX_TOPIC: usize = 65_535;
/// A message in flight each time the connection was lost this many times is never acknowledged
/// by this broker (it refuses it by closing the connection): it is dropped, not sent forever.
const POISON_STRIKES: u32 = 3;
/// Clears of retained topics left by an earlier run waiting at once; past this, those seen are
/// ignored until the next connection shows them again.
const MAX_LEFTOVER_CLEARS: usize = 10_000;

/// Why no broker would take this message (`None`: it can be published): a topic that is empty,
/// too long, holds a wildcard or a character MQTT forbids, or a packet over [`MAX_PACKET`].
fn unpublishable(topic: &str, payload: usize) -> Option<String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC {
        return Some(format!(
            "its topic is {} bytes (MQTT allows 1 to {MAX_TOPIC})",
            topic.len()
        ));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| matches!(c, '+' | '#') || !is_topic_text(*c))
    {
        return Some(format!(
            "its topic holds U+{:04X}, which MQTT does not allow there",
            u32::from(c)
        ));
    }
    // Fixed header (at most 5 bytes), topic length, topic, packet id, payload.
    let size = 5 + 2 + topic.len() + 2 + payload;
    if size > MAX_PACKET {
        return Some(format!(
            "it is {size} bytes, over the {MAX_PACKET}-byte limit"
        ));
    }
    None
}

impl MqttConfig {
    fn options(&self, status_topic: &str) -> Result<MqttOptions> {
        let mut options = MqttOptions::new(&self.client_id, &self.host, self.port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_last_will(LastWill::new(
                status_topic,
                "offline",
                QoS::AtLeastOnce,
                true,
            ));
        if let Some(user) = &self.user {
            options.set_credentials(user, self.password.clone().unwrap_or_default());
        }
        if self.tls {
            let tls = TlsConfiguration::Rustls(Arc::new(self.tls_config()?));
            options.set_transport(Transport::tls_with_config(tls));
        }
        Ok(options)
    }
}

/// A name as one topic level. MQTT forbids `+` and `#` in a topic that is published to, `/`
/// would split the level, and MQTT forbids U+0000, the C0 and C1 controls and the Unicode
/// noncharacters in any topic (a broker drops the connection over them): those and `%` itself
/// become `%XX` (their UTF-8 bytes, upper-case hex), so U+FFFF is `%EF%BF%BF`. Everything else is
/// kept as it is, spaces and non-ASCII included (MQTT topics are UTF-8), so
/// `person/Lin-Manuel Miranda`.
pub fn topic_level(name: &str) -> Cow<'_, str> {
    let escaped = |c: char| matches!(c, '%' | '/' | '+' | '#') || !is_topic_text(c);
    if !name.contains(escaped) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if escaped(c) {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A Home Assistant object id for a person: an ASCII slug of the name, then 8 hex digits of its
/// SHA-256, so that "Zoë" and "Zoe" stay two entities.
pub fn person_object_id(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let slug = slug.trim_matches('_');
    let hash = Sha256::digest(name.as_bytes());
    let hex: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    if slug.is_empty() {
        format!("person_{hex}")
    } else {
        format!("person_{slug}_{hex}")
    }
}

/// Every topic the node publishes to, from its settings.
struct Topics {
    base: String,
    node: String,
    discovery: Option<String>,
}

impl Topics {
    fn status(&self) -> String {
        format!("{}/status", self.base)
    }
    fn events(&self) -> String {
        format!("{}/events", self.base)
    }
    /// A Home Assistant discovery topic of this launcher.
    fn is_discovery(&self, topic: &str) -> bool {
        self.discovery
            .as_deref()
            .is_some_and(|prefix| topic.starts_with(prefix) && topic.ends_with("/config"))
    }
    fn camera(&self, camera: &str, what: &str) -> String {
        format!("{}/{}/{what}", self.base, topic_level(camera))
    }
    fn person(&self, name: &str) -> String {
        format!("{}/person/{}", self.base, topic_level(name))
    }
    fn person_config(&self, prefix: &str, name: &str) -> String {
        format!(
            "{prefix}/sensor/{}/{}/config",
            self.node,
            person_object_id(name)
        )
    }
    fn camera_configs(&self, prefix: &str, camera: &str) -> [String; 2] {
        // Camera names are already plain ids (`validate_name`); this only guards the pattern.
        let object: String = camera
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        [
            format!(
                "{prefix}/binary_sensor/{}/{object}_unknown/config",
                self.node
            ),
            format!("{prefix}/sensor/{}/{object}_faces/config", self.node),
        ]
    }

    fn device(&self) -> serde_json::Value {
        json!({
            "identifiers": [format!("facerec_{}", self.node)],
            "name": format!("facerec {}", self.node),
            "manufacturer": "facerec",
            "model": "facerec-launcher",
            "sw_version": env!("CARGO_PKG_VERSION"),
        })
    }

    /// Availability, device and the rest every entity shares, merged into `fields`.
    fn entity(&self, mut fields: serde_json::Value) -> Bytes {
        let map = fields.as_object_mut().expect("an object");
        map.insert("availability_topic".into(), self.status().into());
        map.insert("payload_available".into(), "online".into());
        map.insert("payload_not_available".into(), "offline".into());
        map.insert("device".into(), self.device());
        Bytes::from(fields.to_string())
    }

    fn person_entity(&self, name: &str) -> Bytes {
        let object = person_object_id(name);
        let state = self.person(name);
        self.entity(json!({
            "name": name,
            "unique_id": format!("facerec_{}_{object}", self.node),
            "state_topic": state,
            "value_template": "{{ value_json.camera }}",
            "json_attributes_topic": state,
            "icon": "mdi:face-recognition",
        }))
    }

    fn camera_entities(&self, camera: &str) -> [Bytes; 2] {
        let id = format!("facerec_{}_{camera}", self.node);
        [
            self.entity(json!({
                "name": format!("{camera} unknown face"),
                "unique_id": format!("{id}_unknown"),
                "state_topic": self.camera(camera, "unknown"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "occupancy",
            })),
            self.entity(json!({
                "name": format!("{camera} faces"),
                "unique_id": format!("{id}_faces"),
                "state_topic": self.camera(camera, "faces"),
                "state_class": "measurement",
                "unit_of_measurement": "faces",
                "icon": "mdi:account-group",
            })),
        ]
    }
}

#[derive(Clone)]
struct Message {
    topic: String,
    payload: Bytes,
    retain: bool,
    /// The person an event names, so that erasing them drops it from the queue.
    person: Option<String>,
}

/// What waits for the broker.
#[derive(Default)]
struct Outbox {
    events: VecDeque<Message>,
    /// The latest value of every retained topic the launcher publishes (never empty).
    retained: BTreeMap<String, Bytes>,
    /// Retained topics whose latest value the broker has not acknowledged yet.
    dirty: BTreeSet<String>,
    /// Retained topics to clear (an empty retained message) once, then forget: a removed
    /// person's or camera's, or one left by an earlier run. Discovery configs (`true` first)
    /// before state, so that Home Assistant removes an entity before its state goes.
    clears: BTreeSet<(bool, String)>,
    /// The gallery's people, as last told.
    people: BTreeSet<String>,
    /// Who each camera has in view, as last published on its `people` topic.
    views: BTreeMap<String, BTreeSet<String>>,
}

impl Outbox {
    fn set(&mut self, topic: String, payload: Bytes) {
        if self.retained.get(&topic) != Some(&payload) {
            if !self.clears.is_empty() {
                self.clears.remove(&(true, topic.clone()));
                self.clears.remove(&(false, topic.clone()));
            }
            self.retained.insert(topic.clone(), payload);
            self.dirty.insert(topic);
        }
    }

    /// `topic` is cleared on the broker once and no longer published; `config`: it is a
    /// discovery config.
    fn clear(&mut self, topic: String, config: bool) {
        self.retained.remove(&topic);
        self.dirty.remove(&topic);
        self.clears.insert((!config, topic));
    }

    /// The next message to publish: retained state before events, `status` first of all.
    fn next(&mut self, status: &str) -> Option<Message> {
        let topic = if self.dirty.contains(status) {
            Some(status.to_string())
        } else {
            self.dirty.pop_first()
        };
        if let Some(topic) = topic {
            self.dirty.remove(&topic);
            let payload = self.retained.get(&topic).cloned().unwrap_or_default();
            return Some(Message {
                topic,
                payload,
                retain: true,
                person: None,
            });
        }
        if let Some((_, topic)) = self.clears.pop_first() {
            return Some(Message {
                topic,
                payload: Bytes::new(),
                retain: true,
                person: None,
            });
        }
        self.events.pop_front()
    }
}

struct Inner {
    topics: Topics,
    config: MqttConfig,
    outbox: Mutex<Outbox>,
    wake: tokio::sync::Notify,
    metrics: Arc<Metrics>,
}

/// Where the rest of the launcher hands MQTT its messages; never blocks.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

impl Handle {
    fn with(&self, change: impl FnOnce(&mut Outbox, &Topics)) {
        change(&mut lock(&self.inner.outbox), &self.inner.topics);
        self.inner.wake.notify_one();
    }

    /// A history event: on `events`, and as the person's last sighting.
    pub fn event(&self, event: &StoredEvent) {
        let payload = match serde_json::to_vec(event) {
            Ok(p) => Bytes::from(p),
            Err(_) => return,
        };
        let mut dropped = 0;
        self.with(|outbox, topics| {
            if outbox.events.len() >= self.inner.config.buffer {
                outbox.events.pop_front();
                dropped += 1;
            }
            outbox.events.push_back(Message {
                topic: topics.events(),
                payload,
                retain: false,
                person: Some(event.name.clone()),
            });
            let sighting = matches!(
                event.kind,
                EventKind::Named | EventKind::Renamed | EventKind::Ended
            ) && event.name != facerec_core::gallery::UNKNOWN
                // An `ended` event can follow the person's removal from the gallery: their
                // cleared topic stays cleared.
                && outbox.people.contains(&event.name);
            if sighting {
                let seen = json!({
                    "name": event.name,
                    "camera": event.camera,
                    "last_seen": rfc3339_ms(event.last_seen_ms),
                    "event_id": event.id,
                });
                outbox.set(topics.person(&event.name), Bytes::from(seen.to_string()));
            }
        });
        if dropped > 0 {
            self.inner.metrics.mqtt.dropped.inc_by(dropped);
        }
    }

    /// Who a camera has in view now.
    pub fn presence(&self, camera: &str, presence: &Presence) {
        self.with(|outbox, topics| {
            outbox.set_view(topics, camera, presence.people.clone());
            let unknown = if presence.unknown { "ON" } else { "OFF" };
            outbox.set(topics.camera(camera, "unknown"), Bytes::from(unknown));
            outbox.set(
                topics.camera(camera, "faces"),
                Bytes::from(presence.faces.to_string()),
            );
        });
    }

    /// A camera was added: its entities, and an empty view until its first frame.
    pub fn camera_added(&self, camera: &str) {
        self.presence(camera, &Presence::default());
        if let Some(prefix) = &self.inner.topics.discovery {
            self.with(|outbox, topics| {
                let configs = topics.camera_configs(prefix, camera);
                for (topic, payload) in configs.into_iter().zip(topics.camera_entities(camera)) {
                    outbox.set(topic, payload);
                }
            });
        }
    }

    /// A camera was removed for good: its entities and state are cleared.
    pub fn camera_removed(&self, camera: &str) {
        self.with(|outbox, topics| {
            outbox.views.remove(camera);
            for what in ["people", "unknown", "faces"] {
                outbox.clear(topics.camera(camera, what), false);
            }
            if let Some(prefix) = &topics.discovery {
                for topic in topics.camera_configs(prefix, camera) {
                    outbox.clear(topic, true);
                }
            }
        });
    }

    /// The gallery's people: a sensor each; those no longer in it are cleared.
    pub fn people(&self, names: BTreeSet<String>) {
        self.with(|outbox, topics| {
            let removed: Vec<String> = outbox.people.difference(&names).cloned().collect();
            for name in &removed {
                outbox.clear_person(topics, name);
            }
            if let Some(prefix) = &topics.discovery {
                for name in &names {
                    outbox.set(
                        topics.person_config(prefix, name),
                        topics.person_entity(name),
                    );
                }
            }
            outbox.people = names;
        });
    }

    /// A person was erased: their last sighting and their Home Assistant entity are cleared on
    /// the broker, they are no longer announced (not after a reconnect either), the events
    /// naming them that still wait are dropped, and the cameras' `people` lists lose their name.
    /// A gallery that still holds them announces them again: tell this after the gallery lost
    /// them.
    pub fn person_erased(&self, name: &str) {
        self.with(|outbox, topics| {
            outbox.people.remove(name);
            outbox.clear_person(topics, name);
            outbox.events.retain(|m| m.person.as_deref() != Some(name));
            let cameras: Vec<String> = outbox
                .views
                .iter()
                .filter(|(_, people)| people.contains(name))
                .map(|(camera, _)| camera.clone())
                .collect();
            for camera in cameras {
                let mut people = outbox.views[&camera].clone();
                people.remove(name);
                outbox.set_view(topics, &camera, people);
            }
        });
    }

    /// A retained message found on the broker under this node's topics (from an earlier run):
    /// a person no longer in the gallery is cleared, once (it is not kept: what others publish
    /// there never grows the launcher's memory). Only people: a camera added through the API
    /// comes back when it registers again, and clearing its entities meanwhile would make Home
    /// Assistant forget them.
    fn leftover(&self, topic: &str) {
        let inner = &self.inner;
        let topics = &inner.topics;
        let person_config = topics.discovery.as_deref().is_some_and(|prefix| {
            topic
                .strip_prefix(&format!("{prefix}/sensor/{}/person_", topics.node))
                .is_some_and(|rest| rest.ends_with("/config"))
        });
        let person_state = topic
            .strip_prefix(&format!("{}/person/", topics.base))
            .is_some_and(|rest| !rest.contains('/'));
        if !person_config && !person_state {
            return;
        }
        let mut outbox = lock(&inner.outbox);
        let known = outbox.retained.contains_key(topic)
            || outbox.people.iter().any(|name| {
                topics.person(name) == topic
                    || topics
                        .discovery
                        .as_deref()
                        .is_some_and(|p| topics.person_config(p, name) == topic)
            });
        if !known && outbox.clears.len() < MAX_LEFTOVER_CLEARS {
            outbox.clear(topic.to_string(), person_config);
            drop(outbox);
            inner.wake.notify_one();
        }
    }
}

impl Outbox {
    /// A person's last sighting and Home Assistant entity, cleared.
    fn clear_person(&mut self, topics: &Topics, name: &str) {
        self.clear(topics.person(name), false);
        if let Some(prefix) = &topics.discovery {
            self.clear(topics.person_config(prefix, name), true);
        }
    }

    /// A camera's `people` topic: the names in view, as a sorted JSON array.
    fn set_view(&mut self, topics: &Topics, camera: &str, people: BTreeSet<String>) {
        let payload = serde_json::to_string(&people).expect("strings");
        self.set(topics.camera(camera, "people"), Bytes::from(payload));
        self.views.insert(camera.to_string(), people);
    }
}

impl EventSink for Handle {
    fn recognition(&self, event: &StoredEvent) {
        self.event(event);
    }

    fn presence(&self, camera: &str, presence: &Presence) {
        Handle::presence(self, camera, presence);
    }

    fn camera_added(&self, camera: &str) {
        Handle::camera_added(self, camera);
    }

    fn camera_removed(&self, camera: &str) {
        Handle::camera_removed(self, camera);
    }

    /// MQTT announces the gallery's people.
    fn gallery_changed(&self, path: &Path) {
        self.people(gallery_people(Some(path)));
    }

    fn person_erased(&self, name: &str) {
        Handle::person_erased(self, name);
    }
}

/// The topic filters whose retained messages tell which people an earlier run announced.
fn leftover_filters(topics: &Topics) -> Vec<String> {
    let mut filters = vec![format!("{}/person/+", topics.base)];
    if let Some(prefix) = &topics.discovery {
        filters.push(format!("{prefix}/sensor/{}/+/config", topics.node));
    }
    filters
}

/// The broker's refusal or the transport's failure, in words an operator can act on.
fn describe(error: &ConnectionError, url: &str, was_connected: bool) -> String {
    match error {
        ConnectionError::ConnectionRefused(code) => {
            let why = match code {
                ConnectReturnCode::BadUserNamePassword => {
                    "bad user name or password (check the user name and password)"
                }
                ConnectReturnCode::NotAuthorized => {
                    "not authorized (check the user name and password)"
                }
                ConnectReturnCode::BadClientId => "the client id was rejected (--mqtt-client-id)",
                ConnectReturnCode::RefusedProtocolVersion => "it does not speak MQTT 3.1.1",
                ConnectReturnCode::ServiceUnavailable => "the service is unavailable",
                ConnectReturnCode::Success => "no reason given",
            };
            format!("MQTT broker {url} refused the connection: {why}")
        }
        ConnectionError::Tls(e) => {
            let text = e.to_string();
            let hint = if text.contains("UnknownIssuer") {
                " (the broker's CA is neither in the system store nor in --mqtt-ca-file)"
            } else {
                ""
            };
            format!("MQTT TLS with {url} failed: {text}{hint}")
        }
        e if was_connected => format!("MQTT connection to {url} lost: {e}"),
        e => format!("MQTT broker {url} cannot be reached: {e}"),
    }
}

/// Starts the publisher task with the gallery's people; it ends (after `offline`) when
/// `shutdown` is cancelled.
pub fn start(
    config: MqttConfig,
    people: BTreeSet<String>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(Handle, tokio::task::JoinHandle<()>)> {
    let topics = Topics {
        base: format!("{}/{}", config.prefix, config.node_id),
        node: config.node_id.clone(),
        discovery: config.discovery.clone(),
    };
    let options = config.options(&topics.status())?;
    let inner = Arc::new(Inner {
        topics,
        config,
        outbox: Mutex::new(Outbox::default()),
        wake: tokio::sync::Notify::new(),
        metrics,
    });
    let handle = Handle { inner };
    lock(&handle.inner.outbox).set(handle.inner.topics.status(), Bytes::from("online"));
    // Before the first connection, so that what an earlier run left is judged against them.
    handle.people(people);
    // One request at a time is in flight, plus subscriptions and the final offline.
    let (client, eventloop) = AsyncClient::new(options, 8);
    let task = tokio::spawn(run(handle.clone(), client, eventloop, shutdown));
    Ok((handle, task))
}

async fn run(
    handle: Handle,
    client: AsyncClient,
    mut eventloop: EventLoop,
    shutdown: CancellationToken,
) {
    let inner = &handle.inner;
    let url = inner.config.display_url();
    let status = inner.topics.status();
    let metrics = &inner.metrics.mqtt;
    let mut connected = false;
    let mut in_flight: Option<Message> = None;
    let mut backoff = BACKOFF_START;
    let mut last_problem: Option<String> = None;
    // Cleared for good once the broker sent something the launcher cannot read: what it
    // subscribes to is then no longer read, or the broker would send it again on every
    // connection.
    let mut watch_leftovers = true;
    // Messages the broker would not take were logged (the first as a warning).
    let mut refused_before = false;
    let mut strikes = Strikes::default();
    loop {
        if connected && in_flight.is_none() {
            let next = lock(&inner.outbox).next(&status);
            if let Some(message) = next {
                if let Some(why) = unpublishable(&message.topic, message.payload.len()) {
                    drop_message(&handle, message, &why, &mut refused_before);
                    continue;
                }
                let qos = QoS::AtLeastOnce;
                let sent = client.try_publish(
                    message.topic.clone(),
                    qos,
                    message.retain,
                    message.payload.clone(),
                );
                match sent {
                    Ok(()) => in_flight = Some(message),
                    // Not taken (the request queue is full): it waits for the next turn.
                    Err(_) => requeue(&handle, Some(message)),
                }
            }
        }
        let idle = connected && in_flight.is_none();
        tokio::select! {
            polled = eventloop.poll() => match polled {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    backoff = BACKOFF_START;
                    last_problem = None;
                    metrics.connected.set(1);
                    tracing::info!("MQTT connected to {url}");
                    // A new session: the broker may have lost everything retained.
                    let mut outbox = lock(&inner.outbox);
                    let all: Vec<String> = outbox.retained.keys().cloned().collect();
                    outbox.dirty.extend(all);
                    drop(outbox);
                    if watch_leftovers {
                        for filter in leftover_filters(&inner.topics) {
                            let _ = client.try_subscribe(filter, QoS::AtLeastOnce);
                        }
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    if let Some(message) = in_flight.take() {
                        strikes.acknowledged(&message);
                        metrics.published.inc();
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if p.retain && !p.payload.is_empty() {
                        handle.leftover(&p.topic);
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {}
                Ok(_) => {}
                Err(e) => {
                    let unreadable = unreadable(&e);
                    let problem = match unreadable {
                        Some(why) if watch_leftovers => {
                            watch_leftovers = false;
                            format!(
                                "MQTT connection to {url} lost: the broker sent a message the \
                                 launcher cannot read ({why}; the limit is {MAX_PACKET} bytes); \
                                 reconnecting without looking for retained topics left by an \
                                 earlier run"
                            )
                        }
                        _ => describe(&e, &url, connected),
                    };
                    if last_problem.as_deref() != Some(problem.as_str()) {
                        tracing::warn!("{problem}");
                        last_problem = Some(problem);
                    } else {
                        tracing::debug!("{problem}");
                    }
                    connected = false;
                    metrics.connected.set(0);
                    match in_flight.take() {
                        // The connection did not end over what was sent.
                        Some(message) if unreadable.is_some() => requeue(&handle, Some(message)),
                        Some(message) => match strikes.lost(message) {
                            Ok(message) => requeue(&handle, Some(message)),
                            Err(message) => {
                                let why = format!(
                                    "the connection was lost {POISON_STRIKES} times while it \
                                     was sent (the broker refuses it)"
                                );
                                drop_message(&handle, message, &why, &mut refused_before);
                            }
                        },
                        None => {}
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            },
            _ = inner.wake.notified(), if idle => {}
            _ = shutdown.cancelled() => {
                if connected {
                    go_offline(&client, &mut eventloop, &status, in_flight.is_some()).await;
                }
                metrics.connected.set(0);
                return;
            }
        }
    }
}

/// The broker sent a packet the launcher cannot read (over [`MAX_PACKET`], or malformed), as
/// opposed to a connection that failed.
fn unreadable(error: &ConnectionError) -> Option<&rumqttc::mqttbytes::Error> {
    match error {
        ConnectionError::MqttState(StateError::Deserialization(e))
            if !matches!(e, rumqttc::mqttbytes::Error::OutgoingPacketTooLarge { .. }) =>
        {
            Some(e)
        }
        _ => None,
    }
}

/// A message no broker takes, or this one refuses: dropped, so that it is not sent forever,
/// with a warning (the first; later ones at debug level). An event counts as dropped; a
/// retained value stays the latest (it is tried again on the next connection).
fn drop_message(handle: &Handle, message: Message, why: &str, warned: &mut bool) {
    let what = format!("MQTT: dropped a message for {:?}: {why}", message.topic);
    if *warned {
        tracing::debug!("{what}");
    } else {
        tracing::warn!("{what}");
        *warned = true;
    }
    if !message.retain {
        handle.inner.metrics.mqtt.dropped.inc();
    }
}

/// How often the connection was lost while each message was in flight, since it was last
/// acknowledged: a broker that closes the connection over a message (a topic or a size it
/// refuses) would otherwise get it again after every reconnect, forever.
#[derive(Default)]
struct Strikes(std::collections::HashMap<(String, Option<Bytes>), u32>);

impl Strikes {
    /// A retained topic is one message whatever its value; an event is its payload.
    fn key(message: &Message) -> (String, Option<Bytes>) {
        let event = (!message.retain).then(|| message.payload.clone());
        (message.topic.clone(), event)
    }

    fn acknowledged(&mut self, message: &Message) {
        if !self.0.is_empty() {
            self.0.remove(&Strikes::key(message));
        }
    }

    /// The connection was lost with `message` in flight: `Ok` to send it again, `Err` when
    /// that happened [`POISON_STRIKES`] times.
    fn lost(&mut self, message: Message) -> Result<Message, Message> {
        if self.0.len() >= 64 {
            // Only lost messages that were never acknowledged since are here: events dropped
            // from a full buffer meanwhile, for instance.
            self.0.clear();
        }
        let key = Strikes::key(&message);
        let count = self.0.entry(key.clone()).or_default();
        *count += 1;
        if *count >= POISON_STRIKES {
            self.0.remove(&key);
            Err(message)
        } else {
            Ok(message)
        }
    }
}

/// A message the broker never acknowledged goes back to the front of its queue.
fn requeue(handle: &Handle, message: Option<Message>) {
    let Some(message) = message else { return };
    let mut outbox = lock(&handle.inner.outbox);
    if message.retain {
        if outbox.retained.contains_key(&message.topic) {
            // Its latest value is published again (it may have changed since).
            outbox.dirty.insert(message.topic);
        } else {
            // A clear, or a topic cleared since: cleared once.
            let config = handle.inner.topics.is_discovery(&message.topic);
            outbox.clears.insert((!config, message.topic));
        }
    } else {
        if outbox.events.len() >= handle.inner.config.buffer {
            // The message put back is the oldest: it is the one dropped.
            handle.inner.metrics.mqtt.dropped.inc();
            return;
        }
        outbox.events.push_front(message);
    }
}

/// `offline` on a clean shutdown, acknowledged before the disconnect (the last will only
/// covers a connection that drops).
async fn go_offline(
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    status: &str,
    one_in_flight: bool,
) {
    let published = client.try_publish(status, QoS::AtLeastOnce, true, "offline");
    let _ = tokio::time::timeout(OFFLINE_ACK_WAIT, async {
        if published.is_err() {
            return;
        }
        // Acknowledgements come in order: the message in flight (if any), then `offline`.
        let mut acks_left = 1 + usize::from(one_in_flight);
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::PubAck(_)) = event {
                acks_left -= 1;
                if acks_left == 0 {
                    break;
                }
            }
        }
    })
    .await;
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
}

/// The names in a gallery file, for the people's entities.
pub fn gallery_people(path: Option<&Path>) -> BTreeSet<String> {
    path.and_then(|p| facerec_core::gallery::Gallery::load(p).ok())
        .map(|g| g.people.into_iter().map(|p| p.name).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_topic_level() {
        assert_eq!(topic_level("Lin-Manuel Miranda"), "Lin-Manuel Miranda");
        assert_eq!(topic_level("Zoë"), "Zoë");
        assert_eq!(topic_level("a/b"), "a%2Fb");
        assert_eq!(topic_level("C++"), "C%2B%2B");
        assert_eq!(topic_level("#hash"), "%23hash");
        assert_eq!(topic_level("100%"), "100%25");
        assert_eq!(topic_level("tab\there\u{7f}"), "tab%09here%7F");
        assert!(matches!(topic_level("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn topic_levels_never_hold_what_mqtt_forbids() {
        // Noncharacters (UTF-8 bytes escaped), C1 controls; private use and other planes kept.
        assert_eq!(topic_level("Zoë\u{FFFF}\u{FDD0}"), "Zoë%EF%BF%BF%EF%B7%90");
        assert_eq!(topic_level("\u{FDEF}\u{FFFE}"), "%EF%B7%AF%EF%BF%BE");
        assert_eq!(
            topic_level("a\u{1FFFE}\u{10FFFF}"),
            "a%F0%9F%BF%BE%F4%8F%BF%BF"
        );
        assert_eq!(topic_level("\u{85}\u{9F}\u{A0}"), "%C2%85%C2%9F\u{A0}");
        assert_eq!(
            topic_level("\u{FDCF}\u{FDF0}\u{FFFD}\u{E000}"),
            "\u{FDCF}\u{FDF0}\u{FFFD}\u{E000}"
        );
        // Every code point: what is kept is allowed, and nothing else is left.
        for n in 0..=0x10FFFFu32 {
            let Some(c) = char::from_u32(n) else { continue };
            let level = topic_level(c.encode_utf8(&mut [0; 4])).into_owned();
            assert!(level.chars().all(is_topic_text), "U+{n:04X}: {level:?}");
            assert!(
                unpublishable(&format!("t/{level}"), 10).is_none(),
                "U+{n:04X}"
            );
        }
    }

    #[test]
    fn unpublishable_messages_are_told_apart() {
        assert_eq!(unpublishable("facerec/n/events", 1000), None);
        assert!(unpublishable("t/\u{FFFF}", 1).unwrap().contains("U+FFFF"));
        assert!(unpublishable("t/\u{0}", 1).unwrap().contains("U+0000"));
        assert!(unpublishable("t/+", 1).unwrap().contains("U+002B"));
        assert!(unpublishable("", 1).is_some());
        assert!(unpublishable(&"a".repeat(MAX_TOPIC + 1), 1).is_some());
        assert!(unpublishable("t", MAX_PACKET).unwrap().contains("over the"));
        assert_eq!(unpublishable("t", MAX_PACKET - 10), None);
    }

    #[test]
    fn clears_are_sent_once_and_forgotten() {
        let mut outbox = Outbox::default();
        outbox.set("t/person/a".into(), Bytes::from("{}"));
        outbox.clear("t/person/a".into(), false);
        outbox.clear("ha/sensor/n/person_a/config".into(), true);
        outbox.clear("t/person/leftover".into(), false);
        let sent: Vec<(String, usize)> = std::iter::from_fn(|| outbox.next("t/status"))
            .map(|m| {
                assert!(m.retain);
                (m.topic, m.payload.len())
            })
            .collect();
        // The discovery config first, so that Home Assistant drops the entity before its state.
        assert_eq!(
            sent,
            [
                ("ha/sensor/n/person_a/config".to_string(), 0),
                ("t/person/a".to_string(), 0),
                ("t/person/leftover".to_string(), 0)
            ]
        );
        // A new connection republishes what is retained, not what was cleared.
        assert!(outbox.retained.is_empty());
        // Set again before its clear went out: the clear is gone.
        outbox.clear("t/person/b".into(), false);
        outbox.set("t/person/b".into(), Bytes::from("1"));
        let sent: Vec<String> = std::iter::from_fn(|| outbox.next("t/status"))
            .map(|m| format!("{} {:?}", m.topic, m.payload))
            .collect();
        assert_eq!(sent, ["t/person/b b\"1\""]);
    }

    #[test]
    fn a_message_the_broker_drops_the_connection_over_is_dropped_on_the_third_time() {
        let message = |topic: &str, payload: &str, retain| Message {
            topic: topic.into(),
            payload: Bytes::from(payload.to_string()),
            retain,
            person: None,
        };
        let mut strikes = Strikes::default();
        let bad = message("t/bad", "x", true);
        assert!(strikes.lost(bad.clone()).is_ok());
        // Other messages acknowledged in between do not reset it.
        strikes.acknowledged(&message("t/status", "online", true));
        assert!(strikes.lost(bad.clone()).is_ok());
        assert!(strikes.lost(message("t/events", "1", false)).is_ok());
        assert!(strikes.lost(message("t/bad", "new value", true)).is_err());
        // Acknowledged: it starts again.
        assert!(strikes.lost(message("t/events", "1", false)).is_ok());
        strikes.acknowledged(&message("t/events", "1", false));
        assert!(strikes.lost(message("t/events", "1", false)).is_ok());
        assert!(strikes.lost(message("t/events", "1", false)).is_ok());
        // Another event is another message.
        assert!(strikes.lost(message("t/events", "2", false)).is_ok());
        assert!(strikes.lost(message("t/events", "1", false)).is_err());
    }

    #[test]
    fn prefixes_mqtt_forbids_are_refused() {
        for bad in ["a\u{FFFF}", "a\u{1}b", "x/\u{FDD0}"] {
            let err = check_prefix("--mqtt-prefix", bad).unwrap_err().to_string();
            assert!(err.contains("MQTT does not allow U+"), "{bad:?}: {err}");
        }
        check_prefix("--mqtt-prefix", "site/zoë").unwrap();
    }

    #[test]
    fn person_ids_are_plain_and_distinct() {
        let zoe = person_object_id("Zoë");
        let zoe_ascii = person_object_id("Zoe");
        assert!(zoe.starts_with("person_zo_"), "{zoe}");
        assert_ne!(zoe, zoe_ascii);
        let miranda = person_object_id("Lin-Manuel Miranda");
        assert!(
            miranda.starts_with("person_lin_manuel_miranda_"),
            "{miranda}"
        );
        assert_eq!(miranda.len(), "person_lin_manuel_miranda_".len() + 8);
        for id in [zoe, zoe_ascii, miranda, person_object_id("李小龙")] {
            assert!(is_plain_id(&id), "{id}");
        }
    }

    fn args(url: &str) -> MqttArgs {
        MqttArgs {
            mqtt_url: Some(url.into()),
            mqtt_password_file: None,
            mqtt_ca_file: None,
            mqtt_client_id: None,
            mqtt_node_id: Some("node-1".into()),
            mqtt_prefix: "facerec".into(),
            mqtt_buffer: 10,
            mqtt_discovery: true,
            mqtt_discovery_prefix: "homeassistant".into(),
        }
    }

    fn error(args: &MqttArgs) -> String {
        format!("{:#}", MqttConfig::from_args(args).unwrap_err())
    }

    #[test]
    fn urls_are_parsed_and_the_password_never_shown() {
        let c = MqttConfig::from_args(&args("mqtt://facerec:s%40cret@broker.lan"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.tls),
            ("broker.lan", 1883, false)
        );
        assert_eq!(c.password.as_deref(), Some("s@cret"));
        assert_eq!(c.display_url(), "mqtt://facerec@broker.lan:1883");
        assert!(!format!("{c:?}").contains("cret"));
        assert_eq!(c.client_id, "facerec-node-1");
        let c = MqttConfig::from_args(&args("mqtt://[::1]:1999"))
            .unwrap()
            .unwrap();
        assert_eq!(c.display_url(), "mqtt://[::1]:1999");
        assert!(MqttConfig::from_args(&args("")).unwrap().is_none());
    }

    #[test]
    fn bad_settings_are_one_clear_error() {
        assert_eq!(
            error(&args("ftp://host")),
            "--mqtt: unsupported scheme ftp://; use mqtt:// or mqtts://"
        );
        assert_eq!(
            error(&args("mqtt://host/topic")),
            "--mqtt: the URL must be only mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]"
        );
        assert_eq!(
            error(&args("mqtt://:pw@host")),
            "--mqtt: a password needs a user name: mqtt://USER@HOST"
        );
        let mut a = args("mqtt://host");
        a.mqtt_node_id = Some(String::new());
        assert_eq!(
            error(&a),
            "--mqtt-node-id must be 1 to 253 characters (default: the host name)"
        );
        a.mqtt_node_id = Some("cam1.site.lan/+#".into());
        let c = MqttConfig::from_args(&a).unwrap().unwrap();
        assert_eq!(c.node_id, "cam1_site_lan___");
        let mut a = args("mqtt://host");
        a.mqtt_prefix = "site/+".into();
        assert!(error(&a).starts_with("--mqtt-prefix \"site/+\" is not a valid topic prefix"));
        let mut a = args("mqtt://u@host");
        a.mqtt_password_file = Some("/nonexistent/pw".into());
        assert!(
            error(&a).starts_with("cannot read the MQTT password file /nonexistent/pw: "),
            "{}",
            error(&a)
        );
        let mut a = args("mqtt://host");
        a.mqtt_ca_file = Some("/etc/hostname".into());
        assert_eq!(error(&a), "--mqtt-ca-file is only used with mqtts://");
        let mut a = args("mqtts://host");
        a.mqtt_ca_file = Some("/etc/hostname".into());
        assert_eq!(
            error(&a),
            "--mqtt-ca-file /etc/hostname holds no PEM certificate"
        );
    }

    #[test]
    fn the_password_file_replaces_the_urls() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let file = dir.join("password");
        std::fs::write(&file, "from-file\n").unwrap();
        let mut a = args("mqtt://facerec:from-url@host");
        a.mqtt_password_file = Some(file);
        let c = MqttConfig::from_args(&a).unwrap().unwrap();
        assert_eq!(c.password.as_deref(), Some("from-file"));
    }

    #[test]
    fn retained_state_is_sent_before_events_and_status_first() {
        let mut outbox = Outbox::default();
        outbox.events.push_back(Message {
            topic: "t/events".into(),
            payload: Bytes::from("e"),
            retain: false,
            person: None,
        });
        outbox.set("t/a".into(), Bytes::from("1"));
        outbox.set("t/status".into(), Bytes::from("online"));
        // The same value again is no new message.
        let next: Vec<String> = std::iter::from_fn(|| outbox.next("t/status"))
            .map(|m| m.topic)
            .collect();
        assert_eq!(next, ["t/status", "t/a", "t/events"]);
        outbox.set("t/a".into(), Bytes::from("1"));
        assert!(outbox.next("t/status").is_none());
    }
}
