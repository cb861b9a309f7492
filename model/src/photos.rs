//! Where enrolment and evaluation photos come from, and whose face each one shows.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
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

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    Ok(entries)
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
/// they are reported rather than silently ignored, unless they are hidden.
pub fn from_folder(dir: &Path) -> Result<Vec<LabelledPhoto>> {
    let mut photos = Vec::new();
    for entry in sorted_entries(dir)? {
        if entry.is_dir() {
            let person = entry
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            for path in sorted_entries(&entry)?.into_iter().filter(|p| p.is_file()) {
                photos.push(LabelledPhoto {
                    person: person.clone(),
                    path,
                });
            }
        } else if entry.is_file() {
            photos.push(LabelledPhoto {
                person: stem(&entry),
                path: entry,
            });
        }
    }
    Ok(photos)
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

/// The demo's `metadata.yaml`: `faces: [{name: "Robert Bohne", image: "rbohne.jpg"}]`, with
/// image paths relative to the YAML file.
pub fn from_metadata(yaml: &Path) -> Result<Vec<LabelledPhoto>> {
    let text =
        std::fs::read_to_string(yaml).with_context(|| format!("cannot read {}", yaml.display()))?;
    let metadata: Metadata = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{} is not a valid metadata.yaml", yaml.display()))?;
    let base = yaml.parent().unwrap_or(Path::new("."));
    let mut photos = Vec::new();
    for face in metadata.faces {
        if face.name.trim().is_empty() {
            bail!(
                "{}: an entry for {} has an empty name",
                yaml.display(),
                face.image.display()
            );
        }
        photos.push(LabelledPhoto {
            person: face.name,
            path: base.join(face.image),
        });
    }
    Ok(photos)
}

/// A folder, or a `.yaml`/`.yml` metadata file.
pub fn discover(input: &Path) -> Result<Vec<LabelledPhoto>> {
    let is_yaml = input
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    if is_yaml {
        from_metadata(input)
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
        let dir = std::env::temp_dir().join(format!("facerec-photos-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("metadata.yaml");
        std::fs::write(
            &yaml,
            "faces:\n  - name: \"Robert Bohne\"\n    image: \"rbohne.jpg\"\n",
        )
        .unwrap();
        let photos = discover(&yaml).unwrap();
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
