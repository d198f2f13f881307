//! The components' allocator: free lists of small blocks in front of the
//! system allocator (wasi-libc's dlmalloc).
//!
//! An article request makes a few hundred small allocations in the four
//! components it runs through (header names and values, keys, lifted
//! strings, serde buffers), and dlmalloc spends about 300 instructions on
//! each allocation and its free (bench/instructions.sh; BENCHMARKS.md,
//! "The components' small blocks kept on free lists"). Here a block of at
//! most [`LARGEST`] bytes is rounded up to a multiple of [`GRAIN`] and,
//! when freed, pushed on the free list of its size instead of going back to
//! dlmalloc; the next allocation of that size pops it. Larger blocks, and
//! blocks aligned to more than [`ALIGN`], go straight to the system
//! allocator.
//!
//! What that costs in memory: a freed small block stays on its list, where
//! dlmalloc cannot merge it into a larger free block, until a block of its
//! size is asked for again. A list keeps at most [`KEEP`] bytes (a block
//! freed onto a full list goes back to dlmalloc), so an instance holds at
//! most 1 MiB more this way than dlmalloc alone would, out of its 256 MiB
//! bound (docs/limits.md).
//!
//! The lists are not synchronised. That is sound only where one thread
//! runs, as in a wasm32-wasip2 component; a `Pool` is the global allocator
//! there and nowhere else (`lib.rs`).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// Block sizes are multiples of this many bytes.
pub const GRAIN: usize = 16;
/// The largest block kept on a free list.
pub const LARGEST: usize = 512;
/// The largest alignment a kept block is given (what the system allocator
/// gives any `malloc` on wasm32 without asking for alignment).
pub const ALIGN: usize = 8;
/// The most bytes kept on one free list; a block freed onto a full list
/// goes back to the system allocator. 32 lists, so an instance keeps at most
/// 1 MiB this way.
pub const KEEP: usize = 32 * 1024;
const CLASSES: usize = LARGEST / GRAIN;

/// Free lists of small blocks over the allocator `A`.
#[derive(Debug)]
pub struct Pool<A> {
    lists: UnsafeCell<Lists>,
    backing: A,
}

/// One free list per class: its first block and how many more blocks it
/// may keep.
#[derive(Debug)]
struct Lists {
    head: [*mut u8; CLASSES],
    room: [u32; CLASSES],
}

// SAFETY: see the module's documentation: a `Pool` is shared only where one
// thread runs (the wasm32 global allocator), or used from one thread (the
// tests).
#[allow(unsafe_code)]
unsafe impl<A: Sync> Sync for Pool<A> {}

impl<A> Pool<A> {
    /// Empty free lists over `backing`.
    pub const fn new(backing: A) -> Self {
        Pool {
            lists: UnsafeCell::new(Lists {
                head: [ptr::null_mut(); CLASSES],
                room: ROOM,
            }),
            backing,
        }
    }
}

/// The free list a block of `layout` is kept on, if any.
fn class(layout: Layout) -> Option<usize> {
    if layout.align() > ALIGN || layout.size() == 0 || layout.size() > LARGEST {
        return None;
    }
    Some((layout.size() - 1) / GRAIN)
}

/// How many blocks of class `c` a list keeps: [`KEEP`] bytes' worth,
/// counted down as blocks are kept (no division on the way).
const fn keep(c: usize) -> u32 {
    (KEEP / ((c + 1) * GRAIN)) as u32
}

const ROOM: [u32; CLASSES] = {
    let mut room = [0; CLASSES];
    let mut c = 0;
    while c < CLASSES {
        room[c] = keep(c);
        c += 1;
    }
    room
};

/// The layout of the blocks of class `c`, as asked of the backing allocator.
fn block(c: usize) -> Layout {
    match Layout::from_size_align((c + 1) * GRAIN, ALIGN) {
        Ok(layout) => layout,
        // (c + 1) * GRAIN <= LARGEST, a valid size at alignment ALIGN.
        Err(_) => unreachable!("block sizes are valid layouts"),
    }
}

