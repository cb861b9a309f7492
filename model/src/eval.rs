//! `eval`: identification against a gallery, and pair verification, on a labelled folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use facerec_core::embed::euclidean;
use facerec_core::engine::Engine;
use facerec_core::gallery::{Gallery, UNKNOWN};
use facerec_core::stills::StillScales;
use facerec_core::stills::load_rgb;
use serde::Serialize;

use crate::photos::{discover, is_image};
use crate::train::enrolment_face;

#[derive(Debug, Default, Serialize)]
pub struct Identification {
    pub photos: usize,
    pub correct: usize,
    pub accuracy: f64,
    /// Named as someone else, or named although not in the gallery.
    pub false_accepts: usize,
    /// In the gallery but called "unknown".
    pub false_rejects: usize,
    /// Photos in which no usable face was found.
    pub no_face: Vec<PathBuf>,
    /// (truth, predicted) → count, for every photo with a face.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    pub errors: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Verification {
    pub same_pairs: usize,
    pub different_pairs: usize,
    pub same_mean: f64,
    pub same_max: f64,
    pub different_mean: f64,
    pub different_min: f64,
    pub threshold: f64,
    /// Same-person pairs at or above the threshold plus different-person pairs below it.
    pub errors_at_threshold: usize,
    /// Area under the ROC curve (probability that a random same pair is closer than a random
    /// different pair).
    pub auc: f64,
    /// Equal error rate and the threshold where it occurs.
    pub eer: f64,
    pub eer_threshold: f64,
    /// Fraction of same pairs accepted at the strictest threshold with no false accept.
    pub tar_at_far0: f64,
}

#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub gallery: PathBuf,
    pub folder: PathBuf,
    pub threshold: f32,
    pub identification: Identification,
    pub verification: Verification,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

pub fn verification(labelled: &[(String, Vec<f32>)], threshold: f64) -> Verification {
    let (mut same, mut different) = (Vec::new(), Vec::new());
    for (i, (a_label, a)) in labelled.iter().enumerate() {
        for (b_label, b) in &labelled[i + 1..] {
            let d = euclidean(a, b) as f64;
            if a_label == b_label {
                same.push(d)
            } else {
                different.push(d)
            }
        }
    }
    let errors_at_threshold = same.iter().filter(|&&d| d >= threshold).count()
        + different.iter().filter(|&&d| d < threshold).count();
    let auc = if same.is_empty() || different.is_empty() {
        0.0
    } else {
        let wins: f64 = same
            .iter()
            .map(|s| {
                different
                    .iter()
                    .map(|d| {
                        if s < d {
                            1.0
                        } else if s == d {
                            0.5
                        } else {
                            0.0
                        }
                    })
                    .sum::<f64>()
            })
            .sum();
        wins / (same.len() * different.len()) as f64
    };
    // Sweep every observed distance as a threshold for the equal error rate.
    let mut candidates: Vec<f64> = same.iter().chain(&different).copied().collect();
    candidates.sort_by(f64::total_cmp);
    let (mut eer, mut eer_threshold) = (1.0, 0.0);
    for &t in &candidates {
        let frr = same.iter().filter(|&&d| d > t).count() as f64 / same.len().max(1) as f64;
        let far =
            different.iter().filter(|&&d| d <= t).count() as f64 / different.len().max(1) as f64;
        if (frr - far).abs() < 1.0 && frr.max(far) < eer {
            eer = frr.max(far);
            eer_threshold = t;
        }
    }
    let different_min = different.iter().copied().fold(f64::INFINITY, f64::min);
    let tar_at_far0 =
        same.iter().filter(|&&d| d < different_min).count() as f64 / same.len().max(1) as f64;
    Verification {
        same_pairs: same.len(),
        different_pairs: different.len(),
        same_mean: mean(&same),
        same_max: same.iter().copied().fold(0.0, f64::max),
        different_mean: mean(&different),
        different_min: if different.is_empty() {
            0.0
        } else {
            different_min
        },
        threshold,
        errors_at_threshold,
        auc,
        eer,
        eer_threshold,
        tar_at_far0,
    }
}

