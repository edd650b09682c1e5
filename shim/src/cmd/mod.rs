//! netshim's own commands, one file each; `oci` (beside this folder) is the
//! runc-compatible OCI runtime.

pub mod capture;
pub mod completions;
pub mod demo;
pub mod doctor;
pub mod install;
pub mod probe;
pub mod run;
pub mod targets;
