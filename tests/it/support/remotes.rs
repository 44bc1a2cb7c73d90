//! Fake git remotes on 127.0.0.1: one that accepts connections and never
//! answers (a hung server), one that asks for credentials and records every
//! request it gets (to see what would leak), over plain HTTP or HTTPS, and an
//! HTTPS one that redirects every request elsewhere.
//!
//! HTTPS uses `tls/cert.pem` (for `localhost` and `127.0.0.1`), signed by the
//! test CA `tls/ca.pem`, which [`trust_test_ca`] adds to what libgit2 trusts.

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

/// Makes libgit2 (this process) trust the test CA, once; its usual roots stay.
pub fn trust_test_ca() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/tls/ca.pem");
        // SAFETY: sets a global libgit2 option (a file it reads at once).
        unsafe { git2::opts::set_ssl_cert_file(ca) }.expect("libgit2 takes the test CA");
    });
}

fn tls_acceptor() -> native_tls::TlsAcceptor {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/tls");
    let cert = std::fs::read(format!("{dir}/cert.pem")).unwrap();
    let key = std::fs::read(format!("{dir}/key.pem")).unwrap();
    let identity = native_tls::Identity::from_pkcs8(&cert, &key).unwrap();
    native_tls::TlsAcceptor::new(identity).unwrap()
}

/// Serves each connection on its own thread: reads one request head, hands it
/// to `answer`, writes what that returns, and closes.
fn serve(
    listener: TcpListener,
    tls: bool,
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) {
    let acceptor = tls.then(tls_acceptor);
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let (acceptor, answer) = (acceptor.clone(), answer.clone());
            std::thread::spawn(move || match acceptor {
                Some(acceptor) => {
                    if let Ok(mut tls) = acceptor.accept(stream) {
                        exchange(&mut tls, &*answer);
                    }
                }
                None => {
                    let mut stream = stream;
                    exchange(&mut stream, &*answer);
                }
            });
        }
    });
}

fn exchange(stream: &mut (impl Read + Write), answer: &dyn Fn(&str) -> String) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let response = answer(&String::from_utf8_lossy(&head));
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

/// Answers every request with 401 and a Basic challenge, and keeps the request heads.
pub struct CredentialTrap {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
    tls: bool,
}

impl CredentialTrap {
    /// Over plain HTTP.
    pub fn start() -> CredentialTrap {
        CredentialTrap::start_with(false)
    }

    /// Over HTTPS (the test CA: call [`trust_test_ca`]).
    pub fn start_tls() -> CredentialTrap {
        CredentialTrap::start_with(true)
    }

    fn start_with(tls: bool) -> CredentialTrap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        serve(listener, tls, move |head| {
            seen.lock().unwrap().push(head.to_string());
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
                .to_string()
        });
        CredentialTrap {
            port,
            requests,
            tls,
        }
    }

    /// `http://127.0.0.1:PORT/`, or `https://localhost:PORT/` over TLS.
    pub fn prefix(&self) -> String {
        if self.tls {
            format!("https://localhost:{}/", self.port)
        } else {
            format!("http://127.0.0.1:{}/", self.port)
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// An HTTPS remote at `https://127.0.0.1:PORT/` that answers every request with
/// a 302 to the same path under `to`.
pub struct RedirectingRemote {
    pub port: u16,
}

impl RedirectingRemote {
    pub fn start_tls(to: &str) -> RedirectingRemote {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let to = to.trim_end_matches('/').to_string();
        serve(listener, true, move |head| {
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            format!(
                "HTTP/1.1 302 Found\r\nLocation: {to}{path}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            )
        });
        RedirectingRemote { port }
    }

    pub fn prefix(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }
}
