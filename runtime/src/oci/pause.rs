//! `pause` and `resume`: the freezer.

use super::*;

impl Runtime {
    pub fn pause(&self, id: &str) -> Result<(), OciError> {
        validate_id(id)?;
        let mut c = self.load(id)?;
        c.pause().map_err(OciError::lc("pause", id))
    }

    pub fn resume(&self, id: &str) -> Result<(), OciError> {
        validate_id(id)?;
        let mut c = self.load(id)?;
        c.resume().map_err(OciError::lc("resume", id))
    }
}
