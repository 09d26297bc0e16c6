//! How the node's heap gives memory back: glibc's allocator, left to its
//! defaults, keeps much of what a burst of ingest freed.

/// Arenas glibc may make: one per thread that allocates at once, up to eight per
/// core by default, each keeping the memory its threads freed.
const ARENAS: i32 = 2;

/// Allocations from this size up get pages of their own, returned the moment they
/// are freed. glibc raises this threshold by itself after freeing a large block
/// (up to 32 MiB), after which a sync's answers and the indexer's batches came from
/// the arenas and stayed there; setting it fixes it.
const OWN_PAGES_FROM: i32 = 256 * 1024;

/// Sets the allocator up for a long-running node: few arenas and large blocks on
/// pages of their own. Call before the node starts its threads. Figures in
/// docs/BENCHMARKS.md, "Scale".
pub fn bound_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; both values are in
    // their documented ranges.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_PAGES_FROM);
    }
}

/// Gives the memory freed after a burst of ingest back to the system: glibc keeps
/// freed heap in its arenas otherwise, and the node's resident size would stay at
/// its peak.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}
