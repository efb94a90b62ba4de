//! Guards G8: a corrupt length field (up to 4 GiB) must never make recovery or a reader allocate
//! more than the limits allow. A counting global allocator records the largest single
//! allocation while a log with such a field is opened and read.

#![expect(
    unsafe_code,
    reason = "a counting global allocator must implement the unsafe GlobalAlloc trait"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use annal_storage::SimStorage;
use annal_wal::{Log, Options, Reader};

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates every call to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn corrupt_4gib_length_allocates_nothing_large() {
    const SEGMENT: u64 = 256 * 1024;
    let sim = SimStorage::new(5);
    let options = Options { segment_bytes_target: SEGMENT, ..Options::default() };
    let log = Log::open_with(Arc::new(sim.clone()), "/s", options.clone()).expect("open");
    for i in 0..20u32 {
        log.append(format!("record {i}").as_bytes()).expect("append");
    }
    let seg = log.segments().pop().expect("segment").path;
    drop(log);
    // The third frame's body length field (frame header bytes 8..12) becomes u32::MAX.
    let bytes = sim.file_bytes(&seg).expect("bytes");
    let mut at = annal_wal::format::SEGMENT_HEADER_BYTES;
    for _ in 0..2 {
        let h = annal_wal::format::decode_frame_header(&bytes[at..]).expect("frame");
        at += usize::try_from(h.frame_len()).expect("small");
    }
    for bit in 0..32u8 {
        let byte = u64::try_from(at).expect("small") + 8 + u64::from(bit / 8);
        if (u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4")) >> bit) & 1 == 0 {
            sim.flip_bit(&seg, byte, bit % 8).expect("flip");
        }
    }
    LARGEST.store(0, Ordering::Relaxed);
    let err = Log::open_with(Arc::new(sim.clone()), "/s", options).expect_err("corruption");
    assert!(err.is_integrity(), "{err}");
    let reader = Reader::open(Arc::new(sim.clone()), "/s", 1).expect("reader");
    assert_eq!(reader.filter_map(Result::ok).count(), 2, "the reader stops at the bad frame");
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= 2 * usize::try_from(SEGMENT).expect("small") + (1 << 20),
        "largest allocation {largest} bytes: the 4 GiB length was trusted"
    );
}
