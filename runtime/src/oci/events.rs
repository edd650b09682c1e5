//! `events`: libcontainer's stream of stats and OOM events.

use super::*;

impl Runtime {
    pub fn events(&self, id: &str, interval: u32, stats: bool) -> Result<(), OciError> {
        validate_id(id)?;
        let mut c = self.load(id)?;
        c.events(interval, stats)
            .map_err(OciError::lc("events", id))
    }
}
