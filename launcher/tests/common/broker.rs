//! A real MQTT broker for the tests: Debian's `mosquitto` on a free loopback port, with a
//! password file and persistence, so that a broker stopped (SIGTERM) and started again on the
//! same port keeps its retained messages and persistent sessions. Clients are the real
//! `mosquitto_sub` / `mosquitto_pub`.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use facerec_core::testsupport::on_ci;
use serde_json::Value;

pub const USER: &str = "facerec";
/// Distinctive, so that a test can search the launcher's output for it.
pub const PASSWORD: &str = "Pw-7Qx2-mqtt-s3cret";

/// The Debian tools the tests run. Missing: a loud skip outside CI, a failure under CI.
pub fn mosquitto_ready() -> bool {
    let missing: Vec<&str> = [
        "mosquitto",
        "mosquitto_sub",
        "mosquitto_pub",
        "mosquitto_passwd",
    ]
    .into_iter()
    .filter(|tool| {
        Command::new(tool)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
    })
    .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{missing:?} not found: install the Debian packages mosquitto and mosquitto-clients"
    );
    if on_ci() {
        panic!("{message} (required under CI)");
    }
    eprintln!("SKIPPED: {message}");
    false
}

fn unique(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    pub fn start(tag: &str) -> Broker {
        let dir = std::env::temp_dir().join(format!("facerec-mqtt-{}", unique(tag)));
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let passwords = dir.join("passwords");
        let made = Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&passwords)
            .args([USER, PASSWORD])
            .output()
            .unwrap();
        assert!(made.status.success(), "mosquitto_passwd: {made:?}");
        let port = free_port();
        // `user root`: a broker started as root would otherwise switch to the `mosquitto` user,
        // which cannot read this folder; it has no effect for other users.
        std::fs::write(
            dir.join("mosquitto.conf"),
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n\
                 persistence true\npersistence_location {}/\nuser root\nlog_dest stderr\n\
                 log_type error\nlog_type warning\nlog_type notice\nlog_type information\n",
                passwords.display(),
                dir.join("db").display()
            ),
        )
        .unwrap();
        let mut broker = Broker {
            port,
            dir,
            child: None,
        };
        broker.run();
        broker
    }

    /// Starts mosquitto and waits until it accepts connections.
    fn run(&mut self) {
        assert!(self.child.is_none(), "the broker already runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))
            .unwrap();
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto starts");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("mosquitto exited ({status}):\n{}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto does not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// The broker's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// SIGTERM, as a service manager stops it: mosquitto saves its persistence file and exits.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("the broker runs");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto ignores SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same port, with what it persisted.
    pub fn restart(&mut self) {
        self.run();
    }

    pub fn url(&self) -> String {
        self.url_with_password(PASSWORD)
    }

    pub fn url_with_password(&self, password: &str) -> String {
        format!("mqtt://{USER}:{password}@127.0.0.1:{}", self.port)
    }

    fn client(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-u", USER, "-P", PASSWORD]);
        cmd
    }

    /// Publishes one message with QoS 1; `None` is an empty payload.
    pub fn publish(&self, topic: &str, payload: Option<&str>, retain: bool) {
        let mut cmd = self.client("mosquitto_pub");
        cmd.args(["-q", "1", "-t", topic]);
        match payload {
            Some(p) => cmd.args(["-m", p]),
            None => cmd.arg("-n"),
        };
        if retain {
            cmd.arg("-r");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "mosquitto_pub: {out:?}");
    }

    /// Publishes one message of any size with QoS 1 (read by `mosquitto_pub -s` from its
    /// standard input, as a command line could not hold it).
    pub fn publish_bytes(&self, topic: &str, payload: &[u8], retain: bool) {
        let mut cmd = self.client("mosquitto_pub");
        cmd.args(["-q", "1", "-t", topic, "-s"]);
        if retain {
            cmd.arg("-r");
        }
        let out = super::pipe_through(&mut cmd, payload);
        assert!(out.status.success(), "mosquitto_pub -s: {out:?}");
    }

    /// How many times the client `client_id` connected, from the broker's log: a client that
    /// stayed connected did once.
    pub fn connections(&self, client_id: &str) -> usize {
        let tail = format!(" as {client_id} (");
        self.log()
            .lines()
            .filter(|l| l.contains("New client connected from") && l.contains(&tail))
            .count()
    }

    /// A subscriber with a fixed client id and a persistent session (`-c`, QoS 1): messages
    /// published while it (or the broker) is away are kept for it. It has subscribed when this
    /// returns.
    pub fn subscribe(&self, client_id: &str, filters: &[&str]) -> Subscriber {
        self.subscribe_with(client_id, filters, &[])
    }

    /// [`Broker::subscribe`] over MQTT 5 with "retain as published": each message keeps the
    /// retain flag its publisher set (MQTT 3.1.1 clears it on messages that were not sent for a
    /// new subscription), so a test sees how every message was published.
    pub fn subscribe_as_published(&self, client_id: &str, filters: &[&str]) -> Subscriber {
        self.subscribe_with(client_id, filters, &["-V", "5", "--retain-as-published"])
    }

    fn subscribe_with(&self, client_id: &str, filters: &[&str], options: &[&str]) -> Subscriber {
        let probe = format!("facerec-test-probe/{client_id}");
        let mut cmd = self.client("mosquitto_sub");
        cmd.args(options);
        cmd.args(["-i", client_id, "-c", "-q", "1", "-F", "%j", "-t", &probe]);
        for f in filters {
            cmd.args(["-t", f]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub starts");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                let message = Message::parse(&line);
                sink.lock().unwrap().push(message);
            }
        });
        let subscriber = Subscriber {
            child,
            messages,
            probe,
        };
        // Subscribed once a probe published now comes back.
        let start = Instant::now();
        while !subscriber.all().iter().any(|m| m.topic == subscriber.probe) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto_sub {client_id} never subscribed:\n{}",
                self.log()
            );
            self.publish(&subscriber.probe, Some("probe"), false);
            std::thread::sleep(Duration::from_millis(100));
        }
        subscriber
    }

    /// What a subscriber that connects now gets at once: the retained messages under `filter`,
    /// by topic (an empty retained payload deletes a topic, so it never shows here).
    pub fn retained(&self, filter: &str) -> std::collections::BTreeMap<String, Message> {
        let out = self
            .client("mosquitto_sub")
            .args(["-q", "1", "-F", "%j", "-W", "2", "-t", filter])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        // -W ends it with "Timed out" (status 27); anything else is a failure.
        assert_eq!(out.status.code(), Some(27), "mosquitto_sub -W: {out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(Message::parse)
            .filter(|m| m.retain)
            .map(|m| (m.topic.clone(), m))
            .collect()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One message as `mosquitto_sub -F %j` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: String,
    /// `None` for an empty payload (how a retained message is cleared).
    pub payload: Option<String>,
    pub retain: bool,
    pub qos: u64,
    /// When the test read it.
    pub received: Instant,
}

impl Message {
    fn parse(line: &str) -> Message {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("mosquitto_sub printed {line:?}: {e}"));
        Message {
            topic: v["topic"].as_str().unwrap().to_string(),
            payload: v["payload"].as_str().map(str::to_string),
            retain: v["retain"].as_u64().unwrap() == 1,
            qos: v["qos"].as_u64().unwrap(),
            received: Instant::now(),
        }
    }

    pub fn text(&self) -> &str {
        self.payload.as_deref().unwrap_or("")
    }

    /// The payload as JSON (panics with the message if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(self.text())
            .unwrap_or_else(|e| panic!("{} is not JSON: {:?}: {e}", self.topic, self.payload))
    }
}

pub struct Subscriber {
    child: Child,
    messages: Arc<Mutex<Vec<Message>>>,
    probe: String,
}

impl Subscriber {
    fn all(&self) -> Vec<Message> {
        self.messages.lock().unwrap().clone()
    }

    /// Every message received so far, in order (the readiness probes left out).
    pub fn messages(&self) -> Vec<Message> {
        self.all()
            .into_iter()
            .filter(|m| m.topic != self.probe)
            .collect()
    }

    /// The messages on one topic, in order.
    pub fn on(&self, topic: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.topic == topic)
            .collect()
    }

    /// Waits up to `timeout` for a message that `wanted` accepts.
    pub fn wait(
        &self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&Message) -> bool,
    ) -> Message {
        let start = Instant::now();
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| wanted(m)) {
                return m;
            }
            if start.elapsed() > timeout {
                let seen: Vec<String> = self
                    .messages()
                    .iter()
                    .rev()
                    .take(40)
                    .map(|m| format!("{} {:?}", m.topic, m.payload))
                    .collect();
                panic!("no MQTT message {what} within {timeout:?}; the last ones: {seen:#?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
