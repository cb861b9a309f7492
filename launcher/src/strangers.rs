//! Temporary ids for unknown faces (`stranger-7`), by clustering their embeddings, so that the
//! same unknown visitor seen again on any camera keeps one id. In memory only: nothing here is
//! ever written anywhere, and a cluster is forgotten `ttl` after it was last seen.
//!
//! Services layer: std only.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The default distance within which an unknown face joins a stranger's cluster. Measured on
/// the 12 real single-face knn_examples photos of 5 people (see the tests): same-person distances
/// 0.333 to 0.438, different people 0.688 at the closest (Obama and Lacamoire). 0.5 leaves room
/// above the same-person maximum for poorer video frames and stays below the gallery's naming
/// threshold 0.6, since merging two people under one id is worse than splitting one in two.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// The default time after which an unseen stranger is forgotten.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Embeddings kept per stranger: enough for a few views (poses, cameras), bounded so that a
/// long-seen stranger costs no more than a brief one.
pub const MAX_EMBEDDINGS: usize = 16;

/// An embedding closer than this to one already kept adds no new view and is not stored.
const NOVELTY: f32 = 0.1;

struct Cluster {
    id: String,
    embeddings: VecDeque<Vec<f32>>,
    last_seen: Instant,
}

pub struct Strangers {
    ttl: Duration,
    threshold: f32,
    next_number: u64,
    clusters: Vec<Cluster>,
}

fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

impl Strangers {
    /// `first_number` is the N of the first id handed out (the launcher passes one more than
    /// the highest stranger number in the history, so ids never repeat across restarts).
    pub fn new(ttl: Duration, threshold: f32, first_number: u64) -> Strangers {
        Strangers {
            ttl,
            threshold,
            next_number: first_number,
            clusters: Vec::new(),
        }
    }

    /// The id of the live stranger nearest to `embedding` (Euclidean distance to any of its kept
    /// embeddings) if within the threshold, else a new `stranger-N`. Refreshes its last-seen time.
    pub fn assign(&mut self, embedding: &[f32], now: Instant) -> String {
        self.expire(now);
        let nearest = self
            .clusters
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                c.embeddings
                    .iter()
                    .map(move |e| (i, distance(e, embedding)))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match nearest {
            Some((i, d)) if d <= self.threshold => {
                let cluster = &mut self.clusters[i];
                cluster.last_seen = now;
                if d >= NOVELTY {
                    if cluster.embeddings.len() == MAX_EMBEDDINGS {
                        cluster.embeddings.pop_front();
                    }
                    cluster.embeddings.push_back(embedding.to_vec());
                }
                cluster.id.clone()
            }
            _ => {
                let id = format!("stranger-{}", self.next_number);
                self.next_number += 1;
                self.clusters.push(Cluster {
                    id: id.clone(),
                    embeddings: VecDeque::from([embedding.to_vec()]),
                    last_seen: now,
                });
                id
            }
        }
    }

    /// Forgets strangers not seen for the TTL.
    pub fn expire(&mut self, now: Instant) {
        let ttl = self.ttl;
        self.clusters
            .retain(|c| now.saturating_duration_since(c.last_seen) < ttl);
    }

    /// Forgets one stranger (for example once someone enrolled them under a name).
    pub fn forget(&mut self, id: &str) {
        self.clusters.retain(|c| c.id != id);
    }

    /// Forgets every stranger with a kept embedding within the threshold of one of
    /// `embeddings` (a person being erased: those strangers were them); returns their ids.
    pub fn forget_near(&mut self, embeddings: &[Vec<f32>]) -> Vec<String> {
        let threshold = self.threshold;
        let mut forgotten = Vec::new();
        self.clusters.retain(|c| {
            let near = c
                .embeddings
                .iter()
                .any(|e| embeddings.iter().any(|p| distance(e, p) <= threshold));
            if near {
                forgotten.push(c.id.clone());
            }
            !near
        });
        forgotten
    }

