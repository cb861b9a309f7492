//! The live event feed behind `/api/events` (SSE): stored events as they happen, and the
//! latest few for subscribers that come late.
//!
//! Services layer: imports the domain and the sink interface.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::domain::{StoredEvent, lock};
use crate::sink::EventSink;

/// Events kept for late subscribers.
const RECENT_EVENTS: usize = 50;

pub struct Feed {
    events: broadcast::Sender<StoredEvent>,
    recent: Mutex<VecDeque<StoredEvent>>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    pub fn new() -> Feed {
        Feed {
            events: broadcast::channel(256).0,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// The recent events, oldest first, then the live ones.
    pub fn subscribe(&self) -> (Vec<StoredEvent>, broadcast::Receiver<StoredEvent>) {
        let recent = lock(&self.recent).iter().cloned().collect();
        (recent, self.events.subscribe())
    }
}

impl EventSink for Feed {
    fn recognition(&self, event: &StoredEvent) {
        let mut recent = lock(&self.recent);
        if recent.len() == RECENT_EVENTS {
            recent.pop_front();
        }
        recent.push_back(event.clone());
        drop(recent);
        // No subscriber is fine: the event is still in `recent`.
        let _ = self.events.send(event.clone());
    }
}
