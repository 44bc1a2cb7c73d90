//! `TCP_NODELAY` on the PostgreSQL sockets, which sqlx leaves off.

/// Turns Nagle's algorithm off on this process's TCP connections to `port`.
///
/// sqlx does not set `TCP_NODELAY` on its PostgreSQL sockets. A statement larger
/// than the socket's send buffer (a batch of webhook payloads) then leaves in two
/// writes, and the small tail waits for the server's delayed ACK: 40 ms per
/// statement, which capped ingress at a few hundred deliveries a second. sqlx
/// offers no hook on its socket, so the connected sockets are found by their
/// peer port among the process's file descriptors.
pub(super) fn no_delay_on_sockets_to(port: u16) {
    #[cfg(target_os = "linux")]
    {
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for entry in fds.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
            if is_socket && peer_port(fd) == Some(port) {
                let on: libc::c_int = 1;
                // SAFETY: setsockopt on a socket this process owns, with a valid
                // pointer to an int of the size given.
                unsafe {
                    libc::setsockopt(
                        fd,
                        libc::IPPROTO_TCP,
                        libc::TCP_NODELAY,
                        (&on as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    );
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = port;
}

/// The remote port of a connected TCP socket (IPv4 or IPv6).
#[cfg(target_os = "linux")]
fn peer_port(fd: i32) -> Option<u16> {
    // SAFETY: getpeername writes at most `len` bytes into the zeroed storage.
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getpeername(
            fd,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ) != 0
        {
            return None;
        }
        match i32::from(addr.ss_family) {
            libc::AF_INET => {
                let v4 = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                Some(u16::from_be(v4.sin_port))
            }
            libc::AF_INET6 => {
                let v6 = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                Some(u16::from_be(v6.sin6_port))
            }
            _ => None,
        }
    }
}