    /// Live strangers.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facerec_core::engine::{Engine, EngineConfig};
    use facerec_core::stills::load_rgb;
    use facerec_core::testsupport::{knn_train_photos, require, require_runtime};
    use std::collections::{HashMap, HashSet};

    const KNN_TEST: &str = "testdata/face_recognition/knn_examples/test";

    /// `(person, photo, embedding)` for every knn_examples photo with one face: the train set
    /// and the single-face test photos.
    fn knn_embeddings() -> Option<Vec<(String, String, Vec<f32>)>> {
        if !require_runtime() || require("models/yunet_s_dynamic.onnx").is_none() {
            return None;
        }
        let test = require(KNN_TEST)?;
        let mut photos = knn_train_photos()?;
        for (person, file) in [
            ("alex_lacamoire", "alex_lacamoire1.jpg"),
            ("kit_harington", "johnsnow_test1.jpg"),
            ("obama", "obama1.jpg"),
        ] {
            photos.push((person.to_string(), test.join(file)));
        }
        let mut engine = Engine::new(EngineConfig::default()).expect("models load");
        let mut out = Vec::new();
        for (person, path) in photos {
            let faces = engine.analyze(&load_rgb(&path).unwrap()).unwrap();
            assert_eq!(faces.len(), 1, "{}", path.display());
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.push((person, name, faces[0].embedding.clone().unwrap()));
        }
        Some(out)
    }

