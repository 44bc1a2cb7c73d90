//! Giving memory back to the system. glibc keeps freed memory in its heaps for
//! reuse; after a 25 MiB webhook body or a first sync of a long history that is
//! hundreds of MB a long-running service would hold for nothing.

/// A fixed mmap threshold: allocations over 256 KiB get their own mapping, which
/// goes back to the system as soon as it is freed (glibc's default threshold
/// rises after the first large free, so 25 MiB bodies would stay in the heap).
pub fn return_large_allocations_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; called once at start-up.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Returns the free parts of every heap (the worker's blocking threads have
/// arenas of their own) to the system, after work that allocated a lot.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; safe at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
