//! Fake git remotes over plain HTTP on 127.0.0.1: one that accepts connections
//! and never answers (a hung server), and one that asks for credentials and
//! records every request it gets (to see what would leak).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Accepts connections, reads the request, and never answers — until it is
/// dropped: then it closes them, so no libgit2 thread outlives the test.
pub struct HangingRemote {
    pub port: u16,
    /// Connections accepted so far.
    pub connections: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
}

impl Drop for HangingRemote {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and closes what it holds.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl HangingRemote {
    pub fn start() -> HangingRemote {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (connections.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break; // `held` is dropped: every connection closes
                }
                let Ok(stream) = stream else { break };
                *count.lock().unwrap() += 1;
                held.push(stream); // kept open, never answered
            }
        });
        HangingRemote {
            port,
            connections,
            stop,
        }
    }

    pub fn prefix(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.prefix())
    }

    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

/// Answers every request with 401 and a Basic challenge, and keeps the request heads.
pub struct CredentialTrap {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl CredentialTrap {
    pub fn start() -> CredentialTrap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).to_string());
                let _ = stream.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        CredentialTrap { port, requests }
    }

    pub fn prefix(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}
