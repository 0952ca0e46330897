//! A global allocator for policies: free lists of small blocks in front of
//! the default allocator.
//!
//! Every call into a policy allocates and frees the same small things: the
//! host lowers each string of the request with a call to the guest's
//! `cabi_realloc`, the bindings build `String`s and `Vec`s from them, and the
//! post-return frees them all again. With Rust's default allocator on
//! `wasm32-unknown-unknown` (dlmalloc) that allocation traffic costs more than
//! the routing table itself. A free list per size class turns each small
//! allocation and free into a pointer swap, and the blocks a call frees are
//! exactly the blocks the next call takes, so a policy's memory stays at the
//! high-water mark of one call.
//!
//! A policy opts in with two lines, in its Wasm build only:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: default_policy::pool::Pool = default_policy::pool::Pool::new();
//! ```
//!
//! Wasm instances are single-threaded, which is what makes the unsynchronised
//! lists sound; [`Pool`] is not for native multi-threaded programs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Block sizes served from free lists: 16, 32, 64, 128 and 256 bytes.
const CLASSES: usize = 5;
const SMALLEST: usize = 16;
/// Every block is aligned to 16 bytes; a layout that asks for more goes to
/// [`System`].
const BLOCK_ALIGN: usize = 16;

/// Free lists of small blocks over [`System`]; larger or over-aligned
/// allocations go to [`System`] directly.
pub struct Pool {
    // Head of each class's free list; a free block stores the next pointer.
    heads: UnsafeCell<[*mut u8; CLASSES]>,
}

// SAFETY: a Wasm instance runs one thread, so the lists are never shared.
unsafe impl Sync for Pool {}