    /// Erasing a person forgets the strangers that were them (real embeddings: the clusters
    /// of one person's photos go, the others stay).
    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn an_erased_persons_strangers_are_forgotten_and_no_one_else() {
        let Some(faces) = knn_embeddings() else {
            return;
        };
        let t0 = Instant::now();
        let mut strangers = Strangers::new(DEFAULT_TTL, DEFAULT_THRESHOLD, 1);
        let mut obama_ids = HashSet::new();
        for (person, _, embedding) in &faces {
            let id = strangers.assign(embedding, t0);
            if person == "obama" {
                obama_ids.insert(id);
            }
        }
        let before = strangers.len();
        let obama: Vec<Vec<f32>> = faces
            .iter()
            .filter(|(p, _, _)| p == "obama")
            .map(|(_, _, e)| e.clone())
            .take(1)
            .collect();
        let forgotten: HashSet<String> = strangers.forget_near(&obama).into_iter().collect();
        assert_eq!(forgotten, obama_ids);
        assert_eq!(strangers.len(), before - obama_ids.len());
        assert!(strangers.forget_near(&obama).is_empty());
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn real_photos_of_one_person_share_an_id_and_people_never_do() {
        let Some(faces) = knn_embeddings() else {
            return;
        };
        assert_eq!(faces.len(), 12);
        // The measured distances the default threshold is chosen from.
        let (mut same_max, mut diff_min) = (0.0f32, f32::MAX);
        for (i, a) in faces.iter().enumerate() {
            for b in &faces[i + 1..] {
                let d = distance(&a.2, &b.2);
                eprintln!("{:>15} {:<16} {:>15} {:<16} {d:.3}", a.0, a.1, b.0, b.1);
                if a.0 == b.0 {
                    same_max = same_max.max(d);
                } else {
                    diff_min = diff_min.min(d);
                }
            }
        }
        eprintln!("same person: max {same_max:.3}; different people: min {diff_min:.3}");
        assert!(
            same_max < DEFAULT_THRESHOLD && DEFAULT_THRESHOLD < diff_min,
            "the default threshold {DEFAULT_THRESHOLD} must separate {same_max} from {diff_min}"
        );

        // Interleaved, as faces from several cameras arrive.
        let t0 = Instant::now();
        let mut strangers = Strangers::new(DEFAULT_TTL, DEFAULT_THRESHOLD, 5);
        let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
        let mut order: Vec<usize> = (0..faces.len()).collect();
        order.sort_by_key(|&i| (i * 7) % faces.len());
        for (step, &i) in order.iter().enumerate() {
            let (person, _, embedding) = &faces[i];
            let id = strangers.assign(embedding, t0 + Duration::from_secs(step as u64));
            ids.entry(person.clone()).or_default().insert(id);
        }
        let mut per_person: Vec<(String, Vec<String>)> = ids
            .into_iter()
            .map(|(p, s)| {
                let mut s: Vec<String> = s.into_iter().collect();
                s.sort();
                (p, s)
            })
            .collect();
        per_person.sort();
        eprintln!("{per_person:?}");
        // Each of the 5 people got exactly one id, and the 5 ids are distinct, numbered from 5.
        let all: HashSet<&String> = per_person.iter().flat_map(|(_, s)| s).collect();
        assert!(
            per_person.iter().all(|(_, s)| s.len() == 1),
            "{per_person:?}"
        );
        assert_eq!(per_person.len(), 5);
        assert_eq!(all.len(), 5, "{per_person:?}");
        let want: HashSet<String> = (5..10).map(|n| format!("stranger-{n}")).collect();
        assert_eq!(all.into_iter().cloned().collect::<HashSet<_>>(), want);
        assert_eq!(strangers.len(), 5);
    }

    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn real_strangers_vanish_after_the_ttl() {
        let Some(faces) = knn_embeddings() else {
            return;
        };
        let obama: Vec<&Vec<f32>> = faces
            .iter()
            .filter(|f| f.0 == "obama")
            .map(|f| &f.2)
            .collect();
        let biden = &faces.iter().find(|f| f.0 == "biden").unwrap().2;
        let ttl = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut strangers = Strangers::new(ttl, DEFAULT_THRESHOLD, 1);
        assert_eq!(strangers.assign(obama[0], t0), "stranger-1");
        assert_eq!(strangers.assign(biden, t0), "stranger-2");
        // Seeing Obama again refreshes him; Biden is not seen again.
        let t1 = t0 + Duration::from_secs(50);
        assert_eq!(strangers.assign(obama[1], t1), "stranger-1");
        strangers.expire(t0 + ttl - Duration::from_millis(1));
        assert_eq!(strangers.len(), 2);
        strangers.expire(t0 + ttl);
        assert_eq!(strangers.len(), 1);
        // Biden's id is gone and never handed out again.
        assert_eq!(strangers.assign(biden, t0 + ttl), "stranger-3");
        assert_eq!(
            strangers.assign(obama[2], t1 + ttl - Duration::from_millis(1)),
            "stranger-1"
        );
        // Past Obama's TTL, his id vanishes too (assign expires first).
        assert_eq!(strangers.assign(obama[0], t1 + 2 * ttl), "stranger-4");
        assert_eq!(strangers.len(), 1);
        strangers.forget("stranger-4");
        assert!(strangers.is_empty());
    }

    #[test]
    fn clusters_keep_a_bounded_number_of_views() {
        let t0 = Instant::now();
        let mut strangers = Strangers::new(DEFAULT_TTL, 0.5, 1);
        for i in 0..100 {
            // Steps of 0.2 along one axis, each within the threshold of the last kept view.
            let mut e = vec![0.0f32; 128];
            e[0] = 0.2 * i as f32;
            assert_eq!(strangers.assign(&e, t0), "stranger-1", "step {i}");
        }
        assert_eq!(strangers.clusters[0].embeddings.len(), MAX_EMBEDDINGS);
        // A near duplicate adds no view.
        let mut strangers = Strangers::new(DEFAULT_TTL, 0.5, 1);
        strangers.assign(&[0.0; 4], t0);
        strangers.assign(&[0.05, 0.0, 0.0, 0.0], t0);
        assert_eq!(strangers.clusters[0].embeddings.len(), 1);
    }
}
