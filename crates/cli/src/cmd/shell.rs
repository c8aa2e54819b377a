//! `completions` and `man`: generated from the command definitions, so
//! they never drift from `--help`.

use anyhow::Context as _;
use clap::Args;

/// Print a shell completion script.
///
/// Examples:
///
///   backchannel completions bash > ~/.local/share/bash-completion/completions/backchannel
///   backchannel completions zsh > ~/.zfunc/_backchannel
///   backchannel completions fish > ~/.config/fish/completions/backchannel.fish
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Print the man page (roff) on standard output.
///
/// Example:
///
///   backchannel man > backchannel.1 && man ./backchannel.1
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ManArgs {}

pub fn completions(args: CompletionsArgs, mut cli: clap::Command) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "backchannel", &mut script);
    out!(
        "{}",
        String::from_utf8(script).context("the completion script")?
    );
    Ok(())
}

pub fn man(_: ManArgs, cli: clap::Command) -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cli)
        .render(&mut page)
        .context("writing the man page")?;
    out!("{}", String::from_utf8(page).context("the man page")?);
    Ok(())
}
