//! The `cameras` group (issue 27): the real `facerec-launcher` with N paced 1080p cameras, for
//! each N of `--cameras` (default `1,2,4,8,16`), and the same with `--baseline-launcher PATH`
//! (a launcher built from the commit before a change) in the same run, the order alternating
//! from one N to the next.
//!
//! Each camera is `pipeline:multifilesrc location=<clip> loop=true ! tsdemux ! h264parse !
//! avdec_h264 ! identity sync=true`: the sample clip scaled to 1920x1080 once with ffmpeg
//! (`.cache/bench/clip1080.mp4`) and remuxed without re-encoding to MPEG-TS
//! (`.cache/bench/clip1080.ts`), because `multifilesrc loop=true ! qtdemux` ends with EOS after
//! the first pass of an MP4 while concatenated TS keeps playing. `--camera-pipeline DESC`
//! replaces the description (`{clip}`: the TS copy, `{mp4}`: the MP4).
//!
//! The launcher runs with `--auth=false`, a temporary `--data-dir`, a free loopback port and
//! the demo gallery, and `--camera-viewers N` MJPEG clients per camera (none by default: since
//! issue 27 a camera encodes JPEGs only while somebody watches). After the launcher answers
//! and a warm-up (`--camera-warmup`, 8 s), it is sampled once a second for `--camera-seconds`
//! (20): RSS and CPU from `/proc/PID`, then each camera's rates from `/metrics` counters where
//! they exist and from `/api/cameras` otherwise. A figure a launcher does not expose is `n/a`
//! (null in the JSON), so that a launcher from before the change still runs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

/// The camera source; `{clip}` is the looping TS copy of the 1080p clip, `{mp4}` its MP4.
pub const DEFAULT_PIPELINE: &str = "multifilesrc location=\"{clip}\" loop=true ! tsdemux ! h264parse ! avdec_h264 ! identity sync=true";

/// Counters and gauges read from `/metrics` (prometheus-client's text exposition).
mod names {
    /// Detection runs per camera (issue 27's launcher on).
    pub const DETECTIONS: &str = "facerec_detections_total";
    /// JPEGs out of each camera's encoder, which runs only while somebody watches (issue 27).
    pub const FRAMES_ENCODED: &str = "facerec_frames_encoded_total";
    /// Frames a camera's live worker replaced by a newer one before analysing them.
    pub const STALE_REQUESTS: &str = "facerec_stale_requests_total";
    /// Frames dropped upstream of facerec (QoS messages of the source and decoder).
    pub const DROPPED_BEFORE_ELEMENT: &str = "facerec_frames_dropped_before_element_total";
    /// ONNX Runtime sessions the process loaded (shared between cameras since issue 27).
    pub const SESSION_LOADS: &str = "facerec_inference_session_loads_total";
    /// Time a camera's frame waited for the shared engine (histogram, per camera).
    pub const SCHEDULER_WAIT: &str = "facerec_scheduler_wait_seconds";
    /// 1 while a camera is overloaded (gauge, per camera).
    pub const OVERLOADED: &str = "facerec_camera_overloaded";
    /// The share of time the engine was busy (gauge).
    pub const ENGINE_UTILISATION: &str = "facerec_engine_utilisation";
    /// Pipeline rebuilds after a failure. Registered by both launchers, but prometheus-client
    /// leaves a family out of the exposition until it has a series, and a camera's series
    /// appears at its first reconnect: absent is 0.
    pub const RECONNECTS: &str = "facerec_reconnects_total";
    /// Inference time per facerec bus message (both launchers): its count is the number of
    /// detection runs that found at least one face, since the element posts nothing for a
    /// frame without faces. The baseline's best figure for detections per second.
    pub const INFERENCE: &str = "facerec_inference_seconds";
}

