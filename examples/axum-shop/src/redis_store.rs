//! The comparison baseline: a plain tower-sessions store on `redis-server`, as Redis-backed
//! stores do it (one key per session holding the whole record, with an absolute expiry).

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    data: HashMap<String, serde_json::Value>,
    expiry_unix: i64,
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

impl RedisStore {
    pub async fn connect(address: &str) -> anyhow::Result<RedisStore> {
        let client = redis::Client::open(format!("redis://{address}/"))?;
        Ok(RedisStore { conn: ConnectionManager::new(client).await? })
    }

    fn key(id: &Id) -> String {
        format!("session:{id}")
    }

    fn encode(record: &Record) -> session_store::Result<String> {
        let stored =
            Stored { data: record.data.clone(), expiry_unix: record.expiry_date.unix_timestamp() };
        serde_json::to_string(&stored).map_err(|e| session_store::Error::Encode(e.to_string()))
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut conn = self.conn.clone();
        loop {
            let value = Self::encode(record)?;
            let opts = redis::SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(
                    redis::SetExpiry::EXAT(record.expiry_date.unix_timestamp() as u64),
                );
            let set: Option<String> =
                conn.set_options(Self::key(&record.id), value, opts).await.map_err(backend)?;
            if set.is_some() {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let mut conn = self.conn.clone();
        let opts = redis::SetOptions::default()
            .with_expiration(redis::SetExpiry::EXAT(record.expiry_date.unix_timestamp() as u64));
        let _: Option<String> = conn
            .set_options(Self::key(&record.id), Self::encode(record)?, opts)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let mut conn = self.conn.clone();
        let value: Option<String> = conn.get(Self::key(id)).await.map_err(backend)?;
        let Some(value) = value else { return Ok(None) };
        let stored: Stored = serde_json::from_str(&value)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = OffsetDateTime::from_unix_timestamp(stored.expiry_unix)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record { id: *id, data: stored.data, expiry_date }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.del(Self::key(id)).await.map_err(backend)?;
        Ok(())
    }
}
