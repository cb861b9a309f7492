//! A greedy IoU tracker: a face keeps its track id, and so its cached identity, from one
//! detection frame to the next.

use crate::detect::Detection;
use crate::identity::Vote;

#[derive(Debug, Clone)]
pub struct Track {
    pub id: u64,
    pub detection: Detection,
    /// The track's name, decided over its embedding attempts.
    pub vote: Vote,
    /// Frame number of the latest embedding attempt of this track.
    pub embedded_at: Option<u64>,
    /// Detection rounds in a row without a matching detection.
    pub misses: u32,
    /// IoU between the latest detection and the one before it (1 for a new track). A weak
    /// overlap, as at a scene cut, means the face may belong to someone else now.
    pub last_iou: f32,
}

#[derive(Debug, Clone)]
pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    pub iou_threshold: f32,
    /// Detection rounds a track survives unseen (it is not reported meanwhile).
    pub max_misses: u32,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            tracks: Vec::new(),
            next_id: 1,
            iou_threshold: 0.3,
            // YuNet flickers around the score threshold for a few frames at a time.
            max_misses: 5,
        }
    }
}

impl Tracker {
    /// Associates new detections with tracks (highest IoU first) and returns the indices of
    /// the tracks seen in this round, in the order of `detections`.
    pub fn update(&mut self, detections: Vec<Detection>) -> Vec<usize> {
        let mut pairs = Vec::new();
        for (d, det) in detections.iter().enumerate() {
            for (t, track) in self.tracks.iter().enumerate() {
                let iou = det.bbox.iou(&track.detection.bbox);
                if iou >= self.iou_threshold {
                    pairs.push((iou, d, t));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut det_to_track = vec![None; detections.len()];
        let mut track_taken = vec![false; self.tracks.len()];
        for (iou, d, t) in pairs {
            if det_to_track[d].is_none() && !track_taken[t] {
                det_to_track[d] = Some((t, iou));
                track_taken[t] = true;
            }
        }
        for (track, taken) in self.tracks.iter_mut().zip(&track_taken) {
            if !taken {
                track.misses += 1;
            }
        }
        let mut seen = Vec::with_capacity(detections.len());
        for (detection, slot) in detections.into_iter().zip(det_to_track) {
            match slot {
                Some((t, iou)) => {
                    let track = &mut self.tracks[t];
                    track.detection = detection;
                    track.misses = 0;
                    track.last_iou = iou;
                    seen.push(t);
                }
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        detection,
                        vote: Vote::default(),
                        embedded_at: None,
                        misses: 0,
                        last_iou: 1.0,
                    });
                    self.next_id += 1;
                    seen.push(self.tracks.len() - 1);
                }
            }
        }
        // Drop stale tracks, keeping the indices in `seen` valid.
        let max_misses = self.max_misses;
        let mut remap = Vec::with_capacity(self.tracks.len());
        let mut kept = 0;
        for track in &self.tracks {
            remap.push(kept);
            if track.misses <= max_misses {
                kept += 1;
            }
        }
        self.tracks.retain(|t| t.misses <= max_misses);
        seen.into_iter().map(|i| remap[i]).collect()
    }

    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    pub fn track_mut(&mut self, index: usize) -> &mut Track {
        &mut self.tracks[index]
    }

    /// Gives track `index` a new id and a fresh vote: the face in it is someone else now (a
    /// scene cut put a new face where the old one was).
    pub fn renew(&mut self, index: usize) {
        let t = &mut self.tracks[index];
        t.id = self.next_id;
        t.vote = Vote::default();
        t.embedded_at = None;
        self.next_id += 1;
    }

    /// Forgets every vote, for example after the gallery or a decision setting changed.
    pub fn clear_identities(&mut self) {
        for t in &mut self.tracks {
            t.vote = Vote::default();
            t.embedded_at = None;
        }
    }

    pub fn reset(&mut self) {
        self.tracks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BBox;

    fn det(x: f32) -> Detection {
        Detection {
            bbox: BBox {
                x,
                y: 0.0,
                w: 20.0,
                h: 20.0,
            },
            landmarks: [[0.0; 2]; 5],
            score: 0.9,
        }
    }

    #[test]
    fn ids_follow_moving_faces_and_new_faces_get_new_ids() {
        let mut tr = Tracker::default();
        let seen = tr.update(vec![det(0.0), det(100.0)]);
        let ids: Vec<u64> = seen.iter().map(|&i| tr.tracks()[i].id).collect();
        assert_eq!(ids, vec![1, 2]);
        // Both move a little, in the other order, and a third face appears.
        let seen = tr.update(vec![det(103.0), det(300.0), det(2.0)]);
        let ids: Vec<u64> = seen.iter().map(|&i| tr.tracks()[i].id).collect();
        assert_eq!(ids, vec![2, 3, 1]);
    }

    #[test]
    fn unseen_tracks_expire_after_max_misses() {
        let mut tr = Tracker::default();
        tr.update(vec![det(0.0)]);
        for _ in 0..5 {
            tr.update(vec![]);
        }
        assert_eq!(tr.tracks().len(), 1);
        let seen = tr.update(vec![det(1.0)]);
        assert_eq!(
            tr.tracks()[seen[0]].id,
            1,
            "a face missed five times keeps its id"
        );
        for _ in 0..6 {
            tr.update(vec![]);
        }
        assert!(tr.tracks().is_empty());
    }
}
