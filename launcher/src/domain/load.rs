//! Whether a camera keeps up: its source is lost (rebuild it), its recognition is overloaded
//! (report it, never rebuild for it), or it flows; and the counters the element reports per run.
//!
//! Domain layer: no I/O; std only. The camera feeds [`FlowMonitor`] with its counts about once
//! a second and asks it for a [`Flow`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A live source that delivers nothing for this long is lost, and its pipeline is rebuilt; a
/// facerec element that lets no frame out for this long while its source delivers is overloaded.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The detection rate is measured over this long.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

/// What a camera's flow amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Flowing,
    /// The source delivers, but recognition does not keep up: reported, never rebuilt for.
    Overloaded,
    /// The (live) source delivered nothing for [`STALL_TIMEOUT`]: the pipeline is rebuilt.
    Lost,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    /// Frames out of the facerec element so far.
    frames: u64,
    /// Detection runs so far.
    detections: u64,
}

/// A camera's frames out of facerec and its detections over the last [`RATE_WINDOW`], and when
/// facerec last let a frame out. One per run of the pipeline (its counts start at zero).
#[derive(Debug)]
pub struct FlowMonitor {
    samples: VecDeque<Sample>,
    output_moved: Instant,
}

impl FlowMonitor {
    pub fn new(now: Instant) -> FlowMonitor {
        FlowMonitor {
            samples: VecDeque::new(),
            output_moved: now,
        }
    }

    /// Records the counts of this run: frames out of facerec, detection runs (both monotonic).
    pub fn sample(&mut self, now: Instant, frames: u64, detections: u64) {
        if self.samples.back().is_none_or(|last| frames > last.frames) {
            self.output_moved = now;
        }
        self.samples.push_back(Sample {
            at: now,
            frames,
            detections,
        });
        // Keep one sample at or before the window's start, so that a full window is measurable.
        while self.samples.len() > 2
            && now.saturating_duration_since(self.samples[1].at) >= RATE_WINDOW
        {
            self.samples.pop_front();
        }
    }

    /// (frames, detections) per second between the oldest kept sample and the newest, when
    /// they are at least `span` apart.
    fn rates(&self, span: Duration) -> Option<(f64, f64)> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let dt = last.at.saturating_duration_since(first.at);
        if dt < span || dt.is_zero() {
            return None;
        }
        let per_s = |a: u64, b: u64| b.saturating_sub(a) as f64 / dt.as_secs_f64();
        Some((
            per_s(first.frames, last.frames),
            per_s(first.detections, last.detections),
        ))
    }

    /// Detections per second over the last [`RATE_WINDOW`] (or what there is of it, from a
    /// second on).
    pub fn detect_fps(&self) -> Option<f64> {
        self.rates(Duration::from_secs(1)).map(|(_, d)| d)
    }

    /// The camera's flow now. `source_idle`: how long since a buffer last left a source element;
    /// `live`: whether an idle source means a lost camera (a file's source waits on its
    /// consumer); `min_detect_fps`: the rate every stream is promised (the `min-detect-fps`
    /// tunable; 0: no promise); `detect_interval`: the element's (a detection every N frames).
    pub fn judge(
        &self,
        now: Instant,
        source_idle: Duration,
        live: bool,
        min_detect_fps: f64,
        detect_interval: u32,
    ) -> Flow {
        if source_idle > STALL_TIMEOUT {
            return if live { Flow::Lost } else { Flow::Flowing };
        }
        // The source delivered within STALL_TIMEOUT: more recently than facerec's output moved.
        if now.saturating_duration_since(self.output_moved) > STALL_TIMEOUT {
            return Flow::Overloaded;
        }
        if let Some((frames, detections)) = self.rates(RATE_WINDOW.mul_f64(0.9))
            && min_detect_fps > 0.0
            && frames / f64::from(detect_interval.max(1)) >= min_detect_fps
            && detections < min_detect_fps
        {
            return Flow::Overloaded;
        }
        Flow::Flowing
    }
}