impl Pool {
    /// An empty pool.
    pub const fn new() -> Self {
        Self {
            heads: UnsafeCell::new([ptr::null_mut(); CLASSES]),
        }
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

/// The size class of `layout`, if a free list serves it.
fn class(layout: Layout) -> Option<usize> {
    if layout.align() > BLOCK_ALIGN {
        return None;
    }
    let size = layout.size().max(SMALLEST).next_power_of_two();
    let class = (size.trailing_zeros() - SMALLEST.trailing_zeros()) as usize;
    (class < CLASSES).then_some(class)
}

/// The layout of a block of `class`, as [`System`] allocates it.
fn block(class: usize) -> Layout {
    // Sizes are powers of two from 16 to 256 and the alignment is 16: valid.
    Layout::from_size_align(SMALLEST << class, BLOCK_ALIGN).expect("a valid block layout")
}

unsafe impl GlobalAlloc for Pool {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class(layout) else {
            // SAFETY: the caller's layout contract is passed on unchanged.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: single-threaded (see `Sync` above), and the list only holds
        // blocks of this class that were freed, each big enough for a pointer.
        unsafe {
            let heads = &mut *self.heads.get();
            let head = heads[class];
            if head.is_null() {
                return System.alloc(block(class));
            }
            heads[class] = *(head as *mut *mut u8);
            head
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class(layout) else {
            // SAFETY: `ptr` came from `System` with this layout (see `alloc`).
            return unsafe { System.dealloc(ptr, layout) };
        };
        // SAFETY: `ptr` is a block of this class (its layout maps to the same
        // class), no longer used by the caller; it becomes the list's head.
        unsafe {
            let heads = &mut *self.heads.get();
            *(ptr as *mut *mut u8) = heads[class];
            heads[class] = ptr;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        match (class(layout), class(new_layout)) {
            // Growing or shrinking within the block's class keeps the block.
            (Some(old), Some(new)) if old == new => return ptr,
            // SAFETY: `ptr` came from `System` with `layout` (see `alloc`), and
            // the new size stays out of the pool: `System` may grow in place.
            (None, None) => return unsafe { System.realloc(ptr, layout, new_size) },
            _ => {}
        }
        // Across the pool's boundary. SAFETY: allocates, copies and frees
        // through the methods above, which uphold the contract.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn sizes_map_to_the_smallest_class_that_fits() {
        assert_eq!(class(layout(1, 1)), Some(0));
        assert_eq!(class(layout(16, 8)), Some(0));
        assert_eq!(class(layout(17, 1)), Some(1));
        assert_eq!(class(layout(256, 4)), Some(4));
        assert_eq!(class(layout(257, 1)), None);
        assert_eq!(class(layout(8, 32)), None);
    }

    // The pool is single-threaded, so each test uses its own.
    #[test]
    fn a_freed_block_is_reused_by_the_next_allocation_of_its_class() {
        let pool = Pool::new();
        unsafe {
            let a = pool.alloc(layout(20, 4));
            pool.dealloc(a, layout(20, 4));
            let b = pool.alloc(layout(30, 8));
            assert_eq!(a, b, "same class (32 bytes)");
            let c = pool.alloc(layout(30, 8));
            assert_ne!(b, c);
            pool.dealloc(b, layout(30, 8));
            pool.dealloc(c, layout(30, 8));
        }
    }

    /// Many live blocks of mixed sizes and alignments, grown, shrunk and freed
    /// in a pseudo-random order: no block's bytes are ever overwritten by
    /// another's.
    #[test]
    fn interleaved_blocks_keep_their_bytes() {
        let pool = Pool::new();
        let mut seed: u32 = 12345;
        let mut next = move || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            seed >> 8
        };
        let holds = |p: *mut u8, size: usize, fill: u8| unsafe {
            std::slice::from_raw_parts(p, size)
                .iter()
                .all(|&b| b == fill)
        };
        // (pointer, size, alignment, fill byte)
        let mut live: Vec<(*mut u8, usize, usize, u8)> = Vec::new();
        for step in 0..5_000u32 {
            let fill = (step % 251) as u8;
            unsafe {
                match next() % 3 {
                    0 | 1 if live.len() < 200 => {
                        let (size, align) = (1 + (next() % 600) as usize, 1 << (next() % 4));
                        let p = pool.alloc(layout(size, align));
                        ptr::write_bytes(p, fill, size);
                        live.push((p, size, align, fill));
                    }
                    1 => {
                        let i = next() as usize % live.len();
                        let (p, size, align, old_fill) = live[i];
                        let new_size = 1 + (next() % 600) as usize;
                        let q = pool.realloc(p, layout(size, align), new_size);
                        assert!(holds(q, size.min(new_size), old_fill));
                        ptr::write_bytes(q, fill, new_size);
                        live[i] = (q, new_size, align, fill);
                    }
                    _ if !live.is_empty() => {
                        let (p, size, align, fill) = live.swap_remove(next() as usize % live.len());
                        assert!(holds(p, size, fill));
                        pool.dealloc(p, layout(size, align));
                    }
                    _ => {}
                }
            }
        }
        for (p, size, align, fill) in live {
            assert!(holds(p, size, fill));
            unsafe { pool.dealloc(p, layout(size, align)) };
        }
    }

    #[test]
    fn realloc_keeps_the_bytes_and_the_block_within_a_class() {
        let pool = Pool::new();
        unsafe {
            let a = pool.alloc(layout(5, 1));
            ptr::copy_nonoverlapping(b"hello".as_ptr(), a, 5);
            let same = pool.realloc(a, layout(5, 1), 16);
            assert_eq!(same, a);
            let grown = pool.realloc(same, layout(16, 1), 1000);
            assert_eq!(std::slice::from_raw_parts(grown, 5), b"hello");
            let larger = pool.realloc(grown, layout(1000, 1), 5000);
            assert_eq!(std::slice::from_raw_parts(larger, 5), b"hello");
            let back = pool.realloc(larger, layout(5000, 1), 8);
            assert_eq!(std::slice::from_raw_parts(back, 5), b"hello");
            pool.dealloc(back, layout(8, 1));
        }
    }
}
