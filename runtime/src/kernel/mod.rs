//! What netshim reads from the kernel, and nothing it changes: namespace
//! files and their owners (nsfs ioctls), capability sets and their names,
//! user namespaces' ID maps and the knobs that allow unprivileged ones.

pub mod caps;
pub mod ns;
pub mod userns;
