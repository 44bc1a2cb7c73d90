//! Slow and hostile clients against the real server loop: headers and bodies
//! must arrive in time, connections and large bodies are capped, unsigned
//! bodies are refused before they are read, a malformed chunk is a 400, and a
//! shutdown does not wait for stalled clients beyond its grace period.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tokentally::config::Config;
use tokio_util::sync::CancellationToken;

use crate::db_test;
use crate::support::{self, SECRET, TestDb, eventually};

struct Running {
    addr: String,
    /// To see how many large bodies are being read (conditions, not delays).
    bodies: tokentally::server::body::BodyLimits,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(config: Config) -> Running {
    let app = support::app_with(config).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let shutdown = CancellationToken::new();
    let bodies = app.state.body_limits.clone();
    let task = tokio::spawn(app.run(listener, shutdown.clone()));
    Running {
        addr,
        bodies,
        shutdown,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

fn limits(db: &TestDb) -> Config {
    let mut config = support::test_config(db);
    config.http.header_timeout_seconds = 1;
    config.http.body_timeout_seconds = 1;
    config.http.shutdown_grace_seconds = 1;
    config
}

/// Reads until the server closes the connection (or 20 s pass) and returns what it sent.
fn read_all(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

fn signed_head(addr: &str, delivery: &str, body: &[u8], extra: &str) -> String {
    let signature = tokentally::github::signature::sign(SECRET, body);
    format!(
        "POST /webhooks/github HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-github-event: push\r\nx-github-delivery: {delivery}\r\nx-hub-signature-256: {signature}\r\n{extra}\r\n"
    )
}

async fn a_client_that_never_finishes_its_headers_is_cut_off(db: &TestDb) {
    let server = start(limits(db)).await;
    let addr = server.addr.clone();
    let closed = tokio::task::spawn_blocking(move || {
        let mut slow = TcpStream::connect(&addr).unwrap();
        slow.write_all(b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\n")
            .unwrap();
        read_all(&mut slow) // returns once the server closes the connection
    })
    .await
    .unwrap();
    assert!(
        closed.is_empty() || closed.starts_with("HTTP/1.1 408"),
        "{closed}"
    );
    // An idle keep-alive connection is closed the same way.
    let addr = server.addr.clone();
    let idle = tokio::task::spawn_blocking(move || {
        let mut conn = TcpStream::connect(&addr).unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        read_all(&mut conn)
    })
    .await
    .unwrap();
    assert!(idle.starts_with("HTTP/1.1 200"), "{idle}");
    server.stop().await;
}
db_test!(a_client_that_never_finishes_its_headers_is_cut_off);

async fn a_body_that_does_not_arrive_in_time_is_a_408(db: &TestDb) {
    let server = start(limits(db)).await;
    let addr = server.addr.clone();
    let response = tokio::task::spawn_blocking(move || {
        let body = br#"{"ref":"refs/heads/main","repository":{"full_name":"acme/api"}}"#;
        let mut conn = TcpStream::connect(&addr).unwrap();
        let head = signed_head(
            &addr,
            "dripping",
            body,
            &format!("content-length: {}\r\n", body.len()),
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&body[..10]).unwrap(); // and never the rest
        read_all(&mut conn)
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("request_timeout"), "{response}");
    server.stop().await;
}
db_test!(a_body_that_does_not_arrive_in_time_is_a_408);

async fn unsigned_bodies_are_refused_before_they_are_read(db: &TestDb) {
    let server = start(limits(db)).await;
    let addr = server.addr.clone();
    let response = tokio::task::spawn_blocking(move || {
        let mut conn = TcpStream::connect(&addr).unwrap();
        // Announces 20 MiB and sends none of it: the answer comes anyway.
        write!(
            conn,
            "POST /webhooks/github HTTP/1.1\r\nhost: x\r\nx-github-event: push\r\n\
             x-github-delivery: big\r\ncontent-length: 20971520\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        read_all(&mut conn)
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    server.stop().await;
}
db_test!(unsigned_bodies_are_refused_before_they_are_read);

async fn a_malformed_chunk_is_a_400(db: &TestDb) {
    let server = start(limits(db)).await;
    let addr = server.addr.clone();
    let response = tokio::task::spawn_blocking(move || {
        let mut conn = TcpStream::connect(&addr).unwrap();
        let head = signed_head(
            &addr,
            "chunky",
            b"{}",
            "transfer-encoding: chunked\r\nconnection: close\r\n",
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(b"zz\r\n{}\r\n0\r\n\r\n").unwrap();
        read_all(&mut conn)
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("malformed_body"), "{response}");
    server.stop().await;
}
db_test!(a_malformed_chunk_is_a_400);

async fn large_bodies_are_read_a_few_at_a_time(db: &TestDb) {
    let mut config = limits(db);
    config.http.max_large_bodies = 1;
    config.http.body_timeout_seconds = 3;
    let server = start(config).await;
    let addr = server.addr.clone();
    let big = format!("{{\"pad\": \"{}\"}}", " ".repeat(2 * 1024 * 1024));
    let big = big.into_bytes();
    // The first large body holds the only permit (a little sent, then stalled).
    let first = {
        let (addr, big) = (addr.clone(), big.clone());
        std::thread::spawn(move || {
            let mut conn = TcpStream::connect(&addr).unwrap();
            let head = signed_head(
                &addr,
                "large-1",
                &big,
                &format!("content-length: {}\r\nconnection: close\r\n", big.len()),
            );
            conn.write_all(head.as_bytes()).unwrap();
            conn.write_all(&big[..1024]).unwrap();
            let answer = read_all(&mut conn);
            (answer, std::time::Instant::now())
        })
    };
    let bodies = server.bodies.clone();
    eventually("the first body holds the only turn", || {
        std::future::ready(bodies.large_in_flight() == 1)
    })
    .await;
    // The second sends all of its body at once, but is read only after the
    // first (its wait for the turn outlasts the first's 3 s by a grace).
    let second = std::thread::spawn(move || {
        let mut conn = TcpStream::connect(&addr).unwrap();
        let head = signed_head(
            &addr,
            "large-2",
            &big,
            &format!("content-length: {}\r\nconnection: close\r\n", big.len()),
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&big).unwrap();
        let answer = read_all(&mut conn);
        (answer, std::time::Instant::now())
    });
    let ((first, first_done), (second, second_done)) =
        tokio::task::spawn_blocking(move || (first.join().unwrap(), second.join().unwrap()))
            .await
            .unwrap();
    assert!(first.starts_with("HTTP/1.1 408"), "{first}");
    assert!(second.starts_with("HTTP/1.1 202"), "{second}");
    assert!(
        second_done >= first_done,
        "the second large body waited for the first one's permit"
    );
    server.stop().await;
}
db_test!(large_bodies_are_read_a_few_at_a_time);

async fn connections_beyond_the_cap_wait_their_turn(db: &TestDb) {
    let mut config = limits(db);
    config.http.max_connections = 1;
    let server = start(config).await;
    let addr = server.addr.clone();
    let answers = tokio::task::spawn_blocking(move || {
        // The only slot: a client that never sends its headers.
        let mut hog = TcpStream::connect(&addr).unwrap();
        hog.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
        // This one waits in the backlog until the hog is cut off, then is served.
        let mut next = TcpStream::connect(&addr).unwrap();
        next.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let next = read_all(&mut next);
        let hog = read_all(&mut hog);
        (hog, next)
    })
    .await
    .unwrap();
    assert!(!answers.0.starts_with("HTTP/1.1 200"), "{}", answers.0);
    assert!(answers.1.starts_with("HTTP/1.1 200"), "{}", answers.1);
    server.stop().await;
}
db_test!(connections_beyond_the_cap_wait_their_turn);

async fn shutdown_gives_up_on_stalled_clients(db: &TestDb) {
    let mut config = limits(db);
    config.http.body_timeout_seconds = 600;
    config.http.header_timeout_seconds = 600;
    config.http.max_large_bodies = 5;
    let server = start(config).await;
    let addr = server.addr.clone();
    // Large bodies, so the server's count shows when all five are being read.
    let stalled = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for i in 0..5 {
            let mut conn = TcpStream::connect(&addr).unwrap();
            let head = signed_head(
                &addr,
                &format!("stall-{i}"),
                b"{}",
                "content-length: 2000000\r\n",
            );
            conn.write_all(head.as_bytes()).unwrap();
            conn.write_all(b"{").unwrap();
            conns.push(conn);
        }
        conns
    })
    .join()
    .unwrap();
    let bodies = server.bodies.clone();
    eventually("all five stalled bodies are being read", || {
        std::future::ready(bodies.large_in_flight() == 5)
    })
    .await;
    // Grace is 1 s; the clients would hold the process for 10 minutes.
    server.stop().await;
    drop(stalled);
}
db_test!(shutdown_gives_up_on_stalled_clients);
