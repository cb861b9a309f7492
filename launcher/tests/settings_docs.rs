//! The engine's tunables are declared once (`facerec_core::tunables`); what users read about
//! them must agree with that declaration: the README's element-property and launcher-flag
//! tables, `gst-inspect-1.0 facerec` on the built plugin, and `facerec-launcher --help`. Each
//! is checked for every tunable's name, default and range (and the launcher's environment
//! variable), so a tunable added without its documentation fails here.

use std::path::{Path, PathBuf};
use std::process::Command;

use facerec_core::tunables::{TUNABLES, Tunable, TunableValue};

const README: &str = include_str!("../../README.md");

/// The README's table rows as cells (the text between `|`, trimmed).
fn table_rows() -> Vec<Vec<&'static str>> {
    README
        .lines()
        .filter(|line| line.starts_with('|'))
        .map(|line| line.trim_matches('|').split('|').map(str::trim).collect())
        .collect()
}

/// The range as the README writes it, `0–8192`.
fn readme_range(tunable: &Tunable) -> String {
    let (min, max) = tunable.range();
    format!("{min}–{max}")
}

#[test]
fn the_readme_tables_agree_with_the_declarations() {
    let rows = table_rows();
    let mut problems = Vec::new();
    for tunable in TUNABLES {
        let name = tunable.name;
        let default = tunable.default_value().to_string();
        let range = readme_range(tunable);
        // The element's property table: | `name` | default | range: meaning |
        match rows.iter().find(|r| r[0] == format!("`{name}`")) {
            None => problems.push(format!("no row for the property `{name}`")),
            Some(row) => {
                if row[1] != default {
                    problems.push(format!("property {name}: default {} != {default}", row[1]));
                }
                if !row[2].starts_with(&format!("{range}:")) {
                    problems.push(format!(
                        "property {name}: its meaning must start with {range}:"
                    ));
                }
            }
        }
        // The launcher's flag table: | `--name` | `FACEREC_NAME` | default | range … |
        match rows.iter().find(|r| r[0] == format!("`--{name}`")) {
            None => problems.push(format!("no row for the flag `--{name}`")),
            Some(row) => {
                if row[1] != format!("`{}`", tunable.env()) {
                    problems.push(format!(
                        "--{name}: environment {} != {}",
                        row[1],
                        tunable.env()
                    ));
                }
                if row[2] != default {
                    problems.push(format!("--{name}: default {} != {default}", row[2]));
                }
                if !row[3].starts_with(&range) {
                    problems.push(format!("--{name}: its last cell must start with {range}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "README.md:\n{}", problems.join("\n"));
}

/// A private plugin folder holding only the plugin cargo built beside this test (the launcher
/// depends on gst-facerec, whose cdylib lands in target/<profile>/deps).
fn plugin_dir(temp: &Path) -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let built = deps.join("libgstfacerec.so");
    assert!(built.exists(), "{} not built", built.display());
    let dir = temp.join("plugin");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&built, dir.join("libgstfacerec.so")).unwrap();
    dir
}

/// The numbers after `Range:` (two) and `Default:` (one) in gst-inspect's line for a property.
fn inspect_numbers(line: &str) -> Option<(f64, f64, f64)> {
    let (_, rest) = line.split_once("Range:")?;
    let (range, default) = rest.split_once("Default:")?;
    let (min, max) = range.split_once(" - ")?;
    let number = |s: &str| s.trim().parse::<f64>().ok();
    Some((number(min)?, number(max)?, number(default)?))
}

fn same(a: f64, b: TunableValue) -> bool {
    let b = b.as_f64();
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[test]
fn gst_inspect_agrees_with_the_declarations() {
    let temp = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(temp.path());
    let out = Command::new("gst-inspect-1.0")
        .arg("facerec")
        .env("GST_PLUGIN_PATH", &plugins)
        .env("GST_REGISTRY", temp.path().join("registry.bin"))
        .env_remove("GST_PLUGIN_PATH_1_0")
        .output()
        .expect("gst-inspect-1.0 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gst-inspect-1.0 facerec failed: {text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let mut problems = Vec::new();
    for tunable in TUNABLES {
        let name = tunable.name;
        let Some(at) = lines.iter().position(|l| {
            l.trim_start()
                .strip_prefix(name)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        }) else {
            problems.push(format!("no property {name}"));
            continue;
        };
        // The property's blurb, flags, then its type with range and default.
        let numbers = lines[at + 1..]
            .iter()
            .take(3)
            .find_map(|l| inspect_numbers(l));
        let (min, max) = tunable.range();
        let default = tunable.default_value();
        match numbers {
            Some((m, x, d)) if same(m, min) && same(x, max) && same(d, default) => {}
            other => problems.push(format!(
                "{name}: (min, max, default) {other:?} != ({min}, {max}, {default})"
            )),
        }
        if !lines[at].contains(tunable.blurb) {
            problems.push(format!("{name}: blurb {:?}", lines[at]));
        }
    }
    assert!(
        problems.is_empty(),
        "gst-inspect-1.0 facerec:\n{}",
        problems.join("\n")
    );
}

#[test]
fn launcher_help_agrees_with_the_declarations() {
    let temp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_facerec-launcher"));
    cmd.arg("--help")
        .env("GST_REGISTRY", temp.path().join("registry.bin"))
        .env_remove("FACEREC_CONFIG");
    // The help shows the environment's values as defaults: none of them here.
    for tunable in TUNABLES {
        cmd.env_remove(tunable.env());
    }
    let out = cmd.output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "--help failed: {help}");
    // One entry per option: its `--flag` line and the lines up to the next option.
    let mut entries: Vec<String> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("--") || trimmed.starts_with("-h,") || trimmed.starts_with("-V,") {
            entries.push(String::new());
        }
        if let Some(entry) = entries.last_mut() {
            entry.push(' ');
            entry.push_str(trimmed);
        }
    }
    let mut problems = Vec::new();
    for tunable in TUNABLES {
        let name = tunable.name;
        let Some(entry) = entries
            .iter()
            .find(|e| e.trim_start().starts_with(&format!("--{name} <")))
        else {
            problems.push(format!("no --{name}"));
            continue;
        };
        let (min, max) = tunable.range();
        for expected in [
            format!("[default: {}]", tunable.default_value()),
            format!("[env: {}=]", tunable.env()),
            format!("[range: {min} to {max}"),
        ] {
            if !entry.contains(&expected) {
                problems.push(format!("--{name} lacks {expected}: {entry}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "facerec-launcher --help:\n{}",
        problems.join("\n")
    );
}
