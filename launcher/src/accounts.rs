//! Who may see faces: users (Argon2id password hashes, roles), API tokens for machines (stored
//! as SHA-256 of a 256-bit secret, shown once) and sign-in sessions (in memory).
//!
//! Users and tokens live in `<data>/users.json`, mode 0600, replaced atomically on each change.
//! The `facerec-launcher user …` commands edit the same file while a launcher runs: the launcher
//! rereads it when its modification time changes, so a password changed or a user deleted from
//! the command line ends that user's sessions at their next request.
//!
//! Services layer: imports the domain only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::lock;

pub const USERS_FILE: &str = "users.json";
/// The user created at first start, and the one `--admin-password-file` sets.
pub const ADMIN: &str = "admin";
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Sessions kept at most; the ones closest to expiry are dropped first.
const MAX_SESSIONS: usize = 10_000;
/// A token's last use is written to the file at most this often (it is kept in memory between).
const LAST_USE_WRITE_INTERVAL: Duration = Duration::from_secs(300);
/// How long a password checked over HTTP Basic is remembered, so that a client that sends it
/// with every request (VLC reconnecting, a script) does not pay Argon2 each time.
const BASIC_CACHE_TTL: Duration = Duration::from_secs(60);
const TOKEN_PREFIX: &str = "frt_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watch, browse the history and the people; no changes, no export, no diagnoses.
    Viewer,
    /// Everything.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = AccountsError;
    fn from_str(s: &str) -> Result<Role, AccountsError> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "admin" => Ok(Role::Admin),
            other => Err(AccountsError::Invalid(format!(
                "role {other:?} is not one of admin, viewer"
            ))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("{0}")]
    Invalid(String),
    #[error("no user named {0}")]
    NoUser(String),
    #[error("a user named {0} already exists")]
    UserExists(String),
    #[error("no API token with id {0}")]
    NoToken(String),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    Session,
    Basic,
    Token,
    /// A token in a stream URL's `key=`: read-only, whatever the token's role.
    Key,
    /// `FACEREC_API_TOKEN`, the launcher's configured admin token.
    ApiToken,
    /// Sign-in is off (`--auth=false`).
    Open,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Session => "session",
            Via::Basic => "basic",
            Via::Token => "token",
            Via::Key => "key",
            Via::ApiToken => "api-token",
            Via::Open => "open",
        }
    }
}

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    pub via: Via,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    name: String,
    role: Role,
    /// Argon2id, in the PHC string format (parameters and salt included).
    hash: String,
    /// Unix seconds of the last password change.
    changed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Token {
    id: String,
    name: String,
    role: Role,
    /// Hex SHA-256 of the secret: the secret has 256 random bits, so a slow hash adds nothing.
    sha256: String,
    created: u64,
    last_used: Option<u64>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Records {
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    tokens: Vec<Token>,
}

/// A user as listed (no hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    pub password_changed: u64,
}

/// A token as listed (no secret, no hash).
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created: u64,
    pub last_used: Option<u64>,
}

struct Session {
    user: String,
    /// The user's password hash when the session began: a new password ends the session.
    stamp: String,
    expires: Instant,
}

struct State {
    records: Records,
    /// The file's modification time when it was last read or written.
    seen: Option<SystemTime>,
    /// By SHA-256 of the session id, so that the ids themselves are not kept.
    sessions: HashMap<[u8; 32], Session>,
    /// Verified Basic credentials: (user, SHA-256 of the password) → (stamp, until).
    basic: HashMap<(String, [u8; 32]), (String, Instant)>,
    last_use_written: Instant,
    last_use_dirty: bool,
}

pub struct Accounts {
    /// `None`: kept in memory only (no writable data folder).
    path: Option<PathBuf>,
    session_ttl: Duration,
    state: Mutex<State>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes from the operating system, as unpadded base64url.
fn random_text(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new random password: 16 characters of base64url (96 bits).
pub fn random_password() -> String {
    random_text(12)
}

fn hash_password(password: &str) -> Result<String, AccountsError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).expect("the operating system's random source");
    // Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's recommendation).
    argon2::Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountsError::Invalid(format!("cannot hash the password: {e}")))
}

fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

pub fn validate_user_name(name: &str) -> Result<(), AccountsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AccountsError::Invalid(format!(
            "user name {name:?} must be 1 to 64 of A-Z a-z 0-9 . _ - @"
        )))
    }
}

pub fn validate_password(password: &str) -> Result<(), AccountsError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountsError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(AccountsError::Invalid(
            "a password may have at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// A password from a file (a Kubernetes Secret): its content less one trailing line break.
pub fn read_password_file(path: &Path) -> Result<String, AccountsError> {
    let file_error = |message: String| AccountsError::File {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| file_error(e.to_string()))?;
    if !meta.is_file() || meta.len() > 1024 {
        return Err(file_error(
            "a password file must be a regular file of at most 1024 bytes".into(),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text)
        .to_string();
    validate_password(&password).map_err(|e| file_error(e.to_string()))?;
    Ok(password)
}

impl Accounts {
    /// The accounts in `data_dir`'s users file (none yet if it does not exist).
    pub fn open(data_dir: &Path, session_ttl: Duration) -> Result<Accounts, AccountsError> {
        let path = data_dir.join(USERS_FILE);
        let (records, seen) = read_records(&path)?;
        Ok(Accounts {
            path: Some(path),
            session_ttl,
            state: Mutex::new(State::new(records, seen)),
        })
    }

    /// Accounts kept in memory only: they last as long as the process.
    pub fn in_memory(session_ttl: Duration) -> Accounts {
        Accounts {
            path: None,
            session_ttl,
            state: Mutex::new(State::new(Records::default(), None)),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The state, reread first when another process changed the file.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = lock(&self.state);
        if let Some(path) = &self.path {
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            if modified != state.seen {
                match read_records(path) {
                    Ok((records, seen)) => {
                        state.records = records;
                        state.seen = seen;
                        state.basic.clear();
                    }
                    // Keep what was read last: a broken file must not sign everyone out.
                    Err(e) => tracing::warn!(error = %e, "cannot reread the users file"),
                }
            }
        }
        state
    }

    fn save(&self, state: &mut State) -> Result<(), AccountsError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        state.seen = write_records(path, &state.records)?;
        state.last_use_dirty = false;
        state.last_use_written = Instant::now();
        Ok(())
    }

    /// At start: `admin`'s password from `password_file` (creating the user), or, when there is
    /// no user at all, `admin` with a new random password, which is returned to be shown once.
    pub fn ensure_admin(
        &self,
        password_file: Option<&Path>,
    ) -> Result<Option<String>, AccountsError> {
        if let Some(file) = password_file {
            let password = read_password_file(file)?;
            let mut state = self.state();
            let unchanged = state.records.users.iter().any(|u| {
                u.name == ADMIN && u.role == Role::Admin && password_matches(&u.hash, &password)
            });
            if !unchanged {
                let hash = hash_password(&password)?;
                let changed = now_unix();
                match state.records.users.iter_mut().find(|u| u.name == ADMIN) {
                    Some(user) => {
                        user.hash = hash;
                        user.role = Role::Admin;
                        user.changed = changed;
                    }
                    None => state.records.users.push(User {
                        name: ADMIN.into(),
                        role: Role::Admin,
                        hash,
                        changed,
                    }),
                }
                self.save(&mut state)?;
            }
            return Ok(None);
        }
        let mut state = self.state();
        if !state.records.users.is_empty() {
            return Ok(None);
        }
        let password = random_password();
        state.records.users.push(User {
            name: ADMIN.into(),
            role: Role::Admin,
            hash: hash_password(&password)?,
            changed: now_unix(),
        });
        self.save(&mut state)?;
        Ok(Some(password))
    }

    pub fn users(&self) -> Vec<UserView> {
        self.state()
            .records
            .users
            .iter()
            .map(|u| UserView {
                name: u.name.clone(),
                role: u.role,
                password_changed: u.changed,
            })
            .collect()
    }

    pub fn add_user(&self, name: &str, role: Role, password: &str) -> Result<(), AccountsError> {
        validate_user_name(name)?;
        validate_password(password)?;
        let mut state = self.state();
        if state.records.users.iter().any(|u| u.name == name) {
            return Err(AccountsError::UserExists(name.into()));
        }
        state.records.users.push(User {
            name: name.into(),
            role,
            hash: hash_password(password)?,
            changed: now_unix(),
        });
        self.save(&mut state)
    }

    /// A new password (and, if given, role); the user's sessions end.
    pub fn set_password(
        &self,
        name: &str,
        password: &str,
        role: Option<Role>,
    ) -> Result<(), AccountsError> {
        validate_password(password)?;
        let hash = hash_password(password)?;
        let mut state = self.state();
        let user = state
            .records
            .users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| AccountsError::NoUser(name.into()))?;
        user.hash = hash;
        user.changed = now_unix();
        if let Some(role) = role {
            user.role = role;
        }
        self.save(&mut state)
    }

    pub fn delete_user(&self, name: &str) -> Result<(), AccountsError> {
        let mut state = self.state();
        let before = state.records.users.len();
        state.records.users.retain(|u| u.name != name);
        if state.records.users.len() == before {
            return Err(AccountsError::NoUser(name.into()));
        }
        self.save(&mut state)
    }

    /// The user if `password` is theirs. Costs one Argon2 verification (tens of milliseconds):
    /// callers throttle failures.
    pub fn verify_password(&self, name: &str, password: &str) -> Option<Principal> {
        let (hash, role) = {
            let state = self.state();
            let user = state.records.users.iter().find(|u| u.name == name)?;
            (user.hash.clone(), user.role)
        };
        password_matches(&hash, password).then(|| Principal {
            name: name.into(),
            role,
            via: Via::Basic,
        })
    }

    /// HTTP Basic: [`verify_password`](Self::verify_password), remembered for a minute.
    pub fn verify_basic(&self, name: &str, password: &str) -> Option<Principal> {
        let key = (name.to_string(), sha256(password.as_bytes()));
        {
            let state = self.state();
            if let Some((stamp, until)) = state.basic.get(&key)
                && *until > Instant::now()
                && let Some(user) = state
                    .records
                    .users
                    .iter()
                    .find(|u| u.name == name && &u.hash == stamp)
            {
                return Some(Principal {
                    name: name.into(),
                    role: user.role,
                    via: Via::Basic,
                });
            }
        }
        let principal = self.verify_password(name, password)?;
        let mut state = self.state();
        if let Some(user) = state.records.users.iter().find(|u| u.name == name) {
            let stamp = user.hash.clone();
            let now = Instant::now();
            state.basic.retain(|_, (_, until)| *until > now);
            if state.basic.len() < MAX_SESSIONS {
                state.basic.insert(key, (stamp, now + BASIC_CACHE_TTL));
            }
        }
        Some(principal)
    }

    /// A new session for a verified user: its id, for the cookie.
    pub fn start_session(&self, name: &str) -> Option<String> {
        let id = random_text(32);
        let mut state = self.state();
        let stamp = state
            .records
            .users
            .iter()
            .find(|u| u.name == name)?
            .hash
            .clone();
        let now = Instant::now();
        state.sessions.retain(|_, s| s.expires > now);
        if state.sessions.len() >= MAX_SESSIONS {
            let soonest = state
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k);
            if let Some(k) = soonest {
                state.sessions.remove(&k);
            }
        }
        state.sessions.insert(
            sha256(id.as_bytes()),
            Session {
                user: name.into(),
                stamp,
                expires: now + self.session_ttl,
            },
        );
        Some(id)
    }

    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    /// The session's user, while it has not expired, been ended, or outlived a password change
    /// or the user.
    pub fn session(&self, id: &str) -> Option<Principal> {
        let key = sha256(id.as_bytes());
        let mut state = self.state();
        let session = state.sessions.get(&key)?;
        let user = state
            .records
            .users
            .iter()
            .find(|u| u.name == session.user && u.hash == session.stamp);
        match user {
            Some(user) if session.expires > Instant::now() => Some(Principal {
                name: user.name.clone(),
                role: user.role,
                via: Via::Session,
            }),
            _ => {
                state.sessions.remove(&key);
                None
            }
        }
    }

    pub fn end_session(&self, id: &str) {
        lock(&self.state).sessions.remove(&sha256(id.as_bytes()));
    }

    /// A new API token: its listing and its secret, which is shown this once.
    pub fn create_token(
        &self,
        name: &str,
        role: Role,
    ) -> Result<(TokenView, String), AccountsError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(AccountsError::Invalid(
                "a token's name must be 1 to 64 printable characters".into(),
            ));
        }
        let secret = format!("{TOKEN_PREFIX}{}", random_text(32));
        let token = Token {
            id: hex(&sha256(random_text(16).as_bytes())[..6]),
            name: name.into(),
            role,
            sha256: hex(&sha256(secret.as_bytes())),
            created: now_unix(),
            last_used: None,
        };
        let view = token_view(&token);
        let mut state = self.state();
        state.records.tokens.push(token);
        self.save(&mut state)?;
        Ok((view, secret))
    }

    pub fn tokens(&self) -> Vec<TokenView> {
        self.state().records.tokens.iter().map(token_view).collect()
    }

    pub fn delete_token(&self, id: &str) -> Result<(), AccountsError> {
        let mut state = self.state();
        let before = state.records.tokens.len();
        state.records.tokens.retain(|t| t.id != id);
        if state.records.tokens.len() == before {
            return Err(AccountsError::NoToken(id.into()));
        }
        self.save(&mut state)
    }

    /// The token's holder if `secret` is a current token; records its use.
    pub fn verify_token(&self, secret: &str) -> Option<Principal> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return None;
        }
        let digest = hex(&sha256(secret.as_bytes()));
        let mut state = self.state();
        let now = now_unix();
        let token = state
            .records
            .tokens
            .iter_mut()
            .find(|t| t.sha256 == digest)?;
        token.last_used = Some(now);
        let principal = Principal {
            name: token.name.clone(),
            role: token.role,
            via: Via::Token,
        };
        state.last_use_dirty = true;
        if state.last_use_written.elapsed() >= LAST_USE_WRITE_INTERVAL
            && let Err(e) = self.save(&mut state)
        {
            tracing::warn!(error = %e, "cannot record an API token's last use");
        }
        Some(principal)
    }

    /// Writes what is only in memory (tokens' last use), at shutdown.
    pub fn flush(&self) {
        let mut state = lock(&self.state);
        if state.last_use_dirty
            && let Err(e) = self.save(&mut state)
        {
            tracing::warn!(error = %e, "cannot record the API tokens' last use");
        }
    }
}

