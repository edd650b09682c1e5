//! `start`: runs the created container's command.

use super::*;

impl Runtime {
    pub fn start(&self, id: &str) -> Result<(), OciError> {
        validate_id(id)?;
        let mut c = self.load(id)?;
        if c.status() != ContainerStatus::Created {
            return Err(OciError::WrongStatus {
                id: id.into(),
                status: status_name(c.status()).into(),
                what: "start",
                need: "created",
            });
        }
        c.start().map_err(OciError::lc("start", id))
    }
}