/// How much a counter the element reports has grown since `last` (which it becomes). The
/// element's counters start again at zero when its pipeline is rebuilt: a smaller value is a
/// new count from zero.
pub fn counter_delta(last: &mut u64, now: u64) -> u64 {
    let delta = if now >= *last { now - *last } else { now };
    *last = now;
    delta
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A monitor fed once a second for `seconds` with frames and detections at the given rates.
    fn fed(start: Instant, seconds: u32, fps: u64, dps: u64) -> FlowMonitor {
        let mut m = FlowMonitor::new(start);
        for i in 0..=seconds {
            m.sample(start + S * i, fps * i as u64, dps * i as u64);
        }
        m
    }

    #[test]
    fn a_camera_that_keeps_up_flows() {
        let t0 = Instant::now();
        let m = fed(t0, 8, 30, 10);
        let now = t0 + S * 8;
        assert_eq!(m.judge(now, Duration::ZERO, true, 2.0, 1), Flow::Flowing);
        let rate = m.detect_fps().unwrap();
        assert!((rate - 10.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn detections_below_the_promise_while_frames_arrive_are_overload() {
        let t0 = Instant::now();
        let m = fed(t0, 8, 30, 1);
        let now = t0 + S * 8;
        assert_eq!(m.judge(now, Duration::ZERO, true, 2.0, 1), Flow::Overloaded);
        // No promise, no overload.
        assert_eq!(m.judge(now, Duration::ZERO, true, 0.0, 1), Flow::Flowing);
        // Frames that arrive slower than the promise cannot be detected faster.
        let slow = fed(t0, 8, 1, 1);
        assert_eq!(slow.judge(now, Duration::ZERO, true, 2.0, 1), Flow::Flowing);
        // A detection every 20th of 30 frames/s is 1.5/s by design, not overload.
        assert_eq!(m.judge(now, Duration::ZERO, true, 2.0, 20), Flow::Flowing);
    }

    #[test]
    fn the_rate_rule_waits_for_a_full_window() {
        let t0 = Instant::now();
        let m = fed(t0, 2, 30, 0);
        assert_eq!(
            m.judge(t0 + S * 2, Duration::ZERO, true, 2.0, 1),
            Flow::Flowing
        );
        assert_eq!(m.detect_fps(), Some(0.0));
        assert_eq!(FlowMonitor::new(t0).detect_fps(), None);
    }

    #[test]
    fn a_stalled_output_with_a_delivering_source_is_overload_never_lost() {
        let t0 = Instant::now();
        let mut m = FlowMonitor::new(t0);
        for i in 0..=12 {
            // Frames stop after 1 s.
            m.sample(t0 + S * i, 30.min(30 * i as u64), 0);
        }
        let now = t0 + S * 12;
        assert_eq!(
            m.judge(now, Duration::from_millis(30), true, 0.0, 1),
            Flow::Overloaded
        );
        // Before STALL_TIMEOUT it is not.
        assert_eq!(
            m.judge(t0 + S * 10, Duration::ZERO, true, 0.0, 1),
            Flow::Flowing
        );
    }

    #[test]
    fn a_silent_live_source_is_lost_and_a_file_is_not() {
        let t0 = Instant::now();
        let m = fed(t0, 12, 0, 0);
        let now = t0 + S * 12;
        let idle = Duration::from_secs(11);
        assert_eq!(m.judge(now, idle, true, 2.0, 1), Flow::Lost);
        assert_eq!(m.judge(now, idle, false, 2.0, 1), Flow::Flowing);
    }

    #[test]
    fn counters_start_again_at_zero_with_a_new_pipeline() {
        let mut last = 0;
        assert_eq!(counter_delta(&mut last, 10), 10);
        assert_eq!(counter_delta(&mut last, 15), 5);
        // Rebuilt: the element counts from zero again.
        assert_eq!(counter_delta(&mut last, 3), 3);
        assert_eq!(counter_delta(&mut last, 3), 0);
    }
}
