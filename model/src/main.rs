//! `facerec-model`: builds and inspects `model.data` galleries with the same detection,
//! alignment and embedding as the `facerec` element (both use `facerec-core`).
//!
//! This is the first cut (train and inspect); the model-tool issue adds YAML input, append,
//! embed, identify, eval and model fetching.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use facerec_core::engine::{Engine, EngineConfig, load_rgb};
use facerec_core::gallery::Gallery;

#[derive(Parser)]
#[command(
    name = "facerec-model",
    version,
    about = "Build and inspect facerec galleries (model.data)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a gallery from a folder of photos: `Name.jpg` files, or one sub-folder per person.
    Train {
        /// Folder of photos.
        input: PathBuf,
        /// Where to write the gallery (atomically).
        #[arg(short, long, default_value = "model.data")]
        output: PathBuf,
        /// Write the gallery even if some photos had to be skipped.
        #[arg(long)]
        allow_missing: bool,
        /// Detector model (default: searched in FACEREC_MODEL_DIR and the usual places).
        #[arg(long, env = "FACEREC_DETECTOR")]
        detector: Option<PathBuf>,
        /// Recognizer model (default: searched like --detector).
        #[arg(long, env = "FACEREC_RECOGNIZER")]
        recognizer: Option<PathBuf>,
    },
    /// Show a gallery's header and people.
    Inspect { gallery: PathBuf },
}

const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "JPG"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

/// (person, photo) pairs: a file's stem names the person, or its sub-folder does.
fn photos(input: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in sorted_entries(input)? {
        if entry.is_dir() {
            let person = entry
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            for photo in sorted_entries(&entry)?.into_iter().filter(|p| is_image(p)) {
                out.push((person.clone(), photo));
            }
        } else if is_image(&entry) {
            // Path::file_stem drops only the extension: "Greg.jpg" is "Greg", not "Gre".
            let person = entry
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            out.push((person, entry));
        }
    }
    Ok(out)
}

fn train(input: &Path, output: &Path, allow_missing: bool, config: EngineConfig) -> Result<()> {
    let photos = photos(input)?;
    if photos.is_empty() {
        bail!("no JPEG or PNG photos in {}", input.display());
    }
    let mut engine = Engine::new(config)?;
    let mut gallery = Gallery::new(engine.recognizer().sha256(), engine.recognizer().dim());
    let mut skipped = Vec::new();
    for (i, (person, photo)) in photos.iter().enumerate() {
        eprintln!("[{}/{}] {}", i + 1, photos.len(), photo.display());
        let faces = match load_rgb(photo).and_then(|image| engine.analyze(&image)) {
            Ok(faces) => faces,
            Err(e) => {
                skipped.push(format!("{}: {e}", photo.display()));
                continue;
            }
        };
        if faces.len() > 1 {
            eprintln!(
                "warning: {} has {} faces; using the largest",
                photo.display(),
                faces.len()
            );
        }
        let largest = faces
            .into_iter()
            .max_by(|a, b| a.detection.bbox.area().total_cmp(&b.detection.bbox.area()));
        match largest.and_then(|f| f.embedding) {
            Some(embedding) => gallery.add(person, &photo.display().to_string(), embedding)?,
            None => skipped.push(format!("{}: no usable face found", photo.display())),
        }
    }
    let used = gallery.embedding_count();
    eprintln!(
        "{} people, {used} photos used, {} skipped",
        gallery.people.len(),
        skipped.len()
    );
    for reason in &skipped {
        eprintln!("skipped {reason}");
    }
    if used == 0 {
        bail!(
            "no face could be enrolled from {}; {} not written",
            input.display(),
            output.display()
        );
    }
    if !skipped.is_empty() && !allow_missing {
        bail!(
            "{} photo(s) skipped; {} not written (use --allow-missing to write it anyway)",
            skipped.len(),
            output.display()
        );
    }
    gallery.save(output)?;
    println!("wrote {}", output.display());
    Ok(())
}

fn inspect(path: &Path) -> Result<()> {
    let g = Gallery::load(path)?;
    println!("gallery:     {}", path.display());
    println!("format:      v{}", facerec_core::gallery::FORMAT_VERSION);
    println!("recognizer:  sha256 {}", g.header.recognizer_sha256);
    println!(
        "embedding:   {}-d, {:?}, threshold {}",
        g.header.embedding_dim, g.header.metric, g.header.threshold
    );
    println!("created:     {} (unix seconds)", g.header.created_unix);
    println!("people:      {}", g.people.len());
    for p in &g.people {
        println!("  {:<30} {} embedding(s)", p.name, p.enrolments.len());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train {
            input,
            output,
            allow_missing,
            detector,
            recognizer,
        } => {
            let mut config = EngineConfig::default();
            // Enrolment photos are stills: detect at native resolution, like the references.
            config.detect.network_width = 0;
            if let Some(d) = detector {
                config.detector = d;
            }
            if let Some(r) = recognizer {
                config.recognizer = r;
            }
            train(&input, &output, allow_missing, config)
        }
        Command::Inspect { gallery } => inspect(&gallery),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facerec-model: {e:#}");
            ExitCode::FAILURE
        }
    }
}
