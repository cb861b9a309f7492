//! mqtts:// against a real mosquitto with a certificate from a private CA (made here with the
//! openssl CLI): trusted through --mqtt-ca-file, refused without it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::{Launcher, launcher_command, metric_value, ready, temp_dir};

fn tools_present() -> bool {
    let found = ["mosquitto", "mosquitto_sub", "openssl"]
        .iter()
        .all(|tool| {
            Command::new("sh")
                .args([
                    "-c",
                    &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
                ])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    if !found {
        assert!(
            !facerec_core::testsupport::on_ci(),
            "mosquitto, mosquitto-clients and openssl are needed (deploy/setup.sh --test-tools)"
        );
        eprintln!("SKIPPED: mosquitto, mosquitto_sub or openssl missing");
    }
    found
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a server certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    let ssl = |args: &str| {
        run(Command::new("openssl")
            .current_dir(dir)
            .args(args.split_whitespace()))
    };
    ssl(
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=facerec-test-CA -keyout ca.key -out ca.pem",
    );
    ssl("req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr");
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    ssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem",
    );
    // mosquitto started as root reads its key after dropping to the mosquitto user.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Broker {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Broker {
    /// What mosquitto logged (connections, TLS errors).
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// mosquitto with only a TLS listener on loopback.
fn tls_broker(dir: &Path) -> Broker {
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
            dir.display()
        ),
    )
    .unwrap();
    let mosquitto = if Path::new("/usr/sbin/mosquitto").exists() {
        "/usr/sbin/mosquitto"
    } else {
        "mosquitto"
    };
    let log = dir.join("mosquitto.log");
    let child = Command::new(mosquitto)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("mosquitto starts");
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "mosquitto did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker { child, port, log }
}

/// A launcher without cameras (MQTT needs none), its stderr lines as they come.
fn launcher(args: &[String]) -> (Launcher, Receiver<String>) {
    let mut cmd = launcher_command();
    cmd.args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the launcher starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            eprintln!("{line}");
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Launcher::wait_listening(child), rx)
}

fn wait_connected(launcher: &Launcher, value: f64) {
    launcher.wait_for(
        &format!("facerec_mqtt_connected {value}"),
        Duration::from_secs(20),
        |l| metric_value(&l.metrics(), "facerec_mqtt_connected") == Some(value),
    );
}

fn tls_dir(tag: &str) -> tempfile::TempDir {
    let dir = temp_dir(&format!("mqtt-tls-{tag}"));
    make_certificates(dir.path());
    dir
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn mqtts_with_the_ca_file_connects_and_publishes_online() {
    if !ready() || !tools_present() {
        return;
    }
    let dir = tls_dir("trusted");
    let dir = dir.path();
    let broker = tls_broker(dir);
    let (mut launcher, _stderr) = launcher(&[
        "--mqtt".into(),
        format!("mqtts://127.0.0.1:{}", broker.port),
        "--mqtt-ca-file".into(),
        dir.join("ca.pem").display().to_string(),
        "--mqtt-node-id".into(),
        "tls-node".into(),
    ]);
    wait_connected(&launcher, 1.0);
    // A subscriber that trusts the same CA reads the retained status over TLS.
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .arg("--cafile")
        .arg(dir.join("ca.pem"))
        .args(["-t", "facerec/tls-node/status", "-C", "1", "-W", "5"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "online\n");
    let (status, _) = launcher.terminate();
    assert!(status.success());
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn mqtts_without_the_ca_is_refused_with_one_clear_line() {
    if !ready() || !tools_present() {
        return;
    }
    let dir = tls_dir("untrusted");
    let dir = dir.path();
    let broker = tls_broker(dir);
    let (mut launcher, stderr) = launcher(&[
        "--mqtt".into(),
        format!("mqtts://127.0.0.1:{}", broker.port),
        "--mqtt-node-id".into(),
        "tls-node".into(),
    ]);
    // It keeps trying (backoff 0.5, 1, 2 s …): the broker logs each handshake that the launcher
    // aborted with an "unknown CA" alert.
    let start = Instant::now();
    loop {
        let refused = broker.log().matches("tlsv1 alert unknown ca").count();
        if refused >= 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{refused} handshakes refused in 20 s, expected at least 3 (retries):\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // One line says why, however many attempts failed.
    assert_eq!(
        metric_value(&launcher.metrics(), "facerec_mqtt_connected"),
        Some(0.0)
    );
    let lines: Vec<String> = stderr
        .try_iter()
        .filter(|l| l.contains("MQTT TLS"))
        .collect();
    let expected = format!("MQTT TLS with mqtts://127.0.0.1:{} failed: ", broker.port);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains(&expected), "{}", lines[0]);
    assert!(
        lines[0].ends_with(
            "invalid peer certificate: UnknownIssuer (the broker's CA is neither in the system \
             store nor in --mqtt-ca-file)"
        ),
        "{}",
        lines[0]
    );
    // HTTP is unaffected.
    assert_eq!(
        ureq::get(&launcher.url("/readyz")).call().unwrap().status(),
        200
    );
    let (status, _) = launcher.terminate();
    assert!(status.success());
}
