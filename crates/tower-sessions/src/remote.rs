//! [`Remote`]: grid nodes over their Redis door, through the pooled, failing-over client of
//! `sessiongrid-client`. Each session's commands go to the node that holds it (the primary of
//! `sg:session:<id>`'s hash slot, as the nodes' `CLUSTER SHARDS` says); the addresses given are
//! where the client starts.

use std::io;

use bytes::Bytes;
use sessiongrid_client::{Auth, Pool, Tls, Value};
use sessiongrid_model::key::slot;
use sessiongrid_model::session::session_key;

/// Grid nodes' Redis doors, e.g. `["10.0.0.5:6379", "10.0.0.6:6379"]`; cheap to clone.
#[derive(Clone)]
pub struct Remote {
    pool: Pool,
}

impl Remote {
    pub fn new(addresses: Vec<String>, password: Option<Bytes>) -> Remote {
        Remote { pool: Pool::new(addresses, password) }
    }

    /// Nodes' TLS ports (`resp_tls_listen`), checked against `tls`'s CA, e.g.
    /// `Tls::from_pem_files("ca.pem".as_ref(), Some(("app.pem".as_ref(), "app.key".as_ref())))`.
    pub fn with_tls(addresses: Vec<String>, password: Option<Bytes>, tls: Tls) -> Remote {
        Remote { pool: Pool::with_tls(addresses, password, Some(tls)) }
    }

    /// Nodes that hold applications to ACL users: this one logs in as `user` (over TLS if
    /// `tls` is given), and reaches only the sessions of the groups its rules allow.
    pub fn with_user(
        addresses: Vec<String>,
        user: Bytes,
        password: Bytes,
        tls: Option<Tls>,
    ) -> Remote {
        let auth = Auth { user: Some(user), password };
        Remote { pool: Pool::with_auth(addresses, Some(auth), tls) }
    }

    /// A command about session `id`, sent to the node that holds it when the pool knows which.
    async fn call(&self, id: &[u8], args: &[&[u8]]) -> io::Result<Value> {
        self.pool.call_in_slot(slot(&session_key(id)), args).await
    }

    pub(crate) async fn create(&self, group: &[u8], id: &[u8], idle_s: u64) -> io::Result<bool> {
        let idle = idle_s.to_string();
        let args: [&[u8]; 6] = [b"SESSION.CREATE", group, b"IDLE", idle.as_bytes(), b"ID", id];
        Ok(self.call(id, &args).await? != Value::Nil)
    }

    pub(crate) async fn replace(
        &self,
        id: &[u8],
        idle_s: u64,
        attrs: Vec<(Bytes, Bytes)>,
    ) -> io::Result<bool> {
        let idle = idle_s.to_string();
        let mut args: Vec<&[u8]> = vec![b"SESSION.SET", id, b"REPLACE", b"IDLE", idle.as_bytes()];
        for (name, json) in &attrs {
            args.extend([name.as_ref(), b"json".as_slice(), json.as_ref()]);
        }
        Ok(self.call(id, &args).await? != Value::Nil)
    }

    /// The session's `json` attributes and its deadline (unix ms), if it is a live session of
    /// `group`.
    pub(crate) async fn get(
        &self,
        id: &[u8],
        group: &[u8],
    ) -> io::Result<Option<(Vec<(Bytes, Bytes)>, u64)>> {
        let Value::Array(flat) = self.call(id, &[b"SESSION.GET", id, b"NOTOUCH"]).await? else {
            return Ok(None);
        };
        let (mut attrs, mut deadline, mut same_group) = (Vec::new(), 0, false);
        for pair in flat.chunks(2) {
            let [Value::Bulk(key), value] = pair else { continue };
            match (key.as_ref(), value) {
                (b"group", Value::Bulk(g)) => same_group = g.as_ref() == group,
                (b"expires-at", Value::Int(ms)) => deadline = (*ms).max(0) as u64,
                (b"attributes", Value::Array(list)) => {
                    for entry in list.chunks(2) {
                        if let [Value::Bulk(name), Value::Array(a)] = entry {
                            if let [Value::Bulk(tag), Value::Bulk(json), ..] = a.as_slice() {
                                if tag.as_ref() == b"json" {
                                    attrs.push((name.clone(), json.clone()));
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(same_group.then_some((attrs, deadline)))
    }

    pub(crate) async fn invalidate(&self, id: &[u8]) -> io::Result<()> {
        self.call(id, &[b"SESSION.INVALIDATE", id]).await.map(|_| ())
    }
}
