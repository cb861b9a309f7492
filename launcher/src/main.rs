//! `facerec-launcher`: hosts one facerec pipeline per camera and serves the annotated streams
//! (MJPEG, encoded once per frame in the pipeline), a JSON/SSE API, health and metrics.
//!
//! The only reader of `config`: it builds the services, the event sinks, the camera registry
//! and the router from it, and hands each plain values (see the layers in `lib.rs`).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use facerec_core::engine::Engine;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use facerec_launcher::accounts::{ADMIN, Accounts};
use facerec_launcher::audit::Audit;
use facerec_launcher::camera::element::ensure_facerec_plugin;
use facerec_launcher::camera::registry::Registry;
use facerec_launcher::config::Config;
use facerec_launcher::domain::lock;
use facerec_launcher::domain::rate_limit::RateLimiter;
use facerec_launcher::domain::throttle::Throttle;
use facerec_launcher::feed::Feed;
use facerec_launcher::http::{App, AuthSettings};
use facerec_launcher::library::Library;
use facerec_launcher::metrics::{CameraLabel, Metrics};
use facerec_launcher::recorder::Recorder;
use facerec_launcher::sink::Sinks;
use facerec_launcher::store::{Retention, Store};
use facerec_launcher::strangers::Strangers;

/// How long shutdown may take before the process exits anyway (Kubernetes waits 30 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn init_logging(json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Fails early and clearly on what would otherwise only fail inside each pipeline. Returns the
/// engine it checked the models with: the face library embeds photos with it.
fn preflight(config: &Config) -> Result<Engine> {
    // The gallery first, through the one loader (which refuses devices, FIFOs and oversized
    // files): a bad file is reported before the models are even opened.
    if let Some(path) = &config.pipeline.gallery {
        facerec_core::gallery::Gallery::load(path)?;
    }
    let engine_config = config.pipeline.engine_config()?;
    if let Some(font) = &config.pipeline.font {
        facerec_core::overlay::Painter::new(Some(font))?;
    }
    let engine = Engine::new(engine_config)?;
    // A missing gallery is warned about in run(), once nothing can fail any more.
    if let Some(path) = &config.pipeline.gallery {
        let gallery = engine.load_gallery(path)?;
        tracing::info!(gallery = %path.display(), people = gallery.people.len(), "gallery checked");
    }
    Ok(engine)
}

/// What [`open_data`] opened in the data folder.
struct Data {
    store: Arc<Store>,
    library: Option<Arc<Library>>,
    /// Why the face library is off although the history is on disk: `/readyz` reports it.
    library_error: Option<String>,
}

/// The history store and the face library in the data folder, opened separately:
/// * the store cannot be opened (the folder cannot be written, another launcher holds it):
///   history in memory only and no library (the library needs the store's lock on the folder),
///   with one warning;
/// * the store opens but the library does not (a corrupt or oversized `model.data`, one made
///   for another recognizer): the history stays on disk, the library is off, the pipelines keep
///   `--gallery`, one error line says why and `/readyz` answers 503 `degraded: …` until the
///   cause is fixed and the launcher restarted.
fn open_data(config: &Config, engine: Arc<Mutex<Engine>>) -> Data {
    let retention = Retention {
        max_age: Some(Duration::from_secs_f64(config.retain_days * 86_400.0)),
        max_bytes: Some((config.retain_mb * 1024.0 * 1024.0) as u64),
        min_free_bytes: (config.min_free_mb > 0.0)
            .then(|| (config.min_free_mb * 1024.0 * 1024.0) as u64),
    };
    let data = config.data_dir.display();
    let store = match Store::open(&config.data_dir, retention) {
        Ok(store) => Arc::new(store),
        Err(e) => {
            tracing::warn!(
                %data,
                error = %format!("{e:#}"),
                "the data folder cannot be used: history is kept in memory only and the face library is off"
            );
            return Data {
                store: Arc::new(Store::in_memory(retention)),
                library: None,
                library_error: None,
            };
        }
    };
    match Library::open(&config.data_dir, config.pipeline.gallery.as_deref(), engine) {
        Ok(library) => {
            tracing::info!(%data, "history and face library");
            Data {
                store,
                library: Some(Arc::new(library)),
                library_error: None,
            }
        }
        Err(e) => {
            let reason = format!("{e:#}");
            tracing::error!(
                %data,
                error = %reason,
                "the face library cannot be opened: it is off (the pipelines use --gallery) and /readyz reports degraded; history is still kept on disk"
            );
            Data {
                store,
                library: None,
                library_error: Some(reason),
            }
        }
    }
}

