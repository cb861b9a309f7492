//! `inspect`, `embed` and `identify`: read-only views of galleries and photos.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use facerec_core::engine::{AnalyzedFace, Engine};
use facerec_core::gallery::{ClosePair, Gallery};
use facerec_core::stills::StillScales;
use facerec_core::stills::load_rgb;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct PersonSummary {
    pub name: String,
    pub embeddings: usize,
    pub sources: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct GallerySummary {
    pub path: PathBuf,
    /// The file's format version; below 3 (bincode) `facerec-model upgrade` rewrites it.
    pub format_version: u32,
    pub needs_upgrade: bool,
    pub recognizer_sha256: String,
    pub embedding_dim: u32,
    pub metric: String,
    pub threshold: f32,
    pub created_unix: u64,
    pub created: String,
    pub people: Vec<PersonSummary>,
    /// People closer than the threshold (see [`crate::train::lint`]), closest first.
    pub close_pairs: Vec<ClosePair>,
    /// The same, one `warning:` line each as printed.
    pub warnings: Vec<String>,
}

pub fn inspect(path: &Path) -> Result<GallerySummary> {
    let g = Gallery::load(path)?;
    Ok(GallerySummary {
        path: path.to_path_buf(),
        format_version: g.format_version(),
        needs_upgrade: g.needs_upgrade(),
        recognizer_sha256: g.header.recognizer_sha256.clone(),
        embedding_dim: g.header.embedding_dim,
        metric: format!("{:?}", g.header.metric).to_lowercase(),
        threshold: g.header.threshold,
        created_unix: g.header.created_unix,
        created: humantime::format_rfc3339_seconds(
            UNIX_EPOCH + Duration::from_secs(g.header.created_unix),
        )
        .to_string(),
        people: g
            .people
            .iter()
            .map(|p| PersonSummary {
                name: p.name.clone(),
                embeddings: p.enrolments.len(),
                sources: p.enrolments.iter().map(|e| e.source.clone()).collect(),
            })
            .collect(),
        close_pairs: g.close_pairs(g.header.threshold),
        warnings: crate::train::lint(&g),
    })
}

pub fn print_inspect(s: &GallerySummary) {
    println!("gallery:     {}", s.path.display());
    if s.needs_upgrade {
        println!(
            "format:      {} (bincode; run facerec-model upgrade)",
            s.format_version
        );
    } else {
        println!("format:      {}", s.format_version);
    }
    println!("recognizer:  sha256 {}", s.recognizer_sha256);
    println!(
        "embeddings:  {}-d, {}, threshold {}",
        s.embedding_dim, s.metric, s.threshold
    );
    println!("created:     {}", s.created);
    println!("people:      {}", s.people.len());
    for p in &s.people {
        println!("  {:<32} {} embedding(s)", p.name, p.embeddings);
    }
    for warning in &s.warnings {
        println!("warning: {warning}");
    }
}

fn round(v: f32, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v as f64 * scale).round() / scale
}

/// One face in `embed` output. The field names are an interface: tools and tests read them.
#[derive(Debug, Serialize)]
pub struct EmbeddedFace {
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    pub score: f64,
    pub landmarks: [[f64; 2]; 5],
    pub embedding: Option<Vec<f32>>,
}

#[derive(Debug, Serialize)]
pub struct EmbeddedImage {
    pub image: PathBuf,
    pub faces: Vec<EmbeddedFace>,
}

fn face_box(face: &AnalyzedFace) -> [f64; 4] {
    let b = face.detection.bbox;
    [round(b.x, 2), round(b.y, 2), round(b.w, 2), round(b.h, 2)]
}

pub fn embed(engine: &mut Engine, image: &Path, scales: StillScales) -> Result<EmbeddedImage> {
    let faces = engine.analyze_at(&load_rgb(image)?, scales)?;
    Ok(EmbeddedImage {
        image: image.to_path_buf(),
        faces: faces
            .into_iter()
            .map(|f| EmbeddedFace {
                bbox: face_box(&f),
                score: round(f.detection.score, 4),
                landmarks: f
                    .detection
                    .landmarks
                    .map(|p| [round(p[0], 2), round(p[1], 2)]),
                embedding: f.embedding,
            })
            .collect(),
    })
}

#[derive(Debug, Serialize)]
pub struct IdentifiedFace {
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    pub score: f64,
    pub name: String,
    /// Distance to the nearest person; `None` when the face was too small to embed.
    pub distance: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct IdentifiedImage {
    pub image: PathBuf,
    pub faces: Vec<IdentifiedFace>,
}

/// Faces left to right, each with the nearest person within the threshold, or "unknown".
pub fn identify(engine: &mut Engine, image: &Path, scales: StillScales) -> Result<IdentifiedImage> {
    let mut faces = engine.analyze_at(&load_rgb(image)?, scales)?;
    faces.sort_by(|a, b| a.detection.bbox.x.total_cmp(&b.detection.bbox.x));
    Ok(IdentifiedImage {
        image: image.to_path_buf(),
        faces: faces
            .iter()
            .map(|f| IdentifiedFace {
                bbox: face_box(f),
                score: round(f.detection.score, 4),
                name: f
                    .identity
                    .as_ref()
                    .map(|m| m.label())
                    .unwrap_or(facerec_core::gallery::UNKNOWN)
                    .to_string(),
                distance: f
                    .identity
                    .as_ref()
                    .and_then(|m| m.distance)
                    .map(|d| round(d, 4)),
            })
            .collect(),
    })
}

pub fn print_identified(result: &IdentifiedImage) {
    if result.faces.is_empty() {
        println!("{}: no faces", result.image.display());
    }
    for f in &result.faces {
        let distance = f
            .distance
            .map(|d| format!("distance {d:.3}"))
            .unwrap_or_else(|| "too small to recognise".into());
        let [x, y, w, h] = f.bbox;
        println!(
            "{}: {} ({distance}) at x={x:.0} y={y:.0} w={w:.0} h={h:.0}",
            result.image.display(),
            f.name
        );
    }
}
