//! Reading the intact events back out of a quarantined file.

use super::*;

/// What [`salvage()`] found in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Salvaged {
    /// The intact events, in the order their frames lie in the file.
    pub events: Vec<crate::Event<serde_json::Value>>,
    /// Intact records whose envelope does not decode: sequence number and why.
    pub undecodable: Vec<(u64, String)>,
    /// Intact frames found.
    pub frames: usize,
}

/// Reads the intact events in a file that a repair saved in `quarantine/` (or in any segment):
/// every frame whose checksum holds, found past damage, with the sequence numbers it had. The
/// events can be appended again (`annal salvage FILE | annal append DIR --jsonl -`).
///
/// # Errors
/// I/O errors reading the file.
pub fn salvage(storage: &dyn Storage, path: &Path) -> Result<Salvaged> {
    let bytes = storage.map_file(path).map_err(io("read", path))?;
    let frames = salvage::intact_frames(&bytes);
    let mut out = Salvaged { events: Vec::new(), undecodable: Vec::new(), frames: frames.len() };
    for frame in &frames {
        for (k, (ts, payload)) in frame.records.iter().enumerate() {
            let seq = frame.first_seq + k as u64;
            match annal_projection::RawEvent::parse(seq, *ts, payload)
                .and_then(|raw| raw.to_event::<serde_json::Value>())
            {
                Ok(event) => out.events.push(event),
                Err(e) => out.undecodable.push((seq, e.to_string())),
            }
        }
    }
    Ok(out)
}