/// Updates the per-camera rates once a second.
async fn rates(cameras: Arc<Registry>, metrics: Arc<Metrics>) {
    let mut last: BTreeMap<String, ([u64; 3], Instant)> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for cam in cameras.all() {
            let now = Instant::now();
            let counts = [
                cam.input_frames.load(Ordering::Relaxed),
                cam.processed_frames.load(Ordering::Relaxed),
                cam.output_frames.load(Ordering::Relaxed),
            ];
            if let Some((before, at)) = last.get(&cam.name) {
                let dt = now.duration_since(*at).as_secs_f64().max(1e-3);
                let fps = [0, 1, 2].map(|i| counts[i].saturating_sub(before[i]) as f64 / dt);
                *lock(&cam.fps) = fps;
                let label = CameraLabel {
                    camera: cam.name.clone(),
                };
                let m = &metrics;
                m.input_fps.get_or_create(&label).set(fps[0]);
                m.processed_fps.get_or_create(&label).set(fps[1]);
                m.output_fps.get_or_create(&label).set(fps[2]);
            }
            last.insert(cam.name.clone(), (counts, now));
        }
    }
}

fn announce_mdns(port: u16) -> Result<mdns_sd::ServiceDaemon> {
    let daemon = mdns_sd::ServiceDaemon::new().context("cannot start mDNS")?;
    let service = mdns_sd::ServiceInfo::new(
        "_http._tcp.local.",
        "microshift-cam-reg",
        "microshift-cam-reg.local.",
        "",
        port,
        &[("path", "/register")][..],
    )
    .context("invalid mDNS service")?
    .enable_addr_auto();
    daemon
        .register(service)
        .context("cannot announce over mDNS")?;
    Ok(daemon)
}

struct ServeLimits {
    max_connections: usize,
    header_timeout: Duration,
}

/// The TLS server configuration from PEM files: HTTP/1.1 only (the MJPEG streams are long
/// HTTP/1.1 responses), rustls with the ring provider MQTT already uses.
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("tls-cert {}: not a PEM certificate chain", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("tls-cert {}: no certificate in it", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("tls-key {}: not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("tls-cert and tls-key do not make a server identity")?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// axum's `serve` with what it lacks against slowloris: a header-read timeout and a cap on open
/// connections (one past the cap is closed at once, before anything is read from it); and TLS
/// when an acceptor is given (its handshake within the same timeout).
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ServeLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "too many connections: closing one");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            tower_service::Service::call(&mut router.clone(), request)
        });
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            // No upgrades: the launcher serves no WebSocket.
            match tls {
                None => {
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
                }
                Some(acceptor) => {
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            let connection =
                                builder.serve_connection(TokioIo::new(tls_stream), service);
                            let _ = watcher.watch(connection).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn shutdown_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        _ = token.cancelled() => {}
    }
    token.cancel();
}

/// The audit log beside the history (in memory, with a warning, when it cannot be opened).
fn open_audit(config: &Config, persistent: bool) -> Arc<Audit> {
    let keep = Duration::from_secs_f64(config.audit_days * 86_400.0);
    if persistent {
        match Audit::open(&config.data_dir, keep) {
            Ok(audit) => return Arc::new(audit),
            Err(e) => {
                tracing::error!(error = %e, "the audit log cannot be opened: it is kept in memory only")
            }
        }
    }
    Arc::new(Audit::in_memory(keep))
}

