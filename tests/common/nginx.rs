//! A real nginx (Debian package nginx) in front of server processes: its own temporary
//! prefix directory and loopback ports, run in the foreground as one process (`nginx -p DIR
//! -c nginx.conf -g 'daemon off;'`, `master_process off`) and stopped by its PID when
//! dropped. Two listeners: one round-robin
//! over the upstreams (streamable HTTP, any replica), one with `ip_hash` (client-IP
//! affinity, which the old HTTP+SSE transport needs). Its access log names the upstream of
//! each request.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::redis_server::free_port;

pub struct Nginx {
    child: Option<Child>,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`: round-robin over every upstream.
    pub round_robin: String,
    /// `http://127.0.0.1:PORT`: `ip_hash`, every request of one client to one upstream.
    pub affinity: String,
}

/// Whether `nginx` can be run here.
pub fn nginx_installed() -> bool {
    Command::new("nginx")
        .arg("-v")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The configuration of both listeners over `upstreams` (`127.0.0.1:PORT` each). Proxied
/// as an MCP server wants: HTTP/1.1 upstream, no buffering (answers may be event streams),
/// the client's own `Host` (the servers check it), long reads for open streams. With
/// `keepalive`, each nginx process keeps up to that many idle connections to the upstreams
/// for reuse; without it, every proxied request opens a connection of its own.
pub fn config(
    dir: &std::path::Path,
    upstreams: &[String],
    (round_robin, affinity): (u16, u16),
    keepalive: Option<usize>,
) -> String {
    let mut servers: String = upstreams
        .iter()
        .map(|upstream| format!("        server {upstream} max_fails=0;\n"))
        .collect();
    if let Some(idle) = keepalive {
        servers.push_str(&format!("        keepalive {idle};\n"));
    }
    let dir = dir.display();
    format!(
        r#"master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$request_method $uri $status $upstream_addr';
    access_log {dir}/access.log upstream;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream replicas {{
{servers}    }}
    upstream replicas_by_ip {{
        ip_hash;
{servers}    }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_read_timeout 1h;
    server {{
        listen 127.0.0.1:{round_robin};
        location / {{ proxy_pass http://replicas; }}
    }}
    server {{
        listen 127.0.0.1:{affinity};
        location / {{ proxy_pass http://replicas_by_ip; }}
    }}
}}
"#
    )
}

impl Nginx {
    /// nginx in front of `upstreams`. `None`, after a one-line notice, when nginx is not
    /// installed; under CI=true that fails the test.
    pub fn start(upstreams: &[String]) -> Option<Self> {
        Self::start_with(upstreams, None)
    }

    /// [`Self::start`] with `keepalive` idle connections to the upstreams kept for reuse
    /// (see [`config`]).
    pub fn start_with(upstreams: &[String], keepalive: Option<usize>) -> Option<Self> {
        if !nginx_installed() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "nginx (Debian package nginx) is required in CI"
            );
            eprintln!("skipped: nginx not installed (Debian package nginx)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "ptm-nginx-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (round_robin, affinity) = (free_port(), free_port());
        std::fs::write(
            dir.join("nginx.conf"),
            config(&dir, upstreams, (round_robin, affinity), keepalive),
        )
        .unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-g")
            .arg("daemon off;")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let nginx = Self {
            child: Some(child),
            dir,
            round_robin: format!("http://127.0.0.1:{round_robin}"),
            affinity: format!("http://127.0.0.1:{affinity}"),
        };
        let started = Instant::now();
        while ![round_robin, affinity]
            .iter()
            .all(|port| std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok())
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not listen: {}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(nginx)
    }

    /// nginx's process id (the harness counts its CPU time).
    #[allow(
        dead_code,
        reason = "the test suite does not use it; benches/harness.rs does"
    )]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `(method, path, status, upstream)` of every request nginx logged so far; the
    /// upstream is the one that answered (nginx lists those it tried first before it).
    pub fn access_log(&self) -> Vec<(String, String, u16, String)> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(4, ' ');
                Some((
                    fields.next()?.to_owned(),
                    fields.next()?.to_owned(),
                    fields.next()?.parse().ok()?,
                    fields.next()?.rsplit(", ").next()?.to_owned(),
                ))
            })
            .collect()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