pub fn eval(
    engine: &mut Engine,
    gallery_path: &Path,
    folder: &Path,
    threshold: Option<f32>,
    scales: StillScales,
) -> Result<EvalReport> {
    let gallery = engine.load_gallery(gallery_path)?;
    let threshold = threshold.unwrap_or(gallery.header.threshold);
    let known: Vec<String> = gallery.people.iter().map(|p| p.name.clone()).collect();
    let found = discover(folder)?;
    for warning in &found.warnings {
        eprintln!("warning: {warning}");
    }
    let photos: Vec<_> = found
        .photos
        .into_iter()
        .filter(|p| is_image(&p.path))
        .collect();
    if photos.is_empty() {
        bail!("no photos in {}", folder.display());
    }
    let mut id = Identification::default();
    let mut labelled = Vec::new();
    for photo in &photos {
        let truth = if known.contains(&photo.person) {
            photo.person.clone()
        } else {
            UNKNOWN.to_string()
        };
        let face = enrolment_face(engine.analyze_at(&load_rgb(&photo.path)?, scales)?);
        id.photos += 1;
        let Some(embedding) = face.and_then(|f| f.embedding) else {
            id.no_face.push(photo.path.clone());
            id.errors
                .push(format!("{}: no usable face", photo.path.display()));
            continue;
        };
        let predicted = gallery_label(&gallery, &embedding, threshold);
        *id.confusion
            .entry(truth.clone())
            .or_default()
            .entry(predicted.clone())
            .or_default() += 1;
        if predicted == truth {
            id.correct += 1;
        } else {
            if predicted == UNKNOWN {
                id.false_rejects += 1;
            } else {
                id.false_accepts += 1;
            }
            id.errors.push(format!(
                "{}: expected {truth}, got {predicted}",
                photo.path.display()
            ));
        }
        labelled.push((photo.person.clone(), embedding));
    }
    id.accuracy = id.correct as f64 / id.photos.max(1) as f64;
    Ok(EvalReport {
        gallery: gallery_path.to_path_buf(),
        folder: folder.to_path_buf(),
        threshold,
        identification: id,
        verification: verification(&labelled, threshold as f64),
    })
}

fn gallery_label(gallery: &Gallery, embedding: &[f32], threshold: f32) -> String {
    gallery.best_match(embedding, threshold).label().to_string()
}

pub fn print_report(r: &EvalReport) {
    let id = &r.identification;
    println!(
        "identification against {} at threshold {}:",
        r.gallery.display(),
        r.threshold
    );
    println!(
        "  {} photos, {} correct, accuracy {:.1}%, {} false accepts, {} false rejects, {} without a face",
        id.photos,
        id.correct,
        100.0 * id.accuracy,
        id.false_accepts,
        id.false_rejects,
        id.no_face.len()
    );
    println!("  confusion (truth -> predicted: photos):");
    for (truth, row) in &id.confusion {
        for (predicted, n) in row {
            println!("    {truth} -> {predicted}: {n}");
        }
    }
    for e in &id.errors {
        println!("  error: {e}");
    }
    let v = &r.verification;
    println!(
        "pair verification over {} same-person and {} different-person pairs:",
        v.same_pairs, v.different_pairs
    );
    println!(
        "  same person: mean {:.3}, max {:.3}; different: mean {:.3}, min {:.3}",
        v.same_mean, v.same_max, v.different_mean, v.different_min
    );
    println!(
        "  errors at {:.2}: {}; AUC {:.4}; EER {:.1}% at {:.3}; TAR at FAR 0: {:.1}%",
        v.threshold,
        v.errors_at_threshold,
        v.auc,
        100.0 * v.eer,
        v.eer_threshold,
        100.0 * v.tar_at_far0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_counts_errors_and_separability() {
        let l = |s: &str, x: f32| (s.to_string(), vec![x, 0.0]);
        // a: 0.0 and 0.3 (same, d 0.3); b: 1.0 (d 0.7 and 1.0 to a's).
        let v = verification(&[l("a", 0.0), l("a", 0.3), l("b", 1.0)], 0.6);
        assert_eq!((v.same_pairs, v.different_pairs), (1, 2));
        assert_eq!(v.errors_at_threshold, 0);
        assert_eq!(v.auc, 1.0);
        assert_eq!(v.tar_at_far0, 1.0);
        let v = verification(&[l("a", 0.0), l("a", 0.3), l("b", 1.0)], 0.2);
        assert_eq!(
            v.errors_at_threshold, 1,
            "the same pair at 0.3 is rejected at 0.2"
        );
    }
}
