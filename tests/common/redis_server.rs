//! A real `redis-server` (Debian package redis-server) for the tests that need one: its own
//! random loopback port and temporary directory, the append-only file fsynced on every
//! write, stopped by its PID when dropped. "Restart" is `kill -9` and a new process on the
//! same directory, which replays the append-only file.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// One redis-server process and the directory it keeps its files in.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    /// The TLS certificates' directory, for a server from [`RedisServer::start_tls`].
    certs: Option<PathBuf>,
}

/// A loopback port free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `redis-server` can be run here.
pub fn redis_installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

impl RedisServer {
    /// A durable Redis (`appendonly yes`, `appendfsync always`, `noeviction`), with `extra`
    /// settings after those (`["--appendonly", "no"]` overrides). `None`, after a one-line
    /// notice, when redis-server is not installed; under CI=true that fails the test.
    pub fn start(extra: &[&str]) -> Option<Self> {
        if !redis_installed() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server (Debian package redis-server) is required in CI"
            );
            eprintln!("skipped: redis-server not installed (Debian package redis-server)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "ptm-redis-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            child: None,
            port: free_port(),
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            certs: None,
        };
        server.spawn();
        Some(server)
    }

    /// A durable Redis that also serves TLS on another port, with a certificate for
    /// 127.0.0.1 from a CA made here with `openssl` (Debian package openssl): see
    /// [`Self::tls_url`] and [`Self::ca_file`]. `None` as for [`Self::start`].
    pub fn start_tls() -> Option<Self> {
        let installed = Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "openssl (Debian package openssl) is required in CI"
            );
            eprintln!("skipped: openssl not installed (Debian package openssl)");
            return None;
        }
        let certs = std::env::temp_dir().join(format!(
            "ptm-redis-tls-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&certs).unwrap();
        let openssl = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .current_dir(&certs)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "openssl {args:?}");
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=ptm test CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(certs.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ]);
        let tls_port = free_port().to_string();
        let file = |name: &str| certs.join(name).to_str().unwrap().to_owned();
        let (cert, key, ca) = (file("server.pem"), file("server.key"), file("ca.pem"));
        let mut server = Self::start(&[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ])?;
        server.certs = Some(certs);
        Some(server)
    }

    /// `rediss://127.0.0.1:TLS_PORT/0`, for a server from [`Self::start_tls`].
    pub fn tls_url(&self) -> String {
        let port = self
            .extra
            .iter()
            .position(|arg| arg == "--tls-port")
            .and_then(|at| self.extra.get(at + 1))
            .expect("started with start_tls");
        format!("rediss://127.0.0.1:{port}/0")
    }

    /// The CA that signed the TLS certificate, for `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> PathBuf {
        self.certs
            .as_ref()
            .expect("started with start_tls")
            .join("ca.pem")
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--maxmemory-policy", "noeviction", "--daemonize", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Wait (up to 10 s) until it answers PING.
    fn wait_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} never answered PING", self.port);
    }

    fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.plain_url()) else {
            return false;
        };
        let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
            return false;
        };
        redis::cmd("PING")
            .query::<String>(&mut connection)
            .is_ok_and(|pong| pong == "PONG")
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The URL with the `--requirepass` password, if one was set, for this helper's own
    /// connections.
    fn plain_url(&self) -> String {
        let password = self
            .extra
            .iter()
            .position(|arg| arg == "--requirepass")
            .and_then(|at| self.extra.get(at + 1));
        match password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/0", self.port),
            None => self.url(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// SIGKILL, by its PID, and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port and directory (replaying the append-only file).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A connection for inspecting what the store wrote.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.plain_url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap()
    }

    /// The field `field` of every stored pair (`ptm:1:{…}:pair` keys holding a response).
    pub fn pair_fields(&self, field: &str) -> Vec<Option<String>> {
        let mut connection = self.connection();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("ptm:1:{*}:pair")
            .query(&mut connection)
            .unwrap();
        keys.iter()
            .filter_map(|key| {
                let [response, wanted]: [Option<String>; 2] = redis::cmd("HMGET")
                    .arg(key)
                    .arg("resp")
                    .arg(field)
                    .query::<Vec<Option<String>>>(&mut connection)
                    .unwrap()
                    .try_into()
                    .unwrap();
                response.map(|_| wanted)
            })
            .collect()
    }

    /// The token response of every stored pair (`ptm:1:{…}:pair` keys holding one).
    pub fn stored_responses(&self) -> Vec<serde_json::Value> {
        self.pair_fields("resp")
            .into_iter()
            .flatten()
            .map(|text| serde_json::from_str(&text).unwrap())
            .collect()
    }

    /// Everything this Redis holds and wrote to disk, as text: every key with its value
    /// (strings, hashes, sets, sorted sets, lists) and every file in its directory (the
    /// append-only file among them), for a test that looks for a secret at rest.
    pub fn everything_at_rest(&self) -> String {
        let mut connection = self.connection();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
        let mut dump = String::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query(&mut connection).unwrap();
            let values: Vec<String> = match kind.as_str() {
                "string" => redis::cmd("GET").arg(&key).query(&mut connection),
                "hash" => redis::cmd("HGETALL").arg(&key).query(&mut connection),
                "zset" => redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(&mut connection),
                "set" => redis::cmd("SMEMBERS").arg(&key).query(&mut connection),
                "list" => redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query(&mut connection),
                other => panic!("key {key} of unexpected type {other}"),
            }
            .unwrap();
            dump.push_str(&format!("{key} = {}\n", values.join(" ")));
        }
        let mut directories = vec![self.dir.clone()];
        while let Some(directory) = directories.pop() {
            for entry in std::fs::read_dir(&directory).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    directories.push(path);
                } else {
                    let bytes = std::fs::read(&path).unwrap();
                    dump.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
        dump
    }

    /// The one stored token response.
    pub fn stored(&self) -> serde_json::Value {
        let mut responses = self.stored_responses();
        assert_eq!(responses.len(), 1, "one pair stored");
        responses.remove(0)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(certs) = &self.certs {
            let _ = std::fs::remove_dir_all(certs);
        }
    }
}
