//! `netshim demo` (filled in below).

#[derive(clap::Args)]
pub struct DemoArgs {}

pub fn main(_a: DemoArgs) -> anyhow::Result<u8> {
    anyhow::bail!("not yet")
}
