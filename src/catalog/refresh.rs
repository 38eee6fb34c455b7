//! `rempart catalog import` and `catalog diff`: one public list read into
//! the catalogue file it generates, then written, or compared with the
//! committed file.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::file::CatalogFile;
use super::fold::Summary;
use super::import;
use super::sources::Source;
use crate::config::Config;

/// One list imported in memory: the source, the fresh file, its summary and text.
pub struct Imported {
    pub output: PathBuf,
    pub file: CatalogFile,
    pub summary: Summary,
    pub text: String,
}

/// Reads one list into the catalogue file it generates, merged against the
/// files before it in the config's `[catalog] agents`.
pub fn import(
    source: &str,
    path: &Path,
    config: &Path,
    output: Option<PathBuf>,
    provenance: Option<String>,
) -> anyhow::Result<Imported> {
    let Some(list) = Source::parse_name(source) else {
        anyhow::bail!(
            "unknown source {source:?} (one of: {})",
            Source::ALL.map(Source::name).join(", ")
        );
    };
    let config = Config::load(config)?;
    let files: Vec<PathBuf> = config
        .raw
        .catalog
        .agents
        .iter()
        .map(|p| config.resolve(p))
        .collect();
    let output =
        output.unwrap_or_else(|| config.resolve(Path::new(&format!("agents/{source}.toml"))));
    let known = import::known_for(list, &files)?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let provenance = provenance.unwrap_or_else(|| {
        format!(
            "{source} {}",
            path.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        )
    });
    let (file, summary, text) = import::import_source(list, &text, &provenance, &known)
        .with_context(|| format!("{}", path.display()))?;
    Ok(Imported {
        output,
        file,
        summary,
        text,
    })
}

/// Writes an imported list's file and says what was written.
pub fn write(imported: &Imported) -> anyhow::Result<String> {
    std::fs::write(&imported.output, &imported.text)
        .with_context(|| format!("{}: cannot write", imported.output.display()))?;
    Ok(format!(
        "{}: {} agents written\n{}\n",
        imported.output.display(),
        imported.summary.agents,
        imported.summary.line()
    ))
}

/// What writing an imported list would add, remove or change in the
/// committed file it would replace.
pub fn diff(imported: &Imported) -> anyhow::Result<String> {
    let against = &imported.output;
    let text = std::fs::read_to_string(against)
        .with_context(|| format!("{}: cannot read", against.display()))?;
    let committed: CatalogFile = crate::config::located::parse_toml(against, &text)?;
    Ok(super::diff::diff(&committed, &imported.file))
}
