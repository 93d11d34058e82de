//! Undelivered events on disk, so that none is lost on a restart or a crash: one directory per
//! endpoint, `<data_dir>/webhooks/<hash of the URL>/`, with one file per pending event,
//! `<seq>.json` (zero-padded, so names sort in order), written atomically (temp file, fsync,
//! rename) before the event is queued, and removed once it is delivered or given up. The URL
//! is written beside them in `endpoint.txt` for whoever looks. Blocking calls (small files).

use std::path::{Path, PathBuf};

use super::event::Event;

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The spool of endpoint `url` under `data_dir` (created if needed).
    pub fn open(data_dir: &Path, url: &str) -> std::io::Result<Self> {
        let digest = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
        let name: String = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
        let dir = data_dir.join("webhooks").join(name);
        std::fs::create_dir_all(&dir)?;
        let label = dir.join("endpoint.txt");
        if std::fs::read_to_string(&label).ok().as_deref() != Some(url) {
            crate::rooms::write_atomically(&label, url.as_bytes())?;
        }
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.json"))
    }

    /// The pending events, oldest first. An unreadable file is renamed `.bad` and skipped.
    pub fn load(&self) -> std::io::Result<Vec<(u64, Event)>> {
        let mut events = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(seq) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice::<Event>(&bytes).map_err(|e| e.to_string()));
            match parsed {
                Ok(event) => events.push((seq, event)),
                Err(err) => {
                    tracing::error!(path = %path.display(), %err, "webhook event unreadable: kept aside as .bad");
                    let _ = std::fs::rename(&path, path.with_extension("json.bad"));
                }
            }
        }
        events.sort_by_key(|(seq, _)| *seq);
        Ok(events)
    }

    /// Keeps an event until [`remove`](Self::remove).
    pub fn put(&self, seq: u64, event: &Event) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        crate::rooms::write_atomically(&self.path(seq), &bytes)
    }

    /// Forgets an event (delivered or given up); one that is already gone is fine.
    pub fn remove(&self, seq: u64) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(seq)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// The highest seq kept, if any.
    #[cfg(test)]
    pub fn last_seq(&self) -> std::io::Result<Option<u64>> {
        Ok(self.load()?.last().map(|(seq, _)| *seq))
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::EventType;
    use super::*;

    #[test]
    fn events_survive_a_reopen_in_order_until_removed() {
        let dir = std::env::temp_dir().join(format!("townhall-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let event =
            |id: &str| Event { id: id.into(), kind: EventType::RoomEnded, at_ms: 5, data: serde_json::json!({}) };
        let spool = Spool::open(&dir, "http://127.0.0.1:9/hook").unwrap();
        spool.put(10, &event("msg_b")).unwrap();
        spool.put(9, &event("msg_a")).unwrap();
        spool.put(11, &event("msg_c")).unwrap();
        spool.remove(10).unwrap();
        spool.remove(10).unwrap();
        std::fs::write(spool.dir().join(format!("{:020}.json", 12)), b"{torn").unwrap();
        let again = Spool::open(&dir, "http://127.0.0.1:9/hook").unwrap();
        let ids: Vec<(u64, String)> = again.load().unwrap().into_iter().map(|(s, e)| (s, e.id)).collect();
        assert_eq!(ids, vec![(9, "msg_a".to_owned()), (11, "msg_c".to_owned())]);
        assert_eq!(again.last_seq().unwrap(), Some(11));
        // Another endpoint has its own spool.
        let other = Spool::open(&dir, "https://crm.example/hook").unwrap();
        assert_ne!(other.dir(), again.dir());
        assert!(other.load().unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
