//! The store against a real node: in-process, and over the node's Redis door.

// `exercise` runs inside the test; a failed call is the test failing.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use serde_json::json;
use sessiongrid_embedded::{Doors, Node, NodeConfig};
use sessiongrid_tower_sessions::{GridStore, Remote, Tls};
use time::{Duration, OffsetDateTime};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::SessionStore;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a bound address").port()
}

fn record(data: serde_json::Value) -> Record {
    let data: HashMap<String, serde_json::Value> =
        serde_json::from_value(data).expect("an object of values");
    Record {
        id: Id::default(),
        data,
        expiry_date: OffsetDateTime::now_utc() + Duration::minutes(30),
    }
}

async fn exercise(store: &GridStore) {
    let mut r = record(json!({ "cart": [1, 2], "user": "ann" }));
    store.create(&mut r).await.unwrap();
    let loaded = store.load(&r.id).await.unwrap().expect("stored");
    assert_eq!(loaded.data, r.data);
    let drift = (loaded.expiry_date - r.expiry_date).whole_seconds().abs();
    assert!(drift <= 2, "the expiry follows the record's ({drift} s apart)");

    r.data.remove("user");
    r.data.insert("n".into(), json!(3));
    store.save(&r).await.unwrap();
    assert_eq!(
        store.load(&r.id).await.unwrap().expect("stored").data,
        r.data,
        "exactly the saved keys"
    );

    // A record under a taken id gets a new one.
    let mut twin = record(json!({}));
    twin.id = r.id;
    store.create(&mut twin).await.unwrap();
    assert_ne!(twin.id, r.id);

    store.delete(&r.id).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_none());
    assert!(store.save(&r).await.is_err(), "an ended session cannot come back");
    assert!(store.load(&Id::default()).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_round_trip_embedded_and_over_the_redis_door() {
    let dir = tempfile::tempdir().unwrap();
    let resp = format!("127.0.0.1:{}", free_port());
    let config = NodeConfig {
        data_dir: dir.path().to_path_buf(),
        resp_listen: resp.clone(),
        http_listen: format!("127.0.0.1:{}", free_port()),
        partitions: 16,
        ..NodeConfig::default()
    };
    let node =
        Node::start(config, Doors { redis: true, http: false, metrics: None }).await.unwrap();
    exercise(&GridStore::embedded(node.sessions().clone(), "web")).await;
    exercise(&GridStore::remote(Remote::new(vec![resp], None), "web")).await;

    // A session of another group is not this store's.
    let mut r = record(json!({ "a": 1 }));
    let web = GridStore::embedded(node.sessions().clone(), "web");
    web.create(&mut r).await.unwrap();
    let other = GridStore::embedded(node.sessions().clone(), "admin");
    assert!(other.load(&r.id).await.unwrap().is_none());
    node.shutdown().await.unwrap();
}

/// PEM files of a test CA, a certificate for 127.0.0.1 and a client certificate, in `dir`:
/// (ca, server cert, server key, client cert, client key).
fn test_pki(dir: &std::path::Path) -> [std::path::PathBuf; 5] {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let issue = |names: Vec<String>, usage| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        (params.signed_by(&key, &ca, &ca_key).unwrap().pem(), key.serialize_pem())
    };
    let server = issue(vec!["127.0.0.1".into()], ExtendedKeyUsagePurpose::ServerAuth);
    let client = issue(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth);
    let files =
        ["ca.pem", "server.pem", "server.key", "client.pem", "client.key"].map(|f| dir.join(f));
    for (path, pem) in files.iter().zip([ca.pem(), server.0, server.1, client.0, client.1]) {
        std::fs::write(path, pem).unwrap();
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_round_trip_over_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key, client_cert, client_key] = test_pki(dir.path());
    let tls_addr = format!("127.0.0.1:{}", free_port());
    let config = NodeConfig {
        data_dir: dir.path().join("data"),
        resp_listen: String::new(),
        resp_tls_listen: Some(tls_addr.clone()),
        tls_cert_file: Some(cert),
        tls_key_file: Some(key),
        tls_ca_file: Some(ca.clone()),
        http_listen: format!("127.0.0.1:{}", free_port()),
        partitions: 16,
        ..NodeConfig::default()
    };
    let node =
        Node::start(config, Doors { redis: true, http: false, metrics: None }).await.unwrap();
    let tls = Tls::from_pem_files(&ca, Some((&client_cert, &client_key))).unwrap();
    exercise(&GridStore::remote(Remote::with_tls(vec![tls_addr.clone()], None, tls), "web")).await;

    // Without a client certificate the door refuses the handshake; in plain text, too.
    let anonymous = Tls::from_pem_files(&ca, None).unwrap();
    let refused =
        GridStore::remote(Remote::with_tls(vec![tls_addr.clone()], None, anonymous), "web");
    assert!(refused.create(&mut record(json!({ "a": 1 }))).await.is_err());
    let plain = GridStore::remote(Remote::new(vec![tls_addr], None), "web");
    assert!(plain.create(&mut record(json!({ "a": 1 }))).await.is_err());
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_logged_in_as_an_acl_user_reaches_its_groups_sessions_only() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("users.acl");
    std::fs::write(
        &acl,
        "user default off\n\
         user web on >web-pw +@all ~* group:web\n\
         user admin on >admin-pw +@all ~* group:admin\n",
    )
    .unwrap();
    let resp = format!("127.0.0.1:{}", free_port());
    let config = NodeConfig {
        data_dir: dir.path().join("data"),
        resp_listen: resp.clone(),
        http_listen: format!("127.0.0.1:{}", free_port()),
        aclfile: Some(acl),
        partitions: 16,
        ..NodeConfig::default()
    };
    let node =
        Node::start(config, Doors { redis: true, http: false, metrics: None }).await.unwrap();
    let login = |user: &'static str, password: &'static str| {
        Remote::with_user(vec![resp.clone()], user.into(), password.into(), None)
    };
    let web = GridStore::remote(login("web", "web-pw"), "web");
    exercise(&web).await;

    let mut r = record(json!({ "a": 1 }));
    web.create(&mut r).await.unwrap();
    // The admin application's user cannot create in the web group, nor read its sessions.
    let intruder = GridStore::remote(login("admin", "admin-pw"), "web");
    assert!(intruder.create(&mut record(json!({ "b": 2 }))).await.is_err());
    assert!(intruder.load(&r.id).await.is_err(), "NOPERM, not an absent session");
    let wrong = GridStore::remote(login("web", "nope"), "web");
    assert!(wrong.load(&r.id).await.is_err());
    assert_eq!(web.load(&r.id).await.unwrap().expect("still there").data, r.data);
    node.shutdown().await.unwrap();
}