/// The accounts in the data folder (in memory when it cannot be written), with `admin` made
/// or updated; a first-start password is printed here, once.
fn open_accounts(config: &Config, persistent: bool) -> Result<Arc<Accounts>> {
    let accounts = if persistent {
        Accounts::open(&config.data_dir, config.session_ttl)?
    } else {
        tracing::warn!("users are kept in memory only: the data folder cannot be written");
        Accounts::in_memory(config.session_ttl)
    };
    if let Some(password) = accounts.ensure_admin(config.admin_password_file.as_deref())? {
        // Shown this once (Frigate's way); only its Argon2id hash is kept.
        eprintln!(
            "facerec-launcher: created user {ADMIN} with password {password} (shown once; change it with: facerec-launcher user passwd {ADMIN})"
        );
    }
    Ok(Arc::new(accounts))
}

async fn run(config: Config) -> Result<()> {
    let engine = preflight(&config)?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    // After every check that can fail, so that a start-up failure is the only line on stderr.
    if config.pipeline.gallery.is_none() {
        tracing::warn!("no gallery configured: every face will be \"unknown\"");
    }
    if config.sources.is_empty() {
        tracing::warn!(
            "no camera configured: add some with --source, the config file or POST /api/cameras"
        );
    }

    let engine = Arc::new(Mutex::new(engine));
    let Data {
        store,
        library,
        library_error,
    } = open_data(&config, engine.clone());
    let accounts = open_accounts(&config, store.is_persistent())?;
    if !config.auth {
        tracing::warn!(
            %address,
            "sign-in is off (--auth=false): anyone who reaches this address sees the faces, names and streams; use it only on a trusted loopback setup"
        );
    }
    let mut settings = config.pipeline_settings()?;
    if let Some(path) = library.as_ref().and_then(|l| l.gallery_path()) {
        if let Some(given) = &settings.gallery {
            tracing::info!(
                gallery = %given.display(),
                library = %path.display(),
                "the face library has been changed, so its gallery is used instead of --gallery"
            );
        }
        settings.gallery = Some(path);
    }
    let mut metrics = Metrics::new();
    if config.mqtt.is_some() {
        metrics.register_mqtt();
    }
    let metrics = Arc::new(metrics);
    let shutdown = CancellationToken::new();

    // The consumers of events, one line each (a webhook would be one more `sinks.add`).
    let feed = Arc::new(Feed::new());
    let mut sinks = Sinks::new();
    sinks.add(feed.clone()).add(metrics.clone());
    let mqtt_task = match &config.mqtt {
        Some(mqtt) => {
            let people = facerec_launcher::mqtt::gallery_people(settings.gallery.as_deref());
            let (handle, task) = facerec_launcher::mqtt::start(
                mqtt.clone(),
                people,
                metrics.clone(),
                shutdown.clone(),
            )?;
            sinks.add(Arc::new(handle));
            tracing::info!(broker = %mqtt.display_url(), node = %mqtt.node_id, "MQTT on");
            Some(task)
        }
        None => None,
    };
    let sinks = Arc::new(sinks);
    let first_stranger = store.max_stranger_number().unwrap_or(0) + 1;
    let strangers = Arc::new(Mutex::new(Strangers::new(
        config.stranger_ttl,
        facerec_launcher::strangers::DEFAULT_THRESHOLD,
        first_stranger,
    )));
    // The cameras' track events go to the recorder, which stores them (history) and then hands
    // them on to `sinks`; their other events go to `sinks` directly.
    let recorder = Recorder {
        store: store.clone(),
        engine,
        strangers: strangers.clone(),
        metrics: metrics.clone(),
    }
    .start(sinks.clone());
    let mut camera_sink = Sinks::new();
    camera_sink.add(Arc::new(recorder)).add(sinks.clone());
    let context = facerec_launcher::camera::Context {
        settings: Mutex::new(settings),
        sink: Arc::new(camera_sink),
        metrics: metrics.clone(),
        unknown_after: config.unknown_after,
    };
    let cameras = Arc::new(Registry::new(Arc::new(context), config.max_cameras));
    let app = Arc::new(App {
        cameras: cameras.clone(),
        metrics: metrics.clone(),
        feed,
        clients: Arc::new(Semaphore::new(config.max_clients)),
        shutdown: shutdown.clone(),
        accounts: accounts.clone(),
        auth: AuthSettings {
            enabled: config.auth,
            api_token: config.api_token.clone(),
            metrics_token: config.metrics_token,
            trusted_proxies: config.trusted_proxy.clone(),
            tls: tls.is_some(),
        },
        access: facerec_launcher::http::access_table(),
        login_throttle: Throttle::default(),
        audit: open_audit(&config, accounts.path().is_some()),
        sinks: sinks.clone(),
        media_dir: config.media_dir.clone(),
        register_limiter: RateLimiter::register(),
        store,
        library,
        library_error,
        strangers,
    });
    for (name, uri, source) in &config.sources {
        // The same cap as the API (already checked in `validate`, so this cannot fail).
        cameras
            .add(name.clone(), uri.clone(), source.clone())
            .map_err(|e| anyhow::anyhow!("camera {name}: {e}"))?;
    }
    let _mdns = if config.mdns {
        Some(announce_mdns(address.port())?)
    } else {
        None
    };

    tokio::spawn(rates(cameras.clone(), metrics));
    tokio::spawn(shutdown_signal(shutdown.clone()));
    // A plain line on stdout that scripts and tests can wait for.
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("facerec-launcher listening on {scheme}://{address}");
    tracing::info!(%address, cameras = config.sources.len(), "listening");

    let limits = ServeLimits {
        max_connections: config.max_connections,
        header_timeout: Duration::from_secs(config.header_timeout),
    };
    let served = tokio::spawn(serve(
        listener,
        facerec_launcher::http::router(app),
        limits,
        tls,
        shutdown.clone(),
    ));
    shutdown.cancelled().await;

    // Streams end on the cancelled token; pipelines go to NULL; both within the grace period.
    let stop_cameras = tokio::task::spawn_blocking(move || cameras.shutdown());
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
        let _ = stop_cameras.await;
        let _ = served.await;
        if let Some(task) = mqtt_task {
            let _ = task.await;
        }
    })
    .await;
    accounts.flush();
    if finished.is_err() {
        tracing::warn!(
            "shutdown took longer than {} s; exiting anyway",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}

/// `facerec-launcher user …` / `token …`.
fn run_accounts(args: Vec<std::ffi::OsString>) -> Result<()> {
    use clap::Parser;
    use facerec_launcher::accounts::{Role, random_password, read_password_file};
    use facerec_launcher::config::{AccountsCli, AccountsCommand, TokenCommand, UserCommand};
    let cli = AccountsCli::try_parse_from(args).unwrap_or_else(|e| e.exit());
    let dir = facerec_launcher::config::data_dir_or_default(cli.data_dir);
    let accounts = Accounts::open(&dir, Duration::from_secs(60))?;
    // Recorded in the launcher's audit log, as done by the local operator (`cli`). The
    // retention is the launcher's to apply: nothing is pruned from here.
    let audit = Audit::open(&dir, Duration::MAX)?;
    let record = |action: &str, target: &str| {
        audit.record(facerec_launcher::audit::Action {
            user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
            via: "cli".into(),
            action: action.into(),
            target: target.into(),
            ..Default::default()
        })
    };
    let role = |r: &str| r.parse::<Role>();
    // A password from the file (`-`: stdin), or a new random one, printed.
    let password = |file: Option<std::path::PathBuf>, name: &str| -> Result<String> {
        Ok(match file {
            Some(f) if f.as_os_str() == "-" => {
                let mut text = String::new();
                std::io::stdin().read_line(&mut text)?;
                let text = text.trim_end_matches(['\n', '\r']).to_string();
                facerec_launcher::accounts::validate_password(&text)?;
                text
            }
            Some(f) => read_password_file(&f)?,
            None => {
                let p = random_password();
                println!("password for {name}: {p}");
                p
            }
        })
    };
    match cli.command {
        AccountsCommand::User(UserCommand::Add {
            name,
            role: r,
            password_file,
        }) => {
            let r = role(&r)?;
            facerec_launcher::accounts::validate_user_name(&name)?;
            let p = password(password_file, &name)?;
            accounts.add_user(&name, r, &p)?;
            record("user.add", &name);
            println!("added {r} {name}");
        }
        AccountsCommand::User(UserCommand::Passwd {
            name,
            role: r,
            password_file,
        }) => {
            let r = r.as_deref().map(role).transpose()?;
            if !accounts.users().iter().any(|u| u.name == name) {
                anyhow::bail!("no user named {name}");
            }
            let p = password(password_file, &name)?;
            accounts.set_password(&name, &p, r)?;
            record("user.passwd", &name);
            println!("changed the password of {name}; their sessions are ended");
        }
        AccountsCommand::User(UserCommand::Del { name }) => {
            accounts.delete_user(&name)?;
            record("user.del", &name);
            println!("deleted {name}");
        }
        AccountsCommand::User(UserCommand::List) => {
            for u in accounts.users() {
                println!("{}\t{}", u.name, u.role);
            }
        }
        AccountsCommand::Token(TokenCommand::Add { name, role: r }) => {
            let (view, secret) = accounts.create_token(&name, role(&r)?)?;
            record("token.add", &format!("{} ({})", view.id, view.name));
            println!("{secret}");
            eprintln!(
                "token {} ({}, {}): shown once; revoke it with: facerec-launcher token del {}",
                view.id, view.name, view.role, view.id
            );
        }
        AccountsCommand::Token(TokenCommand::Del { id }) => {
            accounts.delete_token(&id)?;
            record("token.del", &id);
            println!("revoked {id}");
        }
        AccountsCommand::Token(TokenCommand::List) => {
            for t in accounts.tokens() {
                let last = t.last_used.map_or("never".to_string(), |s| s.to_string());
                println!("{}\t{}\t{}\tlast used: {last}", t.id, t.role, t.name);
            }
        }
    }
    Ok(())
}

/// glibc gives each thread that allocates a heap of its own ("arena"), up to 8 per core, and
/// keeps what was freed in it: with a pipeline per camera, every camera's threads held freed
/// frames of their own. One arena per core (at least 2) cost 77 MB less at 4 cameras and 118 MB
/// less at 8 for the same detections (`docs/PERFORMANCE.md`). `MALLOC_ARENA_MAX` set by the
/// operator wins.
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let arenas = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    // SAFETY: mallopt only sets an allocator parameter; called first in main, before any
    // thread of ours or of GStreamer exists.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas as libc::c_int);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "user" || a == "token") {
        return match run_accounts(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("facerec-launcher: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // GStreamer first, so that `--help` shows the elements' own ranges.
    let gst_ready = gst::init()
        .context("cannot initialise GStreamer")
        .and_then(|()| ensure_facerec_plugin());
    let result = Config::from_args(std::env::args_os());
    init_logging(result.as_ref().is_ok_and(|c| c.log_json));
    let result = gst_ready.and(result).and_then(|config| {
        // Before anything is logged, so that a bad setting is the only line on stderr.
        config.validate()?;
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        let outcome = runtime.block_on(run(config));
        // Do not wait for blocking tasks (a stuck pipeline) beyond the grace period.
        runtime.shutdown_timeout(Duration::from_secs(1));
        outcome
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facerec-launcher: {e:#}");
            ExitCode::FAILURE
        }
    }
}