impl State {
    fn new(records: Records, seen: Option<SystemTime>) -> State {
        State {
            records,
            seen,
            sessions: HashMap::new(),
            basic: HashMap::new(),
            last_use_written: Instant::now(),
            last_use_dirty: false,
        }
    }
}

fn token_view(t: &Token) -> TokenView {
    TokenView {
        id: t.id.clone(),
        name: t.name.clone(),
        role: t.role,
        created: t.created,
        last_used: t.last_used,
    }
}

fn read_records(path: &Path) -> Result<(Records, Option<SystemTime>), AccountsError> {
    let file_error = |message: String| AccountsError::File {
        path: path.to_path_buf(),
        message,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let records: Records = serde_json::from_slice(&bytes)
                .map_err(|e| file_error(format!("not a users file: {e}")))?;
            let seen = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            Ok((records, seen))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Records::default(), None)),
        Err(e) => Err(file_error(e.to_string())),
    }
}

/// Replaces the file atomically, readable by its owner only (it holds password hashes).
fn write_records(path: &Path, records: &Records) -> Result<Option<SystemTime>, AccountsError> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let file_error = |message: String| AccountsError::File {
        path: path.to_path_buf(),
        message,
    };
    let mut bytes = serde_json::to_vec_pretty(records).map_err(|e| file_error(e.to_string()))?;
    bytes.push(b'\n');
    let mut staged =
        facerec_core::files::staging_file(path).map_err(|e| file_error(e.to_string()))?;
    staged
        .as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| file_error(e.to_string()))?;
    staged
        .write_all(&bytes)
        .map_err(|e| file_error(e.to_string()))?;
    facerec_core::files::commit(staged, path).map_err(|e| file_error(e.to_string()))?;
    Ok(std::fs::metadata(path).and_then(|m| m.modified()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(dir.path(), Duration::from_secs(60)).unwrap();
        (dir, accounts)
    }

    #[test]
    fn first_start_creates_admin_once_and_the_file_holds_no_password() {
        let (dir, accounts) = accounts();
        let password = accounts
            .ensure_admin(None)
            .unwrap()
            .expect("a new password");
        assert_eq!(
            accounts.ensure_admin(None).unwrap(),
            None,
            "shown once only"
        );
        let again = Accounts::open(dir.path(), Duration::from_secs(60)).unwrap();
        assert_eq!(again.ensure_admin(None).unwrap(), None);
        assert!(again.verify_password(ADMIN, &password).is_some());
        assert!(again.verify_password(ADMIN, "wrong-password").is_none());
        let text = std::fs::read_to_string(dir.path().join(USERS_FILE)).unwrap();
        assert!(!text.contains(&password));
        assert!(text.contains("$argon2id$"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(USERS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_password_change_from_another_process_ends_the_sessions() {
        let (dir, accounts) = accounts();
        accounts
            .add_user("alice", Role::Viewer, "alice-password")
            .unwrap();
        let id = accounts.start_session("alice").unwrap();
        assert_eq!(accounts.session(&id).unwrap().role, Role::Viewer);
        // The command line's change, through a second handle on the same file.
        std::thread::sleep(Duration::from_millis(20));
        let cli = Accounts::open(dir.path(), Duration::from_secs(60)).unwrap();
        cli.set_password("alice", "another-password", None).unwrap();
        assert_eq!(accounts.session(&id), None);
        let id = accounts.start_session("alice").unwrap();
        accounts.end_session(&id);
        assert_eq!(accounts.session(&id), None, "ended by sign-out");
    }

    #[test]
    fn tokens_are_shown_once_stored_hashed_and_revocable() {
        let (dir, accounts) = accounts();
        let (view, secret) = accounts
            .create_token("home assistant", Role::Viewer)
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(USERS_FILE)).unwrap();
        assert!(!text.contains(&secret));
        let principal = accounts.verify_token(&secret).unwrap();
        assert_eq!((principal.role, principal.via), (Role::Viewer, Via::Token));
        assert!(accounts.tokens()[0].last_used.is_some());
        assert!(accounts.verify_token("frt_guess").is_none());
        accounts.delete_token(&view.id).unwrap();
        assert!(accounts.verify_token(&secret).is_none());
        assert!(matches!(
            accounts.delete_token(&view.id),
            Err(AccountsError::NoToken(_))
        ));
    }

    #[test]
    fn bad_names_passwords_and_files_are_refused_with_the_reason() {
        let (dir, accounts) = accounts();
        assert_eq!(
            accounts
                .add_user("a b", Role::Viewer, "long-enough")
                .unwrap_err()
                .to_string(),
            "user name \"a b\" must be 1 to 64 of A-Z a-z 0-9 . _ - @"
        );
        assert_eq!(
            accounts
                .add_user("bob", Role::Viewer, "short")
                .unwrap_err()
                .to_string(),
            "a password needs at least 8 characters"
        );
        std::fs::write(dir.path().join(USERS_FILE), "{not json").unwrap();
        let err = Accounts::open(dir.path(), Duration::from_secs(1))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "{}: not a users file",
                dir.path().join(USERS_FILE).display()
            )),
            "{err}"
        );
    }
}
