//! The HTTP API fuzz target's node and what it checks of one input, shared with the test that
//! replays the fuzz corpus kept in the repository (`crates/doors/fuzz/corpus/http_api`).
//!
//! A real node with its HTTP door on a loopback port, and an ACL user `shop` (password `pw`)
//! limited to the `shop` session group. An input is one request: its first byte picks the
//! method (bits 0-1) and the caller (bit 2: `shop`, else anyone, who is the admin here); up to
//! the first newline, the path and query below `/api/v1/`; the rest, the JSON body. No input
//! may end the node or make the API answer 500: a request it cannot serve is the caller's
//! error.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use sessiongrid_model::config::NodeConfig;
use tokio::runtime::Runtime;

use crate::{Doors, Node, NodeHandle};

pub struct HttpApi {
    runtime: Runtime,
    node: Option<NodeHandle>,
    addr: SocketAddr,
    dir: PathBuf,
}

impl HttpApi {
    /// Starts the node, with its data and users in a new directory under the system's
    /// temporary one (removed when the API is dropped).
    pub fn start() -> HttpApi {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = std::env::temp_dir().join(format!(
            "sessiongrid-http-fuzz-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("a data directory");
        let acl = dir.join("users.acl");
        std::fs::write(
            &acl,
            "user default on nopass ~* &* +@all allgroups\nuser shop on >pw +@all ~* group:shop\n",
        )
        .expect("an ACL file");
        let addr: SocketAddr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("an address")
        };
        let config = NodeConfig {
            data_dir: dir.join("data"),
            http_listen: addr.to_string(),
            aclfile: Some(acl),
            partitions: 8,
            ..NodeConfig::default()
        };
        let doors = Doors { redis: false, http: true, metrics: None };
        let node = runtime.block_on(Node::start(config, doors)).expect("a node");
        HttpApi { runtime, node: Some(node), addr, dir }
    }

    /// Sends the request `data` stands for (see the module's documentation) and checks the
    /// answer's status.
    pub fn send(&self, data: &[u8]) {
        let Some((&first, rest)) = data.split_first() else { return };
        let method = ["GET", "POST", "DELETE", "PUT"][usize::from(first & 3)];
        let (path, body) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        // A request line carries visible ASCII only: anything else is not a request to send.
        if path.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
            return;
        }
        let path = String::from_utf8_lossy(path);
        let mut request = format!(
            "{method} /api/v1/{path} HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if first & 4 != 0 {
            request.push_str("Authorization: Basic c2hvcDpwdw==\r\n"); // shop:pw
        }
        request.push_str("\r\n");
        let mut stream = TcpStream::connect(self.addr).expect("the HTTP door");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("a timeout");
        stream.write_all(request.as_bytes()).expect("the request head");
        stream.write_all(body).expect("the request body");
        let mut status = String::new();
        BufReader::new(stream).read_line(&mut status).expect("an answer");
        let code = status.split(' ').nth(1).unwrap_or_default();
        assert!(code.len() == 3, "no status line: {status:?} for {method} {path}");
        assert_ne!(code, "500", "{method} /api/v1/{path} answered {status}");
    }
}

impl Drop for HttpApi {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            let _ = self.runtime.block_on(node.shutdown());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