/// The `cameras` group's options.
pub struct Options {
    pub counts: Vec<usize>,
    pub seconds: f64,
    pub warmup: f64,
    /// The launcher under test; `None`: `target/release/facerec-launcher`, built first.
    pub launcher: Option<PathBuf>,
    pub baseline: Option<PathBuf>,
    pub pipeline: String,
    /// MJPEG clients per camera during the warm-up and the window.
    pub viewers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            counts: vec![1, 2, 4, 8, 16],
            seconds: 20.0,
            warmup: 8.0,
            launcher: None,
            baseline: None,
            pipeline: DEFAULT_PIPELINE.to_string(),
            viewers: 0,
        }
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the group; one JSON object per launcher and camera count.
pub fn cameras_group(clip: &Path, gallery: &Path, options: &Options) -> Result<Vec<Value>> {
    ensure!(
        options.seconds > 0.0 && options.warmup >= 0.0,
        "--camera-seconds must be above 0 and --camera-warmup at least 0"
    );
    ensure!(
        options.counts.iter().all(|&n| n > 0),
        "--cameras takes counts of at least 1"
    );
    let (mp4, ts) = camera_clips(clip)?;
    let launcher = match &options.launcher {
        Some(path) => path.clone(),
        None => build_launcher()?,
    };
    let mut launchers = vec![("new", absolute(&launcher)?)];
    if let Some(baseline) = &options.baseline {
        launchers.push(("baseline", absolute(baseline)?));
    }
    for (_, path) in &launchers {
        ensure!(
            path.is_file(),
            "{}: no such launcher binary",
            path.display()
        );
    }
    let description = options
        .pipeline
        .replace("{clip}", &ts.display().to_string())
        .replace("{mp4}", &mp4.display().to_string());
    println!();
    println!(
        "cameras: facerec-launcher with N paced 1920x1080 cameras ({}); warm-up {} s, then {} s \
         sampled once a second",
        ts.display(),
        options.warmup,
        options.seconds
    );
    for (label, path) in &launchers {
        println!("  {label}: {}", path.display());
    }
    let mut results = Vec::new();
    for (round, &n) in options.counts.iter().enumerate() {
        let mut order: Vec<usize> = (0..launchers.len()).collect();
        // Alternate, so that neither launcher always runs first (thermal and cache drift).
        order.rotate_left(round % launchers.len());
        let mut rows = Vec::new();
        for (position, &i) in order.iter().enumerate() {
            let (label, path) = &launchers[i];
            println!("  {n} camera(s), {label} launcher: starting");
            let mut case = run_case(path, n, gallery, &description, options)
                .with_context(|| format!("{n} camera(s), {label} launcher {}", path.display()))?;
            case["launcher"] = json!(label);
            case["binary"] = json!(path.display().to_string());
            case["position"] = json!(position + 1);
            rows.push(case);
        }
        // The table lists the new launcher first whatever the order it ran in.
        rows.sort_by_key(|r| r["launcher"] != "new");
        print_table(n, &rows);
        results.extend(rows);
    }
    Ok(results)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}

/// `cargo build --release --locked -p facerec-launcher` (a no-op when it is up to date) and the
/// binary's path.
fn build_launcher() -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("cameras: cargo build --release --locked -p facerec-launcher");
    let status = Command::new(cargo)
        .current_dir(repo())
        .args(["build", "--release", "--locked", "-p", "facerec-launcher"])
        .status()
        .context("running cargo")?;
    ensure!(
        status.success(),
        "cargo build --release -p facerec-launcher failed ({status}); pass --launcher PATH to \
         measure a launcher built elsewhere"
    );
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => repo().join(dir),
        None => repo().join("target"),
    };
    Ok(target.join("release/facerec-launcher"))
}

