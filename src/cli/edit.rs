//! `sessionctl edit <ID>`: change a session's data, validated, with the
//! version check.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::Value;

use sessionctl::admin::{Edit, ExportLine};
use sessionctl::record::json_kind;
use sessionctl::{Data, Error};

use super::output::line;
use super::{Access, Ctx};

/// Arguments of `edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// The session: its id, stored key or cookie value.
    pub id: String,
    /// Set KEY to a JSON value (repeatable), e.g. --set 'cart=["book"]' --set theme='"dark"'.
    #[arg(long, value_name = "KEY=JSON", value_parser = parse_set)]
    pub set: Vec<(String, Value)>,
    /// Remove KEY (repeatable).
    #[arg(long, value_name = "KEY")]
    pub unset: Vec<String>,
    /// Replace all the data with the JSON object in FILE ('-' for stdin).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub replace: Option<PathBuf>,
}

fn parse_set(text: &str) -> Result<(String, Value), String> {
    let (key, json) = text.split_once('=').ok_or_else(|| format!("expected KEY=JSON, got {text:?}"))?;
    if key.is_empty() {
        return Err("the key before '=' is empty".into());
    }
    let value = serde_json::from_str(json)
        .map_err(|e| format!("the value of {key:?} is not valid JSON ({e}); quote strings: {key}='\"text\"'"))?;
    Ok((key.to_owned(), value))
}

fn parse_object(text: &str, source: &str) -> anyhow::Result<Data> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| Error::InvalidInput(format!("{source} is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map.into()),
        other => Err(Error::InvalidInput(format!(
            "{source} holds a JSON {}, but session data must be an object",
            json_kind(&other)
        ))
        .into()),
    }
}

/// Applies the edit.
pub async fn run(ctx: &Ctx, args: EditArgs) -> anyhow::Result<()> {
    super::check_session_args(std::slice::from_ref(&args.id))?;
    let admin = ctx.admin(Access::Change).await?;
    let id = super::stored_key(&admin, &args.id)?;
    let mut edit = Edit::default();
    edit.set = args.set;
    edit.unset = args.unset;
    if let Some(path) = &args.replace {
        let text = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read stdin")?;
            text
        } else {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
        };
        edit.replace = Some(parse_object(&text, &format!("--replace {}", path.display()))?);
    }
    if edit.replace.is_none() && edit.set.is_empty() && edit.unset.is_empty() {
        let current = admin.current(&id).await?;
        match edit_in_editor(&current.data)? {
            Some(data) => edit.replace = Some(data),
            None => {
                super::output::note(ctx.global.quiet, "no change; nothing written");
                return Ok(());
            }
        }
    }
    let record = admin.edit(&id, &edit).await.map_err(|e| match e {
        Error::Conflict { .. } => anyhow::anyhow!(
            "session {id} was changed by someone else while editing; nothing written; run the edit again"
        ),
        other => other.into(),
    })?;
    let Some(record) = record else {
        super::output::note(ctx.global.quiet, format!("no change to session {id}; nothing written"));
        if ctx.json() {
            return line(ExportLine::from_record(&admin.current(&id).await?).to_json());
        }
        return Ok(());
    };
    ctx.after_change(&admin)?;
    if ctx.json() {
        return line(ExportLine::from_record(&record).to_json());
    }
    if !ctx.global.quiet {
        line(format!("session {id} saved (version {})", record.version))?;
    }
    Ok(())
}

/// Opens `$VISUAL` or `$EDITOR` on the pretty JSON; `None` when unchanged.
fn edit_in_editor(data: &Data) -> anyhow::Result<Option<Data>> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| std::env::var("EDITOR").ok().filter(|e| !e.trim().is_empty()));
    let Some(editor) = editor else {
        bail!("no edit given and neither $VISUAL nor $EDITOR is set; use --set, --unset or --replace");
    };
    let original = serde_json::to_string_pretty(&Value::from(data.clone()))? + "\n";
    let mut file = tempfile::Builder::new().prefix("sessionctl-edit-").suffix(".json").tempfile()?;
    std::io::Write::write_all(&mut file, original.as_bytes())?;
    let path = file.path().to_owned();
    // Like git: the editor setting may carry arguments, so run it through the shell.
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .with_context(|| format!("cannot run the editor {editor:?}"))?;
    if !status.success() {
        bail!("the editor {editor:?} exited with {status}; nothing written");
    }
    let edited = std::fs::read_to_string(&path).context("cannot read the edited file")?;
    if edited == original {
        return Ok(None);
    }
    parse_object(&edited, "the edited file").map(Some)
}