impl<A: GlobalAlloc> Pool<A> {
    /// What `alloc` does when no kept block fits: asks the backing
    /// allocator, for a whole block of the class if the layout has one.
    /// Out of line, so that the fast path inlined at every allocation stays
    /// small.
    #[inline(never)]
    #[allow(unsafe_code)]
    unsafe fn alloc_from_backing(&self, layout: Layout) -> *mut u8 {
        let layout = class(layout).map_or(layout, block);
        // SAFETY: a non-zero layout (GlobalAlloc's callers never ask for
        // zero bytes).
        unsafe { self.backing.alloc(layout) }
    }
}

#[allow(unsafe_code)]
// SAFETY: every block handed out is either the backing allocator's answer
// for a layout at least as large and as aligned as the one asked for, or a
// block of the same class pushed by `dealloc`, which the caller gave up.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Pool<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(c) = class(layout) {
            // SAFETY: one thread (module documentation): no other reference
            // to the lists is live.
            let lists = unsafe { &mut *self.lists.get() };
            let head = lists.head[c];
            if !head.is_null() {
                // SAFETY: a block on a list holds the next block's address
                // in its first bytes (written by `dealloc`; blocks are at
                // least GRAIN bytes and ALIGN-aligned).
                lists.head[c] = unsafe { head.cast::<*mut u8>().read() };
                lists.room[c] += 1;
                return head;
            }
        }
        // SAFETY: as asked of `alloc`.
        unsafe { self.alloc_from_backing(layout) }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(c) = class(layout) else {
            // SAFETY: as asked of `dealloc`.
            return unsafe { self.backing.dealloc(ptr, layout) };
        };
        // SAFETY: as in `alloc`.
        let lists = unsafe { &mut *self.lists.get() };
        if lists.room[c] == 0 {
            // SAFETY: every block of a class comes from the backing
            // allocator with the class's layout.
            return unsafe { self.backing.dealloc(ptr, block(c)) };
        }
        // SAFETY: the caller gave the block up; it is ALIGN-aligned and at
        // least GRAIN bytes, room for the list's link.
        unsafe { ptr.cast::<*mut u8>().write(lists.head[c]) };
        lists.head[c] = ptr;
        lists.room[c] -= 1;
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller promises new_size, rounded to the alignment,
        // does not overflow isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new_layout)) {
            (None, None) => {
                // SAFETY: forwarded as asked.
                unsafe { self.backing.realloc(ptr, layout, new_size) }
            }
            // The block already has room for any size of its class.
            (Some(a), Some(b)) if a == b => ptr,
            _ => {
                // SAFETY: a valid, non-zero layout.
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks hold at least the smaller size and
                    // do not overlap; the old one is given up after the copy.
                    unsafe {
                        ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;
    use std::alloc::System;
    use std::cell::Cell;

    /// The system allocator, counting what reaches it.
    #[derive(Default)]
    struct Counting {
        allocs: Cell<usize>,
        frees: Cell<usize>,
        reallocs: Cell<usize>,
    }

    // SAFETY: forwards to the system allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            self.allocs.set(self.allocs.get() + 1);
            // SAFETY: forwarded as asked.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            self.frees.set(self.frees.get() + 1);
            // SAFETY: forwarded as asked.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            self.reallocs.set(self.reallocs.get() + 1);
            // SAFETY: forwarded as asked.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap_or_else(|e| panic!("{size}/{align}: {e}"))
    }

    /// Fills `len` bytes at `ptr` with `byte`.
    fn fill(ptr: *mut u8, len: usize, byte: u8) {
        // SAFETY: callers pass a live block of at least `len` bytes.
        unsafe { ptr::write_bytes(ptr, byte, len) }
    }

    /// Whether the `len` bytes at `ptr` all hold `byte`.
    fn holds(ptr: *const u8, len: usize, byte: u8) -> bool {
        // SAFETY: callers pass a live, initialised block of `len` bytes.
        unsafe { std::slice::from_raw_parts(ptr, len) }
            .iter()
            .all(|b| *b == byte)
    }

    #[test]
    fn a_freed_small_block_is_handed_out_again_without_asking_the_system() {
        let pool = Pool::new(Counting::default());
        // SAFETY: every block is freed once, with the layout it was asked with.
        unsafe {
            let a = pool.alloc(layout(40, 8));
            assert_eq!(pool.backing.allocs.get(), 1);
            pool.dealloc(a, layout(40, 8));
            assert_eq!(
                pool.backing.frees.get(),
                0,
                "a small block went back to the system"
            );
            // Another size of the same class (33..=48 bytes) gets the same block.
            let b = pool.alloc(layout(33, 1));
            assert_eq!(b, a);
            assert_eq!(pool.backing.allocs.get(), 1);
            // A size of another class does not.
            let c = pool.alloc(layout(49, 8));
            assert_ne!(c, a);
            assert_eq!(pool.backing.allocs.get(), 2);
            pool.dealloc(b, layout(33, 1));
            pool.dealloc(c, layout(49, 8));
        }
    }

    #[test]
    fn free_lists_hand_blocks_out_last_freed_first_and_never_twice() {
        let pool = Pool::new(Counting::default());
        let l = layout(16, 8);
        // SAFETY: every block is freed once, with the layout it was asked with.
        unsafe {
            let blocks: Vec<*mut u8> = (0..5).map(|_| pool.alloc(l)).collect();
            for &b in &blocks {
                pool.dealloc(b, l);
            }
            let again: Vec<*mut u8> = (0..6).map(|_| pool.alloc(l)).collect();
            let mut reversed = blocks.clone();
            reversed.reverse();
            assert_eq!(again[..5], reversed[..]);
            assert!(!blocks.contains(&again[5]), "a block was handed out twice");
            assert_eq!(pool.backing.allocs.get(), 6);
            for b in again {
                pool.dealloc(b, l);
            }
        }
    }

    #[test]
    fn a_list_keeps_at_most_its_bytes_and_gives_the_rest_back() {
        let pool = Pool::new(Counting::default());
        for (size, kept) in [(16, KEEP / 16), (500, KEEP / 512)] {
            let l = layout(size, 8);
            let (allocs, frees) = (pool.backing.allocs.get(), pool.backing.frees.get());
            // SAFETY: every block is freed once, with the layout it was asked with.
            unsafe {
                let blocks: Vec<*mut u8> = (0..kept + 10).map(|_| pool.alloc(l)).collect();
                assert_eq!(pool.backing.allocs.get(), allocs + kept + 10);
                for b in blocks {
                    pool.dealloc(b, l);
                }
                assert_eq!(
                    pool.backing.frees.get(),
                    frees + 10,
                    "{size}: not given back past the cap"
                );
                // The kept blocks serve as many allocations, and no more.
                let again: Vec<*mut u8> = (0..kept).map(|_| pool.alloc(l)).collect();
                assert_eq!(pool.backing.allocs.get(), allocs + kept + 10);
                let one_more = pool.alloc(l);
                assert_eq!(pool.backing.allocs.get(), allocs + kept + 11);
                pool.dealloc(one_more, l);
                for b in again {
                    pool.dealloc(b, l);
                }
            }
        }
    }

    #[test]
    fn large_and_over_aligned_blocks_go_to_the_system_both_ways() {
        let pool = Pool::new(Counting::default());
        // SAFETY: every block is freed once, with the layout it was asked with.
        unsafe {
            for l in [layout(LARGEST + 1, 1), layout(64, 16), layout(4096, 4096)] {
                let before = (pool.backing.allocs.get(), pool.backing.frees.get());
                let p = pool.alloc(l);
                assert!(!p.is_null());
                assert_eq!(p as usize % l.align(), 0, "{l:?} misaligned");
                pool.dealloc(p, l);
                assert_eq!(
                    (pool.backing.allocs.get(), pool.backing.frees.get()),
                    (before.0 + 1, before.1 + 1),
                    "{l:?} did not go to the system and back"
                );
            }
            // The largest kept size stays.
            let p = pool.alloc(layout(LARGEST, ALIGN));
            pool.dealloc(p, layout(LARGEST, ALIGN));
            assert_eq!(pool.backing.frees.get(), 3);
        }
    }

    #[test]
    fn realloc_keeps_the_block_within_its_class_and_the_bytes_across_classes() {
        let pool = Pool::new(Counting::default());
        // SAFETY: every block is freed once, with the layout it last had.
        unsafe {
            let p = pool.alloc(layout(20, 4));
            fill(p, 20, 0xab);
            // 20 and 32 bytes are one class: the same block.
            let q = pool.realloc(p, layout(20, 4), 32);
            assert_eq!(q, p);
            fill(q.add(20), 12, 0xab);
            // Up a class: moved, the old block kept for reuse, the bytes copied.
            let r = pool.realloc(q, layout(32, 4), 100);
            assert_ne!(r, q);
            assert!(holds(r, 32, 0xab));
            assert_eq!(pool.alloc(layout(32, 4)), q, "the old block was not kept");
            pool.dealloc(q, layout(32, 4));
            // Out of the pool: the system's block, the bytes copied.
            fill(r.add(32), 68, 0xab);
            let s = pool.realloc(r, layout(100, 4), 10_000);
            assert!(holds(s, 100, 0xab));
            // Large to large: the system's realloc.
            let t = pool.realloc(s, layout(10_000, 4), 20_000);
            assert_eq!(pool.backing.reallocs.get(), 1);
            assert!(holds(t, 100, 0xab));
            // Back into the pool: the system's block freed.
            let frees = pool.backing.frees.get();
            let u = pool.realloc(t, layout(20_000, 4), 8);
            assert_eq!(pool.backing.frees.get(), frees + 1);
            assert!(holds(u, 8, 0xab));
            pool.dealloc(u, layout(8, 4));
        }
    }

    /// Many live blocks of mixed sizes, freed and reallocated in a scrambled
    /// order: no two live blocks overlap, none loses its bytes, every block
    /// is aligned as asked.
    #[test]
    fn mixed_blocks_neither_overlap_nor_lose_their_bytes() {
        let pool = Pool::new(System);
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut state = 0x9e37_79b9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as usize
        };
        for step in 0..20_000usize {
            let r = next();
            let byte = (step % 251) as u8;
            if live.len() < 64 || r % 3 == 0 {
                let size = 1 + next() % 700;
                let align = [1, 2, 4, 8, 16][next() % 5];
                let l = layout(size, align);
                // SAFETY: a non-zero layout.
                let p = unsafe { pool.alloc(l) };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "{l:?} misaligned");
                fill(p, size, byte);
                live.push((p, l, byte));
            } else {
                let i = next() % live.len();
                let (p, l, b) = live.swap_remove(i);
                assert!(holds(p, l.size(), b), "a block of {l:?} lost its bytes");
                if r % 3 == 1 {
                    let size = 1 + next() % 700;
                    // SAFETY: a live block, its layout, a non-zero size.
                    let q = unsafe { pool.realloc(p, l, size) };
                    let kept = l.size().min(size);
                    assert!(holds(q, kept, b), "realloc lost bytes");
                    fill(q, size, byte);
                    live.push((q, layout(size, l.align()), byte));
                } else {
                    // SAFETY: a live block and its layout.
                    unsafe { pool.dealloc(p, l) };
                }
            }
        }
        let mut spans: Vec<(usize, usize)> = live
            .iter()
            .map(|(p, l, _)| (*p as usize, *p as usize + l.size()))
            .collect();
        spans.sort_unstable();
        assert!(
            spans.windows(2).all(|w| w[0].1 <= w[1].0),
            "two live blocks overlap"
        );
        for (p, l, b) in live {
            assert!(holds(p, l.size(), b), "a block of {l:?} lost its bytes");
            // SAFETY: a live block and its layout.
            unsafe { pool.dealloc(p, l) };
        }
    }
}
