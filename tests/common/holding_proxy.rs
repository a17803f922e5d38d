//! A TCP proxy on 127.0.0.1 in front of a login host that can hold new connections instead
//! of forwarding them: a request sent through a held connection never reaches the host, so
//! a test can kill its sender "before Procore saw it".

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use tokio::net::{TcpListener, TcpStream};

pub struct HoldingProxy {
    pub url: String,
    hold: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl HoldingProxy {
    /// Forward every connection to `target` (`http://HOST:PORT`) until told to hold.
    pub async fn start(target: &str) -> Self {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hold = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicUsize::new(0));
        let (holding, counting) = (hold.clone(), held.clone());
        let task = tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Ok((client, _)) = listener.accept().await {
                if holding.load(Ordering::SeqCst) {
                    // Keep it open, read nothing, forward nothing.
                    kept.push(client);
                    counting.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(&target).await {
                        let mut client = client;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        Self {
            url,
            hold,
            held,
            task,
        }
    }

    /// Hold (or forward again) the connections accepted from now on.
    pub fn hold(&self, hold: bool) {
        self.hold.store(hold, Ordering::SeqCst);
    }

    /// How many connections are being held.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

impl Drop for HoldingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