/// The clip scaled to 1920x1080 (`.cache/bench/clip1080.mp4`) and its MPEG-TS remux
/// (`clip1080.ts`), made once with ffmpeg and again only when the source clip changes.
fn camera_clips(clip: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = repo().join(".cache/bench");
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let mp4 = dir.join("clip1080.mp4");
    let ts = dir.join("clip1080.ts");
    let stamp = dir.join("clip1080.source");
    let meta = std::fs::metadata(clip).with_context(|| clip.display().to_string())?;
    let source = format!(
        "{} {} {:?}\n",
        absolute(clip)?.display(),
        meta.len(),
        meta.modified().ok()
    );
    let made = std::fs::read_to_string(&stamp).is_ok_and(|s| s == source);
    if made && mp4.is_file() && ts.is_file() {
        return Ok((mp4, ts));
    }
    if Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        bail!(
            "ffmpeg is missing; the cameras group makes its 1080p clip with it: apt-get install ffmpeg"
        );
    }
    println!("cameras: scaling {} to {}", clip.display(), mp4.display());
    let partial = dir.join("clip1080.partial.mp4");
    ffmpeg(&[
        "-y".as_ref(),
        "-i".as_ref(),
        clip.as_os_str(),
        "-vf".as_ref(),
        "scale=1920:1080".as_ref(),
        "-c:v".as_ref(),
        "libx264".as_ref(),
        "-preset".as_ref(),
        "veryfast".as_ref(),
        "-crf".as_ref(),
        "23".as_ref(),
        "-an".as_ref(),
        partial.as_os_str(),
    ])?;
    std::fs::rename(&partial, &mp4)?;
    let partial = dir.join("clip1080.partial.ts");
    ffmpeg(&[
        "-y".as_ref(),
        "-i".as_ref(),
        mp4.as_os_str(),
        "-c".as_ref(),
        "copy".as_ref(),
        "-f".as_ref(),
        "mpegts".as_ref(),
        partial.as_os_str(),
    ])?;
    std::fs::rename(&partial, &ts)?;
    std::fs::write(&stamp, source)?;
    Ok((mp4, ts))
}

pub fn ffmpeg(args: &[&std::ffi::OsStr]) -> Result<()> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(args)
        .output()
        .context("running ffmpeg")?;
    ensure!(
        output.status.success(),
        "ffmpeg failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// A launcher process, stopped (SIGTERM, then SIGKILL after 15 s) when dropped.
struct Launcher {
    child: Child,
    port: u16,
    log: PathBuf,
    /// The data folder and the log, removed last.
    _dir: tempfile::TempDir,
}

impl Launcher {
    fn start(
        binary: &Path,
        n: usize,
        viewers: usize,
        gallery: &Path,
        description: &str,
    ) -> Result<Launcher> {
        let dir = tempfile::Builder::new()
            .prefix("facerec-bench-cameras-")
            .tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        let log = dir.path().join("launcher.log");
        let port = free_port()?;
        let mut command = Command::new(binary);
        command
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg("--auth=false")
            .arg("--data-dir")
            .arg(&data)
            .arg("--gallery")
            .arg(gallery);
        if n > 16 {
            command.arg(format!("--max-cameras={n}"));
        }
        if n * viewers > 32 {
            command.arg(format!("--max-clients={}", n * viewers));
        }
        for k in 1..=n {
            command
                .arg("--source")
                .arg(format!("cam{k}=pipeline:{description}"));
        }
        // A launcher built in another checkout finds ONNX Runtime only through the variable.
        let runtime = repo().join(".cache/onnxruntime/libonnxruntime.so");
        if std::env::var_os("ORT_DYLIB_PATH").is_none_or(|v| v.is_empty()) && runtime.is_file() {
            command.env("ORT_DYLIB_PATH", runtime);
        }
        let out = std::fs::File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Launcher {
            child,
            port,
            log,
            _dir: dir,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error if the process has ended, with the end of its log.
    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the launcher exited ({status}); the end of its log:\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn get(&self, path: &str) -> Result<String> {
        http_get(self.port, path)
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on now (the launcher binds it a moment later).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `GET path` on the loopback port: the body of a 200 answer.
fn http_get(port: u16, path: &str) -> Result<String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers in the answer")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = &raw[split + 4..];
    let status = head.split_whitespace().nth(1).unwrap_or("");
    ensure!(
        status == "200",
        "GET {path}: {}",
        head.lines().next().unwrap_or("")
    );
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(String::from_utf8_lossy(&body).to_string())
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk without its size line")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        ensure!(body.len() >= size, "a truncated chunk");
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or(&[]);
    }
}

/// One series of the text exposition.
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A `/metrics` scrape.
struct Exposition(Vec<Series>);

impl Exposition {
    fn parse(text: &str) -> Exposition {
        Exposition(text.lines().filter_map(parse_series).collect())
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        camera: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Series> + 'a {
        self.0.iter().filter(move |s| {
            s.name == name
                && camera.is_none_or(|c| s.labels.get("camera").map(String::as_str) == Some(c))
        })
    }

    /// The sum of the series named `name` (of `camera`, when given); `None` when there is none.
    fn sum(&self, name: &str, camera: Option<&str>) -> Option<f64> {
        self.matching(name, camera)
            .map(|s| s.value)
            .fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
    }

    fn mean(&self, name: &str) -> Option<f64> {
        let values: Vec<f64> = self.matching(name, None).map(|s| s.value).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }

    /// A histogram's cumulative buckets by upper bound, summed over the series of `camera` (all
    /// cameras when `None`).
    fn buckets(&self, name: &str, camera: Option<&str>) -> BTreeMap<Bound, f64> {
        let bucket = format!("{name}_bucket");
        let mut out = BTreeMap::new();
        for s in self.matching(&bucket, camera) {
            let Some(le) = s.labels.get("le").and_then(|v| parse_number(v)) else {
                continue;
            };
            *out.entry(Bound(le)).or_insert(0.0) += s.value;
        }
        out
    }
}

/// A bucket's upper bound, ordered (`+Inf` last).
#[derive(Clone, Copy)]
struct Bound(f64);

impl PartialEq for Bound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Bound {}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

fn parse_number(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// `name{label="value",...} value [...]`; comments and malformed lines are `None`.
fn parse_series(line: &str) -> Option<Series> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut key = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i + 1);
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    // A quoted value with \\, \" and \n escapes.
                    if chars.next().map(|(_, c)| c) != Some('"') {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                other => key.push(other),
            }
        }
        rest = &inner[end?..];
    }
    let value = parse_number(rest.split_whitespace().next()?)?;
    Some(Series {
        name,
        labels,
        value,
    })
}

