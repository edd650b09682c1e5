//! The places where netshim changes privilege, each small and commented
//! with the kernel rule it relies on: entering namespaces and private mount
//! views ([`enter`]), the seccomp filter of every process netshim starts
//! ([`seccomp`]), and the sealed copy of netshim's own binary that a target
//! runs ([`selfexec`]). libcontainer performs the credential change itself,
//! from the spec [`crate::launch::spec`] writes.

pub mod enter;
pub mod seccomp;
pub mod selfexec;
