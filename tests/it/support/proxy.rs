//! A TCP proxy a test puts between the service and its database, to take the
//! database away as a stopped server does (open connections cut, new ones
//! refused) and bring it back on the same port.

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    addr: SocketAddr,
    target: String,
    /// Bumped on every pause: connections of an older generation are cut.
    generation: watch::Sender<u64>,
    /// The accepting task while the proxy runs; none while it is paused.
    accepting: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1 and forwards every connection to `target` (`host:port`).
    pub async fn start(target: &str) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (generation, _) = watch::channel(0u64);
        let proxy = TcpProxy {
            addr: listener.local_addr().unwrap(),
            target: target.to_string(),
            generation,
            accepting: Mutex::new(None),
        };
        proxy.accept(listener);
        proxy
    }

    fn accept(&self, listener: TcpListener) {
        let (target, generation) = (self.target.clone(), self.generation.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = generation.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        *self.accepting.lock().unwrap() = Some(task);
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The database goes away: open connections are cut, new ones refused
    /// (nothing listens on the port).
    pub fn pause(&self) {
        if let Some(task) = self.accepting.lock().unwrap().take() {
            task.abort();
        }
        self.generation.send_modify(|g| *g += 1);
    }

    /// The database is back, on the same port.
    pub async fn resume(&self) {
        // The aborted task drops its listener when it is next polled.
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        self.accept(listener);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.pause();
    }
}
