//! Handing freed heap back to the system once a snapshot is built.
//!
//! Compiling a snapshot parses the network table (half a million CSV lines,
//! gzip-compressed), the range files and the catalogue: tens of MiB of
//! short-lived allocations. glibc's allocator keeps freed pages mapped unless
//! they sit at the very top of the heap, so without this the proxy would idle
//! with the whole compile's high-water mark resident. `malloc_trim` returns
//! every whole free page of every arena; it costs a few milliseconds, once per
//! load or reload, never on the request path.

/// Returns the allocator's free pages to the system (glibc only; elsewhere
/// nothing to do).
pub fn return_freed_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointer and only walks the allocator's
    // own free lists, under the allocator's locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
