//! `train`: photos in, `model.data` out, never half-written and never crashing on a bad photo.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use facerec_core::engine::{Engine, EngineConfig};
use facerec_core::gallery::{Gallery, check_person_name};
use facerec_core::stills::StillScales;
use facerec_core::stills::load_rgb;
use indicatif::{ProgressBar, ProgressStyle};

use crate::photos::{LabelledPhoto, discover, shown_name};

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub input: PathBuf,
    pub output: PathBuf,
    pub append: bool,
    pub allow_missing: bool,
    /// How photos are scanned for faces.
    pub scales: StillScales,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct TrainSummary {
    pub people: usize,
    pub photos_used: usize,
    pub skipped: Vec<Skipped>,
    pub written: bool,
}

/// A progress bar on a terminal, plain log lines otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}") {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar, total }
    }

    pub fn start(&self, index: usize, path: &Path) {
        match &self.bar {
            Some(bar) => bar.set_message(path.display().to_string()),
            None => eprintln!("[{}/{}] {}", index + 1, self.total, path.display()),
        }
    }

    pub fn finish_one(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    pub fn warn(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub use facerec_core::engine::enrolment_face;

fn enrol_one(
    engine: &mut Engine,
    photo: &LabelledPhoto,
    scales: StillScales,
    progress: &Progress,
) -> Result<Vec<f32>, String> {
    let image = load_rgb(&photo.path).map_err(|e| format!("cannot be read: {e}"))?;
    let faces = engine
        .analyze_at(&image, scales)
        .map_err(|e| e.to_string())?;
    let found = faces.len();
    let embeddable = faces.iter().filter(|f| f.embedding.is_some()).count();
    match enrolment_face(faces) {
        None if found == 0 => Err("no face found".into()),
        None => Err(format!("{found} face(s) found, all too small to recognise")),
        Some(face) => {
            if embeddable > 1 {
                progress.warn(&format!(
                    "{} shows {embeddable} faces; using the largest",
                    photo.path.display()
                ));
            }
            Ok(face.embedding.expect("filtered on embedding"))
        }
    }
}

/// What makes the photo list unusable, one line each: a person name that loading would refuse
/// (from a file or folder name; metadata.yaml names are checked when it is parsed), and a photo
/// listed under more than one name.
pub fn input_problems(input: &Path, photos: &[LabelledPhoto]) -> Vec<String> {
    let mut problems = Vec::new();
    for photo in photos {
        if let Err(why) = check_person_name(&photo.person) {
            let from_folder = photo.path.parent().is_some_and(|p| p != input);
            let (what, source) = if from_folder {
                ("folder", photo.path.parent().unwrap_or(input))
            } else {
                ("photo", photo.path.as_path())
            };
            problems.push(format!(
                "{what} {:?}: the person name {} {why}",
                source.display().to_string(),
                shown_name(&photo.person)
            ));
        }
    }
    // The same file under several names, also through different paths or symlinks.
    let mut names: Vec<(PathBuf, &Path, Vec<&str>)> = Vec::new();
    for photo in photos {
        let key = std::fs::canonicalize(&photo.path).unwrap_or_else(|_| photo.path.clone());
        match names.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, _, list)) if !list.contains(&photo.person.as_str()) => {
                list.push(&photo.person)
            }
            Some(_) => {}
            None => names.push((key, &photo.path, vec![&photo.person])),
        }
    }
    for (_, path, list) in names.iter().filter(|(_, _, l)| l.len() > 1) {
        let shown: Vec<String> = list.iter().map(|n| shown_name(n)).collect();
        problems.push(format!(
            "photo {:?} is listed under {} names ({}): one photo enrols one person",
            path.display().to_string(),
            list.len(),
            shown.join(", ")
        ));
    }
    problems
}

/// Builds (or extends) a gallery. On success the output holds every usable photo; on error it
/// is untouched.
pub fn train(options: &TrainOptions, config: EngineConfig) -> Result<TrainSummary> {
    let found = discover(&options.input)?;
    for warning in &found.warnings {
        eprintln!("warning: {warning}");
    }
    let photos = found.photos;
    if photos.is_empty() {
        bail!("no photos in {}", options.input.display());
    }
    // Input errors are found before the models load, and no --allow-missing overrides them:
    // a gallery with such a name is one that every loader refuses, and one photo under several
    // names makes those people tie at distance 0, so one of them is misnamed whenever it shows.
    let problems = input_problems(&options.input, &photos);
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        bail!(
            "{} problem(s) in {}, so {} was not written",
            problems.len(),
            options.input.display(),
            options.output.display()
        );
    }
    let mut engine = Engine::new(config)?;
    let (sha256, dim) = (
        engine.recognizer().sha256().to_string(),
        engine.recognizer().dim(),
    );
    let mut gallery = if options.append && options.output.exists() {
        Gallery::load_for(&options.output, &sha256, dim)?
    } else {
        Gallery::new(&sha256, dim)
    };

    let progress = Progress::new(photos.len());
    let mut summary = TrainSummary::default();
    for (index, photo) in photos.iter().enumerate() {
        progress.start(index, &photo.path);
        let source = photo.path.display().to_string();
        let already = gallery
            .people
            .iter()
            .any(|p| p.name == photo.person && p.enrolments.iter().any(|e| e.source == source));
        if already {
            progress.warn(&format!(
                "{source} is already enrolled as {}; kept once",
                photo.person
            ));
        } else {
            match enrol_one(&mut engine, photo, options.scales, &progress) {
                Ok(embedding) => {
                    gallery.add(&photo.person, &source, embedding)?;
                    summary.photos_used += 1;
                }
                Err(reason) => summary.skipped.push(Skipped {
                    path: photo.path.clone(),
                    reason,
                }),
            }
        }
        progress.finish_one();
    }
    progress.finish();
    summary.people = gallery.people.len();

    eprintln!(
        "people: {}, photos used: {}, photos skipped: {}",
        summary.people,
        summary.photos_used,
        summary.skipped.len()
    );
    for s in &summary.skipped {
        eprintln!("skipped {}: {}", s.path.display(), s.reason);
    }
    if gallery.embedding_count() == 0 {
        bail!(
            "no face could be enrolled; {} not written",
            options.output.display()
        );
    }
    if !summary.skipped.is_empty() && !options.allow_missing {
        bail!(
            "{} photo(s) skipped, so {} was not written (--allow-missing writes it anyway)",
            summary.skipped.len(),
            options.output.display()
        );
    }
    for warning in lint(&gallery) {
        eprintln!("warning: {warning}");
    }
    gallery.save(&options.output)?;
    summary.written = true;
    Ok(summary)
}

/// One line per two people closer than the gallery's match threshold (by their nearest
/// embeddings, which is what matching compares): the same person under two names, or
/// look-alikes that recognition will confuse.
pub fn lint(gallery: &Gallery) -> Vec<String> {
    let threshold = gallery.header.threshold;
    gallery
        .close_pairs(threshold)
        .iter()
        .map(|p| {
            format!(
                "{} and {} are {:.3} apart, closer than the match threshold {threshold}: the same person under two names, or look-alikes that recognition will confuse",
                shown_name(&p.first),
                shown_name(&p.second),
                p.distance
            )
        })
        .collect()
}
