//! Small synchronisation helpers.
//!
//! Domain layer: std only.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, going on with the data of a holder that panicked: every guarded value here stays
/// consistent between statements, and one panicked camera thread must not take the rest down.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