/// The `q` quantile of a histogram's bucket counts over the window (cumulative counts by upper
/// bound), interpolated linearly inside its bucket as Prometheus's `histogram_quantile` does.
fn quantile(buckets: &BTreeMap<Bound, f64>, q: f64) -> Option<f64> {
    let total = buckets.values().copied().fold(0.0, f64::max);
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (&Bound(upper), &count) in buckets {
        if count >= rank {
            if upper.is_infinite() {
                // Above the highest finite bound: that bound is all that can be said.
                return Some(lower);
            }
            let inside = count - below;
            let fraction = if inside > 0.0 {
                (rank - below) / inside
            } else {
                0.0
            };
            return Some(lower + (upper - lower) * fraction);
        }
        (lower, below) = (upper, count);
    }
    None
}

/// The buckets' increase between two scrapes.
fn bucket_delta(start: &BTreeMap<Bound, f64>, end: &BTreeMap<Bound, f64>) -> BTreeMap<Bound, f64> {
    end.iter()
        .map(|(le, v)| (*le, v - start.get(le).copied().unwrap_or(0.0)))
        .collect()
}

/// A counter's increase between two scrapes (a series created during the window started at
/// zero); `None` when the end scrape does not have it.
fn counter_delta(
    start: &Exposition,
    end: &Exposition,
    name: &str,
    camera: Option<&str>,
) -> Option<f64> {
    let last = end.sum(name, camera)?;
    Some(last - start.sum(name, camera).unwrap_or(0.0))
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the fields after it count from 3.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// One camera's entry of `/api/cameras`.
struct ApiCamera {
    name: String,
    state: Option<String>,
    /// input, processed (out of facerec), output (JPEGs published): `fps` as an array, or
    /// `input_fps`, `processed_fps`, `output_fps`.
    fps: [Option<f64>; 3],
    /// JPEGs encoded since the camera started: `frames_encoded`, or, in launchers without it
    /// (before issue 27), `frames`, which counted the published JPEGs then (it counts the
    /// frames out of facerec since).
    encoded: Option<f64>,
    detect_fps: Option<f64>,
    overloaded: Option<bool>,
}

fn parse_cameras(body: &str) -> Result<Vec<ApiCamera>> {
    let value: Value = serde_json::from_str(body).context("/api/cameras is not JSON")?;
    let cameras = value.as_array().context("/api/cameras is not an array")?;
    Ok(cameras
        .iter()
        .map(|c| {
            let number = |field: &str| c.get(field).and_then(Value::as_f64);
            let fps = |i: usize, flat: &str| {
                c.get("fps")
                    .and_then(|f| f.get(i))
                    .and_then(Value::as_f64)
                    .or_else(|| number(flat))
            };
            ApiCamera {
                name: c["name"].as_str().unwrap_or("").to_string(),
                state: c["state"].as_str().map(str::to_string),
                fps: [
                    fps(0, "input_fps"),
                    fps(1, "processed_fps"),
                    fps(2, "output_fps"),
                ],
                encoded: match c.get("frames_encoded") {
                    Some(v) => v.as_f64(),
                    None => number("frames"),
                },
                detect_fps: number("detect_fps"),
                overloaded: c.get("overloaded").and_then(Value::as_bool),
            }
        })
        .collect())
}

/// What is read at the start and at the end of the window.
struct Snapshot {
    at: Instant,
    metrics: Exposition,
    cameras: Vec<ApiCamera>,
    ticks: Option<u64>,
    viewer_bytes: u64,
}

fn snapshot(launcher: &Launcher, viewers: &Viewers) -> Result<Snapshot> {
    let at = Instant::now();
    let ticks = cpu_ticks(launcher.pid());
    let viewer_bytes = viewers.bytes.load(Ordering::Relaxed);
    let metrics = Exposition::parse(&launcher.get("/metrics")?);
    let cameras = parse_cameras(&launcher.get("/api/cameras")?)?;
    Ok(Snapshot {
        at,
        metrics,
        cameras,
        ticks,
        viewer_bytes,
    })
}

/// MJPEG clients that read each camera's stream and throw it away, so that a launcher that
/// encodes only while somebody watches encodes; stopped and joined when dropped.
struct Viewers {
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    /// Clients whose stream answered 200.
    connected: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Viewers {
    fn start(port: u16, cameras: usize, per_camera: usize) -> Viewers {
        let mut viewers = Viewers {
            stop: Arc::default(),
            bytes: Arc::default(),
            connected: Arc::default(),
            threads: Vec::new(),
        };
        for k in 1..=cameras {
            for _ in 0..per_camera {
                let (stop, bytes, connected) = (
                    viewers.stop.clone(),
                    viewers.bytes.clone(),
                    viewers.connected.clone(),
                );
                viewers.threads.push(std::thread::spawn(move || {
                    let _ = watch(port, &format!("cam{k}"), &stop, &bytes, &connected);
                }));
            }
        }
        viewers
    }
}

/// One stream client, reading until `stop`.
fn watch(
    port: u16,
    camera: &str,
    stop: &AtomicBool,
    bytes: &AtomicU64,
    connected: &AtomicUsize,
) -> Result<()> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    write!(
        stream,
        "GET /cameras/{camera}/stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )?;
    let mut buffer = vec![0u8; 1 << 16];
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if first {
                    first = false;
                    if !buffer[..n].starts_with(b"HTTP/1.1 200") {
                        break;
                    }
                    connected.fetch_add(1, Ordering::Relaxed);
                }
                bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Drop for Viewers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A camera's samples over the window.
#[derive(Default)]
struct CameraSamples {
    fps: [Vec<f64>; 3],
    detect_fps: Vec<f64>,
    samples: usize,
    overloaded: usize,
    /// Whether the launcher said at all (`overloaded` or its gauge): the baseline does not.
    overloaded_known: bool,
    states: BTreeSet<String>,
}

impl CameraSamples {
    fn record(&mut self, camera: &ApiCamera, metrics: &Exposition) {
        self.samples += 1;
        for (i, v) in camera.fps.iter().enumerate() {
            self.fps[i].extend(*v);
        }
        self.detect_fps.extend(camera.detect_fps);
        let gauge = metrics
            .sum(names::OVERLOADED, Some(&camera.name))
            .map(|v| v > 0.0);
        let overloaded = camera.overloaded.or(gauge);
        self.overloaded_known |= overloaded.is_some();
        if overloaded == Some(true) {
            self.overloaded += 1;
        }
        self.states.extend(camera.state.clone());
    }
}

fn record(
    per_camera: &mut BTreeMap<String, CameraSamples>,
    cameras: &[ApiCamera],
    metrics: &Exposition,
) {
    for camera in cameras {
        per_camera
            .entry(camera.name.clone())
            .or_default()
            .record(camera, metrics);
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// p50 and p99 in milliseconds of a histogram's increase over the window.
fn wait_ms(start: &Exposition, end: &Exposition, camera: Option<&str>) -> Value {
    let wait = bucket_delta(
        &start.buckets(names::SCHEDULER_WAIT, camera),
        &end.buckets(names::SCHEDULER_WAIT, camera),
    );
    json!({
        "p50": quantile(&wait, 0.5).map(|v| v * 1e3),
        "p99": quantile(&wait, 0.99).map(|v| v * 1e3),
        "count": wait.values().copied().fold(None, |a: Option<f64>, v| Some(a.unwrap_or(0.0).max(v))),
    })
}

/// One launcher with `n` cameras: start, wait until it answers with all cameras, warm up,
/// sample, stop.
fn run_case(
    binary: &Path,
    n: usize,
    gallery: &Path,
    description: &str,
    options: &Options,
) -> Result<Value> {
    let started = Instant::now();
    let mut launcher = Launcher::start(binary, n, options.viewers, gallery, description)?;
    let ready = loop {
        launcher.check_alive()?;
        if let Ok(body) = launcher.get("/api/cameras")
            && parse_cameras(&body).is_ok_and(|c| c.len() == n)
        {
            break started.elapsed().as_secs_f64();
        }
        ensure!(
            started.elapsed() < Duration::from_secs(180),
            "the launcher did not list its {n} cameras within 180 s; the end of its log:\n{}",
            launcher.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let viewers = Viewers::start(launcher.port, n, options.viewers);
    // The warm-up; when every camera first played, for the record.
    let warm_until = Instant::now() + Duration::from_secs_f64(options.warmup);
    let mut all_playing = None;
    while Instant::now() < warm_until {
        launcher.check_alive()?;
        if all_playing.is_none()
            && let Ok(cameras) = launcher.get("/api/cameras").and_then(|b| parse_cameras(&b))
            && cameras
                .iter()
                .all(|c| c.state.as_deref() == Some("playing"))
        {
            all_playing = Some(started.elapsed().as_secs_f64());
        }
        let left = warm_until.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(500)));
    }

    let start = snapshot(&launcher, &viewers)?;
    let mut rss = Vec::new();
    rss.extend(rss_kb(launcher.pid()));
    let mut per_camera: BTreeMap<String, CameraSamples> = BTreeMap::new();
    let mut utilisation = Vec::new();
    let mut failed_samples = 0;
    record(&mut per_camera, &start.cameras, &start.metrics);
    let window = Duration::from_secs_f64(options.seconds);
    let mut next = start.at + Duration::from_secs(1);
    while next < start.at + window {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += Duration::from_secs(1);
        launcher.check_alive()?;
        rss.extend(rss_kb(launcher.pid()));
        let metrics = launcher.get("/metrics").map(|t| Exposition::parse(&t));
        let cameras = launcher.get("/api/cameras").and_then(|b| parse_cameras(&b));
        match (&metrics, &cameras) {
            (Ok(m), Ok(c)) => {
                record(&mut per_camera, c, m);
                utilisation.extend(m.mean(names::ENGINE_UTILISATION));
            }
            _ => failed_samples += 1,
        }
    }
    std::thread::sleep((start.at + window).saturating_duration_since(Instant::now()));
    launcher.check_alive()?;
    let end = snapshot(&launcher, &viewers)?;
    rss.extend(rss_kb(launcher.pid()));
    record(&mut per_camera, &end.cameras, &end.metrics);
    let viewers_connected = viewers.connected.load(Ordering::Relaxed);
    drop(viewers);
    drop(launcher);

    let seconds = (end.at - start.at).as_secs_f64();
    let cpu_cores = match (start.ticks, end.ticks) {
        (Some(a), Some(b)) => Some((b - a) as f64 / clock_ticks_per_second() / seconds),
        _ => None,
    };
    let rate = |name: &str, camera: Option<&str>| {
        counter_delta(&start.metrics, &end.metrics, name, camera).map(|d| d / seconds)
    };
    let api_encoded = |snap: &Snapshot, camera: &str| {
        snap.cameras
            .iter()
            .find(|c| c.name == camera)
            .and_then(|c| c.encoded)
    };
    let mut sources = BTreeMap::new();
    let mut cameras = Vec::new();
    for (name, s) in &per_camera {
        let encoded = if let Some(r) = rate(names::FRAMES_ENCODED, Some(name)) {
            sources.insert("encoded_fps", names::FRAMES_ENCODED);
            Some(r)
        } else if let (Some(a), Some(b)) = (api_encoded(&start, name), api_encoded(&end, name)) {
            sources.insert(
                "encoded_fps",
                "/api/cameras frames_encoded, else frames (increase)",
            );
            Some((b - a) / seconds)
        } else {
            None
        };
        let detections = if let Some(r) = rate(names::DETECTIONS, Some(name)) {
            sources.insert("detections_per_second", names::DETECTIONS);
            Some(r)
        } else if let Some(m) = mean(&s.detect_fps) {
            sources.insert("detections_per_second", "/api/cameras detect_fps (mean)");
            Some(m)
        } else if let Some(r) = rate(&format!("{}_count", names::INFERENCE), Some(name)) {
            sources.insert(
                "detections_per_second",
                "facerec_inference_seconds_count (detection runs that found a face)",
            );
            Some(r)
        } else {
            None
        };
        cameras.push(json!({
            "name": name,
            "input_fps": mean(&s.fps[0]),
            "processed_fps": mean(&s.fps[1]),
            "output_fps": mean(&s.fps[2]),
            "encoded_fps": encoded,
            "detections_per_second": detections,
            "queue_wait_ms": wait_ms(&start.metrics, &end.metrics, Some(name)),
            "reconnects": counter_delta(&start.metrics, &end.metrics, names::RECONNECTS, Some(name))
                .unwrap_or(0.0),
            "stale_requests_per_second": rate(names::STALE_REQUESTS, Some(name)),
            "dropped_before_element_per_second": rate(names::DROPPED_BEFORE_ELEMENT, Some(name)),
            "states": s.states,
            "samples": s.samples,
            "overloaded_samples": s.overloaded_known.then_some(s.overloaded),
        }));
    }
    let spread = |field: &str| {
        let values: Vec<f64> = cameras.iter().filter_map(|c| c[field].as_f64()).collect();
        if values.len() < cameras.len() || values.is_empty() {
            return json!(null);
        }
        json!({
            "min": values.iter().copied().fold(f64::INFINITY, f64::min),
            "max": values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "total": values.iter().sum::<f64>(),
        })
    };
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for s in per_camera.values() {
        for state in &s.states {
            *states.entry(state.as_str()).or_default() += 1;
        }
    }
    Ok(json!({
        "cameras": n,
        "cameras_listed": per_camera.len(),
        "viewers_per_camera": options.viewers,
        "viewers_connected": viewers_connected,
        "viewer_mbytes_per_second": (end.viewer_bytes - start.viewer_bytes) as f64 / 1e6 / seconds,
        "ready_seconds": ready,
        "all_playing_after_seconds": all_playing,
        "warmup_seconds": options.warmup,
        "window_seconds": seconds,
        "failed_samples": failed_samples,
        "rss_mb": {
            "max": rss.iter().max().map(|k| *k as f64 / 1024.0),
            "end": rss.last().map(|k| *k as f64 / 1024.0),
        },
        "cpu_cores": cpu_cores,
        "input_fps": spread("input_fps"),
        "processed_fps": spread("processed_fps"),
        "output_fps": spread("output_fps"),
        "encoded_fps": spread("encoded_fps"),
        "detections_per_second": spread("detections_per_second"),
        "queue_wait_ms": wait_ms(&start.metrics, &end.metrics, None),
        "reconnects": counter_delta(&start.metrics, &end.metrics, names::RECONNECTS, None)
            .unwrap_or(0.0),
        "stale_requests_per_second": rate(names::STALE_REQUESTS, None),
        "dropped_before_element_per_second": rate(names::DROPPED_BEFORE_ELEMENT, None),
        "inference_session_loads": end.metrics.sum(names::SESSION_LOADS, None),
        "states": states,
        "cameras_overloaded": per_camera
            .values()
            .any(|s| s.overloaded_known)
            .then(|| per_camera.values().filter(|s| s.overloaded > 0).count()),
        "engine_utilisation": mean(&utilisation),
        "sources": sources,
        "per_camera": cameras,
    }))
}

fn fmt(v: &Value, precision: usize) -> String {
    v.as_f64()
        .map_or("n/a".to_string(), |v| format!("{v:.precision$}"))
}

fn pair(a: &Value, b: &Value, precision: usize) -> String {
    if a.is_null() && b.is_null() {
        return "n/a".to_string();
    }
    format!("{}/{}", fmt(a, precision), fmt(b, precision))
}

fn print_table(n: usize, rows: &[Value]) {
    let viewers = rows
        .first()
        .map_or(0, |r| r["viewers_per_camera"].as_u64().unwrap_or(0));
    println!(
        "{n} camera(s), 1920x1080 paced, {viewers} stream client(s) each; min/max over the \
         cameras; in = into facerec, out = out of facerec, jpeg = encoded; wait = for the \
         shared engine, all cameras"
    );
    println!(
        "{:<9} {:>14} {:>6} {:>11} {:>11} {:>11} {:>11} {:>7} {:>15} {:>5} {:>5} {:>5} states",
        "launcher",
        "RSS max/end",
        "cores",
        "in fps",
        "out fps",
        "jpeg/s",
        "det/s",
        "det/s",
        "wait p50/p99",
        "recon",
        "overl",
        "util",
    );
    for r in rows {
        let states = r["states"]
            .as_object()
            .map(|s| {
                s.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let spread =
            |field: &str, precision: usize| pair(&r[field]["min"], &r[field]["max"], precision);
        println!(
            "{:<9} {:>14} {:>6} {:>11} {:>11} {:>11} {:>11} {:>7} {:>15} {:>5} {:>5} {:>5} {}",
            r["launcher"].as_str().unwrap_or(""),
            format!("{} MB", pair(&r["rss_mb"]["max"], &r["rss_mb"]["end"], 0)),
            fmt(&r["cpu_cores"], 2),
            spread("input_fps", 1),
            spread("processed_fps", 1),
            spread("encoded_fps", 1),
            spread("detections_per_second", 1),
            fmt(&r["detections_per_second"]["total"], 1),
            format!(
                "{} ms",
                pair(&r["queue_wait_ms"]["p50"], &r["queue_wait_ms"]["p99"], 1)
            ),
            fmt(&r["reconnects"], 0),
            fmt(&r["cameras_overloaded"], 0),
            fmt(&r["engine_utilisation"], 2),
            states
        );
    }
    for r in rows {
        if let Some(source) = r["sources"]["detections_per_second"].as_str() {
            println!(
                "  {}: det/s from {source}",
                r["launcher"].as_str().unwrap_or("")
            );
        }
    }
}
