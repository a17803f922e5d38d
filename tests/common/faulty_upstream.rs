//! A login host on 127.0.0.1 that misbehaves on cue, at the TCP level: it hangs, trickles,
//! resets mid-body, answers raw bytes of any kind, streams a huge body while counting what
//! it managed to write, or stops listening altogether. Requests without a scripted fault
//! get a token response, so a test can show the next call works.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

use super::{TOKEN_BODY, wait_until};

/// What the upstream does with one connection.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Read the request, then say nothing and keep the connection open.
    Hang,
    /// Send the headers at once, then the body one byte per `every`.
    Trickle { every: Duration },
    /// Send the headers (announcing 4096 bytes) and 100 bytes, then reset (RST) the connection.
    ResetMidBody,
    /// Write these bytes as the whole answer, then close.
    Raw(Vec<u8>),
    /// Answer with this status and the whole request (head and body) as the body, as a
    /// debug endpoint or a misconfigured proxy would.
    Echo(u16),
    /// A 200 with `size` bytes of body, with or without `Content-Length`, written in 64 KiB
    /// pieces until done or the reader goes away; the outcome is kept for [`FaultyUpstream::huge`].
    Huge { size: usize, declared: bool },
}

/// What happened to a huge body.
#[derive(Debug, Clone, Copy)]
pub struct HugeOutcome {
    /// Bytes of the body written before the end.
    pub written: usize,
    /// The reader closed or reset the connection before the body was fully written.
    pub cut_off: bool,
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Fault>>,
    requests: Mutex<Vec<String>>,
    huge: Mutex<Option<HugeOutcome>>,
}

pub struct FaultyUpstream {
    pub address: SocketAddr,
    pub url: String,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl Drop for FaultyUpstream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl FaultyUpstream {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let task = Some(tokio::spawn(accept_loop(listener, shared.clone())));
        Self {
            address,
            url: format!("http://{address}"),
            shared,
            task,
        }
    }

    /// Answer the next connection with `fault` (scripted faults are used in order).
    pub fn push(&self, fault: Fault) {
        self.shared.script.lock().unwrap().push_back(fault);
    }

    /// Requests received so far (request line, headers and body, as text).
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Wait until `n` requests have arrived.
    pub async fn wait_for_requests(&self, n: usize) {
        wait_until(
            || self.count() >= n,
            || format!("the upstream saw {} requests, not {n}", self.count()),
        )
        .await;
    }

    /// Close the listening socket (and every open connection): connecting is refused.
    pub fn stop_listening(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listen again on the same port.
    pub async fn listen_again(&mut self) {
        self.stop_listening();
        let listener = loop {
            match TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.task = Some(tokio::spawn(accept_loop(listener, self.shared.clone())));
    }

    /// Wait for the outcome of the huge body.
    pub async fn huge(&self) -> HugeOutcome {
        let outcome = || *self.shared.huge.lock().unwrap();
        wait_until(
            || outcome().is_some(),
            || "the huge body was never written".to_owned(),
        )
        .await;
        outcome().unwrap()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owning the connections here means aborting this task closes them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(serve(stream, shared.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Read one request: headers, then as many body bytes as `Content-Length` says. The
/// whole request comes back as text.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buffer.len() - head_end < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    Some(String::from_utf8_lossy(&buffer).into_owned())
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    shared.requests.lock().unwrap().push(request.clone());
    let fault = shared.script.lock().unwrap().pop_front();
    match fault {
        None => {
            let _ = stream
                .write_all(&response(200, &[], TOKEN_BODY.as_bytes()))
                .await;
        }
        Some(Fault::Raw(bytes)) => {
            let _ = stream.write_all(&bytes).await;
        }
        Some(Fault::Echo(status)) => {
            let _ = stream
                .write_all(&response(status, &[], request.as_bytes()))
                .await;
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        Some(Fault::Trickle { every }) => {
            let body = TOKEN_BODY.as_bytes();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n",
                body.len()
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for byte in body {
                tokio::time::sleep(every).await;
                if stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
            }
        }
        Some(Fault::ResetMidBody) => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                        content-length: 4096\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&[b' '; 100]).await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Linger 0: closing sends RST instead of FIN.
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Some(Fault::Huge { size, declared }) => {
            let mut head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n".to_owned();
            if declared {
                head.push_str(&format!("content-length: {size}\r\n"));
            }
            head.push_str("connection: close\r\n\r\n");
            let mut outcome = HugeOutcome {
                written: 0,
                cut_off: false,
            };
            if stream.write_all(head.as_bytes()).await.is_err() {
                outcome.cut_off = true;
            }
            let piece = vec![b'7'; 64 * 1024];
            while !outcome.cut_off && outcome.written < size {
                let take = piece.len().min(size - outcome.written);
                let write =
                    tokio::time::timeout(Duration::from_secs(20), stream.write_all(&piece[..take]))
                        .await;
                match write {
                    Ok(Ok(())) => outcome.written += take,
                    _ => outcome.cut_off = true,
                }
            }
            *shared.huge.lock().unwrap() = Some(outcome);
        }
    }
}

/// A complete HTTP/1.1 answer that closes the connection.
pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 {status} Whatever\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        text.push_str("content-type: application/json\r\n");
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
