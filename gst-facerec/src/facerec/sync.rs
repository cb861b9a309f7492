// SPDX-License-Identifier: MPL-2.0

//! Locking shared by the element and its live worker.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering the data if another thread panicked while holding it: a panic
/// elsewhere must not take the streaming thread down too.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
