//! `netshim completions`: shell completions and the man page.

pub fn main<C: clap::CommandFactory>(shell: &str) -> anyhow::Result<u8> {
    let mut cmd = C::command();
    let mut out = std::io::stdout();
    match shell {
        "bash" => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "netshim", &mut out)
        }
        "zsh" => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "netshim", &mut out),
        "fish" => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "netshim", &mut out)
        }
        "man" => clap_mangen::Man::new(cmd).render(&mut out)?,
        other => anyhow::bail!("no completions for {other:?}: choose bash, zsh, fish or man"),
    }
    Ok(0)
}
