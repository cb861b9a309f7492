//! Where enrolment and evaluation photos come from, and whose face each one shows.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use facerec_core::gallery::check_person_name;
use serde::Deserialize;

/// A photo and the person it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledPhoto {
    pub person: String,
    pub path: PathBuf,
}

const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// What a folder walk found: the photos, and one warning line for each entry it passed over
/// (hidden files and folders, symlink loops and other unreadable entries), so that nothing is
/// skipped silently.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub photos: Vec<LabelledPhoto>,
    pub warnings: Vec<String>,
}

/// The entries of a folder, sorted, with hidden ones reported and left out.
fn sorted_entries(dir: &Path, warnings: &mut Vec<String>) -> Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        match entry {
            Ok(e) => entries.push(e.path()),
            Err(e) => warnings.push(format!("skipping an entry of {}: {e}", dir.display())),
        }
    }
    entries.sort();
    entries.retain(|p| {
        let hidden = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            let what = if p.is_dir() { "folder" } else { "file" };
            warnings.push(format!("skipping hidden {what} {}", p.display()));
        }
        !hidden
    });
    Ok(entries)
}

/// Whether `path` is a file or folder to use; anything else (a symlink loop, a dangling link, a
/// FIFO, a device) is reported.
fn classify(path: &Path, warnings: &mut Vec<String>) -> Option<bool> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Some(true),
        Ok(m) if m.is_file() => Some(false),
        Ok(_) => {
            warnings.push(format!(
                "skipping {}: not a regular file or folder",
                path.display()
            ));
            None
        }
        Err(e) => {
            warnings.push(format!("skipping {}: {e}", path.display()));
            None
        }
    }
}

/// The file stem, which names the person in a flat folder. `Path::file_stem` removes only the
/// extension: the demo's `rstrip('.jpg')` turned "Greg.jpg" into "Gre".
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// Photos in a folder: files directly inside are named by their stem, files in a sub-folder
/// by the sub-folder's name. Files that are not JPEG or PNG by name are included too, so that
/// they are reported rather than silently ignored. Hidden entries, symlink loops and anything
/// that is neither a file nor a folder are left out with a warning each.
pub fn from_folder(dir: &Path) -> Result<Discovered> {
    let mut found = Discovered::default();
    let warnings = &mut found.warnings;
    for entry in sorted_entries(dir, warnings)? {
        match classify(&entry, warnings) {
            Some(true) => {
                let person = entry
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                for path in sorted_entries(&entry, warnings)? {
                    match classify(&path, warnings) {
                        Some(false) => found.photos.push(LabelledPhoto {
                            person: person.clone(),
                            path,
                        }),
                        Some(true) => warnings.push(format!(
                            "skipping folder {}: photos are one folder deep",
                            path.display()
                        )),
                        None => {}
                    }
                }
            }
            Some(false) => found.photos.push(LabelledPhoto {
                person: stem(&entry),
                path: entry,
            }),
            None => {}
        }
    }
    Ok(found)
}

#[derive(Debug, Deserialize)]
struct Metadata {
    faces: Vec<MetadataFace>,
}

#[derive(Debug, Deserialize)]
struct MetadataFace {
    name: String,
    image: PathBuf,
}

/// Why a `metadata.yaml` was refused.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("not a valid metadata.yaml: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("the entry for {image}: the person name {name} {why}")]
    BadName {
        image: String,
        name: String,
        why: String,
    },
}

/// Parses the content of the demo's `metadata.yaml`:
/// `faces: [{name: "Robert Bohne", image: "rbohne.jpg"}]`, with image paths joined to `base`.
/// Every name must pass [`check_person_name`]. Pure: it touches no file, so it can be fuzzed.
pub fn parse_metadata(text: &str, base: &Path) -> Result<Vec<LabelledPhoto>, MetadataError> {
    let metadata: Metadata = serde_yaml_ng::from_str(text)?;
    let mut photos = Vec::with_capacity(metadata.faces.len());
    for face in metadata.faces {
        if let Err(why) = check_person_name(&face.name) {
            return Err(MetadataError::BadName {
                image: face.image.display().to_string(),
                name: shown_name(&face.name),
                why,
            });
        }
        photos.push(LabelledPhoto {
            person: face.name,
            path: base.join(face.image),
        });
    }
    Ok(photos)
}

/// A name as an error message shows it: quoted and escaped (a newline shows as `\n`), and cut
/// at 40 characters so that a megabyte-long name does not flood the terminal.
pub fn shown_name(name: &str) -> String {
    let count = name.chars().count();
    let head: String = name.chars().take(40).collect();
    if count > 40 {
        format!("{head:?}... ({count} characters)")
    } else {
        format!("{head:?}")
    }
}

/// The demo's `metadata.yaml`, with image paths relative to the YAML file.
pub fn from_metadata(yaml: &Path) -> Result<Vec<LabelledPhoto>> {
    let text =
        std::fs::read_to_string(yaml).with_context(|| format!("cannot read {}", yaml.display()))?;
    let base = yaml.parent().unwrap_or(Path::new("."));
    parse_metadata(&text, base).map_err(|e| match e {
        MetadataError::Yaml(e) => anyhow::Error::new(e)
            .context(format!("{} is not a valid metadata.yaml", yaml.display())),
        bad => anyhow::anyhow!("{}: {bad}", yaml.display()),
    })
}

/// A folder, or a `.yaml`/`.yml` metadata file.
pub fn discover(input: &Path) -> Result<Discovered> {
    let is_yaml = input
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    if is_yaml {
        Ok(Discovered {
            photos: from_metadata(input)?,
            warnings: Vec::new(),
        })
    } else if input.is_dir() {
        from_folder(input)
    } else if input.exists() {
        bail!(
            "{} is neither a folder nor a metadata.yaml",
            input.display()
        )
    } else {
        bail!("{} does not exist", input.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_keep_every_letter() {
        assert_eq!(stem(Path::new("face-images/Greg.jpg")), "Greg");
        assert_eq!(stem(Path::new("Robert Bohne.png")), "Robert Bohne");
        assert_eq!(stem(Path::new("jpg.jpg")), "jpg");
    }

    #[test]
    fn metadata_paths_are_relative_to_the_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let yaml = dir.join("metadata.yaml");
        std::fs::write(
            &yaml,
            "faces:\n  - name: \"Robert Bohne\"\n    image: \"rbohne.jpg\"\n",
        )
        .unwrap();
        let photos = discover(&yaml).unwrap().photos;
        assert_eq!(
            photos,
            vec![LabelledPhoto {
                person: "Robert Bohne".into(),
                path: dir.join("rbohne.jpg")
            }]
        );
        std::fs::write(&yaml, "faces: 3").unwrap();
        let err = discover(&yaml).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{} is not a valid metadata.yaml", yaml.display())
        );
    }
}
