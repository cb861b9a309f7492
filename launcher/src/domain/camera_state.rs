//! The states of a camera's pipeline, with the names they have in the API, the metrics' `state`
//! label and the logs.
//!
//! Domain layer: no I/O; std and serde only.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    /// The pipeline is being built or has not reached PLAYING yet.
    Starting,
    Playing,
    /// The source was lost; the pipeline is rebuilt after a backoff.
    Reconnecting,
    /// An error that retrying cannot fix (a missing element, bad models).
    Failed,
    /// A file camera played to its end.
    Ended,
    /// Stopped by a removal or the shutdown.
    Stopped,
}

impl CameraState {
    pub const ALL: [CameraState; 6] = [
        CameraState::Starting,
        CameraState::Playing,
        CameraState::Reconnecting,
        CameraState::Failed,
        CameraState::Ended,
        CameraState::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Starting => "starting",
            CameraState::Playing => "playing",
            CameraState::Reconnecting => "reconnecting",
            CameraState::Failed => "failed",
            CameraState::Ended => "ended",
            CameraState::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for CameraState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API, the metrics and MQTT users know the states by these names.
    #[test]
    fn states_keep_their_names() {
        let names: Vec<String> = CameraState::ALL
            .iter()
            .map(|s| {
                serde_json::to_value(s)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "starting",
                "playing",
                "reconnecting",
                "failed",
                "ended",
                "stopped"
            ]
        );
        for state in CameraState::ALL {
            assert_eq!(state.to_string(), state.as_str());
        }
    }
}
