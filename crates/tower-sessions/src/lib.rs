//! A [`tower_sessions_core::SessionStore`] whose sessions live in Sessiongrid.
//!
//! Each tower-sessions record is a grid session of one group: its id is the record's id, each
//! key of its data is an attribute tagged `json` (so other languages read it), and its expiry
//! date is the session's idle deadline, moved on every save. So the grid's rules apply to it:
//! it is replicated, survives node failures, expires by itself, shows in `SESSION.STATS` and the
//! dashboard, and can be ended by a forced logout.
//!
//! Two backends:
//! - [`GridStore::embedded`]: the `Sessions` of a node running in this process
//!   (`sessiongrid-embedded`), no network hop to the node;
//! - [`GridStore::remote`]: any grid nodes over their Redis door, with failover across them;
//!   through TLS to their TLS ports with [`Remote::with_tls`] (a [`Tls`] trusting their CA).
//!
//! tower-sessions keeps `serde_json::Value`s; they are stored as JSON text, never as postcard
//! (which cannot hold a `Value`).

mod remote;

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, SessionStore};

pub use remote::Remote;
pub use sessiongrid_client::Tls;

/// A session store backed by the grid; cheap to clone.
#[derive(Clone)]
pub struct GridStore {
    backend: Backend,
    group: Bytes,
}

#[derive(Clone)]
enum Backend {
    #[cfg(feature = "embedded")]
    Embedded(sessiongrid_grid::Sessions),
    Remote(Remote),
}

impl fmt::Debug for GridStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.backend {
            #[cfg(feature = "embedded")]
            Backend::Embedded(_) => "embedded",
            Backend::Remote(_) => "remote",
        };
        f.debug_struct("GridStore").field("backend", &kind).field("group", &self.group).finish()
    }
}

/// Seconds from now until `expiry`, at least one (the grid has no session without a timeout).
fn idle_seconds(expiry: OffsetDateTime) -> u64 {
    (expiry - OffsetDateTime::now_utc()).whole_seconds().max(1) as u64
}

fn backend_error(e: impl fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<Vec<(Bytes, Bytes)>> {
    record
        .data
        .iter()
        .map(|(k, v)| {
            let json =
                serde_json::to_vec(v).map_err(|e| session_store::Error::Encode(e.to_string()))?;
            Ok((Bytes::copy_from_slice(k.as_bytes()), Bytes::from(json)))
        })
        .collect()
}

/// A record from a grid session's `json` attributes (others are not tower-sessions' and are
/// left out) and its deadline.
fn decode(id: Id, attrs: Vec<(Bytes, Bytes)>, deadline_ms: u64) -> session_store::Result<Record> {
    let mut data = HashMap::new();
    for (name, json) in attrs {
        let name = String::from_utf8(name.to_vec())
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let value = serde_json::from_slice(&json)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        data.insert(name, value);
    }
    let expiry_date = OffsetDateTime::from_unix_timestamp_nanos(deadline_ms as i128 * 1_000_000)
        .map_err(|e| session_store::Error::Decode(e.to_string()))?;
    Ok(Record { id, data, expiry_date })
}

impl GridStore {
    /// Sessions of an embedded node (see `sessiongrid-embedded`), in `group`.
    #[cfg(feature = "embedded")]
    pub fn embedded(sessions: sessiongrid_grid::Sessions, group: &str) -> GridStore {
        GridStore {
            backend: Backend::Embedded(sessions),
            group: Bytes::copy_from_slice(group.as_bytes()),
        }
    }

    /// Grid nodes reached over their Redis door, in `group`.
    pub fn remote(remote: Remote, group: &str) -> GridStore {
        GridStore {
            backend: Backend::Remote(remote),
            group: Bytes::copy_from_slice(group.as_bytes()),
        }
    }

    /// Starts a session under `id`: false if the id is taken.
    async fn start(&self, id: &[u8], idle_s: u64) -> session_store::Result<bool> {
        match &self.backend {
            #[cfg(feature = "embedded")]
            Backend::Embedded(s) => s
                .create_with_id(
                    self.group.clone(),
                    Bytes::copy_from_slice(id),
                    Some(idle_s),
                    Some(0),
                )
                .await
                .map_err(backend_error),
            Backend::Remote(r) => r.create(&self.group, id, idle_s).await.map_err(backend_error),
        }
    }

    /// Makes the session's attributes exactly `attrs`: false if there is no such session.
    async fn replace(
        &self,
        id: &[u8],
        idle_s: u64,
        attrs: Vec<(Bytes, Bytes)>,
    ) -> session_store::Result<bool> {
        match &self.backend {
            #[cfg(feature = "embedded")]
            Backend::Embedded(s) => {
                use sessiongrid_model::session::Tag;
                let w = sessiongrid_grid::sessions::Write {
                    replace: true,
                    idle_s: Some(idle_s),
                    attrs: attrs.into_iter().map(|(k, v)| (k, Tag::Json, v)).collect(),
                    ..Default::default()
                };
                Ok(s.write(id, w).await.map_err(backend_error)?.is_some())
            }
            Backend::Remote(r) => r.replace(id, idle_s, attrs).await.map_err(backend_error),
        }
    }

    async fn fetch(&self, id: &[u8]) -> session_store::Result<Option<(Vec<(Bytes, Bytes)>, u64)>> {
        match &self.backend {
            #[cfg(feature = "embedded")]
            Backend::Embedded(s) => {
                let opts =
                    sessiongrid_grid::sessions::GetOptions { no_touch: true, ..Default::default() };
                let Some(session) = s.get(id, &opts).await.map_err(backend_error)? else {
                    return Ok(None);
                };
                if session.group != self.group {
                    return Ok(None);
                }
                let deadline = session.deadline_ms();
                let attrs = session
                    .attrs
                    .into_iter()
                    .filter(|(_, a)| a.tag == sessiongrid_model::session::Tag::Json)
                    .map(|(k, a)| (k, a.value))
                    .collect();
                Ok(Some((attrs, deadline)))
            }
            Backend::Remote(r) => r.get(id, &self.group).await.map_err(backend_error),
        }
    }

    async fn end(&self, id: &[u8]) -> session_store::Result<()> {
        match &self.backend {
            #[cfg(feature = "embedded")]
            Backend::Embedded(s) => s.invalidate(id).await.map(|_| ()).map_err(backend_error),
            Backend::Remote(r) => r.invalidate(id).await.map_err(backend_error),
        }
    }
}

#[async_trait]
impl SessionStore for GridStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let idle_s = idle_seconds(record.expiry_date);
        // A taken id (live or ended) gets a fresh one, as tower-sessions expects.
        while !self.start(record.id.to_string().as_bytes(), idle_s).await? {
            record.id = Id::default();
        }
        self.save(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let id = record.id.to_string();
        let idle_s = idle_seconds(record.expiry_date);
        let attrs = encode(record)?;
        if self.replace(id.as_bytes(), idle_s, attrs.clone()).await? {
            return Ok(());
        }
        // Expired or never stored: store it again under the same id, if nothing ended it.
        if self.start(id.as_bytes(), idle_s).await?
            && self.replace(id.as_bytes(), idle_s, attrs).await?
        {
            return Ok(());
        }
        Err(session_store::Error::Backend(format!("session {id} has ended and cannot be saved")))
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let Some((attrs, deadline_ms)) = self.fetch(session_id.to_string().as_bytes()).await?
        else {
            return Ok(None);
        };
        decode(*session_id, attrs, deadline_ms).map(Some)
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.end(session_id.to_string().as_bytes()).await
    }
}
